"""Two workers writing one bulk send at once, on PostgreSQL: each part is written by one of them,
every document gets one message and one reservation, and the bulk send ends done once."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from credits.models import Price, Reservation
from credits.services import credits_adjust
from templates_mgmt.choices import Module
from tests.books.factories import make_document, make_organization
from whatsapp.models import BulkSend, BulkSendPart, Message
from whatsapp.services import bulk as bulk_module
from whatsapp.services.bulk import bulk_send_parts_run, bulk_send_run, bulk_send_start

from .factories import make_account, make_approved_template

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_two_workers_write_the_parts_of_one_bulk_send_once(monkeypatch) -> None:
    organization = make_organization()
    credits_adjust(organization=organization, amount=Decimal("100"), note="opening", user=None)
    Price.objects.create(organization=organization, category="utility", country_code="", credits=Decimal("1"))
    make_approved_template(make_account(organization), Module.INVOICES)
    documents = [make_document(organization) for _ in range(8)]
    monkeypatch.setattr("whatsapp.services.dispatch._enqueue", lambda message_id: None)
    monkeypatch.setattr(bulk_module, "PART_SIZE", 2)
    woken: list[int] = []
    monkeypatch.setattr(bulk_module, "_enqueue_helper", woken.append)
    bulk, _ = bulk_send_start(
        organization=organization, target="documents", module=Module.INVOICES, ids=[d.pk for d in documents]
    )
    monkeypatch.setattr(bulk_module, "_enqueue", lambda bulk_id: None)

    # Both workers hold a part before either writes one: they really work side by side.
    both_claimed = threading.Barrier(2, timeout=30)
    writers: dict[int, str] = {}
    real_write = bulk_module._part_write

    def write(bulk, context, part):
        if threading.current_thread().name not in writers.values():
            both_claimed.wait()
        writers[part.index] = threading.current_thread().name
        return real_write(bulk, context, part)

    monkeypatch.setattr(bulk_module, "_part_write", write)
    errors: list[BaseException] = []

    def worker(run) -> None:
        try:
            run()
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=(lambda: bulk_send_run(bulk_id=bulk.pk),), name="first")
    first.start()
    while not BulkSendPart.objects.filter(bulk=bulk).exists() and first.is_alive():
        time.sleep(0.01)  # the first worker creates the parts; the helper starts once they exist
    helper = threading.Thread(target=worker, args=(lambda: bulk_send_parts_run(bulk_id=bulk.pk),), name="helper")
    helper.start()
    first.join(60)
    helper.join(60)

    assert not errors, errors
    assert woken == [bulk.pk] * 3
    assert sorted(writers) == [0, 1, 2, 3] and set(writers.values()) == {"first", "helper"}
    bulk = BulkSend.objects.get(pk=bulk.pk)
    assert bulk.state == "done" and bulk.sent == 8 and bulk.messages_queued == 8 and bulk.skipped == []
    assert sorted(Message.objects.values_list("document_id", flat=True)) == sorted(d.pk for d in documents)
    assert Reservation.objects.count() == 8
    assert set(BulkSendPart.objects.filter(bulk=bulk).values_list("state", flat=True)) == {"done"}
