"""Payment reminders by due date: the rules, the run, the beat schedule and the settings page.

An organization in Asia/Kolkata with three rules — 3 days before the due date, on it, 7 days
after — and invoices due on many days, some paid, void, draft, at zero balance or of a customer
without WhatsApp. The run goes through the real ``notification_send`` and ``credits`` services on
PostgreSQL; dispatch is not enqueued (``_enqueue`` is a no-op), so no message leaves.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import zoneinfo
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_celery_beat.models import PeriodicTask

from books.choices import DocumentKind, DocumentStatus
from books.formatting import date_format
from books.history import document_url
from books.models import ContactPerson, Document, Organization
from books.services.documents import AllocationInput, LineInput, document_void
from books.services.organizations import organization_update
from credits.services import credits_adjust
from templates_mgmt.choices import Module
from templates_mgmt.models import MessageTemplate, ModuleSetting
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template
from whatsapp.models import Message, ReminderRule, ReminderSchedule, ReminderSent
from whatsapp.services.reminders import (
    RUN_TASK,
    periodic_task_name,
    reminder_rule_create,
    reminder_rule_update,
    reminder_schedule_update,
    reminders_run,
)
from whatsapp.tasks import reminders_run_task

pytestmark = pytest.mark.django_db

KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
#: The day the schedule runs in these tests.
TODAY = datetime.date(2026, 5, 10)
BEFORE, ON, AFTER = ReminderRule.When.BEFORE, ReminderRule.When.ON, ReminderRule.When.AFTER
PAGE = reverse("whatsapp:reminders")
NEW = reverse("whatsapp:reminder_rule_new")


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Nothing is sent: the messages stay queued, and the ids dispatch was asked for are kept."""
    enqueued: list[int] = []
    monkeypatch.setattr("whatsapp.services.dispatch._enqueue", enqueued.append)
    return enqueued


def clock_at(monkeypatch: pytest.MonkeyPatch, when: datetime.datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: when.astimezone(datetime.UTC))


def invoice(organization: Organization, due: datetime.date, **kwargs: Any):
    return make_document(
        organization,
        kind=DocumentKind.INVOICE,
        date=due - datetime.timedelta(days=15),
        due_date=due,
        **kwargs,
    )


#: The rules of ``set_up_organization``: (name, days, when).
THREE_RULES = (("3 days before", 3, BEFORE), ("On the due date", 0, ON), ("7 days after", 7, AFTER))


def set_up_organization(
    *, credits: Decimal = Decimal("100"), user: Any = None, rules: tuple[tuple[str, int, str], ...] = THREE_RULES
) -> Organization:
    """Asia/Kolkata, WhatsApp connected, a default payment reminder template, credits, reminders on,
    and the three rules (or ``rules``)."""
    organization = make_organization(user=user)
    account = make_account(organization)
    if credits:
        credits_adjust(organization=organization, amount=credits, note="opening", user=None)
    make_approved_template(account, Module.PAYMENT_REMINDERS)
    reminder_schedule_update(organization=organization, enabled=True)
    for name, days, when in rules:
        reminder_rule_create(organization=organization, name=name, days=days, when=when)
    return organization


@pytest.fixture
def organization() -> Organization:
    return set_up_organization()


def reminder_messages(organization: Organization):
    return Message.objects.filter(organization=organization, module=Module.PAYMENT_REMINDERS)


# --- The run ---------------------------------------------------------------------------------------


def test_at_nine_in_kolkata_exactly_the_matching_invoices_get_one_reminder_and_a_second_run_sends_nothing(
    organization, monkeypatch
) -> None:
    days = datetime.timedelta
    # Matching: one per rule; the one due today has two people with WhatsApp, so two messages.
    due_in_3 = invoice(organization, TODAY + days(3))
    due_today = invoice(organization, TODAY, contact=make_contact(organization, persons=2))
    week_late = invoice(organization, TODAY - days(7))
    make_document(  # part-paid: it still has a balance
        organization,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=week_late.contact,
        date=TODAY - days(1),
        amount=Decimal("1000"),
        allocations=[AllocationInput(week_late, Decimal("1000"))],
    )
    # Not matching: another day, paid, void, draft, nothing owed, a customer without WhatsApp.
    invoice(organization, TODAY + days(2))
    invoice(organization, TODAY - days(6))
    paid = invoice(organization, TODAY - days(7))
    make_document(
        organization,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=paid.contact,
        date=TODAY - days(1),
        amount=paid.total,
        allocations=[AllocationInput(paid, paid.total)],
    )
    document_void(document=invoice(organization, TODAY))
    invoice(organization, TODAY, issue=False)
    invoice(organization, TODAY, lines=[LineInput("Free sample", Decimal("1"), Decimal("0"), Decimal("0"))])
    invoice(organization, TODAY, contact=make_contact(organization, whatsapp=False))
    make_document(organization, kind=DocumentKind.RETAINER_INVOICE, date=TODAY - days(5), due_date=TODAY)
    # Matching, but nobody at the customer has WhatsApp on: refused, and recorded as such.
    unreachable = invoice(organization, TODAY + days(3))
    ContactPerson.objects.filter(contact=unreachable.contact).update(whatsapp_enabled=False)
    # Another organization's invoice due today is not this run's.
    other = set_up_organization()
    invoice(other, TODAY)

    # 09:00 in Kolkata is 03:30 UTC.
    clock_at(monkeypatch, datetime.datetime(2026, 5, 10, 9, 0, tzinfo=KOLKATA))
    result = reminders_run(organization=organization)

    assert result.today == TODAY
    assert (result.sent, result.messages, result.already_sent) == (3, 4, 0)
    # Which rule refused is notification_send's to say; the run keeps it.
    [skipped] = result.skipped
    assert skipped.number == unreachable.number and skipped.code in {"no_recipients", "recipient_not_opted_in"}
    messages = reminder_messages(organization)
    assert sorted(m.document_id for m in messages) == sorted([due_in_3.pk, due_today.pk, due_today.pk, week_late.pk])
    assert {m.template.module for m in messages} == {Module.PAYMENT_REMINDERS}
    assert not reminder_messages(other).exists()
    rows = {row.document_id: row for row in ReminderSent.objects.filter(organization=organization)}
    assert {pk: (row.rule.name, row.outcome) for pk, row in rows.items()} == {
        due_in_3.pk: ("3 days before", "sent"),
        due_today.pk: ("On the due date", "sent"),
        week_late.pk: ("7 days after", "sent"),
        unreachable.pk: ("3 days before", "skipped"),
    }
    assert rows[due_today.pk].message_count == 2 and rows[due_today.pk].message.document_id == due_today.pk
    assert (rows[unreachable.pk].reason_code, rows[unreachable.pk].reason) == (skipped.code, skipped.reason)
    assert "WhatsApp" in skipped.reason and rows[unreachable.pk].message is None
    schedule = ReminderSchedule.objects.get(organization=organization)
    assert schedule.last_run_on == TODAY and schedule.last_run_counts["sent"] == 3

    # Beat runs it again (a duplicate delivery, or a restart catching up at 11:00): nothing more.
    clock_at(monkeypatch, datetime.datetime(2026, 5, 10, 11, 0, tzinfo=KOLKATA))
    again = reminders_run(organization=organization)
    assert (again.sent, again.messages, again.already_sent, again.skipped) == (0, 0, 4, [])
    assert reminder_messages(organization).count() == 4
    assert ReminderSent.objects.filter(organization=organization).count() == 4


def test_today_is_the_organizations_day_not_utcs(organization, monkeypatch) -> None:
    due_today = invoice(organization, TODAY)
    # 00:30 on the 10th in Kolkata is still the 9th in UTC.
    clock_at(monkeypatch, datetime.datetime(2026, 5, 10, 0, 30, tzinfo=KOLKATA))

    result = reminders_run(organization=organization)

    assert result.today == TODAY and result.sent == 1
    assert reminder_messages(organization).get().document == due_today


def test_a_refused_reminder_is_recorded_with_its_reason_and_not_retried_the_same_day() -> None:
    organization = set_up_organization(credits=Decimal("0"))
    due = invoice(organization, TODAY)

    result = reminders_run(organization=organization, today=TODAY)

    assert result.sent == 0 and [s.code for s in result.skipped] == ["insufficient_credits"]
    row = ReminderSent.objects.get(document=due)
    assert (row.outcome, row.reason_code, row.message) == ("skipped", "insufficient_credits", None)
    assert "IM credits" in row.reason
    assert not Message.objects.filter(organization=organization).exists()
    # Credits bought later that day: the schedule does not spam the customer with a late retry.
    credits_adjust(organization=organization, amount=Decimal("100"), note="bought", user=None)
    again = reminders_run(organization=organization, today=TODAY)
    assert (again.sent, again.already_sent) == (0, 1)
    assert not Message.objects.filter(organization=organization).exists()


def test_module_turned_off_skips_with_the_reason(organization) -> None:
    invoice(organization, TODAY)
    ModuleSetting.objects.filter(organization=organization, module=Module.PAYMENT_REMINDERS).update(enabled=False)

    result = reminders_run(organization=organization, today=TODAY)

    assert [s.code for s in result.skipped] == ["module_disabled"]
    assert not reminder_messages(organization).exists()


def test_nothing_runs_while_reminders_are_off_or_for_a_rule_turned_off(organization) -> None:
    invoice(organization, TODAY)
    invoice(organization, TODAY + datetime.timedelta(days=3))
    reminder_schedule_update(organization=organization, enabled=False)

    assert reminders_run(organization=organization, today=TODAY).enabled is False
    assert not ReminderSent.objects.exists()

    reminder_schedule_update(organization=organization, enabled=True)
    on_due = ReminderRule.objects.get(organization=organization, when=ON)
    reminder_rule_update(rule=on_due, enabled=False)
    result = reminders_run(organization=organization, today=TODAY)
    assert result.sent == 1
    assert reminder_messages(organization).get().document.due_date == TODAY + datetime.timedelta(days=3)


def test_a_rules_own_template_is_the_one_sent() -> None:
    organization = set_up_organization()
    account = organization.whatsapp_accounts.get()
    firm = make_approved_template(account, Module.PAYMENT_REMINDERS, default=False, name="payment_reminder_firm")
    rule = ReminderRule.objects.get(organization=organization, when=AFTER)
    reminder_rule_update(rule=rule, template=firm)
    invoice(organization, TODAY - datetime.timedelta(days=7))

    reminders_run(organization=organization, today=TODAY)

    assert reminder_messages(organization).get().template == firm


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_at_once_remind_each_invoice_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")
    organization = set_up_organization()
    invoices = [invoice(organization, TODAY) for _ in range(12)]
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        try:
            results.append(reminders_run(organization=Organization.objects.get(pk=organization.pk), today=TODAY))
        except BaseException as exc:  # surfaced below: a thread's exception would be lost
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sum(r.sent for r in results) == len(invoices)
    assert sum(r.already_sent for r in results) == len(invoices)
    assert reminder_messages(organization).count() == len(invoices)
    assert sorted(reminder_messages(organization).values_list("document_id", flat=True)) == sorted(
        i.pk for i in invoices
    )


# --- Catch-up of the days nothing ran ------------------------------------------------------------


def on(monkeypatch: pytest.MonkeyPatch, day: int, hour: int = 9) -> datetime.date:
    """Move the clock to ``hour`` o'clock in Kolkata on ``day`` May 2026; that day."""
    clock_at(monkeypatch, datetime.datetime(2026, 5, day, hour, 0, tzinfo=KOLKATA))
    return datetime.date(2026, 5, day)


def may(day: int) -> datetime.date:
    return datetime.date(2026, 5, day)


def reminded(organization: Organization) -> dict[str, str]:
    """Invoice number → the rule that reminded it, for every reminder sent."""
    rows = ReminderSent.objects.filter(organization=organization, outcome="sent").select_related("rule", "document")
    return {row.document.number: row.rule.name for row in rows}


def test_after_beat_was_down_two_days_the_next_run_catches_up_the_reminders_on_or_after_the_due_date(
    monkeypatch,
) -> None:
    # Set up, and run, on 7 May; beat is down on the 8th and the 9th.
    on(monkeypatch, 7, hour=8)
    organization = set_up_organization()
    ran_on_the_7th = invoice(organization, may(7))
    reminders_run(organization=organization)
    due_8th = invoice(organization, may(8))  # on the due date, the 8th: missed
    due_9th = invoice(organization, may(9))  # on the due date, the 9th: missed
    week_late = invoice(organization, may(1))  # 7 days after, the 8th: missed
    due_11th = invoice(organization, may(11))  # 3 days before, the 8th: missed, and not caught up
    due_12th = invoice(organization, may(12))  # 3 days before, the 9th: missed, and not caught up
    due_13th = invoice(organization, may(13))  # 3 days before, today
    due_today = invoice(organization, may(10))  # on the due date, today
    paid_since = invoice(organization, may(8))  # checked as of today: paid on the 9th
    make_document(
        organization,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=paid_since.contact,
        date=may(9),
        amount=paid_since.total,
        allocations=[AllocationInput(paid_since, paid_since.total)],
    )

    today = on(monkeypatch, 10)
    result = reminders_run(organization=organization)

    assert (result.today, result.caught_up_from) == (today, may(8))
    assert (result.sent, result.already_sent, result.skipped) == (5, 0, [])
    assert reminded(organization) == {
        ran_on_the_7th.number: "On the due date",
        due_8th.number: "On the due date",
        due_9th.number: "On the due date",
        week_late.number: "7 days after",
        due_13th.number: "3 days before",
        due_today.number: "On the due date",
    }
    assert not ReminderSent.objects.filter(document__in=[due_11th, due_12th, paid_since]).exists()
    assert ReminderSent.objects.get(document=due_8th).run_on == may(8)  # the day it was for
    assert reminder_messages(organization).count() == 6
    schedule = ReminderSchedule.objects.get(organization=organization)
    assert (schedule.last_run_on, schedule.last_run_counts["caught_up_from"]) == (today, "2026-05-08")

    # Beat delivers it twice: nothing more.
    again = reminders_run(organization=organization)
    assert (again.caught_up_from, again.sent, again.already_sent) == (None, 0, 2)
    assert reminder_messages(organization).count() == 6

    # The rules before the due date are the operator's, by hand; that leaves the last run day alone.
    out = StringIO()
    call_command("reminders_run", organization=organization.pk, date=may(9), stdout=out)
    assert "2026-05-09: 1 reminded (1 messages), 1 already done, 0 skipped." in out.getvalue()
    assert reminded(organization)[due_12th.number] == "3 days before"
    schedule.refresh_from_db()
    assert schedule.last_run_on == today


def test_an_invoice_several_missed_rules_fall_on_gets_only_the_latest(monkeypatch) -> None:
    admin = UserFactory()
    on(monkeypatch, 7, hour=8)
    rules = (("On the due date", 0, ON), ("1 day after", 1, AFTER), ("3 days after", 3, AFTER))
    organization = set_up_organization(user=admin, rules=rules)
    reminders_run(organization=organization)
    # Due on the 7th: "On the due date" ran; "1 day after" (8th) and "3 days after" (10th, today) now.
    due_7th = invoice(organization, may(7))
    # Due on the 8th: "On the due date" (8th) and "1 day after" (9th), both missed.
    due_8th = invoice(organization, may(8))

    on(monkeypatch, 10)
    result = reminders_run(organization=organization)

    assert (result.sent, result.messages, result.already_sent) == (2, 2, 0)
    assert reminded(organization) == {due_7th.number: "3 days after", due_8th.number: "1 day after"}
    assert sorted(reminder_messages(organization).values_list("document_id", flat=True)) == sorted(
        [due_7th.pk, due_8th.pk]
    )
    superseded = ReminderSent.objects.filter(organization=organization, outcome="skipped").select_related("rule")
    assert sorted((row.document_id, row.rule.name, row.reason_code) for row in superseded) == sorted(
        [(due_7th.pk, "1 day after", "superseded"), (due_8th.pk, "On the due date", "superseded")]
    )
    assert {s.code for s in result.skipped} == {"superseded"}
    reason = superseded.get(document=due_8th).reason
    assert "“1 day after”" in reason
    # The page says why the invoice got one reminder and not two.
    client = Client()
    client.force_login(admin)
    assert str(escape(reason)) in client.get(PAGE).content.decode()

    again = reminders_run(organization=organization)
    assert (again.sent, again.already_sent, again.skipped) == (0, 1, [])
    assert reminder_messages(organization).count() == 2


def test_a_run_catches_up_seven_days_at_most(monkeypatch) -> None:
    on(monkeypatch, 1, hour=8)
    organization = set_up_organization(rules=(("On the due date", 0, ON),))
    reminders_run(organization=organization)
    due = {day: invoice(organization, may(day)) for day in (4, 5, 11, 12)}

    # Down from the 2nd to the 11th: ten days missed.
    on(monkeypatch, 12)
    result = reminders_run(organization=organization)

    assert result.caught_up_from == may(5)
    assert set(reminded(organization)) == {due[day].number for day in (5, 11, 12)}
    assert not ReminderSent.objects.filter(document=due[4]).exists()


def test_the_first_run_ever_catches_up_nothing(monkeypatch) -> None:
    on(monkeypatch, 1)
    organization = set_up_organization()
    invoice(organization, may(8))  # "On the due date" two days ago
    invoice(organization, may(2))  # "7 days after" yesterday
    due_today = invoice(organization, may(10))

    on(monkeypatch, 10)
    result = reminders_run(organization=organization)

    assert (result.caught_up_from, result.sent) == (None, 1)
    assert reminded(organization) == {due_today.number: "On the due date"}


def test_days_on_which_reminders_were_off_are_not_caught_up(monkeypatch) -> None:
    on(monkeypatch, 1, hour=8)
    organization = set_up_organization(rules=(("On the due date", 0, ON),))
    reminders_run(organization=organization)
    on(monkeypatch, 2)
    reminder_schedule_update(organization=organization, enabled=False)
    # On again on the 7th, after the hour of its run; beat is down until the 10th.
    on(monkeypatch, 7, hour=12)
    reminder_schedule_update(organization=organization, enabled=True)
    while_off = invoice(organization, may(5))
    turned_on = invoice(organization, may(7))

    on(monkeypatch, 10)
    result = reminders_run(organization=organization)

    assert result.caught_up_from == may(7)
    assert reminded(organization) == {turned_on.number: "On the due date"}
    assert not ReminderSent.objects.filter(document=while_off).exists()


def test_a_rule_added_while_beat_was_down_is_not_caught_up_for_the_days_before_it(monkeypatch) -> None:
    on(monkeypatch, 5, hour=8)
    organization = set_up_organization(rules=())
    reminders_run(organization=organization)
    # Beat is down from the 6th to the 9th; the rule is added on the 8th.
    on(monkeypatch, 8, hour=12)
    reminder_rule_create(organization=organization, name="2 days after", days=2, when=AFTER)
    before_the_rule = invoice(organization, may(4))  # 2 days after: the 6th
    since_the_rule = invoice(organization, may(6))  # 2 days after: the 8th

    on(monkeypatch, 10)
    result = reminders_run(organization=organization)

    assert result.caught_up_from == may(6)
    assert reminded(organization) == {since_the_rule.number: "2 days after"}
    assert not ReminderSent.objects.filter(document=before_the_rule).exists()


# --- Rules ---------------------------------------------------------------------------------------


def test_rule_validation(organization) -> None:
    account = organization.whatsapp_accounts.get()
    invoices_template = make_approved_template(account, Module.INVOICES)
    with pytest.raises(ValidationError) as caught:
        reminder_rule_create(organization=organization, name="Zero before", days=0, when=BEFORE)
    assert "days" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        reminder_rule_create(organization=organization, name="Too far", days=366, when=AFTER)
    assert "days" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        reminder_rule_create(
            organization=organization, name="Wrong template", days=1, when=AFTER, template=invoices_template
        )
    assert "template" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        reminder_rule_create(organization=organization, name="Same day", days=7, when=AFTER)
    assert "Another reminder is already sent on that day." in caught.value.messages
    # "On the due date" takes no days, whatever the form sent along.
    ReminderRule.objects.filter(organization=organization, when=ON).delete()
    rule = reminder_rule_update(rule=ReminderRule.objects.get(organization=organization, when=BEFORE), when=ON)
    assert (rule.when, rule.days) == (ON, 0)


def test_a_template_no_longer_approved_is_refused_on_save(organization) -> None:
    account = organization.whatsapp_accounts.get()
    firm = make_approved_template(account, Module.PAYMENT_REMINDERS, default=False, name="payment_reminder_firm")
    firm.status = "PAUSED"
    firm.save(update_fields=["status"])
    with pytest.raises(ValidationError) as caught:
        reminder_rule_create(organization=organization, name="Firm", days=14, when=AFTER, template=firm)
    assert "template" in caught.value.message_dict


# --- The beat schedule -----------------------------------------------------------------------------


def test_the_schedule_is_a_daily_crontab_at_nine_in_the_organizations_zone_calling_the_task(organization) -> None:
    task = PeriodicTask.objects.get(name=periodic_task_name(organization))

    assert (task.task, json.loads(task.args), task.enabled) == (RUN_TASK, [organization.pk], True)
    assert reminders_run_task.name == RUN_TASK
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
        "0",
        "9",
        "*",
        "*",
        "*",
    )
    assert str(crontab.timezone) == "Asia/Kolkata"
    # What beat decides with it: yesterday's run done, the next one is due at 03:30 UTC, not before;
    # beat that was down then still finds it due at 11:00 (the run covers that day).
    schedule = crontab.schedule
    last_run = datetime.datetime(2026, 5, 9, 9, 0, tzinfo=KOLKATA)
    for now, due in (
        (datetime.datetime(2026, 5, 10, 3, 29, tzinfo=datetime.UTC), False),
        (datetime.datetime(2026, 5, 10, 3, 30, tzinfo=datetime.UTC), True),
        (datetime.datetime(2026, 5, 10, 11, 0, tzinfo=KOLKATA), True),
    ):
        schedule.nowfun = lambda now=now: now.astimezone(KOLKATA)
        assert schedule.is_due(last_run).is_due is due, now


def test_moving_turning_off_and_a_new_time_zone_update_the_periodic_task(organization) -> None:
    reminder_schedule_update(organization=organization, enabled=True, send_at=datetime.time(10, 30))
    task = PeriodicTask.objects.get(name=periodic_task_name(organization))
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("10", "30", True)

    reminder_schedule_update(organization=organization, enabled=False)
    task.refresh_from_db()
    assert task.enabled is False and task.crontab.hour == "10"

    organization_update(organization=organization, time_zone="America/Mexico_City")
    reminder_schedule_update(organization=organization, enabled=True)
    task.refresh_from_db()
    assert str(task.crontab.timezone) == "America/Mexico_City" and task.enabled
    assert PeriodicTask.objects.filter(name=periodic_task_name(organization)).count() == 1


def test_a_new_time_zone_moves_the_periodic_task_without_saving_the_schedule_again(organization) -> None:
    task = PeriodicTask.objects.get(name=periodic_task_name(organization))
    crontab_id = task.crontab_id

    organization_update(organization=organization, time_zone="America/Mexico_City")

    task.refresh_from_db()
    assert (str(task.crontab.timezone), task.crontab.hour, task.crontab.minute, task.enabled) == (
        "America/Mexico_City",
        "9",
        "0",
        True,
    )
    assert task.crontab_id == crontab_id  # its own row, moved: no new one per change
    # Another field changes nothing; an organization without a schedule gets no task.
    organization_update(organization=organization, name="Acme Books Mexico")
    task.refresh_from_db()
    assert str(task.crontab.timezone) == "America/Mexico_City"
    other = make_organization(name="No reminders")
    organization_update(organization=other, time_zone="Europe/Madrid")
    assert not PeriodicTask.objects.filter(name=periodic_task_name(other)).exists()


def test_a_new_time_zone_saved_in_django_admin_moves_the_periodic_task(admin_client, organization) -> None:
    url = reverse("admin:books_organization_change", args=[organization.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data |= {"time_zone": "Europe/Madrid", "created_at": ""}

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    task = PeriodicTask.objects.get(name=periodic_task_name(organization))
    assert str(task.crontab.timezone) == "Europe/Madrid"


def test_each_organizations_periodic_task_has_a_crontab_of_its_own(organization) -> None:
    other = set_up_organization()
    task = PeriodicTask.objects.get(name=periodic_task_name(organization))
    others = PeriodicTask.objects.get(name=periodic_task_name(other))
    # Both at 09:00 in Kolkata, on two rows: an administrator moving one moves only that one.
    assert task.crontab_id != others.crontab_id
    task.crontab.hour = "10"
    task.crontab.save()
    others.refresh_from_db()
    assert others.crontab.hour == "9"

    # A row shared with another task (from before, or picked up by beat's sync) is left to it.
    others.crontab = task.crontab
    others.save()
    reminder_schedule_update(organization=other, enabled=True, send_at=datetime.time(7, 0))
    others.refresh_from_db()
    task.refresh_from_db()
    assert others.crontab_id != task.crontab_id
    assert (others.crontab.hour, task.crontab.hour) == ("7", "10")


def test_the_task_runs_the_organizations_reminders_for_its_today(organization, monkeypatch) -> None:
    invoice(organization, TODAY)
    clock_at(monkeypatch, datetime.datetime(2026, 5, 10, 9, 0, tzinfo=KOLKATA))

    counts = reminders_run_task.apply(args=[organization.pk]).get()
    again = reminders_run_task.apply(args=[organization.pk]).get()

    assert (counts["today"], counts["sent"]) == ("2026-05-10", 1)
    assert (again["sent"], again["already_sent"]) == (0, 1)
    assert reminders_run_task.apply(args=[999_999]).get() == {}


def test_the_command_runs_a_given_day(organization) -> None:
    from io import StringIO

    invoice(organization, TODAY)
    out = StringIO()

    call_command("reminders_run", organization=organization.pk, date=TODAY, stdout=out)
    call_command("reminders_run", date=TODAY, stdout=out)

    lines = out.getvalue().splitlines()
    assert "2026-05-10: 1 reminded (1 messages), 0 already done, 0 skipped." in lines[0]
    assert any("0 reminded (0 messages), 1 already done" in line for line in lines[1:])


# --- Settings → WhatsApp → Reminders -------------------------------------------------------------


@pytest.fixture
def admin() -> Any:
    return UserFactory()


@pytest.fixture
def org(admin) -> Organization:
    organization = make_organization(user=admin)
    make_approved_template(make_account(organization), Module.PAYMENT_REMINDERS)
    return organization


@pytest.fixture
def client(admin, org) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_saving_the_settings_creates_moves_and_disables_the_periodic_task(client, org) -> None:
    response = client.post(PAGE, {"enabled": "on", "send_at": "09:00"})
    assert response.status_code == 302
    task = PeriodicTask.objects.get(name=periodic_task_name(org))
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone), task.enabled) == (
        "9",
        "0",
        "Asia/Kolkata",
        True,
    )

    client.post(PAGE, {"enabled": "on", "send_at": "18:15"})
    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("18", "15", True)

    client.post(PAGE, {"send_at": "18:15"})
    task.refresh_from_db()
    assert task.enabled is False
    page = client.get(PAGE)
    assert page.status_code == 200 and b"Reminders based on due date" in page.content


def test_changing_the_time_zone_on_the_organization_settings_page_moves_the_periodic_task(client, org) -> None:
    reminder_schedule_update(organization=org, enabled=True, send_at=datetime.time(18, 15))
    reminder_rule_create(organization=org, name="On the due date", days=0, when=ON)
    profile = {
        "name": org.name,
        "country": "ES",
        "currency": "EUR",
        "time_zone": "Europe/Madrid",
        "phone_region": "ES",
        "date_format": "dd/MM/yyyy",
        "language": "en",
    }

    # A form that does not validate moves nothing.
    refused = client.post(reverse("books:settings_organization"), profile | {"time_zone": "Mars/Olympus"})
    assert refused.status_code == 200
    task = PeriodicTask.objects.get(name=periodic_task_name(org))
    assert str(task.crontab.timezone) == "Asia/Kolkata"

    response = client.post(reverse("books:settings_organization"), profile)

    assert response.status_code == 302
    task.refresh_from_db()
    assert (str(task.crontab.timezone), task.crontab.hour, task.crontab.minute) == ("Europe/Madrid", "18", "15")
    assert client.get(PAGE).context["notices"] == []  # nothing left to save


def test_a_bad_time_is_shown_on_the_form(client, org) -> None:
    response = client.post(PAGE, {"enabled": "on", "send_at": "25:99"})
    assert response.status_code == 200
    assert response.context["form"].errors["send_at"]
    assert not PeriodicTask.objects.filter(name=periodic_task_name(org)).exists()


def test_adding_editing_toggling_and_deleting_a_rule(client, org) -> None:
    template = MessageTemplate.objects.get(organization=org, module=Module.PAYMENT_REMINDERS)
    response = client.post(
        NEW, {"name": "3 days before", "days": "3", "when": "before", "enabled": "on", "template": template.pk}
    )
    assert response.status_code == 302
    rule = ReminderRule.objects.get(organization=org)
    assert (rule.days, rule.when, rule.enabled, rule.template) == (3, "before", True, template)
    page = client.get(PAGE)
    assert b"3 days before" in page.content

    edit = reverse("whatsapp:reminder_rule_edit", args=[rule.pk])
    assert client.get(edit).status_code == 200
    client.post(edit, {"name": "On the day", "days": "5", "when": "on", "enabled": "on", "template": ""})
    rule.refresh_from_db()
    assert (rule.name, rule.days, rule.when, rule.template) == ("On the day", 0, "on", None)

    client.post(reverse("whatsapp:reminder_rule_toggle", args=[rule.pk]), {})
    rule.refresh_from_db()
    assert rule.enabled is False
    client.post(reverse("whatsapp:reminder_rule_toggle", args=[rule.pk]), {"enabled": "on"})
    rule.refresh_from_db()
    assert rule.enabled is True

    delete = reverse("whatsapp:reminder_rule_delete", args=[rule.pk])
    assert client.get(delete).status_code == 200
    assert client.post(delete).status_code == 302
    assert not ReminderRule.objects.filter(pk=rule.pk).exists()


def test_rule_validation_errors_render_on_the_form(client, org) -> None:
    invoices_template = make_approved_template(org.whatsapp_accounts.get(), Module.INVOICES)
    reminder_rule_create(organization=org, name="A week late", days=7, when=AFTER)

    cases = [
        ({"name": "Zero", "days": "0", "when": "before"}, "days"),
        ({"name": "Far", "days": "400", "when": "after"}, "days"),
        ({"name": "Wrong", "days": "2", "when": "after", "template": invoices_template.pk}, "template"),
        ({"name": "Again", "days": "7", "when": "after"}, "__all__"),
        ({"name": "", "days": "1", "when": "sometime"}, "when"),
    ]
    for data, field in cases:
        response = client.post(NEW, data)
        assert response.status_code == 200, data
        assert field in response.context["form"].errors, (data, response.context["form"].errors)
    assert ReminderRule.objects.filter(organization=org).count() == 1


def test_another_organizations_rule_is_a_404(client, org) -> None:
    other = make_organization(name="Other Books")
    rule = reminder_rule_create(organization=other, name="Theirs", days=1, when=AFTER)

    for name in ("reminder_rule_edit", "reminder_rule_delete"):
        assert client.get(reverse(f"whatsapp:{name}", args=[rule.pk])).status_code == 404
    for name in ("reminder_rule_edit", "reminder_rule_toggle", "reminder_rule_delete"):
        assert client.post(reverse(f"whatsapp:{name}", args=[rule.pk]), {"name": "Mine"}).status_code == 404
    rule.refresh_from_db()
    assert rule.name == "Theirs"


def test_only_settings_managers_see_the_page(org) -> None:
    staff = UserFactory()
    from books.services.organizations import membership_add

    membership_add(organization=org, user=staff, role_name="Staff")
    client = Client()
    client.force_login(staff)
    assert client.get(PAGE).status_code == 403
    assert client.post(NEW, {"name": "x", "days": "1", "when": "after"}).status_code == 403
    assert not ReminderRule.objects.exists()


def test_the_whatsapp_overview_links_to_reminders(client) -> None:
    assert PAGE.encode() in client.get(reverse("whatsapp:integration")).content


def test_the_page_shows_what_the_rules_sent_and_why_one_was_skipped(client, org) -> None:
    reminder_schedule_update(organization=org, enabled=True)
    reminder_rule_create(organization=org, name="On the due date", days=0, when=ON)
    sent = invoice(org, TODAY)
    skipped = invoice(org, TODAY, contact=make_contact(org))
    ContactPerson.objects.filter(contact=skipped.contact).update(whatsapp_enabled=False)
    credits_adjust(organization=org, amount=Decimal("10"), note="opening", user=None)
    reminders_run(organization=org, today=TODAY)

    page = client.get(PAGE)

    assert page.status_code == 200
    rows = {row.document_id: row for row in page.context["recent"]}
    assert (rows[sent.pk].outcome, rows[skipped.pk].outcome) == ("sent", "skipped")
    content = page.content.decode()
    assert sent.number in content and skipped.number in content
    assert str(escape(rows[skipped.pk].reason)) in content
    assert page.context["notices"] == []


def test_the_page_says_what_keeps_reminders_from_going_out(client, org) -> None:
    ModuleSetting.objects.filter(organization=org).update(enabled=False)
    reminder_schedule_update(organization=org, enabled=True)

    notices = client.get(PAGE).context["notices"]

    assert any("turned off for Payment reminders" in notice for notice in notices)
    assert any("No reminder is set" in notice for notice in notices)


def test_the_admin_shows_rules_schedules_and_reminders_read_only(organization) -> None:
    invoice(organization, TODAY)
    reminders_run(organization=organization, today=TODAY)
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(superuser)

    for obj in (
        ReminderRule.objects.filter(organization=organization).first(),
        ReminderSchedule.objects.get(organization=organization),
        ReminderSent.objects.get(organization=organization),
    ):
        meta = obj._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert client.get(changelist).status_code == 200
        change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        page = client.get(change)
        assert page.status_code == 200 and not page.context["has_change_permission"]
        assert client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403


# --- REST API ------------------------------------------------------------------------------------

API = "/api/v1/whatsapp/reminders"


def test_rules_and_schedule_over_the_rest_api(admin, org) -> None:
    from tests.books.api.builders import client_for

    api = client_for(admin)
    template = MessageTemplate.objects.get(organization=org, module=Module.PAYMENT_REMINDERS)

    created = api.post(API, {"name": "3 days before", "days": 3, "when": "before", "template_id": template.pk})
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    assert created.json()["template_id"] == template.pk and created.json()["enabled"] is True
    api.post(API, {"name": "On the due date", "when": "on"})
    assert [rule["name"] for rule in api.get(API).json()] == ["3 days before", "On the due date"]

    changed = api.patch(f"{API}/{rule_id}", {"enabled": False})
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert changed.json()["template_id"] == template.pk  # untouched by a partial update

    bad = api.post(API, {"name": "Zero before", "days": 0, "when": "before"})
    assert bad.status_code == 400 and "days" in bad.json()
    same_day = api.post(API, {"name": "Again", "when": "on"})
    assert same_day.status_code == 400
    other = make_organization(name="Other Books")
    theirs = make_approved_template(make_account(other), Module.PAYMENT_REMINDERS)
    foreign = api.post(API, {"name": "Theirs", "days": 1, "when": "after", "template_id": theirs.pk})
    assert foreign.status_code == 400 and "template_id" in foreign.json()
    their_rule = reminder_rule_create(organization=other, name="Theirs", days=1, when=AFTER)
    assert api.get(f"{API}/{their_rule.pk}").status_code == 404
    assert api.delete(f"{API}/{their_rule.pk}").status_code == 404

    schedule = api.put(f"{API}/schedule", {"enabled": True, "send_at": "08:45"})
    assert schedule.status_code == 200, schedule.content
    assert schedule.json() | {"last_run_counts": None} == {
        "enabled": True,
        "send_at": "08:45",
        "time_zone": "Asia/Kolkata",
        "last_run_on": None,
        "last_run_at": None,
        "last_run_counts": None,
    }
    task = PeriodicTask.objects.get(name=periodic_task_name(org))
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("8", "45", True)
    assert api.put(f"{API}/schedule", {"enabled": True, "send_at": "8 o'clock"}).status_code == 400

    assert api.delete(f"{API}/{rule_id}").status_code == 204
    assert list(ReminderRule.objects.filter(organization=org).values_list("name", flat=True)) == ["On the due date"]


def test_listing_rules_takes_the_same_queries_however_many(admin, org) -> None:
    from django.test.utils import CaptureQueriesContext

    from tests.books.api.builders import client_for

    api = client_for(admin)
    reminder_rule_create(organization=org, name="One", days=1, when=AFTER)
    with CaptureQueriesContext(connection) as one:
        assert api.get(API).status_code == 200
    for days in range(2, 12):
        reminder_rule_create(organization=org, name=f"{days} days after", days=days, when=AFTER)
    with CaptureQueriesContext(connection) as eleven:
        assert len(api.get(API).json()) == 11
    assert len(eleven) == len(one)


def test_the_rest_api_needs_settings_manage(org) -> None:
    from books.services.organizations import membership_add
    from tests.books.api.builders import client_for

    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")
    api = client_for(staff)
    assert api.get(API).status_code == 403
    assert api.post(API, {"name": "x", "days": 1, "when": "after"}).status_code == 403


# --- Refusals an administrator fixes are tried again on a later day -------------------------------


def test_credits_running_out_mid_run_skip_the_rest_and_a_later_day_sends_them_once_bought(monkeypatch) -> None:
    from credits.services.pricing import credits_price

    on(monkeypatch, 9)
    organization = set_up_organization(credits=Decimal("0"), rules=(("On the due date", 0, ON),))
    reminders_run(organization=organization)  # nothing due on the 9th; beat is then down on the 10th
    first, second, third = (invoice(organization, may(10)) for _ in range(3))
    assert ContactPerson.objects.filter(contact=first.contact).count() == 1  # one message per invoice
    price = credits_price(organization=organization, category="utility", phone="+919820012345")
    credits_adjust(organization=organization, amount=price, note="enough for one", user=None)

    on(monkeypatch, 11)
    result = reminders_run(organization=organization)  # catches up the 10th

    assert (result.sent, [s.code for s in result.skipped]) == (1, ["insufficient_credits"] * 2)
    credits_adjust(organization=organization, amount=Decimal("100"), note="bought", user=None)
    again = reminders_run(organization=organization)  # the same day, credits bought: nothing more
    assert (again.sent, again.retried) == (0, 0)

    on(monkeypatch, 12)
    later = reminders_run(organization=organization)

    assert (later.sent, later.retried, later.already_sent) == (2, 2, 0)
    assert set(reminded(organization)) == {first.number, second.number, third.number}
    assert reminder_messages(organization).count() == 3
    on(monkeypatch, 13)
    assert reminders_run(organization=organization).sent == 0
    assert reminder_messages(organization).count() == 3


def test_only_fixable_refusals_of_rules_on_or_after_the_due_date_are_tried_again(monkeypatch) -> None:
    on(monkeypatch, 7)
    organization = set_up_organization(credits=Decimal("0"))
    before_due = invoice(organization, may(10))  # "3 days before" falls on the 7th
    no_number = invoice(organization, may(7))  # "On the due date" falls on the 7th
    ContactPerson.objects.filter(contact=no_number.contact).update(mobile="", phone="")
    reminders_run(organization=organization)
    codes = dict(ReminderSent.objects.values_list("document__number", "reason_code"))
    assert codes == {before_due.number: "insufficient_credits", no_number.number: "recipient_invalid_number"}
    credits_adjust(organization=organization, amount=Decimal("100"), note="bought", user=None)

    on(monkeypatch, 8)
    result = reminders_run(organization=organization)

    # "Due in 3 days" a day late says the wrong thing; a contact without a number is the accountant's.
    assert (result.sent, result.retried) == (0, 0)
    assert not reminder_messages(organization).exists()


def test_a_fixed_refusal_is_not_tried_again_after_the_catch_up_window_or_once_paid(monkeypatch) -> None:
    on(monkeypatch, 1)
    organization = set_up_organization(credits=Decimal("0"), rules=(("On the due date", 0, ON),))
    stale = invoice(organization, may(1))
    reminders_run(organization=organization)
    on(monkeypatch, 5)
    paid = invoice(organization, may(5))
    reminders_run(organization=organization)
    Document.objects.filter(pk=paid.pk).update(balance=Decimal("0"), status=DocumentStatus.PAID)
    credits_adjust(organization=organization, amount=Decimal("100"), note="bought", user=None)

    on(monkeypatch, 9)  # the 1st is more than 7 days back
    result = reminders_run(organization=organization)

    assert (result.sent, result.retried) == (0, 0)
    assert ReminderSent.objects.get(document=stale).outcome == "skipped"


# --- The Reminders page: the history of what the rules did, and what waits for a fix -------------


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def history_rows(response: Any) -> list[int]:
    """The ids of the reminders the page lists, top to bottom."""
    return [int(pk) for pk in re.findall(r'<tr data-reminder-sent="(\d+)"', response.content.decode())]


def history_row(response: Any, sent: ReminderSent) -> str:
    """The HTML of one reminder's row, tags stripped to their text, links kept as ``[href]``."""
    row = re.search(rf'<tr data-reminder-sent="{sent.pk}".*?</tr>', response.content.decode(), re.S)
    assert row is not None, f"{sent} is not listed"
    text = re.sub(r'<a href="([^"]*)">', r"[\1] ", row.group(0))
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def reminders_of(org: Organization, rules: list[ReminderRule], invoices: list[Document], **fields: Any):
    """One ReminderSent per rule and invoice, as a run leaves them (sent, for the 5th, unless told)."""
    fields = {"run_on": may(5), "message_count": 1} | fields
    return ReminderSent.objects.bulk_create(
        ReminderSent(organization=org, rule=rule, document=document, **fields)
        for rule in rules
        for document in invoices
    )


def test_the_history_shows_fifty_reminders_a_page_with_its_range_and_previous_and_next(client, org) -> None:
    rules = [reminder_rule_create(organization=org, name=f"{d} days after", days=d, when=AFTER) for d in range(1, 7)]
    sent = reminders_of(org, rules, [invoice(org, may(1)) for _ in range(9)])  # 54

    first = client.get(PAGE, {"outcome": "sent"})
    second = client.get(PAGE, {"outcome": "sent", "page": "2"})

    assert len(history_rows(first)) == 50 and len(history_rows(second)) == 4
    assert sorted(history_rows(first) + history_rows(second)) == sorted(row.pk for row in sent)
    assert history_rows(first)[0] == max(row.pk for row in sent)  # the newest first
    first_page, second_page = first.content.decode(), second.content.decode()
    assert "1–50 of 54" in first_page and "51–54 of 54" in second_page
    # The pages keep the filter; the first has no Previous, the last no Next.
    assert 'href="?outcome=sent&amp;page=2#wa-reminders-recent">Next</a>' in first_page
    assert ">Previous</a>" not in first_page
    assert 'href="?outcome=sent&amp;page=1#wa-reminders-recent">Previous</a>' in second_page
    assert ">Next</a>" not in second_page


def test_each_reminder_links_to_its_invoice_with_customer_rule_day_outcome_and_why_it_was_skipped(client, org) -> None:
    rule = reminder_rule_create(organization=org, name="A week late", days=7, when=AFTER)
    paid_late, unreachable = invoice(org, may(1)), invoice(org, may(2))
    sent, skipped = [
        *reminders_of(org, [rule], [paid_late], message_count=2, run_on=may(8)),
        *reminders_of(
            org,
            [rule],
            [unreachable],
            run_on=may(9),
            outcome="skipped",
            reason_code="recipient_invalid_number",
            reason="Person1 has no valid mobile number.",
            message_count=0,
        ),
    ]

    page = client.get(PAGE)

    for row, document, outcome in ((sent, paid_late, "Sent (2 messages)"), (skipped, unreachable, "Skipped")):
        text = history_row(page, row)
        day = date_format(row.run_on, organization=org)
        local = timezone.localtime(row.created_at, KOLKATA)
        assert text.startswith(
            f"{date_format(local.date(), organization=org)} {local:%H:%M} "
            f"[{document_url(document)}] {document.number} {document.contact.display_name} A week late {day} "
        )
        assert outcome in text
    assert history_row(page, skipped).endswith("Skipped Person1 has no valid mobile number.")
    assert "has no valid mobile number" not in history_row(page, sent)


def test_the_history_filters_by_outcome_and_by_rule(client, org) -> None:
    on_due, late = (
        reminder_rule_create(organization=org, name="On the due date", days=0, when=ON),
        reminder_rule_create(organization=org, name="A week late", days=7, when=AFTER),
    )
    invoices = [invoice(org, may(1)) for _ in range(3)]
    on_due_sent = reminders_of(org, [on_due], invoices[:2])
    skipped = {"outcome": "skipped", "reason_code": "insufficient_credits", "reason": "Not enough IM credits."}
    on_due_skipped = reminders_of(org, [on_due], invoices[2:], **skipped)
    late_skipped = reminders_of(org, [late], invoices[:1], **skipped)
    everything = {row.pk for row in on_due_sent + on_due_skipped + late_skipped}
    other = set_up_organization(rules=(("Theirs", 1, AFTER),))
    theirs = reminders_of(other, list(ReminderRule.objects.filter(organization=other)), [invoice(other, may(1))])

    def listed(**params: Any) -> set[int]:
        return set(history_rows(client.get(PAGE, params)))

    assert listed() == everything
    assert listed(outcome="sent") == {row.pk for row in on_due_sent}
    assert listed(outcome="skipped") == {row.pk for row in on_due_skipped + late_skipped}
    assert listed(rule=on_due.pk) == {row.pk for row in on_due_sent + on_due_skipped}
    assert listed(rule=late.pk, outcome="skipped") == {late_skipped[0].pk}
    assert listed(rule=late.pk, outcome="sent") == set()
    # Another organization's rule, or an outcome that isn't one, is no filter (and shows nothing of theirs).
    assert listed(rule=theirs[0].rule_id) == everything
    assert listed(outcome="maybe", rule="x") == everything

    page = client.get(PAGE, {"rule": late.pk, "outcome": "sent"}).content.decode()
    assert "No reminder matches this filter." in page
    # The outcome tabs keep the rule; the rule's menu keeps the outcome.
    assert f'<a href="?rule={late.pk}&amp;outcome=skipped#wa-reminders-recent">Skipped</a>' in page
    assert f'<a href="?rule={late.pk}#wa-reminders-recent" class="active"' not in page
    assert '<input type="hidden" name="outcome" value="sent">' in page
    assert f'<option value="{late.pk}" selected>A week late</option>' in page


def test_the_history_takes_the_same_queries_for_one_reminder_as_for_a_full_page(client, org) -> None:
    from django.test.utils import CaptureQueriesContext

    rule = reminder_rule_create(organization=org, name="On the due date", days=0, when=ON)
    reminders_of(org, [rule], [invoice(org, may(1))])
    client.get(PAGE)  # the session and the organization are read the same way from here on
    with CaptureQueriesContext(connection) as one:
        assert len(history_rows(client.get(PAGE))) == 1
    rules = [reminder_rule_create(organization=org, name=f"{d} days after", days=d, when=AFTER) for d in range(1, 6)]
    reminders_of(org, rules, [invoice(org, may(1), contact=make_contact(org)) for _ in range(12)])
    with CaptureQueriesContext(connection) as many:
        assert len(history_rows(client.get(PAGE))) == 50
    assert len(many) == len(one), [query["sql"] for query in many.captured_queries]


def test_the_page_says_how_many_reminders_wait_for_a_fix_and_where_to_make_it(admin, monkeypatch) -> None:
    on(monkeypatch, 9)  # the reminders below were skipped yesterday (or before) ...
    org = set_up_organization(user=admin, rules=(("3 days before", 3, BEFORE), ("On the due date", 0, ON)))
    on_due, before = ReminderRule.objects.get(organization=org, when=ON), ReminderRule.objects.get(when=BEFORE)
    late = reminder_rule_create(organization=org, name="A week late", days=7, when=AFTER)
    off = reminder_rule_create(organization=org, name="Two weeks late", days=14, when=AFTER, enabled=False)

    def skipped(rule: ReminderRule, code: str, day: datetime.date, **invoice_kwargs: Any) -> ReminderSent:
        (row,) = reminders_of(
            org, [rule], [invoice(org, may(1), **invoice_kwargs)], run_on=day, outcome="skipped", reason_code=code
        )
        return row

    oldest = skipped(on_due, "insufficient_credits", may(3))  # within 7 days of the 10th, not of the 11th
    skipped(late, "insufficient_credits", may(9))
    skipped(on_due, "module_disabled", may(9))
    # Not waiting for a fix: a rule before the due date, a rule turned off, too long ago, an invoice
    # that owes nothing any more, one voided, a refusal the accountant fixes, a customer without
    # WhatsApp, and one that was sent.
    skipped(before, "insufficient_credits", may(9))
    skipped(off, "insufficient_credits", may(9))
    skipped(late, "insufficient_credits", may(2))
    settled = skipped(late, "no_channel_number", may(9)).document
    Document.objects.filter(pk=settled.pk).update(balance=Decimal("0"))
    document_void(document=skipped(late, "no_channel_number", may(9)).document)
    skipped(late, "recipient_invalid_number", may(9))
    skipped(late, "integration_inactive", may(9), contact=make_contact(org, whatsapp=False))
    reminders_of(org, [late], [invoice(org, may(1))], run_on=may(9))
    client = signed_in(admin)
    on(monkeypatch, 10)  # ... and today's run is still to come, which takes none skipped today:
    skipped(late, "no_channel_number", may(9))  # by an operator's ``reminders_run --date``

    page = client.get(PAGE)

    assert [(notice["code"], notice["count"]) for notice in page.context["waiting"]] == [
        ("module_disabled", 1),
        ("insufficient_credits", 2),
    ]
    content = page.content.decode()
    assert (
        '<div class="alert alert-warning" data-waiting="module_disabled">1 payment reminder waits for WhatsApp to be '
        "turned on for Payment reminders: turn it on in Enable modules and it goes out with the next daily run. "
        f'<a href="{reverse("whatsapp:template_modules")}" data-waiting-fix>Fix it</a></div>'
    ) in content
    assert (
        '<div class="alert alert-warning" data-waiting="insufficient_credits">2 payment reminders wait for IM '
        "credits: buy IM credits and they go out with the next daily run. "
        f'<a href="{reverse("credits:buy")}" data-waiting-fix>Fix it</a></div>'
    ) in content

    # Once today's run is done the next one is tomorrow's: it takes the one skipped today, and the
    # 3rd is more than 7 days back.
    ReminderSchedule.objects.filter(organization=org).update(last_run_on=may(10))
    assert [(n["code"], n["count"]) for n in client.get(PAGE).context["waiting"]] == [
        ("module_disabled", 1),
        ("no_channel_number", 1),
        ("insufficient_credits", 1),
    ]
    assert ReminderSent.objects.get(pk=oldest.pk).outcome == "skipped"
    # With reminders off no run is coming: nothing is said to wait for one.
    reminder_schedule_update(organization=org, enabled=False)
    assert client.get(PAGE).context["waiting"] == []
    assert b"data-waiting=" not in client.get(PAGE).content


def test_reminders_skipped_for_want_of_credits_are_announced_until_the_next_days_run_sends_them(
    admin, monkeypatch
) -> None:
    on(monkeypatch, 10)
    org = set_up_organization(credits=Decimal("0"), user=admin, rules=(("On the due date", 0, ON),))
    invoices = [invoice(org, may(10)) for _ in range(3)]
    reminders_run(organization=org)
    client = signed_in(admin)
    waiting = '<div class="alert alert-warning" data-waiting="insufficient_credits">3 payment reminders wait for IM'

    assert waiting in client.get(PAGE).content.decode()
    credits_adjust(organization=org, amount=Decimal("100"), note="bought", user=None)
    assert waiting in client.get(PAGE).content.decode()  # bought: they go out with tomorrow's run

    on(monkeypatch, 11)
    assert reminders_run(organization=org).retried == 3
    page = client.get(PAGE)

    assert page.context["waiting"] == [] and b"data-waiting=" not in page.content
    assert set(history_rows(client.get(PAGE, {"outcome": "sent"}))) == set(
        ReminderSent.objects.filter(document__in=invoices).values_list("pk", flat=True)
    )
