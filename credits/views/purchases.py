"""Buying IM credits: quantity → price per credit → "Calculate payment" → "Make payment" → the
payment gateway → back to the hub, and a receipt per paid purchase.

URL names (namespace ``credits``): ``buy``, ``buy_calculate`` (htmx), ``purchase`` (the return
page after the gateway), ``purchase_cancel``, ``purchase_status`` (htmx polling), ``receipt``,
``receipt_pdf`` and ``sandbox_checkout``.

Buying needs ``credits.manage``; purchases are looked up within the organization, so another
organization's purchase is a 404. The gateway is called outside any transaction, after the
pending purchase is saved; only the gateway's confirmation adds credits.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from books.formatting import money_format
from credits.choices import Gateway, PurchaseStatus
from credits.forms import BuyForm
from credits.gateways import GatewayError
from credits.models import Purchase
from credits.pdf import receipt_context, receipt_filename, receipt_pdf
from credits.selectors import credit_balance_get, credit_pack_price_get, purchase_get
from credits.services import (
    purchase_cancel,
    purchase_checkout_start,
    purchase_confirm,
    purchase_create,
    purchase_quote,
    purchase_sync,
)
from credits.views.access import credits_manager_required, credits_reader_required

#: How often a return page asks whether a pending payment was confirmed (seconds).
POLL_SECONDS = 3


def _purchase_or_404(request: HttpRequest, pk: int) -> Purchase:
    try:
        return purchase_get(organization=request.organization, pk=pk)
    except Purchase.DoesNotExist:
        raise Http404(_("No such purchase.")) from None


def _quote(request: HttpRequest, form: BuyForm) -> dict[str, object]:
    """The total for a valid form, or the reason there is none (errors go on the form)."""
    if not form.is_valid():
        return {}
    organization = request.organization
    try:
        unit_price, total = purchase_quote(organization=organization, quantity=form.cleaned_data["quantity"])
    except ValidationError as exc:
        form.add_error(None, exc)  # a dict of field errors lands on its fields
        return {}
    return {
        "quantity": form.cleaned_data["quantity"],
        "unit_price_display": money_format(unit_price, organization.currency, organization=organization),
        "total_display": money_format(total, organization.currency, organization=organization),
    }


def _buy_context(request: HttpRequest, form: BuyForm, quote: dict[str, object]) -> dict[str, object]:
    organization = request.organization
    pack = credit_pack_price_get(currency=organization.currency)
    return {
        "nav": "settings",
        "form": form,
        "quote": quote,
        "pack": pack,
        "unit_price_display": money_format(pack.unit_price, pack.currency, organization=organization) if pack else "",
        "balance": credit_balance_get(organization=organization),
        "sandbox": settings.CREDITS_GATEWAY == Gateway.SANDBOX,
    }


@credits_manager_required
@require_http_methods(["GET", "POST"])
def buy(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST with ``calculate``: the total (without htmx). POST: make the payment."""
    if request.method == "GET":
        return render(request, "credits/buy.html", _buy_context(request, BuyForm(), {}))
    form = BuyForm(request.POST)
    quote = _quote(request, form)
    if "calculate" in request.POST or not quote:
        return render(request, "credits/buy.html", _buy_context(request, form, quote))
    organization = request.organization
    try:
        purchase = purchase_create(organization=organization, quantity=form.cleaned_data["quantity"], user=request.user)
    except ValidationError as exc:
        form.add_error(None, exc)
        return render(request, "credits/buy.html", _buy_context(request, form, {}))
    success_url = request.build_absolute_uri(reverse("credits:purchase", args=[purchase.pk]))
    cancel_url = request.build_absolute_uri(reverse("credits:purchase_cancel", args=[purchase.pk]))
    try:
        purchase = purchase_checkout_start(purchase=purchase, success_url=success_url, cancel_url=cancel_url)
    except GatewayError as exc:
        messages.error(request, _("The payment could not be started: %(reason)s") % {"reason": exc.message})
        return redirect("credits:overview")
    return redirect(purchase.checkout_url)


@credits_manager_required
@require_POST
def buy_calculate(request: HttpRequest) -> HttpResponse:
    """The "Calculate payment" answer, for htmx: the total, or what is wrong with the quantity."""
    form = BuyForm(request.POST)
    quote = _quote(request, form)
    return render(request, "credits/_total.html", {"form": form, "quote": quote})


@credits_reader_required
@require_GET
def purchase(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the gateway sends the buyer back after paying, and the purchase's page afterwards.

    If the gateway's confirmation has not arrived yet, the gateway is asked once; the page then
    refreshes itself until the purchase is no longer pending.
    """
    purchase = _purchase_or_404(request, pk)
    if purchase.status == PurchaseStatus.PENDING:
        purchase = purchase_sync(purchase=purchase)
    return render(request, "credits/purchase.html", _purchase_context(request, purchase))


@credits_manager_required
@require_GET
def purchase_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the gateway sends the buyer who left the checkout."""
    purchase = purchase_cancel(purchase=_purchase_or_404(request, pk), reason=_("Left the checkout."))
    if purchase.status == PurchaseStatus.CANCELLED:
        messages.info(request, _("The payment was cancelled. No IM credits were bought."))
    return redirect("credits:purchase", pk=purchase.pk)


@credits_reader_required
@require_GET
def purchase_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status card of a purchase, for htmx polling while it is pending."""
    purchase = _purchase_or_404(request, pk)
    return render(request, "credits/_purchase_status.html", _purchase_context(request, purchase))


def _purchase_context(request: HttpRequest, purchase: Purchase) -> dict[str, object]:
    organization = request.organization
    return {
        "nav": "settings",
        "purchase": purchase,
        "total_display": money_format(purchase.total, purchase.currency, organization=organization),
        "unit_price_display": money_format(purchase.unit_price, purchase.currency, organization=organization),
        "balance": credit_balance_get(organization=organization),
        "polling": purchase.status == PurchaseStatus.PENDING and bool(purchase.gateway_reference),
        "poll_seconds": POLL_SECONDS,
    }


# --- Receipts -----------------------------------------------------------------------------------------


def _paid_purchase_or_404(request: HttpRequest, pk: int) -> Purchase:
    purchase = _purchase_or_404(request, pk)
    if not purchase.receipt_number:
        raise Http404(_("This purchase has no receipt: it was not paid."))
    return purchase


@credits_reader_required
@require_GET
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    """A printable receipt of a paid purchase."""
    purchase = _paid_purchase_or_404(request, pk)
    return render(request, "credits/receipt.html", receipt_context(purchase))


@credits_reader_required
@require_GET
def receipt_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    purchase = _paid_purchase_or_404(request, pk)
    response = HttpResponse(receipt_pdf(purchase), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{receipt_filename(purchase)}"'
    return response


# --- The sandbox gateway's checkout page -----------------------------------------------------------------


@credits_manager_required
@require_http_methods(["GET", "POST"])
def sandbox_checkout(request: HttpRequest, pk: int) -> HttpResponse:
    """The sandbox's stand-in for a payment page: Pay confirms the purchase through the same
    ``purchase_confirm`` a gateway's webhook calls; Cancel leaves it. Only for purchases made
    with the sandbox gateway, and only while it is the configured one (else 404)."""
    purchase = _purchase_or_404(request, pk)
    if settings.CREDITS_GATEWAY != Gateway.SANDBOX or purchase.gateway != Gateway.SANDBOX:
        raise Http404(_("The sandbox payment gateway is not in use."))
    if request.method == "POST":
        if request.POST.get("action") == "pay" and purchase.status in (
            PurchaseStatus.PENDING,
            PurchaseStatus.CANCELLED,
        ):
            try:
                purchase_confirm(purchase=purchase, gateway_reference=purchase.gateway_reference)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(
                    request,
                    _("Payment received: %(quantity)s IM credits were added.") % {"quantity": purchase.quantity},
                )
            return redirect("credits:purchase", pk=purchase.pk)
        if purchase_cancel(purchase=purchase, reason=_("Left the checkout.")).status == PurchaseStatus.CANCELLED:
            messages.info(request, _("The payment was cancelled. No IM credits were bought."))
        return redirect("credits:purchase", pk=purchase.pk)
    return render(request, "credits/sandbox_checkout.html", _purchase_context(request, purchase))
