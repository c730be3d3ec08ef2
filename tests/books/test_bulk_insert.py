"""``bulk_insert``: the rows written by COPY are the rows ``bulk_create`` writes."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Model
from django.db.models.signals import post_init
from django.utils import timezone

from books.bulk_insert import COPY_FROM, bulk_insert, model_new
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


def _attributes(instance: Model) -> dict:
    """The instance's field values as Python holds them, timestamps reduced to whether they are set."""
    return {
        field.attname: (value is not None)
        if isinstance(value := getattr(instance, field.attname), datetime.datetime)
        else value
        for field in instance._meta.concrete_fields
    }


def test_model_new_builds_what_the_constructor_builds(django_assert_num_queries):
    organization = make_organization()
    account = make_account(organization)
    contact = make_contact(organization)
    person = contact.persons.first()
    fields = {
        "organization": organization,
        "account": account,
        "phone_number_id": account.default_phone_number.pk,
        "direction": Direction.OUTBOUND,
        "message_type": MessageType.TEMPLATE,
        "phone": "+919820012345",
        "contact": contact,
        "contact_person": person,
        "document": None,
        "status": MessageStatus.QUEUED,
        "statement_from": datetime.date(2026, 4, 1),
    }

    built, expected = model_new(Message, **fields), Message(**fields)

    assert _attributes(built) == _attributes(expected)
    assert built._state.adding and built._state.db is None and built.pk is None
    assert built.payload == {} and built.payload is not expected.payload  # a fresh default each time
    with django_assert_num_queries(0):  # related objects passed in are cached, as the constructor does
        assert (built.organization, built.contact, built.contact_person) == (organization, contact, person)
    built.save()
    assert Message.objects.get(pk=built.pk).contact_person_id == person.pk


def test_model_new_refuses_what_the_constructor_refuses():
    organization = make_organization()
    with pytest.raises(TypeError, match="colour"):
        model_new(Reservation, organization=organization, colour="red")
    with pytest.raises(ValueError, match="Organization instance"):
        model_new(Reservation, organization=make_account(organization))


def test_model_new_calls_init_signal_receivers():
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append((sender, instance.reference))

    post_init.connect(receiver, sender=Reservation)
    try:
        model_new(Reservation, organization=make_organization(), reference="whatsapp.message:1")
    finally:
        post_init.disconnect(receiver, sender=Reservation)
    assert seen == [(Reservation, "whatsapp.message:1")]
