"""Django admin for IM credits: every page loads, money changes only through the services and only
for superusers, and a scoped staff user sees their own organization's rows only."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from books.services.organizations import membership_add
from credits.choices import EntryKind, PurchaseStatus
from credits.models import CreditAccount, CreditPackPrice, LedgerEntry, Price, Purchase, Reservation
from credits.selectors import credit_balance_get
from credits.services import ReservationRequest, credits_reserve, purchase_confirm, purchase_create
from tests.books.factories import UserFactory, make_organization

from .factories import fund

pytestmark = pytest.mark.django_db

D = Decimal
MODELS = [CreditAccount, LedgerEntry, Reservation, Price, CreditPackPrice, Purchase]


def changelist(model) -> str:
    return reverse(f"admin:credits_{model._meta.model_name}_changelist")


def change(obj) -> str:
    return reverse(f"admin:credits_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def rows(prices):
    """A row in every credits table, for two organizations."""
    data = {}
    for name in ("Own Traders", "Foreign Traders"):
        organization = make_organization(name=name)
        fund(organization, "100")
        [reservation] = credits_reserve(
            organization=organization, requests=[ReservationRequest("m:1", D("1"), "utility")]
        )
        purchase = purchase_create(organization=organization, quantity=10, gateway="sandbox")
        price = Price.objects.create(
            organization=organization, category="marketing", country_code="91", credits=D("0.9")
        )
        data[name] = {
            "organization": organization,
            "account": CreditAccount.objects.get(organization=organization),
            "entry": LedgerEntry.objects.filter(organization=organization).first(),
            "reservation": reservation,
            "purchase": purchase,
            "price": price,
        }
    data["pack"] = CreditPackPrice.objects.get(currency="INR")
    return data


@pytest.fixture
def staff_client(client, rows):
    user = UserFactory(username="org-admin", is_staff=True)
    membership_add(organization=rows["Own Traders"]["organization"], user=user, role_name="Admin")
    client.force_login(user)
    return client


def test_every_credits_model_is_registered():
    assert set(MODELS) <= set(admin.site._registry)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_for_a_superuser(admin_client, rows, model):
    key = {
        CreditAccount: "account",
        LedgerEntry: "entry",
        Reservation: "reservation",
        Price: "price",
        Purchase: "purchase",
    }
    obj = rows["pack"] if model is CreditPackPrice else rows["Foreign Traders"][key[model]]

    assert admin_client.get(changelist(model)).status_code == 200
    assert admin_client.get(change(obj)).status_code == 200


def test_a_scoped_staff_user_sees_only_their_organizations_rows(staff_client, rows):
    own, foreign = rows["Own Traders"], rows["Foreign Traders"]

    for model, key in ((CreditAccount, "account"), (LedgerEntry, "entry"), (Purchase, "purchase"), (Price, "price")):
        response = staff_client.get(changelist(model))
        assert response.status_code == 200
        assert {obj.organization for obj in response.context["cl"].queryset} == {own["organization"]}, model
        assert staff_client.get(change(foreign[key])).status_code == 302, model


def test_only_superusers_see_the_price_of_a_credit(staff_client):
    assert staff_client.get(changelist(CreditPackPrice)).status_code == 403


def test_the_ledger_cannot_be_edited_in_the_admin(admin_client, rows):
    entry = rows["Own Traders"]["entry"]

    response = admin_client.get(change(entry))

    assert response.status_code == 200
    assert not response.context["adminform"].form.fields  # every field read-only
    assert admin_client.post(reverse("admin:credits_ledgerentry_delete", args=[entry.pk])).status_code == 403


def test_a_superuser_adjusts_credits_with_a_reason(admin_client, rows):
    own = rows["Own Traders"]
    url = reverse("admin:credits_creditaccount_adjust", args=[own["account"].pk])

    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"amount": "-99.50", "note": "Refund of a duplicate top-up"})
    assert response.status_code == 200  # would leave 0.50 while 1 is reserved
    assert credit_balance_get(organization=own["organization"]).balance == D("100.00")

    response = admin_client.post(url, {"amount": "-20", "note": "Refund of a duplicate top-up"})

    assert response.status_code == 302
    entry = LedgerEntry.objects.filter(organization=own["organization"], kind=EntryKind.ADJUSTMENT).latest("id")
    assert (entry.amount, entry.note, entry.created_by.is_superuser) == (
        D("-20.00"),
        "Refund of a duplicate top-up",
        True,
    )


def test_an_organization_administrator_cannot_adjust_their_own_credits(staff_client, rows):
    own = rows["Own Traders"]

    response = staff_client.post(
        reverse("admin:credits_creditaccount_adjust", args=[own["account"].pk]), {"amount": "1000", "note": "free"}
    )

    assert response.status_code == 403
    assert credit_balance_get(organization=own["organization"]).balance == D("100.00")


def test_the_threshold_is_saved_through_the_service_and_the_balance_is_read_only(staff_client, rows):
    own = rows["Own Traders"]

    response = staff_client.post(change(own["account"]), {"low_balance_threshold": "75", "balance": "99999"})

    assert response.status_code == 302
    account = CreditAccount.objects.get(pk=own["account"].pk)
    assert (account.low_balance_threshold, account.balance) == (D("75.00"), D("100.00"))


def test_mark_paid_confirms_a_purchase_once(admin_client, rows):
    purchase = rows["Own Traders"]["purchase"]

    for _ in range(2):
        response = admin_client.post(
            changelist(Purchase), {"action": "mark_paid", "_selected_action": [purchase.pk]}, follow=True
        )

    purchase.refresh_from_db()
    assert (purchase.status, purchase.gateway_reference) == (PurchaseStatus.PAID, f"manual-{purchase.pk}")
    assert credit_balance_get(organization=purchase.organization).balance == D("110.00")
    assert "1 purchase marked paid." not in [str(m) for m in get_messages(response.wsgi_request)]  # second time


def test_refund_takes_the_credits_back(admin_client, rows):
    purchase = purchase_confirm(purchase=rows["Own Traders"]["purchase"], gateway_reference="ref")

    admin_client.post(changelist(Purchase), {"action": "refund", "_selected_action": [purchase.pk]})

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.REFUNDED
    assert credit_balance_get(organization=purchase.organization).balance == D("100.00")


def test_organization_administrators_have_no_money_actions(staff_client, rows):
    purchase = rows["Own Traders"]["purchase"]

    response = staff_client.get(changelist(Purchase))
    staff_client.post(changelist(Purchase), {"action": "mark_paid", "_selected_action": [purchase.pk]})

    assert response.context["action_form"] is None  # no action at all
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PENDING
