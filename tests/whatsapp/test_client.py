"""The Cloud API client against httpx2's MockTransport: exact requests out, typed results and errors in.

No database and no network: every test builds a ``CloudAPI`` around a ``FakeGraph`` that records
the requests it receives and answers with Meta's response shapes.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import logging
import os
import pickle
import threading
from collections.abc import Callable
from typing import Any

import httpx2  # unit tests inject httpx2's MockTransport and build its Responses
import pytest
from django.test import override_settings

from whatsapp import client as client_module
from whatsapp.client import (
    CloudAPI,
    CloudAPIError,
    MediaInfo,
    PhoneNumberInfo,
    SendResult,
    SubscribedApp,
    TemplateInfo,
    is_retryable,
    shared_http_client,
)
from whatsapp.fix_hints import GENERIC_HINT, TEMPORARY_HINT, TRANSPORT_HINT, fix_hint

TOKEN = "EAAGm0PX4ZCpsBAtestTokenDoNotLeak0123456789"
BASE = "https://graph.example.test"
VERSION = "v25.0"
PHONE_ID = "106540352242922"
WABA_ID = "102290129340398"

Answer = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


class FakeGraph:
    """Records every request and answers with the canned responses, in order."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx2.Response):
            return answer
        return answer(request)

    @property
    def only(self) -> httpx2.Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def make_api(*answers: Answer, base_url: str = BASE) -> tuple[CloudAPI, FakeGraph]:
    graph = FakeGraph(*answers)
    return CloudAPI(TOKEN, base_url=base_url, version=VERSION, transport=httpx2.MockTransport(graph)), graph


def ok(payload: dict[str, Any] | None = None, status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, json={"success": True} if payload is None else payload)


def meta_error(code: int, *, status: int = 400, subcode: int | None = None, **extra: Any) -> httpx2.Response:
    error: dict[str, Any] = {
        "message": f"(#{code}) Something Meta says",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
        **extra,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx2.Response(status, json={"error": error})


def json_body(request: httpx2.Request) -> Any:
    return json.loads(request.content)


def query(request: httpx2.Request) -> dict[str, str]:
    return dict(request.url.params)


def multipart_fields(request: httpx2.Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """Parse a multipart body into name -> (filename, content type, bytes)."""
    head = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.message_from_bytes(head + request.content, policy=email.policy.HTTP)
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get("content-type"),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


SENT = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+919876543210", "wa_id": "919876543210"}],
    "messages": [{"id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUM=", "message_status": "accepted"}],
}


# --- Messages -------------------------------------------------------------------------------------


def test_it_sends_a_template_with_meta_body_and_bearer_token() -> None:
    api, graph = make_api(ok(SENT))
    components = [
        {
            "type": "header",
            "parameters": [{"type": "document", "document": {"id": "4490709327384033", "filename": "INV-001.pdf"}}],
        },
        {"type": "body", "parameters": [{"type": "text", "text": "Acme"}, {"type": "text", "text": "₹48,500.00"}]},
    ]

    result = api.send_template(
        PHONE_ID, "+919876543210", "invoice_notice", "en", components, biz_opaque_callback_data="msg:42"
    )

    request = graph.only
    assert request.method == "POST"
    assert request.url.host == "graph.example.test"
    assert request.url.path == f"/{VERSION}/{PHONE_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json_body(request) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+919876543210",
        "type": "template",
        "template": {"name": "invoice_notice", "language": {"code": "en"}, "components": components},
        "biz_opaque_callback_data": "msg:42",
    }
    assert result == SendResult(
        wamid="wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUM=",
        wa_id="919876543210",
        input="+919876543210",
        message_status="accepted",
    )


def test_it_sends_text_as_a_reply_inside_the_window() -> None:
    api, graph = make_api(ok(SENT))

    api.send_text(
        PHONE_ID,
        "919876543210",
        "Your receipt is attached.",
        preview_url=True,
        biz_opaque_callback_data="msg:7",
        context_message_id="wamid.IN",
    )

    assert graph.only.url.path == f"/{VERSION}/{PHONE_ID}/messages"
    assert json_body(graph.only) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919876543210",
        "type": "text",
        "text": {"body": "Your receipt is attached.", "preview_url": True},
        "context": {"message_id": "wamid.IN"},
        "biz_opaque_callback_data": "msg:7",
    }


def test_it_sends_a_document_by_media_id_with_its_filename() -> None:
    api, graph = make_api(ok(SENT))

    api.send_media(
        PHONE_ID,
        "919876543210",
        "document",
        media_id="1013859600285441",
        caption="Invoice INV-001",
        filename="INV-001.pdf",
        biz_opaque_callback_data="msg:9",
    )

    assert json_body(graph.only) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919876543210",
        "type": "document",
        "document": {"id": "1013859600285441", "caption": "Invoice INV-001", "filename": "INV-001.pdf"},
        "biz_opaque_callback_data": "msg:9",
    }


def test_it_sends_an_image_by_link() -> None:
    api, graph = make_api(ok(SENT))

    api.send_media(PHONE_ID, "919876543210", "image", link="https://files.example.test/logo.png")

    body = json_body(graph.only)
    assert body["type"] == "image"
    assert body["image"] == {"link": "https://files.example.test/logo.png"}
    assert "biz_opaque_callback_data" not in body


@pytest.mark.parametrize(
    "kwargs",
    [
        {"media_type": "document"},
        {"media_type": "document", "media_id": "1", "link": "https://x.test/a.pdf"},
        {"media_type": "image", "media_id": "1", "filename": "a.png"},
        {"media_type": "audio", "media_id": "1", "caption": "hi"},
        {"media_type": "location", "media_id": "1"},
    ],
)
def test_it_refuses_media_messages_meta_would_reject(kwargs: dict[str, Any]) -> None:
    api, graph = make_api()

    with pytest.raises(ValueError):
        api.send_media(PHONE_ID, "919876543210", **kwargs)

    assert graph.requests == []


def test_it_refuses_callback_data_longer_than_meta_allows() -> None:
    api, graph = make_api()

    with pytest.raises(ValueError, match="512"):
        api.send_text(PHONE_ID, "919876543210", "hi", biz_opaque_callback_data="x" * 513)

    assert graph.requests == []


def test_it_refuses_an_id_that_would_change_the_path() -> None:
    api, graph = make_api()

    with pytest.raises(ValueError):
        api.send_text("123/../456", "919876543210", "hi")
    with pytest.raises(ValueError):
        api.get_media("1?fields=x")

    assert graph.requests == []


def test_it_marks_a_message_as_read() -> None:
    api, graph = make_api(ok())

    api.mark_read(PHONE_ID, "wamid.IN")

    assert graph.only.method == "POST"
    assert graph.only.url.path == f"/{VERSION}/{PHONE_ID}/messages"
    assert json_body(graph.only) == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}


def test_it_raises_when_an_accepted_send_has_no_message_id() -> None:
    api, _ = make_api(ok({"messaging_product": "whatsapp", "messages": []}))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    assert caught.value.retryable is False
    assert caught.value.ambiguous is True


# --- Media ----------------------------------------------------------------------------------------


def test_it_uploads_media_as_multipart() -> None:
    api, graph = make_api(ok({"id": "1013859600285441"}))

    media_id = api.upload_media(PHONE_ID, b"%PDF-1.7\x00\xff", "application/pdf", "INV-001.pdf")

    request = graph.only
    assert media_id == "1013859600285441"
    assert request.method == "POST"
    assert request.url.path == f"/{VERSION}/{PHONE_ID}/media"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert multipart_fields(request) == {
        "messaging_product": (None, None, b"whatsapp"),
        "type": (None, None, b"application/pdf"),
        "file": ("INV-001.pdf", "application/pdf", b"%PDF-1.7\x00\xff"),
    }


def test_it_gets_media_info() -> None:
    payload = {
        "messaging_product": "whatsapp",
        "url": "https://lookaside.fbsbx.test/whatsapp_business/attachments/?mid=1&ext=2&hash=3",
        "mime_type": "application/pdf",
        "sha256": "73298ec14751f",
        "file_size": "61901",
        "id": "1013859600285441",
    }
    api, graph = make_api(ok(payload))

    info = api.get_media("1013859600285441", phone_number_id=PHONE_ID)

    assert graph.only.method == "GET"
    assert graph.only.url.path == f"/{VERSION}/1013859600285441"
    assert query(graph.only) == {"phone_number_id": PHONE_ID}
    assert info == MediaInfo(
        id="1013859600285441",
        url=payload["url"],
        mime_type="application/pdf",
        sha256="73298ec14751f",
        file_size=61901,
    )


def test_it_downloads_media_with_the_bearer_token() -> None:
    api, graph = make_api(httpx2.Response(200, content=b"%PDF-1.7 bytes", headers={"content-type": "application/pdf"}))
    url = "https://lookaside.fbsbx.test/whatsapp_business/attachments/?mid=1&ext=2&hash=3"

    content = api.download_media(url)

    assert content == b"%PDF-1.7 bytes"
    assert graph.only.method == "GET"
    assert str(graph.only.url) == url
    assert graph.only.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_pooled_client_reads_a_file_many_reads_long_whole_over_a_real_connection() -> None:
    """The shared client reads answers in pieces of HTTP_READ_BYTES; a media file dozens of
    pieces long still arrives whole and unchanged, over a real socket (no MockTransport)."""
    body = os.urandom(40 * client_module.HTTP_READ_BYTES + 123)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        api = CloudAPI(TOKEN, base_url=base, version=VERSION)  # the process's pooled client

        assert api.download_media(f"{base}/sandbox/media/1") == body
        assert api.download_media(f"{base}/sandbox/media/2") == body  # again, on the kept-alive connection
    finally:
        server.shutdown()
        server.server_close()


def test_it_downloads_over_plain_http_only_from_the_configured_host() -> None:
    api, graph = make_api(httpx2.Response(200, content=b"img"), base_url="http://127.0.0.1:8001")

    assert api.download_media("http://127.0.0.1:8001/sandbox/media/1") == b"img"
    with pytest.raises(ValueError):
        api.download_media("http://cdn.example.test/media/1")
    with pytest.raises(ValueError):
        api.download_media("file:///etc/passwd")

    assert len(graph.requests) == 1


def test_it_stops_a_download_larger_than_the_limit() -> None:
    api, _ = make_api(httpx2.Response(200, content=b"x" * 2048))

    with pytest.raises(CloudAPIError) as caught:
        api.download_media("https://lookaside.fbsbx.test/m", max_bytes=1024)

    assert caught.value.retryable is False


def test_it_turns_a_failed_download_into_a_cloud_api_error() -> None:
    api, _ = make_api(meta_error(190, status=401))

    with pytest.raises(CloudAPIError) as caught:
        api.download_media("https://lookaside.fbsbx.test/m")

    assert caught.value.code == 190
    assert caught.value.is_auth_error


def test_it_deletes_media() -> None:
    api, graph = make_api(ok())

    api.delete_media("1013859600285441")

    assert graph.only.method == "DELETE"
    assert graph.only.url.path == f"/{VERSION}/1013859600285441"
    assert query(graph.only) == {}


def test_it_uploads_a_template_sample_in_two_resumable_steps() -> None:
    upload_id = "upload:MTphdHRhY2htZW50OjZiZjQ4NmNh=?sig=ARZqkGCA_uQMxC8nHKI"
    api, graph = make_api(ok({"id": upload_id}), ok({"h": "4::aW1hZ2UvanBlZw==:ARb..."}))

    handle = api.resumable_upload("1234567890", b"%PDF-1.7 sample", "sample.pdf", "application/pdf")

    assert handle == "4::aW1hZ2UvanBlZw==:ARb..."
    start, transfer = graph.requests
    assert start.method == "POST"
    assert start.url.path == f"/{VERSION}/1234567890/uploads"
    assert query(start) == {"file_name": "sample.pdf", "file_length": "15", "file_type": "application/pdf"}
    assert start.headers["authorization"] == f"Bearer {TOKEN}"
    assert transfer.method == "POST"
    assert transfer.url.host == "graph.example.test"
    assert transfer.url.path == f"/{VERSION}/upload:MTphdHRhY2htZW50OjZiZjQ4NmNh="
    assert query(transfer) == {"sig": "ARZqkGCA_uQMxC8nHKI"}
    assert transfer.headers["authorization"] == f"OAuth {TOKEN}"
    assert transfer.headers["file_offset"] == "0"
    assert transfer.content == b"%PDF-1.7 sample"


def test_it_refuses_an_upload_session_id_that_is_not_one() -> None:
    api, graph = make_api(ok({"id": "https://elsewhere.test/steal"}))

    with pytest.raises(CloudAPIError):
        api.resumable_upload("1234567890", b"x", "a.png", "image/png")

    assert len(graph.requests) == 1


# --- Templates ------------------------------------------------------------------------------------


def test_it_creates_a_template() -> None:
    payload = {
        "name": "invoice_notice",
        "language": "en",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Hello {{1}}", "example": {"body_text": [["Acme"]]}}],
    }
    api, graph = make_api(ok({"id": "594425479261596", "status": "PENDING", "category": "UTILITY"}))

    template = api.create_template(WABA_ID, payload)

    assert graph.only.method == "POST"
    assert graph.only.url.path == f"/{VERSION}/{WABA_ID}/message_templates"
    assert json_body(graph.only) == payload
    assert (template.id, template.status, template.category) == ("594425479261596", "PENDING", "UTILITY")
    assert (template.name, template.language) == ("invoice_notice", "en")
    assert template.components == payload["components"]


def template_page(ids: list[int], next_url: str | None, after: str = "") -> httpx2.Response:
    paging: dict[str, Any] = {"cursors": {"before": "B", "after": after or f"after-{ids[-1]}"}}
    if next_url:
        paging["next"] = next_url
    data = [
        {
            "id": str(i),
            "name": f"t{i}",
            "language": "en",
            "status": "APPROVED",
            "category": "UTILITY",
            "quality_score": {"score": "GREEN", "date": 1700000000},
        }
        for i in ids
    ]
    return ok({"data": data, "paging": paging})


def test_it_lists_templates_across_pages_following_paging_next() -> None:
    page2 = f"{BASE}/{VERSION}/{WABA_ID}/message_templates?access_token={TOKEN}&fields=id%2Cname&limit=2&after=AAA"
    page3 = f"{BASE}/{VERSION}/{WABA_ID}/message_templates?access_token={TOKEN}&fields=id%2Cname&limit=2&after=BBB"
    api, graph = make_api(template_page([1, 2], page2), template_page([3, 4], page3), template_page([5], None))

    templates = list(api.list_templates(WABA_ID, limit=2, status="APPROVED"))

    assert [t.id for t in templates] == ["1", "2", "3", "4", "5"]
    assert templates[0] == TemplateInfo(
        id="1", name="t1", language="en", status="APPROVED", category="UTILITY", quality_score="GREEN"
    )
    first, second, third = graph.requests
    assert first.url.path == f"/{VERSION}/{WABA_ID}/message_templates"
    assert query(first) == {
        "fields": "id,name,status,category,language,components,parameter_format,quality_score,rejected_reason",
        "limit": "2",
        "status": "APPROVED",
    }
    assert query(second) == {"fields": "id,name", "limit": "2", "after": "AAA"}
    assert query(third) == {"fields": "id,name", "limit": "2", "after": "BBB"}
    for request in graph.requests:
        assert request.url.host == "graph.example.test"
        assert "access_token" not in query(request)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_it_lists_templates_lazily() -> None:
    api, graph = make_api(template_page([1], None))

    templates = api.list_templates(WABA_ID)

    assert graph.requests == []
    assert [t.id for t in templates] == ["1"]


def test_it_never_follows_paging_next_to_another_host() -> None:
    evil = f"https://evil.example.test/{VERSION}/{WABA_ID}/message_templates?after=XYZ"
    api, graph = make_api(template_page([1, 2], evil, after="CURSOR2"), template_page([3], None))

    templates = list(api.list_templates(WABA_ID, limit=2, name="invoice_notice"))

    assert [t.id for t in templates] == ["1", "2", "3"]
    assert [r.url.host for r in graph.requests] == ["graph.example.test", "graph.example.test"]
    second = graph.requests[1]
    assert second.url.path == f"/{VERSION}/{WABA_ID}/message_templates"
    assert query(second)["after"] == "CURSOR2"
    assert query(second)["name"] == "invoice_notice"
    assert query(second)["limit"] == "2"


def test_it_stops_when_a_server_repeats_the_same_next_page() -> None:
    again = f"{BASE}/{VERSION}/{WABA_ID}/message_templates?after=SAME"
    api, graph = make_api(template_page([1], again), template_page([2], again), template_page([3], again))

    assert [t.id for t in api.list_templates(WABA_ID)] == ["1", "2"]
    assert len(graph.requests) == 2


def test_it_gets_edits_and_deletes_a_template() -> None:
    api, graph = make_api(
        ok(
            {
                "id": "594425479261596",
                "name": "invoice_notice",
                "status": "REJECTED",
                "rejected_reason": "TAG_CONTENT_MISMATCH",
            }
        ),
        ok(),
        ok(),
    )

    template = api.get_template("594425479261596")
    api.edit_template("594425479261596", {"category": "UTILITY", "components": []})
    api.delete_template(WABA_ID, "invoice_notice", hsm_id="594425479261596")

    get, edit, delete = graph.requests
    assert template.rejected_reason == "TAG_CONTENT_MISMATCH"
    assert (get.method, get.url.path) == ("GET", f"/{VERSION}/594425479261596")
    assert "quality_score" in query(get)["fields"]
    assert (edit.method, edit.url.path) == ("POST", f"/{VERSION}/594425479261596")
    assert json_body(edit) == {"category": "UTILITY", "components": []}
    assert (delete.method, delete.url.path) == ("DELETE", f"/{VERSION}/{WABA_ID}/message_templates")
    assert query(delete) == {"name": "invoice_notice", "hsm_id": "594425479261596"}


def test_it_raises_when_meta_answers_success_false() -> None:
    api, _ = make_api(ok({"success": False}))

    with pytest.raises(CloudAPIError):
        api.edit_template("594425479261596", {"components": []})


# --- Phone numbers --------------------------------------------------------------------------------

PHONE = {
    "id": PHONE_ID,
    "display_phone_number": "+91 98765 43210",
    "verified_name": "Acme Accounting",
    "name_status": "APPROVED",
    "code_verification_status": "VERIFIED",
    "quality_rating": "GREEN",
    "status": "CONNECTED",
    "platform_type": "CLOUD_API",
    "throughput": {"level": "STANDARD"},
    "whatsapp_business_manager_messaging_limit": "TIER_2K",
    "health_status": {"can_send_message": "AVAILABLE", "entities": []},
}


def test_it_gets_a_phone_number_with_quality_throughput_and_limit() -> None:
    api, graph = make_api(ok(PHONE))

    number = api.get_phone_number(PHONE_ID)

    assert graph.only.method == "GET"
    assert graph.only.url.path == f"/{VERSION}/{PHONE_ID}"
    assert "whatsapp_business_manager_messaging_limit" in query(graph.only)["fields"].split(",")
    assert number == PhoneNumberInfo(
        id=PHONE_ID,
        display_phone_number="+91 98765 43210",
        verified_name="Acme Accounting",
        name_status="APPROVED",
        code_verification_status="VERIFIED",
        quality_rating="GREEN",
        status="CONNECTED",
        platform_type="CLOUD_API",
        throughput_level="STANDARD",
        messaging_limit_tier="TIER_2K",
        can_send_message="AVAILABLE",
    )


def test_it_lists_phone_numbers_of_a_waba() -> None:
    api, graph = make_api(ok({"data": [PHONE, {**PHONE, "id": "2", "messaging_limit_tier": "TIER_250"}]}))

    numbers = api.list_phone_numbers(WABA_ID)

    assert graph.only.url.path == f"/{VERSION}/{WABA_ID}/phone_numbers"
    assert [n.id for n in numbers] == [PHONE_ID, "2"]


def test_it_requests_and_verifies_a_code_stripping_the_hyphen() -> None:
    api, graph = make_api(ok(), ok(), ok())

    api.request_code(PHONE_ID, "VOICE", "es")
    api.verify_code(PHONE_ID, "123-456")
    api.verify_code(PHONE_ID, " 123 456 ")

    request, verify, verify_spaced = graph.requests
    assert (request.method, request.url.path) == ("POST", f"/{VERSION}/{PHONE_ID}/request_code")
    assert query(request) == {"code_method": "VOICE", "language": "es"}
    assert (verify.method, verify.url.path) == ("POST", f"/{VERSION}/{PHONE_ID}/verify_code")
    assert query(verify) == {"code": "123456"}
    assert query(verify_spaced) == {"code": "123456"}


def test_it_refuses_a_code_that_is_not_digits() -> None:
    api, graph = make_api()

    with pytest.raises(ValueError):
        api.verify_code(PHONE_ID, "12a-456")
    with pytest.raises(ValueError):
        api.request_code(PHONE_ID, "EMAIL")  # type: ignore[arg-type]

    assert graph.requests == []


def test_it_registers_and_deregisters_a_number() -> None:
    api, graph = make_api(ok(), ok())

    api.register(PHONE_ID, "123456")
    api.deregister(PHONE_ID)

    register, deregister = graph.requests
    assert (register.method, register.url.path) == ("POST", f"/{VERSION}/{PHONE_ID}/register")
    assert json_body(register) == {"messaging_product": "whatsapp", "pin": "123456"}
    assert (deregister.method, deregister.url.path) == ("POST", f"/{VERSION}/{PHONE_ID}/deregister")
    with pytest.raises(ValueError):
        api.register(PHONE_ID, "12345")


# --- Webhook subscription -------------------------------------------------------------------------


def test_it_subscribes_the_app_and_lists_subscriptions() -> None:
    apps = {
        "data": [
            {
                "whatsapp_business_api_data": {"link": "https://www.facebook.test/x", "name": "Hub", "id": "67890"},
                "override_callback_uri": "https://hub.example.test/webhooks/whatsapp/",
            }
        ]
    }
    api, graph = make_api(ok(), ok(), ok(apps))

    api.subscribe_app(WABA_ID)
    api.subscribe_app(WABA_ID, override_callback_uri="https://hub.example.test/webhooks/whatsapp/", verify_token="v")
    subscribed = api.list_subscribed_apps(WABA_ID)

    plain, override, listing = graph.requests
    assert (plain.method, plain.url.path, plain.content) == ("POST", f"/{VERSION}/{WABA_ID}/subscribed_apps", b"")
    assert json_body(override) == {
        "override_callback_uri": "https://hub.example.test/webhooks/whatsapp/",
        "verify_token": "v",
    }
    assert (listing.method, listing.url.path) == ("GET", f"/{VERSION}/{WABA_ID}/subscribed_apps")
    assert subscribed == [
        SubscribedApp(
            id="67890",
            name="Hub",
            link="https://www.facebook.test/x",
            override_callback_uri="https://hub.example.test/webhooks/whatsapp/",
        )
    ]


# --- Errors ---------------------------------------------------------------------------------------


def test_it_parses_a_real_meta_error_body() -> None:
    body = {
        "error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
            "error_subcode": 2494010,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed since the customer last "
                "replied to this number.",
            },
            "fbtrace_id": "A3oJtAt4e5bGVq9gZ1-ab1A",
        }
    }
    api, _ = make_api(httpx2.Response(400, json=body))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hello again")

    error = caught.value
    assert error.code == 131047
    assert error.subcode == 2494010
    assert error.title == "Re-engagement message"
    assert error.message == "(#131047) Re-engagement message"
    assert error.details.startswith("Message failed to send because more than 24 hours")
    assert error.fbtrace_id == "A3oJtAt4e5bGVq9gZ1-ab1A"
    assert error.http_status == 400
    assert error.error_type == "OAuthException"
    assert error.retryable is False
    assert error.ambiguous is False
    assert "approved template" in error.fix_hint
    assert "[131047/2494010] Re-engagement message" in str(error)
    assert "fbtrace_id=A3oJtAt4e5bGVq9gZ1-ab1A" in str(error)


def test_it_prefers_the_user_facing_title_of_template_errors() -> None:
    body = {
        "error": {
            "message": "Invalid parameter",
            "type": "OAuthException",
            "code": 100,
            "error_subcode": 2388299,
            "is_transient": False,
            "error_user_title": "Variables can't be at the start or end of the template",
            "error_user_msg": "Variables can't be at the start or end of the template.",
            "fbtrace_id": "AxyZ",
        }
    }
    api, _ = make_api(httpx2.Response(400, json=body))

    with pytest.raises(CloudAPIError) as caught:
        api.create_template(WABA_ID, {"name": "x", "language": "en", "category": "UTILITY", "components": []})

    error = caught.value
    assert (error.code, error.subcode) == (100, 2388299)
    assert error.title == "Variables can't be at the start or end of the template"
    assert error.details == "Variables can't be at the start or end of the template."
    assert "start or end with a variable" in error.fix_hint
    assert error.retryable is False


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        (130429, 400, True),
        (131056, 400, True),
        (131057, 400, True),
        (131000, 500, True),
        (131016, 503, True),
        (135000, 400, True),
        (4, 400, True),
        (80007, 400, True),
        (131026, 400, False),
        (131047, 400, False),
        (131048, 400, False),
        (131049, 400, False),
        (131050, 400, False),
        (131051, 400, False),
        (131052, 400, False),
        (131053, 400, False),
        (132000, 400, False),
        (132001, 404, False),
        (132012, 400, False),
        (132015, 400, False),
        (132999, 500, False),
        (190, 401, False),
        (100, 400, False),
        (131008, 400, False),
        (131009, 400, False),
        (130472, 400, False),
        (368, 403, False),
        (131031, 403, False),
        (999999, 400, False),  # an unknown 4xx
        (999999, 502, True),  # an unknown 5xx
    ],
)
def test_it_classifies_whether_a_retry_can_help(code: int, status: int, retryable: bool) -> None:
    api, _ = make_api(meta_error(code, status=status))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    assert caught.value.code == code
    assert caught.value.retryable is retryable
    assert caught.value.fix_hint


def test_it_classifies_async_webhook_errors_without_an_http_status() -> None:
    assert is_retryable(131056) is True
    assert is_retryable(131026) is False
    assert is_retryable(132777) is False
    assert is_retryable(555555) is False
    assert is_retryable(555555, transient=True) is True
    assert is_retryable(None, http_status=429) is True


def test_it_treats_a_5xx_html_page_as_a_retryable_error() -> None:
    api, _ = make_api(httpx2.Response(502, text="<html><body>Bad Gateway</body></html>"))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    error = caught.value
    assert error.code is None
    assert error.http_status == 502
    assert error.retryable is True
    assert "HTTP 502" in error.title
    assert "<html>" not in str(error)
    assert error.fix_hint == str(TEMPORARY_HINT)


def test_it_treats_a_4xx_html_page_as_permanent() -> None:
    api, _ = make_api(httpx2.Response(404, text="<html>Not Found</html>"))

    with pytest.raises(CloudAPIError) as caught:
        api.get_media("123")

    assert caught.value.retryable is False
    assert caught.value.http_status == 404


def test_it_turns_a_read_timeout_into_a_retryable_ambiguous_error() -> None:
    api, _ = make_api(httpx2.ReadTimeout("timed out"))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    error = caught.value
    assert error.retryable is True
    assert error.ambiguous is True  # Meta may have accepted the message before the answer got lost
    assert error.code is None
    assert error.title == "WhatsApp didn't answer in time"
    assert error.fix_hint == str(TRANSPORT_HINT)
    assert isinstance(error.__cause__, httpx2.ReadTimeout)


def test_it_knows_a_refused_connection_sent_nothing() -> None:
    api, _ = make_api(httpx2.ConnectError("connection refused"))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    assert caught.value.retryable is True
    assert caught.value.ambiguous is False
    assert caught.value.title == "Couldn't reach WhatsApp"


def test_it_raises_on_a_2xx_answer_that_is_not_json() -> None:
    api, _ = make_api(httpx2.Response(200, text="OK"))

    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    assert caught.value.ambiguous is True
    assert caught.value.retryable is False


def test_the_error_survives_pickling_for_celery() -> None:
    api, _ = make_api(meta_error(131056, subcode=2494100))
    with pytest.raises(CloudAPIError) as caught:
        api.send_text(PHONE_ID, "919876543210", "hi")

    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 -- our own object, round-tripped

    assert (copy.code, copy.subcode, copy.retryable, copy.fbtrace_id) == (131056, 2494100, True, "AbCdEfGhIjK")
    assert str(copy) == str(caught.value)


# --- Secrets stay secret --------------------------------------------------------------------------


def test_the_token_never_appears_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    page2 = f"{BASE}/{VERSION}/{WABA_ID}/message_templates?access_token={TOKEN}&after=AAA"
    echoed = {
        "error": {
            "message": f"Malformed access token {TOKEN}",
            "type": "OAuthException",
            "code": 190,
            "error_data": {"details": f"token {TOKEN} is invalid"},
            "fbtrace_id": "Zz",
        }
    }
    api, graph = make_api(
        ok(SENT),
        template_page([1], page2),
        template_page([2], None),
        httpx2.Response(401, json=echoed),
        httpx2.ReadTimeout("timed out"),
    )

    api.send_text(PHONE_ID, "919876543210", "Payment received, thank you")
    list(api.list_templates(WABA_ID))
    with pytest.raises(CloudAPIError) as auth_error:
        api.get_phone_number(PHONE_ID)
    with pytest.raises(CloudAPIError) as timeout:
        api.mark_read(PHONE_ID, "wamid.IN")

    assert caplog.records, "the client logs each call at DEBUG"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert "Payment received" not in record.getMessage()
        assert "919876543210" not in record.getMessage()
    for error in (auth_error.value, timeout.value):
        for text in (str(error), repr(error), error.message, error.details, error.title, *map(str, error.args)):
            assert TOKEN not in text
    assert "[redacted]" in auth_error.value.message
    assert TOKEN not in repr(api)
    assert TOKEN not in str(api)
    assert len(graph.requests) == 5


def test_it_refuses_a_token_a_header_cannot_carry_without_quoting_it() -> None:
    with pytest.raises(ValueError) as caught:
        CloudAPI("EAAbroken token\n", base_url=BASE, version=VERSION)

    assert "EAAbroken" not in str(caught.value)


# --- Configuration and the shared pool ------------------------------------------------------------


def test_it_reads_base_url_and_version_from_settings() -> None:
    graph = FakeGraph(ok(SENT))
    with override_settings(WHATSAPP_GRAPH_URL="http://127.0.0.1:8765/", WHATSAPP_GRAPH_VERSION="v99.0"):
        api = CloudAPI(TOKEN, transport=httpx2.MockTransport(graph))

    api.send_text(PHONE_ID, "919876543210", "hi")

    assert str(graph.only.url) == f"http://127.0.0.1:8765/v99.0/{PHONE_ID}/messages"


def test_accounts_share_one_pool_with_explicit_timeouts_and_limits() -> None:
    first = CloudAPI(TOKEN, base_url=BASE, version=VERSION)
    second = CloudAPI("EAAanotherTokenForAnotherAccount", base_url=BASE, version=VERSION)

    pool = shared_http_client()

    assert first._http is pool
    assert second._http is pool
    assert "authorization" not in pool.headers  # the token goes per request, never on the shared client
    assert pool.timeout == httpx2.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)


def test_a_forked_child_starts_its_own_pool() -> None:
    parent_pool = shared_http_client()

    pid = os.fork()
    if pid == 0:  # pragma: no cover -- runs in the child
        fresh = client_module._shared_client is None and shared_http_client() is not parent_pool
        os._exit(0 if fresh else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert shared_http_client() is parent_pool


# --- Fix hints ------------------------------------------------------------------------------------


def test_fix_hints_cover_the_codes_accountants_meet() -> None:
    assert "country code" in fix_hint(131026)
    assert "24 hours" in fix_hint(131047)
    assert "sync templates" in fix_hint(132001)
    assert "Settings → Integrations" in fix_hint(190)
    assert "retry automatically" in fix_hint(130429)
    assert "retry automatically" in fix_hint(131056)
    assert "paused" in fix_hint(132015)
    assert "disabled" in fix_hint(132016).lower()
    assert "payment method" in fix_hint(131042)
    assert "marketing" in fix_hint(131050)
    assert "file" in fix_hint(131053)
    assert "variables" in fix_hint(132000)
    assert "template" in fix_hint(132555)  # any other template-range code
    assert fix_hint(100, 2388293) != fix_hint(100)  # the subcode is more specific
    assert fix_hint(987654) == str(GENERIC_HINT)
    assert fix_hint(987654, retryable=True) == str(TEMPORARY_HINT)
