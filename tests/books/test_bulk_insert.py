"""``bulk_insert``: the rows written by COPY are the rows ``bulk_create`` writes."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from books.bulk_insert import COPY_FROM, bulk_insert
from credits.models import Reservation
from tests.books.factories import make_contact, make_organization
from tests.whatsapp.factories import make_account
from whatsapp.choices import Direction, MessageStatus, MessageType
from whatsapp.models import Message

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _stored(model: type[Model], pks: list[int]) -> list[dict]:
    """The rows as the database has them, without their ids and with each timestamp reduced to
    whether it is set (the two writes happen at different instants)."""
    rows = model.objects.filter(pk__in=pks).order_by("pk").values()
    return [
        {
            key: (value is not None) if isinstance(value, datetime.datetime) else value
            for key, value in row.items()
            if key != "id"
        }
        for row in rows
    ]


def _messages(n: int, *, organization, account, contact) -> list[Message]:
    person = contact.persons.first()
    return [
        Message(
            organization=organization,
            account=account,
            phone_number=account.default_phone_number,
            direction=Direction.OUTBOUND,
            message_type=MessageType.TEMPLATE,
            phone=f"+9198200{i:05d}",
            contact=contact,
            contact_person=person,
            template_name="payment_reminder",
            template_language="en",
            category="utility",
            content=f"Dear {contact.display_name}, ₹{i},00 is due.\n\tThanks — \\ \"quoted\" 'single'",
            statement_from=datetime.date(2026, 4, 1),
            payload={"type": "template", "template": {"name": "payment_reminder", "n": i, "nested": [None, True]}},
            status=MessageStatus.QUEUED,
            queued_at=timezone.now(),
        )
        for i in range(n)
    ]


def test_copy_writes_what_bulk_create_writes():
    assert connection.vendor == "postgresql"
    organization = make_organization()
    account = make_account(organization)
    contact = make_contact(organization, mobile="+919820012345")
    count = COPY_FROM + 6

    copied = bulk_insert(_messages(count, organization=organization, account=account, contact=contact))
    created = Message.objects.bulk_create(_messages(count, organization=organization, account=account, contact=contact))

    assert all(message.pk is not None and not message._state.adding for message in copied)
    assert len({message.pk for message in copied}) == count
    assert _stored(Message, [m.pk for m in copied]) == _stored(Message, [m.pk for m in created])
    # The ids came from the table's sequence: the next row continues after them.
    later = Message.objects.create(
        organization=organization, account=account, direction=Direction.OUTBOUND, phone="+919820012345"
    )
    assert later.pk > max(m.pk for m in copied + created)
    # auto_now_add and defaults were applied as bulk_create applies them.
    assert all(row.created_at is not None for row in Message.objects.filter(pk__in=[m.pk for m in copied]))


def test_copy_of_reservations_keeps_amounts_and_order():
    organization = make_organization()
    rows = [
        Reservation(
            organization=organization,
            reference=f"wa:{i}",
            amount=Decimal("0.25") * (i + 1),
            category="utility",
            country_code="91",
            created_at=timezone.now(),
        )
        for i in range(COPY_FROM * 2)
    ]
    saved = bulk_insert(rows)
    assert [r.reference for r in saved] == [f"wa:{i}" for i in range(COPY_FROM * 2)]
    by_pk = dict(Reservation.objects.filter(organization=organization).values_list("pk", "amount"))
    assert [by_pk[r.pk] for r in saved] == [Decimal("0.25") * (i + 1) for i in range(COPY_FROM * 2)]
    assert [r.pk for r in saved] == sorted(r.pk for r in saved)


def test_few_rows_and_empty_input():
    organization = make_organization()
    assert bulk_insert([]) == []
    few = bulk_insert(
        [Reservation(organization=organization, reference="wa:one", amount=Decimal("1"), created_at=timezone.now())]
    )
    assert Reservation.objects.get(pk=few[0].pk).reference == "wa:one"
