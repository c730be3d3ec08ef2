"""Send the payment reminders due on a day, now: ``manage.py reminders_run``.

For operators: what Celery beat runs every day for each organization (``reminders_run_task``),
run by hand — for every organization whose reminders are on, or one (``--organization``) — and
for a day beat missed (``--date``). A run catches up by itself the rules on or after the due date
of the last 7 days missed (see :mod:`whatsapp.services.reminders`); ``--date`` is for the rest —
the rules before the due date, older days. Safe to repeat: a (rule, invoice) reminded or skipped
once is never sent again, so a second run for the same day sends nothing.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from books.models import Organization
from whatsapp.services.reminders import reminder_organizations, reminders_run


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date takes YYYY-MM-DD, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Send the WhatsApp payment reminders that fall on today (in each organization's time zone) or on "
        "--date, for every organization with reminders on or for --organization. Repeating it sends nothing more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--organization", type=int, help="The organization's id (default: every one with reminders on)."
        )
        parser.add_argument("--date", type=_date, help="The day to run, YYYY-MM-DD (default: today there).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["organization"] is not None:
            organization = Organization.objects.filter(pk=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization with id {options['organization']}.")
            organizations = [organization]
        else:
            organizations = list(reminder_organizations())
        for organization in organizations:
            result = reminders_run(organization=organization, today=options["date"])
            if not result.enabled:
                self.stdout.write(f"{organization} (#{organization.pk}): reminders are off; nothing sent.")
                continue
            self.stdout.write(
                f"{organization} (#{organization.pk}) {result.today}: {result.sent} reminded "
                f"({result.messages} messages), {result.already_sent} already done, {len(result.skipped)} skipped."
                + (f" Caught up from {result.caught_up_from}." if result.caught_up_from else "")
            )
            for skipped in result.skipped:
                self.stdout.write(f"  skipped {skipped.number} ({skipped.rule}): [{skipped.code}] {skipped.reason}")
        if not organizations:
            self.stdout.write("No organization has payment reminders on.")
