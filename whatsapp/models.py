"""An organization's WhatsApp Business connection, its numbers and channels, and every message.

One :class:`Message` row per WhatsApp message in either direction is the single record that the
document's history, the contact's messages, the reports and the chat read. Statuses only move
forward (:data:`~whatsapp.choices.STATUS_RANK`); the webhook that moved them is kept raw in
:class:`WebhookEvent`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from books.encrypted import EncryptedTextField
from books.models import Contact, ContactPerson, Document, Organization

from .choices import (
    AccountStatus,
    Audience,
    Category,
    Direction,
    MediaState,
    MessageStatus,
    MessageType,
    WebhookEventState,
)
from .fix_hints import fix_hint

#: Account states in which the account is the organization's current one (everything but replaced).
LIVE_ACCOUNT_STATES = [
    AccountStatus.CONNECTED,
    AccountStatus.INACTIVE,
    AccountStatus.DELETING_TEMPLATES,
    AccountStatus.SETUP_PENDING,
]


class WhatsAppAccount(models.Model):
    """A WhatsApp Business Account (WABA) connected to an organization.

    An organization has at most one live account; changing accounts marks the old row
    ``disconnected`` (its numbers and messages stay) and creates a new one. A WABA is live in at
    most one organization, so a webhook's ``entry.id`` names exactly one tenant.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="whatsapp_accounts")
    waba_id = models.CharField(_("WhatsApp Business Account ID"), max_length=32)
    app_id = models.CharField(_("Meta app ID"), max_length=32)
    name = models.CharField(_("business name"), max_length=200, blank=True)
    access_token = EncryptedTextField(_("access token"))
    status = models.CharField(_("status"), max_length=20, choices=AccountStatus, default=AccountStatus.CONNECTED)
    default_phone_number = models.ForeignKey(
        "PhoneNumber",
        verbose_name=_("default number"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    customer_same_number = models.BooleanField(
        _("same number for every category"),
        default=True,
        help_text=_("Send customer utility and marketing messages from one number."),
    )
    # The last "test connection" (or any call that found the token refused).
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    check_error_code = models.IntegerField(_("last error code"), null=True, blank=True)
    check_error = models.TextField(_("last error"), blank=True)
    # The last ``account_update`` / ``account_alerts`` webhook Meta sent about this account.
    meta_event = models.CharField(_("latest Meta event"), max_length=64, blank=True)
    meta_event_detail = models.JSONField(_("latest Meta event detail"), default=dict, blank=True)
    meta_event_at = models.DateTimeField(_("latest Meta event at"), null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connected_at = models.DateTimeField(_("connected at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    disconnected_at = models.DateTimeField(_("disconnected at"), null=True, blank=True)

    class Meta:
        ordering = ["organization", "-connected_at"]
        verbose_name = _("WhatsApp Business account")
        verbose_name_plural = _("WhatsApp Business accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status__in=LIVE_ACCOUNT_STATES),
                name="whatsappaccount_one_live_per_org",
            ),
            models.UniqueConstraint(
                fields=["waba_id"],
                condition=Q(status__in=LIVE_ACCOUNT_STATES),
                name="whatsappaccount_waba_live_once",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.waba_id

    @property
    def can_send(self) -> bool:
        return self.status == AccountStatus.CONNECTED

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_ACCOUNT_STATES


class PhoneNumber(models.Model):
    """A business phone number of a WABA, as Meta last reported it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="whatsapp_numbers")
    account = models.ForeignKey(WhatsAppAccount, on_delete=models.CASCADE, related_name="phone_numbers")
    phone_number_id = models.CharField(_("phone number ID"), max_length=32)
    display_phone_number = models.CharField(_("number"), max_length=32)
    verified_name = models.CharField(_("display name"), max_length=200, blank=True)
    name_status = models.CharField(_("display name status"), max_length=32, blank=True)
    code_verification_status = models.CharField(_("verification"), max_length=32, blank=True)
    quality_rating = models.CharField(_("quality"), max_length=16, blank=True)
    status = models.CharField(_("Meta status"), max_length=32, blank=True)
    throughput_level = models.CharField(_("throughput"), max_length=32, blank=True)
    messaging_limit_tier = models.CharField(_("messaging limit"), max_length=32, blank=True)
    can_send_message = models.CharField(_("can send"), max_length=16, blank=True)
    # The last ``phone_number_quality_update`` webhook (e.g. FLAGGED, UPGRADE, THROUGHPUT_UPGRADE).
    quality_event = models.CharField(_("latest quality event"), max_length=32, blank=True)
    quality_event_at = models.DateTimeField(_("latest quality event at"), null=True, blank=True)
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)

    class Meta:
        ordering = ["account", "display_phone_number"]
        verbose_name = _("WhatsApp phone number")
        verbose_name_plural = _("WhatsApp phone numbers")
        constraints = [
            models.UniqueConstraint(fields=["account", "phone_number_id"], name="phonenumber_unique_per_account"),
        ]

    def __str__(self) -> str:
        if self.verified_name:
            return f"{self.display_phone_number} ({self.verified_name})"
        return self.display_phone_number

    @property
    def is_verified(self) -> bool:
        return self.code_verification_status == "VERIFIED"

    @property
    def messages_per_second(self) -> int:
        """The send rate Meta allows this number: 80/s by default, up to 1,000/s once upgraded."""
        return 1000 if self.throughput_level == "HIGH" else 80


class Channel(models.Model):
    """Which number sends which audience × category (customer utility, customer marketing, vendor utility)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="whatsapp_channels")
    account = models.ForeignKey(WhatsAppAccount, on_delete=models.CASCADE, related_name="channels")
    audience = models.CharField(_("audience"), max_length=10, choices=Audience)
    category = models.CharField(_("category"), max_length=16, choices=Category)
    phone_number = models.ForeignKey(
        PhoneNumber, verbose_name=_("number"), on_delete=models.CASCADE, related_name="channels"
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["account", "audience", "category"]
        verbose_name = _("WhatsApp channel")
        verbose_name_plural = _("WhatsApp channels")
        constraints = [
            models.UniqueConstraint(fields=["account", "audience", "category"], name="channel_unique_per_account"),
        ]

    def __str__(self) -> str:
        return f"{self.get_audience_display()} · {self.get_category_display()}: {self.phone_number}"


def message_media_path(message: Message, filename: str) -> str:
    return f"whatsapp/{message.organization_id}/{message.pk or 'new'}/{filename}"


class Message(models.Model):
    """One WhatsApp message, sent or received, and everything Meta told us about it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="whatsapp_messages")
    account = models.ForeignKey(
        WhatsAppAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    phone_number = models.ForeignKey(
        PhoneNumber,
        verbose_name=_("business number"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    direction = models.CharField(_("direction"), max_length=10, choices=Direction)
    message_type = models.CharField(_("type"), max_length=16, choices=MessageType)
    # The other party: the customer's or vendor's number (E.164), and who it is when we know.
    phone = models.CharField(_("phone"), max_length=32, db_index=True)
    wa_id = models.CharField(_("WhatsApp ID"), max_length=64, blank=True)
    profile_name = models.CharField(_("WhatsApp profile name"), max_length=200, blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="whatsapp_messages"
    )
    contact_person = models.ForeignKey(
        ContactPerson, on_delete=models.SET_NULL, null=True, blank=True, related_name="whatsapp_messages"
    )
    document = models.ForeignKey(
        Document, on_delete=models.SET_NULL, null=True, blank=True, related_name="whatsapp_messages"
    )
    template_name = models.CharField(_("template"), max_length=512, blank=True)
    template_language = models.CharField(_("template language"), max_length=16, blank=True)
    category = models.CharField(_("category"), max_length=16, choices=Category, blank=True)
    content = models.TextField(_("content"), blank=True, help_text=_("The text as the recipient sees it."))
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    # The message this one replies to (``context.id``), if any.
    reply_to_wamid = models.CharField(_("reply to"), max_length=255, blank=True)
    # Media: sent (the uploaded media id) or received (downloaded into ``media_file``).
    media_id = models.CharField(_("media ID"), max_length=64, blank=True)
    media_mime_type = models.CharField(_("media type"), max_length=100, blank=True)
    media_filename = models.CharField(_("file name"), max_length=255, blank=True)
    media_sha256 = models.CharField(_("media SHA-256"), max_length=128, blank=True)
    media_file = models.FileField(_("media file"), upload_to=message_media_path, max_length=255, blank=True)
    media_state = models.CharField(_("media"), max_length=10, choices=MediaState, default=MediaState.NONE, blank=True)

    status = models.CharField(_("status"), max_length=10, choices=MessageStatus, db_index=True)
    wamid = models.CharField(_("WhatsApp message ID"), max_length=255, null=True, blank=True, unique=True)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    sending_at = models.DateTimeField(_("sending at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)

    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    error_subcode = models.IntegerField(_("error subcode"), null=True, blank=True)
    error_title = models.CharField(_("error"), max_length=255, blank=True)
    error_details = models.TextField(_("error details"), blank=True)

    pricing_type = models.CharField(_("pricing type"), max_length=32, blank=True)
    pricing_category = models.CharField(_("pricing category"), max_length=32, blank=True)
    billable = models.BooleanField(_("billable"), null=True, blank=True)

    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("WhatsApp message")
        verbose_name_plural = _("WhatsApp messages")
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="message_org_recent"),
            models.Index(fields=["organization", "phone", "-created_at"], name="message_org_phone_recent"),
            models.Index(fields=["document", "-created_at"], name="message_document_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(direction=Direction.INBOUND, status=MessageStatus.RECEIVED)
                | (Q(direction=Direction.OUTBOUND) & ~Q(status=MessageStatus.RECEIVED)),
                name="message_status_matches_direction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.get_message_type_display()} {self.phone}"

    @property
    def is_outbound(self) -> bool:
        return self.direction == Direction.OUTBOUND

    @property
    def fix_hint(self) -> str:
        """What the accountant should do about the error, in their language ("" if no error)."""
        if self.error_code is None and not self.error_title:
            return ""
        return str(fix_hint(self.error_code, subcode=self.error_subcode))

    @cached_property
    def recipient_name(self) -> str:
        if self.contact_person_id:
            return self.contact_person.name
        if self.contact_id:
            return self.contact.display_name
        return self.profile_name

    def status_history(self) -> list[tuple[str, object]]:
        """``(status, when)`` for every status the message reached, in the order of the steps.

        Not sorted by time: Meta's timestamps and the hub's clock differ, and ``failed`` may be
        stamped before a ``delivered`` that another device reported."""
        steps = [
            (MessageStatus.QUEUED, self.queued_at),
            (MessageStatus.SENDING, self.sending_at),
            (MessageStatus.SENT, self.sent_at),
            (MessageStatus.DELIVERED, self.delivered_at),
            (MessageStatus.READ, self.read_at),
            (MessageStatus.FAILED, self.failed_at),
            (MessageStatus.RECEIVED, self.received_at),
        ]
        return [(status, at) for status, at in steps if at is not None]


class WebhookEvent(models.Model):
    """One webhook POST from Meta, stored raw, once, before anything is done with it.

    Meta retries a delivery until it gets a 200, with the same body: the SHA-256 of the body is
    unique, so a retried delivery is stored (and applied) once.
    """

    body = models.TextField(_("body"))
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64, unique=True)
    state = models.CharField(
        _("state"), max_length=10, choices=WebhookEventState, default=WebhookEventState.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"webhook {self.pk} ({self.state})"
