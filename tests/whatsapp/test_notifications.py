"""notification_send: the rules in order, one queued message and one reservation per recipient,
idempotency keys, the PDF uploaded at dispatch, and credits settled or released by what Meta says.

Meta is httpx2's MockTransport behind the real client; credits are the real ``credits`` services
on PostgreSQL.
"""

from __future__ import annotations

import datetime
import json
import threading
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.models import ContactPerson, Document
from credits.models import LedgerEntry, Price, Reservation
from credits.selectors import credit_balance_get
from credits.services import credits_adjust
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import ModuleSetting
from tests.books.factories import make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template
from whatsapp import cloud
from whatsapp.choices import AccountStatus, MessageStatus
from whatsapp.client import CloudAPI
from whatsapp.models import Channel, MediaUpload, Message, NotificationRequest
from whatsapp.services import pump as pump_module
from whatsapp.services.dispatch import message_dispatch, messages_sweep
from whatsapp.services.messages import StatusUpdate, message_status_apply
from whatsapp.services.notifications import (
    IdempotencyConflict,
    NotificationRefused,
    notification_plan,
    notification_send,
    subject_for_contact,
    subject_for_document,
)
from whatsapp.services.pacing import pacing_forget

pytestmark = pytest.mark.django_db


class FakeMeta:
    """``POST /{id}/media`` answers a media id, ``POST /{id}/messages`` a wamid (or a scripted error)."""

    def __init__(self) -> None:
        self.uploads: list[bytes] = []
        self.sends: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/media"):
            self.uploads.append(request.content)
            return httpx2.Response(200, json={"id": f"media-{len(self.uploads)}"})
        body = json.loads(request.content)
        self.sends.append(body)
        if self.errors:
            return httpx2.Response(400, json={"error": self.errors.pop(0)})
        return httpx2.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
                "messages": [{"id": f"wamid.N{len(self.sends)}", "message_status": "accepted"}],
            },
        )


@pytest.fixture
def meta(monkeypatch: pytest.MonkeyPatch) -> FakeMeta:
    server = FakeMeta()
    monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(server)))
    return server


@pytest.fixture
def account():
    return make_account(make_organization())


@pytest.fixture
def organization(account):
    credits_adjust(organization=account.organization, amount=Decimal("100"), note="opening", user=None)
    return account.organization


@pytest.fixture
def template(account, organization):
    return make_approved_template(account, Module.INVOICES)


@pytest.fixture
def invoice(organization):
    customer = make_contact(organization, name="Ravi Traders", persons=2)
    return make_document(
        organization,
        kind=DocumentKind.INVOICE,
        contact=customer,
        date=datetime.date(2026, 4, 1),
        due_date=datetime.date(2026, 4, 16),
        share_with=list(customer.persons.all()),
    )


def send(document, **kwargs: Any):
    return notification_send(subject=subject_for_document(document=document), **kwargs)


def refused(document, **kwargs: Any) -> NotificationRefused:
    with pytest.raises(NotificationRefused) as caught:
        send(document, **kwargs)
    return caught.value


# --- Queueing ------------------------------------------------------------------------------------


def test_one_queued_message_and_one_reservation_per_recipient(
    monkeypatch, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    enqueued: list[int] = []
    monkeypatch.setattr("whatsapp.services.dispatch._dispatch_after_commit", enqueued.extend)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = send(invoice)
        assert not enqueued  # nothing is dispatched before the transaction commits
    for callback in callbacks:
        callback()
    assert len(result.messages) == 2 and sorted(enqueued) == sorted(m.pk for m in result.messages)
    persons = set(invoice.contact.persons.all())
    assert {message.contact_person for message in result.messages} == persons
    for message in result.messages:
        assert (message.status, message.document, message.template, message.module) == (
            MessageStatus.QUEUED,
            invoice,
            template,
            Module.INVOICES,
        )
        header, body = message.payload["template"]["components"][:2]
        assert header["parameters"][0]["document"] == {"id": "", "filename": f"{invoice.number}.pdf"}
        assert [p["text"] for p in body["parameters"]][:2] == ["Ravi Traders", invoice.number]
        assert message.payload["media"]["source"] == "document"
        assert invoice.number in message.content and "Ravi Traders" in message.content
    reservations = Reservation.objects.filter(organization=organization)
    assert sorted(r.reference for r in reservations) == sorted(f"whatsapp.message:{m.pk}" for m in result.messages)
    balance = credit_balance_get(organization=organization)
    utility = reservations.first().amount
    assert balance.reserved == 2 * utility and balance.available == Decimal("100") - 2 * utility


def test_the_chosen_people_only_and_the_template_changed(
    account, template, invoice, django_capture_on_commit_callbacks
) -> None:
    other = make_approved_template(account, Module.INVOICES, name="invoice_second", default=False)
    person = invoice.contact.persons.order_by("pk").last()
    with django_capture_on_commit_callbacks(execute=False):
        result = send(invoice, template=other, contact_persons=[person])
    (message,) = result.messages
    assert (message.contact_person, message.template_name, message.phone) == (person, "invoice_second", person.mobile)


# --- The rules, each named ---------------------------------------------------------------------


def test_integration_inactive(account, template, invoice) -> None:
    account.status = AccountStatus.INACTIVE
    account.save()
    assert refused(invoice).code == "integration_inactive"


def test_module_disabled(template, invoice, organization) -> None:
    ModuleSetting.objects.filter(organization=organization, module=Module.INVOICES).update(enabled=False)
    error = refused(invoice)
    assert error.code == "module_disabled" and "Invoices" in error.message


def test_no_template(account, invoice, organization) -> None:
    ModuleSetting.objects.create(organization=organization, module=Module.INVOICES, enabled=True)
    assert refused(invoice).code == "template_missing"


def test_template_not_approved_or_of_another_module(account, template, invoice) -> None:
    quote_template = make_approved_template(account, Module.QUOTES)
    assert refused(invoice, template=quote_template).code == "template_wrong_module"
    template.status = TemplateStatus.PAUSED
    template.save()
    error = refused(invoice, template=template)
    assert error.code == "template_not_approved" and "Paused" in error.message


def test_recipient_not_opted_in_or_with_an_invalid_number(template, invoice) -> None:
    first, second = invoice.contact.persons.order_by("pk")
    ContactPerson.objects.filter(pk=second.pk).update(whatsapp_enabled=False)
    error = refused(invoice, contact_persons=[first, ContactPerson.objects.get(pk=second.pk)])
    assert error.code == "recipient_not_opted_in" and second.name in error.message
    ContactPerson.objects.filter(pk=first.pk).update(mobile="12345")
    error = refused(invoice, contact_persons=[ContactPerson.objects.get(pk=first.pk)])
    assert error.code == "recipient_invalid_number" and error.field == "contact_persons"


def test_contact_without_whatsapp_and_someone_elses_person(template, invoice, organization) -> None:
    stranger = make_contact(organization).persons.get()
    assert refused(invoice, contact_persons=[stranger]).code == "recipient_not_of_contact"
    invoice.contact.whatsapp_enabled = False
    invoice.contact.save()
    invoice.refresh_from_db()
    assert refused(invoice, contact_persons=list(invoice.contact.persons.all())).code == "recipient_not_opted_in"
    # Nobody preselected: nobody of the contact can receive it, and the first one's reason says why.
    assert refused(invoice).code == "recipient_not_opted_in"


@pytest.mark.parametrize("status", [DocumentStatus.DRAFT, DocumentStatus.VOID])
def test_draft_or_void_documents_are_not_sent(template, invoice, status) -> None:
    invoice.status = status
    invoice.save()
    error = refused(invoice)
    assert error.code == "document_not_sendable" and invoice.number in error.message


def test_a_paid_invoice_gets_no_payment_reminder_but_still_its_invoice_notice(account, template, invoice) -> None:
    make_approved_template(account, Module.PAYMENT_REMINDERS)
    Document.objects.filter(pk=invoice.pk).update(balance=0)
    invoice.refresh_from_db()
    with pytest.raises(NotificationRefused) as caught:
        notification_send(subject=subject_for_document(document=invoice, module=Module.PAYMENT_REMINDERS))
    assert caught.value.code == "nothing_due" and invoice.number in caught.value.message
    assert not Message.objects.exists()
    assert len(send(invoice).messages) == 2  # the invoice itself can still be sent


def test_no_number_for_the_audience_and_category(account, template, invoice) -> None:
    Channel.objects.filter(account=account).delete()
    account.default_phone_number = None
    account.save()
    assert refused(invoice).code == "no_channel_number"


def test_too_few_credits_says_how_many_and_links_to_buying(template, invoice, organization) -> None:
    Price.objects.create(organization=organization, category="utility", country_code="", credits=Decimal("60"))
    error = refused(invoice)  # two recipients × 60 > 100
    assert error.code == "insufficient_credits"
    assert "120" in error.message and "100" in error.message and error.url.endswith("/buy/")
    assert not Message.objects.exists() and not Reservation.objects.exists()


def test_a_refusal_writes_nothing(template, invoice) -> None:
    invoice.status = DocumentStatus.DRAFT
    invoice.save()
    refused(invoice, idempotency_key="k-1")
    assert not Message.objects.exists() and not NotificationRequest.objects.exists()


def test_the_plan_shows_the_same_refusal_before_sending(template, invoice, organization) -> None:
    plan = notification_plan(subject=subject_for_document(document=invoice))
    assert plan.refusal is None and plan.template == template and len(plan.selected) == 2
    assert plan.credits_needed > 0 and plan.credits_available == Decimal("100")
    assert invoice.number in plan.preview.body
    invoice.status = DocumentStatus.VOID
    invoice.save()
    plan = notification_plan(subject=subject_for_document(document=invoice))
    assert plan.refusal.code == "document_not_sendable"


# --- Idempotency ---------------------------------------------------------------------------------


def test_the_same_key_sends_and_charges_once_and_a_different_request_conflicts(
    template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        first = send(invoice, idempotency_key="abc")
        again = send(invoice, idempotency_key="abc")
    assert again.replayed and [m.pk for m in again.messages] == [m.pk for m in first.messages]
    assert Message.objects.count() == 2
    assert LedgerEntry.objects.filter(organization=organization, kind="reservation").count() == 2
    with pytest.raises(IdempotencyConflict):
        send(invoice, idempotency_key="abc", contact_persons=[invoice.contact.persons.first()])


# --- Statements and notices ----------------------------------------------------------------------


def test_a_customer_statement_carries_its_period(account, organization, django_capture_on_commit_callbacks) -> None:
    make_approved_template(account, Module.CUSTOMER_STATEMENTS)
    customer = make_contact(organization, name="Ravi Traders")
    make_document(organization, kind=DocumentKind.INVOICE, contact=customer, date=datetime.date(2026, 4, 3))
    subject = subject_for_contact(
        contact=customer,
        module=Module.CUSTOMER_STATEMENTS,
        statement_from=datetime.date(2026, 4, 1),
        statement_to=datetime.date(2026, 4, 30),
    )
    with django_capture_on_commit_callbacks(execute=False):
        (message,) = notification_send(subject=subject).messages
    assert (message.statement_from, message.statement_to) == (datetime.date(2026, 4, 1), datetime.date(2026, 4, 30))
    assert message.payload["media"]["source"] == "statement"
    assert message.payload["template"]["components"][0]["parameters"][0]["document"]["filename"] == (
        "statement_2026-04-01_2026-04-30.pdf"
    )


def test_a_vendor_notice_goes_from_the_vendor_channel(
    account, organization, django_capture_on_commit_callbacks
) -> None:
    make_approved_template(account, Module.VENDORS)
    vendor = make_contact(organization, contact_type=ContactType.VENDOR, name="Shree Suppliers")
    with django_capture_on_commit_callbacks(execute=False):
        (message,) = notification_send(subject=subject_for_contact(contact=vendor)).messages
    assert message.module == Module.VENDORS and "Shree Suppliers" in message.content
    assert "media" not in message.payload


# --- Dispatch: the PDF goes up once, the credits follow Meta -------------------------------------


def queued(invoice, django_capture_on_commit_callbacks, **kwargs: Any) -> list[Message]:
    with django_capture_on_commit_callbacks(execute=False):
        return send(invoice, **kwargs).messages


def test_dispatch_uploads_the_pdf_once_and_sends_it_as_the_header_document(
    meta, template, invoice, django_capture_on_commit_callbacks
) -> None:
    first, second = queued(invoice, django_capture_on_commit_callbacks)
    message_dispatch(message_id=first.pk)
    message_dispatch(message_id=second.pk)
    assert len(meta.uploads) == 1 and meta.uploads[0].count(b"%PDF") == 1  # the same PDF: uploaded once
    assert MediaUpload.objects.count() == 1
    for sent in meta.sends:
        header = sent["template"]["components"][0]
        assert header["parameters"][0]["document"] == {"id": "media-1", "filename": f"{invoice.number}.pdf"}
    first.refresh_from_db()
    assert (first.status, first.media_id, first.media_filename) == (
        MessageStatus.SENDING,
        "media-1",
        f"{invoice.number}.pdf",
    )


def status(message: Message, name: str, **extra: Any) -> StatusUpdate:
    return StatusUpdate(
        wamid=message.wamid or "",
        status=name,
        at=datetime.datetime.now(tz=datetime.UTC),
        callback_data=str(message.pk),
        **extra,
    )


def test_delivery_settles_with_the_reported_category_and_failure_releases(
    meta, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    Price.objects.create(organization=organization, category="marketing", country_code="91", credits=Decimal("2.50"))
    first, second = queued(invoice, django_capture_on_commit_callbacks)
    for message in (first, second):
        message_dispatch(message_id=message.pk)
        message.refresh_from_db()
    pricing = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    message_status_apply(organization=organization, update=status(first, "sent", pricing=pricing))
    assert Reservation.objects.get(reference=f"whatsapp.message:{first.pk}").status == "reserved"
    message_status_apply(organization=organization, update=status(first, "delivered", pricing=pricing))
    message_status_apply(organization=organization, update=status(first, "read"))  # settles nothing more
    settled = Reservation.objects.get(reference=f"whatsapp.message:{first.pk}")
    assert (settled.status, settled.charged) == ("settled", Decimal("2.50"))
    entry = LedgerEntry.objects.get(organization=organization, kind="settlement")
    assert (entry.category, entry.amount) == ("marketing", Decimal("-2.50"))

    failed = status(second, "failed", error_code=131026, error_title="Message undeliverable")
    message_status_apply(organization=organization, update=failed)
    assert Reservation.objects.get(reference=f"whatsapp.message:{second.pk}").status == "released"
    balance = credit_balance_get(organization=organization)
    assert (balance.balance, balance.reserved) == (Decimal("97.50"), Decimal("0"))


def test_a_free_service_window_message_costs_nothing(
    meta, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    message = queued(invoice, django_capture_on_commit_callbacks, contact_persons=[invoice.contact.persons.first()])[0]
    message_dispatch(message_id=message.pk)
    message.refresh_from_db()
    pricing = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    message_status_apply(organization=organization, update=status(message, "delivered", pricing=pricing))
    reservation = Reservation.objects.get()
    assert (reservation.status, reservation.charged) == ("settled", Decimal("0"))
    assert credit_balance_get(organization=organization).balance == Decimal("100")


def test_a_permanent_send_error_fails_the_message_and_releases_its_credits(
    meta, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    meta.errors.append({"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131026})
    message = queued(invoice, django_capture_on_commit_callbacks, contact_persons=[invoice.contact.persons.first()])[0]
    message_dispatch(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == 131026 and message.fix_hint
    assert Reservation.objects.get().status == "released"
    assert credit_balance_get(organization=organization).available == Decimal("100")


# --- Concurrency on PostgreSQL -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_200_concurrent_sends_against_credits_for_100_queue_exactly_100(monkeypatch) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    monkeypatch.setattr("whatsapp.services.dispatch._enqueue", lambda message_id: None)
    account = make_account(make_organization())
    organization = account.organization
    credits_adjust(organization=organization, amount=Decimal("100"), note="opening", user=None)
    Price.objects.create(organization=organization, category="utility", country_code="", credits=Decimal("1"))
    make_approved_template(account, Module.INVOICES)
    invoices = [make_document(organization, kind=DocumentKind.INVOICE) for _ in range(200)]

    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker(batch: list[Any]) -> None:
        start.wait()
        try:
            for document in batch:
                try:
                    send(document)
                    result = "queued"
                except NotificationRefused as exc:
                    result = exc.code
                with lock:
                    outcomes.append(result)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(invoices[i::20],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("queued") == 100 and outcomes.count("insufficient_credits") == 100
    assert Message.objects.filter(organization=organization).count() == 100
    balance = credit_balance_get(organization=organization)
    assert (balance.available, balance.reserved, balance.balance) == (Decimal("0"), Decimal("100"), Decimal("100"))
    assert Reservation.objects.filter(organization=organization).count() == 100


def test_kinds_no_module_sends_are_refused(account) -> None:
    bill = make_document(account.organization, kind=DocumentKind.BILL)
    with pytest.raises(NotificationRefused) as caught:
        subject_for_document(document=bill)
    assert caught.value.code == "template_wrong_module"


# --- The sweeper gives back what was never sent or never delivered ---------------------------------


def test_an_unconfirmed_send_is_failed_and_its_credits_released(
    monkeypatch, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    def no_answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/media"):
            return httpx2.Response(200, json={"id": "media-1"})
        raise httpx2.ReadTimeout("no answer", request=request)

    monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(no_answer)))
    message = queued(invoice, django_capture_on_commit_callbacks, contact_persons=[invoice.contact.persons.first()])[0]
    message_dispatch(message_id=message.pk)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.SENDING  # Meta may have it: wait
    assert Reservation.objects.get().status == "reserved"
    later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(hours=1)
    assert messages_sweep(now=later)["unconfirmed"] == 1
    assert Reservation.objects.get().status == "released"


def test_a_message_never_delivered_in_30_days_is_not_charged(
    meta, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    first, second = queued(invoice, django_capture_on_commit_callbacks)
    for message in (first, second):
        message_dispatch(message_id=message.pk)
        message.refresh_from_db()
        message_status_apply(organization=organization, update=status(message, "sent"))
    now = datetime.datetime.now(tz=datetime.UTC)
    assert messages_sweep(now=now + datetime.timedelta(days=29))["credits_released"] == 0
    message_status_apply(organization=organization, update=status(second, "delivered"))
    assert messages_sweep(now=now + datetime.timedelta(days=31))["credits_released"] == 1
    assert Reservation.objects.get(reference=f"whatsapp.message:{first.pk}").status == "released"
    assert Reservation.objects.get(reference=f"whatsapp.message:{second.pk}").status == "settled"


def test_a_static_attachment_is_uploaded_once_and_reused_for_every_customer(
    meta, account, organization, django_capture_on_commit_callbacks
) -> None:
    from templates_mgmt.choices import AttachmentMode, HeaderType
    from tests.templates_mgmt.factories import PDF, static_file

    make_approved_template(
        account,
        Module.CUSTOMERS,
        name="price_list",
        header_type=HeaderType.DOCUMENT,
        attachment_mode=AttachmentMode.STATIC,
        attachment=static_file(PDF, "prices.pdf"),
    )
    customers = [make_contact(organization) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=False):
        messages = [notification_send(subject=subject_for_contact(contact=c)).messages[0] for c in customers]
    for message in messages:
        assert message.payload["media"]["source"] == "static"
        message_dispatch(message_id=message.pk)
    assert len(meta.uploads) == 1 and PDF in meta.uploads[0]
    headers = [sent["template"]["components"][0]["parameters"][0]["document"] for sent in meta.sends]
    assert headers == [{"id": "media-1", "filename": "prices.pdf"}] * 3


@pytest.mark.redis
def test_through_the_pump_a_throttled_send_reserves_once_and_is_charged_once(
    meta, template, invoice, organization, django_capture_on_commit_callbacks
) -> None:
    pacing_forget()  # phone number ids repeat from test to test
    pump_module.dispatch_keys_clear()
    Price.objects.create(organization=organization, category="marketing", country_code="91", credits=Decimal("2.50"))
    first, second = queued(invoice, django_capture_on_commit_callbacks)
    meta.errors.append({"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429})

    result = pump_module.dispatch_pump(run_seconds=3)

    assert (result.sent, result.retried) == (1, 1)
    Message.objects.filter(status=MessageStatus.QUEUED).update(send_after=timezone.now())  # its backoff is over
    assert pump_module.dispatch_pump(run_seconds=3).sent == 1
    assert len(meta.sends) == 3  # refused once, then each accepted once
    assert Reservation.objects.filter(organization=organization).count() == 2  # the retry reserved nothing more
    pricing = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    for message in (first, second):
        message.refresh_from_db()
        assert message.wamid
        for name in ("sent", "delivered", "read", "delivered"):  # a duplicate webhook too
            message_status_apply(organization=organization, update=status(message, name, pricing=pricing))
    assert LedgerEntry.objects.filter(organization=organization, kind="settlement").count() == 2
    balance = credit_balance_get(organization=organization)
    assert (balance.balance, balance.reserved) == (Decimal("95.00"), Decimal("0"))
