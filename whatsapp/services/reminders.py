"""Payment reminders by due date: the rules, the daily schedule, and the run that sends them.

An organization keeps reminder rules (N days before an invoice's due date, on it, N days after)
and one schedule: on or off, and the time of its day they go out (09:00 unless told otherwise).
:func:`reminder_schedule_update` keeps a django-celery-beat ``PeriodicTask`` in step with the
schedule — a daily crontab at that time *in the organization's time zone* that calls
``whatsapp.tasks.reminders_run_task`` with the organization's id — so Celery beat's database
scheduler runs it, and administrators can still pause or move it in Django admin. A change of the
organization's time zone moves it too (``books.services.organizations.organization_update`` calls
:func:`reminder_schedule_time_zone_sync` in its transaction), and each task has a crontab of its
own, so that moving one organization's in Django admin moves no other (see :func:`_crontab`).

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
invoice got no reminder. Later runs do not try it again — the schedule would otherwise retry the
same refusal every day, or send the customer a "due in 3 days" reminder when it is due in one —
except a refusal an administrator fixes for the whole organization (:data:`RETRIED_CODES`: IM
credits bought, WhatsApp or the module turned back on, a template approved, a number given to the
channel): a later day's run sends it then, for the rules on or after the due date ("overdue" is
still true a day late), while its day is within :data:`CATCH_UP_DAYS` and the invoice still owes,
as a caught-up day's (one reminder per invoice and run, the latest rule's). Never on the day it was
refused: a second run that day sends nothing more. The accountant can still send that reminder by
hand from the invoice.

**Catch-up.** A run covers today in the organization's time zone, whatever the hour it runs, and
the days beat missed since the schedule's last run (``ReminderSchedule.last_run_on``), at most
:data:`CATCH_UP_DAYS` back. Beat that was down at 09:00 fires the missed run once when it is back
(Celery's crontab is due when its last run is older than the latest slot); beat, or the machine,
down for whole days leaves days on which nothing ran, and the next run catches them up — but only
for the rules on or after the due date: "your invoice is due / overdue" is still true a day late,
"due in 3 days" is not, so a rule before the due date is never caught up. What a caught-up day
reminds is decided as of today (balance, status, WhatsApp), once per rule and invoice as ever
(1). An invoice several rules fall on in one run (days missed, or a missed day and today) gets
only the latest rule's reminder — one message a morning, the one that says the most — and the
others are kept as *skipped*, code ``superseded``, so the page says why. Nothing is caught up
on the first run ever, for a day before the schedule or the rule was last saved (reminders were
off then, or the rule said something else), nor by a run for a day before the last one (an
operator's ``--date``, which also leaves the last run day as it is). Older days, and the rules
before the due date, are the operator's: ``manage.py reminders_run --date YYYY-MM-DD`` runs one
day, safely because of (1).
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
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


def reminder_sent_list(
    *, organization: Organization, outcome: str = "", rule_id: int | None = None
) -> QuerySet[ReminderSent]:
    """The reminders the rules sent or skipped, newest first, with their rule, invoice and customer
    (one query for any slice of it); only those of ``outcome`` (``ReminderSent.Outcome``) or of
    the rule ``rule_id`` when given."""
    sent = ReminderSent.objects.filter(organization=organization)
    if outcome:
        sent = sent.filter(outcome=outcome)
    if rule_id is not None:
        sent = sent.filter(rule_id=rule_id)
    return sent.select_related("rule", "document", "document__contact").order_by("-created_at", "-pk")


def reminder_next_run_on(*, schedule: ReminderSchedule, today: datetime.date) -> datetime.date:
    """The day the next daily run covers: ``today``, or tomorrow once today's run is done."""
    if schedule.last_run_on is not None and schedule.last_run_on >= today:
        return today + datetime.timedelta(days=1)
    return today


def reminder_waiting_counts(*, organization: Organization, day: datetime.date) -> dict[str, int]:
    """How many skipped reminders the run for ``day`` sends once their refusal is fixed, by refusal
    code (:data:`RETRIED_CODES`), in one query: :func:`reminders_retryable` counted."""
    rows = (
        reminders_retryable(organization=organization, day=day)
        .values("reason_code")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return {row["reason_code"]: row["count"] for row in rows}


def reminders_retryable(*, organization: Organization, day: datetime.date) -> QuerySet[ReminderSent]:
    """The reminders the run for ``day`` tries again (see the module docstring): of the enabled rules
    on or after the due date, skipped before ``day`` for a refusal since fixable
    (:data:`RETRIED_CODES`), for a day within :data:`CATCH_UP_DAYS` of it, whose invoice still owes
    as :func:`reminder_candidates` asks."""
    start_of_day = datetime.datetime.combine(day, datetime.time.min, tzinfo=organization.tzinfo)
    return ReminderSent.objects.filter(
        organization=organization,
        rule__enabled=True,
        rule__when__in=(ReminderRule.When.ON, ReminderRule.When.AFTER),
        outcome=ReminderSent.Outcome.SKIPPED,
        reason_code__in=RETRIED_CODES,
        run_on__gte=day - datetime.timedelta(days=CATCH_UP_DAYS),
        created_at__lt=start_of_day,
        document__balance__gt=0,
        document__contact__whatsapp_enabled=True,
    ).exclude(document__status__in=NOT_REMINDED)


def reminder_candidates(
    *, rule: ReminderRule, today: datetime.date, since: datetime.date | None = None
) -> QuerySet[Document]:
    """The invoices ``rule`` reminds on ``today`` — or on any day from ``since`` to ``today``, the
    days a run catches up — as they are today. Those it already dealt with are among them: the
    run finds their :class:`ReminderSent` and counts them as already sent."""
    offset = datetime.timedelta(days=rule.offset_days)
    return (
        Document.objects.filter(
            organization_id=rule.organization_id,
            kind=DocumentKind.INVOICE,
            due_date__range=((since or today) - offset, today - offset),
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


def _crontab(task: PeriodicTask, *, send_at: datetime.time, time_zone: str) -> CrontabSchedule:
    """``task``'s own daily crontab at ``send_at`` in ``time_zone``, changed in place or created.

    Why not one row per time and zone, shared by every organization? A ``PeriodicTask`` points at
    a ``CrontabSchedule`` row, and Django admin edits that row in place — Periodic tasks →
    Crontabs, or the pencil beside the task's crontab — so an administrator who opens one
    organization's task and moves its crontab to 10:00 would move every organization that sends
    at 09:00 in that zone (the crontab's page lists the tasks using it, below the fields, easy to
    miss). So each organization's task has a row of its own, changed in place when the schedule
    or the zone changes: one row per organization, never more. A row that another task also
    points at — one shared before this, or one that beat's start-up sync of a static entry picked
    up (``CrontabSchedule.from_schedule`` takes the first row that matches) — is left to the
    others, and this task gets a new one.
    """
    spec = {
        "minute": str(send_at.minute),
        "hour": str(send_at.hour),
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": time_zone,
    }
    crontab = task.crontab if task.crontab_id is not None else None
    if crontab is not None and PeriodicTask.objects.filter(crontab=crontab).exclude(pk=task.pk).exists():
        crontab = None
    if crontab is None:
        return CrontabSchedule.objects.create(**spec)
    changed = [name for name, value in spec.items() if str(getattr(crontab, name)) != value]
    if changed:
        for name in changed:
            setattr(crontab, name, spec[name])
        crontab.save(update_fields=changed)  # beat reloads its schedule (django-celery-beat's signal)
    return crontab


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
    task.crontab = _crontab(task, send_at=schedule.send_at, time_zone=organization.time_zone)
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


@transaction.atomic
def reminder_schedule_time_zone_sync(*, organization: Organization) -> PeriodicTask | None:
    """Move the organization's PeriodicTask to its time zone as saved now; ``None`` when it has no
    schedule (nothing to move: saving one later creates the task in the zone of the day).

    ``organization_update`` has it called (``books.signals``) in the transaction that changes the
    zone, so the task never keeps firing at 09:00 of the old zone, and a change that rolls back
    moves nothing. The organization is read again under the schedule's row lock
    (``organization_update`` holds the organization's), so two changes at once leave the task in
    the zone committed last."""
    schedule = ReminderSchedule.objects.select_for_update().filter(organization=organization).first()
    if schedule is None:
        return None
    return reminder_periodic_task_sync(schedule=schedule)


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
    """What one run did for one organization: today, and the missed days it caught up."""

    today: datetime.date
    #: False when the organization's reminders are off: nothing was looked at.
    enabled: bool = True
    #: The first missed day the run caught up (rules on or after the due date); None: today only.
    caught_up_from: datetime.date | None = None
    #: Invoices reminded by this run, and the messages queued for them (one per recipient).
    sent: int = 0
    messages: int = 0
    #: Of ``sent``: reminders an earlier run skipped for a refusal since fixed (:data:`RETRIED_CODES`).
    retried: int = 0
    #: Invoices a rule had already dealt with (an earlier run, or another worker right now).
    already_sent: int = 0
    #: Refused, and superseded by a later rule of the same run (code ``superseded``).
    skipped: list[SkippedReminder] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "caught_up_from": self.caught_up_from.isoformat() if self.caught_up_from else None,
            "enabled": self.enabled,
            "sent": self.sent,
            "messages": self.messages,
            "retried": self.retried,
            "already_sent": self.already_sent,
            "skipped": len(self.skipped),
        }


#: How many days back a run catches up the days on which nothing ran (see the module docstring).
CATCH_UP_DAYS = 7
#: The reason code of a reminder not sent because a later rule reminded the invoice in the same run.
SUPERSEDED = "superseded"
#: Refusals an administrator fixes for the whole organization: a reminder skipped for one of them is
#: sent by a later day's run once fixed (see the module docstring); the others stay skipped.
RETRIED_CODES = frozenset(
    {
        "insufficient_credits",
        "integration_inactive",
        "module_disabled",
        "template_missing",
        "template_not_approved",
        "no_channel_number",
    }
)


@dataclass(frozen=True)
class _Due:
    """A rule falling on an invoice in this run, on ``day`` (today, or a missed day)."""

    rule: ReminderRule
    document: Document
    day: datetime.date
    #: The skipped reminder this one tries again (:data:`RETRIED_CODES`); None: a new one.
    retry: ReminderSent | None = None


def _saved_on(value: datetime.datetime, organization: Organization) -> datetime.date:
    return timezone.localdate(value, timezone=organization.tzinfo)


def _catch_up_from(
    schedule: ReminderSchedule, organization: Organization, today: datetime.date
) -> datetime.date | None:
    """The first missed day to catch up, or None: the day after the last run, at most
    :data:`CATCH_UP_DAYS` back, never before the schedule was last saved."""
    if schedule.last_run_on is None:  # the first run: nothing was missed, nothing ran yet
        return None
    first = max(
        schedule.last_run_on + datetime.timedelta(days=1),
        today - datetime.timedelta(days=CATCH_UP_DAYS),
        _saved_on(schedule.updated_at, organization),
    )
    return first if first < today else None


def reminders_run(*, organization: Organization, today: datetime.date | None = None) -> ReminderRunResult:
    """Send the payment reminders of every enabled rule that fall on ``today`` (default: today in
    the organization's time zone), and those of the rules on or after the due date that fell on
    the days missed since the last run. Running it again for the same day sends nothing more."""
    today = today or organization.today()
    result = ReminderRunResult(today=today)
    schedule = ReminderSchedule.objects.filter(organization=organization).first()
    if schedule is None or not schedule.enabled:
        result.enabled = False
        return result
    result.caught_up_from = _catch_up_from(schedule, organization, today)
    rules = [rule for rule in reminder_rule_list(organization=organization) if rule.enabled]
    # Read up front (each invoice is then written in its own transaction), grouped by invoice.
    due: dict[int, list[_Due]] = {}
    for rule in rules:
        first = today
        if result.caught_up_from is not None and rule.offset_days >= 0:
            # Not before the rule was last saved: it said something else then, or did not exist.
            first = min(max(result.caught_up_from, _saved_on(rule.updated_at, organization)), today)
        for document in reminder_candidates(rule=rule, today=today, since=first):
            document.organization = organization  # one instance for every subject of the run
            day = document.due_date + datetime.timedelta(days=rule.offset_days)
            due.setdefault(document.pk, []).append(_Due(rule=rule, document=document, day=day))
    for marker in _retryable(organization, rules, today):
        matches = due.setdefault(marker.document_id, [])
        if all(match.rule.pk != marker.rule_id for match in matches):
            marker.document.organization = organization
            matches.append(_Due(rule=marker.rule, document=marker.document, day=marker.run_on, retry=marker))
    for matches in due.values():
        # The latest rule is the one that says the most ("7 days overdue" over "due today").
        latest, *earlier = sorted(matches, key=lambda match: match.rule.offset_days, reverse=True)
        _remind(latest, result)
        for match in earlier:
            _supersede(match, latest.rule, result)
    # A run for a day before the last one (``--date``) leaves the last run day as it is: moving it
    # back would make the next run catch up days that already ran.
    ReminderSchedule.objects.filter(Q(last_run_on__isnull=True) | Q(last_run_on__lte=today), pk=schedule.pk).update(
        last_run_at=timezone.now(), last_run_on=today, last_run_counts=result.counts()
    )
    logger.info("Payment reminders for organization %s on %s: %s", organization.pk, today, result.counts())
    return result


def _retryable(organization: Organization, rules: list[ReminderRule], today: datetime.date) -> list[ReminderSent]:
    """:func:`reminders_retryable` for today's run, with what sending them reads."""
    if not any(rule.offset_days >= 0 for rule in rules):
        return []
    return list(
        reminders_retryable(organization=organization, day=today)
        .select_related("rule", "document", "document__contact")
        .order_by("document_id", "pk")
    )


def _claim(match: _Due, result: ReminderRunResult) -> ReminderSent | None:
    """The (rule, invoice) row this run may send for, or None when another run dealt with it.

    New: inserted (unique: a concurrent run inserting the same pair waits for this transaction,
    then finds the row). A retry: the skipped row locked, if it is still skipped for a refusal
    that is retried (a concurrent run waits, then finds it sent)."""
    if match.retry is None:
        marker, created = ReminderSent.objects.get_or_create(
            rule=match.rule,
            document=match.document,
            defaults={"organization_id": match.rule.organization_id, "run_on": match.day},
        )
    else:
        marker = (
            ReminderSent.objects.select_for_update()
            .filter(pk=match.retry.pk, outcome=ReminderSent.Outcome.SKIPPED, reason_code__in=RETRIED_CODES)
            .first()
        )
        created = marker is not None
    if not created:
        result.already_sent += 1
        return None
    return marker


def _remind(match: _Due, result: ReminderRunResult) -> None:
    """Remind one invoice for one rule, in one transaction that starts by claiming it."""
    rule, document = match.rule, match.document
    with transaction.atomic():
        marker = _claim(match, result)
        if marker is None:
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
        marker.outcome, marker.reason_code, marker.reason = ReminderSent.Outcome.SENT, "", ""
        marker.save(update_fields=["message", "message_count", "outcome", "reason_code", "reason"])
        if sent.replayed:  # the record was removed, the messages were not: they went out before
            result.already_sent += 1
        else:
            result.sent += 1
            if match.retry is not None:
                result.retried += 1
            result.messages += len(sent.messages)


def _supersede(match: _Due, latest: ReminderRule, result: ReminderRunResult) -> None:
    """Record that ``match.rule`` will not remind the invoice: ``latest`` did in this run. Claimed
    like a reminder, so no later run sends it either."""
    with transaction.atomic():
        marker = _claim(match, result)
        if marker is None:
            return
        reason = _(
            "Not sent: the reminders missed while the schedule was down were caught up in one run, "
            "and the invoice got only the latest one, “%(rule)s”."
        ) % {"rule": latest.name}
        _skip(marker, SUPERSEDED, reason, result)


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
