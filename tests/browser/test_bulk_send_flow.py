"""Acceptance test of a bulk send: an accountant ticks three invoices on the invoice list (one of
them a draft), chooses Send → WhatsApp message in the bulk-action bar, reads the summary (two go,
the draft is skipped and why, the credits), presses Send and watches the progress bar reach 100 %
without reloading the page.

Nothing is mocked but the broker: the hub runs on the live server with the Cloud API sandbox as
Meta, the template is approved by the sandbox's signed webhook, and the bulk task waits "in the
queue" (its enqueue is recorded) until the test runs it as a worker would, so the page is seen
waiting first. Dispatch then runs eagerly and sends to the sandbox; the statuses arrive as signed
webhooks when the test flushes the sandbox.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from books.kinds import KINDS
from credits.selectors import credit_balance_get
from credits.services import credits_adjust, credits_price
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.services import module_setting_update, template_create, template_set_default
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template, make_sandbox_account, module_template_fields
from whatsapp.choices import MessageStatus
from whatsapp.models import BulkSend, Message
from whatsapp.sandbox import delivery
from whatsapp.services.templates import account_template_submit
from whatsapp.tasks import bulk_send_run_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "EAABulkFlowBrowserToken00000000000000000"
WABA_ID = "104455667700888"
APP_ID = "205566778800888"
BODY = (
    "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} was due on {{due_date}}. "
    "Please pay it soon to avoid late fees."
)


@pytest.fixture
def sandbox_meta(sandbox_live: str, celery_eager: None, settings: Any, tmp_path: Any) -> str:
    settings.MEDIA_ROOT = tmp_path / "media"
    return sandbox_live


@pytest.fixture
def queued_bulks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The broker: bulk sends enqueued (their ids), waiting for the test to run them as a worker."""
    queue: list[int] = []
    monkeypatch.setattr("whatsapp.services.bulk._enqueue", queue.append)
    return queue


def approved_invoice_template(account: Any) -> Any:
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


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pass-1234-word")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_an_accountant_sends_three_invoices_in_bulk_and_watches_the_progress_reach_100(
    page, sandbox_meta, queued_bulks
) -> None:
    user = UserFactory(username="meera")
    org = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    credits_adjust(organization=org, amount=Decimal("10"), note="opening", user=None)
    account = make_sandbox_account(org, waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)
    approved_invoice_template(account)
    today = org.today()
    overdue = {"date": today - datetime.timedelta(days=40), "due_date": today - datetime.timedelta(days=25)}
    ravi = make_contact(org, name="Ravi Traders", mobile="9820012345")
    asha = make_contact(org, name="Asha Stores", mobile="9820054321")
    first = make_document(org, contact=ravi, **overdue)
    second = make_document(org, contact=asha, **overdue)
    draft = make_document(org, contact=ravi, issue=False, **overdue)
    price = sum(
        (credits_price(organization=org, category="utility", phone=c.persons.get().mobile) for c in (ravi, asha)),
        Decimal("0"),
    )

    sign_in(page, "meera")

    # The invoice list: tick the three, the bar appears, Send → WhatsApp message.
    page.goto(reverse("books:document_list", args=[KINDS["invoice"].slug]))
    bar = page.locator(".bulk-bar")
    expect(bar).to_be_hidden()
    for invoice in (first, second, draft):
        page.get_by_label(f"Select {invoice.number}").check()
    expect(bar).to_be_visible()
    expect(bar.locator("[data-selected-count]")).to_have_text("3")
    bar.locator('[data-bulk-menu="send"] > summary').click()
    bar.get_by_role("button", name="WhatsApp message").click()

    # The summary: two go, the draft is skipped and why, the credits it reserves.
    expect(page.locator("h1")).to_contain_text("Send WhatsApp messages")
    expect(page.locator("#id_template option:checked")).to_contain_text("invoice_overdue")
    expect(page.locator('[data-count="selected"]')).to_have_text("3")
    expect(page.locator('[data-count="will-send"]')).to_have_text("2")
    skipped = page.locator('[data-skipped-group="document_not_sendable"]')
    expect(skipped).to_contain_text("Draft or void")
    expect(skipped.get_by_role("link", name=draft.number)).to_be_visible()
    expect(skipped).to_contain_text("only issued documents can be sent")
    credits = f"{price.normalize():f}" if price == price.to_integral() else f"{price:f}"
    expect(page.locator("[data-credits]")).to_contain_text(f"IM credits to reserve: {credits} · available: 10")
    page.get_by_role("button", name="Send to 2").click()

    # The request answered at once: the progress page, waiting for a worker.
    expect(page.locator("h1")).to_contain_text("Bulk WhatsApp send")
    expect(page.locator(".message-success")).to_contain_text("Bulk send started: 3 selected.")
    bulk = BulkSend.objects.get()
    assert queued_bulks == [bulk.pk] and not Message.objects.exists()
    progress = page.locator("[data-bulk-progress]")
    expect(progress).to_have_attribute("value", "0")
    expect(page.locator("[data-bulk-state]")).to_have_text("Waiting")
    expect(page.locator("#bulk-progress")).to_have_attribute("hx-trigger", "every 2s")
    page.evaluate("window.__bulkFlowMarker = 'still here'")

    # A worker takes the task: the two issued invoices are queued and handed to WhatsApp (the
    # sandbox), whose answers come as webhooks. The page follows by itself: half way, the draft
    # listed as skipped.
    bulk_send_run_task.delay(queued_bulks.pop())
    assert Message.objects.count() == 2
    expect(progress).to_have_attribute("value", "50", timeout=15_000)
    expect(page.locator('[data-count="queued"]')).to_have_text("2")
    expect(page.locator('[data-count="skipped"]')).to_have_text("1")
    live_skipped = page.locator('#bulk-progress [data-skipped-group="document_not_sendable"]')
    expect(live_skipped.get_by_role("link", name=draft.number)).to_be_visible()
    expect(page.locator(f'[data-outcome="{draft.pk}"] [data-outcome-status]')).to_have_text("Skipped")

    # WhatsApp reports sent, delivered and read: 100 %, and the page stops polling.
    delivery.flush()
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.READ}
    expect(progress).to_have_attribute("value", "100", timeout=15_000)
    expect(page.locator("[data-percent]")).to_have_text("100 %")
    expect(page.locator("[data-bulk-state]")).to_have_text("Finished")
    expect(page.locator('[data-count="read"]')).to_have_text("2")
    expect(page.locator('[data-count="queued"]')).to_have_text("0")
    for invoice in (first, second):
        expect(page.locator(f'[data-outcome="{invoice.pk}"] [data-outcome-status]')).to_have_text("Read")
    expect(page.locator("#bulk-progress")).not_to_have_attribute("hx-trigger", "every 2s")
    assert page.evaluate("window.__bulkFlowMarker") == "still here"

    # The recent bulk sends lead back to it: finished, both delivered (and read).
    page.get_by_role("link", name="Bulk sends").click()
    row = page.locator(f'[data-bulk="{bulk.pk}"]')
    expect(row.locator("[data-bulk-state]")).to_have_text("Finished")
    expect(row.locator('[data-count="delivered"]')).to_have_text("2")
    expect(row.locator('[data-count="on-the-way"]')).to_have_text("0")
    balance = credit_balance_get(organization=org)
    assert balance.reserved == 0 and balance.balance == Decimal("10") - price  # settled on delivery


def test_a_poll_after_the_session_expired_takes_the_page_to_the_login(page, live_server) -> None:
    user = UserFactory(username="ravi")
    org = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    invoice = make_document(org)
    bulk = BulkSend.objects.create(
        organization=org, target="documents", module=Module.INVOICES, target_ids=[invoice.pk], total=1
    )

    sign_in(page, "ravi")
    page.goto(reverse("whatsapp_send:bulk", args=[bulk.pk]))
    expect(page.locator("#bulk-progress")).to_have_attribute("hx-trigger", "every 2s")
    page.context.clear_cookies()

    # The next poll sends the whole page to the login, to come back here after signing in.
    expect(page).to_have_url(re.compile(rf"/login/\?next=/whatsapp/bulk/{bulk.pk}/$"), timeout=10_000)
    expect(page.get_by_label("Username")).to_be_visible()
    assert page.locator("#bulk-progress").count() == 0


def test_an_accountant_selects_every_overdue_invoice_beyond_the_page_and_the_summary_counts_them_all(
    page, live_server, queued_bulks
) -> None:
    """30 overdue invoices, 25 to a page: the header box ticks the page, "Select all 30 matching"
    takes the whole Overdue tab, and the summary, a template change (posted, not put in the URL)
    and Send carry all 30; the invoice that is not due yet stays out."""
    user = UserFactory(username="asha")
    org = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    credits_adjust(organization=org, amount=Decimal("1000"), note="opening", user=None)
    account = make_account(org)
    make_approved_template(account, Module.INVOICES, name="invoice_overdue")
    short = make_approved_template(account, Module.INVOICES, name="invoice_short", default=False)
    today = org.today()
    overdue = {"date": today - datetime.timedelta(days=40), "due_date": today - datetime.timedelta(days=25)}
    ravi = make_contact(org, name="Ravi Traders", mobile="9820012345")
    invoices = [make_document(org, contact=ravi, **overdue) for _ in range(30)]
    make_document(org, contact=ravi)  # not due yet

    sign_in(page, "asha")
    page.goto(reverse("books:document_list", args=[KINDS["invoice"].slug]))
    page.get_by_role("link", name="Overdue").click()
    expect(page.get_by_text("Page 1 of 2 (30 documents)")).to_be_visible()

    # The header box ticks the page's 25; the offer to take all 30 appears.
    bar = page.locator(".bulk-bar")
    offer = page.locator("[data-select-matching]")
    expect(offer).to_be_hidden()
    page.get_by_label("Select all", exact=True).check()
    expect(bar.locator("[data-selected-count]")).to_have_text("25")
    expect(offer).to_contain_text("All 25 on this page are selected.")
    page.get_by_role("button", name="Select all 30 matching").click()
    expect(offer).to_contain_text("All 30 matching are selected.")
    expect(bar.locator("[data-selected-count]")).to_have_text("30")
    bar.locator('[data-bulk-menu="send"] > summary').click()
    bar.get_by_role("button", name="WhatsApp message").click()

    # The summary: all 30 go.
    expect(page.locator("h1")).to_contain_text("Send WhatsApp messages")
    expect(page.locator('[data-count="selected"]')).to_have_text("30")
    expect(page.locator('[data-count="will-send"]')).to_have_text("30")

    # Another template: the summary is refreshed by a POST of the ids, not a URL carrying them.
    page.wait_for_load_state()  # htmx set up (it does so when the document is ready)
    with page.expect_request(lambda request: "/bulk/new/" in request.url and request.method == "POST") as sent:
        page.locator("#id_template").select_option(label=f"{short.name} ({short.language})")
    assert "ids" not in sent.value.url and "ids=" in (sent.value.post_data or "")
    expect(page.locator("#id_template option:checked")).to_contain_text("invoice_short")
    expect(page.locator('[data-count="will-send"]')).to_have_text("30")

    page.get_by_role("button", name="Send to 30").click()
    expect(page.locator(".message-success")).to_contain_text("Bulk send started: 30 selected.")
    bulk = BulkSend.objects.get()
    assert sorted(bulk.target_ids) == sorted(invoice.pk for invoice in invoices) and bulk.template == short
