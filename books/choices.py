from django.db import models
from django.utils.translation import gettext_lazy as _


class ContactType(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    VENDOR = "vendor", _("Vendor")


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    SALES_ORDER = "salesorder", _("Sales order")
    ESTIMATE = "estimate", _("Quote")
    RETAINER_INVOICE = "retainerinvoice", _("Retainer invoice")
    CREDIT_NOTE = "creditnote", _("Credit note")
    SALES_RECEIPT = "salesreceipt", _("Sales receipt")
    CUSTOMER_PAYMENT = "customerpayment", _("Payment received")
    BILL = "bill", _("Bill")
    VENDOR_PAYMENT = "vendorpayment", _("Payment made")


class DocumentStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    OPEN = "open", _("Open")
    # Never stored: derived from the due date and the balance (see Document.effective_status).
    OVERDUE = "overdue", _("Overdue")
    PARTIALLY_PAID = "partially_paid", _("Partially paid")
    PAID = "paid", _("Paid")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    INVOICED = "invoiced", _("Invoiced")
    CLOSED = "closed", _("Closed")
    VOID = "void", _("Void")


class PaymentMode(models.TextChoices):
    CASH = "cash", _("Cash")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CHEQUE = "cheque", _("Cheque")
    CARD = "card", _("Card")
    UPI = "upi", _("UPI")
    OTHER = "other", _("Other")


class DateFormat(models.TextChoices):
    """Babel (CLDR) date patterns offered to organizations."""

    DMY_SLASH = "dd/MM/yyyy", "dd/MM/yyyy"
    MDY_SLASH = "MM/dd/yyyy", "MM/dd/yyyy"
    ISO = "yyyy-MM-dd", "yyyy-MM-dd"
    DMY_DOT = "dd.MM.yyyy", "dd.MM.yyyy"
    D_MON_Y = "dd MMM yyyy", "dd MMM yyyy"


class Language(models.TextChoices):
    """Preferred languages for documents and WhatsApp templates (Meta language codes)."""

    ENGLISH = "en", _("English")
    SPANISH = "es", _("Spanish")
    HINDI = "hi", _("Hindi")
    PORTUGUESE_BR = "pt_BR", _("Portuguese (Brazil)")
    FRENCH = "fr", _("French")
    ARABIC = "ar", _("Arabic")
