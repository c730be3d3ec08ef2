"""Acceptance tests of payment reminders: an administrator turns the daily reminders on and adds a
rule on Settings → WhatsApp → Reminders; an accountant sends a reminder by hand from an overdue
invoice's Reminders menu and finds it in the invoice's Comments & History.

The hub runs on the live server with a connected account and templates approved by hand; nothing
leaves: the message stays queued (dispatch, woken after the commit, only records its id).
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import expect

from books.history import document_url
from credits.services import credits_adjust
from templates_mgmt.choices import Module
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template
from whatsapp.models import Message, ReminderRule
from whatsapp.services.reminders import periodic_task_name

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The messages handed to dispatch once committed (in the live server's thread); none is sent."""
    ids: list[int] = []
    monkeypatch.setattr("whatsapp.services.dispatch._dispatch_after_commit", ids.extend)
    return ids


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pass-1234-word")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_an_administrator_turns_reminders_on_at_nine_and_adds_a_rule_seven_days_after(page, live_server) -> None:
    admin = UserFactory(username="kavya")
    org = make_organization(name="Sharma Accounting", user=admin, role="Admin")
    account = make_account(org)
    make_approved_template(account, Module.PAYMENT_REMINDERS, name="payment_gentle")
    make_approved_template(account, Module.PAYMENT_REMINDERS, name="payment_overdue", default=False)

    sign_in(page, "kavya")
    page.goto(reverse("whatsapp:reminders"))
    schedule = page.locator("#wa-reminder-schedule")
    expect(schedule.locator(".badge")).to_have_text("Off")
    expect(page.locator("#wa-reminder-rules")).to_contain_text("No reminders yet")

    # Reminders based on due date: on, every day at 09:00.
    page.get_by_label("Reminders based on due date").check()
    page.get_by_label("Time of day").fill("09:00")
    schedule.get_by_role("button", name="Save").click()
    expect(page.locator(".message-success")).to_have_text(
        "Reminders based on due date are on: every day at 09:00 (Asia/Kolkata)."
    )
    expect(schedule.locator(".badge")).to_have_text("On")
    expect(page.get_by_label("Time of day")).to_have_value("09:00")

    # A reminder 7 days after the due date, with the payment-reminder template.
    page.get_by_role("link", name="+ New reminder").first.click()
    expect(page.locator("h1")).to_contain_text("New reminder")
    page.get_by_label("Name").fill("7 days after")
    page.get_by_label("Days", exact=True).fill("7")
    page.get_by_label("When").select_option(label="after the due date")
    page.get_by_label("Message template").select_option(label="payment_overdue (en)")
    page.get_by_role("button", name="Save").click()

    # Back on Reminders, listed with its day and template, on.
    expect(page.locator(".message-success")).to_have_text("The reminder “7 days after” was saved.")
    rule = ReminderRule.objects.get(organization=org)
    row = page.locator(f'#wa-reminder-rules tr[data-rule="{rule.pk}"]')
    expect(row).to_contain_text("7 days after the due date")
    expect(row).to_contain_text("payment_overdue")
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    assert (rule.days, rule.when, rule.template.name, rule.enabled) == (7, "after", "payment_overdue", True)
    crontab = PeriodicTask.objects.get(name=periodic_task_name(org), enabled=True).crontab
    assert (crontab.hour, crontab.minute, str(crontab.timezone)) == ("9", "0", "Asia/Kolkata")


def test_an_accountant_sends_a_payment_reminder_from_an_overdue_invoice(page, live_server, dispatched) -> None:
    accountant = UserFactory(username="meera")
    org = make_organization(name="Sharma Accounting", user=accountant, role="Accountant")
    credits_adjust(organization=org, amount=Decimal("10"), note="opening", user=None)
    account = make_account(org)
    make_approved_template(account, Module.INVOICES, name="invoice_issued")
    reminder = make_approved_template(account, Module.PAYMENT_REMINDERS, name="payment_overdue")
    customer = make_contact(org, name="Ravi Traders", mobile="9820012345")
    person = customer.persons.get()
    today = org.today()
    invoice = make_document(
        org, contact=customer, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=25)
    )

    sign_in(page, "meera")
    page.goto(document_url(invoice))
    expect(page.locator(".document-status")).to_contain_text("Overdue by 25 days")

    # Reminders → Send WhatsApp message: the payment-reminder template, the customer's person ticked.
    page.locator('[data-menu="reminders"] > summary').click()
    page.locator('[data-menu="reminders"]').get_by_role("link", name="Send WhatsApp message").click()
    expect(page.locator("h1")).to_contain_text("Send WhatsApp message")
    expect(page.locator("#id_template option:checked")).to_contain_text("payment_overdue")
    expect(page.locator(f'[data-recipient="{person.pk}"]')).to_be_checked()
    page.get_by_role("button", name="Send", exact=True).click()

    # Back on the invoice with the success message, and the reminder in Comments & History.
    expect(page).to_have_url(re.compile(re.escape(document_url(invoice)) + r"$"))
    expect(page.locator(".message-success")).to_have_text("WhatsApp message queued for 1 recipient.")
    message = Message.objects.get(document=invoice)
    assert (message.module, message.template, message.contact_person) == (Module.PAYMENT_REMINDERS, reminder, person)
    assert dispatched == [message.pk]
    entry = page.locator(f"#whatsapp-message-{message.pk}")
    expect(entry).to_contain_text(f"WhatsApp message sent to {person.name}")
    entry.locator("summary").click()
    template_line = entry.locator(".history-detail-list dt", has_text=re.compile(r"^Template$"))
    expect(template_line.locator("xpath=following-sibling::dd[1]")).to_have_text("payment_overdue")
