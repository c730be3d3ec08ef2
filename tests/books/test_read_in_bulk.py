"""Rows read in bulk (documents, contacts, their people) load as Django's own ``from_db`` loads them."""

from __future__ import annotations

import pytest
from django.db.models.signals import post_init

from books.models import Contact, ContactPerson, Document
from tests.books.factories import make_document, make_organization

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_loaded_rows_equal_django_s_and_save_as_updates(django_assert_num_queries) -> None:
    organization = make_organization()
    document = make_document(organization)
    loaded = Document.objects.select_related("contact").get(pk=document.pk)
    reference = Document(*[getattr(document, f.attname) for f in Document._meta.concrete_fields])
    assert _fields(loaded) == _fields(reference)
    assert loaded._state.adding is False and loaded._state.db == "default"
    with django_assert_num_queries(0):
        assert loaded.contact.pk == document.contact_id  # select_related's contact is in the cache

    loaded.reference_number = "PO-1"
    loaded.save(update_fields=["reference_number"])
    assert Document.objects.count() == 1
    assert Document.objects.get(pk=document.pk).reference_number == "PO-1"


def test_a_deferred_column_is_read_when_asked(django_assert_num_queries) -> None:
    document = make_document(make_organization())
    person = ContactPerson.objects.defer("created_at", "email").get(contact_id=document.contact_id)
    assert "created_at" not in person.__dict__ and person.get_deferred_fields() == {"created_at", "email"}
    with django_assert_num_queries(1):
        assert person.created_at is not None


def test_with_a_post_init_receiver_django_s_own_from_db_runs() -> None:
    contact = make_document(make_organization()).contact
    seen = []

    def receiver(sender, instance, **kwargs) -> None:
        seen.append(instance)

    post_init.connect(receiver, sender=Contact)
    try:
        loaded = Contact.objects.get(pk=contact.pk)
    finally:
        post_init.disconnect(receiver, sender=Contact)
    assert seen == [loaded]
    assert _fields(loaded) == _fields(Contact.objects.get(pk=contact.pk))
