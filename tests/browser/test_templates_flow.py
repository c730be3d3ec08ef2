"""Acceptance test of the template builder: an administrator creates a WhatsApp template with a
document header, dynamic fields in the body and a URL button, watches the preview fill with the
latest invoice's values, submits it, and sees WhatsApp (the sandbox) approve it."""

import re
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate
from tests.books.factories import UserFactory, make_organization
from tests.templates_mgmt.factories import make_invoice
from tests.whatsapp.factories import make_sandbox_account
from whatsapp.sandbox import delivery

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "EAATemplatesBrowserToken0000000000000000000"
WABA_ID = "104455667788789"
APP_ID = "205566778899789"


@pytest.fixture
def sandbox_meta(sandbox_live: str, celery_eager: None, settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def connect(organization: Any) -> None:
    make_sandbox_account(organization, waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


def test_an_administrator_builds_previews_submits_and_sees_a_template_approved(page, sandbox_meta) -> None:
    user = UserFactory(username="meera")
    org = make_organization(user=user, role="Admin")
    connect(org)
    make_invoice(org)  # INV-000001 to Ravi Traders, ₹1,00,000.00

    page.goto("/login/")
    page.get_by_label("Username").fill("meera")
    page.get_by_label("Password").fill("pass-1234-word")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))

    # From the list of the Invoices module to the builder.
    page.goto(reverse("whatsapp:template_list") + "?module=invoices")
    page.get_by_role("link", name="+ New template").first.click()
    expect(page.locator("h1")).to_contain_text("Create WhatsApp template")

    page.fill("#id_name", "invoice_ready")
    page.get_by_label("Attachment: document (PDF)").check()
    page.get_by_label("Dynamic (the transaction's own PDF)").check()
    body = page.locator("#id_body")
    body.click()
    body.press_sequentially("Dear ")
    page.select_option("#insert-id_body", value="{{customer_name}}")
    body.press_sequentially(", invoice ")
    page.select_option("#insert-id_body", value="{{invoice_number}}")
    body.press_sequentially(" for ")
    page.select_option("#insert-id_body", value="{{invoice_total}}")
    body.press_sequentially(" is ready. Thank you for your business.")
    expect(body).to_have_value(
        "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} is ready. "
        "Thank you for your business."
    )
    page.fill("#id_footer", "Acme Books, Mumbai")
    page.select_option("#id_button1_type", value="url")
    page.fill("#id_button1_text", "View invoice")
    page.fill("#id_button1_url", "https://books.example.com/i/")
    page.select_option("#id_button1_suffix", value="invoice_number")
    expect(page.locator("#id_button1_phone")).to_be_hidden()  # shown only for a phone button

    # The preview fills with the latest invoice's values, refreshed by htmx as the fields change.
    preview = page.locator("#template-preview")
    expect(preview.locator("[data-preview-body]")).to_contain_text(
        "Dear Ravi Traders, invoice INV-000001 for ₹1,00,000.00 is ready."
    )
    expect(preview.locator("[data-preview-header]")).to_contain_text("INV-000001.pdf")
    expect(preview.locator("[data-preview-footer]")).to_have_text("Acme Books, Mumbai")
    expect(preview.locator("[data-preview-button]")).to_have_attribute(
        "data-url", "https://books.example.com/i/INV-000001"
    )

    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator(".message-success")).to_contain_text("submitted to WhatsApp for approval")
    expect(page.locator("h1 [data-template-status]")).to_have_text("Pending approval")

    delivery.flush()  # WhatsApp's verdict: the signed webhook reaches the hub
    page.reload()

    expect(page.locator("h1 [data-template-status]")).to_have_text("Approved")
    assert MessageTemplate.objects.get(organization=org, name="invoice_ready").status == TemplateStatus.APPROVED
