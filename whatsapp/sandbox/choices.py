"""Enumerations of the sandbox, with Meta's own spellings where Meta has one."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CodeVerificationStatus(models.TextChoices):
    VERIFIED = "VERIFIED", _("Verified")
    NOT_VERIFIED = "NOT_VERIFIED", _("Not verified")
    EXPIRED = "EXPIRED", _("Expired")


class TemplateCategory(models.TextChoices):
    UTILITY = "UTILITY", _("Utility")
    MARKETING = "MARKETING", _("Marketing")
    AUTHENTICATION = "AUTHENTICATION", _("Authentication")


class ParameterFormat(models.TextChoices):
    POSITIONAL = "POSITIONAL", _("Positional ({{1}})")
    NAMED = "NAMED", _("Named ({{name}})")


class TemplateStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    APPROVED = "APPROVED", _("Approved")
    REJECTED = "REJECTED", _("Rejected")
    PAUSED = "PAUSED", _("Paused")
    DISABLED = "DISABLED", _("Disabled")
    DELETED = "DELETED", _("Deleted")


class Direction(models.TextChoices):
    OUTBOUND = "outbound", _("Business → customer")
    INBOUND = "inbound", _("Customer → business")


class MessageStatus(models.TextChoices):
    """Meta's status names; ``accepted`` is the answer to the send, before any webhook."""

    ACCEPTED = "accepted", _("Accepted")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")
    RECEIVED = "received", _("Received")


class FaultMode(models.TextChoices):
    SYNC = "sync", _("In the HTTP answer")
    ASYNC = "async", _("As a failed status webhook")


class MediaOrigin(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded by the business")
    INBOUND = "inbound", _("Sent by a customer")


class WebhookKind(models.TextChoices):
    MESSAGE_STATUS = "message_status", _("Message status")
    TEMPLATE_STATUS = "template_status", _("Template status")
    INBOUND_MESSAGE = "inbound_message", _("Inbound message")
    PHONE_NUMBER = "phone_number", _("Phone number update")


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Gave up")
    SKIPPED = "skipped", _("Skipped")


class ThroughputLevel(models.TextChoices):
    """``throughput.level`` of a phone number: 80 messages a second, or 1,000 after Meta's upgrade."""

    STANDARD = "STANDARD", _("Standard (80 messages/s)")
    HIGH = "HIGH", _("High (1,000 messages/s)")
    NOT_APPLICABLE = "NOT_APPLICABLE", _("Not applicable")


class MessagingLimitTier(models.TextChoices):
    """``whatsapp_business_manager_messaging_limit``: customers reached outside a window per 24 h."""

    TIER_NOT_SET = "TIER_NOT_SET", _("Not set")
    TIER_50 = "TIER_50", _("50 customers / 24 h")
    TIER_250 = "TIER_250", _("250 customers / 24 h")
    TIER_1K = "TIER_1K", _("1,000 customers / 24 h")
    TIER_2K = "TIER_2K", _("2,000 customers / 24 h")
    TIER_10K = "TIER_10K", _("10,000 customers / 24 h")
    TIER_100K = "TIER_100K", _("100,000 customers / 24 h")
    TIER_UNLIMITED = "TIER_UNLIMITED", _("Unlimited")
