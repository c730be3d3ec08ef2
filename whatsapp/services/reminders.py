"""Payment reminders by due date: the rules, the daily schedule, and the run that sends them.

An organization keeps reminder rules (N days before an invoice's due date, on it, N days after)
and one schedule: on or off, and the time of its day they go out (09:00 unless told otherwise).
:func:`reminder_schedule_update` keeps a django-celery-beat ``PeriodicTask`` in step with the
schedule — a daily crontab at that time *in the organization's time zone* that calls
``whatsapp.tasks.reminders_run_task`` with the organization's id — so Celery beat's database
scheduler runs it, and administrators can still pause or move it in Django admin.

:func:`reminders_run` is what the task calls. For each enabled rule it takes the invoices whose
due date plus the rule's offset is *today* in the organization's time zone, that still have a
balance, are neither draft, void nor paid, and whose customer has WhatsApp enabled. Each invoice
gets its own transaction:

1. a :class:`~whatsapp.models.ReminderSent` row for (rule, invoice) is inserted first. It is
   unique, so a second run — or a second worker running at the same moment, which waits on the
   first one's uncommitted row — finds it and sends nothing: at most once lives in the database;
2. then ``notification_send`` (the one path every notification takes) queues the messages and
   reserves their credits, with the idempotency key ``reminder:<rule>:<invoice>``.

**Refusals.** When ``notification_send`` refuses (WhatsApp inactive, module off, no approved
template, nobody with a valid number, too few credits…) nothing is queued, and the row is kept as
*skipped* with the refusal's code and message: the accountant sees on the Reminders page why an
invoice got no reminder, and later runs do not try it again — the schedule would otherwise retry
the same refusal every day, or send the customer a "due in 3 days" reminder when it is due in one.
The accountant can still send that reminder by hand from the invoice.

**Catch-up.** A run covers one day: today in the organization's time zone, whatever the hour it
runs. Beat that was down at 09:00 fires the missed run once when it is back (Celery's crontab is
due when its last run is older than the latest slot), so a late run still sends the day's
reminders, and a second run that day sends nothing more. Days on which nothing ran at all are not
sent later on their own (a "3 days before" reminder sent a day late says the wrong thing); an
operator who wants them runs ``manage.py reminders_run --date YYYY-MM-DD`` for each day, which is
safe because of (1). The schedule row keeps the last day run, so such a gap shows.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from books.choices import DocumentKind, DocumentStatus
from books.models import Document, Organization
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from whatsapp.models import ReminderRule, ReminderSchedule, ReminderSent
from whatsapp.services.notifications import (
    IdempotencyConflict,
    NotificationRefused,
    notification_send,
    subject_for_document,
)

logger = logging.getLogger(__name__)

#: The task each organization's PeriodicTask runs, with ``args = [organization_id]``.
RUN_TASK = "whatsapp.tasks.reminders_run_task"
#: Statuses of an invoice that is never reminded (a paid one has nothing to pay; see also balance).
NOT_REMINDED = (DocumentStatus.DRAFT, DocumentStatus.VOID, DocumentStatus.PAID)


# --- Reads ----------------------------------------------------------------------------------------


def reminder_rule_list(*, organization: Organization) -> list[ReminderRule]:
    """The organization's rules in the order they go out: before the due date, on it, after it."""
    rules = ReminderRule.objects.filter(organization=organization).select_related("template")
    return sorted(rules, key=lambda rule: (rule.offset_days, rule.pk))


def reminder_rule_get(*, organization: Organization, pk: int) -> ReminderRule:
    """One rule of the organization (``ReminderRule.DoesNotExist`` for another organization's)."""
    return ReminderRule.objects.select_related("template").get(organization=organization, pk=pk)


def reminder_templates(*, organization: Organization) -> QuerySet[MessageTemplate]:
    """The templates a rule may use: the approved ones of Payment reminders, the default first."""
    return MessageTemplate.objects.filter(
        organization=organization, module=Module.PAYMENT_REMINDERS, status=TemplateStatus.APPROVED
    ).order_by("-is_default", "name", "language")


def reminder_schedule_get(*, organization: Organization) -> ReminderSchedule:
    """The organization's schedule; an unsaved one (off, 09:00) when it never set one."""
    schedule = ReminderSchedule.objects.filter(organization=organization).select_related("periodic_task").first()
    return schedule or ReminderSchedule(organization=organization)


def reminder_sent_list(*, organization: Organization, limit: int = 50) -> QuerySet[ReminderSent]:
    """The latest reminders the rules sent or skipped, newest first."""
    return (
        ReminderSent.objects.filter(organization=organization)
        .select_related("rule", "document", "document__contact")
        .order_by("-created_at", "-pk")[:limit]
    )


def reminder_candidates(*, rule: ReminderRule, today: datetime.date) -> QuerySet[Document]:
    """The invoices ``rule`` reminds on ``today``. Those it already dealt with are among them: the
    run finds their :class:`ReminderSent` and counts them as already sent."""
    return (
        Document.objects.filter(
            organization_id=rule.organization_id,
            kind=DocumentKind.INVOICE,
            due_date=today - datetime.timedelta(days=rule.offset_days),
            balance__gt=0,
            contact__whatsapp_enabled=True,
        )
        .exclude(status__in=NOT_REMINDED)
        .select_related("contact")
        .order_by("due_date", "pk")
    )


# --- Rules ----------------------------------------------------------------------------------------


def _rule_save(rule: ReminderRule) -> ReminderRule:
    if rule.when == ReminderRule.When.ON:
        rule.days = 0  # the form may send the days of another choice along
    rule.full_clean()  # the template's module and status, the days, one rule per day (ValidationError)
    rule.save()
    return rule


def reminder_rule_create(
    *,
    organization: Organization,
    name: str,
    days: int,
    when: str,
    enabled: bool = True,
    template: MessageTemplate | None = None,
) -> ReminderRule:
    """A new rule; ``ValidationError`` keyed by field when it can't be one."""
    rule = ReminderRule(organization=organization, name=name, days=days, when=when, enabled=enabled, template=template)
    return _rule_save(rule)


def reminder_rule_update(*, rule: ReminderRule, **fields: Any) -> ReminderRule:
    """Change ``name``, ``days``, ``when``, ``enabled`` or ``template``. The invoices the rule
    already reminded are not reminded again, whatever changes."""
    allowed = {"name", "days", "when", "enabled", "template"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"reminder_rule_update() got unexpected fields {sorted(unknown)}")
    for name, value in fields.items():
        setattr(rule, name, value)
    return _rule_save(rule)


def reminder_rule_delete(*, rule: ReminderRule) -> None:
    """Delete a rule and its record of what it sent (the messages themselves stay)."""
    rule.delete()


# --- The schedule and its PeriodicTask --------------------------------------------------------------


def periodic_task_name(organization: Organization) -> str:
    return f"whatsapp-payment-reminders-{organization.pk}"


def _crontab(*, send_at: datetime.time, time_zone: str) -> CrontabSchedule:
    """A daily crontab at ``send_at`` in ``time_zone``, shared by every schedule with that time."""
    spec = {
        "minute": str(send_at.minute),
        "hour": str(send_at.hour),
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": time_zone,
    }
    crontab = CrontabSchedule.objects.filter(**spec).order_by("pk").first()
    return crontab or CrontabSchedule.objects.create(**spec)


@transaction.atomic
def reminder_schedule_update(
    *, organization: Organization, enabled: bool, send_at: datetime.time | None = None
) -> ReminderSchedule:
    """Turn automatic reminders on or off and set their time of day; create, move, enable or
    disable the organization's PeriodicTask to match (beat reloads it on its own)."""
    ReminderSchedule.objects.get_or_create(organization=organization)
    schedule = ReminderSchedule.objects.select_for_update().get(organization=organization)
    schedule.enabled = enabled
    if send_at is not None:
        schedule.send_at = send_at.replace(second=0, microsecond=0, tzinfo=None)
    schedule.save(update_fields=["enabled", "send_at", "updated_at"])
    reminder_periodic_task_sync(schedule=schedule)
    return schedule


def reminder_periodic_task_sync(*, schedule: ReminderSchedule) -> PeriodicTask:
    """The schedule's PeriodicTask, created or brought in line with it: crontab at ``send_at`` in
    the organization's current time zone, enabled as the schedule is. Caller holds the schedule's
    row lock."""
    organization = schedule.organization
    task = schedule.periodic_task
    if task is None:
        name = periodic_task_name(organization)
        task = PeriodicTask.objects.filter(name=name).first() or PeriodicTask(name=name)
    task.task = RUN_TASK
    task.crontab = _crontab(send_at=schedule.send_at, time_zone=organization.time_zone)
    task.interval = task.solar = task.clocked = None
    task.args = json.dumps([organization.pk])
    task.kwargs = "{}"
    task.one_off = False
    task.enabled = schedule.enabled
    task.description = _("Payment reminders over WhatsApp for %(organization)s (Settings → WhatsApp → Reminders).") % {
        "organization": organization.name
    }
    task.save()
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])
    return task


# --- The run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedReminder:
    """An invoice a rule did not remind, and the refusal that stopped it."""

    rule_id: int
    rule: str
    document_id: int
    number: str
    code: str
    reason: str


@dataclass
class ReminderRunResult:
    """What one run did for one organization and one day."""

    today: datetime.date
    #: False when the organization's reminders are off: nothing was looked at.
    enabled: bool = True
    #: Invoices reminded by this run, and the messages queued for them (one per recipient).
    sent: int = 0
    messages: int = 0
    #: Invoices a rule had already dealt with (an earlier run, or another worker right now).
    already_sent: int = 0
    skipped: list[SkippedReminder] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "enabled": self.enabled,
            "sent": self.sent,
            "messages": self.messages,
            "already_sent": self.already_sent,
            "skipped": len(self.skipped),
        }


def reminders_run(*, organization: Organization, today: datetime.date | None = None) -> ReminderRunResult:
    """Send the payment reminders of every enabled rule that fall on ``today`` (default: today in
    the organization's time zone). Running it again for the same day sends nothing more."""
    today = today or organization.today()
    result = ReminderRunResult(today=today)
    schedule = ReminderSchedule.objects.filter(organization=organization).first()
    if schedule is None or not schedule.enabled:
        result.enabled = False
        return result
    rules = [rule for rule in reminder_rule_list(organization=organization) if rule.enabled]
    for rule in rules:
        # Read up front: each invoice is then written in its own transaction.
        for document in list(reminder_candidates(rule=rule, today=today)):
            document.organization = organization  # one instance for every subject of the run
            _remind(rule, document, today, result)
    ReminderSchedule.objects.filter(pk=schedule.pk).update(
        last_run_at=timezone.now(), last_run_on=today, last_run_counts=result.counts()
    )
    logger.info("Payment reminders for organization %s on %s: %s", organization.pk, today, result.counts())
    return result


def _remind(rule: ReminderRule, document: Document, today: datetime.date, result: ReminderRunResult) -> None:
    """Remind one invoice for one rule, in one transaction that starts by claiming it."""
    with transaction.atomic():
        # The claim. A concurrent run inserting the same pair waits here for this transaction,
        # then finds the row and counts it as already sent.
        marker, created = ReminderSent.objects.get_or_create(
            rule=rule, document=document, defaults={"organization_id": rule.organization_id, "run_on": today}
        )
        if not created:
            result.already_sent += 1
            return
        try:
            sent = notification_send(
                subject=subject_for_document(document=document, module=Module.PAYMENT_REMINDERS),
                template=rule.template,
                user=None,
                idempotency_key=f"reminder:{rule.pk}:{document.pk}",
            )
        except NotificationRefused as refusal:  # nothing was queued (notification_send's savepoint)
            _skip(marker, refusal.code, refusal.message, result)
            return
        except IdempotencyConflict as conflict:
            _skip(marker, "idempotency_conflict", str(conflict), result)
            return
        marker.message = sent.messages[0] if sent.messages else None
        marker.message_count = len(sent.messages)
        marker.save(update_fields=["message", "message_count"])
        if sent.replayed:  # the record was removed, the messages were not: they went out before
            result.already_sent += 1
        else:
            result.sent += 1
            result.messages += len(sent.messages)


def _skip(marker: ReminderSent, code: str, reason: str, result: ReminderRunResult) -> None:
    marker.outcome = ReminderSent.Outcome.SKIPPED
    marker.reason_code = code[:64]
    marker.reason = reason
    marker.save(update_fields=["outcome", "reason_code", "reason"])
    document = marker.document
    result.skipped.append(
        SkippedReminder(
            rule_id=marker.rule_id,
            rule=marker.rule.name,
            document_id=document.pk,
            number=document.number,
            code=code,
            reason=reason,
        )
    )


def reminder_organizations() -> QuerySet[Organization]:
    """Organizations whose reminders are on (what ``manage.py reminders_run`` runs by default)."""
    return Organization.objects.filter(whatsapp_reminder_schedule__enabled=True).order_by("pk")
