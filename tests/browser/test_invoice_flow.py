"""Acceptance test of the documents UI: sign in, create an invoice with two lines, find it in the
list with the right total, open its PDF."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from books.formatting import money_format
from books.models import Document
from tests.books.factories import UserFactory, make_contact, make_organization

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_accountant_creates_an_invoice_and_opens_its_pdf(page, live_server):
    user = UserFactory(username="asha")
    org = make_organization(user=user, role="Accountant")
    customer = make_contact(org, name="Sharma Traders", persons=2)
    expected_total = money_format(Decimal("4040.00"), "INR", organization=org)  # ₹4,040.00

    # Sign in through the login page.
    page.goto("/login/")
    page.get_by_label("Username").fill("asha")
    page.get_by_label("Password").fill("pass-1234-word")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))

    # A new invoice: choose the customer, its persons load, fill two lines, totals follow.
    page.goto("/invoices/new/")
    page.select_option("#id_contact", label="Sharma Traders")
    share_with = page.locator("#share-with")
    expect(share_with.locator('input[name="share_with"]')).to_have_count(2)
    expect(share_with.get_by_text("WhatsApp").first).to_be_visible()

    page.fill('[name="lines-0-item"]', "Audit")
    page.fill('[name="lines-0-quantity"]', "2")
    page.fill('[name="lines-0-rate"]', "1500")
    page.fill('[name="lines-0-tax_percent"]', "18")
    page.get_by_role("button", name="Add line").click()
    page.fill('[name="lines-1-item"]', "Filing fee")
    page.fill('[name="lines-1-rate"]', "500")
    expect(page.locator('[data-total="total"]')).to_have_text(expected_total)

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("h1")).to_contain_text("INV-000001")
    invoice = Document.objects.get(organization=org, number="INV-000001")
    assert invoice.total == Decimal("4040.00")
    assert invoice.contact == customer
    assert invoice.lines.count() == 2

    # The list shows it with its total.
    page.goto("/invoices/")
    row = page.locator("tr", has_text="INV-000001")
    expect(row).to_contain_text("Sharma Traders")
    expect(row.locator("td.num").first).to_have_text(expected_total)

    # Its PDF, from the detail page's PDF link (opens in a new tab; fetched with the page's cookies).
    row.get_by_role("link", name="INV-000001").click()
    pdf_link = page.get_by_role("link", name="PDF", exact=True)
    expect(pdf_link).to_have_attribute("target", "_blank")
    response = page.request.get(pdf_link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF")
