"""A document's Comments & History lists its WhatsApp messages: recipient, number, status and when,
and for a failed one the error and what to do. Seen through the document page, as an accountant does."""

import datetime
import html

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from books.history import document_url
from books.models import Document
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from whatsapp.choices import Direction, MessageStatus, MessageType
from whatsapp.history import message_history

from .factories import make_account, make_message

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
# 08:35 UTC is 14:05 in Asia/Kolkata, the organization's zone.
READ_AT = datetime.datetime(2026, 3, 12, 8, 35, tzinfo=UTC)


@pytest.fixture
def user():
    return UserFactory(username="meera")


@pytest.fixture
def org(user):
    return make_organization(name="Sharma Accounting", user=user, role="Accountant")


@pytest.fixture
def member(client, user, org):
    client.force_login(user)
    return client


@pytest.fixture
def account(org):
    return make_account(org)


@pytest.fixture
def customer(org):
    contact = make_contact(org, name="Kumar Textiles")
    contact.persons.update(first_name="Ravi", last_name="Kumar", mobile="+919820012345")
    return contact


@pytest.fixture
def invoice(org, customer):
    return make_document(org, contact=customer)


def history_text(client, document: Document) -> str:
    response = client.get(document_url(document))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_document_page_shows_each_whatsapp_message_with_its_status_and_time(member, account, customer, invoice):
    person = customer.persons.get()
    make_message(
        account,
        contact=customer,
        contact_person=person,
        document=invoice,
        status=MessageStatus.READ,
        queued_at=READ_AT - datetime.timedelta(minutes=5),
        sent_at=READ_AT - datetime.timedelta(minutes=4),
        delivered_at=READ_AT - datetime.timedelta(minutes=3),
        read_at=READ_AT,
    )
    make_message(
        account,
        contact=customer,
        contact_person=person,
        document=invoice,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        message_type=MessageType.TEXT,
        received_at=READ_AT + datetime.timedelta(hours=1),
        content="Payment done today",
    )

    page = history_text(member, invoice)

    assert "WhatsApp message sent to Ravi Kumar (+91 98200 12345)" in page
    assert "Read · 12/03/2026 14:05" in page
    assert "WhatsApp reply from Ravi Kumar (+91 98200 12345)" in page
    assert "Received · 12/03/2026 15:05" in page
    assert 'class="timeline-entry timeline-whatsapp"' in page


def test_a_failed_message_shows_the_error_and_the_fix_hint(member, account, customer, invoice):
    make_message(
        account,
        contact=customer,
        contact_person=customer.persons.get(),
        document=invoice,
        status=MessageStatus.FAILED,
        failed_at=READ_AT,
        error_code=131026,
        error_title="Message undeliverable",
    )

    page = history_text(member, invoice)

    assert "Failed · 12/03/2026 14:05 — Message undeliverable — " in page
    assert "The recipient's number can't receive WhatsApp messages" in page


def test_an_unknown_number_is_shown_by_its_number(member, account, invoice):
    make_message(account, phone="+14155550123", document=invoice, status=MessageStatus.DELIVERED)

    page = history_text(member, invoice)

    assert "WhatsApp message sent to +1 415-555-0123" in page
    assert "Delivered · " in page


def test_only_the_documents_own_messages_appear(member, org, account, customer, invoice):
    other = make_document(org, contact=customer)
    make_message(account, contact=customer, document=other, template_name="other_doc")
    make_message(account, contact=customer, template_name="no_doc")

    assert "WhatsApp message sent" not in history_text(member, invoice)  # the Send menu says "WhatsApp message"
    assert "WhatsApp message sent to Kumar Textiles" in history_text(member, other)


def test_another_organizations_messages_never_reach_the_history(org, account, invoice):
    foreign = make_organization(name="Globex", user=UserFactory())
    # A row wrongly pointing at this organization's document (not something services write).
    make_message(make_account(foreign), document=invoice)

    assert message_history(Document.objects.get(pk=invoice.pk)) == []


def test_the_provider_costs_one_query_however_many_messages(account, customer, invoice):
    for status in (MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.READ, MessageStatus.FAILED):
        make_message(account, contact=customer, contact_person=customer.persons.get(), document=invoice, status=status)
    document = Document.objects.get(pk=invoice.pk)  # organization not loaded

    with CaptureQueriesContext(connection) as queries:
        entries = message_history(document)

    assert len(entries) == 4 and {entry.kind for entry in entries} == {"whatsapp"}
    assert len(queries) == 1


def test_the_document_page_query_count_does_not_grow_with_messages(member, account, customer, invoice):
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            history_text(member, invoice)
        return len(queries)

    make_message(account, contact=customer, contact_person=customer.persons.get(), document=invoice)
    one = page_queries()
    for _ in range(6):
        make_message(account, contact=customer, contact_person=customer.persons.get(), document=invoice)

    assert page_queries() == one
