"""Reads of WhatsApp messages: the REST API's list, a document's history, a contact's messages.

Every function starts from one organization (or from a document or contact, which belong to
one), so a row of another tenant is never returned. Each selects the relations its readers show
(the contact, the contact person, the document, the business number), so a page of messages is
one query whatever its length.
"""

from __future__ import annotations

import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from books.models import Contact, Document, Organization
from whatsapp.models import Message

#: What lists of messages show for each row: who (contact, person), about what (document), from which number.
LIST_RELATIONS = ("contact", "contact_person", "document", "phone_number")

DateOrDateTime = datetime.date | datetime.datetime


def _day_start(value: datetime.date, organization: Organization) -> datetime.datetime:
    """Midnight of ``value`` in the organization's time zone (a calendar day means its day there)."""
    return timezone.make_aware(datetime.datetime.combine(value, datetime.time.min), organization.tzinfo)


def message_list(
    *,
    organization: Organization,
    status: str | None = None,
    direction: str | None = None,
    document: Document | None = None,
    document_id: int | None = None,
    contact_id: int | None = None,
    phone: str | None = None,
    template_name: str | None = None,
    created_from: DateOrDateTime | None = None,
    created_to: DateOrDateTime | None = None,
    search: str | None = None,
) -> QuerySet[Message]:
    """Messages of ``organization``, newest first, narrowed by whichever filters are given.

    ``phone`` is the other party's number in E.164, matched exactly. ``created_from`` and
    ``created_to`` are inclusive: a date covers its whole day in the organization's time zone,
    a datetime is an instant. ``search`` looks in the number, the wamid, the template name, the
    text and the contact's name.
    """
    queryset = Message.objects.filter(organization=organization).select_related(*LIST_RELATIONS)
    if status:
        queryset = queryset.filter(status=status)
    if direction:
        queryset = queryset.filter(direction=direction)
    if document is not None:
        queryset = queryset.filter(document=document)
    if document_id is not None:
        queryset = queryset.filter(document_id=document_id)
    if contact_id is not None:
        queryset = queryset.filter(contact_id=contact_id)
    if phone:
        queryset = queryset.filter(phone=phone)
    if template_name:
        queryset = queryset.filter(template_name=template_name)
    if created_from is not None:
        start = created_from if isinstance(created_from, datetime.datetime) else _day_start(created_from, organization)
        queryset = queryset.filter(created_at__gte=start)
    if created_to is not None:
        if isinstance(created_to, datetime.datetime):
            queryset = queryset.filter(created_at__lte=created_to)
        else:
            queryset = queryset.filter(created_at__lt=_day_start(created_to + datetime.timedelta(days=1), organization))
    if search:
        queryset = queryset.filter(
            Q(phone__icontains=search)
            | Q(wamid__icontains=search)
            | Q(template_name__icontains=search)
            | Q(content__icontains=search)
            | Q(profile_name__icontains=search)
            | Q(contact__display_name__icontains=search)
        )
    return queryset.order_by("-created_at", "-pk")


def message_get(*, organization: Organization, pk: int) -> Message:
    """One message of ``organization``; raises ``Message.DoesNotExist`` for another organization's."""
    return message_list(organization=organization).get(pk=pk)


def document_messages(*, document: Document) -> QuerySet[Message]:
    """The messages about ``document`` (its Comments & History), newest first, in one query."""
    return (
        Message.objects.filter(organization_id=document.organization_id, document=document)
        .select_related(*LIST_RELATIONS, "created_by")
        .order_by("-created_at", "-pk")
    )


def contact_messages(*, contact: Contact) -> QuerySet[Message]:
    """The messages to and from ``contact`` and its persons (its "Mails & messages" tab), newest first."""
    return (
        Message.objects.filter(organization_id=contact.organization_id, contact=contact)
        .select_related(*LIST_RELATIONS, "created_by")
        .order_by("-created_at", "-pk")
    )
