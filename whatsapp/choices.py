from django.db import models
from django.utils.translation import gettext_lazy as _


class AccountStatus(models.TextChoices):
    """Where an organization's WhatsApp Business connection stands.

    ``connected``: messages go out. ``inactive``: an administrator paused WhatsApp; nothing is sent,
    webhooks are still applied. ``deleting_templates``: changing the business account, the
    templates of the old one are being deleted. ``setup_pending``: the old account's templates are
    gone, a new account has to be connected. ``disconnected``: replaced by another account; kept so
    its numbers and messages stay in the history.
    """

    CONNECTED = "connected", _("Connected")
    INACTIVE = "inactive", _("Inactive")
    DELETING_TEMPLATES = "deleting_templates", _("Deleting templates")
    SETUP_PENDING = "setup_pending", _("Setup pending")
    DISCONNECTED = "disconnected", _("Disconnected")


class Audience(models.TextChoices):
    CUSTOMER = "customer", _("Customer communication")
    VENDOR = "vendor", _("Vendor communication")


class Category(models.TextChoices):
    """Meta's template categories (and ``service`` for free-form messages in the 24 h window)."""

    UTILITY = "utility", _("Utility")
    MARKETING = "marketing", _("Marketing")
    AUTHENTICATION = "authentication", _("Authentication")
    SERVICE = "service", _("Service")


class Direction(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound")
    INBOUND = "inbound", _("Inbound")


class MessageType(models.TextChoices):
    TEMPLATE = "template", _("Template")
    TEXT = "text", _("Text")
    IMAGE = "image", _("Image")
    DOCUMENT = "document", _("Document")
    AUDIO = "audio", _("Audio")
    VIDEO = "video", _("Video")
    STICKER = "sticker", _("Sticker")
    LOCATION = "location", _("Location")
    CONTACTS = "contacts", _("Contacts")
    BUTTON = "button", _("Button reply")
    INTERACTIVE = "interactive", _("Interactive reply")
    REACTION = "reaction", _("Reaction")
    UNSUPPORTED = "unsupported", _("Unsupported")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")
    RECEIVED = "received", _("Received")


#: Forward-only order of an outbound message's statuses. ``failed`` outranks everything: it is
#: terminal, so any arrival order of the same webhooks ends in the same state.
STATUS_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.FAILED: 9,
}


class MediaState(models.TextChoices):
    NONE = "", _("No media")
    PENDING = "pending", _("Downloading")
    STORED = "stored", _("Stored")
    FAILED = "failed", _("Download failed")


class WebhookEventState(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")
