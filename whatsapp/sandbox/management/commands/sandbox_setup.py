"""Create the sandbox's demo business account: ``manage.py sandbox_setup [--waba-id …] [--token …]``.

Idempotent: run it again and the account and numbers are reused (numbers keep the verification
state they reached). Prints the values the hub needs to connect, one ``KEY=value`` per line.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from whatsapp.sandbox.services import NumberSpec, business_account_setup, sample_template_ensure

DEFAULT_WABA_ID = "100000000000001"
DEFAULT_APP_ID = "200000000000001"
#: Not a secret: the demo token only opens the local sandbox, never Meta.
DEFAULT_TOKEN = "EAASandboxDemoAccessToken000000000000000000"  # noqa: S105


def number_specs(waba_id: str, count: int = 3, verified: int = 2) -> list[NumberSpec]:
    """Phone numbers for a WABA: fixed ones for the default WABA, derived ones for any other."""
    specs = []
    for index in range(1, count + 1):
        if waba_id == DEFAULT_WABA_ID:
            phone_number_id, digits = f"30000000000000{index}", f"2240000{index:03d}"
        else:
            seed = int(hashlib.sha256(f"{waba_id}:{index}".encode()).hexdigest(), 16)
            phone_number_id, digits = str(3 * 10**14 + seed % 10**14), f"22{seed % 10**8:08d}"
        display = f"+91 {digits[:2]} {digits[2:6]} {digits[6:]}"
        specs.append(
            NumberSpec(phone_number_id=phone_number_id, display_phone_number=display, verified=index <= verified)
        )
    return specs


class Command(BaseCommand):
    help = "Create (or reuse) a sandbox WhatsApp Business Account with 3 numbers (2 verified) and print its values."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--waba-id", default=DEFAULT_WABA_ID)
        parser.add_argument("--app-id", default=DEFAULT_APP_ID)
        parser.add_argument("--token", default=DEFAULT_TOKEN, help="The access token the hub will use.")
        parser.add_argument("--name", default="Demo Accounting (sandbox)")
        parser.add_argument("--verified-name", default="Demo Accounting")
        parser.add_argument("--json", action="store_true", help="Print the values as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        waba_id, app_id = options["waba_id"], options["app_id"]
        if not waba_id.isdigit() or not app_id.isdigit():
            raise CommandError("--waba-id and --app-id are numeric, like Meta's ids.")
        account = business_account_setup(
            waba_id=waba_id,
            app_id=app_id,
            access_token=options["token"],
            name=options["name"],
            verified_name=options["verified_name"],
            numbers=number_specs(waba_id),
        )
        # Meta creates "hello_world" (approved) in every new WABA; the hub's test message sends it.
        sample_template_ensure(account=account)
        numbers = list(account.phone_numbers.order_by("phone_number_id"))
        values = {
            "WHATSAPP_WABA_ID": account.waba_id,
            "WHATSAPP_APP_ID": account.app_id,
            "WHATSAPP_ACCESS_TOKEN": account.access_token,
            "phone_numbers": [
                {
                    "id": phone.phone_number_id,
                    "display_phone_number": phone.display_phone_number,
                    "code_verification_status": phone.code_verification_status,
                }
                for phone in numbers
            ],
        }
        if options["json"]:
            self.stdout.write(json.dumps(values))
            return
        for key in ("WHATSAPP_WABA_ID", "WHATSAPP_APP_ID", "WHATSAPP_ACCESS_TOKEN"):
            self.stdout.write(f"{key}={values[key]}")
        for index, phone in enumerate(numbers, start=1):
            self.stdout.write(
                f"WHATSAPP_PHONE_NUMBER_ID_{index}={phone.phone_number_id}  "
                f"# {phone.display_phone_number} {phone.code_verification_status}"
            )
