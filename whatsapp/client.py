"""WhatsApp Cloud API client: the only code in the hub that speaks HTTP to Meta.

Everything that leaves the process for the Graph API goes through :class:`CloudAPI`, one method per
remote operation, so the wire format, the auth header, timeouts and error handling live in one
place. The base URL comes from ``WHATSAPP_GRAPH_URL`` + ``WHATSAPP_GRAPH_VERSION``; pointing it at
the Cloud API sandbox or at loopback is how the hub runs without a Meta account.

Design notes (the *why*):

- **One pooled connection pool per process.** Dispatch sends from many threads at once; a shared
  ``httpx2.Client`` keeps TLS connections to Meta warm instead of handshaking per message. A
  :class:`CloudAPI` is cheap (a token and a URL) and is created per business account; only the
  pool is shared. After ``fork()`` (Celery prefork, gunicorn) the child drops the inherited pool:
  two processes writing to one socket interleave requests.
- **The token travels only in the ``Authorization`` header** of each request, never in a URL
  (httpx2 logs URLs at INFO), never in logs, reprs or exception text; error text from Meta is
  scrubbed of it too, because Meta echoes a malformed token back in its error message.
- **No retries here.** Whether to retry a send depends on state the client does not have (the
  message row, the pacer, the credit reservation), so errors become one exception type,
  :class:`CloudAPIError`, that says whether retrying can help and whether Meta may have acted
  anyway (``ambiguous``); the caller decides.
- **Leaf module.** It imports no app of the project: ``whatsapp.fix_hints`` is pure data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpcore2
import httpx2
from django.conf import settings

from whatsapp import fix_hints

__all__ = [
    "DEFAULT_PHONE_NUMBER_FIELDS",
    "DEFAULT_TEMPLATE_FIELDS",
    "PERMANENT_CODES",
    "RETRYABLE_CODES",
    "CloudAPI",
    "CloudAPIError",
    "MediaInfo",
    "PhoneNumberInfo",
    "SendResult",
    "SubscribedApp",
    "TemplateInfo",
    "is_retryable",
    "shared_http_client",
]

logger = logging.getLogger(__name__)

#: Connect and pool waits are short (a dead route or an exhausted pool should fail fast and be
#: retried by the task); reads and writes allow Meta's slow moments and 100 MB document uploads
#: (the write timeout applies per chunk, not to the whole body).
TIMEOUT: Final = httpx2.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)

#: Sized for dispatch: ~100 requests in flight per process at 1,000 msg/s and 100 ms per call
#: (reference/http-clients.md), with headroom for template sync and media downloads.
LIMITS: Final = httpx2.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=30.0)

USER_AGENT: Final = "whatsapp-accounting-hub"

#: Meta caps ``biz_opaque_callback_data`` at 512 characters and text bodies at 4,096.
MAX_CALLBACK_DATA_LENGTH: Final = 512
MAX_TEXT_LENGTH: Final = 4096

#: Largest media the hub will download (Meta's own cap is 100 MB, for documents).
MAX_MEDIA_BYTES: Final = 100 * 1024 * 1024

DEFAULT_TEMPLATE_FIELDS: Final = (
    "id",
    "name",
    "status",
    "category",
    "language",
    "components",
    "parameter_format",
    "quality_score",
    "rejected_reason",
)

DEFAULT_PHONE_NUMBER_FIELDS: Final = (
    "id",
    "display_phone_number",
    "verified_name",
    "name_status",
    "code_verification_status",
    "quality_rating",
    "status",
    "platform_type",
    "throughput",
    "whatsapp_business_manager_messaging_limit",
    "health_status",
)

MediaType = Literal["document", "image", "video", "audio", "sticker"]
CodeMethod = Literal["SMS", "VOICE"]


# --- Which errors a retry can fix ---------------------------------------------------------------

#: Throttling (4, 80007, 130429, 131056), Meta-side trouble (1, 2, 131000, 131016, 133004, 135000)
#: and the brief maintenance window of a throughput upgrade (131057).
RETRYABLE_CODES: Final = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004, 135000})

#: Retrying these sends the same request into the same wall: the recipient, the content, the
#: template or the account has to change first. The whole 132000-132999 template range is
#: permanent as well (see :func:`is_retryable`).
PERMANENT_CODES: Final = frozenset(
    {
        100,  # invalid parameter
        190,  # access token expired or revoked
        368,  # account temporarily blocked for policy violations
        130472,  # recipient in a Meta experiment
        131008,  # required parameter missing
        131009,  # parameter value invalid
        131026,  # recipient can't receive WhatsApp messages
        131031,  # account locked
        131047,  # more than 24 h since the customer last wrote
        131048,  # spam rate limit: sending restricted
        131049,  # held back for ecosystem health; not before 24 h
        131050,  # customer stopped marketing messages
        131051,  # unsupported message type
        131052,  # media download error
        131053,  # media upload error
    }
)


def is_retryable(code: int | None, *, http_status: int | None = None, transient: bool = False) -> bool:
    """Tell whether sending the same request again, later, can succeed.

    Used for synchronous HTTP errors and for the ``errors`` of ``failed`` status webhooks (which
    carry a code but no HTTP status). Known codes decide first; then Meta's own ``is_transient``
    flag; then the HTTP status (5xx and 429 are temporary, any other 4xx is not). An unknown code
    without an HTTP status is treated as permanent: guessing "retry" would re-send, and re-charge,
    forever.
    """
    if code in RETRYABLE_CODES:
        return True
    if code in PERMANENT_CODES or (code is not None and 132000 <= code <= 132999):
        return False
    if transient:
        return True
    if http_status is None:
        return False
    return http_status >= 500 or http_status == 429


# --- The one exception type ---------------------------------------------------------------------


class CloudAPIError(Exception):
    """Anything that went wrong talking to the Cloud API, with what the caller needs to react.

    ``retryable`` says whether the same request can succeed later; ``ambiguous`` says Meta may have
    acted on it although no answer arrived (a read timeout after the body was sent), so a retried
    send might deliver twice. ``fix_hint`` is the sentence shown to the accountant. ``code`` is
    ``None`` when Meta never answered with an error body (timeouts, refused connections, HTML
    from a proxy).
    """

    def __init__(
        self,
        title: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        message: str = "",
        details: str = "",
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
        retryable: bool = False,
        ambiguous: bool = False,
        fix_hint: str | None = None,
    ) -> None:
        super().__init__(title)
        self.title = title
        self.code = code
        self.subcode = subcode
        self.message = message
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.error_type = error_type
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.fix_hint = fix_hint if fix_hint is not None else fix_hints.fix_hint(code, subcode, retryable=retryable)

    def __str__(self) -> str:
        label = ""
        if self.code is not None:
            label = f"[{self.code}/{self.subcode}] " if self.subcode is not None else f"[{self.code}] "
        text = f"{label}{self.title}"
        if self.details and self.details != self.title:
            text += f": {self.details}"
        facts = [f"HTTP {self.http_status}"] if self.http_status is not None else []
        if self.fbtrace_id:
            facts.append(f"fbtrace_id={self.fbtrace_id}")
        facts.append("retryable" if self.retryable else "permanent")
        return f"{text} ({', '.join(facts)})"

    def __repr__(self) -> str:
        return (
            f"CloudAPIError(code={self.code!r}, subcode={self.subcode!r}, title={self.title!r}, "
            f"http_status={self.http_status!r}, retryable={self.retryable!r})"
        )

    @property
    def is_auth_error(self) -> bool:
        """The token is expired or revoked: stop the account's queue and ask an admin to reconnect."""
        return self.code == 190


# --- Typed responses ----------------------------------------------------------------------------


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class SendResult:
    """Meta accepted a message (HTTP 200 means *accepted*, not delivered: statuses come by webhook)."""

    wamid: str
    wa_id: str | None = None
    input: str | None = None
    #: ``accepted``, ``held_for_quality_assessment`` or ``paused``; only template sends carry it.
    message_status: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        messages = data.get("messages")
        first = _dict(messages[0]) if isinstance(messages, list) and messages else {}
        if not first.get("id"):
            raise CloudAPIError(
                "WhatsApp accepted the request but returned no message id",
                retryable=False,
                ambiguous=True,
            )
        contacts = data.get("contacts")
        contact = _dict(contacts[0]) if isinstance(contacts, list) and contacts else {}
        return cls(
            wamid=str(first["id"]),
            wa_id=_str_or_none(contact.get("wa_id")),
            input=_str_or_none(contact.get("input")),
            message_status=_str_or_none(first.get("message_status")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """An uploaded or received media object; ``url`` is short-lived and needs the token to download."""

    id: str
    url: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    file_size: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            id=str(data.get("id", "")),
            url=_str_or_none(data.get("url")),
            mime_type=_str_or_none(data.get("mime_type")),
            sha256=_str_or_none(data.get("sha256")),
            file_size=_int_or_none(data.get("file_size")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class PhoneNumberInfo:
    """A business phone number as Meta sees it: what the channel settings page and the pacer need."""

    id: str
    display_phone_number: str | None = None
    verified_name: str | None = None
    name_status: str | None = None
    code_verification_status: str | None = None
    #: GREEN, YELLOW, RED or UNKNOWN.
    quality_rating: str | None = None
    #: e.g. CONNECTED, PENDING, FLAGGED, RESTRICTED, DISCONNECTED.
    status: str | None = None
    platform_type: str | None = None
    #: STANDARD (80 msg/s), HIGH (up to 1,000 msg/s) or NOT_APPLICABLE.
    throughput_level: str | None = None
    #: e.g. TIER_250 ... TIER_UNLIMITED; read from the current field, else the deprecated one.
    messaging_limit_tier: str | None = None
    #: Meta's own verdict: AVAILABLE, LIMITED or BLOCKED.
    can_send_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        limit = data.get("whatsapp_business_manager_messaging_limit")
        if isinstance(limit, dict):  # tolerate an object form, e.g. {"current_limit": "TIER_1K"}
            limit = limit.get("current_limit") or limit.get("tier")
        return cls(
            id=str(data.get("id", "")),
            display_phone_number=_str_or_none(data.get("display_phone_number")),
            verified_name=_str_or_none(data.get("verified_name")),
            name_status=_str_or_none(data.get("name_status")),
            code_verification_status=_str_or_none(data.get("code_verification_status")),
            quality_rating=_str_or_none(data.get("quality_rating")),
            status=_str_or_none(data.get("status")),
            platform_type=_str_or_none(data.get("platform_type")),
            throughput_level=_str_or_none(_dict(data.get("throughput")).get("level")),
            messaging_limit_tier=_str_or_none(limit or data.get("messaging_limit_tier")),
            can_send_message=_str_or_none(_dict(data.get("health_status")).get("can_send_message")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """A message template as stored at Meta (one name × language)."""

    id: str
    name: str | None = None
    language: str | None = None
    #: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...
    status: str | None = None
    category: str | None = None
    parameter_format: str | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    #: GREEN, YELLOW, RED or UNKNOWN (from ``quality_score.score``).
    quality_score: str | None = None
    rejected_reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        components = data.get("components")
        quality = data.get("quality_score")
        return cls(
            id=str(data.get("id", "")),
            name=_str_or_none(data.get("name")),
            language=_str_or_none(data.get("language")),
            status=_str_or_none(data.get("status")),
            category=_str_or_none(data.get("category")),
            parameter_format=_str_or_none(data.get("parameter_format")),
            components=[c for c in components if isinstance(c, dict)] if isinstance(components, list) else [],
            quality_score=_str_or_none(quality.get("score") if isinstance(quality, dict) else quality),
            rejected_reason=_str_or_none(data.get("rejected_reason")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class SubscribedApp:
    """An app that receives a WABA's webhooks, with its per-WABA callback override if any."""

    id: str
    name: str | None = None
    link: str | None = None
    override_callback_uri: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        app = _dict(data.get("whatsapp_business_api_data"))
        return cls(
            id=str(app.get("id", "")),
            name=_str_or_none(app.get("name")),
            link=_str_or_none(app.get("link")),
            override_callback_uri=_str_or_none(data.get("override_callback_uri")),
            raw=data,
        )


# --- The shared connection pool -----------------------------------------------------------------

#: httpcore2 reads each answer into a fresh 64 KiB buffer and then shrinks it. With a hundred send
#: threads, glibc serves those buffers from per-thread arenas and keeps what they leave behind: a
#: worker measured 47 MB of freed memory held that way after one pump. Meta's answers are a few
#: hundred bytes; 8 KiB reads take them in one read (a media download takes more of them) and left
#: 17 MB. A class attribute of httpcore2's, set for the process.
HTTP_READ_BYTES: Final = 8 * 1024
httpcore2.HTTP11Connection.READ_NUM_BYTES = HTTP_READ_BYTES

_shared_client: httpx2.Client | None = None
_shared_client_lock = threading.Lock()


def _build_http_client(transport: httpx2.BaseTransport | None = None) -> httpx2.Client:
    # No base_url and no auth on the client: both belong to the CloudAPI using it, so one pool
    # serves every business account (and every settings override in tests).
    return httpx2.Client(
        timeout=TIMEOUT,
        limits=LIMITS,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        transport=transport,
    )


def shared_http_client() -> httpx2.Client:
    """Return this process's pooled client, creating it on first use (thread-safe)."""
    global _shared_client
    client = _shared_client
    if client is None:
        with _shared_client_lock:
            if _shared_client is None:
                _shared_client = _build_http_client()
            client = _shared_client
    return client


def _drop_shared_client_after_fork() -> None:
    # The child must not reuse the parent's sockets: its requests would interleave with the
    # parent's on the same connections. Forget the pool rather than close it, so nothing is ever
    # written to a socket the parent still uses; the child builds its own pool on first use.
    global _shared_client, _shared_client_lock
    _shared_client = None
    _shared_client_lock = threading.Lock()


os.register_at_fork(after_in_child=_drop_shared_client_after_fork)


# --- Small guards ---------------------------------------------------------------------------------

_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")
#: Meta access tokens start with "EAA"; scrub anything token-shaped from Meta's error text too.
_TOKEN_SHAPED = re.compile(r"\bEAA[A-Za-z0-9]{20,}")
_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")
_BAD_SEGMENT_CHARS = re.compile(r"[/?#%\\\s]")


def _segment(value: str | int, what: str) -> str:
    """Check an id before it becomes a path segment, so a stray '/' or '?' can't change the request."""
    text = str(value).strip()
    if not text or text in {".", ".."} or _BAD_SEGMENT_CHARS.search(text):
        raise ValueError(f"Invalid {what}: {text!r}")
    return text


def _without_access_token(url: str) -> str:
    """Drop ``access_token`` from a Graph URL: Meta puts it in ``paging.next``; we send the header."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _check_callback_data(value: str | None) -> None:
    if value is not None and len(value) > MAX_CALLBACK_DATA_LENGTH:
        raise ValueError(f"biz_opaque_callback_data is longer than {MAX_CALLBACK_DATA_LENGTH} characters")


# --- The client -----------------------------------------------------------------------------------


class CloudAPI:
    """The Cloud API for one access token (one business account).

    Cheap to create: it holds the token and the base URL and borrows the process's shared pool.
    Pass ``transport`` (httpx2's ``MockTransport`` in unit tests), or ``own_pool=True``, to give it
    a private client (close it after use).
    Safe to use from many threads at once.
    """

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str | None = None,
        version: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        own_pool: bool = False,
    ) -> None:
        # A newline or space in the token would make httpx2 raise an error quoting the header.
        if not isinstance(access_token, str) or not _TOKEN_CHARS.match(access_token):
            raise ValueError("The WhatsApp access token is empty or contains characters a header can't carry.")
        self._token = access_token
        self.base_url = (base_url or settings.WHATSAPP_GRAPH_URL).rstrip("/")
        self.version = (version or settings.WHATSAPP_GRAPH_VERSION).strip("/")
        if urlsplit(self.base_url).scheme not in {"http", "https"} or not urlsplit(self.base_url).hostname:
            raise ValueError(f"WHATSAPP_GRAPH_URL must be an http(s) URL, got {self.base_url!r}")
        self._origin = _origin(self.base_url)
        self._own_client = _build_http_client(transport) if transport is not None or own_pool else None

    def __repr__(self) -> str:
        return f"CloudAPI(base_url={self.base_url!r}, version={self.version!r})"

    __str__ = __repr__

    def close(self) -> None:
        """Close a private client (one built around an injected transport); the shared pool stays open."""
        if self._own_client is not None:
            self._own_client.close()

    @property
    def _http(self) -> httpx2.Client:
        return self._own_client if self._own_client is not None else shared_http_client()

    # -- Messages -------------------------------------------------------------------------------

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        biz_opaque_callback_data: str | None = None,
        context_message_id: str | None = None,
    ) -> SendResult:
        """Send an approved template, the only thing allowed outside the 24 h window.

        ``components`` are the rendered header/body/button parameters (Meta's shape, passed as is).
        ``biz_opaque_callback_data`` comes back in every status webhook of this message: dispatch
        puts the hub's message id there to correlate statuses without a lookup by wamid.
        """
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = [dict(component) for component in components]
        return self._send(
            phone_number_id,
            to,
            "template",
            template,
            biz_opaque_callback_data=biz_opaque_callback_data,
            context_message_id=context_message_id,
        )

    def send_text(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        *,
        preview_url: bool = False,
        biz_opaque_callback_data: str | None = None,
        context_message_id: str | None = None,
    ) -> SendResult:
        """Send a free-form text; Meta refuses it (131047) outside the customer's 24 h window."""
        if not body or len(body) > MAX_TEXT_LENGTH:
            raise ValueError(f"A text message needs 1 to {MAX_TEXT_LENGTH} characters.")
        return self._send(
            phone_number_id,
            to,
            "text",
            {"body": body, "preview_url": preview_url},
            biz_opaque_callback_data=biz_opaque_callback_data,
            context_message_id=context_message_id,
        )

    def send_media(
        self,
        phone_number_id: str,
        to: str,
        media_type: MediaType,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        biz_opaque_callback_data: str | None = None,
        context_message_id: str | None = None,
    ) -> SendResult:
        """Send a document, image, video, audio or sticker by uploaded ``media_id`` or public ``link``.

        Meta recommends media ids at volume. Always give documents a ``filename``: without it the
        customer sees "Untitled".
        """
        if media_type not in {"document", "image", "video", "audio", "sticker"}:
            raise ValueError(f"Unsupported media type {media_type!r}")
        if (media_id is None) == (link is None):
            raise ValueError("Give exactly one of media_id or link.")
        if caption is not None and media_type in {"audio", "sticker"}:
            raise ValueError(f"A {media_type} can't carry a caption.")
        if filename is not None and media_type != "document":
            raise ValueError("Only documents carry a filename.")
        media: dict[str, Any] = {"id": media_id} if media_id is not None else {"link": link}
        if caption is not None:
            media["caption"] = caption
        if filename is not None:
            media["filename"] = filename
        return self._send(
            phone_number_id,
            to,
            media_type,
            media,
            biz_opaque_callback_data=biz_opaque_callback_data,
            context_message_id=context_message_id,
        )

    def mark_read(self, phone_number_id: str, wamid: str) -> None:
        """Mark an inbound message (and the ones before it) as read: the customer sees blue ticks."""
        data = self._request(
            "POST",
            f"{_segment(phone_number_id, 'phone number id')}/messages",
            json={"messaging_product": "whatsapp", "status": "read", "message_id": wamid},
        )
        self._expect_success(data)

    def _send(
        self,
        phone_number_id: str,
        to: str,
        message_type: str,
        content: Mapping[str, Any],
        *,
        biz_opaque_callback_data: str | None,
        context_message_id: str | None,
    ) -> SendResult:
        _check_callback_data(biz_opaque_callback_data)
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": message_type,
            message_type: dict(content),
        }
        if context_message_id:
            body["context"] = {"message_id": context_message_id}
        if biz_opaque_callback_data is not None:
            body["biz_opaque_callback_data"] = biz_opaque_callback_data
        data = self._request("POST", f"{_segment(phone_number_id, 'phone number id')}/messages", json=body)
        return SendResult.from_api(data)

    # -- Media ----------------------------------------------------------------------------------

    def upload_media(self, phone_number_id: str, content: bytes, mime_type: str, filename: str) -> str:
        """Upload a file for sending and return its media id (e.g. a document's PDF before dispatch)."""
        if not content:
            raise ValueError("Refusing to upload an empty file.")
        data = self._request(
            "POST",
            f"{_segment(phone_number_id, 'phone number id')}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
        )
        media_id = data.get("id")
        if not media_id:
            raise CloudAPIError("WhatsApp accepted the upload but returned no media id", ambiguous=True)
        return str(media_id)

    def get_media(self, media_id: str, *, phone_number_id: str | None = None) -> MediaInfo:
        """Look up a media object: its temporary download URL, MIME type, size and hash."""
        params = {"phone_number_id": _segment(phone_number_id, "phone number id")} if phone_number_id else None
        data = self._request("GET", _segment(media_id, "media id"), params=params)
        return MediaInfo.from_api(data)

    def download_media(self, url: str, *, max_bytes: int = MAX_MEDIA_BYTES) -> bytes:
        """Download a media URL from :meth:`get_media` or an inbound webhook, with the token.

        Because the token goes along, only https URLs are fetched, or any URL on the configured
        Graph host (the sandbox serves plain http on loopback). Redirects are not followed.
        Bodies beyond ``max_bytes`` are cut off with a permanent error instead of filling memory.
        """
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("Media can only be downloaded from an http(s) URL.")
        if parts.scheme != "https" and _origin(url) != self._origin:
            raise ValueError("Refusing to send the access token over plain http to another host.")
        started = time.monotonic()
        chunks: list[bytes] = []
        with (
            self._transport_errors("GET", parts.path, started),
            self._http.stream("GET", url, headers=self._auth_headers()) as response,
        ):
            self._log("GET", parts.path, response.status_code, started)
            if response.status_code >= 400:
                response.read()
                raise self._error_from_response(response)
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise CloudAPIError(f"The media file is larger than {max_bytes} bytes", retryable=False)
                chunks.append(chunk)
        return b"".join(chunks)

    def delete_media(self, media_id: str, *, phone_number_id: str | None = None) -> None:
        """Delete an uploaded media object (e.g. a document PDF once it has been delivered)."""
        params = {"phone_number_id": _segment(phone_number_id, "phone number id")} if phone_number_id else None
        self._expect_success(self._request("DELETE", _segment(media_id, "media id"), params=params))

    def resumable_upload(self, app_id: str, content: bytes, file_name: str, mime_type: str) -> str:
        """Upload a template header sample through the Resumable Upload API and return its handle.

        Template creation wants ``example.header_handle: [<handle>]`` for IMAGE/VIDEO/DOCUMENT
        headers, and only this API produces one: open a session on the app, then send the bytes
        to it from offset 0. Meta's guide authenticates the second step with
        ``Authorization: OAuth <token>``.
        """
        if not content:
            raise ValueError("Refusing to upload an empty file.")
        session = self._request(
            "POST",
            f"{_segment(app_id, 'app id')}/uploads",
            params={"file_name": file_name, "file_length": len(content), "file_type": mime_type},
        )
        upload_id = str(session.get("id") or "")
        # The session id carries its own "?sig=..." query, so it is used verbatim after the
        # configured base URL (it cannot name another host); it must not climb out of the
        # version path or carry a fragment.
        if not upload_id.startswith("upload:") or "#" in upload_id or ".." in upload_id:
            raise CloudAPIError("WhatsApp returned no usable upload session id", retryable=False)
        result = self._request(
            "POST",
            f"{self.base_url}/{self.version}/{upload_id}",
            content=content,
            headers={"file_offset": "0"},
            auth_scheme="OAuth",
        )
        handle = result.get("h")
        if not handle:
            raise CloudAPIError("WhatsApp accepted the upload but returned no file handle", retryable=False)
        return str(handle)

    # -- Templates ------------------------------------------------------------------------------

    def create_template(self, waba_id: str, payload: Mapping[str, Any]) -> TemplateInfo:
        """Submit a template for approval; Meta answers with its id, first status and category.

        The returned :class:`TemplateInfo` fills name, language and components from ``payload``
        (Meta does not echo them), so the caller can store one object.
        """
        data = self._request("POST", f"{_segment(waba_id, 'WABA id')}/message_templates", json=dict(payload))
        echoed = ("name", "language", "category", "parameter_format", "components")
        known = {key: payload[key] for key in echoed if key in payload}
        return TemplateInfo.from_api({**known, **data})

    def list_templates(
        self,
        waba_id: str,
        *,
        fields: Sequence[str] = DEFAULT_TEMPLATE_FIELDS,
        limit: int = 100,
        status: str | None = None,
        name: str | None = None,
    ) -> Iterator[TemplateInfo]:
        """Iterate over every template of a WABA, following ``paging.next`` page after page.

        Requests are made lazily as the iterator is consumed (a WABA may hold 6,000 templates).
        Ignoring pagination is a known sync bug in other hubs: the iterator reads to the end.
        """
        params: dict[str, Any] = {"fields": ",".join(fields), "limit": limit}
        if status:
            params["status"] = status
        if name:
            params["name"] = name
        pages = self._paginate(f"{_segment(waba_id, 'WABA id')}/message_templates", params)
        return (TemplateInfo.from_api(item) for item in pages)

    def get_template(self, template_id: str, *, fields: Sequence[str] = DEFAULT_TEMPLATE_FIELDS) -> TemplateInfo:
        """Read one template (one language) by id."""
        data = self._request("GET", _segment(template_id, "template id"), params={"fields": ",".join(fields)})
        return TemplateInfo.from_api(data)

    def edit_template(self, template_id: str, payload: Mapping[str, Any]) -> None:
        """Change an existing template's components or category; it goes back to review."""
        self._expect_success(self._request("POST", _segment(template_id, "template id"), json=dict(payload)))

    def delete_template(self, waba_id: str, name: str, *, hsm_id: str | None = None) -> None:
        """Delete a template: every language of ``name``, or just the one with ``hsm_id``."""
        params = {"name": name}
        if hsm_id:
            params["hsm_id"] = _segment(hsm_id, "template id")
        self._expect_success(
            self._request("DELETE", f"{_segment(waba_id, 'WABA id')}/message_templates", params=params)
        )

    # -- Phone numbers --------------------------------------------------------------------------

    def list_phone_numbers(
        self, waba_id: str, *, fields: Sequence[str] = DEFAULT_PHONE_NUMBER_FIELDS
    ) -> list[PhoneNumberInfo]:
        """Every phone number of a WABA, with quality, throughput and messaging limit."""
        pages = self._paginate(f"{_segment(waba_id, 'WABA id')}/phone_numbers", {"fields": ",".join(fields)})
        return [PhoneNumberInfo.from_api(item) for item in pages]

    def get_phone_number(
        self, phone_number_id: str, *, fields: Sequence[str] = DEFAULT_PHONE_NUMBER_FIELDS
    ) -> PhoneNumberInfo:
        """One phone number's current state (refreshed on quality webhooks and by a beat task)."""
        data = self._request("GET", _segment(phone_number_id, "phone number id"), params={"fields": ",".join(fields)})
        return PhoneNumberInfo.from_api(data)

    def request_code(self, phone_number_id: str, code_method: CodeMethod = "SMS", language: str = "en_US") -> None:
        """Ask Meta to send a verification code to the number by SMS or voice call."""
        if code_method not in {"SMS", "VOICE"}:
            raise ValueError("code_method must be SMS or VOICE.")
        data = self._request(
            "POST",
            f"{_segment(phone_number_id, 'phone number id')}/request_code",
            params={"code_method": code_method, "language": language},
        )
        self._expect_success(data)

    def verify_code(self, phone_number_id: str, code: str) -> None:
        """Confirm the code the owner received; "123-456" (as the SMS shows it) is sent as 123456."""
        digits = re.sub(r"[\s-]", "", code)
        if not digits.isdigit():
            raise ValueError("The verification code must be digits (hyphens and spaces are ignored).")
        data = self._request(
            "POST", f"{_segment(phone_number_id, 'phone number id')}/verify_code", params={"code": digits}
        )
        self._expect_success(data)

    def register(self, phone_number_id: str, pin: str, *, data_localization_region: str | None = None) -> None:
        """Register the number on the Cloud API with its 6-digit two-step verification PIN."""
        if not re.fullmatch(r"\d{6}", pin):
            raise ValueError("The two-step verification PIN has exactly 6 digits.")
        body: dict[str, Any] = {"messaging_product": "whatsapp", "pin": pin}
        if data_localization_region:
            body["data_localization_region"] = data_localization_region
        self._expect_success(
            self._request("POST", f"{_segment(phone_number_id, 'phone number id')}/register", json=body)
        )

    def deregister(self, phone_number_id: str) -> None:
        """Take the number off the Cloud API (it stops sending and receiving)."""
        self._expect_success(self._request("POST", f"{_segment(phone_number_id, 'phone number id')}/deregister"))

    # -- Webhook subscription -------------------------------------------------------------------

    def subscribe_app(
        self, waba_id: str, *, override_callback_uri: str | None = None, verify_token: str | None = None
    ) -> None:
        """Subscribe the app to the WABA's webhooks, optionally to a callback URL of its own."""
        if (override_callback_uri is None) != (verify_token is None):
            raise ValueError("override_callback_uri and verify_token go together.")
        body = (
            {"override_callback_uri": override_callback_uri, "verify_token": verify_token}
            if override_callback_uri is not None
            else None
        )
        self._expect_success(self._request("POST", f"{_segment(waba_id, 'WABA id')}/subscribed_apps", json=body))

    def list_subscribed_apps(self, waba_id: str) -> list[SubscribedApp]:
        """The apps receiving this WABA's webhooks: how the settings page checks the hub is one."""
        data = self._request("GET", f"{_segment(waba_id, 'WABA id')}/subscribed_apps")
        items = data.get("data")
        return (
            [SubscribedApp.from_api(item) for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else []
        )

    # -- Plumbing -------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path}"

    def _auth_headers(self, scheme: str = "Bearer") -> dict[str, str]:
        return {"Authorization": f"{scheme} {self._token}"}

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth_scheme: str = "Bearer",
    ) -> dict[str, Any]:
        """Make one call and return Meta's JSON object, or raise :class:`CloudAPIError`."""
        url = path_or_url if "://" in path_or_url else self._url(path_or_url)
        log_path = urlsplit(url).path
        request_headers = {**(headers or {}), **self._auth_headers(auth_scheme)}
        started = time.monotonic()
        with self._transport_errors(method, log_path, started):
            response = self._http.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                files=files,
                content=content,
                headers=request_headers,
            )
        self._log(method, log_path, response.status_code, started)
        if response.status_code >= 400:
            raise self._error_from_response(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise CloudAPIError(
                "WhatsApp answered with something other than a JSON object",
                http_status=response.status_code,
                retryable=False,
                ambiguous=True,
            )
        return body

    def _paginate(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield the ``data`` items of every page of a Graph edge.

        ``paging.next`` is an absolute URL. It is followed only on the configured Graph host
        (never send the token elsewhere) and without its ``access_token`` parameter (Meta
        includes it; the header carries ours, and httpx2 logs URLs). On any other host the
        ``after`` cursor continues from the first URL instead.
        """
        url: str = self._url(path)
        query: Mapping[str, Any] | None = params
        seen: set[tuple[str, str]] = set()
        while True:
            page = self._request("GET", url, params=query)
            data = page.get("data")
            items = data if isinstance(data, list) else []
            yield from (item for item in items if isinstance(item, dict))
            paging = _dict(page.get("paging"))
            next_url = paging.get("next")
            if not items or not isinstance(next_url, str) or not next_url:
                return
            if _origin(next_url) == self._origin:
                url, query = _without_access_token(next_url), None
                key = (url, "")
            else:
                after = _dict(paging.get("cursors")).get("after")
                logger.warning(
                    "Cloud API paging.next points at another host (%s); continuing with the cursor",
                    urlsplit(next_url).hostname,
                )
                if not after:
                    return
                url, query = self._url(path), {**params, "after": after}
                key = (url, str(after))
            if key in seen:  # a server repeating a page would otherwise loop forever
                return
            seen.add(key)

    def _expect_success(self, data: Mapping[str, Any]) -> None:
        if data.get("success") is False:
            raise CloudAPIError("WhatsApp reported that the operation did not succeed", retryable=False)

    def _log(self, method: str, path: str, status: int, started: float) -> None:
        # Path only: no query (it may hold a verification code), no body (phone numbers, texts).
        logger.debug("Cloud API %s %s -> %s in %.0f ms", method, path, status, (time.monotonic() - started) * 1000)

    @contextlib.contextmanager
    def _transport_errors(self, method: str, path: str, started: float) -> Iterator[None]:
        """Turn httpx2's exceptions into CloudAPIError, so callers catch one type."""
        try:
            yield
        except httpx2.RequestError as exc:
            # Nothing was sent when connecting or waiting for a pooled connection failed; after
            # that, Meta may have received the whole request and acted on it.
            not_sent = isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)
            if isinstance(exc, httpx2.TimeoutException):
                title = "WhatsApp didn't answer in time"
            elif isinstance(exc, httpx2.TransportError):
                title = "Couldn't reach WhatsApp"
            else:
                title = "WhatsApp's answer couldn't be read"
            logger.debug(
                "Cloud API %s %s failed after %.0f ms: %s",
                method,
                path,
                (time.monotonic() - started) * 1000,
                type(exc).__name__,
            )
            raise CloudAPIError(
                title,
                details=type(exc).__name__,
                retryable=True,
                ambiguous=not not_sent,
                fix_hint=str(fix_hints.TRANSPORT_HINT),
            ) from exc

    def _error_from_response(self, response: httpx2.Response) -> CloudAPIError:
        """Build the exception from Meta's error body (or from the status when there is none)."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            # An HTML page from a proxy or load balancer: only the status tells us anything.
            title = (
                f"WhatsApp is having trouble (HTTP {status})"
                if status >= 500
                else f"WhatsApp refused the request (HTTP {status})"
            )
            error_obj = CloudAPIError(title, http_status=status, retryable=is_retryable(None, http_status=status))
            logger.debug("Cloud API error without an error body: HTTP %s", status)
            return error_obj

        code = _int_or_none(error.get("code"))
        subcode = _int_or_none(error.get("error_subcode"))
        error_data = error.get("error_data")
        details = _dict(error_data).get("details") if isinstance(error_data, dict) else error_data
        message = self._scrub(error.get("message"))
        details_text = self._scrub(details) or self._scrub(error.get("error_user_msg"))
        title = self._scrub(error.get("error_user_title")) or _CODE_PREFIX.sub("", message) or f"HTTP {status}"
        exc = CloudAPIError(
            title,
            code=code,
            subcode=subcode,
            message=message,
            details=details_text,
            fbtrace_id=_str_or_none(error.get("fbtrace_id")),
            http_status=status,
            error_type=_str_or_none(error.get("type")),
            retryable=is_retryable(code, http_status=status, transient=error.get("is_transient") is True),
        )
        logger.debug("Cloud API error code=%s subcode=%s fbtrace_id=%s", code, subcode, exc.fbtrace_id)
        return exc

    def _scrub(self, value: Any) -> str:
        """Remove the token (and anything token-shaped) from text Meta sends back."""
        if value is None:
            return ""
        text = str(value).replace(self._token, "[redacted]")
        return _TOKEN_SHAPED.sub("[redacted]", text)
