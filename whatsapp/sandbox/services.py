"""Writes of the sandbox: what Meta does when the business calls it, or a customer writes.

Each function takes keyword arguments, checks as Meta checks (raising
:class:`~.errors.GraphError` with Meta's code), changes the sandbox's state, and schedules the
webhooks that follow (:func:`.delivery.webhook_schedule`). The Graph views are thin wrappers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Field
from django.utils import timezone

from . import limits, payloads, selectors
from .choices import (
    CodeVerificationStatus,
    Direction,
    FaultMode,
    MediaOrigin,
    MessageStatus,
    MessagingLimitTier,
    TemplateCategory,
    TemplateStatus,
    ThroughputLevel,
    WebhookKind,
)
from .delivery import statuses_schedule, webhook_schedule
from .errors import (
    FAULT_CODES,
    SYNC_ONLY_FAULTS,
    GraphError,
    ServerErrorPage,
    invalid_parameter,
    template_creation_error,
)
from .models import (
    SandboxBusinessAccount,
    SandboxContact,
    SandboxFault,
    SandboxMedia,
    SandboxMessage,
    SandboxPairBucket,
    SandboxPhoneNumber,
    SandboxRefusalCount,
    SandboxSettings,
    SandboxTemplate,
    SandboxThroughputCount,
    SandboxUploadSession,
    SandboxWebhookDelivery,
)
from .process_cache import forget_all
from .validation import clean_template_definition, render_template_send, review_verdict

MEDIA_TYPES: Final = ("image", "document", "video", "audio", "sticker")
OTHER_TYPES: Final = ("interactive", "location", "contacts", "reaction")
#: MIME types the Cloud API accepts per media kind, with the size limit in bytes.
MEDIA_LIMITS: Final = {
    "image": (("image/jpeg", "image/png"), 5 * 1024 * 1024),
    "video": (("video/mp4", "video/3gpp"), 16 * 1024 * 1024),
    "audio": (("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"), 16 * 1024 * 1024),
    "sticker": (("image/webp",), 500 * 1024),
    "document": (
        (
            "text/plain",
            "application/pdf",
            "application/vnd.ms-powerpoint",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        100 * 1024 * 1024,
    ),
}
#: What the Resumable Upload API takes for template header samples.
UPLOAD_TYPES: Final = ("application/pdf", "image/jpeg", "image/jpg", "image/png", "video/mp4")
#: Meta refuses a deleted template's name and language for four weeks.
DELETED_NAME_HOLD: Final = timedelta(days=30)
MAX_CALLBACK_DATA: Final = 512
MAX_TEXT: Final = 4096
_NOT_DIGITS = re.compile(r"[\s\-().]")


# --- Ids ----------------------------------------------------------------------------------------


def new_object_id() -> str:
    """A Graph object id: 15 to 16 digits, like Meta's."""
    return str(10**14 + secrets.randbelow(9 * 10**15))


def new_wamid(wa_id: str) -> str:
    """A message id shaped like Meta's (``wamid.`` + base64 of the customer and random bytes)."""
    digits = wa_id[-15:] if wa_id.isdigit() else "0"
    raw = b"\x18" + bytes([len(digits)]) + digits.encode() + b"\x15\x02\x00\x11\x18\x12"
    return "wamid." + base64.b64encode(raw + secrets.token_hex(9).upper().encode() + b"\x00").decode()


# --- Accounts and numbers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberSpec:
    """A phone number for :func:`business_account_setup`."""

    phone_number_id: str
    display_phone_number: str
    verified: bool


def business_account_setup(
    *,
    waba_id: str,
    app_id: str,
    access_token: str,
    name: str,
    verified_name: str,
    numbers: list[NumberSpec],
    subscribed: bool = True,
) -> SandboxBusinessAccount:
    """Create (or update) a sandbox WABA and its numbers; idempotent.

    An existing number keeps its state (a code verified on the page stays verified); new numbers
    start registered when verified, unregistered otherwise.
    """
    with transaction.atomic():
        account, created = SandboxBusinessAccount.objects.update_or_create(
            waba_id=waba_id, defaults={"app_id": app_id, "access_token": access_token, "name": name}
        )
        if created and subscribed:
            account.subscribed = True
            account.save(update_fields=["subscribed"])
        for spec in numbers:
            SandboxPhoneNumber.objects.get_or_create(
                phone_number_id=spec.phone_number_id,
                defaults={
                    "account": account,
                    "display_phone_number": spec.display_phone_number,
                    "verified_name": verified_name,
                    "code_verification_status": CodeVerificationStatus.VERIFIED
                    if spec.verified
                    else CodeVerificationStatus.NOT_VERIFIED,
                    "registered": spec.verified,
                },
            )
    forget_all()
    return account


#: Meta's sample template, present (approved) in every new WhatsApp Business Account.
SAMPLE_TEMPLATE: Final = {
    "name": "hello_world",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
        {
            "type": "BODY",
            "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp "
            "message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us.",
        },
        {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
    ],
}


def sample_template_ensure(*, account: SandboxBusinessAccount) -> SandboxTemplate:
    """Meta's ``hello_world`` sample, approved, unless the account already has (or deleted) it."""
    template = SandboxTemplate.objects.filter(
        account=account, name=SAMPLE_TEMPLATE["name"], language=SAMPLE_TEMPLATE["language"]
    ).first()
    if template is None:
        template = SandboxTemplate.objects.create(
            account=account, template_id=new_object_id(), status=TemplateStatus.APPROVED, **SAMPLE_TEMPLATE
        )
        forget_all()
    return template


def account_subscribe(
    *, account: SandboxBusinessAccount, override_callback_uri: str = "", verify_token: str = ""
) -> None:
    """Subscribe the app to the WABA's webhooks; an override callback is verified first, as Meta does."""
    if bool(override_callback_uri) != bool(verify_token):
        raise invalid_parameter("override_callback_uri and verify_token must be given together.")
    if override_callback_uri:
        _verify_callback(override_callback_uri, verify_token)
    account.subscribed = True
    account.override_callback_uri = override_callback_uri
    account.verify_token = verify_token
    account.save(update_fields=["subscribed", "override_callback_uri", "verify_token"])
    forget_all()


def account_unsubscribe(*, account: SandboxBusinessAccount) -> None:
    account.subscribed = False
    account.override_callback_uri = ""
    account.verify_token = ""
    account.save(update_fields=["subscribed", "override_callback_uri", "verify_token"])
    forget_all()


def _verify_callback(url: str, verify_token: str) -> None:
    """Meta's subscription check: GET with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge``.

    The callback must answer 200 with the challenge as its body.
    """
    if not url.startswith(("http://", "https://")):
        raise invalid_parameter("override_callback_uri must be an http(s) URL.")
    challenge = str(secrets.randbelow(10**9))
    query = urllib.parse.urlencode(
        {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
    )
    target = f"{url}{'&' if '?' in url else '?'}{query}"
    try:
        with urllib.request.urlopen(target, timeout=10) as response:  # noqa: S310 (scheme checked above)
            status, body = response.status, response.read(1024).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise GraphError(
            2200, message=f"Callback verification failed with the following errors: {type(exc).__name__}"
        ) from exc
    if status != 200 or body.strip() != challenge:
        raise GraphError(
            2200,
            message=(
                "Callback verification failed with the following errors: "
                f"HTTP Status Code = {status}; HTTP Message = the response didn't echo hub.challenge"
            ),
        )


def phone_request_code(*, phone: SandboxPhoneNumber, code_method: str, language: str) -> str:
    """Store a new 6-digit code, "sent" by SMS or voice call: the sandbox page shows it."""
    if code_method not in {"SMS", "VOICE"}:
        raise invalid_parameter("Param code_method must be one of {SMS, VOICE}.")
    if not language:
        raise invalid_parameter("The parameter language is required.")
    phone.otp_code = f"{secrets.randbelow(10**6):06d}"
    phone.otp_method = code_method
    phone.otp_requested_at = timezone.now()
    phone.save(update_fields=["otp_code", "otp_method", "otp_requested_at"])
    return phone.otp_code


def phone_verify_code(*, phone: SandboxPhoneNumber, code: str) -> None:
    if not code:
        raise invalid_parameter("The parameter code is required.")
    if not phone.otp_code or not secrets.compare_digest(phone.otp_code, code):
        raise GraphError(136025)
    phone.otp_code = ""
    phone.code_verification_status = CodeVerificationStatus.VERIFIED
    phone.save(update_fields=["otp_code", "code_verification_status"])
    forget_all()


def phone_register(*, phone: SandboxPhoneNumber, pin: Any) -> None:
    """Register the number on the Cloud API; the first PIN sets two-step verification, later ones must match it."""
    if not isinstance(pin, str) or not re.fullmatch(r"\d{6}", pin):
        raise invalid_parameter("The parameter pin is required and must be 6 digits.")
    if not phone.is_verified:
        raise GraphError(133006)
    if phone.pin and not secrets.compare_digest(phone.pin, pin):
        raise GraphError(133005)
    phone.pin = pin
    phone.registered = True
    phone.save(update_fields=["pin", "registered"])
    forget_all()


def phone_deregister(*, phone: SandboxPhoneNumber) -> None:
    phone.registered = False
    phone.save(update_fields=["registered"])
    forget_all()


# --- Media --------------------------------------------------------------------------------------


def media_kind(mime_type: str) -> str | None:
    for kind, (types, _limit) in MEDIA_LIMITS.items():
        if mime_type in types and kind != "sticker":
            return kind
    return "sticker" if mime_type == "image/webp" else None


def media_upload(
    *,
    account: SandboxBusinessAccount,
    phone: SandboxPhoneNumber | None,
    content: bytes,
    mime_type: str,
    filename: str,
    origin: str = MediaOrigin.UPLOADED,
) -> SandboxMedia:
    """Store a file as a media object, with Meta's type and size checks."""
    kind = media_kind(mime_type)
    if kind is None:
        accepted = ", ".join(t for types, _ in MEDIA_LIMITS.values() for t in types)
        raise invalid_parameter(f"Param file must be a file with one of the following types: {accepted}.")
    limit = MEDIA_LIMITS[kind][1]
    if not content:
        raise invalid_parameter("The parameter file is required.")
    if len(content) > limit:
        raise GraphError(131053, details=f"Media file size too big. Max file size for {kind} is {limit} bytes.")
    return SandboxMedia.objects.create(
        media_id=new_object_id(),
        account=account,
        phone_number=phone,
        origin=origin,
        content=content,
        mime_type=mime_type,
        sha256=hashlib.sha256(content).hexdigest(),
        file_size=len(content),
        filename=filename[:255],
    )


def media_delete(*, media: SandboxMedia) -> None:
    media.deleted_at = timezone.now()
    media.save(update_fields=["deleted_at"])


def upload_session_create(
    *, account: SandboxBusinessAccount, file_name: str, file_length: str, file_type: str
) -> SandboxUploadSession:
    """Open a Resumable Upload session on the app (``POST /{app_id}/uploads``)."""
    if not file_name:
        raise invalid_parameter("The parameter file_name is required.")
    if not str(file_length).isdigit() or int(file_length) <= 0:
        raise invalid_parameter("The parameter file_length is required and must be a positive integer.")
    if file_type not in UPLOAD_TYPES:
        raise invalid_parameter(f"Param file_type must be one of {{{', '.join(UPLOAD_TYPES)}}}.")
    return SandboxUploadSession.objects.create(
        account=account,
        upload_id="upload:" + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("="),
        signature=secrets.token_urlsafe(24),
        file_name=file_name,
        file_length=int(file_length),
        file_type=file_type,
    )


def upload_session_write(*, session: SandboxUploadSession, content: bytes, file_offset: str | None) -> str:
    """Receive the bytes of a session from offset 0 and return the file handle for ``header_handle``."""
    if file_offset != "0":
        raise invalid_parameter("The header file_offset is required; this sandbox takes the whole file from offset 0.")
    if len(content) != session.file_length:
        raise invalid_parameter(
            f"The upload is {len(content)} bytes but the session was opened for file_length={session.file_length}."
        )
    if not session.handle:
        encoded_type = base64.b64encode(session.file_type.encode()).decode()
        session.handle = f"4::{encoded_type}:{secrets.token_urlsafe(48)}"
    session.content = content
    session.save(update_fields=["content", "handle"])
    return session.handle


# --- Templates ----------------------------------------------------------------------------------


def template_create(*, account: SandboxBusinessAccount, data: Mapping[str, Any]) -> SandboxTemplate:
    """Submit a template: checked now, reviewed after the configured delay (approved or rejected by webhook)."""
    cleaned = clean_template_definition(data)
    name, language = cleaned["name"], cleaned["language"]
    same = SandboxTemplate.objects.filter(account=account, name=name, language=language)
    if same.exclude(status=TemplateStatus.DELETED).exists():
        raise _duplicate_template(name, language)
    if same.filter(status=TemplateStatus.DELETED, deleted_at__gte=timezone.now() - DELETED_NAME_HOLD).exists():
        raise template_creation_error(
            2388023,
            "Message Template Language Is Being Deleted",
            f"New {language} content can't be added while the existing {language} content is being deleted. "
            "Try again in 4 weeks, or consider creating a new message template.",
        )
    try:
        with transaction.atomic():
            template = SandboxTemplate.objects.create(account=account, template_id=new_object_id(), **cleaned)
    except IntegrityError as exc:  # a concurrent create of the same name and language
        raise _duplicate_template(name, language) from exc
    forget_all()
    template_review_schedule(template=template)
    return template


def _duplicate_template(name: str, language: str) -> GraphError:
    return template_creation_error(
        2388024,
        "Content in this language already exists",
        f"The template name \u201c{name}\u201d already has content in {language}. Edit the existing template, or "
        "choose a different name or language.",
    )


def template_edit(*, template: SandboxTemplate, data: Mapping[str, Any]) -> None:
    """Change components and/or category: the template goes back to review."""
    if template.status not in {TemplateStatus.APPROVED, TemplateStatus.REJECTED, TemplateStatus.PAUSED}:
        raise template_creation_error(
            None,
            "Message template can't be edited",
            "Only templates that are approved, rejected or paused can be edited.",
        )
    cleaned = clean_template_definition(
        {"parameter_format": template.parameter_format, **data, "category": data.get("category")}, require_all=False
    )
    if "components" not in cleaned and "category" not in cleaned:
        raise invalid_parameter("Give components and/or category to edit the template.")
    for field in ("components", "category", "parameter_format"):
        if field in cleaned:
            setattr(template, field, cleaned[field])
    template.status = TemplateStatus.PENDING
    template.rejected_reason = "NONE"
    template.revision = F("revision") + 1
    template.save(
        update_fields=[
            "components",
            "category",
            "parameter_format",
            "status",
            "rejected_reason",
            "revision",
            "updated_at",
        ]
    )
    template.refresh_from_db()
    forget_all()
    template_review_schedule(template=template)


def template_review_schedule(*, template: SandboxTemplate) -> SandboxWebhookDelivery:
    """Decide the review now (see :func:`.validation.review_verdict`) and announce it after the review delay."""
    event, reason = review_verdict(template.name, template.components)
    return webhook_schedule(
        account=template.account,
        kind=WebhookKind.TEMPLATE_STATUS,
        event=event,
        payload=payloads.template_status(template, event, reason),
        delay=selectors.sandbox_settings_get().template_review_delay,
        template=template,
    )


def template_delete(*, account: SandboxBusinessAccount, name: str, hsm_id: str | None = None) -> int:
    """Delete every language of ``name``, or only the template ``hsm_id`` (which must be called ``name``)."""
    if not name:
        raise invalid_parameter("The parameter name is required.")
    targets = SandboxTemplate.objects.filter(account=account, name=name).exclude(status=TemplateStatus.DELETED)
    if hsm_id:
        targets = targets.filter(template_id=hsm_id)
    deleted = targets.update(status=TemplateStatus.DELETED, deleted_at=timezone.now(), updated_at=timezone.now())
    forget_all()
    if not deleted:
        raise template_creation_error(None, "Message template not found", f"No template named {name!r} was found.")
    return deleted


# --- Faults and settings ------------------------------------------------------------------------


def fault_create(
    *,
    code: str,
    phone_number_id: str = "",
    recipient: str = "",
    mode: str = FaultMode.SYNC,
    remaining: int | None = None,
) -> SandboxFault:
    """Add a fault; ``500`` and ``timeout`` are always synchronous."""
    code = str(code).strip()
    if code not in FAULT_CODES:
        raise ValueError(f"Unknown fault code {code!r}; choose one of {', '.join(FAULT_CODES)}.")
    if mode not in FaultMode.values:
        raise ValueError("mode must be 'sync' or 'async'.")
    if remaining is not None and remaining < 1:
        raise ValueError("remaining must be at least 1 (or empty: until removed).")
    fault = SandboxFault.objects.create(
        code=code,
        phone_number_id=phone_number_id.strip(),
        recipient=_digits(recipient),
        mode=FaultMode.SYNC if code in SYNC_ONLY_FAULTS else mode,
        remaining=remaining,
    )
    forget_all()
    return fault


def fault_delete(*, pk: int | None = None) -> int:
    """Remove one fault, or all of them without ``pk``."""
    queryset = SandboxFault.objects.all() if pk is None else SandboxFault.objects.filter(pk=pk)
    deleted = queryset.delete()[0]
    forget_all()
    return deleted


def _fault_consume(faults: list[SandboxFault], *, mode: str) -> SandboxFault | None:
    """Consume the first of ``faults`` in ``mode``, or None; a counted fault is used up atomically.

    ``faults`` may be a second old (:func:`.selectors.faults_for`): the conditional UPDATE, not
    the copy, decides whether a counted fault still has a send to fail, and one removed
    meanwhile matches nothing.
    """
    for fault in faults:
        if fault.mode != mode:
            continue
        if fault.remaining is None:
            if SandboxFault.objects.filter(pk=fault.pk).update(hits=F("hits") + 1):
                return fault
            continue
        if SandboxFault.objects.filter(pk=fault.pk, remaining__gt=0).update(
            remaining=F("remaining") - 1, hits=F("hits") + 1
        ):
            if SandboxFault.objects.filter(pk=fault.pk, remaining=0).delete()[0]:
                forget_all()
            return fault
    return None


SETTINGS_FIELDS: Final = (
    "latency_ms",
    "sent_delay",
    "delivered_delay",
    "read_delay",
    "template_review_delay",
    "timeout_seconds",
    "status_batch_ms",
)
#: The knobs that are whole numbers (milliseconds); the others are seconds.
_INTEGER_SETTINGS: Final = frozenset({"latency_ms", "status_batch_ms"})


def sandbox_settings_update(**values: Any) -> SandboxSettings:
    """Change some knobs; unknown names or negative values raise ValueError."""
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"Unknown settings: {', '.join(sorted(unknown))}")
    row = selectors.sandbox_settings_get(fresh=True)
    for name, value in values.items():
        number = int(value) if name in _INTEGER_SETTINGS else float(value)
        if number < 0:
            raise ValueError(f"{name} can't be negative.")
        setattr(row, name, number)
    row.save()
    forget_all()
    return row


def sandbox_reset(*, templates: bool = False) -> None:
    """Forget messages, media, uploads, webhooks, faults and the limits' counts (so the stats
    start from zero), and restore the default settings."""
    with transaction.atomic():
        SandboxWebhookDelivery.objects.all().delete()
        # Deleting collects the rows first: their ids are enough (a benchmark leaves many, with JSON and files).
        SandboxMessage.objects.only("pk").delete()
        SandboxMedia.objects.only("pk").delete()
        SandboxUploadSession.objects.all().delete()
        SandboxFault.objects.all().delete()
        SandboxContact.objects.all().delete()
        SandboxPairBucket.objects.all().delete()
        SandboxThroughputCount.objects.all().delete()
        SandboxRefusalCount.objects.all().delete()
        SandboxSettings.objects.all().delete()
        if templates:
            SandboxTemplate.objects.all().delete()
    forget_all()


def phone_number_limits_update(
    *, phone: SandboxPhoneNumber, throughput_level: str | None = None, messaging_limit_tier: str | None = None
) -> SandboxPhoneNumber:
    """Set a number's throughput level and/or messaging limit (as Meta's scaling would).

    An upgrade to ``HIGH`` throughput is announced by a ``phone_number_quality_update`` webhook
    (``THROUGHPUT_UPGRADE``), as Meta announces it; a messaging limit change by one with
    ``UPGRADE`` / ``DOWNGRADE`` and the old limit. Unknown values raise ValueError.
    """
    if throughput_level is not None and throughput_level not in ThroughputLevel.values:
        raise ValueError(f"throughput_level must be one of {', '.join(ThroughputLevel.values)}.")
    if messaging_limit_tier is not None and messaging_limit_tier not in MessagingLimitTier.values:
        raise ValueError(f"messaging_limit_tier must be one of {', '.join(MessagingLimitTier.values)}.")
    upgraded = throughput_level == ThroughputLevel.HIGH and phone.throughput_level != ThroughputLevel.HIGH
    old_limit = phone.messaging_limit_tier
    limit_changed = messaging_limit_tier is not None and messaging_limit_tier != old_limit
    if throughput_level is not None:
        phone.throughput_level = throughput_level
    if messaging_limit_tier is not None:
        phone.messaging_limit_tier = messaging_limit_tier
    with transaction.atomic():
        phone.save(update_fields=["throughput_level", "messaging_limit_tier"])
        transaction.on_commit(forget_all)
        if upgraded:
            _phone_number_webhook(phone, "THROUGHPUT_UPGRADE")
        if limit_changed:
            order = list(MessagingLimitTier.values)
            event = "UPGRADE" if order.index(phone.messaging_limit_tier) > order.index(old_limit) else "DOWNGRADE"
            _phone_number_webhook(phone, event, old_limit=old_limit)
    return phone


def _phone_number_webhook(phone: SandboxPhoneNumber, event: str, old_limit: str | None = None) -> None:
    webhook_schedule(
        account=phone.account,
        kind=WebhookKind.PHONE_NUMBER,
        event=event,
        payload=payloads.phone_number_quality_update(phone, event, old_limit),
    )


# --- Messages -----------------------------------------------------------------------------------


def _digits(value: str) -> str:
    return _NOT_DIGITS.sub("", str(value or "")).lstrip("+")


def wa_id_for(to: str) -> str | None:
    """The WhatsApp id for a ``to``, or None when no WhatsApp user can have that number."""
    digits = _digits(to)
    return digits if digits.isdigit() and 8 <= len(digits) <= 15 and not digits.startswith("0") else None


@dataclass(slots=True)
class _Send:
    """A send as checked so far."""

    rendered: dict[str, Any]
    template: SandboxTemplate | None = None
    async_error: int | None = None


def message_send(*, phone: SandboxPhoneNumber, body: Any, arrived_at: float | None = None) -> dict[str, Any]:
    """``POST /{phone_number_id}/messages``: check, accept, and schedule the status webhooks.

    The request's shape is checked first (100), then injected faults, then content (template,
    window, recipient), and last Meta's limits (:mod:`.limits`): the number's messages a second
    (130429) and the pair rate to this customer (131056), taken right before the message is
    saved, so a send refused for its content uses up neither. Both are taken at ``arrived_at``
    (on :func:`.limits.clock`; now if not given), when the request reached the sandbox, not when
    its statement runs: Meta counts a send in the second it arrived, and a CPU-starved process
    may reach the statement a second later. The accepted message's ``created_at`` is that same
    instant, so the stats count each second as the cap did. Some refusals come back as an
    accepted send followed by a ``failed`` status (131026, 131047, 131053), as at Meta.
    """
    if not isinstance(body, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required and must be 'whatsapp'.")
    if body.get("status") == "read":
        return message_mark_read(phone=phone, wamid=body.get("message_id"))
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise invalid_parameter("The parameter to is required.")
    message_type = body.get("type", "text")
    if message_type not in ("text", "template", *MEDIA_TYPES, *OTHER_TYPES):
        raise invalid_parameter(
            f"Param type must be one of {{text, template, {', '.join(MEDIA_TYPES + OTHER_TYPES)}}}."
        )
    content = body.get(message_type)
    if not isinstance(content, dict):
        raise invalid_parameter(f"The parameter {message_type} is required.")
    callback_data = body.get("biz_opaque_callback_data", "")
    if not isinstance(callback_data, str) or len(callback_data) > MAX_CALLBACK_DATA:
        raise invalid_parameter(
            f"Param biz_opaque_callback_data must be a string of at most {MAX_CALLBACK_DATA} characters."
        )
    if not (phone.registered and phone.is_verified):
        raise GraphError(133010)

    wa_id = wa_id_for(to)
    recipient = wa_id or to.strip()[:64]
    faults = selectors.faults_for(phone_number_id=phone.phone_number_id, recipient=recipient)
    _raise_sync_fault(phone=phone, faults=faults)

    account = phone.account
    if message_type == "template":
        send = _check_template(account=account, content=content)
    elif message_type == "text":
        send = _check_text(content)
    elif message_type in MEDIA_TYPES:
        send = _check_media(account=account, message_type=message_type, content=content)
    else:
        send = _Send(rendered={"kind": "other", "type": message_type})

    # The window decides a text's fate and a utility template's price; other templates need no query.
    needs_window = send.template is None or send.template.category == TemplateCategory.UTILITY
    window = wa_id is not None and needs_window and selectors.window_open(phone=phone, wa_id=wa_id)
    if wa_id is None:
        send.async_error = 131026
    elif send.template is None and not window:
        send.async_error = 131047

    accepted_at = limits.clock() if arrived_at is None else arrived_at
    pricing = _pricing(send.template, window=window)
    # A counted async fault may be used up by an accepted send only: when one could apply, the
    # limits are taken first, a statement each; otherwise by the statement that saves the send,
    # where the database can do it all in one (PostgreSQL).
    at_once = send.async_error is not None or not any(fault.mode == FaultMode.ASYNC for fault in faults)
    # The row's values, read when it is written (an async fault consumed below changes ``send``).
    outbound = functools.partial(
        _outbound_values,
        phone=phone,
        wa_id=recipient,
        body=body,
        send=send,
        callback_data=callback_data,
        pricing=pricing,
        at=accepted_at,
    )
    if at_once and connection.vendor == "postgresql":
        values = outbound()
        _outbound_insert_within_limits(values, phone=phone, recipient=recipient, now=accepted_at)
    else:
        _limits_take(phone=phone, recipient=recipient, now=accepted_at)
        try:
            if send.async_error is None:
                fault = _fault_consume(faults, mode=FaultMode.ASYNC)
                send.async_error = int(fault.code) if fault is not None else None
            values = outbound()
            _outbound_insert(values)
        except BaseException:
            limits.throughput_release(phone=phone, now=accepted_at)
            raise
    statuses_schedule(dues=[values["status_due_at"]], batch_ms=selectors.sandbox_settings_get().status_batch_ms)
    result: dict[str, Any] = {"id": values["wamid"]}
    if send.template is not None:
        result["message_status"] = "accepted"
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": recipient}],
        "messages": [result],
    }


def _limits_take(*, phone: SandboxPhoneNumber, recipient: str, now: float) -> None:
    """Take this send's place in the number's second, then a token of the pair; raise Meta's code if refused."""
    if not limits.throughput_take(phone=phone, now=now):
        limits.refusal_record(phone=phone, code=limits.THROUGHPUT_CODE)
        raise GraphError(limits.THROUGHPUT_CODE)
    if not limits.pair_take(phone=phone, recipient=recipient, now=now):
        limits.throughput_release(phone=phone, now=now)
        limits.refusal_record(phone=phone, code=limits.PAIR_RATE_CODE)
        raise GraphError(limits.PAIR_RATE_CODE)


def _raise_sync_fault(*, phone: SandboxPhoneNumber, faults: list[SandboxFault]) -> None:
    fault = _fault_consume(faults, mode=FaultMode.SYNC)
    if fault is None:
        return
    if fault.code == "timeout":
        # Meta took the message but answered too late: sleep past the client's read timeout, then
        # go on and accept it, so the hub sees an ambiguous failure for a message that went out.
        connection_release()
        time.sleep(selectors.sandbox_settings_get().timeout_seconds)
        return
    if fault.code == "500":
        raise ServerErrorPage
    code = int(fault.code)
    if code in (limits.THROUGHPUT_CODE, limits.PAIR_RATE_CODE):
        limits.refusal_record(phone=phone, code=code)
    raise GraphError(code)


def connection_release() -> None:
    """Close this thread's database connection before a long sleep, when it would be closed after the request anyway.

    With ``CONN_MAX_AGE = 0`` (or a connection pool) Django closes the connection when the
    response is done; closing it before sleeping lets a hundred sleeping requests hold no
    connection. A persistent connection stays: the thread keeps it between requests regardless.
    """
    if connection.in_atomic_block or connection.connection is None:
        return
    if connection.settings_dict.get("CONN_MAX_AGE") == 0:
        connection.close()


def _check_template(*, account: SandboxBusinessAccount, content: Mapping[str, Any]) -> _Send:
    name = content.get("name")
    language = content.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(name, str) or not name:
        raise invalid_parameter("The parameter template['name'] is required.")
    if not isinstance(code, str) or not code:
        raise invalid_parameter("The parameter template['language']['code'] is required.")
    template = selectors.template_for_send(account=account, name=name, language=code)
    if template is None or template.status in {TemplateStatus.PENDING, TemplateStatus.REJECTED}:
        raise GraphError(132001, details=f"template name ({name}) does not exist in {code}")
    if template.status == TemplateStatus.PAUSED:
        raise GraphError(132015)
    if template.status == TemplateStatus.DISABLED:
        raise GraphError(132016)
    rendered = render_template_send(template.components, template.parameter_format, content.get("components"))
    send = _Send(rendered=rendered, template=template)
    header = rendered.get("header") or {}
    if header.get("media_id") and selectors.media_get(account=account, media_id=header["media_id"]) is None:
        send.async_error = 131053
    return send


def _check_text(content: Mapping[str, Any]) -> _Send:
    text = content.get("body")
    if not isinstance(text, str) or not text:
        raise invalid_parameter("The parameter text['body'] is required.")
    if len(text) > MAX_TEXT:
        raise invalid_parameter(f"Param text['body'] must be at most {MAX_TEXT} characters long.")
    return _Send(rendered={"kind": "text", "body": text})


def _check_media(*, account: SandboxBusinessAccount, message_type: str, content: Mapping[str, Any]) -> _Send:
    media_id, link = content.get("id"), content.get("link")
    if bool(media_id) == bool(link):
        raise invalid_parameter(f"{message_type} needs exactly one of id or link.")
    if link and (not isinstance(link, str) or not link.startswith(("http://", "https://"))):
        raise invalid_parameter(f"Param {message_type}['link'] must be a valid http(s) URL.")
    caption = content.get("caption")
    if caption is not None and message_type in {"audio", "sticker"}:
        raise invalid_parameter(f"Param {message_type}['caption'] is not supported for {message_type} messages.")
    filename = content.get("filename") or ""
    rendered = {
        "kind": "media",
        "type": message_type,
        "media_id": str(media_id or ""),
        "link": str(link or ""),
        "filename": str(filename) if message_type == "document" else "",
        "caption": str(caption or ""),
    }
    send = _Send(rendered=rendered)
    if media_id and selectors.media_get(account=account, media_id=str(media_id)) is None:
        send.async_error = 131053
    return send


def _pricing(template: SandboxTemplate | None, *, window: bool) -> dict[str, Any]:
    """The status webhooks' ``pricing``: templates are charged, except utility ones inside the window."""
    if template is None:
        return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    category = template.category.lower()
    if category == "utility" and window:
        return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": category}
    return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category}


def _outbound_values(
    *,
    phone: SandboxPhoneNumber,
    wa_id: str,
    body: Mapping[str, Any],
    send: _Send,
    callback_data: str,
    pricing: dict[str, Any],
    at: float,
) -> dict[str, Any]:
    """The accepted message's row, its first status (sent, or failed) due after the 'sent' delay.

    The statuses leave from the row (:func:`.delivery.deliver_statuses`), sent → delivered → read
    or one ``failed``, each its configured delay after now.
    """
    context = body.get("context")
    media = None
    if send.rendered.get("media_id") and send.async_error is None:
        media = selectors.media_get(account=phone.account, media_id=send.rendered["media_id"])
    now = timezone.now()
    return {
        "wamid": new_wamid(wa_id),
        "phone_number": phone.pk,
        "direction": Direction.OUTBOUND,
        "recipient": wa_id,
        "type": str(body.get("type", "text")),
        "request": dict(body),
        "template": send.template.pk if send.template else None,
        "template_name": send.template.name if send.template else "",
        "template_language": send.template.language if send.template else "",
        "rendered": send.rendered,
        "media": media.pk if media else None,
        "biz_opaque_callback_data": callback_data,
        "context_wamid": str(context.get("message_id", ""))[:128] if isinstance(context, dict) else "",
        "pricing": None if send.async_error else pricing,
        "status": MessageStatus.ACCEPTED,
        "error_code": send.async_error,
        "status_due_at": now + timedelta(seconds=selectors.sandbox_settings_get().sent_delay),
        "created_at": datetime.fromtimestamp(at, tz=UTC),
        "updated_at": now,
    }


# The busiest write of the sandbox, once per accepted send, is written in SQL: the ORM's insert
# compiler cost more than the statement itself, and on PostgreSQL the limits are taken by the same
# statement, one round trip instead of three (profiled with bench/sandbox_profile.py). Each value
# is still prepared as its field would have it.


def _outbound_insert(values: dict[str, Any]) -> None:
    """One :class:`~.models.SandboxMessage` row, every column given."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each ``connection.x`` looks the thread's connection up again
    fields, sql = _outbound_sql(tuple(values), within_limits=False)
    with db.cursor() as cursor:
        cursor.execute(sql, _outbound_params(db, fields, values))


def _outbound_insert_within_limits(
    values: dict[str, Any], *, phone: SandboxPhoneNumber, recipient: str, now: float
) -> None:
    """The row, if the throughput and then the pair rate let the send through; Meta's error if not.

    One statement (PostgreSQL): the throughput count, the pair's token (taken only if the send
    was counted) and the INSERT (only if the token was granted) are its ``WITH`` parts. A send
    refused by the pair rate gives its place in the second back.
    """
    db = connections[DEFAULT_DB_ALIAS]
    counted_sql, params = limits.throughput_take_statement(phone=phone, now=now)
    pair_sql, pair_params = limits.pair_take_statement(phone=phone, recipient=recipient, now=now, after="counted")
    fields, insert_sql = _outbound_sql(tuple(values), within_limits=True)
    sql = (
        f"WITH counted AS ({counted_sql}), pair AS ({pair_sql}), saved AS ({insert_sql}) "  # noqa: S608
        "SELECT EXISTS (SELECT FROM counted), EXISTS (SELECT FROM saved)"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params | pair_params | _outbound_params(db, fields, values))
        counted, saved = cursor.fetchone()
    if not counted:
        limits.refusal_record(phone=phone, code=limits.THROUGHPUT_CODE)
        raise GraphError(limits.THROUGHPUT_CODE)
    if not saved:
        limits.throughput_release(phone=phone, now=now)
        limits.refusal_record(phone=phone, code=limits.PAIR_RATE_CODE)
        raise GraphError(limits.PAIR_RATE_CODE)


def _outbound_params(db: BaseDatabaseWrapper, fields: list[Field], values: dict[str, Any]) -> dict[str, Any]:
    # What get_db_prep_save would do for these fields, without its layers: only JSON and
    # date-times need the backend's adaptation; the others go as they are.
    params = {}
    for field in fields:
        value = values[field.name]
        if value is None:  # SQL NULL (for a JSON field too, as get_db_prep_save has it)
            pass
        elif isinstance(field, models.JSONField):
            value = db.ops.adapt_json_value(value, field.encoder)
        elif isinstance(value, datetime):
            value = db.ops.adapt_datetimefield_value(value)
        params[f"m_{field.name}"] = value
    return params


@functools.cache
def _outbound_sql(names: tuple[str, ...], *, within_limits: bool) -> tuple[list[Field], str]:
    meta = SandboxMessage._meta
    fields = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    insert = f"INSERT INTO {quote(meta.db_table)} ({columns}) "
    if not within_limits:
        return fields, insert + f"VALUES ({', '.join(f'%(m_{field.name})s' for field in fields)})"
    # Typed: in a SELECT list a parameter (a NULL above all) has no column to take its type from.
    typed = ", ".join(f"%(m_{field.name})s::{field.db_type(connection)}" for field in fields)
    return fields, insert + f"SELECT {typed} FROM pair WHERE pair.granted RETURNING 1"  # noqa: S608 (our names)


def message_mark_read(*, phone: SandboxPhoneNumber, wamid: Any) -> dict[str, Any]:
    """The business read a customer's message (blue ticks on the customer's phone)."""
    if not isinstance(wamid, str) or not wamid:
        raise invalid_parameter("The parameter message_id is required.")
    message = selectors.message_inbound_get(phone=phone, wamid=wamid)
    if message is None:
        raise invalid_parameter(f"Message with id {wamid} was not found for this phone number.")
    SandboxMessage.objects.filter(phone_number=phone, recipient=message.recipient, direction=Direction.INBOUND).filter(
        pk__lte=message.pk
    ).update(status=MessageStatus.READ, updated_at=timezone.now())
    return {"success": True}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the customer attaches in the phone simulator."""

    name: str
    content: bytes
    mime_type: str


def inbound_message_create(
    *,
    phone: SandboxPhoneNumber,
    wa_id: str,
    profile_name: str = "",
    text: str = "",
    attachment: Attachment | None = None,
    button: Mapping[str, Any] | None = None,
    media_url: Callable[[SandboxMedia], str] | None = None,
) -> SandboxMessage:
    """A customer writes to a business number: save the message and send the hub Meta's inbound webhook now.

    Give ``text``, an ``attachment`` (with ``text`` as its caption), or ``button`` (a tap on a
    template's quick reply: ``{"text", "payload", "context_wamid"}``). ``media_url`` builds the
    download URL included in media messages.
    """
    wa_id = _digits(wa_id)
    if wa_id_for(wa_id) is None:
        raise ValueError("The customer's number must have 8 to 15 digits.")
    if not (text.strip() or attachment or button):
        raise ValueError("Write a message, attach a file or tap a button.")
    if len(text) > MAX_TEXT:
        raise ValueError(f"A message has at most {MAX_TEXT} characters.")
    with transaction.atomic():
        contact, _ = SandboxContact.objects.get_or_create(wa_id=wa_id)
        if profile_name and profile_name != contact.profile_name:
            contact.profile_name = profile_name[:200]
            contact.save(update_fields=["profile_name"])
        wamid = new_wamid(wa_id)
        item: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time()))}
        media = None
        context_wamid = ""
        if button is not None:
            context_wamid = str(button.get("context_wamid", ""))
            item["context"] = {"from": phone.digits, "id": context_wamid}
            item["type"] = "button"
            item["button"] = {"payload": str(button.get("payload", "")), "text": str(button.get("text", ""))}
            rendered: dict[str, Any] = {"kind": "text", "body": str(button.get("text", ""))}
            message_type = "button"
        elif attachment is not None:
            kind = media_kind(attachment.mime_type) or "document"
            message_type = kind if kind in {"image", "video", "audio"} else "document"
            media = media_upload(
                account=phone.account,
                phone=phone,
                content=attachment.content,
                mime_type=attachment.mime_type,
                filename=attachment.name,
                origin=MediaOrigin.INBOUND,
            )
            body: dict[str, Any] = {"mime_type": media.mime_type, "sha256": media.sha256, "id": media.media_id}
            if media_url is not None:
                body["url"] = media_url(media)
            if message_type == "document":
                body["filename"] = media.filename
            if text.strip() and message_type != "audio":
                body["caption"] = text
            item["type"] = message_type
            item[message_type] = body
            rendered = {
                "kind": "media",
                "type": message_type,
                "media_id": media.media_id,
                "link": "",
                "filename": media.filename,
                "caption": text if message_type != "audio" else "",
            }
        else:
            message_type = "text"
            item["type"] = "text"
            item["text"] = {"body": text}
            rendered = {"kind": "text", "body": text}
        message = SandboxMessage.objects.create(
            wamid=wamid,
            phone_number=phone,
            direction=Direction.INBOUND,
            recipient=wa_id,
            type=message_type,
            request=item,
            rendered=rendered,
            media=media,
            context_wamid=context_wamid,
            status=MessageStatus.RECEIVED,
        )
        transaction.on_commit(forget_all)  # a new customer's window opens in this process at once
        webhook_schedule(
            account=phone.account,
            kind=WebhookKind.INBOUND_MESSAGE,
            event=message_type,
            payload=payloads.inbound_message(phone, contact, item),
            message=message,
        )
    return message
