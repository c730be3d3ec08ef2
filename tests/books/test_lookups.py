"""``field__any=ids``: the rows of the ids given, as ``__in`` finds them, with one parameter."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from books.models import Contact, ContactPerson
from tests.books.factories import make_contact, make_organization

pytestmark = pytest.mark.django_db


def test_any_finds_what_in_finds_with_one_parameter() -> None:
    organization = make_organization()
    contacts = [make_contact(organization) for _ in range(4)]
    wanted = [contacts[0].pk, contacts[2].pk, contacts[3].pk, 10**9]  # one id that is nobody's

    with CaptureQueriesContext(connection) as queries:
        found = set(Contact.objects.filter(pk__any=wanted).values_list("pk", flat=True))
    assert found == set(Contact.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    assert found == {contacts[0].pk, contacts[2].pk, contacts[3].pk}
    if connection.vendor == "postgresql":
        assert "= ANY(" in queries[0]["sql"]
        assert " IN (" not in queries[0]["sql"]

    people = ContactPerson.objects.filter(contact_id__any=[contacts[1].pk])  # a foreign key's column
    assert {person.contact_id for person in people} == {contacts[1].pk}
    assert not Contact.objects.filter(pk__any=[]).exists()


def test_any_wants_a_list() -> None:
    with pytest.raises(TypeError, match="list"):
        list(Contact.objects.filter(pk__any="12"))
