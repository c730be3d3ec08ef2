"""Buying credits with Stripe Checkout: the hub against a Stripe stand-in on loopback, then Stripe's
signed webhook into ``/webhooks/stripe/``."""

import json
import time
from decimal import Decimal

import httpx2
import pytest
from django.test import Client
from django.urls import reverse

from credits.choices import EntryKind, PurchaseStatus
from credits.gateways import GatewayError
from credits.gateways.stripe import StripeGateway, signature_header, signature_valid
from credits.models import CreditPackPrice, LedgerEntry, Purchase
from credits.selectors import credit_balance_get
from credits.services import purchase_create
from tests.books.factories import make_organization

pytestmark = pytest.mark.django_db

D = Decimal
WEBHOOK = "/webhooks/stripe/"


def buy(client: Client, quantity: int):
    return client.post(reverse("credits:buy"), {"quantity": str(quantity), "pay": "1"})


def post_event(body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return Client().post(WEBHOOK, data=body, content_type="application/json", **headers)


# --- The whole purchase ---------------------------------------------------------------------------------


def test_buying_sends_the_buyer_to_stripe_and_the_signed_webhook_adds_the_credits(signed_in, org, stripe):
    response = buy(signed_in, 250)

    # Redirected to Stripe's page, with one session created with everything Stripe needs.
    purchase = Purchase.objects.get(organization=org)
    [sent] = stripe.session_requests
    assert response.status_code == 302
    assert response["Location"] == stripe.sessions[purchase.gateway_reference]["url"]
    assert sent.form["mode"] == "payment"
    assert sent.form["line_items[0][price_data][currency]"] == "inr"
    assert sent.form["line_items[0][price_data][unit_amount]"] == "100"  # ₹1.00 in paise
    assert sent.form["line_items[0][quantity]"] == "250"
    assert sent.form["client_reference_id"] == sent.form["metadata[purchase_id]"] == str(purchase.pk)
    assert sent.form["success_url"] == f"http://testserver/settings/credits/purchases/{purchase.pk}/"
    assert sent.form["cancel_url"] == f"http://testserver/settings/credits/purchases/{purchase.pk}/cancel/"
    assert sent.headers["Idempotency-Key"] == f"credits-purchase-{purchase.pk}-checkout"
    assert (purchase.status, purchase.total) == (PurchaseStatus.PENDING, D("250.00"))
    assert credit_balance_get(organization=org).balance == 0

    # The buyer pays; Stripe posts the signed event.
    body, signature = stripe.complete(purchase.gateway_reference)
    assert post_event(body, signature).status_code == 200

    purchase.refresh_from_db()
    assert (purchase.status, purchase.receipt_number) == (PurchaseStatus.PAID, "CR-000001")
    assert credit_balance_get(organization=org).balance == D("250.00")

    # Back in the hub, the purchase page says so and links the receipt.
    page = signed_in.get(reverse("credits:purchase", args=[purchase.pk])).content.decode()
    assert "Payment received: 250 IM credits were added" in page
    assert reverse("credits:receipt", args=[purchase.pk]) in page


def test_a_duplicate_webhook_adds_the_credits_once(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)
    body, signature = stripe.complete(purchase.gateway_reference)

    responses = [post_event(body, signature).status_code for _ in range(3)]

    assert responses == [200, 200, 200]
    assert credit_balance_get(organization=org).balance == D("40.00")
    assert LedgerEntry.objects.filter(organization=org, kind=EntryKind.PURCHASE).count() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, sig: (body, None), id="missing"),
        pytest.param(lambda body, sig: (body, "t=1,v1=deadbeef"), id="garbage"),
        pytest.param(lambda body, sig: (body.replace(b'"paid"', b'"paid" '), sig), id="body-changed"),
        pytest.param(lambda body, sig: (body, signature_header(body, "whsec_wrong")), id="wrong-secret"),
        pytest.param(
            lambda body, sig: (body, signature_header(body, "whsec_standin", int(time.time()) - 301)), id="stale"
        ),
    ],
)
def test_a_webhook_without_a_good_signature_is_refused_and_changes_nothing(signed_in, org, stripe, tamper):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)
    body, signature = tamper(*stripe.complete(purchase.gateway_reference))

    response = post_event(body, signature)

    assert response.status_code == 400
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PENDING
    assert credit_balance_get(organization=org).balance == 0


def test_events_the_hub_does_not_handle_are_acknowledged_and_ignored(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)
    body, signature = stripe.event("payment_intent.created", purchase.gateway_reference)

    assert post_event(body, signature).status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PENDING


def test_a_session_completed_unpaid_waits_for_the_async_payment(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)
    stripe.sessions[purchase.gateway_reference]["status"] = "complete"  # bank debit: paid later

    assert post_event(*stripe.event("checkout.session.completed", purchase.gateway_reference)).status_code == 200
    assert credit_balance_get(organization=org).balance == 0

    stripe.sessions[purchase.gateway_reference]["payment_status"] = "paid"
    post_event(*stripe.event("checkout.session.async_payment_succeeded", purchase.gateway_reference))
    assert credit_balance_get(organization=org).balance == D("40.00")


def test_an_expired_checkout_cancels_the_pending_purchase(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)

    post_event(*stripe.event("checkout.session.expired", purchase.gateway_reference))

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.CANCELLED


def test_a_paid_session_whose_amount_differs_from_the_purchase_is_not_credited(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)
    stripe.sessions[purchase.gateway_reference]["amount_total"] = 100  # ₹1 paid for ₹40 of credits

    assert post_event(*stripe.complete(purchase.gateway_reference)).status_code == 200

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PENDING
    assert credit_balance_get(organization=org).balance == 0


def test_a_session_of_another_checkout_does_not_pay_a_purchase(signed_in, org, stripe):
    buy(signed_in, 40)
    buy(signed_in, 40)
    first, second = Purchase.objects.filter(organization=org).order_by("id")
    # The session of the first purchase, claiming to be the second's.
    stripe.sessions[first.gateway_reference]["metadata"]["purchase_id"] = str(second.pk)

    post_event(*stripe.complete(first.gateway_reference))

    second.refresh_from_db()
    assert second.status == PurchaseStatus.PENDING


def test_the_return_page_asks_stripe_when_the_webhook_is_late(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)
    stripe.complete(purchase.gateway_reference)  # paid, but the event is never posted

    page = signed_in.get(reverse("credits:purchase", args=[purchase.pk])).content.decode()

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PAID
    assert "Payment received" in page
    assert credit_balance_get(organization=org).balance == D("40.00")


def test_the_return_page_of_an_unpaid_checkout_keeps_waiting(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)

    page = signed_in.get(reverse("credits:purchase", args=[purchase.pk])).content.decode()

    assert "Waiting for the payment gateway" in page
    assert f'hx-get="{reverse("credits:purchase_status", args=[purchase.pk])}"' in page


def test_leaving_the_checkout_cancels_the_purchase(signed_in, org, stripe):
    buy(signed_in, 40)
    purchase = Purchase.objects.get(organization=org)

    response = signed_in.get(reverse("credits:purchase_cancel", args=[purchase.pk]), follow=True)

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.CANCELLED
    assert "No IM credits were bought" in response.content.decode()


def test_a_refusal_by_stripe_fails_the_purchase_and_says_why(signed_in, org, stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_revoked"

    response = buy(signed_in, 40)

    purchase = Purchase.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == reverse("credits:overview")
    assert purchase.status == PurchaseStatus.FAILED
    assert "Invalid API Key" in purchase.failure_reason
    assert "sk_test_revoked" not in purchase.failure_reason
    page = signed_in.get(response["Location"]).content.decode()
    assert "The payment could not be started" in page


def test_payments_are_not_set_up_without_a_secret_key(signed_in, org, stripe, settings):
    settings.STRIPE_SECRET_KEY = ""

    buy(signed_in, 40)

    purchase = Purchase.objects.get(organization=org)
    assert purchase.status == PurchaseStatus.FAILED
    assert "STRIPE_SECRET_KEY" in purchase.failure_reason
    assert stripe.requests == []


def test_stripe_unreachable_is_a_retryable_gateway_error(org, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    purchase = purchase_create(organization=org, quantity=1, gateway="stripe")

    with pytest.raises(GatewayError) as caught:
        StripeGateway(api_base="http://127.0.0.1:9").checkout_create(
            purchase=purchase, success_url="http://x/ok", cancel_url="http://x/no"
        )

    assert caught.value.retryable


# --- Amounts in the currency's smallest unit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "unit_price", "unit_amount"),
    [("USD", "0.02", "2"), ("JPY", "3", "3"), ("KWD", "0.010", "10"), ("INR", "1.00", "100")],
)
def test_the_unit_amount_is_in_the_currencys_smallest_unit(stripe, currency, unit_price, unit_amount):
    CreditPackPrice.objects.update_or_create(currency=currency, defaults={"unit_price": D(unit_price)})
    organization = make_organization(name=f"{currency} Traders", currency=currency)
    purchase = purchase_create(organization=organization, quantity=7)

    StripeGateway().checkout_create(purchase=purchase, success_url="http://x/ok", cancel_url="http://x/no")

    [sent] = stripe.session_requests
    assert sent.form["line_items[0][price_data][currency]"] == currency.lower()
    assert sent.form["line_items[0][price_data][unit_amount]"] == unit_amount
    assert sent.form["line_items[0][quantity]"] == "7"


def test_the_gateway_speaks_stripes_form_encoding_with_the_bearer_key(org, settings):
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"id": "cs_test_1", "url": "https://checkout.stripe.com/c/pay/cs_test_1"})

    purchase = purchase_create(organization=org, quantity=3, gateway="stripe")
    checkout = StripeGateway(secret_key="sk_test_k", transport=httpx2.MockTransport(handler)).checkout_create(
        purchase=purchase, success_url="http://x/ok", cancel_url="http://x/no"
    )

    assert (checkout.reference, checkout.url) == ("cs_test_1", "https://checkout.stripe.com/c/pay/cs_test_1")
    [request] = seen
    assert str(request.url) == "https://api.stripe.com/v1/checkout/sessions"
    assert request.headers["Authorization"] == "Bearer sk_test_k"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"line_items%5B0%5D%5Bquantity%5D=3" in request.content


# --- The signature ------------------------------------------------------------------------------------------


def test_the_signature_is_checked_as_stripe_documents_it():
    body = json.dumps({"type": "checkout.session.completed"}).encode()
    now = 1_700_000_000
    header = signature_header(body, "whsec_x", now)

    assert signature_valid(body, header, "whsec_x", now=now)
    assert signature_valid(body, header, "whsec_x", now=now + 300)
    assert not signature_valid(body, header, "whsec_x", now=now + 301)
    assert not signature_valid(body, header, "", now=now)
    assert not signature_valid(body + b" ", header, "whsec_x", now=now)
    # Several v1 signatures (a secret being rolled): any one matching is enough.
    assert signature_valid(body, f"t={now},v1=00ff,{header.split(',')[1]}", "whsec_x", now=now)
    assert not signature_valid(body, f"t={now},v0={header.split('v1=')[1]}", "whsec_x", now=now)
