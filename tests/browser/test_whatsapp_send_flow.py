"""Acceptance test of sending over WhatsApp: an accountant opens an overdue invoice, chooses Send →
WhatsApp message, checks the preview and the people, presses Send, and watches Comments & History
follow the message to "Read" without reloading the page.

Nothing is mocked: the hub runs on the live server with the Cloud API sandbox as Meta, the
template is approved by the sandbox's signed webhook, dispatch runs (Celery eager) inside the
live server, and the statuses arrive as signed webhooks when the test flushes the sandbox.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from books.history import document_url
from credits.selectors import credit_balance_get
from credits.services import credits_adjust, credits_price
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.services import module_setting_update, template_create, template_set_default
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from tests.whatsapp.factories import make_sandbox_account, module_template_fields
from whatsapp.choices import MessageStatus
from whatsapp.models import Message
from whatsapp.sandbox import delivery
from whatsapp.services.templates import account_template_submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "EAASendFlowBrowserToken000000000000000000"
WABA_ID = "104455667700777"
APP_ID = "205566778800777"
BODY = (
    "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} was due on {{due_date}}. "
    "Please pay it soon to avoid late fees."
)


def credits_text(value: Decimal) -> str:
    """Credits as the Send page writes them: whole numbers bare, else with their decimals."""
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"


@pytest.fixture
def sandbox_meta(sandbox_live: str, celery_eager: None, settings: Any, tmp_path: Any) -> str:
    settings.MEDIA_ROOT = tmp_path / "media"
    return sandbox_live


def approved_invoice_template(account: Any) -> Any:
    """The builder's template, submitted to the sandbox, approved by its webhook, the default of
    an enabled Invoices module."""
    template = template_create(
        organization=account.organization,
        waba_id=account.waba_id,
        **module_template_fields(Module.INVOICES, name="invoice_overdue", body=BODY),
    )
    account_template_submit(account=account, template=template)
    delivery.flush()
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED
    template_set_default(template=template)
    module_setting_update(organization=account.organization, module=Module.INVOICES, enabled=True, user=None)
    return template


def test_an_accountant_sends_an_overdue_invoice_and_watches_it_reach_read_without_reloading(page, sandbox_meta) -> None:
    user = UserFactory(username="meera")
    org = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    credits_adjust(organization=org, amount=Decimal("10"), note="opening", user=None)
    account = make_sandbox_account(org, waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)
    approved_invoice_template(account)
    customer = make_contact(org, name="Ravi Traders", mobile="9820012345")
    person = customer.persons.get()
    today = org.today()
    invoice = make_document(
        org, contact=customer, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=25)
    )

    page.goto("/login/")
    page.get_by_label("Username").fill("meera")
    page.get_by_label("Password").fill("pass-1234-word")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))

    # The overdue invoice, then Send → WhatsApp message.
    page.goto(document_url(invoice))
    expect(page.locator(".document-status")).to_contain_text("Overdue by 25 days")
    page.locator('[data-menu="send"] > summary').click()
    page.get_by_role("link", name="WhatsApp message").click()
    expect(page.locator("h1")).to_contain_text("Send WhatsApp message")

    # The default template, its preview with the invoice's values, the person ticked, the credits.
    expect(page.locator("#id_template option:checked")).to_contain_text("invoice_overdue")
    expect(page.locator("[data-preview-body]")).to_contain_text(f"Dear Ravi Traders, invoice {invoice.number}")
    expect(page.locator("[data-preview-header]")).to_contain_text(f"{invoice.number}.pdf")
    expect(page.locator(f'[data-recipient="{person.pk}"]')).to_be_checked()
    price = credits_price(organization=org, category="utility", phone=person.mobile)
    expect(page.locator("[data-credits]")).to_contain_text(f"IM credits needed: {credits_text(price)} · available: 10")
    page.get_by_role("button", name="Send", exact=True).click()

    # Back on the invoice: queued, and the WhatsApp entry in Comments & History.
    expect(page.locator(".message-success")).to_have_text("WhatsApp message queued for 1 recipient.")
    message = Message.objects.get(document=invoice)
    entry = page.locator(f"#whatsapp-message-{message.pk}")
    expect(entry).to_contain_text(f"WhatsApp message sent to {person.name}")
    expect(page.locator("#document-history")).to_have_attribute("hx-trigger", "every 3s")
    page.evaluate("window.__sendFlowMarker = 'still here'")

    # WhatsApp (the sandbox) reports sent, delivered and read by signed webhooks.
    delivery.flush()
    message.refresh_from_db()
    assert message.status == MessageStatus.READ

    # The card refreshes itself to "Read" and stops polling; the page was never reloaded.
    expect(entry).to_have_attribute("data-state", "read", timeout=15_000)
    expect(entry.locator("[data-entry-detail]")).to_contain_text("Read · ")
    expect(page.locator("#document-history")).not_to_have_attribute("hx-trigger", "every 3s")
    assert page.evaluate("window.__sendFlowMarker") == "still here"

    # Show details: the number, every status reached, and the name leads to the chat.
    entry.locator("summary").click()
    details = entry.locator(".history-detail-list")
    expect(details).to_contain_text("+91 98200 12345")
    for status in ("Queued", "Sent", "Delivered", "Read"):
        expect(details.locator("dt", has_text=re.compile(rf"^{status}$"))).to_have_count(1)
    entry.locator(".history-detail-list a").first.click()
    expect(page.locator("h1")).to_contain_text("WhatsApp chat")
    expect(page.locator(f"#chat-message-{message.pk}")).to_contain_text(f"Dear Ravi Traders, invoice {invoice.number}")

    balance = credit_balance_get(organization=org)
    assert balance.reserved == 0 and balance.balance == Decimal("10") - price  # settled on delivery
