"""Every kind of notification end to end, on a live server, with the sandbox as Meta.

Templates are made with the builder, submitted to the sandbox and approved by its signed webhook;
``notification_send`` queues, dispatch (Celery, eager) renders, uploads the PDF and sends through
the real client over HTTP; the sandbox's signed status webhooks move the message to read and
carry Meta's pricing, from which the credits are settled. Nothing is mocked.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from books.choices import ContactType
from books.kinds import KINDS
from books.models import Document, Organization
from credits.models import LedgerEntry, Reservation
from credits.selectors import credit_balance_get, price_table_get
from credits.services import credits_adjust
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.modules import MODULES
from templates_mgmt.services import module_setting_update, template_create, template_set_default
from tests.books.factories import make_contact, make_document, make_organization
from tests.whatsapp.factories import make_sandbox_account, module_template_fields
from whatsapp.choices import MessageStatus
from whatsapp.fix_hints import fix_hint
from whatsapp.models import BulkSend, Message, WhatsAppAccount
from whatsapp.sandbox import delivery
from whatsapp.sandbox import services as sandbox
from whatsapp.sandbox.models import SandboxMedia, SandboxMessage
from whatsapp.services.bulk import bulk_progress, bulk_send_start
from whatsapp.services.notifications import notification_send, subject_for_contact, subject_for_document
from whatsapp.services.templates import account_template_submit

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "EAANotifyEndToEnd000000000000000000000000"
WABA_ID = "104455667700001"
APP_ID = "205566778800001"
MOBILE = "9820012345"
WA_ID = "91" + MOBILE


@pytest.fixture
def account(sandbox_live: str, celery_eager: None) -> WhatsAppAccount:
    organization = make_organization(name="Acme Books")
    credits_adjust(organization=organization, amount=Decimal("20"), note="opening", user=None)
    return make_sandbox_account(organization, waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


def approved(account: WhatsAppAccount, module: str) -> Any:
    """A builder template of ``module``, submitted to the sandbox, approved by its webhook, enabled."""
    template = template_create(
        organization=account.organization, waba_id=account.waba_id, **module_template_fields(module)
    )
    account_template_submit(account=account, template=template)
    delivery.flush()
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED
    template_set_default(template=template)
    module_setting_update(organization=account.organization, module=module, enabled=True, user=None)
    return template


def received(message: Message) -> SandboxMessage:
    return SandboxMessage.objects.get(biz_opaque_callback_data=str(message.pk))


def header_file(sent: SandboxMessage) -> tuple[str, bytes]:
    """The header document's file name and the bytes the sandbox holds under its media id."""
    header = next(c for c in sent.request["template"]["components"] if c["type"] == "header")
    document = header["parameters"][0]["document"]
    return document["filename"], bytes(SandboxMedia.objects.get(media_id=document["id"]).content)


def body_texts(request: dict[str, Any]) -> list[str]:
    body = next(c for c in request["template"]["components"] if c["type"] == "body")
    return [parameter["text"] for parameter in body["parameters"]]


def assert_read_and_settled(message: Message, organization: Organization) -> None:
    delivery.flush()
    message.refresh_from_db()
    assert message.status == MessageStatus.READ, (message.status, message.error_title, message.error_details)
    assert message.sent_at and message.delivered_at and message.read_at
    reservation = Reservation.objects.get(reference=f"whatsapp.message:{message.pk}")
    assert reservation.status == "settled"
    entries = list(
        LedgerEntry.objects.filter(organization=organization, reservation=reservation)
        .order_by("pk")
        .values_list("kind", "category")
    )
    assert entries == [("reservation", "utility"), ("settlement", message.pricing_category or "utility")]


DOCUMENT_MODULES = [module for module, spec in MODULES.items() if spec.document_kind]


@pytest.mark.parametrize("module", DOCUMENT_MODULES)
def test_each_document_kind_reaches_read_with_its_pdf_and_values_and_is_charged(
    account: WhatsAppAccount, module: str
) -> None:
    organization = account.organization
    approved(account, module)
    kind = MODULES[module].document_kind
    customer = make_contact(organization, name="Ravi Traders", mobile=MOBILE)
    payment = {"amount": Decimal("48500.00")} if KINDS[kind].is_payment else {}
    document = make_document(organization, kind=kind, contact=customer, date=datetime.date(2026, 4, 1), **payment)

    (message,) = notification_send(subject=subject_for_document(document=document, module=module)).messages

    sent = received(message)
    filename, content = header_file(sent)
    assert filename == f"{document.number}.pdf" and content.startswith(b"%PDF")
    texts = body_texts(sent.request)
    assert texts[0] == "Ravi Traders" and (document.number in texts or module == "payment_reminders")
    assert sent.recipient == WA_ID
    assert_read_and_settled(message, organization)


@pytest.mark.parametrize(
    ("module", "contact_type"),
    [
        ("customer_statements", ContactType.CUSTOMER),
        ("vendor_statements", ContactType.VENDOR),
        ("customers", ContactType.CUSTOMER),
        ("vendors", ContactType.VENDOR),
    ],
)
def test_statements_and_notices_reach_read(account: WhatsAppAccount, module: str, contact_type: str) -> None:
    organization = account.organization
    approved(account, module)
    contact = make_contact(organization, contact_type=contact_type, name="Shree Suppliers", mobile=MOBILE)
    subject = subject_for_contact(
        contact=contact,
        module=module,
        statement_from=datetime.date(2026, 4, 1),
        statement_to=datetime.date(2026, 4, 30),
    )
    (message,) = notification_send(subject=subject).messages
    sent = received(message)
    assert body_texts(sent.request)[0] == "Shree Suppliers"
    if MODULES[module].uses_statement:
        filename, content = header_file(sent)
        assert filename == "statement_2026-04-01_2026-04-30.pdf" and content.startswith(b"%PDF")
    assert_read_and_settled(message, organization)


def test_an_undeliverable_number_fails_with_the_hint_and_gives_the_credits_back(account: WhatsAppAccount) -> None:
    organization = account.organization
    approved(account, "invoices")
    customer = make_contact(organization, name="Ravi Traders", mobile=MOBILE)
    invoice = make_document(organization, contact=customer)
    sandbox.fault_create(code="131026", recipient=WA_ID, mode="async")

    (message,) = notification_send(subject=subject_for_document(document=invoice)).messages
    delivery.flush()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, 131026)
    assert message.fix_hint == fix_hint(131026)
    assert Reservation.objects.get(reference=f"whatsapp.message:{message.pk}").status == "released"
    balance = credit_balance_get(organization=organization)
    assert (balance.available, balance.reserved) == (Decimal("20"), Decimal("0"))


def test_a_bulk_of_mixed_invoices_skips_with_reasons_and_the_rest_reach_read_and_add_up(
    account: WhatsAppAccount,
) -> None:
    """Issue 6's acceptance: drafts and opted-out contacts are skipped with their reasons, the rest
    reach read through batched dispatch, and the ledger adds up (the utility price per message)."""
    organization = account.organization
    approved(account, "payment_reminders")
    good = [
        make_document(organization, contact=make_contact(organization, name=f"Customer {n}", mobile=f"98200123{n:02d}"))
        for n in range(4)
    ]
    draft = make_document(organization, contact=good[0].contact, issue=False)
    opted_out = make_document(organization, contact=make_contact(organization, whatsapp=False))
    paid = make_document(organization, contact=good[1].contact)
    Document.objects.filter(pk=paid.pk).update(balance=0)
    before = credit_balance_get(organization=organization).available

    bulk, created = bulk_send_start(
        organization=organization,
        target=BulkSend.Target.DOCUMENTS,
        module="payment_reminders",
        ids=[d.pk for d in (*good, draft, opted_out, paid)],
    )
    delivery.flush()

    bulk.refresh_from_db()
    assert created and bulk.state == BulkSend.State.DONE
    reasons = {item["id"]: item["code"] for item in bulk.skipped}
    assert reasons == {
        draft.pk: "document_not_sendable",
        opted_out.pk: "recipient_not_opted_in",
        paid.pk: "nothing_due",
    }
    messages = list(Message.objects.filter(bulk=bulk))
    assert sorted(m.document_id for m in messages) == sorted(d.pk for d in good)
    assert all(m.status == MessageStatus.READ for m in messages), [(m.status, m.error_title) for m in messages]
    assert SandboxMessage.objects.filter(direction="outbound").count() == len(good)  # each once
    assert bulk_progress(bulk=bulk).percent == 100
    balance = credit_balance_get(organization=organization)
    assert balance.reserved == 0
    settled = Reservation.objects.filter(reference__in=[f"whatsapp.message:{m.pk}" for m in messages])
    assert [r.status for r in settled] == ["settled"] * len(good)
    charged = sum(
        (e.amount for e in LedgerEntry.objects.filter(organization=organization, kind="settlement")), Decimal("0")
    )
    price = price_table_get(organization=organization).price("utility", "91")
    assert before - balance.available == -charged == len(good) * price > 0
