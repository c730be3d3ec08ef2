"""Settings → IM credits: the balance, the low-balance alert, purchases and the ledger.

URL names (namespace ``credits``, mounted at ``settings/credits/``): ``overview``, ``threshold``
(POST) and ``ledger``.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from credits.choices import EntryKind
from credits.forms import ThresholdForm
from credits.selectors import credit_balance_get, credit_pack_price_get, ledger_list, purchase_list
from credits.services import credits_threshold_set
from credits.views.access import can_manage, credits_manager_required, credits_reader_required

RECENT = 10
LEDGER_PAGE_SIZE = 50


@credits_reader_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    balance = credit_balance_get(organization=organization)
    return render(
        request,
        "credits/overview.html",
        {
            "nav": "settings",
            "balance": balance,
            "can_manage": can_manage(request),
            "pack_price": credit_pack_price_get(currency=organization.currency),
            "threshold_form": ThresholdForm(initial={"low_balance_threshold": balance.threshold}),
            "purchases": list(purchase_list(organization=organization)[:RECENT]),
            "entries": list(ledger_list(organization=organization)[:RECENT]),
        },
    )


@credits_manager_required
@require_POST
def threshold(request: HttpRequest) -> HttpResponse:
    form = ThresholdForm(request.POST)
    if form.is_valid():
        try:
            credits_threshold_set(
                organization=request.organization, threshold=form.cleaned_data["low_balance_threshold"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The low-balance alert threshold was saved."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("credits:overview")


@credits_reader_required
@require_GET
def ledger(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in EntryKind.values:
        kind = ""
    entries = ledger_list(organization=request.organization, kind=kind or None)
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "credits/ledger.html",
        {"nav": "settings", "page": page, "kind": kind, "kinds": EntryKind.choices},
    )
