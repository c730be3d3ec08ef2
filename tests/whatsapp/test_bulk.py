"""Bulk sends: the summary before, the request answered at once, the work in a task, skipped
documents with their reasons, credits that run out part-way, idempotency, and progress."""

from __future__ import annotations

import datetime
import gc
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from books.api.access import CONTACT_PERMS
from books.choices import ContactType, DocumentStatus
from books.formatting import date_format, money_format
from books.models import Contact, Organization, Role
from books.permissions import Perm
from books.selectors import statement_build
from books.services.documents import LineInput
from books.services.organizations import membership_add
from credits.models import Price, Reservation
from credits.selectors import credit_balance_get
from credits.services import credits_adjust
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import MessageTemplate, ModuleSetting
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from whatsapp.models import BulkSend, BulkSendPart, Message
from whatsapp.services import bulk as bulk_module
from whatsapp.services.bulk import (
    MAX_SELECTION,
    bulk_plan,
    bulk_progress,
    bulk_send_parts_run,
    bulk_send_run,
    bulk_send_start,
    bulk_sends_sweep,
)
from whatsapp.services.notifications import IdempotencyConflict, NotificationRefused

from .factories import make_account, make_approved_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def organization(user):
    organization = make_organization(user=user, role="Admin")
    credits_adjust(organization=organization, amount=Decimal("100"), note="opening", user=None)
    Price.objects.create(organization=organization, category="utility", country_code="", credits=Decimal("1"))
    return organization


@pytest.fixture
def account(organization):
    account = make_account(organization)
    make_approved_template(account, Module.INVOICES)
    return account


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch):
    started: list[int] = []
    monkeypatch.setattr("whatsapp.services.dispatch._enqueue", lambda message_id: None)
    monkeypatch.setattr("whatsapp.services.bulk._enqueue", started.append)
    return started


@pytest.fixture
def mixed(organization, account):
    """Three good invoices, a draft, a void one, one whose customer has no WhatsApp, one with a bad number."""
    good = [make_document(organization) for _ in range(3)]
    draft = make_document(organization, issue=False)
    void = make_document(organization)
    void.status = DocumentStatus.VOID
    void.save()
    opted_out = make_document(organization, contact=make_contact(organization, whatsapp=False))
    bad_number = make_document(organization)
    bad_number.contact.persons.update(mobile="12345")
    return good, {"draft": draft, "void": void, "opted_out": opted_out, "bad_number": bad_number}


def ids(good, others) -> list[int]:
    return [d.pk for d in good] + [d.pk for d in others.values()]


def test_the_summary_says_what_goes_what_is_skipped_and_why_and_the_credits(organization, mixed) -> None:
    good, others = mixed
    plan = bulk_plan(organization=organization, target="documents", module=Module.INVOICES, ids=ids(good, others))
    assert (plan.total, plan.sendable, plan.messages) == (7, 3, 3)
    assert plan.credits_needed == Decimal("3") and plan.credits_available == Decimal("100")
    reasons = {item.id: item.code for item in plan.skipped}
    assert reasons == {
        others["draft"].pk: "document_not_sendable",
        others["void"].pk: "document_not_sendable",
        others["opted_out"].pk: "recipient_not_opted_in",
        others["bad_number"].pk: "recipient_invalid_number",
    }
    assert not Message.objects.exists()


def test_a_bulk_send_answers_at_once_and_the_task_queues_the_good_ones(
    organization, mixed, no_dispatch, django_capture_on_commit_callbacks
) -> None:
    good, others = mixed
    with django_capture_on_commit_callbacks(execute=True):
        bulk, created = bulk_send_start(
            organization=organization, target="documents", module=Module.INVOICES, ids=ids(good, others)
        )
    assert created and bulk.state == "pending" and not Message.objects.exists()
    assert no_dispatch == [bulk.pk]  # the task is enqueued, nothing else happened yet

    bulk = bulk_send_run(bulk_id=bulk.pk)
    assert bulk_send_run(bulk_id=bulk.pk) is None  # a second delivery of the task does nothing
    assert (bulk.state, bulk.sent, bulk.messages_queued) == ("done", 3, 3)
    assert sorted(Message.objects.values_list("document_id", flat=True)) == sorted(d.pk for d in good)
    assert {item["id"] for item in bulk.skipped} == {d.pk for d in others.values()}
    assert all(item["reason"] for item in bulk.skipped)
    assert Reservation.objects.filter(organization=organization).count() == 3
    assert credit_balance_get(organization=organization).available == Decimal("97")

    progress = bulk_progress(bulk=bulk)
    assert progress.counts == {"queued": 3} and progress.percent == 50 and not progress.is_complete
    Message.objects.update(status="read")
    assert bulk_progress(bulk=bulk).percent == 100 and bulk_progress(bulk=bulk).is_complete


def test_the_queries_of_a_bulk_send_do_not_grow_with_its_documents(organization, account) -> None:
    """Each chunk's documents, contacts and people are read at once, without the columns no rule or
    template field reads; nothing is then loaded document by document."""
    credits_adjust(organization=organization, amount=Decimal("100"), note="more", user=None)

    def queries_for(count: int) -> int:
        invoices = [make_document(organization) for _ in range(count)]
        bulk, _ = bulk_send_start(
            organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in invoices]
        )
        with CaptureQueriesContext(connection) as queries:
            bulk = bulk_send_run(bulk_id=bulk.pk)
        assert (bulk.state, bulk.sent) == ("done", count)
        return len(queries)

    assert queries_for(2) == queries_for(8)


@pytest.mark.parametrize("count", [30, 70])  # written by bulk_create, and by COPY (books.bulk_insert)
def test_writing_a_part_leaves_nothing_for_the_cycle_collector(organization, account, count) -> None:
    """The cycle collector is paused while a part is written: what it allocates must be freed by
    reference counting. (A message's file field read through its descriptor made a cycle per
    message, which kept every message, and the rows it cached, until the collector ran.)"""
    credits_adjust(organization=organization, amount=Decimal("100"), note="more", user=None)
    invoices = [make_document(organization) for _ in range(count)]
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in invoices]
    )
    gc.collect()
    gc.disable()
    try:
        bulk = bulk_send_run(bulk_id=bulk.pk)
        left = gc.collect()
    finally:
        gc.enable()
    assert (bulk.state, bulk.sent) == ("done", count)
    assert gc.isenabled()
    assert left < count  # a cycle per message was 26 objects each


def test_when_credits_run_out_the_rest_is_skipped_as_such(organization, account) -> None:
    credits_adjust(organization=organization, amount=Decimal("-95"), note="spent", user=None)
    invoices = [make_document(organization) for _ in range(8)]
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in invoices]
    )
    bulk = bulk_send_run(bulk_id=bulk.pk)
    assert (bulk.sent, len(bulk.skipped)) == (5, 3)
    assert {item["code"] for item in bulk.skipped} == {"insufficient_credits"}
    assert [item["id"] for item in bulk.skipped] == [d.pk for d in invoices[5:]]
    balance = credit_balance_get(organization=organization)
    assert (balance.available, balance.reserved) == (Decimal("0"), Decimal("5"))
    assert Message.objects.count() == Reservation.objects.count() == 5


def test_organization_rules_refuse_at_once(organization, account, mixed) -> None:
    good, _others = mixed
    with pytest.raises(NotificationRefused) as caught:
        bulk_send_start(organization=organization, target="documents", module=Module.QUOTES, ids=[good[0].pk])
    assert caught.value.code == "module_disabled"
    with pytest.raises(NotificationRefused) as caught:
        bulk_send_start(organization=organization, target="documents", module=Module.INVOICES, ids=[])
    assert caught.value.code == "no_selection"
    assert not BulkSend.objects.exists()


def test_the_same_key_starts_once_and_another_selection_conflicts(
    organization, mixed, no_dispatch, django_capture_on_commit_callbacks
) -> None:
    good, _others = mixed
    selection = [d.pk for d in good]
    with django_capture_on_commit_callbacks(execute=True):
        first, created = bulk_send_start(
            organization=organization, target="documents", module=Module.INVOICES, ids=selection, idempotency_key="k"
        )
        again, created_again = bulk_send_start(
            organization=organization, target="documents", module=Module.INVOICES, ids=selection, idempotency_key="k"
        )
    assert created and not created_again and again.pk == first.pk and no_dispatch == [first.pk]
    with pytest.raises(IdempotencyConflict):
        bulk_send_start(
            organization=organization,
            target="documents",
            module=Module.INVOICES,
            ids=selection[:1],
            idempotency_key="k",
        )


def test_a_rerun_after_a_dead_worker_does_not_send_twice(organization, mixed) -> None:
    good, _others = mixed
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in good]
    )
    bulk_send_run(bulk_id=bulk.pk)
    # The worker "died" after writing: the sweeper finds it still running and starts it again.
    BulkSend.objects.filter(pk=bulk.pk).update(
        state="running", started_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    )
    assert bulk_sends_sweep() == 1
    bulk_send_run(bulk_id=bulk.pk)
    assert Message.objects.count() == 3 and Reservation.objects.count() == 3


def test_another_organizations_ids_are_skipped_as_not_found(organization, account) -> None:
    foreign = make_document(make_organization(name="Elsewhere"))
    mine = make_document(organization)
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[foreign.pk, mine.pk]
    )
    bulk = bulk_send_run(bulk_id=bulk.pk)
    assert bulk.sent == 1 and bulk.skipped == [
        {
            "id": foreign.pk,
            "label": str(foreign.pk),
            "code": "not_found",
            "reason": "Not found in this organization.",
            # Kept in each other language of the interface, for whoever reads it later.
            "reasons": {"es": "No se encontró en esta organización."},
        }
    ]


def test_vendors_in_bulk(organization, account) -> None:
    make_approved_template(account, Module.VENDORS)
    vendors = [make_contact(organization, contact_type=ContactType.VENDOR) for _ in range(2)]
    quiet = make_contact(organization, contact_type=ContactType.VENDOR, whatsapp=False)
    bulk, _ = bulk_send_start(
        organization=organization, target="contacts", module=Module.VENDORS, ids=[*(v.pk for v in vendors), quiet.pk]
    )
    bulk = bulk_send_run(bulk_id=bulk.pk)
    assert bulk.sent == 2 and [item["id"] for item in bulk.skipped] == [quiet.pk]
    assert set(Message.objects.values_list("contact_id", flat=True)) == {v.pk for v in vendors}
    assert Contact.objects.filter(pk=quiet.pk, whatsapp_enabled=False).exists()


# --- REST ----------------------------------------------------------------------------------------------


def test_rest_summary_start_and_progress(user, organization, mixed) -> None:
    good, others = mixed
    api = client_for(user)
    selection = ",".join(str(pk) for pk in ids(good, others))
    summary = api.get(f"/api/v1/invoices/whatsapp/bulk?ids={selection}").json()
    assert (summary["will_send"], len(summary["skipped"]), summary["credits_needed"]) == (3, 4, "3.00")
    response = api.post(
        "/api/v1/invoices/whatsapp/bulk", {"ids": ids(good, others)}, format="json", HTTP_IDEMPOTENCY_KEY="b-1"
    )
    assert response.status_code == 202 and response.json()["state"] == "pending"
    bulk_id = response.json()["bulk_id"]
    bulk_send_run(bulk_id=bulk_id)
    progress = api.get(f"/api/v1/whatsapp/bulk/{bulk_id}").json()
    assert progress["state"] == "done" and progress["status_counts"] == {"queued": 3} and len(progress["skipped"]) == 4
    again = api.post(
        "/api/v1/invoices/whatsapp/bulk", {"ids": ids(good, others)}, format="json", HTTP_IDEMPOTENCY_KEY="b-1"
    )
    assert again.status_code == 202 and again.json()["bulk_id"] == bulk_id and Message.objects.count() == 3


def test_rest_bad_input_and_other_organizations(user, organization, account) -> None:
    api = client_for(user)
    assert api.post("/api/v1/invoices/whatsapp/bulk", {"ids": []}, format="json").status_code == 400
    assert api.post("/api/v1/invoices/whatsapp/bulk", {"ids": ["x"]}, format="json").status_code == 400
    bad_module = api.post("/api/v1/invoices/whatsapp/bulk", {"ids": [1], "module": "quotes"}, format="json")
    assert bad_module.status_code == 400 and "module" in bad_module.json()
    foreign = BulkSend.objects.create(
        organization=make_organization(name="Elsewhere"), target="documents", module="invoices", total=0
    )
    assert api.get(f"/api/v1/whatsapp/bulk/{foreign.pk}").status_code == 404


# --- Parts: several workers write one bulk send ------------------------------------------------------


@pytest.fixture
def helpers(monkeypatch):
    """Small parts, and the helper tasks a bulk send wakes recorded instead of enqueued."""
    woken: list[int] = []
    monkeypatch.setattr("whatsapp.services.bulk.PART_SIZE", 2)
    monkeypatch.setattr("whatsapp.services.bulk._enqueue_helper", woken.append)
    return woken


def test_a_large_bulk_send_is_written_in_parts_with_its_skipped_in_the_selection_order(
    organization, mixed, helpers
) -> None:
    good, others = mixed
    selection = [others["draft"].pk, good[0].pk, others["void"].pk, good[1].pk, good[2].pk, others["bad_number"].pk]
    bulk, _ = bulk_send_start(organization=organization, target="documents", module=Module.INVOICES, ids=selection)
    bulk = bulk_send_run(bulk_id=bulk.pk)
    assert helpers == [bulk.pk, bulk.pk]  # three parts: two helpers woken
    assert bulk.state == "done" and bulk.sent == 3 and bulk.messages_queued == 3
    assert [item["id"] for item in bulk.skipped] == [others["draft"].pk, others["void"].pk, others["bad_number"].pk]
    assert list(bulk.parts.values_list("index", "state")) == [(0, "done"), (1, "done"), (2, "done")]
    assert sorted(Message.objects.values_list("document_id", flat=True)) == sorted(d.pk for d in good)
    assert Reservation.objects.count() == 3
    # The helpers, arriving late, find nothing left to take.
    assert bulk_send_parts_run(bulk_id=bulk.pk) == 0


def test_a_part_taken_back_by_the_sweeper_is_written_once(organization, account, helpers, monkeypatch) -> None:
    """The sweeper gives a slow worker's part to another: the slow one notices at its next chunk
    and stops, and every document gets one message."""
    documents = [make_document(organization) for _ in range(4)]
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in documents]
    )
    real_write = bulk_module._part_write
    taken_back: list[int] = []

    def slow_write(bulk, context, part):
        if not taken_back:  # this worker stalls on its first part; the sweeper decides it died
            taken_back.append(part.index)
            BulkSendPart.objects.filter(pk=part.pk).update(
                started_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
            )
            bulk_sends_sweep()
        return real_write(bulk, context, part)

    monkeypatch.setattr(bulk_module, "_part_write", slow_write)
    bulk_send_run(bulk_id=bulk.pk)  # the part it lost went back to pending, and it took it again
    bulk = BulkSend.objects.get(pk=bulk.pk)
    assert taken_back == [0] and bulk.state == "done" and bulk.sent == 4
    assert sorted(Message.objects.values_list("document_id", flat=True)) == sorted(d.pk for d in documents)
    assert Reservation.objects.count() == 4


def test_a_part_whose_worker_died_after_a_chunk_is_finished_without_its_written_documents(
    organization, account, helpers, monkeypatch
) -> None:
    """The worker commits the first chunk of its part and dies: whoever takes the part over writes
    only the rest."""
    monkeypatch.setattr("whatsapp.services.bulk.PART_SIZE", 4)
    monkeypatch.setattr("whatsapp.services.bulk.CHUNK_SIZE", 2)
    documents = [make_document(organization) for _ in range(4)]
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in documents]
    )
    real_chunk = bulk_module._write_chunk

    class WorkerDied(Exception):
        pass

    def dying_chunk(bulk, part, pending):
        if Message.objects.exists():
            raise WorkerDied
        return real_chunk(bulk, part, pending)

    monkeypatch.setattr(bulk_module, "_write_chunk", dying_chunk)
    with pytest.raises(WorkerDied):
        bulk_send_run(bulk_id=bulk.pk)
    assert Message.objects.count() == 2
    monkeypatch.setattr(bulk_module, "_write_chunk", real_chunk)
    long_ago = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    BulkSendPart.objects.filter(bulk=bulk).update(started_at=long_ago)
    BulkSend.objects.filter(pk=bulk.pk).update(started_at=long_ago)
    assert bulk_sends_sweep() == 1
    bulk_send_run(bulk_id=bulk.pk)

    bulk = BulkSend.objects.get(pk=bulk.pk)
    assert bulk.state == "done" and bulk.skipped == []
    assert sorted(Message.objects.values_list("document_id", flat=True)) == sorted(d.pk for d in documents)
    assert Reservation.objects.count() == 4


def test_a_helper_whose_template_was_deleted_skips_its_parts_with_the_reason(organization, account, helpers) -> None:
    documents = [make_document(organization) for _ in range(4)]
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in documents]
    )
    BulkSend.objects.filter(pk=bulk.pk).update(state="running")
    BulkSendPart.objects.bulk_create([BulkSendPart(bulk=bulk, index=index) for index in range(2)])
    bulk.template.delete()
    assert bulk_send_parts_run(bulk_id=bulk.pk) == 2
    bulk = BulkSend.objects.get(pk=bulk.pk)
    assert bulk.state == "done" and not Message.objects.exists()
    assert [item["id"] for item in bulk.skipped] == [d.pk for d in documents]
    assert {item["code"] for item in bulk.skipped} == {"template_missing"}


# --- REST: the template asked for, bad bodies, large and foreign selections, messages, language -------

BULK = "/api/v1/invoices/whatsapp/bulk"


def _deleted(organization, account):
    """Deleted at Meta since: the row stays, as the lifecycle service leaves it."""
    template = make_approved_template(account, Module.INVOICES, name="invoice_gone", default=False)
    MessageTemplate.objects.filter(pk=template.pk).update(status=TemplateStatus.DELETED)
    return template.pk


def _foreign(organization, account):
    return make_approved_template(make_account(make_organization(name="Elsewhere")), Module.INVOICES).pk


def _unknown(organization, account):
    return 999_999


@pytest.mark.parametrize("template_id", [_deleted, _foreign, _unknown])
def test_rest_a_template_that_is_not_usable_is_a_template_id_error_not_the_default(
    user, organization, account, template_id
) -> None:
    invoice = make_document(organization)
    api = client_for(user)
    body = {"ids": [invoice.pk], "template_id": template_id(organization, account)}

    response = api.post(BULK, body, format="json")
    assert response.status_code == 400 and response.json()["template_id"] == ["No message template with this id."]
    summary = api.get(f"{BULK}?ids={invoice.pk}&template_id={body['template_id']}")
    assert summary.status_code == 400 and "template_id" in summary.json()
    assert not BulkSend.objects.exists()
    # Without one, the module's default.
    assert api.post(BULK, {"ids": [invoice.pk]}, format="json").status_code == 202


@pytest.mark.parametrize("resource", ["invoices", "contacts"])
@pytest.mark.parametrize("body", ["[1, 2]", '"1,2"', "null"], ids=["array", "string", "null"])
def test_rest_a_body_that_is_not_a_json_object_is_a_400(user, organization, account, resource, body) -> None:
    response = client_for(user).post(f"/api/v1/{resource}/whatsapp/bulk", body, content_type="application/json")
    assert response.status_code == 400, response.content
    (error,) = response.json()["non_field_errors"]
    assert error.startswith("Invalid data. Expected a dictionary, but got")
    assert not BulkSend.objects.exists()


def test_rest_more_than_a_bulk_send_takes_is_a_field_error(user, organization, account) -> None:
    response = client_for(user).post(BULK, {"ids": list(range(1, MAX_SELECTION + 2))}, format="json")
    assert response.status_code == 400
    assert response.json()["ids"] == [f"Ensure this field has no more than {MAX_SELECTION} elements."]
    assert not BulkSend.objects.exists()


def test_rest_another_organizations_documents_are_not_found_and_nothing_of_them_is_shown(
    user, organization, account
) -> None:
    elsewhere = make_organization(name="Elsewhere")
    foreign = make_document(elsewhere, contact=make_contact(elsewhere, name="Globex Secret"))
    mine = make_document(organization)
    api = client_for(user)
    not_found = {"id": foreign.pk, "label": str(foreign.pk), "code": "not_found"}

    summary = api.get(f"{BULK}?ids={foreign.pk},{mine.pk}")
    started = api.post(BULK, {"ids": [foreign.pk, mine.pk]}, format="json")
    assert started.status_code == 202
    bulk_send_run(bulk_id=started.json()["bulk_id"])
    detail = api.get(f"/api/v1/whatsapp/bulk/{started.json()['bulk_id']}")

    assert [item | {"reason": ""} for item in summary.json()["skipped"]] == [not_found | {"reason": ""}]
    assert detail.json()["skipped"] == [not_found | {"reason": "Not found in this organization."}]
    assert detail.json()["sent"] == 1
    for response in (summary, started, detail):
        assert foreign.number not in response.content.decode() and "Globex" not in response.content.decode()
    assert not Message.objects.filter(document=foreign).exists()


def test_rest_the_bulk_send_links_to_its_messages(user, organization, mixed) -> None:
    good, others = mixed
    api = client_for(user)
    started = api.post(BULK, {"ids": ids(good, others)}, format="json").json()
    bulk_send_run(bulk_id=started["bulk_id"])
    again = api.post(BULK, {"ids": [good[0].pk]}, format="json", HTTP_IDEMPOTENCY_KEY="another").json()
    bulk_send_run(bulk_id=again["bulk_id"])  # another bulk send, to one of the same invoices

    link = urlsplit(api.get(f"/api/v1/whatsapp/bulk/{started['bulk_id']}").json()["messages_url"])
    assert (link.scheme, link.netloc, link.path) == ("http", "testserver", "/api/v1/whatsapp/messages")
    listed = api.get(f"{link.path}?{link.query}").json()["results"]
    assert sorted(row["document"]["id"] for row in listed) == sorted(d.pk for d in good)
    assert {row["status"] for row in listed} == {"queued"}


def test_rest_the_bulk_send_s_reasons_and_error_are_in_the_request_s_language(user, organization, mixed) -> None:
    good, others = mixed
    api = client_for(user)
    started = api.post(BULK, {"ids": [others["opted_out"].pk]}, format="json").json()
    bulk_send_run(bulk_id=started["bulk_id"])
    failed = api.post(BULK, {"ids": [good[0].pk]}, format="json", HTTP_IDEMPOTENCY_KEY="later").json()
    # Turned off between the request and the task: the bulk send fails as a whole.
    ModuleSetting.objects.filter(organization=organization, module=Module.INVOICES).update(enabled=False)
    bulk_send_run(bulk_id=failed["bulk_id"])

    contact = others["opted_out"].contact.display_name
    spanish = api.get(f"/api/v1/whatsapp/bulk/{started['bulk_id']}", HTTP_ACCEPT_LANGUAGE="es").json()
    assert spanish["skipped"][0]["reason"] == f"WhatsApp no está activado como canal de comunicación para {contact}."
    english = api.get(f"/api/v1/whatsapp/bulk/{started['bulk_id']}", HTTP_ACCEPT_LANGUAGE="en").json()
    assert english["skipped"][0]["reason"] == f"WhatsApp is not enabled as a communication channel for {contact}."
    error = api.get(f"/api/v1/whatsapp/bulk/{failed['bulk_id']}", HTTP_ACCEPT_LANGUAGE="es").json()
    assert error["state"] == "failed"
    assert error["error"].startswith("Las notificaciones de WhatsApp están desactivadas para Facturas.")
    assert error["skipped"][0]["reason"] == error["error"]


# --- Statements: one period for the whole bulk send, fixed when it starts -------------------------------

MARCH = (datetime.date(2025, 3, 1), datetime.date(2025, 3, 31))
CONTACTS_BULK = "/api/v1/contacts/whatsapp/bulk"


@pytest.fixture
def customers(organization, account):
    """Two customers, each with an invoice in March 2025 and a larger one in April: a statement for
    March closes on the March invoice alone."""
    make_approved_template(account, Module.CUSTOMER_STATEMENTS)
    customers = [make_contact(organization) for _ in range(2)]
    for customer in customers:
        make_document(
            organization,
            contact=customer,
            date=datetime.date(2025, 3, 10),
            lines=[LineInput("Audit", Decimal("1"), Decimal("1000.00"), Decimal("0"))],
        )
        make_document(organization, contact=customer, date=datetime.date(2025, 4, 5))
    return customers


def statement_text(organization, contact, start: datetime.date, end: datetime.date) -> str:
    """The statement module's test body for ``contact`` over ``start``–``end``."""
    closing = statement_build(contact=contact, from_date=start, to_date=end).closing_balance
    period = f"{date_format(start, organization=organization)} – {date_format(end, organization=organization)}"
    return (
        f"Dear {contact.display_name}, your statement for {period} is attached and shows "
        f"{money_format(closing, organization.currency, organization=organization)} due at the end. Thank you."
    )


def periods(**filters) -> set[tuple[datetime.date | None, datetime.date | None]]:
    return set(Message.objects.filter(**filters).values_list("statement_from", "statement_to"))


def test_every_statement_of_a_bulk_send_covers_the_period_it_was_started_with(organization, customers) -> None:
    bulk, _ = bulk_send_start(
        organization=organization,
        target="contacts",
        module=Module.CUSTOMER_STATEMENTS,
        ids=[c.pk for c in customers],
        statement_from=MARCH[0],
        statement_to=MARCH[1],
    )
    assert (bulk.statement_from, bulk.statement_to) == MARCH

    bulk = bulk_send_run(bulk_id=bulk.pk)

    assert bulk.sent == 2 and periods() == {MARCH}
    for customer in customers:
        message = Message.objects.get(contact=customer)
        # The body's period and closing balance are March's; the PDF is made from the same period at dispatch.
        assert message.content == statement_text(organization, customer, *MARCH)
        assert message.payload["media"]["source"] == "statement"
    assert statement_text(organization, customers[0], MARCH[0], datetime.date(2025, 4, 30)) != message.content


def test_the_default_period_is_this_month_to_today_when_the_bulk_send_starts_not_when_it_runs(
    organization, customers, monkeypatch
) -> None:
    monkeypatch.setattr(Organization, "today", lambda self: datetime.date(2025, 3, 31))
    plan = bulk_plan(
        organization=organization, target="contacts", module=Module.CUSTOMER_STATEMENTS, ids=[customers[0].pk]
    )
    assert (plan.statement_from, plan.statement_to) == MARCH and plan.sendable == 1
    bulk, _ = bulk_send_start(
        organization=organization, target="contacts", module=Module.CUSTOMER_STATEMENTS, ids=[customers[0].pk]
    )

    # The worker only gets to it after midnight: it still sends March's statement.
    monkeypatch.setattr(Organization, "today", lambda self: datetime.date(2025, 4, 1))
    bulk_send_run(bulk_id=bulk.pk)

    assert periods() == {MARCH}
    assert Message.objects.get().content == statement_text(organization, customers[0], *MARCH)


@pytest.mark.parametrize(
    ("start", "end", "code", "field"),
    [
        (datetime.date(2025, 3, 31), datetime.date(2025, 3, 1), "invalid_period", "from_date"),
        (None, datetime.date(2999, 1, 1), "period_in_future", "to_date"),
    ],
    ids=["ends-before-it-starts", "ends-after-today"],
)
def test_a_bad_period_refuses_the_bulk_send_as_a_whole(organization, customers, start, end, code, field) -> None:
    selection = {"target": "contacts", "module": Module.CUSTOMER_STATEMENTS, "ids": [c.pk for c in customers]}
    plan = bulk_plan(organization=organization, statement_from=start, statement_to=end, **selection)
    assert (plan.refusal.code, plan.refusal.field) == (code, field) and not plan.can_send
    with pytest.raises(NotificationRefused) as caught:
        bulk_send_start(organization=organization, statement_from=start, statement_to=end, **selection)
    assert (caught.value.code, caught.value.field) == (code, field)
    assert not BulkSend.objects.exists() and not Message.objects.exists()


def test_rest_contacts_bulk_sends_statements_for_the_period_asked(user, organization, customers) -> None:
    api = client_for(user)
    ids_ = [c.pk for c in customers]
    period = {"from_date": "2025-03-01", "to_date": "2025-03-31"}
    summary = api.get(CONTACTS_BULK, {"ids": ",".join(map(str, ids_)), "module": "customer_statements", **period})
    assert summary.status_code == 200, summary.content
    assert (summary.json()["from_date"], summary.json()["to_date"], summary.json()["will_send"]) == (
        "2025-03-01",
        "2025-03-31",
        2,
    )

    started = api.post(CONTACTS_BULK, {"ids": ids_, "module": "customer_statements", **period}, format="json")
    assert started.status_code == 202, started.content
    assert (started.json()["from_date"], started.json()["to_date"]) == ("2025-03-01", "2025-03-31")
    bulk_send_run(bulk_id=started.json()["bulk_id"])

    detail = api.get(f"/api/v1/whatsapp/bulk/{started.json()['bulk_id']}").json()
    assert (detail["module"], detail["from_date"], detail["to_date"], detail["sent"]) == (
        "customer_statements",
        "2025-03-01",
        "2025-03-31",
        2,
    )
    assert periods() == {MARCH}


def test_rest_without_a_period_vendor_statements_cover_this_month_to_today(user, organization, account) -> None:
    make_approved_template(account, Module.VENDOR_STATEMENTS)
    vendor = make_contact(organization, contact_type=ContactType.VENDOR)
    today = organization.today()

    started = client_for(user).post(CONTACTS_BULK, {"ids": [vendor.pk], "module": "vendor_statements"}, format="json")

    assert started.status_code == 202, started.content
    assert (started.json()["from_date"], started.json()["to_date"]) == (
        today.replace(day=1).isoformat(),
        today.isoformat(),
    )
    bulk_send_run(bulk_id=started.json()["bulk_id"])
    assert periods(contact=vendor) == {(today.replace(day=1), today)}


@pytest.mark.parametrize(
    ("period", "field", "error"),
    [
        ({"from_date": "2025-13-01"}, "from_date", "Date has wrong format."),
        ({"from_date": "2025-03-31", "to_date": "2025-03-01"}, "from_date", "The statement period ends before it"),
        ({"to_date": "2999-01-01"}, "to_date", "The statement period can't end after today."),
    ],
    ids=["not-a-date", "ends-before-it-starts", "ends-after-today"],
)
def test_rest_a_bad_period_is_a_400_naming_the_field(user, organization, customers, period, field, error) -> None:
    api = client_for(user)
    body = {"ids": [customers[0].pk], "module": "customer_statements", **period}

    started = api.post(CONTACTS_BULK, body, format="json")
    summary = api.get(CONTACTS_BULK, {**body, "ids": str(customers[0].pk)})

    for response in (started, summary):
        assert response.status_code == 400, response.content
        assert response.json()[field][0].startswith(error)
    assert not BulkSend.objects.exists()


def test_rest_the_same_key_with_another_period_is_a_conflict(user, organization, customers) -> None:
    api = client_for(user)
    body = {"ids": [customers[0].pk], "module": "customer_statements", "from_date": "2025-03-01"}

    first = api.post(CONTACTS_BULK, {**body, "to_date": "2025-03-31"}, format="json", HTTP_IDEMPOTENCY_KEY="s-1")
    other = api.post(CONTACTS_BULK, {**body, "to_date": "2025-03-15"}, format="json", HTTP_IDEMPOTENCY_KEY="s-1")
    again = api.post(CONTACTS_BULK, {**body, "to_date": "2025-03-31"}, format="json", HTTP_IDEMPOTENCY_KEY="s-1")

    assert first.status_code == 202 and other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert again.status_code == 202 and again.json()["bulk_id"] == first.json()["bulk_id"]
    assert BulkSend.objects.count() == 1


def test_rest_a_notice_module_ignores_the_dates_as_a_single_notice_does(user, organization, account) -> None:
    make_approved_template(account, Module.CUSTOMERS)
    customer = make_contact(organization)
    body = {"ids": [customer.pk], "module": "customers", "from_date": "2025-03-01", "to_date": "2025-03-31"}

    started = client_for(user).post(CONTACTS_BULK, body, format="json")

    assert started.status_code == 202, started.content
    assert (started.json()["from_date"], started.json()["to_date"]) == (None, None)
    bulk_send_run(bulk_id=started.json()["bulk_id"])
    assert periods(contact=customer) == {(None, None)}


def test_rest_the_contacts_bulk_path_documents_the_statement_period(user, organization) -> None:
    schema = client_for(user).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["components"]["schemas"]["ContactBulkRequestRequest"]["properties"]
    assert body["from_date"]["format"] == body["to_date"]["format"] == "date"
    summary = schema["paths"][CONTACTS_BULK]["get"]["parameters"]
    assert {"from_date", "to_date"} <= {parameter["name"] for parameter in summary}
    invoices = schema["paths"][BULK]
    assert "from_date" not in {parameter["name"] for parameter in invoices["get"]["parameters"]}
    body_ref = invoices["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref == "#/components/schemas/BulkRequestRequest"  # each path its own body
    progress = schema["components"]["schemas"]["BulkSend"]["properties"]
    assert progress["from_date"]["nullable"] is True and progress["to_date"]["format"] == "date"


def test_rest_vendor_statements_need_the_right_to_see_vendors(organization, account) -> None:
    clerk = UserFactory()
    sales_only = [Perm.NOTIFICATIONS_SEND, CONTACT_PERMS[ContactType.CUSTOMER].view]
    Role.objects.create(organization=organization, name="Sales desk", permissions=sales_only)
    membership_add(organization=organization, user=clerk, role_name="Sales desk")
    make_approved_template(account, Module.CUSTOMER_STATEMENTS)
    make_approved_template(account, Module.VENDOR_STATEMENTS)
    vendor = make_contact(organization, contact_type=ContactType.VENDOR)
    customer = make_contact(organization)
    api = client_for(clerk)

    vendors = api.post(CONTACTS_BULK, {"ids": [vendor.pk], "module": "vendor_statements"}, format="json")
    summary = api.get(CONTACTS_BULK, {"ids": str(vendor.pk), "module": "vendor_statements"})
    customers_ = api.post(CONTACTS_BULK, {"ids": [customer.pk], "module": "customer_statements"}, format="json")

    assert vendors.status_code == summary.status_code == 403
    assert customers_.status_code == 202
    assert list(BulkSend.objects.values_list("module", flat=True)) == ["customer_statements"]
