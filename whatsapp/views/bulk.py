"""Bulk sends from the lists: "Send → WhatsApp message" on many documents (or customers, or
vendors) at once, the summary before it, its progress after, and the organization's recent ones.

URL names (namespace ``whatsapp_send``, mounted at ``whatsapp/``):

- ``bulk_new`` (``bulk/new/<module>/``): the summary. A list's bulk-action bar POSTs the ticked
  rows as ``selected`` — or, after "Select all N matching", the list's filter as ``matching``,
  resolved here by the list's own code (:mod:`books.list_filters`) — and the answer is a redirect
  to the same page with ``?ids=1,2,3`` (or ``?matching=…``), so the summary can be reloaded;
  ``?template=`` picks another approved template of the module (the summary itself POSTs that
  change, its ids in the body however many). A template id that is no longer usable is refused,
  never replaced by the default. A statement module's summary has a From/To pair (``from_date``,
  ``to_date``; this month up to today when blank) that re-plans it the same way and goes to Send
  with it; a date that isn't one, a period ending before it starts or after today is an error at
  the dates, and Send is disabled. It shows :func:`~whatsapp.services.bulk.bulk_plan`: how many
  go, the skipped ones grouped by reason, the credits it reserves against those available, or the
  rule of the whole organization that refuses it with where to fix it.
- ``bulk_start`` (POST): :func:`~whatsapp.services.bulk.bulk_send_start` with the summary's
  one-time key as idempotency key (a double click starts one bulk send), then the progress page.
  The request answers at once; the documents are checked and queued by a Celery task.
- ``bulk`` (``bulk/<id>/``): the progress page; ``bulk_progress`` is its live part (progress bar,
  counts, skipped list, a page of per-document outcomes), polled by htmx until every message is
  final. A poll whose session expired is answered with ``HX-Redirect`` to the login page, never
  with the login page inside the card.
- ``bulk_resume`` (POST): "Resume sending" on a bulk send that Meta's spam limit (131048) paused:
  its held messages go out again.
- ``bulk_list`` (``bulk/``): the organization's recent bulk sends, with their messages delivered,
  failed and on the way (one query for the page).

Permissions are the Send page's: NOTIFICATIONS_SEND and the right to see the module's documents
or contacts. Another organization's bulk send is a 404.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from books.api.access import CONTACT_PERMS, DOCUMENT_PERMS
from books.api.fields import MAX_ID
from books.choices import ContactType
from books.kinds import KINDS
from books.list_filters import ContactListFilter, DocumentListFilter, list_filter_ids
from books.models import Organization
from books.permissions import Perm
from books.views.access import member_required
from credits.formatting import credits_format
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.modules import MODULES, ModuleSpec
from whatsapp.choices import MessageStatus
from whatsapp.models import BulkSend
from whatsapp.selectors.bulk import bulk_progress_list
from whatsapp.services.bulk import (
    MAX_SELECTION,
    NO_PERIOD,
    BulkPlan,
    Period,
    Skipped,
    bulk_outcome_list,
    bulk_plan,
    bulk_progress,
    bulk_send_get,
    bulk_send_list,
    bulk_send_start,
)
from whatsapp.services.bulk_pause import bulk_send_resume
from whatsapp.services.notifications import (
    IdempotencyConflict,
    NotificationRefused,
    module_templates,
    template_chosen,
)

#: The idempotency key of a bulk send from the summary is this prefix and the page's one-time key.
IDEMPOTENCY_PREFIX = "bulk-page:"
#: A list's POST is redirected to ``?ids=…`` up to this length; a longer selection is shown as posted.
MAX_QUERY_LENGTH = 2000
#: The statement period's fields on the summary (the REST API's names).
PERIOD_FIELDS = ("from_date", "to_date")
#: Skipped documents listed per reason (the count says how many more).
SKIPPED_SHOWN = 50
#: Per-document outcomes per page of the progress page.
OUTCOMES_PER_PAGE = 50
BULK_SENDS_PER_PAGE = 25
POLL_SECONDS = 2
#: A bulk send whose messages are still not final this long after it was queued is no longer polled
#: (dispatch is down or slow: the page says to reload).
POLL_FOR = datetime.timedelta(minutes=30)

#: What a skipped group is called; a code not listed here is shown with its first reason.
REASON_LABELS: dict[str, Promise] = {
    "document_not_sendable": gettext_lazy("Draft or void"),
    "nothing_due": gettext_lazy("Paid: nothing to remind"),
    "recipient_not_opted_in": gettext_lazy("WhatsApp channel not enabled for the contact"),
    "recipient_invalid_number": gettext_lazy("Invalid mobile number"),
    "no_recipients": gettext_lazy("No contact person to send to"),
    "no_channel_number": gettext_lazy("No WhatsApp number for this kind of message"),
    "template_not_sendable": gettext_lazy("The template can't be filled in"),
    "insufficient_credits": gettext_lazy("Not enough IM credits"),
    "not_found": gettext_lazy("Not found"),
}
ACTIVE_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING)


@dataclass(frozen=True)
class BulkKind:
    """What a module sends to in bulk, who may, and where its list is."""

    spec: ModuleSpec

    @property
    def module(self) -> str:
        return self.spec.module

    @property
    def target(self) -> str:
        return BulkSend.Target.DOCUMENTS if self.spec.document_kind else BulkSend.Target.CONTACTS

    @property
    def perm(self) -> str:
        pairs = DOCUMENT_PERMS if self.spec.document_kind else CONTACT_PERMS
        return pairs[self.spec.party].view

    @property
    def list_label(self) -> str | Promise:
        if self.spec.document_kind:
            return KINDS[self.spec.document_kind].label_plural
        return _("Vendors") if self.spec.party == ContactType.VENDOR else _("Customers")

    @property
    def list_url(self) -> str:
        if self.spec.document_kind:
            return reverse("books:document_list", args=[KINDS[self.spec.document_kind].slug])
        return reverse("books:vendor_list" if self.spec.party == ContactType.VENDOR else "books:customer_list")

    def item_url(self, pk: int) -> str:
        if self.spec.document_kind:
            return reverse("books:document_detail", args=[KINDS[self.spec.document_kind].slug, pk])
        return reverse("books:contact_detail", args=[pk])


# --- Access and what the form says -------------------------------------------------------------


def _require(request: HttpRequest, perm: str) -> None:
    if not request.membership.has_perm(perm):
        raise PermissionDenied


def _organization(request: HttpRequest) -> Organization:
    # request.organization is a lazy proxy; the membership's organization is the model instance.
    return request.membership.organization


def _kind(request: HttpRequest, module: str) -> BulkKind:
    """The module of the URL (every module sends in bulk: bulk.py loads documents of its kind or
    contacts of its party), if the user may see what it sends."""
    spec = MODULES.get(module)
    if spec is None:
        raise Http404(_("No such module."))
    kind = BulkKind(spec)
    _require(request, kind.perm)
    return kind


def _ids(params: QueryDict) -> list[int]:
    """The selection: a list's ticked rows (``selected``) or the summary's own ``ids`` (one
    comma-separated value, or repeated); anything that is not an id is ignored."""
    values = params.getlist("selected") + params.getlist("ids")
    parts = (part.strip() for value in values for part in value.split(","))
    return list(dict.fromkeys(int(part) for part in parts if part.isdigit() and 0 < int(part) <= MAX_ID))


def _template(organization: Organization, params: QueryDict) -> MessageTemplate | NotificationRefused | None:
    """The template asked for (:func:`~whatsapp.services.notifications.template_chosen`)."""
    return template_chosen(organization=organization, raw=params.get("template", ""))


def _period(kind: BulkKind, params: QueryDict) -> Period | NotificationRefused:
    """The statement period typed on the summary, each date None when blank (the service's default),
    or the refusal of a date that isn't one. A module that sends no statements has no period."""
    if not kind.spec.uses_statement:
        return NO_PERIOD
    days: list[datetime.date | None] = []
    for name in PERIOD_FIELDS:
        raw = params.get(name, "").strip()
        try:
            day = parse_date(raw) if raw else None
        except ValueError:  # well formed but no such day: 2026-02-30
            day = None
        if raw and day is None:
            return NotificationRefused("invalid_date", _("Enter a valid date."), field=name)
        days.append(day)
    return days[0], days[1]


# --- The summary -------------------------------------------------------------------------------


def _skipped_groups(kind: BulkKind, skipped: list[Skipped]) -> list[dict[str, Any]]:
    """Skipped ones grouped by reason, in the order first met; each group lists its first few."""
    groups: dict[str, list[Skipped]] = {}
    for item in skipped:
        groups.setdefault(item.code, []).append(item)
    return [
        {
            "code": code,
            "label": REASON_LABELS.get(code, items[0].reason),
            "count": len(items),
            "more": max(0, len(items) - SKIPPED_SHOWN),
            "items": [
                {
                    "id": item.id,
                    "label": item.label,
                    "reason": item.reason,
                    "url": kind.item_url(item.id) if item.code != "not_found" else "",
                }
                for item in items[:SKIPPED_SHOWN]
            ],
        }
        for code, items in groups.items()
    ]


def _summary_refusal(ids: list[int]) -> NotificationRefused | None:
    """A selection the summary does not even plan: none, or more than a bulk send takes."""
    if not ids:
        return NotificationRefused("no_selection", _("Select at least one to send."))
    if len(ids) > MAX_SELECTION:
        return NotificationRefused(
            "selection_too_large", _("Select at most %(max)d at a time.") % {"max": MAX_SELECTION}
        )
    return None


def _period_context(
    request: HttpRequest, kind: BulkKind, plan: BulkPlan | None, refusal: NotificationRefused | None
) -> dict[str, Any] | None:
    """The From/To pair of a statement module's summary: the period planned (defaults filled in),
    else the dates as typed, with the refusal that concerns them."""
    if not kind.spec.uses_statement:
        return None
    params = request.POST if request.method == "POST" else request.GET
    start, end = (plan.statement_from, plan.statement_to) if plan is not None else NO_PERIOD
    planned = start is not None and end is not None
    return {
        "from": start.isoformat() if start is not None and planned else params.get("from_date", ""),
        "to": end.isoformat() if end is not None and planned else params.get("to_date", ""),
        "start": start if planned else None,
        "end": end if planned else None,
        "max": _organization(request).today().isoformat(),
        "error": refusal if refusal is not None and refusal.field in PERIOD_FIELDS else None,
    }


def _render_summary(
    request: HttpRequest,
    kind: BulkKind,
    ids: list[int],
    template: MessageTemplate | NotificationRefused | None,
    period: Period | NotificationRefused,
    *,
    error: NotificationRefused | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = _organization(request)
    options = module_templates(organization=organization, module=kind.module)
    unusable: NotificationRefused | None = None
    if isinstance(template, NotificationRefused):
        # Nothing is planned with another template; the fix is the summary with the module's default.
        unusable, template = template, None
        query = urlencode({"ids": ",".join(map(str, ids))})
        if len(query) <= MAX_QUERY_LENGTH:
            unusable.url = f"{reverse('whatsapp_send:bulk_new', args=[kind.module])}?{query}"
    else:
        # As the Send page: the default, else the first approved template (the one the select shows).
        template = template or (options[0] if options else None)
    refusal = _summary_refusal(ids) or unusable or (period if isinstance(period, NotificationRefused) else None)
    plan: BulkPlan | None = None
    if refusal is None and not isinstance(period, NotificationRefused):
        plan = bulk_plan(
            organization=organization,
            target=kind.target,
            module=kind.module,
            ids=ids,
            template=template,
            statement_from=period[0],
            statement_to=period[1],
        )
        refusal = plan.refusal
    refusal = error or refusal
    chosen = plan.template if plan is not None else template
    if chosen is not None and chosen not in options:
        options.append(chosen)  # asked for but not usable: shown, so the refusal reads right
    short = plan is not None and plan.credits_needed > plan.credits_available
    statement_period = _period_context(request, kind, plan, refusal)
    # A bad date is said at the dates; the banner is for the rest (and for "Nothing was sent").
    banner = refusal if error is not None or statement_period is None or statement_period["error"] is None else None
    context = {
        "organization": organization,
        "kind": kind,
        "module_label": Module(kind.module).label,
        "ids": ids,
        "ids_value": ",".join(map(str, ids)),
        "plan": plan,
        "refusal": banner,
        "error": error,
        "template_options": [
            {
                "template": option,
                "selected": chosen is not None and option.pk == chosen.pk,
                "approved": option.status == TemplateStatus.APPROVED,
            }
            for option in options
        ],
        "skipped_groups": _skipped_groups(kind, plan.skipped) if plan is not None else [],
        "skipped_count": len(plan.skipped) if plan is not None else 0,
        "can_send": plan is not None and plan.can_send and refusal is None,
        "credits_needed": credits_format(plan.credits_needed, organization=organization) if plan else "",
        "credits_available": credits_format(plan.credits_available, organization=organization) if plan else "",
        "credits_short": short,
        "can_buy_credits": request.membership.has_perm(Perm.CREDITS_MANAGE),
        "statement_period": statement_period,
        "key": secrets.token_urlsafe(24),
    }
    if request.headers.get("HX-Request") and request.method == "GET":
        return render(request, "whatsapp/bulk/_summary.html", context, status=status)
    return render(request, "whatsapp/bulk/summary.html", context, status=status)


def _list_filter(kind: BulkKind, raw: str) -> DocumentListFilter | ContactListFilter:
    """The list's filter a "Select all N matching" posted (the list's own query string), read by
    the list's own code: the kind's document list, or the party's contact list."""
    params = QueryDict(raw)
    if kind.spec.document_kind:
        return DocumentListFilter.from_params(KINDS[kind.spec.document_kind], params)
    return ContactListFilter.from_params(kind.spec.party, params)


def _matching_ids(request: HttpRequest, kind: BulkKind, raw: str) -> tuple[list[int], NotificationRefused | None]:
    """The ids of every row the list shows under its filter, in the list's order, or the refusal of
    a filter matching more than a bulk send takes."""
    ids, matched = list_filter_ids(
        list_filter=_list_filter(kind, raw), organization=_organization(request), limit=MAX_SELECTION
    )
    if matched <= MAX_SELECTION:
        return ids, None
    message = _("%(count)s match this list; a bulk send takes at most %(max)s. Narrow it with a filter or a search.")
    numbers = {
        "count": number_format(matched, force_grouping=True),
        "max": number_format(MAX_SELECTION, force_grouping=True),
    }
    return [], NotificationRefused("selection_too_large", message % numbers)


def _summary_query(params: QueryDict, ids: list[int]) -> str:
    """The summary's own URL query for a POSTed selection: the list's filter when it was "all
    matching" (reloading shows what matches then), else the ids; the chosen template and
    statement period kept."""
    query = {"matching": params["matching"]} if "matching" in params else {"ids": ",".join(map(str, ids))}
    for name in ("template", *PERIOD_FIELDS):
        if params.get(name):
            query[name] = params[name]
    return urlencode(query)


@member_required(Perm.NOTIFICATIONS_SEND)
@require_http_methods(["GET", "POST"])
def bulk_new(request: HttpRequest, module: str) -> HttpResponse:
    """The summary before a bulk send (reads only).

    The selection is a list's ticked rows (``selected``), the summary's own ``ids``, or the list's
    filter (``matching``: "Select all N matching"), resolved here by the list's code. A list's POST
    comes back here as a GET when its URL stays short; the summary's own POST (another template,
    by htmx or without JavaScript) carries its ids in the body, however many, and is answered
    with the summary.
    """
    kind = _kind(request, module)
    params = request.POST if request.method == "POST" else request.GET
    template = _template(_organization(request), params)
    period = _period(kind, params)
    if "matching" in params:
        ids, refusal = _matching_ids(request, kind, params["matching"])
        if refusal is not None:
            return _render_summary(request, kind, ids, template, period, error=refusal)
    else:
        ids = _ids(params)
    if request.method == "POST" and not request.headers.get("HX-Request"):
        query = _summary_query(params, ids)
        if len(query) <= MAX_QUERY_LENGTH:
            return redirect(f"{request.path}?{query}")
    return _render_summary(request, kind, ids, template, period)


@member_required(Perm.NOTIFICATIONS_SEND)
@require_POST
def bulk_start(request: HttpRequest, module: str) -> HttpResponse:
    """Start the bulk send the summary showed; a refusal comes back on the summary (400)."""
    kind = _kind(request, module)
    ids = _ids(request.POST)
    organization = _organization(request)
    template = _template(organization, request.POST)
    period = _period(kind, request.POST)
    if isinstance(template, NotificationRefused):
        return _render_summary(request, kind, ids, template, period, error=template, status=400)
    if isinstance(period, NotificationRefused):
        return _render_summary(request, kind, ids, template, period, error=period, status=400)
    key = request.POST.get("key", "").strip()[:64]
    try:
        bulk, created = bulk_send_start(
            organization=organization,
            target=kind.target,
            module=kind.module,
            ids=ids,
            template=template,
            statement_from=period[0],
            statement_to=period[1],
            user=request.user,
            idempotency_key=f"{IDEMPOTENCY_PREFIX}{key}" if key else "",
        )
    except NotificationRefused as refusal:
        return _render_summary(request, kind, ids, template, period, error=refusal, status=400)
    except IdempotencyConflict:
        conflict = NotificationRefused(
            "idempotency_conflict",
            _("This page already started another bulk send. Check the summary and press Send again."),
        )
        return _render_summary(request, kind, ids, template, period, error=conflict, status=400)
    if created:
        messages.success(
            request,
            ngettext("Bulk send started: %(count)d selected.", "Bulk send started: %(count)d selected.", bulk.total)
            % {"count": bulk.total},
        )
    return redirect("whatsapp_send:bulk", pk=bulk.pk)


# --- Progress ----------------------------------------------------------------------------------


def _bulk(request: HttpRequest, pk: int) -> tuple[BulkSend, BulkKind]:
    bulk = bulk_send_get(organization=_organization(request), pk=pk)
    if bulk is None or bulk.module not in MODULES:
        raise Http404(_("No such bulk send."))
    kind = BulkKind(MODULES[bulk.module])
    _require(request, kind.perm)
    return bulk, kind


def _page_number(request: HttpRequest, pages: int) -> int:
    raw = request.GET.get("page", "")
    return min(max(int(raw), 1), max(pages, 1)) if raw.isdigit() and len(raw) < 7 else 1


def _progress_context(request: HttpRequest, bulk: BulkSend, kind: BulkKind) -> dict[str, Any]:
    progress = bulk_progress(bulk=bulk)
    counts = progress.counts
    finished = bulk.state in (BulkSend.State.DONE, BulkSend.State.FAILED)
    skipped = [Skipped(item["id"], item["label"], item["code"], item["reason"]) for item in bulk.skipped]
    pages = -(-len(bulk.target_ids) // OUTCOMES_PER_PAGE)
    number = _page_number(request, pages)
    outcomes = bulk_outcome_list(bulk=bulk, offset=(number - 1) * OUTCOMES_PER_PAGE, limit=OUTCOMES_PER_PAGE)
    stale = bulk.finished_at is not None and timezone.now() - bulk.finished_at > POLL_FOR
    return {
        "bulk": bulk,
        "kind": kind,
        "module_label": Module(bulk.module).label if bulk.module in Module.values else bulk.module,
        "progress": progress,
        # A bulk send that queued nothing (all skipped, or refused as a whole) is complete at 100 %.
        "percent": 100 if progress.is_complete else progress.percent,
        "finished": finished,
        "polling": not progress.is_complete and not stale,
        "stale": stale and not progress.is_complete,
        "poll_seconds": POLL_SECONDS,
        "counts": {
            "queued": sum(counts.get(status, 0) for status in ACTIVE_STATUSES),
            "sent": counts.get(MessageStatus.SENT, 0),
            "delivered": counts.get(MessageStatus.DELIVERED, 0),
            "read": counts.get(MessageStatus.READ, 0),
            "failed": counts.get(MessageStatus.FAILED, 0),
        },
        "skipped_count": len(skipped),
        "skipped_groups": _skipped_groups(kind, skipped),
        "outcomes": [
            {"outcome": outcome, "url": kind.item_url(outcome.id) if outcome.found else ""} for outcome in outcomes
        ],
        "page_number": number,
        "pages": pages,
        "page_first": (number - 1) * OUTCOMES_PER_PAGE + 1,
        "page_last": min(number * OUTCOMES_PER_PAGE, len(bulk.target_ids)),
        "poll_url": f"{reverse('whatsapp_send:bulk_progress', args=[bulk.pk])}?page={number}",
    }


def _htmx_login_redirect(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A poll whose session expired: tell htmx to go to the login page (``HX-Redirect``, 204)
    instead of following the login redirect and swapping the login form into the card."""

    @wraps(view)
    def wrapper(request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.is_authenticated and request.headers.get("HX-Request"):
            page = reverse("whatsapp_send:bulk", args=[pk])
            response = HttpResponse(status=204)
            response["HX-Redirect"] = redirect_to_login(page, settings.LOGIN_URL)["Location"]
            return response
        return view(request, pk)

    return wrapper


@member_required(Perm.NOTIFICATIONS_SEND)
@require_GET
def bulk_detail(request: HttpRequest, pk: int) -> HttpResponse:
    bulk, kind = _bulk(request, pk)
    return render(request, "whatsapp/bulk/progress.html", _progress_context(request, bulk, kind))


@_htmx_login_redirect
@member_required(Perm.NOTIFICATIONS_SEND)
@require_GET
def bulk_progress_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the progress page alone, for htmx's poll."""
    bulk, kind = _bulk(request, pk)
    return render(request, "whatsapp/bulk/_progress.html", _progress_context(request, bulk, kind))


# --- Recent bulk sends -------------------------------------------------------------------------


@member_required(Perm.NOTIFICATIONS_SEND)
@require_GET
def bulk_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(bulk_send_list(organization=_organization(request)), BULK_SENDS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    bulks = list(page.object_list)
    progress = bulk_progress_list(bulks=bulks)  # one query for the page's messages
    rows = []
    for bulk in bulks:
        finished = bulk.state in (BulkSend.State.DONE, BulkSend.State.FAILED)
        counts = progress[bulk.pk].counts
        delivered = counts.get(MessageStatus.DELIVERED, 0) + counts.get(MessageStatus.READ, 0)
        failed = counts.get(MessageStatus.FAILED, 0)
        rows.append(
            {
                "bulk": bulk,
                "module_label": Module(bulk.module).label if bulk.module in Module.values else bulk.module,
                # Every selected one is either queued (``sent``) or skipped once the task is done.
                "skipped": bulk.total - bulk.sent if finished else None,
                "delivered": delivered,
                "failed": failed,
                # Queued, being sent, or sent without a delivery receipt yet.
                "on_the_way": progress[bulk.pk].messages - delivered - failed,
                # As the progress page: every message sent or failed (or none to send).
                "complete": progress[bulk.pk].is_complete,
            }
        )
    return render(
        request, "whatsapp/bulk/list.html", {"organization": _organization(request), "page": page, "rows": rows}
    )


# --- Resume a paused bulk send -------------------------------------------------------------------


@member_required(Perm.NOTIFICATIONS_SEND)
@require_POST
def bulk_resume(request: HttpRequest, pk: int) -> HttpResponse:
    """The "Resume sending" button of a bulk send Meta's spam limit paused: its held messages go out
    again (:func:`~whatsapp.services.bulk_pause.bulk_send_resume`); then back to its progress page."""
    bulk, _kind = _bulk(request, pk)
    released = bulk_send_resume(bulk=bulk)
    if released is None:
        messages.info(request, _("This bulk send is not paused."))
    else:
        messages.success(
            request,
            ngettext(
                "Sending resumed: %(count)d message goes out again.",
                "Sending resumed: %(count)d messages go out again.",
                released,
            )
            % {"count": released},
        )
    return redirect("whatsapp_send:bulk", pk=bulk.pk)
