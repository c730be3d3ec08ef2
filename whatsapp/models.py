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
    # When a send found the access token refused (190): the account's queue waits, its messages
    # kept, until an administrator replaces the token (``account_token_replace``).
    token_refused_at = models.DateTimeField(_("access token refused at"), null=True, blank=True)
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

    # Indexed by ``message_org_recent`` (and ``message_org_phone_recent``), which lead with it.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="whatsapp_messages", db_index=False
    )
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
    phone = models.CharField(_("phone"), max_length=32)  # indexed by ``message_phone``
    wa_id = models.CharField(_("WhatsApp ID"), max_length=64, blank=True)
    profile_name = models.CharField(_("WhatsApp profile name"), max_length=200, blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="whatsapp_messages"
    )
    contact_person = models.ForeignKey(
        ContactPerson, on_delete=models.SET_NULL, null=True, blank=True, related_name="whatsapp_messages"
    )
    document = models.ForeignKey(  # indexed by ``message_document_recent``, which leads with it
        Document, on_delete=models.SET_NULL, null=True, blank=True, related_name="whatsapp_messages", db_index=False
    )
    template = models.ForeignKey(
        "templates_mgmt.MessageTemplate",
        verbose_name=_("message template"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    #: The template module the notification was sent from (invoices, payment_reminders, …).
    module = models.CharField(_("module"), max_length=32, blank=True)
    # The period of a statement sent as a notification (its PDF is made when the message is sent).
    statement_from = models.DateField(_("statement from"), null=True, blank=True)
    statement_to = models.DateField(_("statement to"), null=True, blank=True)
    bulk = models.ForeignKey(
        "BulkSend",
        verbose_name=_("bulk send"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
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

    # Not indexed as a whole: every status webhook changes it, and lists filter it within an
    # organization. The rows in flight are indexed by ``message_queued_by_number`` and ``message_sending``.
    status = models.CharField(_("status"), max_length=10, choices=MessageStatus)
    # Unique by ``message_unique_wamid``: a constraint, not ``unique=True``, which on PostgreSQL
    # adds a second, ``LIKE`` index that no query uses and every send and status would update.
    wamid = models.CharField(_("WhatsApp message ID"), max_length=255, null=True, blank=True)
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
    # Dispatch: when a pump claimed the row (a lease: a row claimed but never started is queued
    # again when it runs out), and the earliest time it may go (backoff, pair rate, daily limit).
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    send_after = models.DateTimeField(_("not before"), null=True, blank=True)
    # Not indexed: nothing looks messages up by their author; deleting a user (rare) scans them.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # Indexed within an organization (``message_org_recent``), which is how every list reads it.
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("WhatsApp message")
        verbose_name_plural = _("WhatsApp messages")
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="message_org_recent"),
            models.Index(fields=["organization", "phone", "-created_at"], name="message_org_phone_recent"),
            models.Index(fields=["document", "-created_at"], name="message_document_recent"),
            # What dispatch pumps claim: the queued outbound rows of a number, oldest first.
            models.Index(
                fields=["phone_number", "id"],
                condition=Q(status=MessageStatus.QUEUED, direction=Direction.OUTBOUND),
                name="message_queued_by_number",
            ),
            # What the dispatch sweeper looks for: sends claimed but never started, or never confirmed.
            # Partial, so that a status webhook (sent, delivered, read) adds nothing to it.
            models.Index(
                fields=["sending_at"],
                condition=Q(status=MessageStatus.SENDING, direction=Direction.OUTBOUND),
                name="message_sending",
            ),
            # Recipients reached by an account in the last 24 h (the messaging limit), by number.
            models.Index(fields=["phone"], name="message_phone"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["wamid"], name="message_unique_wamid"),
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


class NotificationRequest(models.Model):
    """One accepted send request, remembered by its idempotency key.

    The same key with the same request answers with the messages of the first one and sends
    nothing again; the same key with a different request is refused. The key is unique per
    organization, so two requests racing with one key store one row (the second waits for the
    first's transaction and then reads its answer).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("idempotency key"), max_length=255)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    message_ids = models.JSONField(_("messages"), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("notification request")
        verbose_name_plural = _("notification requests")
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="notificationrequest_unique_key"),
        ]

    def __str__(self) -> str:
        return self.key


class BulkSend(models.Model):
    """One "Send → WhatsApp message" on many documents (or contacts) at once.

    The request only records what was asked (the ids, the module, the template, and for statements
    the period, fixed then so a task that runs after midnight sends the same one) and answers; a
    Celery task then checks each one, writes the messages with their credits in chunks, and
    records every skipped one with the reason. Progress is read from the messages themselves.
    When Meta restricts sending (131048) the bulk send is paused: its queued messages wait, held,
    until someone resumes it (:mod:`whatsapp.services.bulk_pause`).
    """

    class Target(models.TextChoices):
        DOCUMENTS = "documents", _("Documents")
        CONTACTS = "contacts", _("Contacts")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Queuing messages")
        DONE = "done", _("Queued")
        FAILED = "failed", _("Failed")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="whatsapp_bulk_sends")
    target = models.CharField(_("sent to"), max_length=10, choices=Target)
    module = models.CharField(_("module"), max_length=32)
    template = models.ForeignKey(
        "templates_mgmt.MessageTemplate", verbose_name=_("template"), on_delete=models.SET_NULL, null=True
    )
    target_ids = models.JSONField(_("selected ids"), default=list)
    statement_from = models.DateField(
        _("statement from"),
        null=True,
        blank=True,
        help_text=_("First day of the period every statement covers; empty unless the module sends statements."),
    )
    statement_to = models.DateField(
        _("statement to"),
        null=True,
        blank=True,
        help_text=_("Last day of that period, fixed when the bulk send started."),
    )
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.PENDING)
    total = models.PositiveIntegerField(_("selected"), default=0)
    sent = models.PositiveIntegerField(_("sent to"), default=0, help_text=_("Documents or contacts queued."))
    messages_queued = models.PositiveIntegerField(_("messages"), default=0)
    skipped = models.JSONField(
        _("skipped"),
        default=list,
        blank=True,
        help_text=_(
            "[{id, label, code, reason, reasons}] for every one not sent; reasons: the reason in each other "
            "language of the interface, by language code."
        ),
    )
    error = models.TextField(_("error"), blank=True)
    # Meta restricted sending (131048): the queued messages are held until someone resumes the send.
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    pause_reason = models.TextField(_("pause reason"), blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("bulk send")
        verbose_name_plural = _("bulk sends")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="bulksend_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.module} × {self.total} ({self.state})"


class BulkSendPart(models.Model):
    """A slice of a bulk send's selection, written by whichever worker claims it first.

    A large bulk send is cut into parts so that every free worker writes one at a time: the first
    task creates them and wakes helpers, and each claims pending parts (a conditional UPDATE) until
    none is left. A part whose worker died is put back by the sweeper; the chunks it wrote stay
    written, and the worker that takes it over skips their documents.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Queuing messages")
        DONE = "done", _("Queued")

    bulk = models.ForeignKey(BulkSend, on_delete=models.CASCADE, related_name="parts")
    index = models.PositiveIntegerField(_("part"))
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.PENDING)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["bulk", "index"]
        verbose_name = _("bulk send part")
        verbose_name_plural = _("bulk send parts")
        constraints = [models.UniqueConstraint(fields=["bulk", "index"], name="bulksendpart_unique_index")]

    def __str__(self) -> str:
        return f"{self.bulk_id} #{self.index} ({self.state})"


class MediaUpload(models.Model):
    """A file uploaded to Meta for sending, reused while Meta keeps it (a static attachment, or
    the same PDF sent to several people of one customer)."""

    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="media_uploads")
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    media_id = models.CharField(_("media ID"), max_length=64)
    mime_type = models.CharField(_("type"), max_length=100)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    size = models.PositiveIntegerField(_("size"), default=0)
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]
        verbose_name = _("media upload")
        verbose_name_plural = _("media uploads")
        constraints = [
            models.UniqueConstraint(fields=["phone_number", "sha256"], name="mediaupload_unique_file_per_number"),
        ]

    def __str__(self) -> str:
        return f"{self.filename or self.sha256[:12]} → {self.media_id}"


# --- Payment reminders by due date (whatsapp.services.reminders) -----------------------------------


def reminder_default_send_at() -> object:
    """09:00, the time of day reminders go out unless the organization chooses another."""
    import datetime

    return datetime.time(9, 0)


class ReminderRule(models.Model):
    """One automatic payment reminder of an organization: N days before an invoice's due date, on
    it, or N days after (Settings → WhatsApp → Reminders).

    An organization has several rules. Each sends, over WhatsApp, its template (the payment
    reminders module's default when empty) to every invoice whose due date it matches on the day
    the schedule runs, once per invoice (:class:`ReminderSent`), while the invoice still has a
    balance and its customer has WhatsApp enabled. ``enabled`` is the rule's WhatsApp switch.
    """

    class When(models.TextChoices):
        BEFORE = "before", _("before the due date")
        ON = "on", _("on the due date")
        AFTER = "after", _("after the due date")

    #: The farthest from the due date a rule may be.
    MAX_DAYS = 365

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="whatsapp_reminder_rules", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=100)
    days = models.PositiveSmallIntegerField(
        _("days"), default=0, help_text=_("How many days before or after the due date (0 on the due date itself).")
    )
    when = models.CharField(_("when"), max_length=6, choices=When, default=When.ON)
    enabled = models.BooleanField(_("send by WhatsApp"), default=True)
    template = models.ForeignKey(
        "templates_mgmt.MessageTemplate",
        verbose_name=_("message template"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("An approved template of Payment reminders; empty: the module's default template."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["organization", "pk"]
        verbose_name = _("payment reminder rule")
        verbose_name_plural = _("payment reminder rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(when="on", days=0) | (Q(when__in=["before", "after"]) & Q(days__gte=1, days__lte=365)),
                name="reminderrule_days_match_when",
                violation_error_message=_("Before or after the due date takes 1 to 365 days; on it, none."),
            ),
            models.UniqueConstraint(
                fields=["organization", "when", "days"],
                name="reminderrule_unique_offset",
                violation_error_message=_("Another reminder is already sent on that day."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from templates_mgmt.choices import Module, TemplateStatus

        errors: dict[str, list[str]] = {}
        if self.when == self.When.ON and self.days:
            errors["days"] = [_("A reminder on the due date is sent 0 days from it.")]
        elif self.when != self.When.ON and not 1 <= self.days <= self.MAX_DAYS:
            errors["days"] = [_("Enter from 1 to %(max)d days, or send it on the due date.") % {"max": self.MAX_DAYS}]
        template = self.template
        if template is not None:
            if template.organization_id != self.organization_id or template.module != Module.PAYMENT_REMINDERS:
                errors["template"] = [_("Choose a template of Payment reminders.")]
            elif template.status != TemplateStatus.APPROVED:
                errors["template"] = [
                    _("“%(name)s” isn't approved by WhatsApp (status: %(status)s).")
                    % {"name": template.name, "status": template.get_status_display()}
                ]
        if errors:
            raise ValidationError(errors)

    @property
    def offset_days(self) -> int:
        """Days from the due date to the day the reminder goes out (negative: before it)."""
        return {self.When.BEFORE: -self.days, self.When.AFTER: self.days}.get(self.when, 0)

    @property
    def description(self) -> str:
        """What the rule does, e.g. "3 days before the due date"."""
        from django.utils.translation import ngettext

        if self.when == self.When.ON:
            return str(self.When.ON.label)
        return ngettext("%(days)d day %(when)s", "%(days)d days %(when)s", self.days) % {
            "days": self.days,
            "when": self.When(self.when).label,
        }


class ReminderSchedule(models.Model):
    """Whether an organization's reminders go out automatically, and at what time of its day.

    Saving it (``reminder_schedule_update``) creates or updates the organization's
    django-celery-beat ``PeriodicTask``: a daily crontab at ``send_at`` in the organization's time
    zone that runs ``reminders_run_task`` with the organization's id. The task stays editable (and
    can be paused) in Django admin → Periodic tasks. The last run's date and counts are kept here
    for the settings page.
    """

    organization = models.OneToOneField(
        Organization,
        on_delete=models.CASCADE,
        related_name="whatsapp_reminder_schedule",
        verbose_name=_("organization"),
    )
    enabled = models.BooleanField(_("reminders based on due date"), default=False)
    send_at = models.TimeField(
        _("time of day"), default=reminder_default_send_at, help_text=_("In the organization's time zone.")
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        verbose_name=_("periodic task"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    last_run_on = models.DateField(_("last run for"), null=True, blank=True, help_text=_("The day it covered."))
    last_run_counts = models.JSONField(_("last run"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment reminder schedule")
        verbose_name_plural = _("payment reminder schedules")

    def __str__(self) -> str:
        return f"{self.organization} · {self.send_at:%H:%M}"


class ReminderSent(models.Model):
    """That one reminder rule has dealt with one invoice: sent it, or skipped it with the reason.

    The row is written before the messages, in the same transaction, and is unique per rule and
    invoice: a second run of the schedule, or two workers at once, finds it and sends nothing. A
    skipped reminder (WhatsApp inactive, too few credits, no valid number…) keeps the refusal so
    the accountant sees why; later runs try it again only when an administrator can fix the
    refusal for the whole organization (``whatsapp.services.reminders.RETRIED_CODES``).
    """

    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", verbose_name=_("organization")
    )
    rule = models.ForeignKey(ReminderRule, on_delete=models.CASCADE, related_name="sent", verbose_name=_("rule"))
    document = models.ForeignKey(
        Document, on_delete=models.CASCADE, related_name="whatsapp_reminders", verbose_name=_("invoice")
    )
    run_on = models.DateField(_("for the day"))
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome, default=Outcome.SENT)
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("message")
    )
    message_count = models.PositiveSmallIntegerField(_("messages"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("payment reminder sent")
        verbose_name_plural = _("payment reminders sent")
        constraints = [
            models.UniqueConstraint(fields=["rule", "document"], name="remindersent_once_per_rule_invoice"),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="remindersent_org_recent")]

    def __str__(self) -> str:
        return f"{self.rule} · {self.document} ({self.outcome})"
