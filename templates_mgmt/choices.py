from django.db import models
from django.utils.translation import gettext_lazy as _


class TemplateStatus(models.TextChoices):
    """A template's approval status, in Meta's words (plus the hub's own deletion states)."""

    DRAFT = "DRAFT", _("Draft")
    PENDING = "PENDING", _("Pending approval")
    APPROVED = "APPROVED", _("Approved")
    REJECTED = "REJECTED", _("Rejected")
    PAUSED = "PAUSED", _("Paused")
    DISABLED = "DISABLED", _("Disabled")
    FLAGGED = "FLAGGED", _("Flagged")
    IN_APPEAL = "IN_APPEAL", _("In appeal")
    REINSTATED = "REINSTATED", _("Reinstated")
    PENDING_DELETION = "PENDING_DELETION", _("Deletion in progress")
    DELETION_FAILED = "DELETION_FAILED", _("Deletion failed")
    DELETED = "DELETED", _("Deleted")
    ARCHIVED = "ARCHIVED", _("Archived")
    UNARCHIVED = "UNARCHIVED", _("Unarchived")
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED", _("Limit exceeded")
    LOCKED = "LOCKED", _("Locked")


class TemplateCategory(models.TextChoices):
    UTILITY = "UTILITY", _("Utility")
    MARKETING = "MARKETING", _("Marketing")
    AUTHENTICATION = "AUTHENTICATION", _("Authentication")


class Module(models.TextChoices):
    """The part of the books a template belongs to (Settings → WhatsApp → Message templates).

    ``customers`` holds general and marketing notifications to customers; every other module
    speaks about one document (or a statement) of its kind.
    """

    CUSTOMERS = "customers", _("Customers")
    INVOICES = "invoices", _("Invoices")
    PAYMENT_REMINDERS = "payment_reminders", _("Payment reminders")
    SALES_ORDERS = "sales_orders", _("Sales orders")
    QUOTES = "quotes", _("Quotes")
    RETAINER_INVOICES = "retainer_invoices", _("Retainer invoices")
    CREDIT_NOTES = "credit_notes", _("Credit notes")
    SALES_RECEIPTS = "sales_receipts", _("Sales receipts")
    PAYMENTS_RECEIVED = "payments_received", _("Payments received")
    CUSTOMER_STATEMENTS = "customer_statements", _("Customer statements")
    VENDORS = "vendors", _("Vendors")
    VENDOR_STATEMENTS = "vendor_statements", _("Vendor statements")


class HeaderType(models.TextChoices):
    """What sits above the body: nothing, a line of text, or an attachment (PDF or image)."""

    NONE = "none", _("None")
    TEXT = "text", _("Text")
    DOCUMENT = "document", _("Document")
    IMAGE = "image", _("Image")


class AttachmentMode(models.TextChoices):
    """Where an attachment header's file comes from when a message is sent."""

    DYNAMIC = "dynamic", _("Dynamic (the transaction's own PDF)")
    STATIC = "static", _("Static (an uploaded file)")


class ButtonType(models.TextChoices):
    """Call-to-action buttons the builder offers (Meta's URL and PHONE_NUMBER)."""

    URL = "url", _("Visit website")
    PHONE_NUMBER = "phone_number", _("Call phone number")
