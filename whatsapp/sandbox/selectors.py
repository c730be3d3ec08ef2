"""Reads of the sandbox: lookups the Graph views need, and the lists its pages and control API show."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Trunc
from django.utils import timezone

from .choices import Direction, TemplateStatus
from .limits import PAIR_RATE_CODE, THROUGHPUT_CODE
from .models import (
    SandboxBusinessAccount,
    SandboxContact,
    SandboxFault,
    SandboxMedia,
    SandboxMessage,
    SandboxPhoneNumber,
    SandboxRefusalCount,
    SandboxSettings,
    SandboxTemplate,
    SandboxWebhookDelivery,
)
from .process_cache import ProcessCache, forget_all

#: The customer service window: a customer's message lets the business send anything for 24 h.
SERVICE_WINDOW: Final = timedelta(hours=24)

_settings: ProcessCache[None, SandboxSettings] = ProcessCache("settings")
_phones: ProcessCache[tuple[str, str], SandboxPhoneNumber | None] = ProcessCache("phone numbers by token")
_templates: ProcessCache[tuple[int, str, str], SandboxTemplate | None] = ProcessCache("templates for sends")
_phones_by_pk: ProcessCache[int, SandboxPhoneNumber | None] = ProcessCache("phone numbers by id")
_faults: ProcessCache[None, list[SandboxFault]] = ProcessCache("faults")
_customers: ProcessCache[None, frozenset[str]] = ProcessCache("customers who wrote in")


def sandbox_settings_get(*, fresh: bool = False) -> SandboxSettings:
    """The settings row (created with the defaults on first use), cached for a second per process.

    Read on every Graph request (latency), so it is not worth a query each time.
    """
    if fresh:
        row = _settings_load()
        _settings.put(None, row)
        return row
    return _settings.get(None, _settings_load)


def _settings_load() -> SandboxSettings:
    row, _ = SandboxSettings.objects.get_or_create(pk=1)
    return row


def sandbox_settings_forget() -> None:
    """Drop this process's cached settings and lookups (after a write, or between tests)."""
    forget_all()


# --- Graph lookups ------------------------------------------------------------------------------


def account_for_token(*, token: str) -> SandboxBusinessAccount | None:
    return SandboxBusinessAccount.objects.filter(access_token=token).first()


def phone_number_for_token(*, token: str, phone_number_id: str) -> SandboxPhoneNumber | None:
    """The number with its account, if ``token`` is its account's: a send's whole lookup.

    Cached for a second per process (:mod:`.process_cache`): the instance is shared, read only.
    """
    return _phones.get(
        (token, phone_number_id),
        lambda: (
            SandboxPhoneNumber.objects.select_related("account")
            .filter(phone_number_id=phone_number_id, account__access_token=token)
            .first()
        ),
    )


def phone_number_by_pk(*, pk: int) -> SandboxPhoneNumber | None:
    """A number with its account, for the status webhooks; cached for a second per process, shared, read only."""
    return _phones_by_pk.get(pk, lambda: SandboxPhoneNumber.objects.select_related("account").filter(pk=pk).first())


def phone_number_get(*, account: SandboxBusinessAccount, phone_number_id: str) -> SandboxPhoneNumber | None:
    return (
        SandboxPhoneNumber.objects.select_related("account")
        .filter(account=account, phone_number_id=phone_number_id)
        .first()
    )


def template_get(*, account: SandboxBusinessAccount, template_id: str) -> SandboxTemplate | None:
    return (
        SandboxTemplate.objects.filter(account=account, template_id=template_id)
        .exclude(status=TemplateStatus.DELETED)
        .first()
    )


def template_for_send(*, account: SandboxBusinessAccount, name: str, language: str) -> SandboxTemplate | None:
    """The live template of that name and language; cached for a second per process, shared, read only."""
    return _templates.get(
        (account.pk, name, language),
        lambda: (
            SandboxTemplate.objects.filter(account=account, name=name, language=language)
            .exclude(status=TemplateStatus.DELETED)
            .first()
        ),
    )


def faults_for(*, phone_number_id: str, recipient: str) -> list[SandboxFault]:
    """The faults that could apply to a send, oldest first (usually none).

    Every fault is read at most once a second per process; whether a counted one still has a
    send to fail is decided when it is used (:func:`.services.message_send`), not here.
    """
    return [
        fault
        for fault in _faults.get(None, lambda: list(SandboxFault.objects.order_by("pk")))
        if fault.phone_number_id in ("", phone_number_id) and fault.recipient in ("", recipient)
    ]


def media_get(*, account: SandboxBusinessAccount, media_id: str) -> SandboxMedia | None:
    return SandboxMedia.objects.filter(account=account, media_id=media_id, deleted_at__isnull=True).first()


def window_open(*, phone: SandboxPhoneNumber, wa_id: str, now: datetime | None = None) -> bool:
    """Whether the customer wrote to this number in the last 24 hours.

    Only customers who ever wrote in (a :class:`~.models.SandboxContact`, their set read at most
    once a second per process) need the query: the others, a benchmark's thousands, have none.
    """
    if wa_id not in _customers.get(None, lambda: frozenset(SandboxContact.objects.values_list("wa_id", flat=True))):
        return False
    since = (now or timezone.now()) - SERVICE_WINDOW
    return SandboxMessage.objects.filter(
        phone_number=phone, recipient=wa_id, direction=Direction.INBOUND, created_at__gte=since
    ).exists()


# --- Template listing with cursors --------------------------------------------------------------


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = raw.partition(":")
    return int(number) if prefix == "sbx" and number.isdigit() else None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a Graph edge: the rows, the cursors around them, and whether more follow."""

    items: list[Any]
    before: str | None
    after: str | None
    has_next: bool


def template_page(
    *,
    account: SandboxBusinessAccount,
    limit: int,
    after: str | None = None,
    before: str | None = None,
    name: str | None = None,
    status: str | None = None,
) -> Page:
    """Templates newest first, ``limit`` at a time; ``name`` matches part of the name, as Meta's filter does."""
    queryset = SandboxTemplate.objects.filter(account=account).exclude(status=TemplateStatus.DELETED)
    if name:
        queryset = queryset.filter(name__icontains=name)
    if status:
        queryset = queryset.filter(status__in=[s.strip().upper() for s in status.split(",") if s.strip()])
    after_pk = decode_cursor(after) if after else None
    before_pk = decode_cursor(before) if before else None
    if before_pk is not None and after_pk is None:
        # The page just before the cursor: the next ``limit`` newer rows, shown newest first.
        items = list(queryset.filter(pk__gt=before_pk).order_by("pk")[:limit])[::-1]
        has_next = bool(items) and queryset.filter(pk__lt=items[-1].pk).exists()
    else:
        older = queryset.filter(pk__lt=after_pk) if after_pk is not None else queryset
        rows = list(older.order_by("-pk")[: limit + 1])
        items, has_next = rows[:limit], len(rows) > limit
    return Page(
        items=items,
        before=encode_cursor(items[0].pk) if items else None,
        after=encode_cursor(items[-1].pk) if items else None,
        has_next=has_next,
    )


# --- Pages and control API ----------------------------------------------------------------------


def send_stats(*, detail: bool = False) -> dict[str, Any]:
    """What each number accepted and refused, for benchmarks and tests (``/sandbox/control/stats``).

    Accepted sends are the outbound messages: counted, first and last, and grouped by the
    wall-clock second they were accepted in (``created_at`` is on the cap's clock), whose largest
    group is ``peak_per_second``. Refusals come from :class:`~.models.SandboxRefusalCount`. With
    ``detail``, each number also gets ``per_second``: ``{iso second: count}``. Three queries.
    """
    phones = list(SandboxPhoneNumber.objects.order_by("phone_number_id").values_list("pk", "phone_number_id"))
    outbound = SandboxMessage.objects.filter(direction=Direction.OUTBOUND)
    totals = {
        row["phone_number"]: row
        for row in outbound.values("phone_number").annotate(
            accepted=Count("pk"), first=Min("created_at"), last=Max("created_at")
        )
    }
    seconds: dict[int, dict[str, int]] = {}
    per_second = (
        outbound.annotate(second=Trunc("created_at", "second"))
        .values("phone_number", "second")
        .annotate(accepted=Count("pk"))
        .order_by("phone_number", "second")
    )
    for row in per_second:
        seconds.setdefault(row["phone_number"], {})[row["second"].isoformat()] = row["accepted"]
    refused = {
        (row.phone_number_id, row.code): row.total
        for row in SandboxRefusalCount.objects.filter(code__in=[THROUGHPUT_CODE, PAIR_RATE_CODE])
    }
    numbers: dict[str, dict[str, Any]] = {}
    for pk, phone_number_id in phones:
        total = totals.get(pk)
        counts = seconds.get(pk, {})
        numbers[phone_number_id] = {
            "accepted": total["accepted"] if total else 0,
            "refused_130429": refused.get((pk, THROUGHPUT_CODE), 0),
            "refused_131056": refused.get((pk, PAIR_RATE_CODE), 0),
            "peak_per_second": max(counts.values(), default=0),
            "first_accepted_at": total["first"].isoformat() if total else None,
            "last_accepted_at": total["last"].isoformat() if total else None,
        }
        if detail:
            numbers[phone_number_id]["per_second"] = counts
    return {"phone_numbers": numbers}


def account_list() -> QuerySet[SandboxBusinessAccount]:
    return SandboxBusinessAccount.objects.prefetch_related("phone_numbers").order_by("name", "waba_id")


def template_list(*, limit: int = 100) -> QuerySet[SandboxTemplate]:
    return SandboxTemplate.objects.select_related("account").order_by("-pk")[:limit]


def message_list(
    *, recipient: str | None = None, phone_number_id: str | None = None, limit: int = 100
) -> QuerySet[SandboxMessage]:
    queryset = SandboxMessage.objects.select_related("phone_number", "template").order_by("-pk")
    if recipient:
        queryset = queryset.filter(recipient=recipient.lstrip("+"))
    if phone_number_id:
        queryset = queryset.filter(phone_number__phone_number_id=phone_number_id)
    return queryset[:limit]


def delivery_list(*, limit: int = 50) -> QuerySet[SandboxWebhookDelivery]:
    return SandboxWebhookDelivery.objects.select_related("account").order_by("-pk")[:limit]


def fault_list() -> QuerySet[SandboxFault]:
    return SandboxFault.objects.order_by("pk")


@dataclass(frozen=True, slots=True)
class Thread:
    """A customer's chat with one business number, as the phone simulator lists it."""

    wa_id: str
    name: str
    phone: SandboxPhoneNumber
    last: SandboxMessage


def thread_list() -> list[Thread]:
    """Every (customer, business number) pair with messages, most recent first."""
    latest = (
        SandboxMessage.objects.filter(recipient__regex=r"^[0-9]+$")
        .values("recipient", "phone_number")
        .annotate(last_pk=Max("pk"))
        .values_list("last_pk", flat=True)
    )
    messages = SandboxMessage.objects.filter(pk__in=Subquery(latest)).select_related("phone_number").order_by("-pk")
    names = _names([message.recipient for message in messages])
    return [
        Thread(wa_id=m.recipient, name=names.get(m.recipient, f"+{m.recipient}"), phone=m.phone_number, last=m)
        for m in messages
    ]


def thread_messages(*, wa_id: str, phone: SandboxPhoneNumber) -> QuerySet[SandboxMessage]:
    return (
        SandboxMessage.objects.filter(recipient=wa_id, phone_number=phone)
        .select_related("media")
        .order_by("created_at", "pk")
    )


def thread_numbers(*, wa_id: str) -> QuerySet[SandboxPhoneNumber]:
    """The business numbers this customer has a chat with, most recently active first."""
    last = SandboxMessage.objects.filter(recipient=wa_id, phone_number=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    return (
        SandboxPhoneNumber.objects.filter(messages__recipient=wa_id)
        .annotate(last_pk=Subquery(last))
        .distinct()
        .order_by("-last_pk")
    )


def contact_get(*, wa_id: str) -> SandboxContact | None:
    return SandboxContact.objects.filter(wa_id=wa_id).first()


def _names(wa_ids: list[str]) -> dict[str, str]:
    return {contact.wa_id: contact.display_name for contact in SandboxContact.objects.filter(wa_id__in=set(wa_ids))}


def message_inbound_get(*, phone: SandboxPhoneNumber, wamid: str) -> SandboxMessage | None:
    return SandboxMessage.objects.filter(phone_number=phone, wamid=wamid, direction=Direction.INBOUND).first()


def message_outbound_get(*, wamid: str) -> SandboxMessage | None:
    return (
        SandboxMessage.objects.select_related("phone_number").filter(wamid=wamid, direction=Direction.OUTBOUND).first()
    )
