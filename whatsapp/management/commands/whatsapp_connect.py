"""Connect an organization to a WhatsApp Business Account: ``manage.py whatsapp_connect``.

For servers where nobody opens the settings page, and for ``make run``, which connects the demo
organization to the Cloud API sandbox (``--sandbox`` takes the sandbox's demo WABA, app and token
from ``sandbox_setup``). It calls the same service as the settings page and the REST API, so Meta
is asked first and nothing is saved when it refuses.

Idempotent: when the organization is already connected to that WABA, the numbers are synced from
Meta and nothing else changes. The token can come from ``WHATSAPP_ACCESS_TOKEN`` instead of
``--token`` (a command line is visible to every user of the machine); it is never printed.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from books.models import Organization
from whatsapp.choices import AccountStatus, Audience, Category
from whatsapp.models import WhatsAppAccount
from whatsapp.selectors.accounts import account_get_live, channel_number, phone_number_list
from whatsapp.services.accounts import account_connect, phone_numbers_sync

TOKEN_VARIABLE = "WHATSAPP_ACCESS_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


def _error_text(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)


class Command(BaseCommand):
    help = (
        "Connect an organization to a WhatsApp Business Account (or, when it is already connected to it, "
        "sync its numbers) and print the numbers, the default number and the channels."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="The organization's name, or its id.")
        parser.add_argument("--waba-id", help="The WhatsApp Business Account ID.")
        parser.add_argument("--app-id", help="The Meta app ID.")
        parser.add_argument("--token", help=f"The system user's access token (default: ${TOKEN_VARIABLE}).")
        parser.add_argument(
            "--sandbox",
            action="store_true",
            help="Use the Cloud API sandbox's demo account (see sandbox_setup) for anything not given.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self._organization(options["organization"])
        waba_id, app_id, token = options["waba_id"], options["app_id"], options["token"]
        token = token or os.environ.get(TOKEN_VARIABLE, "")
        if options["sandbox"]:
            if not settings.WHATSAPP_SANDBOX_ENABLED:
                raise CommandError("The Cloud API sandbox is disabled (WHATSAPP_SANDBOX_ENABLED is off).")
            from whatsapp.sandbox.management.commands.sandbox_setup import (
                DEFAULT_APP_ID,
                DEFAULT_TOKEN,
                DEFAULT_WABA_ID,
            )

            waba_id, app_id = waba_id or DEFAULT_WABA_ID, app_id or DEFAULT_APP_ID
            token = token or DEFAULT_TOKEN
        if not waba_id or not app_id:
            raise CommandError("Give --waba-id and --app-id (or --sandbox).")
        if not token:
            raise CommandError(f"Give --token, or set {TOKEN_VARIABLE} (or use --sandbox).")

        live = account_get_live(organization=organization)
        try:
            if (
                live is not None
                and live.waba_id == waba_id
                and live.status
                in (
                    AccountStatus.CONNECTED,
                    AccountStatus.INACTIVE,
                )
            ):
                phone_numbers_sync(account=live)
                live.refresh_from_db()
                account = live
                self.stdout.write(
                    f"{organization.name} is already connected to WhatsApp Business Account {waba_id} "
                    f"({account.get_status_display()}); numbers synced from Meta."
                )
            else:
                account = account_connect(organization=organization, waba_id=waba_id, app_id=app_id, access_token=token)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Connected {organization.name} to WhatsApp Business Account {waba_id} ({account.name or '-'})."
                    )
                )
        except ValidationError as exc:
            raise CommandError(_error_text(exc)) from None
        self._describe(account)

    def _organization(self, value: str) -> Organization:
        if value.isdigit():
            found = Organization.objects.filter(pk=int(value)).first()
            if found is not None:
                return found
        matches = list(Organization.objects.filter(name=value)[:2])
        if not matches:
            raise CommandError(f"No organization named {value!r}.")
        if len(matches) > 1:
            raise CommandError(f"Several organizations are named {value!r}: give the id instead.")
        return matches[0]

    def _describe(self, account: WhatsAppAccount) -> None:
        for number in phone_number_list(account=account):
            default = "  (default)" if number.pk == account.default_phone_number_id else ""
            self.stdout.write(
                f"  {number.display_phone_number}  {number.code_verification_status or '-'}  "
                f"{number.status or '-'}  id={number.pk}{default}"
            )
        for audience, category in (
            (Audience.CUSTOMER, Category.UTILITY),
            (Audience.CUSTOMER, Category.MARKETING),
            (Audience.VENDOR, Category.UTILITY),
        ):
            number = channel_number(account=account, audience=audience, category=category)
            self.stdout.write(
                f"  channel {audience.label} · {category.label}: {number.display_phone_number if number else 'none'}"
            )
