"""The template lifecycle against the Cloud API sandbox, over HTTP, as it runs against Meta.

The services talk to the sandbox on ``live_server`` through the real client. The sandbox reviews
each template and announces the verdict by a signed ``message_template_status_update`` webhook;
the hub's webhook receiver is another engineer's work, so the webhook goes to a loopback recorder
here and the tests read the outcome through :func:`templates_sync` (and, once, apply the
recorded webhook with ``template_status_apply`` as the processor will).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from django.test import override_settings

from books.models import Organization
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.rendering import template_components_render, template_preview_render
from templates_mgmt.services import (
    template_assign,
    template_delete,
    template_resubmit,
    template_status_apply,
    template_submit,
    template_update,
    templates_sync,
)
from tests.books.factories import make_organization
from tests.templates_mgmt.factories import make_invoice, make_template
from whatsapp.client import CloudAPI
from whatsapp.sandbox import delivery, selectors, services
from whatsapp.sandbox.management.commands.sandbox_setup import number_specs
from whatsapp.sandbox.models import SandboxBusinessAccount, SandboxMessage, SandboxTemplate

APP_SECRET = "templates-sandbox-app-secret"
TOKEN = "EAATemplatesSandboxToken000000000000000"
WABA_ID = "104200000000777"
APP_ID = "209876543210777"
CUSTOMER = "919876543210"


@pytest.fixture
def webhooks() -> Iterator[tuple[str, list[bytes], list[dict[str, str]]]]:
    """A loopback server that records each webhook body and its headers, and answers 200."""
    bodies: list[bytes] = []
    headers: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            headers.append({key.lower(): value for key, value in self.headers.items()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/whatsapp/", bodies, headers
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def sandbox_on(webhooks: tuple[str, list[bytes], list[dict[str, str]]]) -> Iterator[None]:
    selectors.sandbox_settings_forget()
    with override_settings(
        WHATSAPP_SANDBOX_ENABLED=True,
        WHATSAPP_SANDBOX_DELIVERY="manual",
        WHATSAPP_SANDBOX_WEBHOOK_URL=webhooks[0],
        WHATSAPP_APP_SECRET=APP_SECRET,
    ):
        yield
    selectors.sandbox_settings_forget()


@pytest.fixture
def account(transactional_db: None) -> SandboxBusinessAccount:
    return services.business_account_setup(
        waba_id=WABA_ID,
        app_id=APP_ID,
        access_token=TOKEN,
        name="Acme Books",
        verified_name="Acme Books",
        numbers=number_specs(WABA_ID),
    )


@pytest.fixture
def api(live_server: Any, account: SandboxBusinessAccount) -> Iterator[CloudAPI]:
    cloud = CloudAPI(TOKEN, base_url=live_server.url + "/sandbox/graph", transport=httpx2.HTTPTransport())
    yield cloud
    cloud.close()


@pytest.fixture
def organization(transactional_db: None) -> Organization:
    return make_organization(name="Acme Books")


def sync(organization: Organization, api: CloudAPI, **kwargs: Any) -> Any:
    return templates_sync(organization=organization, waba_id=WABA_ID, api=api, **kwargs)


def test_a_template_is_submitted_approved_and_sends_what_the_preview_shows(
    organization: Organization, api: CloudAPI, account: SandboxBusinessAccount, webhooks: Any
) -> None:
    template = make_template(organization, waba_id=WABA_ID)

    submitted = template_submit(template=template, api=api, app_id=APP_ID)

    assert (submitted.status, bool(submitted.meta_id)) == (TemplateStatus.PENDING, True)
    stored = SandboxTemplate.objects.get(template_id=submitted.meta_id)
    assert stored.parameter_format == "NAMED"
    assert stored.components[0]["example"]["header_handle"][0].startswith("4::")

    delivery.flush()
    _url, bodies, headers = webhooks
    [body] = bodies
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[0]["x-hub-signature-256"], expected)
    entry = json.loads(body)["entry"][0]
    value = entry["changes"][0]["value"]
    # What the webhook processor will do with it:
    approved = template_status_apply(
        organization=organization,
        waba_id=entry["id"],
        meta_id=str(value["message_template_id"]),
        name=value["message_template_name"],
        language=value["message_template_language"],
        event=value["event"],
        at=datetime.datetime.fromtimestamp(entry["time"], tz=datetime.UTC),
        reason=value["reason"],
        category=value["message_template_category"],
    )
    assert approved.pk == template.pk and approved.status == TemplateStatus.APPROVED
    sync(organization, api)  # agrees, and adds what only the list carries: the quality rating
    approved.refresh_from_db()
    assert (approved.status, approved.quality_score) == (TemplateStatus.APPROVED, "GREEN")

    # Usable: rendered for a real invoice, the sandbox (Meta's checks) accepts and delivers it.
    phone = account.phone_numbers.filter(registered=True).order_by("phone_number_id").first()
    invoice = make_invoice(organization)
    media_id = api.upload_media(phone.phone_number_id, b"%PDF-1.4\n%%EOF\n", "application/pdf", "INV-000001.pdf")
    components = template_components_render(template=approved, document=invoice, media_id=media_id)
    sent = api.send_template(phone.phone_number_id, CUSTOMER, approved.name, approved.language, components)

    rendered = SandboxMessage.objects.get(wamid=sent.wamid).rendered
    assert rendered["body"] == template_preview_render(template=approved, document=invoice)
    assert rendered["header"]["filename"] == "INV-000001.pdf"
    assert rendered["buttons"][0]["url"] == "https://books.example.com/i/INV-000001"


def test_a_rejected_template_shows_the_reason_and_is_resubmitted(organization: Organization, api: CloudAPI) -> None:
    template = make_template(
        organization,
        waba_id=WABA_ID,
        header_type="none",
        attachment_mode="",
        body="Dear {{customer_name}}, REJECT_ME invoice {{invoice_number}} is ready for you to view today.",
    )
    template_submit(template=template, api=api, app_id=APP_ID)
    delivery.flush()

    sync(organization, api)
    template.refresh_from_db()
    assert (template.status, template.status_reason) == (TemplateStatus.REJECTED, "PROMOTIONAL")

    template_update(template=template, body=template.body.replace("REJECT_ME ", ""))
    resubmitted = template_resubmit(template=template, api=api, app_id=APP_ID)
    assert (resubmitted.status, resubmitted.status_reason) == (TemplateStatus.PENDING, "")
    delivery.flush()
    sync(organization, api)
    template.refresh_from_db()

    assert template.status == TemplateStatus.APPROVED
    assert SandboxTemplate.objects.get(template_id=template.meta_id).components[0]["text"] == template.body


def test_sync_reads_every_page_records_meta_made_templates_and_marks_missing_ones_deleted(
    organization: Organization, api: CloudAPI
) -> None:
    for index in range(3):
        template_submit(
            template=make_template(organization, waba_id=WABA_ID, name=f"invoice_notice_{index}"),
            api=api,
            app_id=APP_ID,
        )
    # Made in WhatsApp Manager: positional parameters, unknown to the hub.
    made_there = api.create_template(
        WABA_ID,
        {
            "name": "legacy_reminder",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {
                    "type": "BODY",
                    "text": "Hello {{1}}, invoice {{2}} is still open. Please pay it this week.",
                    "example": {"body_text": [["Ravi", "INV-1"]]},
                },
                {"type": "FOOTER", "text": "Acme Books"},
            ],
        },
    )
    delivery.flush()

    result = sync(organization, api, limit=2)  # 4 templates: two pages

    assert (result.created, result.updated, result.deleted) == (1, 3, 0)
    assert set(MessageTemplate.objects.values_list("status", flat=True)) == {TemplateStatus.APPROVED}
    legacy = MessageTemplate.objects.get(name="legacy_reminder")
    assert (legacy.meta_id, legacy.language, legacy.parameter_format, legacy.module) == (
        made_there.id,
        "en_US",
        "POSITIONAL",
        "",
    )
    assert (legacy.body, legacy.footer) == (
        "Hello {{1}}, invoice {{2}} is still open. Please pay it this week.",
        "Acme Books",
    )
    legacy = template_assign(
        template=legacy,
        module="payment_reminders",
        field_mapping={"body": {"1": "customer_name", "2": "invoice_number"}},
    )
    assert template_components_render(template=legacy, document=make_invoice(organization))[0]["parameters"] == [
        {"type": "text", "text": "Ravi Traders"},
        {"type": "text", "text": "INV-000001"},
    ]

    api.delete_template(WABA_ID, "invoice_notice_1")  # deleted in WhatsApp Manager
    again = sync(organization, api, limit=2)

    assert (again.created, again.updated, again.deleted) == (0, 0, 1)
    assert MessageTemplate.objects.get(name="invoice_notice_1").status == TemplateStatus.DELETED


def test_delete_reaches_deleted(organization: Organization, api: CloudAPI) -> None:
    template = template_submit(template=make_template(organization, waba_id=WABA_ID), api=api, app_id=APP_ID)
    delivery.flush()

    deleted = template_delete(template=template, api=api)

    assert deleted.status == TemplateStatus.DELETED
    assert SandboxTemplate.objects.get(template_id=template.meta_id).status == "DELETED"
    assert list(api.list_templates(WABA_ID)) == []
    assert sync(organization, api).deleted == 0  # already known as deleted
