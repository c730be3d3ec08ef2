"""The Cloud API sandbox driven by the real client over HTTP, as the hub will drive it.

Every Graph call goes through ``whatsapp.client.CloudAPI`` to the sandbox on ``live_server``;
webhooks go to a throwaway HTTP server on loopback (:class:`Hook`) that records each request,
so the tests check the exact bytes and the signature. Delivery runs in ``manual`` mode: nothing
is POSTed until the test calls ``delivery.flush()``, so every test is deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2  # the client's timeout is shortened for the timeout fault; raw calls check Meta's paging
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from whatsapp import client as client_module
from whatsapp.client import CloudAPI, CloudAPIError
from whatsapp.sandbox import delivery, selectors, services
from whatsapp.sandbox import graph as graph_module
from whatsapp.sandbox.management.commands.sandbox_setup import DEFAULT_TOKEN, DEFAULT_WABA_ID, number_specs
from whatsapp.sandbox.models import (
    SandboxBusinessAccount,
    SandboxMessage,
    SandboxPhoneNumber,
    SandboxTemplate,
    SandboxWebhookDelivery,
)

APP_SECRET = "sandbox-test-app-secret"
TOKEN = "EAASandboxTestToken0000000000000000000000"
WABA_ID = "102290129340398"
APP_ID = "209876543210123"
CUSTOMER = "919876543210"
PDF = b"%PDF-1.4\n% sandbox test invoice\n%%EOF\n"


# --- A webhook receiver on loopback -------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def value(self) -> dict[str, Any]:
        return self.json["entry"][0]["changes"][0]["value"]

    @property
    def field(self) -> str:
        return self.json["entry"][0]["changes"][0]["field"]


@dataclass
class Hook:
    """Records the webhooks it receives; answers with ``statuses`` in turn, then 200."""

    url: str = ""
    verify_token: str = "hub-verify-token"
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def statuses_of(self, wamid: str) -> list[dict[str, Any]]:
        return [
            status
            for item in self.received
            if item.field == "messages"
            for status in item.value.get("statuses", [])
            if status["id"] == wamid
        ]

    def of_field(self, name: str) -> list[Received]:
        return [item for item in self.received if item.field == name]


@pytest.fixture
def hook() -> Iterator[Hook]:
    recorder = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            recorder.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(recorder.statuses.pop(0) if recorder.statuses else 200)
            self.end_headers()

        def do_GET(self) -> None:  # Meta's subscription check
            query = parse_qs(urlsplit(self.path).query)
            ok = query.get("hub.verify_token") == [recorder.verify_token]
            self.send_response(200 if ok else 403)
            self.end_headers()
            if ok:
                self.wfile.write(query["hub.challenge"][0].encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/whatsapp/"
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def sandbox_on(hook: Hook) -> Iterator[None]:
    selectors.sandbox_settings_forget()
    with override_settings(
        WHATSAPP_SANDBOX_ENABLED=True,
        WHATSAPP_SANDBOX_DELIVERY="manual",
        WHATSAPP_SANDBOX_WEBHOOK_URL=hook.url,
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
def phone(account: SandboxBusinessAccount) -> SandboxPhoneNumber:
    return account.phone_numbers.filter(registered=True).order_by("phone_number_id").first()


@pytest.fixture
def unverified(account: SandboxBusinessAccount) -> SandboxPhoneNumber:
    return account.phone_numbers.get(code_verification_status="NOT_VERIFIED")


@pytest.fixture
def graph_url(live_server: Any) -> str:
    return live_server.url + "/sandbox/graph"


@pytest.fixture
def api(graph_url: str, account: SandboxBusinessAccount) -> Iterator[CloudAPI]:
    cloud = CloudAPI(TOKEN, base_url=graph_url, version="v25.0", transport=httpx2.HTTPTransport())
    yield cloud
    cloud.close()


def valid_signature(received: Received) -> bool:
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers.get("x-hub-signature-256", ""), expected)


def approved_template(api: CloudAPI, name: str = "invoice_notice", **extra: Any) -> str:
    payload = {
        "name": name,
        "language": "en",
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "Hi {{1}}, invoice {{2}} is ready.", "example": {"body_text": [["Ann", "INV-1"]]}},
            {"type": "FOOTER", "text": "Acme Books"},
        ],
        **extra,
    }
    created = api.create_template(WABA_ID, payload)
    delivery.flush()
    return created.id


def customer_writes(phone: SandboxPhoneNumber, text: str = "Hello") -> SandboxMessage:
    return services.inbound_message_create(phone=phone, wa_id=CUSTOMER, profile_name="Ravi", text=text)


# --- Messages -----------------------------------------------------------------------------------


def test_it_sends_a_text_inside_the_window_and_reports_sent_delivered_read_for_free(
    api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    customer_writes(phone)

    result = api.send_text(phone.phone_number_id, "+" + CUSTOMER, "Thanks!", biz_opaque_callback_data="msg-42")
    delivery.flush()

    assert result.wamid.startswith("wamid.")
    assert (result.wa_id, result.input, result.message_status) == (CUSTOMER, "+" + CUSTOMER, None)
    statuses = hook.statuses_of(result.wamid)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert all(s["biz_opaque_callback_data"] == "msg-42" and s["recipient_id"] == CUSTOMER for s in statuses)
    assert all(s["timestamp"].isdigit() for s in statuses)
    free = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    assert [s.get("pricing") for s in statuses] == [free, free, None]
    assert all(valid_signature(item) for item in hook.received)
    assert all(item.headers["content-type"] == "application/json" for item in hook.received)
    assert SandboxMessage.objects.get(wamid=result.wamid).status == "read"


def test_a_text_outside_the_window_is_accepted_then_fails_with_131047(
    api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    result = api.send_text(phone.phone_number_id, CUSTOMER, "Are you there?")
    delivery.flush()

    [failed] = hook.statuses_of(result.wamid)
    assert failed["status"] == "failed"
    assert failed["errors"][0]["code"] == 131047
    assert failed["errors"][0]["title"] == "Re-engagement message"
    assert "24 hours" in failed["errors"][0]["error_data"]["details"]
    assert "pricing" not in failed


def test_an_invalid_recipient_is_accepted_then_fails_with_131026(
    api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook, admin_client: Any
) -> None:
    approved_template(api)
    result = api.send_template(phone.phone_number_id, "12345", "invoice_notice", "en", _body("Ann", "INV-1"))
    odd = api.send_template(phone.phone_number_id, "not/a/number", "invoice_notice", "en", _body("Ann", "INV-1"))
    delivery.flush()

    assert [(s["status"], s["errors"][0]["code"]) for s in hook.statuses_of(result.wamid)] == [("failed", 131026)]
    assert [s["status"] for s in hook.statuses_of(odd.wamid)] == ["failed"]
    assert admin_client.get("/sandbox/").status_code == 200
    assert admin_client.get("/sandbox/phone/").status_code == 200


def _body(*values: str) -> list[dict[str, Any]]:
    return [{"type": "body", "parameters": [{"type": "text", "text": value} for value in values]}]


def test_it_sends_a_template_with_a_document_header_and_charges_its_category(
    api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    handle = api.resumable_upload(APP_ID, PDF, "sample.pdf", "application/pdf")
    api.create_template(
        WABA_ID,
        {
            "name": "invoice_with_pdf",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": [handle]}},
                {"type": "BODY", "text": "Dear {{1}}, your invoice is attached.", "example": {"body_text": [["A"]]}},
                {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Pay now"}]},
            ],
        },
    )
    delivery.flush()
    media_id = api.upload_media(phone.phone_number_id, PDF, "application/pdf", "INV-001.pdf")

    result = api.send_template(
        phone.phone_number_id,
        CUSTOMER,
        "invoice_with_pdf",
        "en_US",
        [
            {
                "type": "header",
                "parameters": [{"type": "document", "document": {"id": media_id, "filename": "INV-001.pdf"}}],
            },
            *_body("Ravi"),
        ],
        biz_opaque_callback_data="doc-7",
    )
    delivery.flush()

    assert result.message_status == "accepted"
    statuses = hook.statuses_of(result.wamid)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    charged = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}
    assert [s.get("pricing") for s in statuses] == [charged, charged, None]
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"doc-7"}
    message = SandboxMessage.objects.get(wamid=result.wamid)
    assert message.rendered["body"] == "Dear Ravi, your invoice is attached."
    assert message.rendered["header"]["filename"] == "INV-001.pdf"


def test_a_utility_template_inside_the_window_is_free(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    approved_template(api)
    customer_writes(phone)

    result = api.send_template(phone.phone_number_id, CUSTOMER, "invoice_notice", "en", _body("Ann", "INV-1"))
    delivery.flush()

    assert hook.statuses_of(result.wamid)[0]["pricing"]["type"] == "free_customer_service"


def test_it_sends_a_document_by_media_id(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    customer_writes(phone)
    media_id = api.upload_media(phone.phone_number_id, PDF, "application/pdf", "INV-9.pdf")

    result = api.send_media(phone.phone_number_id, CUSTOMER, "document", media_id=media_id, filename="INV-9.pdf")
    delivery.flush()

    assert [s["status"] for s in hook.statuses_of(result.wamid)] == ["sent", "delivered", "read"]
    assert SandboxMessage.objects.get(wamid=result.wamid).media.media_id == media_id


def test_an_unknown_or_unapproved_template_is_refused_with_132001(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    with pytest.raises(CloudAPIError) as unknown:
        api.send_template(phone.phone_number_id, CUSTOMER, "no_such_template", "en")
    api.create_template(
        WABA_ID, {"name": "still_pending", "language": "en", "category": "UTILITY", "components": [_plain_body()]}
    )
    with pytest.raises(CloudAPIError) as pending:
        api.send_template(phone.phone_number_id, CUSTOMER, "still_pending", "en")

    assert (unknown.value.code, unknown.value.http_status, unknown.value.retryable) == (132001, 400, False)
    assert unknown.value.details == "template name (no_such_template) does not exist in en"
    assert pending.value.code == 132001


def _plain_body(text: str = "Your statement is ready.") -> dict[str, Any]:
    return {"type": "BODY", "text": text}


def test_a_wrong_parameter_count_is_refused_with_132000(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    approved_template(api)

    with pytest.raises(CloudAPIError) as error:
        api.send_template(phone.phone_number_id, CUSTOMER, "invoice_notice", "en", _body("only one"))

    assert error.value.code == 132000
    assert "number of localizable_params (1)" in error.value.details
    assert "expected number of params (2)" in error.value.details


def test_a_header_of_the_wrong_type_is_refused_with_132012(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    handle = api.resumable_upload(APP_ID, PDF, "sample.pdf", "application/pdf")
    api.create_template(
        WABA_ID,
        {
            "name": "pdf_notice",
            "language": "en",
            "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": [handle]}},
                _plain_body(),
            ],
        },
    )
    delivery.flush()

    with pytest.raises(CloudAPIError) as missing:
        api.send_template(phone.phone_number_id, CUSTOMER, "pdf_notice", "en")
    image = [{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/a.png"}}]}]
    with pytest.raises(CloudAPIError) as wrong:
        api.send_template(phone.phone_number_id, CUSTOMER, "pdf_notice", "en", image)

    assert (missing.value.code, missing.value.details) == (
        132012,
        "header: Format mismatch, expected DOCUMENT, received UNKNOWN",
    )
    assert wrong.value.details == "header: Format mismatch, expected DOCUMENT, received IMAGE"


def test_named_parameters_must_carry_their_names(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    body = {
        "type": "BODY",
        "text": "Hi {{customer_name}}, you owe {{amount}}.",
        "example": {"body_text_named_params": [{"param_name": "customer_name", "example": "Ann"}]},
    }
    api.create_template(
        WABA_ID,
        {
            "name": "named_dues",
            "language": "en",
            "category": "UTILITY",
            "parameter_format": "NAMED",
            "components": [body],
        },
    )
    delivery.flush()
    named = [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "amount", "text": "₹1,200"},
                {"type": "text", "parameter_name": "customer_name", "text": "Ravi"},
            ],
        }
    ]

    with pytest.raises(CloudAPIError) as positional:
        api.send_template(phone.phone_number_id, CUSTOMER, "named_dues", "en", _body("Ravi", "₹1,200"))
    result = api.send_template(phone.phone_number_id, CUSTOMER, "named_dues", "en", named)

    assert positional.value.code == 132012
    assert SandboxMessage.objects.get(wamid=result.wamid).rendered["body"] == "Hi Ravi, you owe ₹1,200."


def test_mark_read_accepts_a_customer_message_only(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    inbound = customer_writes(phone)

    api.mark_read(phone.phone_number_id, inbound.wamid)
    with pytest.raises(CloudAPIError) as unknown:
        api.mark_read(phone.phone_number_id, "wamid.unknown")

    assert SandboxMessage.objects.get(pk=inbound.pk).status == "read"
    assert unknown.value.code == 100


# --- Auth and paths -----------------------------------------------------------------------------


def test_a_bad_token_is_refused_with_190(graph_url: str, phone: SandboxPhoneNumber) -> None:
    wrong = CloudAPI("EAAWrongToken000000000000000000000", base_url=graph_url, transport=httpx2.HTTPTransport())

    with pytest.raises(CloudAPIError) as error:
        wrong.send_text(phone.phone_number_id, CUSTOMER, "hi")

    assert (error.value.code, error.value.http_status, error.value.is_auth_error) == (190, 401, True)
    assert error.value.error_type == "OAuthException"


def test_a_missing_token_and_an_unknown_object_get_metas_errors(graph_url: str, phone: SandboxPhoneNumber) -> None:
    anonymous = httpx2.get(f"{graph_url}/v25.0/{phone.phone_number_id}")
    unknown = httpx2.get(f"{graph_url}/v25.0/999999999999999", headers={"Authorization": f"Bearer {TOKEN}"})
    no_version = httpx2.get(f"{graph_url}/{phone.phone_number_id}", headers={"Authorization": f"Bearer {TOKEN}"})

    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (400, 104)
    assert (unknown.status_code, unknown.json()["error"]["code"], unknown.json()["error"]["error_subcode"]) == (
        400,
        100,
        33,
    )
    assert "Unsupported get request" in unknown.json()["error"]["message"]
    assert no_version.json()["error"]["code"] == 2500


def test_another_accounts_number_does_not_exist_for_this_token(api: CloudAPI, transactional_db: None) -> None:
    other = services.business_account_setup(
        waba_id="555000000000001",
        app_id="555000000000002",
        access_token="EAAOtherToken0000000000000000000000",
        name="Other",
        verified_name="Other",
        numbers=number_specs("555000000000001"),
    )

    with pytest.raises(CloudAPIError) as error:
        api.get_phone_number(other.phone_numbers.first().phone_number_id)

    assert error.value.code == 100


def test_the_sandbox_is_404_when_disabled(client: Any, phone: SandboxPhoneNumber) -> None:
    with override_settings(WHATSAPP_SANDBOX_ENABLED=False):
        graph = client.get(f"/sandbox/graph/v25.0/{phone.phone_number_id}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        control = client.post("/sandbox/control/reset")

    assert (graph.status_code, control.status_code) == (404, 404)


def test_latency_delays_every_graph_request(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    services.sandbox_settings_update(latency_ms=150)

    started = time.monotonic()
    api.get_phone_number(phone.phone_number_id)

    assert time.monotonic() - started >= 0.15


def test_sends_waiting_out_the_latency_overlap(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    customer_writes(phone)
    services.sandbox_settings_update(latency_ms=500)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: api.send_text(phone.phone_number_id, CUSTOMER, f"#{n}"), range(6)))
    elapsed = time.monotonic() - started

    assert len({result.wamid for result in results}) == 6
    assert 0.5 <= elapsed < 2.0  # one after the other they would take at least 3 s


@pytest.mark.parametrize(("conn_max_age", "open_while_sleeping"), [(0, False), (60, True)])
def test_the_latency_is_slept_without_a_connection_django_would_close_anyway(
    client: Any,
    phone: SandboxPhoneNumber,
    monkeypatch: pytest.MonkeyPatch,
    conn_max_age: int,
    open_while_sleeping: bool,
) -> None:
    customer_writes(phone)
    services.sandbox_settings_update(latency_ms=20)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", conn_max_age)
    seen: list[bool] = []

    class RecordingTime:
        @staticmethod
        def sleep(seconds: float) -> None:
            seen.append(connection.connection is not None)

    monkeypatch.setattr(graph_module, "time", RecordingTime)
    response = client.post(
        f"/sandbox/graph/v25.0/{phone.phone_number_id}/messages",
        {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "hi"}},
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status_code == 200
    assert seen == [open_while_sleeping]


# --- Templates ----------------------------------------------------------------------------------


def test_template_list_paginates_with_cursors_across_pages(api: CloudAPI, graph_url: str) -> None:
    for index in range(30):
        api.create_template(
            WABA_ID,
            {"name": f"notice_{index:02d}", "language": "en", "category": "UTILITY", "components": [_plain_body()]},
        )

    listed = list(api.list_templates(WABA_ID, limit=10))
    first = httpx2.get(
        f"{graph_url}/v25.0/{WABA_ID}/message_templates",
        params={"limit": 10, "fields": "name,status"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()

    assert len({template.id for template in listed}) == 30
    assert {template.status for template in listed} == {"PENDING"}
    assert set(first["data"][0]) == {"id", "name", "status"}
    assert first["paging"]["next"].startswith(graph_url + "/v25.0/")
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    last = httpx2.get(
        first["paging"]["next"].replace("limit=10", "limit=25"), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert len(last.json()["data"]) == 20
    assert "next" not in last.json()["paging"]
    second = httpx2.get(first["paging"]["next"], headers={"Authorization": f"Bearer {TOKEN}"}).json()
    back = httpx2.get(
        f"{graph_url}/v25.0/{WABA_ID}/message_templates",
        params={"limit": 10, "before": second["paging"]["cursors"]["before"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert [t["id"] for t in back["data"]] == [t["id"] for t in first["data"]]


def test_a_template_is_approved_by_a_signed_webhook(api: CloudAPI, hook: Hook) -> None:
    created = api.create_template(
        WABA_ID, {"name": "statement_ready", "language": "en", "category": "UTILITY", "components": [_plain_body()]}
    )
    delivery.flush()

    [update] = hook.of_field("message_template_status_update")
    assert (created.status, created.category) == ("PENDING", "UTILITY")
    assert valid_signature(update)
    assert update.json["entry"][0]["id"] == WABA_ID
    assert update.value == {
        "event": "APPROVED",
        "message_template_id": int(created.id),
        "message_template_name": "statement_ready",
        "message_template_language": "en",
        "reason": "NONE",
        "message_template_category": "UTILITY",
    }
    assert api.get_template(created.id).status == "APPROVED"


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("reject_this", "Your statement is ready.", "INVALID_FORMAT"),
        ("big_sale", "REJECT_ME buy now, everything must go.", "PROMOTIONAL"),
    ],
)
def test_the_review_rule_rejects_templates(api: CloudAPI, hook: Hook, name: str, text: str, reason: str) -> None:
    created = api.create_template(
        WABA_ID, {"name": name, "language": "en", "category": "UTILITY", "components": [_plain_body(text)]}
    )
    delivery.flush()

    [update] = hook.of_field("message_template_status_update")
    assert update.value["event"] == "REJECTED"
    assert update.value["reason"] == reason
    assert update.value["rejection_info"]["reason"] == reason
    assert update.value["rejection_info"]["recommendation"]
    fetched = api.get_template(created.id)
    assert (fetched.status, fetched.rejected_reason) == ("REJECTED", reason)


def test_template_creation_checks_name_duplicates_and_variables(api: CloudAPI) -> None:
    approved_template(api)

    with pytest.raises(CloudAPIError) as duplicate:
        approved_template(api)
    with pytest.raises(CloudAPIError) as bad_name:
        api.create_template(
            WABA_ID, {"name": "Invoice Notice", "language": "en", "category": "UTILITY", "components": [_plain_body()]}
        )
    with pytest.raises(CloudAPIError) as edge_variable:
        api.create_template(
            WABA_ID,
            {
                "name": "edgy",
                "language": "en",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "{{1}} owes you", "example": {"body_text": [["A"]]}}],
            },
        )

    assert (duplicate.value.code, duplicate.value.subcode) == (100, 2388024)
    assert duplicate.value.title == "Content in this language already exists"
    assert bad_name.value.code == 100
    assert edge_variable.value.subcode == 2388299


def test_edit_sends_a_template_back_to_review_and_delete_removes_it(api: CloudAPI, hook: Hook) -> None:
    template_id = approved_template(api)

    api.edit_template(template_id, {"components": [_plain_body("Your updated statement is ready.")]})
    pending = api.get_template(template_id).status
    delivery.flush()
    approved_again = api.get_template(template_id)
    api.delete_template(WABA_ID, "invoice_notice", hsm_id=template_id)

    assert (pending, approved_again.status) == ("PENDING", "APPROVED")
    assert approved_again.components[0]["text"] == "Your updated statement is ready."
    assert [update.value["event"] for update in hook.of_field("message_template_status_update")] == [
        "APPROVED",
        "APPROVED",
    ]
    assert list(api.list_templates(WABA_ID)) == []
    assert SandboxTemplate.objects.get(template_id=template_id).status == "DELETED"
    with pytest.raises(CloudAPIError) as recreate:
        approved_template(api)
    assert recreate.value.subcode == 2388023


def test_a_review_superseded_by_an_edit_is_not_announced(api: CloudAPI, hook: Hook) -> None:
    template_id = approved_template(api)
    api.edit_template(template_id, {"components": [_plain_body("First edit.")]})
    SandboxTemplate.objects.filter(template_id=template_id).update(status="REJECTED")
    api.edit_template(template_id, {"components": [_plain_body("Second edit.")]})

    delivery.flush()

    assert [u.value["event"] for u in hook.of_field("message_template_status_update")] == ["APPROVED", "APPROVED"]
    assert SandboxWebhookDelivery.objects.filter(state="skipped").count() == 1


# --- Faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "retryable"), [(130429, True), (131056, True), (131047, False), (131026, False)])
def test_a_sync_fault_fails_the_send_with_its_code_once(
    api: CloudAPI, phone: SandboxPhoneNumber, code: int, retryable: bool
) -> None:
    customer_writes(phone)
    services.fault_create(code=str(code), recipient=CUSTOMER, remaining=1)

    with pytest.raises(CloudAPIError) as error:
        api.send_text(phone.phone_number_id, CUSTOMER, "hi")
    again = api.send_text(phone.phone_number_id, CUSTOMER, "hi again")

    assert (error.value.code, error.value.http_status, error.value.retryable) == (code, 400, retryable)
    assert again.wamid


def test_an_async_fault_accepts_then_fails_by_webhook(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    customer_writes(phone)
    services.fault_create(code="131026", phone_number_id=phone.phone_number_id, mode="async")

    result = api.send_text(phone.phone_number_id, CUSTOMER, "hi")
    delivery.flush()

    [failed] = hook.statuses_of(result.wamid)
    assert (failed["status"], failed["errors"][0]["code"]) == ("failed", 131026)
    assert failed["errors"][0]["title"] == "Message undeliverable"


def test_a_fault_for_another_recipient_does_not_apply(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    customer_writes(phone)
    services.fault_create(code="130429", recipient="447700900123")

    assert api.send_text(phone.phone_number_id, CUSTOMER, "hi").wamid


def test_a_500_fault_answers_an_html_page(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    services.fault_create(code="500", remaining=1)

    with pytest.raises(CloudAPIError) as error:
        api.send_text(phone.phone_number_id, CUSTOMER, "hi")

    assert (error.value.code, error.value.http_status, error.value.retryable) == (None, 500, True)


def test_a_timeout_fault_answers_late_but_accepts_the_message(
    graph_url: str, phone: SandboxPhoneNumber, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_writes(phone)
    services.sandbox_settings_update(timeout_seconds=1.5)
    services.fault_create(code="timeout", remaining=1)
    monkeypatch.setattr(client_module, "TIMEOUT", httpx2.Timeout(5.0, read=0.5))
    impatient = CloudAPI(TOKEN, base_url=graph_url, transport=httpx2.HTTPTransport())

    with pytest.raises(CloudAPIError) as error:
        impatient.send_text(phone.phone_number_id, CUSTOMER, "did it go?")

    assert (error.value.retryable, error.value.ambiguous) == (True, True)
    deadline = time.monotonic() + 5
    while not SandboxMessage.objects.filter(direction="outbound").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    message = SandboxMessage.objects.get(direction="outbound")
    assert (message.status, message.rendered["body"]) == ("accepted", "did it go?")


def test_the_control_api_manages_faults_settings_and_messages(client: Any, phone: SandboxPhoneNumber) -> None:
    added = client.post(
        "/sandbox/control/faults",
        {"code": "131056", "recipient": "+" + CUSTOMER, "remaining": 2},
        content_type="application/json",
    )
    listed = client.get("/sandbox/control/faults").json()
    settings = client.post("/sandbox/control/settings", {"latency_ms": 100}, content_type="application/json").json()
    inbound = client.post(
        "/sandbox/control/inbound",
        {"phone_number_id": phone.phone_number_id, "from": CUSTOMER, "text": "hi"},
        content_type="application/json",
    )
    messages = client.get("/sandbox/control/messages", {"recipient": CUSTOMER}).json()
    bad = client.post("/sandbox/control/faults", {"code": "42"}, content_type="application/json")
    removed = client.delete(f"/sandbox/control/faults/{added.json()['id']}").json()
    reset = client.post("/sandbox/control/reset")

    assert added.status_code == 201
    assert listed["data"][0] | {"id": 0} == {
        "id": 0,
        "code": "131056",
        "mode": "sync",
        "phone_number_id": "",
        "recipient": CUSTOMER,
        "remaining": 2,
        "hits": 0,
    }
    assert settings["latency_ms"] == 100
    assert inbound.status_code == 201
    assert [m["wamid"] for m in messages["data"]] == [inbound.json()["id"]]
    assert bad.status_code == 400
    assert removed == {"deleted": 1}
    assert reset.json() == {"success": True}
    assert selectors.sandbox_settings_get(fresh=True).latency_ms == 0


# --- Webhook delivery ---------------------------------------------------------------------------


def test_a_refused_webhook_is_retried_and_recorded(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    hook.statuses = [500, 503]

    inbound = customer_writes(phone, "Retry me")
    delivery.flush()

    row = SandboxWebhookDelivery.objects.get(message=inbound)
    assert (row.state, row.attempts, row.last_status_code) == ("delivered", 3, 200)
    assert len(hook.received) == 3
    assert len({item.body for item in hook.received}) == 1


def test_background_delivery_sends_each_status_when_due(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    services.sandbox_settings_update(sent_delay=0.05, delivered_delay=0.2, read_delay=0.4)

    with override_settings(WHATSAPP_SANDBOX_DELIVERY="background"):
        customer_writes(phone)
        result = api.send_text(phone.phone_number_id, CUSTOMER, "Thanks!")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            len(hook.statuses_of(result.wamid)) < 3
            or SandboxWebhookDelivery.objects.exclude(state="delivered").exists()
        ):  # the sender records a POST's outcome just after the hook has it
            time.sleep(0.05)

    assert [s["status"] for s in hook.statuses_of(result.wamid)] == ["sent", "delivered", "read"]
    assert len(hook.received) == 4
    assert SandboxWebhookDelivery.objects.exclude(state="delivered").count() == 0


def _statuses_by_number(received: Received) -> dict[str, list[tuple[str, str]]]:
    return {
        change["value"]["metadata"]["phone_number_id"]: [(s["id"], s["status"]) for s in change["value"]["statuses"]]
        for change in received.json["entry"][0]["changes"]
    }


def test_batched_statuses_due_in_a_window_leave_as_one_signed_webhook(
    api: CloudAPI, account: SandboxBusinessAccount, hook: Hook
) -> None:
    approved_template(api)
    hook.received.clear()
    first, second = account.phone_numbers.filter(registered=True).order_by("phone_number_id")
    services.sandbox_settings_update(status_batch_ms=1000, sent_delay=0, delivered_delay=0, read_delay=30)
    sends = [
        api.send_template(first.phone_number_id, CUSTOMER, "invoice_notice", "en", _body("Ann", "INV-1")),
        api.send_template(first.phone_number_id, "447700900123", "invoice_notice", "en", _body("Bo", "INV-2")),
        api.send_template(second.phone_number_id, CUSTOMER, "invoice_notice", "en", _body("Cy", "INV-3")),
    ]

    delivered_now = delivery.deliver_due(now=timezone.now() + timedelta(seconds=2))
    [batch] = hook.received
    delivery.flush()
    [_, reads] = hook.received

    a, b, c = (result.wamid for result in sends)
    assert delivered_now == 6
    assert batch.json["entry"][0]["id"] == WABA_ID and valid_signature(batch)
    assert _statuses_by_number(batch) == {
        first.phone_number_id: [(a, "sent"), (a, "delivered"), (b, "sent"), (b, "delivered")],
        second.phone_number_id: [(c, "sent"), (c, "delivered")],
    }
    assert [change["value"]["metadata"]["display_phone_number"] for change in batch.json["entry"][0]["changes"]] == [
        first.digits,
        second.digits,
    ]
    assert _statuses_by_number(reads) == {
        first.phone_number_id: [(a, "read"), (b, "read")],
        second.phone_number_id: [(c, "read")],
    }
    rows = SandboxWebhookDelivery.objects.filter(kind="message_status").order_by("pk")
    assert list(rows.values_list("event", "message", "state", "attempts")) == [
        ("sent,delivered", None, "delivered", 1),  # one row per webhook, saved as it left
        ("read", None, "delivered", 1),
    ]
    assert set(SandboxMessage.objects.filter(direction="outbound").values_list("status", flat=True)) == {"read"}


def test_a_refused_batch_is_retried_as_one(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    customer_writes(phone)
    delivery.flush()
    hook.received.clear()
    services.sandbox_settings_update(status_batch_ms=200)
    first = api.send_text(phone.phone_number_id, CUSTOMER, "one")
    second = api.send_text(phone.phone_number_id, CUSTOMER, "two")
    hook.statuses = [503]

    delivery.flush()

    refused, retried = (_statuses_by_number(item)[phone.phone_number_id] for item in hook.received)
    every = [(m.wamid, status) for m in (first, second) for status in ("sent", "delivered", "read")]
    assert sorted(refused) == sorted(retried) == sorted(every)
    for wamid in (first.wamid, second.wamid):  # each message's statuses in order, in both
        assert (
            [s for w, s in refused if w == wamid]
            == [s for w, s in retried if w == wamid]
            == ["sent", "delivered", "read"]
        )
    [row] = SandboxWebhookDelivery.objects.filter(kind="message_status")
    assert (row.event, row.state, row.attempts, row.last_status_code) == ("sent,delivered,read", "delivered", 2, 200)


def test_background_delivery_batches_statuses_by_window(api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook) -> None:
    customer_writes(phone)
    delivery.flush()
    hook.received.clear()
    services.sandbox_settings_update(status_batch_ms=400, sent_delay=0.05, delivered_delay=0.1, read_delay=0.15)

    with override_settings(WHATSAPP_SANDBOX_DELIVERY="background"):
        results = [api.send_text(phone.phone_number_id, CUSTOMER, f"#{n}") for n in range(4)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            sum(len(hook.statuses_of(r.wamid)) for r in results) < 12
            or SandboxWebhookDelivery.objects.exclude(state="delivered").exists()
        ):
            time.sleep(0.05)

    assert [[s["status"] for s in hook.statuses_of(r.wamid)] for r in results] == [["sent", "delivered", "read"]] * 4
    assert len(hook.received) < 12  # four sends within a few windows: fewer webhooks than statuses
    assert SandboxWebhookDelivery.objects.exclude(state="delivered").count() == 0


def test_background_delivery_replaces_a_kept_alive_connection_the_receiver_dropped(
    api: CloudAPI, phone: SandboxPhoneNumber
) -> None:
    # A receiver that speaks HTTP/1.1 but closes every connection after its answer, without
    # saying so: the sender's next POST on the connection it kept finds it gone.
    received: list[bytes] = []
    connections: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/whatsapp/"
    services.sandbox_settings_update(sent_delay=0.05, delivered_delay=0.3, read_delay=0.6)
    try:
        with override_settings(WHATSAPP_SANDBOX_DELIVERY="background", WHATSAPP_SANDBOX_WEBHOOK_URL=url):
            customer_writes(phone)
            result = api.send_text(phone.phone_number_id, CUSTOMER, "Thanks!")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                len(received) < 4 or SandboxWebhookDelivery.objects.exclude(state="delivered").exists()
            ):
                time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()

    statuses = [
        status["status"]
        for body in received
        for status in json.loads(body)["entry"][0]["changes"][0]["value"].get("statuses", [])
        if status["id"] == result.wamid
    ]
    assert statuses == ["sent", "delivered", "read"]  # each once: the dropped connection cost no webhook
    assert len(received) == 4 and len(connections) >= 3
    assert set(SandboxWebhookDelivery.objects.values_list("state", "attempts")) == {("delivered", 1)}


def test_delivery_waits_until_due(phone: SandboxPhoneNumber, hook: Hook) -> None:
    services.sandbox_settings_update(template_review_delay=60)
    services.template_create(
        account=phone.account,
        data={"name": "later", "language": "en", "category": "UTILITY", "components": [_plain_body()]},
    )

    assert delivery.deliver_due() == 0
    assert hook.received == []


def test_no_webhooks_reach_an_unsubscribed_app_and_an_override_callback_is_verified(
    api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    account = phone.account
    services.account_unsubscribe(account=account)
    customer_writes(phone, "nobody listens")
    delivery.flush()
    skipped = hook.received[:]

    with pytest.raises(CloudAPIError) as wrong_token:
        api.subscribe_app(WABA_ID, override_callback_uri=hook.url + "override/", verify_token="nope")
    api.subscribe_app(WABA_ID, override_callback_uri=hook.url + "override/", verify_token=hook.verify_token)
    customer_writes(phone, "now they do")
    delivery.flush()

    assert skipped == []
    assert wrong_token.value.code == 2200
    assert [item.path for item in hook.received] == ["/webhooks/whatsapp/override/"]
    assert [app.override_callback_uri for app in api.list_subscribed_apps(WABA_ID)] == [hook.url + "override/"]


# --- Phone numbers and verification -------------------------------------------------------------


def test_phone_numbers_are_listed_with_metas_fields(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    numbers = api.list_phone_numbers(WABA_ID)
    info = api.get_phone_number(phone.phone_number_id)

    assert len(numbers) == 3
    assert sorted(n.code_verification_status for n in numbers) == ["NOT_VERIFIED", "VERIFIED", "VERIFIED"]
    assert info.display_phone_number.startswith("+91 22 ")
    assert (info.quality_rating, info.status, info.throughput_level, info.platform_type) == (
        "GREEN",
        "CONNECTED",
        "STANDARD",
        "CLOUD_API",
    )
    assert (info.name_status, info.messaging_limit_tier, info.can_send_message) == ("APPROVED", "TIER_2K", "AVAILABLE")


def test_a_throughput_upgrade_is_announced_and_reported(
    api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook, admin_client: Any
) -> None:
    change_url = f"/admin/whatsapp_sandbox/sandboxphonenumber/{phone.pk}/change/"
    page = admin_client.get(change_url)
    saved = admin_client.post(change_url, {"throughput_level": "HIGH", "messaging_limit_tier": "TIER_2K"})
    delivery.flush()
    again = admin_client.post(change_url, {"throughput_level": "HIGH", "messaging_limit_tier": "TIER_2K"})
    delivery.flush()

    assert (page.status_code, saved.status_code, again.status_code) == (200, 302, 302)
    assert api.get_phone_number(phone.phone_number_id).throughput_level == "HIGH"
    [upgrade] = hook.of_field("phone_number_quality_update")  # announced once, not on every save
    assert upgrade.value == {
        "display_phone_number": phone.digits,
        "event": "THROUGHPUT_UPGRADE",
        "current_limit": "TIER_2K",
        "max_daily_conversations_per_business": "TIER_2K",
    }
    assert isinstance(upgrade.json["entry"][0]["time"], int) and valid_signature(upgrade)
    with override_settings(WHATSAPP_SANDBOX_ENABLED=False):
        assert admin_client.get(change_url).status_code == 403


def test_otp_verification_shows_the_code_and_checks_it(
    api: CloudAPI, unverified: SandboxPhoneNumber, admin_client: Any
) -> None:
    with pytest.raises(CloudAPIError) as not_registered:
        api.send_text(unverified.phone_number_id, CUSTOMER, "hi")
    with pytest.raises(CloudAPIError) as too_early:
        api.register(unverified.phone_number_id, "123456")

    api.request_code(unverified.phone_number_id, "SMS", "en_US")
    code = SandboxPhoneNumber.objects.get(pk=unverified.pk).otp_code
    page = admin_client.get("/sandbox/").content.decode()
    with pytest.raises(CloudAPIError) as wrong:
        api.verify_code(unverified.phone_number_id, "000000" if code != "000000" else "111111")
    api.verify_code(unverified.phone_number_id, f"{code[:3]}-{code[3:]}")
    api.register(unverified.phone_number_id, "123456")

    assert not_registered.value.code == 133010
    assert too_early.value.code == 133006
    assert f"{code[:3]}-{code[3:]}" in page
    assert wrong.value.code == 136025
    info = api.get_phone_number(unverified.phone_number_id)
    assert (info.code_verification_status, info.status) == ("VERIFIED", "CONNECTED")


# --- Media --------------------------------------------------------------------------------------


def test_media_upload_get_download_and_delete(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    media_id = api.upload_media(phone.phone_number_id, PDF, "application/pdf", "INV-1.pdf")

    info = api.get_media(media_id, phone_number_id=phone.phone_number_id)
    content = api.download_media(info.url)
    api.delete_media(media_id)

    assert (info.mime_type, info.file_size, info.sha256) == (
        "application/pdf",
        len(PDF),
        hashlib.sha256(PDF).hexdigest(),
    )
    assert content == PDF
    with pytest.raises(CloudAPIError) as gone:
        api.get_media(media_id)
    assert gone.value.code == 100


def test_media_download_needs_the_owners_token(graph_url: str, api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    media_id = api.upload_media(phone.phone_number_id, PDF, "application/pdf", "INV-1.pdf")
    url = api.get_media(media_id).url

    assert httpx2.get(url).status_code == 400
    assert httpx2.get(url, headers={"Authorization": "Bearer EAAnope0000000000000000000"}).status_code == 401


def test_an_unsupported_media_type_is_refused(api: CloudAPI, phone: SandboxPhoneNumber) -> None:
    with pytest.raises(CloudAPIError) as error:
        api.upload_media(phone.phone_number_id, b"MZ...", "application/x-msdownload", "setup.exe")

    assert error.value.code == 100


def test_resumable_upload_returns_a_handle(api: CloudAPI) -> None:
    handle = api.resumable_upload(APP_ID, PDF, "sample.pdf", "application/pdf")

    assert handle.startswith("4::")


# --- Phone simulator ----------------------------------------------------------------------------


def test_a_reply_from_the_phone_arrives_as_a_signed_inbound_webhook(
    admin_client: Any, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    customer_writes(phone)
    delivery.flush()
    hook.received.clear()

    response = admin_client.post(
        f"/sandbox/phone/{CUSTOMER}/?number={phone.phone_number_id}", {"name": "Ravi K", "text": "Paid, thanks"}
    )
    delivery.flush()

    assert response.status_code == 302
    [inbound] = hook.received
    assert valid_signature(inbound)
    value = inbound.value
    assert value["metadata"] == {"display_phone_number": phone.digits, "phone_number_id": phone.phone_number_id}
    assert value["contacts"] == [{"profile": {"name": "Ravi K"}, "wa_id": CUSTOMER}]
    [message] = value["messages"]
    assert (message["from"], message["type"], message["text"]) == (CUSTOMER, "text", {"body": "Paid, thanks"})
    assert message["id"].startswith("wamid.") and message["timestamp"].isdigit()


def test_an_attachment_from_the_phone_can_be_fetched_by_the_hub(
    admin_client: Any, api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    customer_writes(phone)
    delivery.flush()
    hook.received.clear()
    upload = _upload("receipt.pdf", PDF, "application/pdf")

    admin_client.post(
        f"/sandbox/phone/{CUSTOMER}/?number={phone.phone_number_id}", {"text": "My receipt", "file": upload}
    )
    delivery.flush()

    [message] = hook.received[0].value["messages"]
    document = message["document"]
    assert message["type"] == "document"
    assert (document["filename"], document["mime_type"], document["caption"]) == (
        "receipt.pdf",
        "application/pdf",
        "My receipt",
    )
    assert api.download_media(api.get_media(document["id"]).url) == PDF


def _upload(name: str, content: bytes, mime_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=mime_type)


def test_the_thread_shows_the_template_as_the_customer_sees_it_and_escapes_text(
    admin_client: Any, api: CloudAPI, phone: SandboxPhoneNumber
) -> None:
    approved_template(api)
    api.send_template(phone.phone_number_id, CUSTOMER, "invoice_notice", "en", _body("<b>Ann</b>", "INV-1"))
    admin_client.post(
        f"/sandbox/phone/{CUSTOMER}/?number={phone.phone_number_id}", {"text": "<script>alert(1)</script>"}
    )
    delivery.flush()

    page = admin_client.get(f"/sandbox/phone/{CUSTOMER}/?number={phone.phone_number_id}").content.decode()
    listing = admin_client.get("/sandbox/phone/").content.decode()

    assert "Hi &lt;b&gt;Ann&lt;/b&gt;, invoice INV-1 is ready." in page
    assert "Acme Books" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "<script>alert(1)" not in listing
    assert "✓✓" in page


def test_a_quick_reply_tap_sends_a_button_message_in_reply(
    admin_client: Any, api: CloudAPI, phone: SandboxPhoneNumber, hook: Hook
) -> None:
    api.create_template(
        WABA_ID,
        {
            "name": "pay_reminder",
            "language": "en",
            "category": "UTILITY",
            "components": [
                _plain_body("Your invoice is due."),
                {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Pay now"}]},
            ],
        },
    )
    delivery.flush()
    sent = api.send_template(
        phone.phone_number_id,
        CUSTOMER,
        "pay_reminder",
        "en",
        [
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": "PAY"}],
            }
        ],
    )
    hook.received.clear()

    admin_client.post(f"/sandbox/phone/{CUSTOMER}/button/", {"wamid": sent.wamid, "index": "0"})
    delivery.flush()

    [message] = next(item for item in hook.received if "messages" in item.value).value["messages"]
    assert message["type"] == "button"
    assert message["button"] == {"payload": "PAY", "text": "Pay now"}
    assert message["context"] == {"from": phone.digits, "id": sent.wamid}


def test_the_pages_need_a_login(client: Any, transactional_db: None) -> None:
    assert client.get("/sandbox/").status_code == 302
    assert client.get("/sandbox/phone/").status_code == 302


def test_the_dashboard_lists_faults_and_saves_settings(admin_client: Any, phone: SandboxPhoneNumber) -> None:
    admin_client.post("/sandbox/faults/add/", {"code": "130429", "mode": "sync", "recipient": CUSTOMER})
    admin_client.post(
        "/sandbox/settings/",
        {
            "latency_ms": 100,
            "sent_delay": 0.1,
            "delivered_delay": 0.2,
            "read_delay": 0.3,
            "template_review_delay": 1,
            "timeout_seconds": 3,
        },
    )

    page = admin_client.get("/sandbox/").content.decode()

    assert "130429" in page and CUSTOMER in page
    assert selectors.sandbox_settings_get(fresh=True).latency_ms == 100
    assert "REJECT_ME" in page


# --- Set-up command -----------------------------------------------------------------------------


def test_sandbox_setup_is_idempotent(transactional_db: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("sandbox_setup")
    SandboxPhoneNumber.objects.filter(code_verification_status="NOT_VERIFIED").update(
        code_verification_status="VERIFIED"
    )
    call_command("sandbox_setup", "--json")

    output = capsys.readouterr().out
    values = json.loads(output.strip().splitlines()[-1])
    assert f"WHATSAPP_WABA_ID={DEFAULT_WABA_ID}" in output
    assert f"WHATSAPP_ACCESS_TOKEN={DEFAULT_TOKEN}" in output
    assert SandboxBusinessAccount.objects.count() == 1
    assert [n["display_phone_number"] for n in values["phone_numbers"]] == [
        "+91 22 4000 0001",
        "+91 22 4000 0002",
        "+91 22 4000 0003",
    ]
    assert {n["code_verification_status"] for n in values["phone_numbers"]} == {"VERIFIED"}
