"""End to end on a live server: the hub's real client and real webhook receiver against the sandbox.

The hub sends through ``whatsapp.client`` over HTTP to the sandbox's Graph stand-in; the sandbox
calls ``/webhooks/whatsapp/`` over HTTP, signed with the app secret; the receiver stores and
applies each webhook (Celery runs eagerly here, inside the live server). Nothing is mocked:
only the sandbox's clock is flushed on demand (``delivery.flush()``) instead of waited for.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from books.services.organizations import membership_add
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate
from tests.books.factories import UserFactory, make_contact, make_organization
from tests.whatsapp.factories import make_sandbox_account
from whatsapp.choices import Direction, MessageStatus
from whatsapp.client import CloudAPI
from whatsapp.fix_hints import fix_hint
from whatsapp.models import Message, WebhookEvent, WhatsAppAccount
from whatsapp.sandbox import delivery
from whatsapp.sandbox import services as sandbox
from whatsapp.sandbox.models import SandboxBusinessAccount
from whatsapp.services.dispatch import message_template_queue, message_text_queue

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "EAAEndToEndToken00000000000000000000000000"
WABA_ID = "104455667788990"
APP_ID = "205566778899001"
CUSTOMER_WA_ID = "919820012345"
CUSTOMER = "+" + CUSTOMER_WA_ID


@pytest.fixture
def live(sandbox_live: str, celery_eager: None) -> str:
    return sandbox_live


@pytest.fixture
def account(live: str) -> WhatsAppAccount:
    """The business account at "Meta" (the sandbox) and the hub's side of it, with the same ids."""
    return make_sandbox_account(make_organization(), waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


@pytest.fixture
def meta_side(account: WhatsAppAccount) -> SandboxBusinessAccount:
    return SandboxBusinessAccount.objects.get(waba_id=WABA_ID)


@pytest.fixture
def customer(account: WhatsAppAccount) -> Any:
    return make_contact(account.organization, name="Ravi Traders", mobile="9820012345")


def approved_template(live: str, name: str = "invoice_notice") -> None:
    api = CloudAPI(TOKEN, transport=httpx2.HTTPTransport())
    api.create_template(
        WABA_ID,
        {
            "name": name,
            "language": "en",
            "category": "UTILITY",
            "components": [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, invoice {{2}} for {{3}} is ready.",
                    "example": {"body_text": [["Ravi", "INV-000001", "₹48,500.00"]]},
                }
            ],
        },
    )
    api.close()
    delivery.flush()


def invoice_components() -> list[dict[str, Any]]:
    values = ["Ravi", "INV-000042", "₹1,00,000.00"]
    return [{"type": "body", "parameters": [{"type": "text", "text": value} for value in values]}]


def test_a_customer_writes_and_the_hub_answers_with_a_text_that_reaches_read(
    live: str, meta_side: Any, account: WhatsAppAccount, customer: Any
) -> None:
    phone = meta_side.phone_numbers.get(phone_number_id=account.default_phone_number.phone_number_id)
    sandbox.inbound_message_create(phone=phone, wa_id=CUSTOMER_WA_ID, profile_name="Ravi", text="Is INV-42 open?")
    delivery.flush()
    inbound = Message.objects.get(direction=Direction.INBOUND)
    assert (inbound.content, inbound.contact, inbound.status) == ("Is INV-42 open?", customer, MessageStatus.RECEIVED)

    reply = message_text_queue(account=account, to=CUSTOMER, text="Yes, due on Friday.")
    reply.refresh_from_db()
    assert reply.status == MessageStatus.SENDING and reply.wamid.startswith("wamid.")
    delivery.flush()
    reply.refresh_from_db()
    assert reply.status == MessageStatus.READ
    assert reply.sent_at and reply.delivered_at and reply.read_at
    assert reply.pricing_category == "service" and reply.billable is False
    assert WebhookEvent.objects.filter(state="processed").count() == WebhookEvent.objects.count() >= 4


def test_a_template_is_approved_by_webhook_and_its_message_reaches_read_with_pricing(
    live: str, account: WhatsAppAccount, customer: Any
) -> None:
    approved_template(live)
    template = MessageTemplate.objects.get(organization=account.organization, name="invoice_notice")
    assert template.status == TemplateStatus.APPROVED

    message = message_template_queue(
        account=account,
        to=CUSTOMER,
        name="invoice_notice",
        language="en",
        components=invoice_components(),
        content="Hi Ravi, invoice INV-000042 for ₹1,00,000.00 is ready.",
        contact_person=customer.persons.get(),
    )
    delivery.flush()
    message.refresh_from_db()
    assert message.status == MessageStatus.READ
    assert (message.pricing_type, message.pricing_category, message.billable) == ("regular", "utility", True)
    assert [step for step, _at in message.status_history()] == ["queued", "sending", "sent", "delivered", "read"]


def test_an_undeliverable_number_injected_by_the_sandbox_ends_failed_with_the_fix_hint(
    live: str, account: WhatsAppAccount, customer: Any
) -> None:
    approved_template(live)
    sandbox.fault_create(code="131026", recipient=CUSTOMER_WA_ID, mode="async")
    message = message_template_queue(
        account=account, to=CUSTOMER, name="invoice_notice", language="en", components=invoice_components()
    )
    delivery.flush()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_code == 131026 and message.error_title
    assert message.fix_hint == fix_hint(131026) and "WhatsApp" in message.fix_hint


def test_a_refusal_in_the_send_response_fails_the_row_at_once(live: str, account: WhatsAppAccount) -> None:
    approved_template(live)
    sandbox.fault_create(code="131026", recipient=CUSTOMER_WA_ID, mode="sync")
    message = message_template_queue(
        account=account, to=CUSTOMER, name="invoice_notice", language="en", components=invoice_components()
    )
    message.refresh_from_db()
    assert (message.status, message.error_code, message.wamid) == (MessageStatus.FAILED, 131026, None)
    assert message.fix_hint == fix_hint(131026)


def test_a_text_outside_the_24_hour_window_fails_with_the_re_engagement_hint(
    live: str, account: WhatsAppAccount
) -> None:
    message = message_text_queue(account=account, to=CUSTOMER, text="Hello out of the blue")
    delivery.flush()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, 131047)
    assert message.fix_hint == fix_hint(131047)


def test_a_template_with_the_wrong_parameter_count_is_refused_with_meta_s_code(
    live: str, account: WhatsAppAccount
) -> None:
    approved_template(live)
    message = message_template_queue(
        account=account,
        to=CUSTOMER,
        name="invoice_notice",
        language="en",
        components=[{"type": "body", "parameters": [{"type": "text", "text": "only one"}]}],
    )
    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, 132000)


def test_an_administrator_sends_a_test_message_and_watches_it_reach_read(
    live: str, meta_side: Any, account: WhatsAppAccount, client: Any
) -> None:
    sandbox.sample_template_ensure(account=meta_side)
    admin = UserFactory()
    membership_add(organization=account.organization, user=admin, role_name="Admin")
    client.force_login(admin)

    response = client.post("/settings/integrations/whatsapp/test-message/", {"to": "98200 12345"}, follow=True)
    message = Message.objects.get(template_name="hello_world")
    assert message.phone == CUSTOMER and "queued" in response.content.decode()
    assert b'hx-trigger="every 2s"' in client.get("/settings/integrations/whatsapp/recent/").content

    delivery.flush()
    card = client.get("/settings/integrations/whatsapp/recent/").content.decode()
    message.refresh_from_db()
    assert message.status == MessageStatus.READ
    assert "badge-read" in card and "hx-trigger" not in card  # final: the card stops polling


def test_a_test_message_to_a_bad_number_is_refused_with_a_message(account: WhatsAppAccount, client: Any) -> None:
    admin = UserFactory()
    membership_add(organization=account.organization, user=admin, role_name="Admin")
    client.force_login(admin)
    response = client.post("/settings/integrations/whatsapp/test-message/", {"to": "12"}, follow=True)
    assert response.status_code == 200 and not Message.objects.exists()
    assert "not a phone number" in response.content.decode() or "valid" in response.content.decode()
