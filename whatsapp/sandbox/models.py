"""What the sandbox remembers in place of Meta: accounts, numbers, templates, media, messages.

Nothing here points at the hub's tables: the sandbox is another party on the wire, and the ids
it hands out (WABA, phone number, template, media, wamid) are its own, as Meta's are.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import (
    CodeVerificationStatus,
    DeliveryState,
    Direction,
    FaultMode,
    MediaOrigin,
    MessageStatus,
    MessagingLimitTier,
    ParameterFormat,
    TemplateCategory,
    TemplateStatus,
    ThroughputLevel,
    WebhookKind,
)


class SandboxBusinessAccount(models.Model):
    """A WhatsApp Business Account (WABA) as the sandbox's Meta knows it.

    Holds the app that manages it and the one access token that may act on it (a system-user
    token at Meta). ``subscribed`` mirrors ``POST /{waba_id}/subscribed_apps``: like Meta, the
    sandbox sends this WABA's webhooks only while the app is subscribed, to
    ``override_callback_uri`` when one was given and to ``WHATSAPP_SANDBOX_WEBHOOK_URL`` otherwise.
    """

    waba_id = models.CharField(_("WABA id"), max_length=32, unique=True)
    app_id = models.CharField(_("app id"), max_length=32, db_index=True)
    access_token = models.CharField(_("access token"), max_length=255, unique=True)
    name = models.CharField(_("name"), max_length=200)
    subscribed = models.BooleanField(
        _("app subscribed"), default=False, help_text=_("Webhooks are sent only while the app is subscribed.")
    )
    override_callback_uri = models.URLField(_("override callback URL"), max_length=500, blank=True)
    verify_token = models.CharField(_("verify token"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name", "waba_id"]
        verbose_name = _("sandbox business account")
        verbose_name_plural = _("sandbox business accounts")

    def __str__(self) -> str:
        return f"{self.name} ({self.waba_id})"


class SandboxPhoneNumber(models.Model):
    """A business phone number of a sandbox WABA, with its verification and registration state.

    ``otp_code`` holds the code of the last ``request_code`` (what Meta would send by SMS); the
    sandbox page shows it. Sending is only possible from a verified, registered number, as at Meta.
    ``throughput_level`` sets the number's cap on messages a second (see :mod:`.limits`);
    ``messaging_limit_tier`` is only reported, not enforced.
    """

    account = models.ForeignKey(
        SandboxBusinessAccount, on_delete=models.CASCADE, related_name="phone_numbers", verbose_name=_("account")
    )
    phone_number_id = models.CharField(_("phone number id"), max_length=32, unique=True)
    display_phone_number = models.CharField(_("display phone number"), max_length=32)
    verified_name = models.CharField(_("verified name"), max_length=200)
    code_verification_status = models.CharField(
        _("code verification status"),
        max_length=16,
        choices=CodeVerificationStatus.choices,
        default=CodeVerificationStatus.NOT_VERIFIED,
    )
    quality_rating = models.CharField(_("quality rating"), max_length=16, default="GREEN")
    name_status = models.CharField(_("name status"), max_length=32, default="APPROVED")
    throughput_level = models.CharField(
        _("throughput level"),
        max_length=16,
        choices=ThroughputLevel.choices,
        default=ThroughputLevel.STANDARD,
        help_text=_("Sends a second above which the sandbox answers 130429: 80, or 1,000 when high."),
    )
    messaging_limit_tier = models.CharField(
        _("messaging limit"),
        max_length=32,
        choices=MessagingLimitTier.choices,
        default=MessagingLimitTier.TIER_2K,
        help_text=_("Reported as whatsapp_business_manager_messaging_limit; the sandbox does not enforce it."),
    )
    registered = models.BooleanField(_("registered"), default=False)
    pin = models.CharField(_("two-step verification PIN"), max_length=6, blank=True)
    otp_code = models.CharField(_("pending verification code"), max_length=6, blank=True)
    otp_method = models.CharField(_("code method"), max_length=8, blank=True)
    otp_requested_at = models.DateTimeField(_("code requested"), null=True, blank=True)

    class Meta:
        ordering = ["account", "display_phone_number"]
        verbose_name = _("sandbox phone number")
        verbose_name_plural = _("sandbox phone numbers")

    def __str__(self) -> str:
        return f"{self.display_phone_number} ({self.phone_number_id})"

    @property
    def digits(self) -> str:
        """The number as webhooks' ``metadata.display_phone_number`` carries it: digits only."""
        return "".join(ch for ch in self.display_phone_number if ch.isdigit())

    @property
    def is_verified(self) -> bool:
        return self.code_verification_status == CodeVerificationStatus.VERIFIED


class SandboxTemplate(models.Model):
    """A message template (one name × language) submitted to the sandbox's review.

    ``revision`` grows with each edit, so a review decided for older content is dropped. Deleted
    templates stay as ``DELETED`` rows: Meta refuses the same name and language for 30 days.
    """

    account = models.ForeignKey(
        SandboxBusinessAccount, on_delete=models.CASCADE, related_name="templates", verbose_name=_("account")
    )
    template_id = models.CharField(_("template id"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=512)
    language = models.CharField(_("language"), max_length=16)
    category = models.CharField(_("category"), max_length=16, choices=TemplateCategory.choices)
    parameter_format = models.CharField(
        _("parameter format"), max_length=16, choices=ParameterFormat.choices, default=ParameterFormat.POSITIONAL
    )
    components = models.JSONField(_("components"), default=list)
    status = models.CharField(
        _("status"), max_length=16, choices=TemplateStatus.choices, default=TemplateStatus.PENDING
    )
    rejected_reason = models.CharField(_("rejected reason"), max_length=32, default="NONE")
    revision = models.PositiveIntegerField(_("revision"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("sandbox template")
        verbose_name_plural = _("sandbox templates")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name", "language"],
                condition=~Q(status="DELETED"),
                name="sandbox_template_unique_live_name_language",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}] {self.status}"


class SandboxMedia(models.Model):
    """A media object: uploaded by the business for sending, or attached by a customer in the phone simulator.

    The bytes live in the row: the sandbox is self-contained and its files are small demo PDFs.
    """

    media_id = models.CharField(_("media id"), max_length=32, unique=True)
    account = models.ForeignKey(
        SandboxBusinessAccount, on_delete=models.CASCADE, related_name="media", verbose_name=_("account")
    )
    phone_number = models.ForeignKey(
        SandboxPhoneNumber,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="media",
        verbose_name=_("phone number"),
    )
    origin = models.CharField(_("origin"), max_length=16, choices=MediaOrigin.choices, default=MediaOrigin.UPLOADED)
    content = models.BinaryField(_("content"))
    mime_type = models.CharField(_("MIME type"), max_length=128)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    file_size = models.PositiveBigIntegerField(_("size"))
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("sandbox media")
        verbose_name_plural = _("sandbox media")

    def __str__(self) -> str:
        return f"{self.media_id} ({self.mime_type}, {self.file_size} B)"


class SandboxUploadSession(models.Model):
    """A Resumable Upload API session (``POST /{app_id}/uploads``) and, once the bytes came, its handle."""

    account = models.ForeignKey(
        SandboxBusinessAccount, on_delete=models.CASCADE, related_name="upload_sessions", verbose_name=_("account")
    )
    upload_id = models.CharField(_("upload id"), max_length=64, unique=True)
    signature = models.CharField(_("signature"), max_length=64)
    file_name = models.CharField(_("file name"), max_length=255)
    file_length = models.PositiveBigIntegerField(_("file length"))
    file_type = models.CharField(_("file type"), max_length=128)
    content = models.BinaryField(_("content"), null=True, blank=True)
    handle = models.CharField(_("file handle"), max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("sandbox upload session")
        verbose_name_plural = _("sandbox upload sessions")

    def __str__(self) -> str:
        return self.upload_id


class SandboxContact(models.Model):
    """A WhatsApp user who wrote to a sandbox number, by ``wa_id``, with the profile name its webhooks carry."""

    wa_id = models.CharField(_("WhatsApp id"), max_length=32, unique=True)
    profile_name = models.CharField(_("profile name"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["wa_id"]
        verbose_name = _("sandbox contact")
        verbose_name_plural = _("sandbox contacts")

    def __str__(self) -> str:
        return self.profile_name or self.wa_id

    @property
    def display_name(self) -> str:
        return self.profile_name or f"+{self.wa_id}"


class SandboxMessage(models.Model):
    """One message between a business number and a customer, in either direction.

    Outbound rows keep the request as received and what the customer sees (``rendered``: the
    template with its parameters substituted, or the text / attachment). ``status`` only moves
    forward, as the status webhooks are sent; ``failed`` is terminal. ``status_due_at`` says when
    the next status webhook is due (empty once the last one left): the statuses are not rows of
    their own until they leave (see :mod:`.delivery`). An outbound row's ``created_at`` is the
    instant the send was accepted, on the clock the throughput cap counts with
    (:func:`.limits.clock`), so the per-second figures of the stats agree with the cap.
    """

    wamid = models.CharField(_("wamid"), max_length=128)
    # Every accepted send inserts a row and each of its statuses updates it: the foreign keys have
    # no database constraint (whose check locked the number's and the template's rows on every
    # send, a multixact under concurrency) and only the indexes its reads need; deleting a number,
    # template or file still reaches its messages through the ORM's on_delete.
    phone_number = models.ForeignKey(
        SandboxPhoneNumber,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("phone number"),
        db_index=False,
        db_constraint=False,
    )
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices)
    recipient = models.CharField(
        _("customer"), max_length=64, help_text=_("The customer's wa_id (or the invalid 'to' as sent).")
    )
    type = models.CharField(_("type"), max_length=16)
    request = models.JSONField(_("request"), default=dict, blank=True)
    template = models.ForeignKey(
        SandboxTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("template"),
        db_index=False,
        db_constraint=False,
    )
    template_name = models.CharField(_("template name"), max_length=512, blank=True)
    template_language = models.CharField(_("template language"), max_length=16, blank=True)
    rendered = models.JSONField(_("as the customer sees it"), default=dict, blank=True)
    media = models.ForeignKey(
        SandboxMedia,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("attachment"),
        db_index=False,
        db_constraint=False,
    )
    biz_opaque_callback_data = models.TextField(_("callback data"), blank=True)
    context_wamid = models.CharField(_("in reply to"), max_length=128, blank=True)
    pricing = models.JSONField(_("pricing"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=MessageStatus.choices)
    error_code = models.PositiveIntegerField(_("error code"), null=True, blank=True)
    status_due_at = models.DateTimeField(
        _("next status due"), null=True, blank=True, help_text=_("When the next status webhook is due.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("sandbox message")
        verbose_name_plural = _("sandbox messages")
        constraints = [
            # A constraint rather than unique=True: no second, pattern-matching index on PostgreSQL.
            models.UniqueConstraint(fields=["wamid"], name="sandbox_message_unique_wamid"),
        ]
        indexes = [
            models.Index(fields=["recipient", "phone_number", "direction"], name="sandbox_msg_thread_idx"),
            # Only messages with a status still to send: the sender's claim reads this, not the table.
            models.Index(
                fields=["status_due_at"], condition=Q(status_due_at__isnull=False), name="sandbox_msg_status_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} {self.recipient} {self.status}"

    @property
    def has_thread(self) -> bool:
        """Whether the customer is a WhatsApp user (the phone simulator has a chat), not an invalid ``to``."""
        return self.recipient.isdigit()


class SandboxFault(models.Model):
    """A fault to inject into sends: an error code (or ``500`` / ``timeout``) for a number and/or recipient.

    Blank ``phone_number_id`` or ``recipient`` match any. ``remaining`` counts the sends still to
    fail; empty means until removed. ``mode`` says whether Meta's answer is the HTTP error or an
    accepted send followed by a ``failed`` status webhook (``500`` and ``timeout`` are always sync).
    """

    phone_number_id = models.CharField(_("phone number id"), max_length=32, blank=True)
    recipient = models.CharField(_("recipient"), max_length=32, blank=True)
    code = models.CharField(_("code"), max_length=16, help_text=_("A Meta error code, '500' or 'timeout'."))
    mode = models.CharField(_("mode"), max_length=8, choices=FaultMode.choices, default=FaultMode.SYNC)
    remaining = models.PositiveIntegerField(_("remaining"), null=True, blank=True)
    hits = models.PositiveIntegerField(_("hits"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = _("sandbox fault")
        verbose_name_plural = _("sandbox faults")
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=["sync", "async"]), name="sandbox_fault_mode_valid"),
        ]

    def __str__(self) -> str:
        target = " / ".join(part for part in (self.phone_number_id, self.recipient) if part) or "any"
        return f"{self.code} ({self.mode}) for {target}"


class SandboxSettings(models.Model):
    """The sandbox's knobs (one row): request latency, status webhook delays and batching, review delay, timeout.

    Kept in the database so the page, the control API and every process agree.
    """

    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    sent_delay = models.FloatField(_("'sent' after (s)"), default=0.3)
    delivered_delay = models.FloatField(_("'delivered' after (s)"), default=0.6)
    read_delay = models.FloatField(_("'read' after (s)"), default=1.0)
    template_review_delay = models.FloatField(_("template review after (s)"), default=2.0)
    timeout_seconds = models.FloatField(
        _("'timeout' fault sleeps (s)"),
        default=25.0,
        help_text=_("Longer than the client's 20 s read timeout: the send is accepted after the client gave up."),
    )
    status_batch_ms = models.PositiveIntegerField(
        _("batch status webhooks (ms)"),
        default=0,
        help_text=_(
            "0: one webhook per status. Otherwise the statuses of a business account falling due within the "
            "same window of this many milliseconds are sent as one webhook, as Meta does under load."
        ),
    )

    class Meta:
        verbose_name = _("sandbox settings")
        verbose_name_plural = _("sandbox settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="sandbox_settings_singleton"),
            models.CheckConstraint(
                condition=Q(sent_delay__gte=0, delivered_delay__gte=0, read_delay__gte=0, template_review_delay__gte=0)
                & Q(timeout_seconds__gte=0),
                name="sandbox_settings_delays_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return "Sandbox settings"


class SandboxWebhookDelivery(models.Model):
    """One webhook the sandbox owes the hub, saved before it is sent, with the result of each attempt.

    ``payload`` is the exact body that is signed and POSTed. Processing a row first applies what
    the event means on the sandbox's side (a template becomes ``APPROVED``; ``applied``), then
    POSTs it; failed POSTs are retried with backoff, as Meta does. Message statuses are written
    as they leave, already applied: one row per status, or per batch of a WABA's statuses
    (``message`` empty, ``event`` the statuses it carries).
    """

    kind = models.CharField(_("kind"), max_length=20, choices=WebhookKind.choices)
    event = models.CharField(_("event"), max_length=32)
    account = models.ForeignKey(
        SandboxBusinessAccount, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("account")
    )
    message = models.ForeignKey(
        SandboxMessage,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("message"),
    )
    template = models.ForeignKey(
        SandboxTemplate,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("template"),
    )
    template_revision = models.PositiveIntegerField(_("template revision"), null=True, blank=True)
    payload = models.TextField(_("payload"))
    state = models.CharField(_("state"), max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    applied = models.BooleanField(_("applied"), default=False)
    due_at = models.DateTimeField(_("due"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    url = models.CharField(_("URL"), max_length=500, blank=True)
    last_status_code = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("sandbox webhook delivery")
        verbose_name_plural = _("sandbox webhook deliveries")
        indexes = [models.Index(fields=["state", "due_at"], name="sandbox_delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.event} ({self.state})"


class SandboxPairBucket(models.Model):
    """The pair rate of one (business number, customer): a token bucket, as Meta's 131056 limit behaves.

    Meta allows one message every 6 seconds to the same customer on average, with bursts of up to
    45 that must be paid back. ``tokens`` is what was left at ``refilled_at`` (seconds since the
    epoch on :func:`.limits.clock`); a send takes one token, and tokens come back one per 6 s up
    to 45. ``granted`` says whether the last send was allowed: the row is written by one
    ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (:func:`.limits.pair_take`), atomic across processes.
    """

    # Taken with every send: no database constraint (see SandboxMessage.phone_number), and the
    # unique constraint's index serves lookups by number.
    phone_number = models.ForeignKey(
        SandboxPhoneNumber,
        on_delete=models.CASCADE,
        related_name="pair_buckets",
        verbose_name=_("phone number"),
        db_index=False,
        db_constraint=False,
    )
    recipient = models.CharField(_("customer"), max_length=64)
    tokens = models.FloatField(_("tokens left"))
    refilled_at = models.FloatField(_("refilled at (epoch seconds)"))
    granted = models.BooleanField(_("last send allowed"))

    class Meta:
        ordering = ["phone_number", "recipient"]
        verbose_name = _("sandbox pair rate bucket")
        verbose_name_plural = _("sandbox pair rate buckets")
        constraints = [
            models.UniqueConstraint(fields=["phone_number", "recipient"], name="sandbox_pair_bucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number_id} → {self.recipient}: {self.tokens:.2f}"


class SandboxThroughputCount(models.Model):
    """How many sends of a number the sandbox accepted in one wall-clock second, for Meta's throughput cap (130429).

    ``second`` is whole seconds since the epoch on :func:`.limits.clock`. One upsert per send
    counts it, and refuses past the number's cap without counting (:func:`.limits.throughput_take`),
    atomic across processes; a send refused later gives its place back. Only the current
    second's row is read; a reset of the sandbox removes them all.
    """

    # Counted with every send: no database constraint (see SandboxMessage.phone_number), and the
    # unique constraint's index serves lookups by number.
    phone_number = models.ForeignKey(
        SandboxPhoneNumber,
        on_delete=models.CASCADE,
        related_name="throughput_counts",
        verbose_name=_("phone number"),
        db_index=False,
        db_constraint=False,
    )
    second = models.BigIntegerField(_("second (epoch)"))
    accepted = models.PositiveIntegerField(_("sends accepted"))

    class Meta:
        ordering = ["phone_number", "second"]
        verbose_name = _("sandbox throughput count")
        verbose_name_plural = _("sandbox throughput counts")
        constraints = [
            models.UniqueConstraint(fields=["phone_number", "second"], name="sandbox_throughput_unique_second"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number_id} @ {self.second}: {self.accepted}"


class SandboxRefusalCount(models.Model):
    """How many sends of a number the sandbox refused with one code (130429, 131056), for the stats.

    Incremented by one upsert per refusal; accepted sends are counted from the messages themselves.
    """

    phone_number = models.ForeignKey(
        SandboxPhoneNumber, on_delete=models.CASCADE, related_name="refusal_counts", verbose_name=_("phone number")
    )
    code = models.PositiveIntegerField(_("error code"))
    total = models.PositiveIntegerField(_("refusals"), default=0)

    class Meta:
        ordering = ["phone_number", "code"]
        verbose_name = _("sandbox refusal count")
        verbose_name_plural = _("sandbox refusal counts")
        constraints = [
            models.UniqueConstraint(fields=["phone_number", "code"], name="sandbox_refusal_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number_id} {self.code}: {self.total}"
