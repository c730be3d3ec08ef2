"""A document's Comments & History: what happened to it, newest first.

``books`` records what it knows (created, updated, payments applied); other apps add their own
entries (WhatsApp messages) through ``history_provider_register`` from their ``AppConfig.ready()``,
so ``books`` never imports them.
"""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext as _

from books.formatting import money_format
from books.models import Document


@dataclass(frozen=True)
class HistoryDetail:
    """One line under an entry's "Show details": a label, its value, an optional link.

    ``tone`` is a CSS hook (``error``, ``hint``); ``at`` is shown in the organization's zone."""

    label: str
    value: str = ""
    url: str = ""
    at: datetime.datetime | None = None
    tone: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a document's Comments & History: what happened, when, and who did it.

    Providers may add: ``title_url`` (the title links there), ``details`` (shown in a "Show
    details" disclosure), ``state`` (a machine-readable state, e.g. a message status, for styling
    and tests), ``html_id`` (a stable id, so a disclosure stays open when the card refreshes) and
    ``pending`` (the entry can still change: the card refreshes itself while any entry is pending).
    """

    at: datetime.datetime
    title: str
    detail: str = ""
    user: str = ""
    kind: str = "event"  # a CSS hook: created, updated, payment, message…
    url: str = ""
    title_url: str = ""
    details: tuple[HistoryDetail, ...] = ()
    state: str = ""
    html_id: str = ""
    pending: bool = False


HistoryProvider = Callable[[Document], Iterable[HistoryEntry]]
_history_providers: list[HistoryProvider] = []


def history_provider_register(provider: HistoryProvider) -> HistoryProvider:
    """Let another app add entries (e.g. WhatsApp messages) without ``books`` importing it.
    Call from that app's ``AppConfig.ready()``; usable as a decorator."""
    if provider not in _history_providers:
        _history_providers.append(provider)
    return provider


def document_history(document: Document) -> list[HistoryEntry]:
    """Entries of the Comments & History card, newest first."""
    user = document.created_by.get_username() if document.created_by else ""
    entries = [
        HistoryEntry(
            at=document.created_at,
            title=_("%(kind)s created") % {"kind": document.spec.label},
            detail=document.number,
            user=user,
            kind="created",
        )
    ]
    if document.updated_at - document.created_at > datetime.timedelta(seconds=2):
        entries.append(HistoryEntry(at=document.updated_at, title=_("Last updated"), kind="updated"))
    for allocation in document.allocations_in.select_related("source"):
        entries.append(
            HistoryEntry(
                at=allocation.created_at,
                title=_("Payment of %(amount)s applied") % {"amount": _money(allocation.amount, document)},
                detail=allocation.source.number,
                kind="payment",
                url=document_url(allocation.source),
            )
        )
    for provider in _history_providers:
        entries.extend(provider(document))
    return sorted(entries, key=lambda e: e.at, reverse=True)


def history_pending(entries: Iterable[HistoryEntry]) -> bool:
    """Whether the Comments & History card should refresh itself (some entry can still change)."""
    return any(entry.pending for entry in entries)


def _money(amount: Decimal, document: Document) -> str:
    return money_format(amount, document.currency, organization=document.organization)


def document_url(document: Document) -> str:
    return reverse("books:document_detail", args=[document.spec.slug, document.pk])
