"""Settings → IM credits in the browser: the overview, buying with the sandbox gateway, receipts,
the alert threshold, who may do what, and the card on the WhatsApp settings page."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from books.services.organizations import membership_add
from credits.choices import PurchaseStatus
from credits.models import CreditAccount, Purchase
from credits.selectors import credit_balance_get
from credits.services import ReservationRequest, credits_reserve, purchase_confirm, purchase_create
from tests.books.factories import UserFactory, make_organization

from .factories import fund

pytestmark = pytest.mark.django_db

D = Decimal
OVERVIEW = reverse("credits:overview")
BUY = reverse("credits:buy")


def page(response) -> str:
    return response.content.decode()


def paid_purchase(org, quantity: int = 10) -> Purchase:
    purchase = purchase_create(organization=org, quantity=quantity, gateway="sandbox")
    return purchase_confirm(purchase=purchase, gateway_reference=f"ref-{purchase.pk}")


# --- Overview --------------------------------------------------------------------------------------------


def test_the_overview_shows_the_balance_purchases_and_ledger(signed_in, org):
    fund(org, "1200")
    credits_reserve(organization=org, requests=[ReservationRequest("whatsapp.message:7", D("0.50"), "utility", "91")])
    purchase = paid_purchase(org, 300)

    html = page(signed_in.get(OVERVIEW))

    assert 'data-credits="available">1,499.5<' in html
    assert 'data-credits="balance">1,500<' in html
    assert 'data-credits="reserved">0.5<' in html
    assert "CR-000001" in html and reverse("credits:receipt", args=[purchase.pk]) in html
    assert "whatsapp.message:7" in html
    assert "running low" not in html


def test_the_overview_warns_of_a_low_balance(signed_in, org):
    fund(org, "20")

    html = page(signed_in.get(OVERVIEW))

    assert "IM credits are running low." in html
    assert "20 available, below your alert threshold of 50" in html


def test_an_administrator_changes_the_alert_threshold(signed_in, org):
    response = signed_in.post(reverse("credits:threshold"), {"low_balance_threshold": "120"}, follow=True)

    assert "The low-balance alert threshold was saved." in page(response)
    assert CreditAccount.objects.get(organization=org).low_balance_threshold == D("120.00")
    signed_in.post(reverse("credits:threshold"), {"low_balance_threshold": "-1"})
    assert CreditAccount.objects.get(organization=org).low_balance_threshold == D("120.00")


def test_the_ledger_page_filters_by_kind(signed_in, org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[ReservationRequest("whatsapp.message:1", D("1"), "utility")])

    html = page(signed_in.get(reverse("credits:ledger"), {"kind": "reservation"}))

    assert "whatsapp.message:1" in html
    assert "test funds" not in html
    assert "test funds" in page(signed_in.get(reverse("credits:ledger")))


# --- Buying with the sandbox gateway -------------------------------------------------------------------------


def test_the_buy_page_shows_the_price_per_credit(signed_in, org):
    html = page(signed_in.get(BUY))

    assert "Price per credit: <strong>₹1.00</strong>" in html
    assert "Calculate payment" in html and "Make payment" in html


def test_calculate_payment_shows_the_total_with_htmx(signed_in, org):
    response = signed_in.post(reverse("credits:buy_calculate"), {"quantity": "1500"}, HTTP_HX_REQUEST="true")

    assert "1500 credits × ₹1.00 = <strong>₹1,500.00</strong>" in page(response)
    assert "<html" not in page(response)
    errors = page(signed_in.post(reverse("credits:buy_calculate"), {"quantity": "0"}, HTTP_HX_REQUEST="true"))
    assert "errorlist" in errors


def test_calculate_payment_works_without_javascript(signed_in, org):
    html = page(signed_in.post(BUY, {"quantity": "12", "calculate": "1"}))

    assert "₹12.00" in html
    assert not Purchase.objects.exists()


def test_buying_with_the_sandbox_gateway(signed_in, org, sandbox_gateway):
    response = signed_in.post(BUY, {"quantity": "500", "pay": "1"})

    purchase = Purchase.objects.get(organization=org)
    assert response.status_code == 302
    assert response["Location"] == reverse("credits:sandbox_checkout", args=[purchase.pk])
    checkout = page(signed_in.get(response["Location"]))
    assert "Amount to pay: <strong>₹500.00</strong>" in checkout

    paid = signed_in.post(response["Location"], {"action": "pay"}, follow=True)

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PAID
    assert "500 IM credits were added" in page(paid)
    assert credit_balance_get(organization=org).balance == D("500.00")
    # Paying twice (back button) adds nothing.
    signed_in.post(response["Location"], {"action": "pay"})
    assert credit_balance_get(organization=org).balance == D("500.00")


def test_cancelling_at_the_sandbox_checkout(signed_in, org, sandbox_gateway):
    signed_in.post(BUY, {"quantity": "5", "pay": "1"})
    purchase = Purchase.objects.get(organization=org)

    signed_in.post(reverse("credits:sandbox_checkout", args=[purchase.pk]), {"action": "cancel"})

    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.CANCELLED
    assert credit_balance_get(organization=org).balance == 0


def test_the_sandbox_checkout_is_closed_when_the_sandbox_is_not_the_gateway(signed_in, org, sandbox_gateway, settings):
    signed_in.post(BUY, {"quantity": "5", "pay": "1"})
    purchase = Purchase.objects.get(organization=org)
    settings.CREDITS_GATEWAY = "stripe"

    response = signed_in.post(reverse("credits:sandbox_checkout", args=[purchase.pk]), {"action": "pay"})

    assert response.status_code == 404
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PENDING


def test_a_bad_quantity_is_shown_on_the_form(signed_in, org, sandbox_gateway):
    response = signed_in.post(BUY, {"quantity": "0", "pay": "1"})

    assert response.status_code == 200
    assert "errorlist" in page(response)
    assert not Purchase.objects.exists()


def test_an_organization_whose_currency_has_no_price_is_told_so(client: Client):
    user = UserFactory()
    make_organization(name="Yen Traders", user=user, country="JP", currency="JPY", time_zone="Asia/Tokyo")
    client.force_login(user)

    assert "IM credits cannot be bought in JPY yet" in page(client.get(BUY))
    response = client.post(BUY, {"quantity": "5", "pay": "1"})
    assert "IM credits cannot be bought in JPY yet" in page(response)
    assert not Purchase.objects.exists()


# --- Receipts --------------------------------------------------------------------------------------------------


def test_a_paid_purchase_has_a_printable_receipt_and_a_pdf(signed_in, org):
    purchase = paid_purchase(org, 75)

    html = page(signed_in.get(reverse("credits:receipt", args=[purchase.pk])))
    pdf = signed_in.get(reverse("credits:receipt_pdf", args=[purchase.pk]))

    assert "CR-000001" in html and "₹75.00" in html and org.name in html
    assert pdf["Content-Type"] == "application/pdf"
    assert 'filename="CR-000001.pdf"' in pdf["Content-Disposition"]
    text = PdfReader(__import__("io").BytesIO(pdf.content)).pages[0].extract_text()
    assert "CR-000001" in text and "75.00" in text


def test_an_unpaid_purchase_has_no_receipt(signed_in, org, sandbox_gateway):
    purchase = purchase_create(organization=org, quantity=5)

    assert signed_in.get(reverse("credits:receipt", args=[purchase.pk])).status_code == 404
    assert signed_in.get(reverse("credits:receipt_pdf", args=[purchase.pk])).status_code == 404


# --- Tenants and roles -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "credits:purchase",
        "credits:purchase_status",
        "credits:receipt",
        "credits:receipt_pdf",
        "credits:sandbox_checkout",
    ],
)
def test_another_organizations_purchase_is_a_404(signed_in, org, sandbox_gateway, name):
    foreign = paid_purchase(make_organization(name="Globex"))

    assert signed_in.get(reverse(name, args=[foreign.pk])).status_code == 404


def test_an_accountant_reads_credits_but_cannot_buy(client: Client, org):
    accountant = UserFactory()
    membership_add(organization=org, user=accountant, role_name="Accountant")  # reports.view, no credits.manage
    client.force_login(accountant)

    html = page(client.get(OVERVIEW))
    assert "Buy IM credits" not in html
    assert client.get(BUY).status_code == 403
    assert client.post(reverse("credits:threshold"), {"low_balance_threshold": "1"}).status_code == 403


def test_staff_cannot_open_the_credits_pages(client: Client, org):
    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")
    client.force_login(staff)

    assert client.get(OVERVIEW).status_code == 403
    assert client.get(BUY).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, org):
    response = client.get(OVERVIEW)

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- Ways in -----------------------------------------------------------------------------------------------------


def test_the_whatsapp_settings_page_shows_the_credits_and_the_way_to_buy(signed_in, org, settings):
    from tests.whatsapp.factories import make_account

    settings.WHATSAPP_GRAPH_URL = "http://127.0.0.1:9/graph"  # nothing is asked of Meta here
    make_account(org)
    fund(org, "1234")

    html = page(signed_in.get(reverse("whatsapp:integration")))

    assert 'id="credits-card"' in html
    assert "IM credits: 1,234 available" in html
    assert f'href="{BUY}"' in html


def test_the_settings_page_lists_im_credits_under_integrations(signed_in, org):
    html = page(signed_in.get(reverse("books:settings")))

    assert f'href="{OVERVIEW}" data-integration="credits"' in html
