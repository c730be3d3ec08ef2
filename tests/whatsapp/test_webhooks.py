"""``/webhooks/whatsapp/``: Meta-shaped payloads from ``fixtures/webhooks/``, signed as Meta signs them.

Each test posts a fixture through Django's test client (the real view, signature check and
storage) and runs the Celery drain it enqueues eagerly, then checks the rows an accountant will see.
The drain itself (batches, the drain key, concurrency, outages) is tested in ``test_webhook_drain``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from django.test import Client, override_settings

from books.choices import ContactType
from config.celery import app as celery_app
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate
from tests.books.factories import make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_message
from whatsapp import cloud
from whatsapp.choices import AccountStatus, Direction, MediaState, MessageStatus, MessageType
from whatsapp.client import CloudAPI
from whatsapp.models import Message, WebhookEvent, WhatsAppAccount
from whatsapp.services.messages import inbound_media_fetch
from whatsapp.services.webhooks import RetryLater, webhook_event_process
from whatsapp.signature import signature_compute

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "test-app-secret"
URL = "/webhooks/whatsapp/"
CUSTOMER_PHONE = "+919820012345"

pytestmark = pytest.mark.django_db


def fixture(name: str, **values: Any) -> dict[str, Any]:
    text = (FIXTURES / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace(f"__{key.upper()}__", str(value))
    return json.loads(text)


def body_of(payload: dict[str, Any]) -> bytes:
    """Serialised as Meta sends it: compact, non-ASCII escaped."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def post(client: Client, payload: dict[str, Any] | bytes, *, signature: str | None = "valid") -> Any:
    body = payload if isinstance(payload, bytes) else body_of(payload)
    headers = {}
    if signature == "valid":
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature_compute(body, SECRET)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(URL, data=body, content_type="application/json", **headers)


@pytest.fixture(autouse=True)
def eager_celery(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)
    settings.WHATSAPP_APP_SECRET = SECRET
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def organization():
    return make_organization()


@pytest.fixture
def account(organization) -> WhatsAppAccount:
    return make_account(organization)


@pytest.fixture
def ids(account: WhatsAppAccount) -> dict[str, str]:
    return {"waba_id": account.waba_id, "phone_number_id": account.default_phone_number.phone_number_id}


@pytest.fixture
def sent(account: WhatsAppAccount) -> Message:
    return make_message(account, status=MessageStatus.SENDING, phone=CUSTOMER_PHONE, wamid="wamid.OUT1")


def status_payload(name: str, ids: dict[str, str], message: Message) -> dict[str, Any]:
    return fixture(name, wamid=message.wamid or "wamid.OUT1", message_id=message.pk, **ids)


# --- The receiver: handshake, signature, storage ------------------------------------------------


def test_the_handshake_echoes_the_challenge_for_the_verify_token(client: Client, settings: Any) -> None:
    settings.WHATSAPP_VERIFY_TOKEN = "verify-me"
    ok = client.get(URL, {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"})
    wrong = client.get(URL, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.content) == (200, b"1158201444")
    assert wrong.status_code == 403 and b"1158201444" not in wrong.content


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_a_missing_or_forged_signature_is_refused_and_changes_nothing(
    client: Client, ids: dict[str, str], sent: Message, signature: str | None
) -> None:
    response = post(client, status_payload("status_read", ids, sent), signature=signature)
    sent.refresh_from_db()
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0
    assert (sent.status, sent.read_at) == (MessageStatus.SENDING, None)


def test_a_body_signed_with_another_secret_is_refused(client: Client, ids: dict[str, str], sent: Message) -> None:
    body = body_of(status_payload("status_read", ids, sent))
    response = post(client, body, signature=signature_compute(body, "someone-elses-secret"))
    assert response.status_code == 403 and WebhookEvent.objects.count() == 0


def test_without_an_app_secret_every_post_is_refused(
    client: Client, settings: Any, ids: dict[str, str], sent: Message
) -> None:
    settings.WHATSAPP_APP_SECRET = ""
    body = body_of(status_payload("status_read", ids, sent))
    assert post(client, body, signature=signature_compute(body, "")).status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_a_signed_event_is_stored_raw_once_and_applied(client: Client, ids: dict[str, str], sent: Message) -> None:
    body = body_of(status_payload("status_sent", ids, sent))
    first, again = post(client, body), post(client, body)
    event = WebhookEvent.objects.get()
    assert first.status_code == again.status_code == 200
    assert event.body.encode() == body and event.body_sha256 == hashlib.sha256(body).hexdigest()
    assert event.state == "processed" and event.attempts == 1
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT


def test_a_three_megabyte_body_is_accepted(client: Client, ids: dict[str, str], organization) -> None:
    payload = fixture("inbound_text", inbound_wamid="wamid.BIG", **ids)
    text = "x" * (3 * 1024 * 1024)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text
    response = post(client, payload)
    assert response.status_code == 200
    assert Message.objects.get(wamid="wamid.BIG").content == text


def test_a_body_that_is_not_json_is_kept_and_marked_failed(client: Client) -> None:
    assert post(client, b"{not json").status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == "failed" and "not JSON" in event.error


def test_an_event_for_a_waba_no_organization_connected_is_kept_as_processed(client: Client, sent: Message) -> None:
    payload = fixture("template_approved", waba_id="999999999999999")
    assert post(client, payload).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == "processed" and "no connected account for WABA 999999999999999" in event.error
    assert not MessageTemplate.objects.exists()


# --- Statuses ---------------------------------------------------------------------------------


def apply(name: str, ids: dict[str, str], message: Message) -> None:
    from whatsapp.services.webhooks import webhook_payload_apply

    webhook_payload_apply(payload=status_payload(name, ids, message))


def snapshot(message: Message) -> tuple:
    message.refresh_from_db()
    return (
        message.status,
        message.sent_at,
        message.delivered_at,
        message.read_at,
        message.failed_at,
        message.error_code,
        message.pricing_type,
        message.pricing_category,
        message.billable,
    )


def test_statuses_sent_delivered_read_stamp_each_step_and_keep_pricing(
    client: Client, ids: dict[str, str], sent: Message
) -> None:
    for name in ("status_sent", "status_delivered", "status_read"):
        assert post(client, status_payload(name, ids, sent)).status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.READ
    assert [step for step, _at in sent.status_history()] == ["queued", "sent", "delivered", "read"]
    assert sent.sent_at < sent.delivered_at < sent.read_at
    assert (sent.pricing_type, sent.pricing_category, sent.billable) == ("regular", "utility", True)


def test_any_order_and_any_duplicates_of_the_same_statuses_end_in_the_natural_state(
    account: WhatsAppAccount, ids: dict[str, str]
) -> None:
    names = ["status_sent", "status_delivered", "status_read"]
    natural = make_message(account, status=MessageStatus.SENDING, wamid="wamid.NATURAL")
    for name in names:
        apply(name, ids, natural)
    expected = snapshot(natural)
    for index, order in enumerate(itertools.permutations([*names, "status_read", "status_delivered"])):
        message = make_message(account, status=MessageStatus.SENDING, wamid=f"wamid.ORDER{index}")
        for name in order:
            apply(name, ids, message)
        assert snapshot(message) == expected, order


def test_read_before_delivered_implies_delivered_and_the_late_delivered_keeps_its_time(
    account: WhatsAppAccount, ids: dict[str, str], sent: Message
) -> None:
    apply("status_read", ids, sent)
    sent.refresh_from_db()
    assert (sent.status, sent.delivered_at, sent.sent_at) == (MessageStatus.READ, sent.read_at, sent.read_at)
    apply("status_delivered", ids, sent)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.READ and sent.delivered_at < sent.read_at


def test_failed_is_terminal_in_any_order_and_keeps_the_error_and_fix_hint(
    account: WhatsAppAccount, ids: dict[str, str]
) -> None:
    names = ["status_sent", "status_delivered", "status_failed"]
    outcomes = set()
    for index, order in enumerate(itertools.permutations(names)):
        message = make_message(account, status=MessageStatus.SENDING, wamid=f"wamid.FAIL{index}")
        for name in order:
            apply(name, ids, message)
        outcomes.add(snapshot(message))
        assert message.status == MessageStatus.FAILED
        assert (message.error_code, message.error_title) == (131026, "Message undeliverable")
        assert message.error_details == "Message Undeliverable."
        assert "WhatsApp" in message.fix_hint and message.fix_hint
    assert len(outcomes) == 1


def test_a_status_that_beats_the_send_response_is_matched_by_its_callback_data(
    account: WhatsAppAccount, ids: dict[str, str]
) -> None:
    message = make_message(account, status=MessageStatus.SENDING, wamid=None)
    webhook_payload = fixture("status_sent", wamid="wamid.FROMWEBHOOK", message_id=message.pk, **ids)
    from whatsapp.services.webhooks import webhook_payload_apply

    outcome = webhook_payload_apply(payload=webhook_payload)
    message.refresh_from_db()
    assert outcome.statuses == 1 and not outcome.unmatched
    assert (message.wamid, message.status) == ("wamid.FROMWEBHOOK", MessageStatus.SENT)


def test_callback_data_never_reaches_another_organizations_message(ids: dict[str, str]) -> None:
    other = make_account(make_organization(name="Other Books"))
    foreign = make_message(other, status=MessageStatus.SENDING, wamid=None)
    payload = fixture("status_sent", wamid="wamid.X", message_id=foreign.pk, **ids)
    from whatsapp.services.webhooks import webhook_payload_apply

    outcome = webhook_payload_apply(payload=payload)
    foreign.refresh_from_db()
    assert outcome.unmatched == ["wamid.X"] and foreign.status == MessageStatus.SENDING and foreign.wamid is None


def test_statuses_for_unknown_messages_are_retried_then_closed(client: Client, ids: dict[str, str]) -> None:
    payload = fixture("status_sent", wamid="wamid.NOT_OURS", message_id="", **ids)
    body = body_of(payload)
    from whatsapp.services.webhooks import webhook_event_store

    event_id = webhook_event_store(body=body)
    with pytest.raises(RetryLater) as retry:
        webhook_event_process(event_id=event_id)
    assert retry.value.countdown == 2
    assert WebhookEvent.objects.get(pk=event_id).state == "pending"
    outcome = webhook_event_process(event_id=event_id, final_attempt=True)
    event = WebhookEvent.objects.get(pk=event_id)
    assert outcome.unmatched == ["wamid.NOT_OURS"]
    assert event.state == "processed" and "wamid.NOT_OURS" in event.error
    assert webhook_event_process(event_id=event_id) is None  # processed once


# --- Inbound messages ---------------------------------------------------------------------------


def test_an_inbound_text_is_matched_to_the_contact_person_by_phone(
    client: Client, organization, ids: dict[str, str]
) -> None:
    customer = make_contact(organization, name="Ravi Traders", mobile="9820012345")
    assert post(client, fixture("inbound_text", inbound_wamid="wamid.IN1", **ids)).status_code == 200
    message = Message.objects.get(wamid="wamid.IN1")
    assert (message.direction, message.status, message.message_type) == ("inbound", "received", "text")
    assert message.contact == customer and message.contact_person == customer.persons.get()
    assert message.phone == CUSTOMER_PHONE and message.profile_name == "Ravi Kumar"
    assert message.content == "Hi, is <b>INV-000042</b> still open? I'll pay on Friday."
    assert message.received_at.timestamp() == 1763712100


def test_an_inbound_message_from_an_unknown_number_is_kept_with_its_profile_name(
    client: Client, ids: dict[str, str]
) -> None:
    post(client, fixture("inbound_text", inbound_wamid="wamid.IN2", **ids))
    message = Message.objects.get(wamid="wamid.IN2")
    assert message.contact is None and message.contact_person is None
    assert (message.phone, message.profile_name) == (CUSTOMER_PHONE, "Ravi Kumar")


def test_the_same_inbound_message_twice_is_recorded_once(client: Client, ids: dict[str, str]) -> None:
    payload = fixture("inbound_text", inbound_wamid="wamid.IN3", **ids)
    post(client, payload)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "1763712999"  # a new body
    post(client, payload)
    assert WebhookEvent.objects.count() == 2
    assert Message.objects.filter(wamid="wamid.IN3").count() == 1


@pytest.mark.parametrize(
    ("name", "kind", "content"),
    [
        ("inbound_image", MessageType.IMAGE, "Payment screenshot"),
        ("inbound_document", MessageType.DOCUMENT, "Remittance advice"),
        ("inbound_audio", MessageType.AUDIO, ""),
        ("inbound_video", MessageType.VIDEO, "Delivery"),
    ],
)
def test_inbound_media_is_recorded_pending_download(
    client: Client, ids: dict[str, str], name: str, kind: str, content: str
) -> None:
    payload = fixture(name, inbound_wamid="wamid.M", media_id="1475869816657111", sha256="ab" * 32, **ids)
    payload = json.loads(json.dumps(payload).replace("__MEDIA_URL__", "https://lookaside.fbsbx.com/x"))
    post(client, payload)
    message = Message.objects.get(wamid="wamid.M")
    assert (message.message_type, message.content, message.media_id) == (kind, content, "1475869816657111")
    assert message.media_state == MediaState.PENDING and message.media_mime_type


@pytest.mark.parametrize(
    ("name", "kind", "content"),
    [
        ("inbound_location", MessageType.LOCATION, "Acme Traders · Nariman Point, Mumbai · 19.076, 72.8777"),
        ("inbound_list_reply", MessageType.INTERACTIVE, "October statement"),
        ("inbound_reaction", MessageType.REACTION, "\U0001f44d"),
    ],
)
def test_other_inbound_kinds_are_readable(client: Client, ids: dict[str, str], name: str, kind: str, content: str):
    post(client, fixture(name, inbound_wamid="wamid.K", wamid="wamid.ANY", **ids))
    message = Message.objects.get(wamid="wamid.K")
    assert (message.message_type, message.content) == (kind, content)


@pytest.mark.parametrize(
    ("name", "kind", "content"),
    [
        ("inbound_button", MessageType.BUTTON, "Pay now"),
        ("inbound_interactive", MessageType.INTERACTIVE, "Confirm order"),
    ],
)
def test_a_reply_to_our_message_is_linked_to_its_document_and_contact(
    client: Client, organization, account: WhatsAppAccount, ids: dict[str, str], name: str, kind: str, content: str
) -> None:
    customer = make_contact(organization, name="Other number", contact_type=ContactType.CUSTOMER)
    invoice = make_document(organization, contact=customer)
    ours = make_message(
        account, wamid="wamid.OURS", document=invoice, contact=customer, contact_person=customer.persons.get()
    )
    post(client, fixture(name, inbound_wamid="wamid.REPLY", wamid=ours.wamid, **ids))
    reply = Message.objects.get(wamid="wamid.REPLY")
    assert (reply.message_type, reply.content, reply.reply_to_wamid) == (kind, content, "wamid.OURS")
    assert reply.document == invoice and reply.contact == customer


def test_an_unsupported_message_is_stored_with_meta_s_error(client: Client, ids: dict[str, str]) -> None:
    post(client, fixture("inbound_unsupported", inbound_wamid="wamid.U", **ids))
    message = Message.objects.get(wamid="wamid.U")
    assert (message.message_type, message.error_code, message.error_title) == (
        "unsupported",
        131051,
        "Message type unknown",
    )


class MediaServer:
    """Meta's media endpoints as httpx2's MockTransport: GET /{media-id} then GET the url."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path.endswith("/1475869816657111"):
            return httpx2.Response(
                200,
                json={
                    "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1475869816657111",
                    "mime_type": "application/pdf",
                    "sha256": hashlib.sha256(self.content).hexdigest(),
                    "file_size": len(self.content),
                    "id": "1475869816657111",
                },
            )
        if request.url.host == "lookaside.fbsbx.com":
            return httpx2.Response(200, content=self.content)
        return httpx2.Response(404, json={"error": {"message": "Unknown path", "code": 100}})


@pytest.mark.parametrize("tamper", [False, True])
def test_inbound_media_is_downloaded_with_the_token_and_checked_against_its_hash(
    client: Client, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch, tamper: bool
) -> None:
    pdf = b"%PDF-1.4\n% remittance\n%%EOF\n"
    server = MediaServer(pdf + (b"tampered" if tamper else b""))
    monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(server)))
    payload = fixture(
        "inbound_document",
        inbound_wamid="wamid.DOC",
        media_id="1475869816657111",
        sha256=hashlib.sha256(pdf).hexdigest(),
        **ids,
    )
    post(client, payload)
    message = inbound_media_fetch(message_id=Message.objects.get(wamid="wamid.DOC").pk)
    assert all(r.headers["authorization"].startswith("Bearer ") for r in server.requests)
    if tamper:
        assert message.media_state == MediaState.FAILED and not message.media_file
    else:
        assert message.media_state == MediaState.STORED
        assert message.media_file.read() == pdf
        folder = f"whatsapp/{message.organization_id}/{message.pk}/"
        assert message.media_file.name.startswith(folder) and "/" not in message.media_file.name[len(folder) :]


# --- Templates, numbers, account -----------------------------------------------------------------


def test_a_template_status_update_moves_the_template_and_an_older_one_does_not_move_it_back(
    client: Client, organization, account: WhatsAppAccount, ids: dict[str, str]
) -> None:
    approved = fixture("template_approved", **ids)
    post(client, approved)
    template = MessageTemplate.objects.get(organization=organization, name="invoice_notice")
    assert (template.status, template.meta_id, template.language) == (
        TemplateStatus.APPROVED,
        "594425479261596",
        "en",
    )
    older = json.loads(json.dumps(approved).replace("APPROVED", "PENDING"))
    older["entry"][0]["time"] -= 60
    post(client, older)
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED


def test_a_rejected_template_keeps_meta_s_reason_and_recommendation(client: Client, organization, ids) -> None:
    post(client, fixture("template_rejected", **ids))
    template = MessageTemplate.objects.get(organization=organization, name="spring_offer")
    assert (template.status, template.status_reason) == (TemplateStatus.REJECTED, "INCORRECT_CATEGORY")
    assert template.rejection_recommendation == "Submit the template as marketing: it promotes an offer."


def test_a_phone_number_quality_update_is_recorded_on_the_number(client: Client, account, ids) -> None:
    number = account.default_phone_number
    number.display_phone_number = "+91 22 4000 0001"
    number.save()
    post(client, fixture("phone_number_quality_update", **ids))
    number.refresh_from_db()
    assert (number.quality_event, number.messaging_limit_tier) == ("FLAGGED", "TIER_10K")
    assert number.quality_event_at.timestamp() == 1763712300


def test_a_throughput_upgrade_raises_the_number_s_pace_to_a_thousand_a_second(client: Client, account, ids) -> None:
    from whatsapp.services.pacing import effective_rate

    number = account.default_phone_number
    number.display_phone_number = "+91 22 4000 0001"
    number.save()
    assert (number.messages_per_second, effective_rate(number.messages_per_second)) == (80, 68.0)
    payload = fixture("phone_number_quality_update", **ids)
    payload["entry"][0]["changes"][0]["value"] = {"display_phone_number": "912240000001", "event": "THROUGHPUT_UPGRADE"}

    post(client, payload)

    number.refresh_from_db()
    assert (number.throughput_level, number.quality_event, number.messaging_limit_tier) == (
        "HIGH",
        "THROUGHPUT_UPGRADE",
        "TIER_1K",  # untouched: the event carries no limit
    )
    assert (number.messages_per_second, effective_rate(number.messages_per_second)) == (1000, 850.0)


def test_an_account_update_is_recorded_for_the_settings_page(client: Client, account, ids) -> None:
    post(client, fixture("account_update", **ids))
    account.refresh_from_db()
    assert account.meta_event == "ACCOUNT_RESTRICTION"
    assert account.meta_event_detail["restriction_info"][0]["restriction_type"] == "RESTRICTED_ADD_PHONE_NUMBER_ACTION"


def test_a_batched_payload_applies_every_entry_and_change(
    client: Client, organization, account: WhatsAppAccount, ids: dict[str, str]
) -> None:
    first = make_message(account, status=MessageStatus.SENT, wamid="wamid.B1")
    second = make_message(account, status=MessageStatus.SENT, wamid="wamid.B2")
    payload = fixture("batched", wamid="wamid.B1", wamid_2="wamid.B2", inbound_wamid="wamid.B3", **ids)
    assert post(client, payload).status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (MessageStatus.DELIVERED, MessageStatus.READ)
    assert Message.objects.get(wamid="wamid.B3").direction == Direction.INBOUND
    assert MessageTemplate.objects.get(organization=organization).status == TemplateStatus.APPROVED


def test_a_disconnected_account_s_waba_routes_nowhere(client: Client, organization, ids) -> None:
    WhatsAppAccount.objects.update(status=AccountStatus.DISCONNECTED)
    post(client, fixture("inbound_text", inbound_wamid="wamid.OLD", **ids))
    assert not Message.objects.filter(wamid="wamid.OLD").exists()


@override_settings(WHATSAPP_APP_SECRET=SECRET)
def test_the_webhook_needs_no_csrf_token_and_no_login(ids: dict[str, str], sent: Message) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, status_payload("status_sent", ids, sent)).status_code == 200
