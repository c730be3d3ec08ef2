"""Buying credits: a purchase at today's price, a checkout at the payment gateway, and the credits
added exactly once when the gateway confirms the payment.

The order of things keeps money and credits in step: the purchase row is committed (pending)
before the gateway is called, the gateway is called outside any transaction, and only the
gateway's confirmation (its signed webhook, its answer when asked, or the sandbox's Pay button)
adds the credits, under the organization's credit lock, once however often it arrives.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from books.models import Organization
from credits.choices import EntryKind, PurchaseStatus
from credits.gateways import GatewayError, gateway_get
from credits.locks import purchase_lock
from credits.models import Purchase
from credits.selectors import credit_pack_price_get

from .ledger import MAX_CREDITS, entries_save, entry_apply

logger = logging.getLogger(__name__)

#: The most credits one purchase may buy (a typo guard, far above any real order).
MAX_QUANTITY = 1_000_000
RECEIPT_PREFIX = "CR-"


def purchase_quote(*, organization: Organization, quantity: int) -> tuple[Decimal, Decimal]:
    """``(unit_price, total)`` for ``quantity`` credits in the organization's currency.

    Raises ValidationError for a quantity out of range, or when credits cannot be bought in the
    organization's currency (no price for it).
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationError(
            {"quantity": _("Enter a whole number of credits from 1 to %(max)s.") % {"max": f"{MAX_QUANTITY:,}"}}
        )
    pack = credit_pack_price_get(currency=organization.currency)
    if pack is None:
        raise ValidationError(
            _(
                "IM credits cannot be bought in %(currency)s yet. Ask the hub's administrator to add a price "
                "for %(currency)s."
            )
            % {"currency": organization.currency}
        )
    return pack.unit_price, (pack.unit_price * quantity).quantize(Decimal("0.01"))


def purchase_create(
    *, organization: Organization, quantity: int, user: AbstractBaseUser | None = None, gateway: str | None = None
) -> Purchase:
    """A pending purchase of ``quantity`` credits at today's price, for the gateway in
    ``CREDITS_GATEWAY`` (or ``gateway``). No credits move until the payment is confirmed."""
    unit_price, total = purchase_quote(organization=organization, quantity=quantity)
    return Purchase.objects.create(
        organization=organization,
        quantity=quantity,
        unit_price=unit_price,
        currency=organization.currency,
        total=total,
        gateway=gateway or settings.CREDITS_GATEWAY,
        created_by=user,
    )


def purchase_checkout_start(*, purchase: Purchase, success_url: str, cancel_url: str) -> Purchase:
    """Open the gateway's payment page for a pending purchase; returns it with ``checkout_url`` set.

    Calls the gateway: call it outside any transaction (no row lock may wait on the network).
    When the gateway refuses, the purchase becomes failed with the reason and the GatewayError is
    raised again.
    """
    if purchase.status != PurchaseStatus.PENDING:
        raise ValidationError(_("This purchase is %(status)s.") % {"status": purchase.get_status_display()})
    if purchase.checkout_url:
        return purchase
    try:
        checkout = gateway_get(purchase.gateway).checkout_create(
            purchase=purchase, success_url=success_url, cancel_url=cancel_url
        )
    except GatewayError as exc:
        Purchase.objects.filter(pk=purchase.pk, status=PurchaseStatus.PENDING).update(
            status=PurchaseStatus.FAILED, failure_reason=exc.message
        )
        purchase.status, purchase.failure_reason = PurchaseStatus.FAILED, exc.message
        raise
    # Conditional: a confirmation that raced ahead (it can't before the buyer has the URL) wins.
    Purchase.objects.filter(pk=purchase.pk, gateway_reference="").update(
        gateway_reference=checkout.reference, checkout_url=checkout.url
    )
    purchase.refresh_from_db()
    return purchase


@transaction.atomic
def purchase_confirm(*, purchase: Purchase, gateway_reference: str) -> Purchase:
    """The gateway says the purchase is paid: add its credits, once.

    Idempotent: a paid (or refunded) purchase is returned unchanged, so a webhook delivered twice
    adds the credits once. ``gateway_reference`` must be the purchase's checkout when it has one
    (ValidationError otherwise). A cancelled or failed purchase is still credited: the gateway
    saying the money arrived is what counts. The purchase gets its receipt number (CR-000001,
    per organization).
    """
    if not gateway_reference:
        raise ValidationError(_("The payment gateway's reference is missing."))
    account, purchase = purchase_lock(purchase=purchase)
    if purchase.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED):
        return purchase
    if purchase.gateway_reference and purchase.gateway_reference != gateway_reference:
        raise ValidationError(_("This payment belongs to another checkout than the purchase's."))
    if account.balance + purchase.quantity > MAX_CREDITS:
        raise ValidationError(_("The balance cannot grow that large."))
    # Numbers are taken under the organization's credit lock: no two receipts share one.
    issued = Purchase.objects.filter(organization_id=purchase.organization_id).exclude(receipt_number="").count()
    purchase.status = PurchaseStatus.PAID
    purchase.gateway_reference = gateway_reference
    purchase.receipt_number = f"{RECEIPT_PREFIX}{issued + 1:06d}"
    purchase.paid_at = timezone.now()
    purchase.save(update_fields=["status", "gateway_reference", "receipt_number", "paid_at"])
    available_before = account.available
    entry = entry_apply(
        account,
        kind=EntryKind.PURCHASE,
        amount=Decimal(purchase.quantity),
        purchase=purchase,
        reference=f"credits.purchase:{purchase.pk}",
        note=purchase.receipt_number,
        created_by=purchase.created_by,
    )
    entries_save(account, [entry], organization=purchase.organization, available_before=available_before)
    logger.info(
        "Organization %s: purchase %s paid, %s credits added.", purchase.organization_id, purchase.pk, purchase.quantity
    )
    return purchase


def purchase_cancel(*, purchase: Purchase, reason: str = "") -> Purchase:
    """The buyer left the checkout (or it expired): a pending purchase becomes cancelled. Anything
    else is returned unchanged; a payment that arrives later is still credited."""
    Purchase.objects.filter(pk=purchase.pk, status=PurchaseStatus.PENDING).update(
        status=PurchaseStatus.CANCELLED, failure_reason=reason
    )
    purchase.refresh_from_db()
    return purchase


def purchase_sync(*, purchase: Purchase) -> Purchase:
    """Ask the gateway whether a pending purchase was paid, and confirm it if so.

    For the buyer's return page, when the gateway's webhook has not arrived (yet). Calls the
    gateway: not inside a transaction. A gateway that cannot answer leaves the purchase as it is.
    """
    if purchase.status not in (PurchaseStatus.PENDING, PurchaseStatus.CANCELLED) or not purchase.gateway_reference:
        return purchase
    try:
        paid = gateway_get(purchase.gateway).checkout_paid(reference=purchase.gateway_reference)
    except GatewayError as exc:
        logger.info("Purchase %s: could not ask the gateway (%s).", purchase.pk, exc.message)
        return purchase
    if paid:
        return purchase_confirm(purchase=purchase, gateway_reference=purchase.gateway_reference)
    return purchase


@transaction.atomic
def purchase_refund(*, purchase: Purchase, user: AbstractBaseUser | None, note: str = "") -> Purchase:
    """Take a paid purchase's credits back after its payment was refunded at the gateway.

    Administrators only; the money itself is refunded in the gateway's dashboard. Refused
    (ValidationError) when the purchase is not paid, or when taking the credits back would leave
    fewer than are held for messages in flight.
    """
    account, purchase = purchase_lock(purchase=purchase)
    if purchase.status != PurchaseStatus.PAID:
        raise ValidationError(_("Only a paid purchase can be refunded."))
    if account.balance - purchase.quantity < account.reserved:
        raise ValidationError(
            _(
                "%(quantity)s credits cannot be taken back: %(balance)s are left and %(reserved)s are reserved "
                "for messages in flight."
            )
            % {"quantity": purchase.quantity, "balance": account.balance, "reserved": account.reserved}
        )
    purchase.status = PurchaseStatus.REFUNDED
    purchase.save(update_fields=["status"])
    available_before = account.available
    entry = entry_apply(
        account,
        kind=EntryKind.REFUND,
        amount=-Decimal(purchase.quantity),
        purchase=purchase,
        reference=f"credits.purchase:{purchase.pk}",
        note=note or purchase.receipt_number,
        created_by=user,
    )
    entries_save(account, [entry], organization=purchase.organization, available_before=available_before)
    return purchase
