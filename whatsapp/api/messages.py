"""``/api/v1/whatsapp/messages``: the organization's WhatsApp messages, read-only.

Every message sent or received, with its status history, Meta's error and the fix hint, and the
pricing Meta reported. Sending arrives with the notification service; nothing here writes.

**Who may read which message.** A message is about a party: the customer or vendor it was sent
to or came from. The caller's role must allow viewing that party: ``customers.view`` for a
customer's messages, ``vendors.view`` for a vendor's. It is the rule of ``/contacts`` (whose
persons' numbers the messages carry) and of the contact's page in the browser, where the
messages tab will live; the document a message carries is one the party itself received. A
message from an unknown number (no contact) belongs to the shared inbox, so it needs one of the
communication permissions (``customers.communication``, ``vendors.communication``): the roles that
may answer it. The list shows only what the role may read; a role that may read no message at
all gets 403, and so does asking for one message it may not read. Another organization's
message is 404, as a message that does not exist.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from books.api.access import CONTACT_PERMS, OrganizationViewSet
from books.api.fields import MAX_DATE, MAX_ID, MIN_DATE
from books.models import Organization
from books.permissions import Perm
from books.phone import phone_normalize
from whatsapp.choices import Category, Direction, MediaState, MessageStatus, MessageType
from whatsapp.models import Message
from whatsapp.selectors.messages import message_get, message_list

#: Either grants the shared inbox: the messages of numbers that are no contact's.
COMMUNICATION_PERMS = (Perm.CUSTOMERS_COMMUNICATION, Perm.VENDORS_COMMUNICATION)

# --- Query parameters ----------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.STR)
class DateOrDateTimeField(serializers.Field):
    """An ISO date (a whole day in the organization's time zone) or an ISO date-time.

    A date-time without an offset is read in the organization's time zone, as a person typing
    "2026-03-01T09:00" means it.
    """

    default_error_messages = {
        "invalid": gettext_lazy("Enter a date (2026-03-01) or a date and time (2026-03-01T09:30:00+05:30)."),
        "range": gettext_lazy("Enter a date between %(min)s and %(max)s."),
    }

    def to_internal_value(self, data: Any) -> datetime.date | datetime.datetime:
        text = str(data).strip() if isinstance(data, str) else ""
        try:
            value: datetime.date | datetime.datetime | None = parse_date(text) if len(text) == 10 else None
            if value is None:
                value = parse_datetime(text)
        except ValueError:  # well-formed but impossible (2026-02-30)
            value = None
        if value is None:
            self.fail("invalid")
        day = value.date() if isinstance(value, datetime.datetime) else value
        if not MIN_DATE <= day <= MAX_DATE:
            self.fail("range", min=MIN_DATE, max=MAX_DATE)
        if isinstance(value, datetime.datetime) and timezone.is_naive(value):
            organization: Organization = self.context["organization"]
            value = timezone.make_aware(value, organization.tzinfo)
        return value

    def to_representation(self, value: Any) -> str:
        return value.isoformat()


def _id_field(help_text: Any) -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text=help_text)


class MessageFilterSerializer(serializers.Serializer):
    """Query parameters of ``GET /whatsapp/messages``."""

    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    document_id = _id_field(gettext_lazy("Messages about this document (any kind)."))
    contact_id = _id_field(gettext_lazy("Messages to or from this customer or vendor."))
    bulk = _id_field(gettext_lazy("Messages of this bulk send (its bulk_id), one per recipient."))
    phone = serializers.CharField(
        required=False,
        max_length=32,
        help_text=gettext_lazy(
            "The other party's number, with the country code (+91 98200 12345); without it, the "
            "organization's default region is assumed."
        ),
    )
    template_name = serializers.CharField(required=False, max_length=512, help_text=gettext_lazy("Exact name."))
    created_from = DateOrDateTimeField(
        required=False, help_text=gettext_lazy("Created on or after: a date (the whole day) or a date-time.")
    )
    created_to = DateOrDateTimeField(
        required=False, help_text=gettext_lazy("Created on or before: a date (the whole day) or a date-time.")
    )
    search_text = serializers.CharField(
        source="search",
        required=False,
        max_length=100,
        help_text=gettext_lazy("Part of the number, the wamid, the template name, the text or the contact's name."),
    )

    def validate_phone(self, value: str) -> str:
        try:
            return phone_normalize(value, region=self.context["organization"].phone_region)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("created_from"), attrs.get("created_to")
        if start is not None and end is not None and _comparable(start, end) > _comparable(end, start):
            raise serializers.ValidationError({"created_to": [_("This is before created_from.")]})
        return attrs


def _comparable(value: datetime.date, other: datetime.date) -> datetime.date:
    """``value`` as a date when either side is only a date (a day contains its instants)."""
    both_datetimes = isinstance(value, datetime.datetime) and isinstance(other, datetime.datetime)
    if isinstance(value, datetime.datetime) and not both_datetimes:
        return value.date()
    return value


# --- Representation ------------------------------------------------------------------------------

STATUS_HELP = gettext_lazy(
    "queued, sending, sent, delivered, read or failed for outbound messages; received for inbound ones."
)


class NamedRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class DocumentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text=gettext_lazy("invoice, salesorder, estimate, bill…"))
    number = serializers.CharField()


class MediaSerializer(serializers.Serializer):
    mime_type = serializers.CharField()
    filename = serializers.CharField()
    url = serializers.URLField(allow_null=True, help_text=gettext_lazy("Only once the file is stored in the hub."))


class StatusStepSerializer(serializers.Serializer):
    status = serializers.CharField(help_text=STATUS_HELP)
    at = serializers.DateTimeField()


class MessageErrorSerializer(serializers.Serializer):
    code = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("Meta's error code, e.g. 131026."))
    subcode = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    details = serializers.CharField()
    fix_hint = serializers.CharField(help_text=gettext_lazy("What to do about it, in plain language."))


class PricingSerializer(serializers.Serializer):
    type = serializers.CharField(help_text=gettext_lazy("Meta's pricing type, e.g. regular or free_customer_service."))
    category = serializers.CharField(help_text=gettext_lazy("Meta's pricing category, e.g. utility or marketing."))
    billable = serializers.BooleanField(allow_null=True)


class MessageSerializer(serializers.Serializer):
    """One WhatsApp message, sent or received."""

    id = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=Direction.choices)
    type = serializers.ChoiceField(source="message_type", choices=MessageType.choices)
    phone = serializers.CharField(help_text=gettext_lazy("The other party's number, in E.164."))
    wa_id = serializers.CharField()
    profile_name = serializers.CharField(help_text=gettext_lazy("The name the other party set in WhatsApp."))
    contact = serializers.SerializerMethodField()
    contact_person = serializers.SerializerMethodField()
    document = serializers.SerializerMethodField()
    template_id = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("The hub's message template."))
    template_name = serializers.CharField()
    template_language = serializers.CharField()
    module = serializers.CharField(help_text=gettext_lazy("The template module it was sent from, e.g. invoices."))
    category = serializers.ChoiceField(choices=Category.choices, allow_blank=True)
    content = serializers.CharField(help_text=gettext_lazy("The text as the recipient sees it."))
    reply_to_wamid = serializers.CharField(help_text=gettext_lazy("The message this one answers, if any."))
    media = serializers.SerializerMethodField()
    # A string, not an enum, in the schema: a second "status" choice set beside the contacts'
    # active/inactive one makes drf-spectacular name both by hash until SPECTACULAR_SETTINGS
    # gets ENUM_NAME_OVERRIDES for them.
    status = serializers.CharField(help_text=STATUS_HELP)
    wamid = serializers.CharField(allow_null=True, help_text=gettext_lazy("WhatsApp's id of the message."))
    status_history = serializers.SerializerMethodField()
    queued_at = serializers.DateTimeField(allow_null=True)
    sending_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    error = serializers.SerializerMethodField()
    pricing = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_contact(self, message: Message) -> dict[str, Any] | None:
        if message.contact_id is None:
            return None
        return {"id": message.contact_id, "name": message.contact.display_name}

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_contact_person(self, message: Message) -> dict[str, Any] | None:
        if message.contact_person_id is None:
            return None
        return {"id": message.contact_person_id, "name": message.contact_person.name}

    @extend_schema_field(DocumentRefSerializer(allow_null=True))
    def get_document(self, message: Message) -> dict[str, Any] | None:
        if message.document_id is None:
            return None
        return {"id": message.document_id, "kind": message.document.kind, "number": message.document.number}

    @extend_schema_field(MediaSerializer(allow_null=True))
    def get_media(self, message: Message) -> dict[str, Any] | None:
        if not (message.media_id or message.media_mime_type or message.media_file):
            return None
        url = None
        if message.media_state == MediaState.STORED and message.media_file:
            url = message.media_file.url
            request = self.context.get("request")
            if request is not None:
                url = request.build_absolute_uri(url)
        return {"mime_type": message.media_mime_type, "filename": message.media_filename, "url": url}

    @extend_schema_field(StatusStepSerializer(many=True))
    def get_status_history(self, message: Message) -> list[dict[str, Any]]:
        at = serializers.DateTimeField()
        return [{"status": status, "at": at.to_representation(when)} for status, when in message.status_history()]

    @extend_schema_field(MessageErrorSerializer(allow_null=True))
    def get_error(self, message: Message) -> dict[str, Any] | None:
        if message.error_code is None and not message.error_title:
            return None
        return {
            "code": message.error_code,
            "subcode": message.error_subcode,
            "title": message.error_title,
            "details": message.error_details,
            "fix_hint": message.fix_hint,
        }

    @extend_schema_field(PricingSerializer(allow_null=True))
    def get_pricing(self, message: Message) -> dict[str, Any] | None:
        if not message.pricing_type and not message.pricing_category and message.billable is None:
            return None
        return {"type": message.pricing_type, "category": message.pricing_category, "billable": message.billable}


# --- The view --------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List WhatsApp messages", parameters=[MessageFilterSerializer]),
    retrieve=extend_schema(summary="Get a WhatsApp message"),
)
class MessageViewSet(OrganizationViewSet):
    """WhatsApp messages sent and received, newest first, with their status history and errors."""

    queryset = Message.objects.all()
    serializer_class = MessageSerializer
    lookup_url_kwarg = "message_id"

    def check_role(self, request: Request) -> None:
        if self.visible() is None:
            raise exceptions.PermissionDenied(_("Your role does not allow reading WhatsApp messages."))

    def visible(self) -> Q | None:
        """The messages the caller's role may read, as a filter; ``None`` when it may read none."""
        parts: list[Q] = []
        types = [kind for kind, perms in CONTACT_PERMS.items() if self.membership.has_perm(perms.view)]
        if types:
            parts.append(Q(contact__contact_type__in=types))
        if any(self.membership.has_perm(perm) for perm in COMMUNICATION_PERMS):
            parts.append(Q(contact__isnull=True))
        if not parts:
            return None
        combined = parts[0]
        for part in parts[1:]:
            combined |= part
        return combined

    def may_read(self, message: Message) -> bool:
        if message.contact_id is None:
            return any(self.membership.has_perm(perm) for perm in COMMUNICATION_PERMS)
        return self.membership.has_perm(CONTACT_PERMS[message.contact.contact_type].view)

    def organization_queryset(self) -> QuerySet[Message]:
        return message_list(organization=self.organization).filter(self.visible())

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        filters = MessageFilterSerializer(data=request.query_params, context=self.get_serializer_context())
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        bulk_id = values.pop("bulk", None)
        queryset = message_list(organization=self.organization, **values).filter(self.visible())
        if bulk_id is not None:  # the list is the organization's: another one's bulk send lists nothing
            queryset = queryset.filter(bulk_id=bulk_id)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def get_object(self) -> Message:
        pk = int(self.kwargs[self.lookup_url_kwarg])
        try:
            if pk > MAX_ID:
                raise Message.DoesNotExist
            message = message_get(organization=self.organization, pk=pk)
        except Message.DoesNotExist:
            raise exceptions.NotFound(_("Message not found.")) from None
        if not self.may_read(message):
            raise exceptions.PermissionDenied(_("Your role does not allow reading this contact's messages."))
        return message
