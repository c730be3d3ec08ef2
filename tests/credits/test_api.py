"""``/api/v1/credits``: the balance, the ledger and purchases, for integrators."""

import datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from books.services.organizations import membership_add
from credits.models import LedgerEntry, Purchase
from credits.services import ReservationRequest, credits_reserve, purchase_confirm, purchase_create
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_organization

from .factories import fund

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def api(org_admin, org):
    return client_for(org_admin)


def test_the_balance_is_strings_with_two_decimals(api, org):
    fund(org, "100")
    credits_reserve(organization=org, requests=[ReservationRequest("m:1", D("0.50"), "utility")])

    for path in ("/api/v1/credits", "/api/v1/credits/"):
        response = api.get(path)
        assert response.status_code == 200
        assert response.json() == {
            "balance": "100.00",
            "reserved": "0.50",
            "available": "99.50",
            "low_balance_threshold": "50.00",
            "is_low": False,
        }


def test_an_organization_that_never_had_credits_has_none(api, org):
    assert api.get("/api/v1/credits").json() == {
        "balance": "0.00",
        "reserved": "0.00",
        "available": "0.00",
        "low_balance_threshold": "50.00",
        "is_low": True,
    }


def test_the_ledger_is_paginated_newest_first_and_filtered(api, org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[ReservationRequest("whatsapp.message:9", D("1"), "utility", "91")])

    body = api.get("/api/v1/credits/ledger").json()

    assert body["count"] == 2
    first = body["results"][0]
    assert {k: first[k] for k in ("kind", "amount", "reserved_change", "balance_after", "reserved_after")} == {
        "kind": "reservation",
        "amount": "0.00",
        "reserved_change": "1.00",
        "balance_after": "10.00",
        "reserved_after": "1.00",
    }
    assert (first["reference"], first["category"], first["country_code"]) == ("whatsapp.message:9", "utility", "91")
    assert [e["kind"] for e in api.get("/api/v1/credits/ledger", {"kind": "adjustment"}).json()["results"]] == [
        "adjustment"
    ]


def test_the_ledger_filters_by_days_in_the_organizations_time_zone(api, org):
    fund(org, "10")
    entry = LedgerEntry.objects.get(organization=org)
    local_day = timezone.localtime(entry.created_at, org.tzinfo).date()

    def count(**params) -> int:
        return api.get("/api/v1/credits/ledger", params).json()["count"]

    assert count(date_start=local_day.isoformat(), date_end=local_day.isoformat()) == 1
    assert count(date_start=(local_day + datetime.timedelta(days=1)).isoformat()) == 0
    assert count(date_end=(local_day - datetime.timedelta(days=1)).isoformat()) == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "gift"}, "kind"),
        ({"date_start": "2026-02-30"}, "date_start"),
        ({"date_start": "2026-03-02", "date_end": "2026-03-01"}, "date_end"),
    ],
)
def test_bad_ledger_filters_are_400_with_the_field(api, org, params, field):
    response = api.get("/api/v1/credits/ledger", params)

    assert response.status_code == 400
    assert field in response.json()


def test_the_ledger_query_count_does_not_grow_with_entries(api, org, django_assert_max_num_queries):
    fund(org, "100")
    credits_reserve(organization=org, requests=[ReservationRequest(f"m:{n}", D("1"), "utility") for n in range(30)])

    with django_assert_max_num_queries(6):
        assert len(api.get("/api/v1/credits/ledger").json()["results"]) == 31


# --- Purchases ------------------------------------------------------------------------------------------------


def test_buying_answers_201_with_the_checkout_url(api, org, sandbox_gateway):
    response = api.post("/api/v1/credits/purchases", {"quantity": 120})

    assert response.status_code == 201
    body = response.json()
    purchase = Purchase.objects.get(organization=org)
    assert body == {
        **body,
        "id": purchase.pk,
        "quantity": 120,
        "unit_price": "1.00",
        "currency": "INR",
        "total": "120.00",
        "status": "pending",
        "gateway": "sandbox",
        "receipt_number": "",
    }
    assert body["checkout_url"] == f"http://testserver/settings/credits/sandbox-checkout/{purchase.pk}/"


def test_buying_through_stripe_returns_stripes_checkout_page(api, org, stripe):
    body = api.post("/api/v1/credits/purchases", {"quantity": 10}).json()

    purchase = Purchase.objects.get(pk=body["id"])
    assert body["checkout_url"] == stripe.sessions[purchase.gateway_reference]["url"]


def test_a_gateway_refusal_is_502_and_the_purchase_is_kept_as_failed(api, org, stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_revoked"

    response = api.post("/api/v1/credits/purchases", {"quantity": 10})

    assert response.status_code == 502
    assert "Invalid API Key" in response.json()["detail"]
    assert Purchase.objects.get(organization=org).status == "failed"


@pytest.mark.parametrize(
    "body", [{}, {"quantity": 0}, {"quantity": "many"}, {"quantity": 1_000_001}, {"quantity": 1.5}]
)
def test_a_bad_quantity_is_400_with_the_field(api, org, body):
    response = api.post("/api/v1/credits/purchases", body)

    assert response.status_code == 400
    assert "quantity" in response.json()
    assert not Purchase.objects.exists()


def test_a_currency_without_a_price_is_400():
    user = UserFactory()
    make_organization(name="Yen Traders", user=user, country="JP", currency="JPY", time_zone="Asia/Tokyo")

    response = client_for(user).post("/api/v1/credits/purchases", {"quantity": 5})

    assert response.status_code == 400
    assert "cannot be bought in JPY" in str(response.json())


def test_purchases_are_listed_and_read(api, org, sandbox_gateway):
    purchase = purchase_confirm(purchase=purchase_create(organization=org, quantity=5), gateway_reference="ref")

    listed = api.get("/api/v1/credits/purchases").json()
    one = api.get(f"/api/v1/credits/purchases/{purchase.pk}").json()

    assert [p["id"] for p in listed["results"]] == [purchase.pk]
    assert (one["status"], one["receipt_number"], one["checkout_url"]) == ("paid", "CR-000001", None)


def test_another_organizations_purchase_is_404(api, org, sandbox_gateway):
    foreign = purchase_create(organization=make_organization(name="Globex"), quantity=5)

    assert api.get(f"/api/v1/credits/purchases/{foreign.pk}").status_code == 404
    assert api.get("/api/v1/credits/purchases/99999999999999999999").status_code == 404
    assert api.get("/api/v1/credits/purchases").json()["count"] == 0


def test_an_organization_one_does_not_belong_to_is_404(api, org):
    other = make_organization(name="Globex")

    assert api.get("/api/v1/credits", {"organization_id": other.pk}).status_code == 404


# --- Roles ----------------------------------------------------------------------------------------------------


def test_an_accountant_reads_but_cannot_buy(org):
    accountant = UserFactory()
    membership_add(organization=org, user=accountant, role_name="Accountant")
    api = client_for(accountant)

    assert api.get("/api/v1/credits").status_code == 200
    assert api.get("/api/v1/credits/ledger").status_code == 200
    assert api.post("/api/v1/credits/purchases", {"quantity": 5}).status_code == 403


def test_staff_cannot_read_credits(org):
    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")

    assert client_for(staff).get("/api/v1/credits").status_code == 403


def test_no_credentials_is_401(org):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/credits").status_code == 401


def test_the_schema_documents_the_credits_api():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert {
        "/api/v1/credits",
        "/api/v1/credits/ledger",
        "/api/v1/credits/purchases",
        "/api/v1/credits/purchases/{purchase_id}",
    } <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/credits/purchases"]) == {"get", "post"}
    assert {"kind", "date_start", "date_end", "organization_id", "page"} <= {
        p["name"] for p in schema["paths"]["/api/v1/credits/ledger"]["get"]["parameters"]
    }
    assert "checkout_url" in schema["components"]["schemas"]["Purchase"]["properties"]
