"""Buying credits, as services: price of the day, credits added once on confirmation, receipts, refunds."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from credits.choices import EntryKind, PurchaseStatus
from credits.models import CreditPackPrice, LedgerEntry
from credits.selectors import credit_balance_get
from credits.services import (
    ReservationRequest,
    credits_reserve,
    purchase_cancel,
    purchase_checkout_start,
    purchase_confirm,
    purchase_create,
    purchase_refund,
)
from tests.books.factories import make_organization

pytestmark = pytest.mark.django_db

D = Decimal


def test_a_purchase_is_priced_in_the_organizations_currency(org, org_admin, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=250, user=org_admin)

    assert (purchase.quantity, purchase.unit_price, purchase.currency, purchase.total) == (
        250,
        D("1.00"),
        "INR",
        D("250.00"),
    )
    assert (purchase.status, purchase.gateway, purchase.created_by) == (PurchaseStatus.PENDING, "sandbox", org_admin)
    assert credit_balance_get(organization=org).balance == 0


def test_a_currency_without_a_price_cannot_buy():
    organization = make_organization(name="Yen Traders", country="JP", currency="JPY", time_zone="Asia/Tokyo")

    with pytest.raises(ValidationError) as caught:
        purchase_create(organization=organization, quantity=10)

    assert "cannot be bought in JPY" in " ".join(caught.value.messages)


@pytest.mark.parametrize("quantity", [0, -5, 1_000_001, True, "10"])
def test_a_quantity_must_be_a_whole_positive_number(org, quantity):
    with pytest.raises(ValidationError):
        purchase_create(organization=org, quantity=quantity)


def test_confirming_adds_the_credits_once_with_a_receipt_number(org, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=100)
    purchase = purchase_checkout_start(purchase=purchase, success_url="http://x/ok", cancel_url="http://x/no")

    confirmed = purchase_confirm(purchase=purchase, gateway_reference=purchase.gateway_reference)
    again = purchase_confirm(purchase=purchase, gateway_reference=purchase.gateway_reference)

    assert confirmed.status == again.status == PurchaseStatus.PAID
    assert confirmed.receipt_number == again.receipt_number == "CR-000001"
    assert confirmed.paid_at is not None
    assert credit_balance_get(organization=org).balance == D("100.00")
    entry = LedgerEntry.objects.get(organization=org, kind=EntryKind.PURCHASE)
    assert (entry.amount, entry.purchase_id, entry.balance_after) == (D("100"), purchase.pk, D("100.00"))


def test_receipt_numbers_count_per_organization(org, sandbox_gateway):
    other = make_organization(name="Globex")
    numbers = []
    for organization in (org, org, other):
        purchase = purchase_create(organization=organization, quantity=1)
        numbers.append(purchase_confirm(purchase=purchase, gateway_reference=f"ref-{purchase.pk}").receipt_number)

    assert numbers == ["CR-000001", "CR-000002", "CR-000001"]


def test_a_confirmation_for_another_checkout_is_refused(org, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=5)
    purchase = purchase_checkout_start(purchase=purchase, success_url="http://x/ok", cancel_url="http://x/no")

    with pytest.raises(ValidationError):
        purchase_confirm(purchase=purchase, gateway_reference="cs_someone_elses")

    assert credit_balance_get(organization=org).balance == 0


def test_a_cancelled_purchase_paid_after_all_is_credited(org, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=5)
    purchase = purchase_checkout_start(purchase=purchase, success_url="http://x/ok", cancel_url="http://x/no")
    purchase_cancel(purchase=purchase)

    purchase = purchase_confirm(purchase=purchase, gateway_reference=purchase.gateway_reference)

    assert purchase.status == PurchaseStatus.PAID
    assert credit_balance_get(organization=org).balance == D("5.00")


def test_cancelling_leaves_a_paid_purchase_alone(org, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=5)
    purchase_confirm(purchase=purchase, gateway_reference="ref")

    assert purchase_cancel(purchase=purchase).status == PurchaseStatus.PAID


def test_a_refund_takes_the_credits_back_unless_they_are_reserved(org, org_admin, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=10)
    purchase_confirm(purchase=purchase, gateway_reference="ref")
    credits_reserve(organization=org, requests=[ReservationRequest("m:1", D("1"), "utility")])

    with pytest.raises(ValidationError):
        purchase_refund(purchase=purchase, user=org_admin)

    from credits.services import reservation_release

    reservation_release(organization=org, reference="m:1")
    refunded = purchase_refund(purchase=purchase, user=org_admin)

    assert refunded.status == PurchaseStatus.REFUNDED
    assert credit_balance_get(organization=org).balance == 0
    entry = LedgerEntry.objects.get(organization=org, kind=EntryKind.REFUND)
    assert (entry.amount, entry.created_by) == (D("-10"), org_admin)
    with pytest.raises(ValidationError):
        purchase_refund(purchase=purchase, user=org_admin)


def test_a_pack_price_finer_than_the_currencys_smallest_unit_is_refused():
    with pytest.raises(ValidationError) as caught:
        CreditPackPrice(currency="JPY", unit_price=D("1.50")).full_clean()

    assert "unit_price" in caught.value.message_dict
    CreditPackPrice(currency="JPY", unit_price=D("2")).full_clean()
