"""``POST /api/v1/{resource}/{id}/whatsapp``: send a document (or a contact's notice or statement)
over WhatsApp.

One path per document resource of the books API (``invoices``, ``salesorders``, ``estimates``,
``retainerinvoices``, ``creditnotes``, ``salesreceipts``, ``customerpayments``) and one for
``contacts``. The body names the template (the module's default when absent) and the contact
persons (the document's "Share with" people who can receive WhatsApp when absent). The answer is
``202 Accepted`` with one message per recipient, queued: statuses follow in
``/api/v1/whatsapp/messages``. ``GET`` on the same path answers what a send would do — template,
recipients and whether each can receive it, the credits needed, and the rule that would refuse it.

**Idempotency.** With an ``Idempotency-Key`` header, a repeated request answers with the first
request's messages and sends (and charges) nothing again; the same key with a different body
answers 409. A refused request is not remembered: after fixing the cause, the same key sends.

A refusal is a 400 that says which rule failed, in ``code`` (stable) and ``message`` (for people),
with the field at fault when there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from books.api.access import CONTACT_PERMS, DOCUMENT_PERMS, OrganizationViewSet
from books.api.fields import MAX_ID
from books.api.serializers.documents import id_field_name
from books.choices import ContactType
from books.kinds import KINDS, KINDS_BY_RESOURCE, KindSpec
from books.models import Contact, ContactPerson, Document
from books.permissions import Perm
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.modules import MODULES
from whatsapp.models import BulkSend, Message
from whatsapp.services.bulk import MAX_SELECTION, Period, bulk_plan, bulk_progress, bulk_send_start
from whatsapp.services.bulk_pause import bulk_send_resume
from whatsapp.services.notifications import (
    KIND_MODULES,
    IdempotencyConflict,
    NotificationPlan,
    NotificationRefused,
    Subject,
    notification_plan,
    notification_send,
    subject_for_contact,
    subject_for_document,
)

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=gettext_lazy(
        "Any unique string (a UUID). Retrying with the same key and body returns the first answer and sends "
        "nothing again; the same key with a different body answers 409."
    ),
)
MAX_KEY_LENGTH = 255


class SendSerializer(serializers.Serializer):
    template_id = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text=gettext_lazy("Default: the module's default template.")
    )
    contact_persons = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        allow_empty=False,
        max_length=50,
        help_text=gettext_lazy("Contact person ids. Default: the document's “Share with” people who have WhatsApp."),
    )


class ContactSendSerializer(SendSerializer):
    module = serializers.ChoiceField(
        choices=[(spec.module, Module(spec.module).label) for spec in MODULES.values() if spec.document_kind is None],
        required=False,
        help_text=gettext_lazy(
            "customers or vendors (a notice), customer_statements or vendor_statements (the statement). "
            "Default: customers or vendors."
        ),
    )
    from_date = serializers.DateField(required=False, help_text=gettext_lazy("Statement period start."))
    to_date = serializers.DateField(required=False, help_text=gettext_lazy("Statement period end."))


class SentMessageSerializer(serializers.ModelSerializer):
    message_id = serializers.IntegerField(source="pk")
    contact_person_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Message
        fields = ["message_id", "contact_person_id", "phone", "status", "template_name", "category"]


SEND_RESPONSE = inline_serializer(
    "WhatsAppSendResponse",
    {
        "message_ids": serializers.ListField(child=serializers.IntegerField()),
        "messages": SentMessageSerializer(many=True),
        "replayed": serializers.BooleanField(),
    },
)
PLAN_RESPONSE = inline_serializer(
    "WhatsAppSendPlan",
    {
        "module": serializers.CharField(),
        "template_id": serializers.IntegerField(allow_null=True),
        "templates": serializers.ListField(child=serializers.DictField()),
        "recipients": serializers.ListField(child=serializers.DictField()),
        "preview": serializers.CharField(),
        "credits_needed": serializers.DecimalField(max_digits=14, decimal_places=2),
        "credits_available": serializers.DecimalField(max_digits=14, decimal_places=2),
        "can_send": serializers.BooleanField(),
        "refusal": serializers.DictField(allow_null=True),
    },
)


class _SendViewSet(OrganizationViewSet):
    """The shared part: permissions, body reading, the service call and the answers."""

    request_serializer: ClassVar[type[SendSerializer]] = SendSerializer

    def check_role(self, request: Request) -> None:
        self.require(Perm.NOTIFICATIONS_SEND)
        self.require(self.party_perm(request))

    def party_perm(self, request: Request) -> Perm:
        raise NotImplementedError

    def subject(self, data: dict[str, Any]) -> Subject:
        raise NotImplementedError

    def _read(self, request: Request, data: Any) -> tuple[Subject, MessageTemplate | None, list[ContactPerson] | None]:
        serializer = self.request_serializer(data=data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        try:
            subject = self.subject(values)
        except NotificationRefused as refusal:
            raise _bad_request(refusal) from None
        template = None
        if "template_id" in values:
            template = MessageTemplate.objects.filter(organization=self.organization, pk=values["template_id"]).first()
            if template is None:
                raise exceptions.ValidationError({"template_id": [_("No message template with this id.")]})
        persons = None
        if "contact_persons" in values:
            wanted = list(dict.fromkeys(values["contact_persons"]))
            found = {person.pk: person for person in subject.contact.persons.filter(pk__in=wanted)}
            missing = [pk for pk in wanted if pk not in found]
            if missing:
                raise exceptions.ValidationError(
                    {
                        "contact_persons": [
                            _("%(ids)s: not contact persons of %(contact)s.")
                            % {"ids": ", ".join(map(str, missing)), "contact": subject.contact.display_name}
                        ]
                    }
                )
            persons = [found[pk] for pk in wanted]
        return subject, template, persons

    def plan(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        subject, template, persons = self._read(request, request.query_params)
        return Response(_plan_json(notification_plan(subject=subject, template=template, contact_persons=persons)))

    def send(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError(
                {"Idempotency-Key": [_("Use at most %(max)d characters.") % {"max": MAX_KEY_LENGTH}]}
            )
        subject, template, persons = self._read(request, request.data)
        try:
            result = notification_send(
                subject=subject, template=template, contact_persons=persons, user=request.user, idempotency_key=key
            )
        except NotificationRefused as refusal:
            raise _bad_request(refusal) from None
        except IdempotencyConflict as conflict:
            return Response({"code": "idempotency_conflict", "message": str(conflict)}, status=status.HTTP_409_CONFLICT)
        return Response(
            {
                "message_ids": [message.pk for message in result.messages],
                "messages": SentMessageSerializer(result.messages, many=True).data,
                "replayed": result.replayed,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class DocumentSendViewSet(_SendViewSet):
    spec: ClassVar[KindSpec]
    queryset = Document.objects.all()

    def party_perm(self, request: Request) -> Perm:
        return DOCUMENT_PERMS[self.spec.party].view

    def organization_queryset(self) -> QuerySet[Document]:
        return Document.objects.filter(organization=self.organization, kind=self.spec.kind).select_related(
            "organization", "contact"
        )

    def subject(self, data: dict[str, Any]) -> Subject:
        document = self.get_object()
        return subject_for_document(document=document, module=data.get("module"))


class ContactSendViewSet(_SendViewSet):
    queryset = Contact.objects.all()
    request_serializer = ContactSendSerializer
    lookup_url_kwarg = "contact_id"

    def check_role(self, request: Request) -> None:
        # The contact's type (customer or vendor) decides the view permission; it is checked in
        # ``subject`` once the contact is found. Here: may the caller see any contact at all.
        self.require(Perm.NOTIFICATIONS_SEND)
        if not any(self.membership.has_perm(pair.view) for pair in CONTACT_PERMS.values()):
            self.require(CONTACT_PERMS[ContactType.CUSTOMER].view)

    def organization_queryset(self) -> QuerySet[Contact]:
        return Contact.objects.filter(organization=self.organization).select_related("organization")

    def subject(self, data: dict[str, Any]) -> Subject:
        contact = self.get_object()
        self.require(CONTACT_PERMS[contact.contact_type].view)
        return subject_for_contact(
            contact=contact,
            module=data.get("module"),
            statement_from=data.get("from_date"),
            statement_to=data.get("to_date"),
        )


def _bad_request(refusal: NotificationRefused) -> exceptions.ValidationError:
    detail: dict[str, Any] = refusal.as_dict()
    if refusal.field:
        detail[refusal.field] = [refusal.message]
    return exceptions.ValidationError(detail)


def _plan_json(plan: NotificationPlan) -> dict[str, Any]:
    return {
        "module": plan.subject.module,
        "template_id": plan.template.pk if plan.template else None,
        "templates": [
            {"template_id": t.pk, "name": t.name, "language": t.language, "is_default": t.is_default}
            for t in plan.templates
        ],
        "recipients": [
            {
                "contact_person_id": check.person.pk,
                "name": check.person.name,
                "phone": check.phone,
                "can_receive": check.ok,
                "selected": check.person.pk in plan.selected_ids,
                "code": check.code,
                "problem": check.problem,
            }
            for check in plan.recipients
        ],
        "preview": plan.preview.body if plan.preview else "",
        "credits_needed": str(plan.credits_needed),
        "credits_available": str(plan.credits_available),
        "can_send": plan.refusal is None,
        "refusal": plan.refusal.as_dict() if plan.refusal else None,
    }


def _own(method: Callable[..., Response]) -> Callable[..., Response]:
    """``method`` as a function of one viewset's own: extend_schema marks the function it is given,
    and the base's is every path's (each path's schema, its operationId too, would be the last one
    set)."""

    def action(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        return method(self, request, *args, **kwargs)

    action.__name__, action.__doc__ = method.__name__, method.__doc__
    return action


def document_send_viewset(spec: KindSpec) -> type[DocumentSendViewSet]:
    """The viewset of ``/api/v1/<spec.api_resource>/{id}/whatsapp``."""
    label = spec.label
    modules = [(module, Module(module).label) for module, m in MODULES.items() if m.document_kind == spec.kind]
    module_field = serializers.ChoiceField(
        choices=modules,
        required=False,
        help_text=gettext_lazy("The template module; another module of the same kind, e.g. payment_reminders."),
    )
    name = "".join(part.title() for part in spec.kind.split("_"))
    serializer = type(f"{name}WhatsAppSendSerializer", (SendSerializer,), {"module": module_field})
    viewset = type(
        f"{name}WhatsAppViewSet",
        (DocumentSendViewSet,),
        {"spec": spec, "lookup_url_kwarg": id_field_name(spec), "request_serializer": serializer},
    )
    viewset.send = extend_schema(
        summary=f"Send the {str(label).lower()} over WhatsApp",
        request=serializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: SEND_RESPONSE},
        operation_id=f"{spec.api_resource}_whatsapp_send",
    )(_own(viewset.send))
    viewset.plan = extend_schema(
        summary=f"What sending the {str(label).lower()} over WhatsApp would do",
        parameters=[serializer],
        responses={200: PLAN_RESPONSE},
        operation_id=f"{spec.api_resource}_whatsapp_plan",
    )(_own(viewset.plan))
    return viewset


ContactSendViewSet.send = extend_schema(
    summary="Send a notice or the statement to a customer or vendor over WhatsApp",
    request=ContactSendSerializer,
    parameters=[IDEMPOTENCY_KEY_PARAMETER],
    responses={202: SEND_RESPONSE},
    operation_id="contacts_whatsapp_send",
)(_own(ContactSendViewSet.send))
ContactSendViewSet.plan = extend_schema(
    summary="What sending a notice or the statement over WhatsApp would do",
    parameters=[ContactSendSerializer],
    responses={200: PLAN_RESPONSE},
    operation_id="contacts_whatsapp_plan",
)(_own(ContactSendViewSet.plan))

#: Resource → viewset, for every document kind a template module sends.
SEND_VIEWSETS: dict[str, type[DocumentSendViewSet]] = {
    resource: document_send_viewset(spec)
    for resource, spec in KINDS_BY_RESOURCE.items()
    if spec.kind in KIND_MODULES and spec.kind in KINDS
}


# --- Bulk: POST /api/v1/{resource}/whatsapp/bulk, GET /api/v1/whatsapp/bulk/{bulk_id} ---------------


class BulkRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        allow_empty=False,
        max_length=MAX_SELECTION,
        help_text=gettext_lazy("The documents (or contacts) to send, at most 10,000."),
    )
    template_id = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text=gettext_lazy("Default: the module's default template.")
    )
    module = serializers.CharField(required=False, help_text=gettext_lazy("Default: the resource's module."))


#: The statement period's fields, as in the single send's (``ContactSendSerializer``).
PERIOD_FIELDS = ("from_date", "to_date")


class ContactBulkRequestSerializer(BulkRequestSerializer):
    module = serializers.CharField(
        required=False,
        help_text=gettext_lazy(
            "customers or vendors (a notice), customer_statements or vendor_statements (the statement). "
            "Default: customers."
        ),
    )
    from_date = serializers.DateField(
        required=False,
        help_text=gettext_lazy(
            "Statement period start, the same for every statement of the bulk send. Default: the first day of "
            "the current month. Ignored by the notice modules."
        ),
    )
    to_date = serializers.DateField(
        required=False,
        help_text=gettext_lazy("Statement period end, not after today. Default: today. Ignored by the notice modules."),
    )


class BulkSendSerializer(serializers.ModelSerializer):
    bulk_id = serializers.IntegerField(source="pk")
    template_id = serializers.IntegerField(allow_null=True)
    from_date = serializers.DateField(
        source="statement_from",
        allow_null=True,
        help_text=gettext_lazy(
            "First day of the period every statement covers, fixed when the bulk send started; null for a module "
            "that sends no statements."
        ),
    )
    to_date = serializers.DateField(
        source="statement_to",
        allow_null=True,
        help_text=gettext_lazy("Last day of that period; null for a module that sends no statements."),
    )
    status_counts = serializers.SerializerMethodField()
    percent = serializers.SerializerMethodField()
    messages_url = serializers.SerializerMethodField(
        help_text=gettext_lazy("Its messages with their statuses: the messages list filtered by this bulk send.")
    )

    class Meta:
        model = BulkSend
        fields = [
            "bulk_id",
            "target",
            "module",
            "template_id",
            "from_date",
            "to_date",
            "state",
            "total",
            "sent",
            "messages_queued",
            "skipped",
            "error",
            "paused_at",
            "pause_reason",
            "status_counts",
            "percent",
            "messages_url",
            "created_at",
            "finished_at",
        ]

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_status_counts(self, bulk: BulkSend) -> dict[str, int]:
        return self.context["progress"].counts

    def get_percent(self, bulk: BulkSend) -> int:
        return self.context["progress"].percent

    @extend_schema_field(OpenApiTypes.URI)
    def get_messages_url(self, bulk: BulkSend) -> str:
        query = urlencode({"bulk": bulk.pk, "organization_id": bulk.organization_id})
        return self.context["request"].build_absolute_uri(f"{reverse('whatsapp-api:message-list')}?{query}")


class _BulkViewSet(OrganizationViewSet):
    """``POST`` starts a bulk send (202, the work happens in Celery); ``GET ?ids=…`` is the summary."""

    target: ClassVar[str]
    default_module: ClassVar[str]
    modules: ClassVar[tuple[str, ...]]
    request_serializer: ClassVar[type[BulkRequestSerializer]] = BulkRequestSerializer

    def check_role(self, request: Request) -> None:
        self.require(Perm.NOTIFICATIONS_SEND)
        self.require(self.party_perm(self.request_fields()))

    def request_fields(self) -> Mapping[str, Any]:
        """The request's fields: its query (GET) or its JSON body (POST), which must be an object.
        Read before the role is checked (the contacts' module decides it): anything else is a 400
        here, as the body's serializer would say it."""
        data = self.request.data if self.request.method == "POST" else self.request.query_params
        if not isinstance(data, Mapping):
            message = serializers.Serializer.default_error_messages["invalid"].format(datatype=type(data).__name__)
            raise exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]})
        return data

    def party_perm(self, fields: Mapping[str, Any]) -> Perm:
        raise NotImplementedError

    def _read(self, data: Any) -> tuple[str, MessageTemplate | None, list[int], Period]:
        serializer = self.request_serializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        module = values.get("module") or self.default_module
        if module not in self.modules:
            raise exceptions.ValidationError({"module": [_("Choose one of: %(m)s.") % {"m": ", ".join(self.modules)}]})
        template = None
        if "template_id" in values:
            # A deleted template is no template, as on the summary page: never the default in its place.
            template = (
                MessageTemplate.objects.filter(organization=self.organization, pk=values["template_id"])
                .exclude(status=TemplateStatus.DELETED)
                .first()
            )
            if template is None:
                raise exceptions.ValidationError({"template_id": [_("No message template with this id.")]})
        # As asked for: the service fixes the period (its defaults) and checks it, or ignores it
        # for a module that sends no statements.
        return module, template, values["ids"], (values.get("from_date"), values.get("to_date"))

    def summary(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = request.query_params
        data: dict[str, Any] = {"ids": [pk for value in params.getlist("ids") for pk in value.split(",") if pk]}
        data.update({key: params[key] for key in ("template_id", "module", *PERIOD_FIELDS) if key in params})
        module, template, ids, period = self._read(data)
        plan = bulk_plan(
            organization=self.organization,
            target=self.target,
            module=module,
            ids=ids,
            template=template,
            statement_from=period[0],
            statement_to=period[1],
        )
        if plan.refusal is not None and plan.refusal.field in PERIOD_FIELDS:
            raise _bad_request(plan.refusal)  # the request's dates, as on POST
        return Response(
            {
                "module": plan.module,
                "template_id": plan.template.pk if plan.template else None,
                "from_date": plan.statement_from,
                "to_date": plan.statement_to,
                "total": plan.total,
                "will_send": plan.sendable,
                "messages": plan.messages,
                "skipped": [item.as_dict() for item in plan.skipped],
                "credits_needed": str(plan.credits_needed),
                "credits_available": str(plan.credits_available),
                "can_send": plan.can_send,
                "refusal": plan.refusal.as_dict() if plan.refusal else None,
            }
        )

    def start(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError(
                {"Idempotency-Key": [_("Use at most %(max)d characters.") % {"max": MAX_KEY_LENGTH}]}
            )
        module, template, ids, period = self._read(request.data)
        try:
            bulk, _created = bulk_send_start(
                organization=self.organization,
                target=self.target,
                module=module,
                ids=ids,
                template=template,
                statement_from=period[0],
                statement_to=period[1],
                user=request.user,
                idempotency_key=key,
            )
        except NotificationRefused as refusal:
            raise _bad_request(refusal) from None
        except IdempotencyConflict as conflict:
            return Response({"code": "idempotency_conflict", "message": str(conflict)}, status=status.HTTP_409_CONFLICT)
        return Response(bulk_json(bulk, request), status=status.HTTP_202_ACCEPTED)


def bulk_json(bulk: BulkSend, request: Request) -> dict[str, Any]:
    """The bulk send's progress, its skipped ones' reasons in the request's language."""
    return BulkSendSerializer(bulk, context={"progress": bulk_progress(bulk=bulk), "request": request}).data


class DocumentBulkViewSet(_BulkViewSet):
    target = BulkSend.Target.DOCUMENTS
    spec: ClassVar[KindSpec]

    def party_perm(self, fields: Mapping[str, Any]) -> Perm:
        return DOCUMENT_PERMS[self.spec.party].view


class ContactBulkViewSet(_BulkViewSet):
    target = BulkSend.Target.CONTACTS
    default_module = Module.CUSTOMERS
    modules = (Module.CUSTOMERS, Module.VENDORS, Module.CUSTOMER_STATEMENTS, Module.VENDOR_STATEMENTS)
    request_serializer = ContactBulkRequestSerializer

    def party_perm(self, fields: Mapping[str, Any]) -> Perm:
        vendor = fields.get("module") in (Module.VENDORS, Module.VENDOR_STATEMENTS)  # (the field is unchecked yet)
        return CONTACT_PERMS[ContactType.VENDOR if vendor else ContactType.CUSTOMER].view


class BulkSendViewSet(OrganizationViewSet):
    """``GET /api/v1/whatsapp/bulk/{bulk_id}``: a bulk send's progress and what it skipped (the
    reasons in the request's language), with ``messages_url``: its messages and their statuses.

    ``paused_at`` and ``pause_reason`` say when and why Meta's spam limit (131048) paused it: its
    queued messages wait until ``POST /api/v1/whatsapp/bulk/{bulk_id}/resume`` releases them."""

    queryset = BulkSend.objects.all()
    lookup_url_kwarg = "bulk_id"

    def check_role(self, request: Request) -> None:
        self.require(Perm.NOTIFICATIONS_SEND)

    def organization_queryset(self) -> QuerySet[BulkSend]:
        return BulkSend.objects.filter(organization=self.organization)

    @extend_schema(summary="A bulk WhatsApp send's progress", responses={200: BulkSendSerializer})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(bulk_json(self.get_object(), request))

    @extend_schema(
        summary="Resume a paused bulk WhatsApp send",
        description=gettext_lazy(
            "Its held messages go out again. A bulk send that is not paused is answered as it is, unchanged."
        ),
        request=None,
        responses={200: BulkSendSerializer},
    )
    def resume(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        bulk = self.get_object()
        bulk_send_resume(bulk=bulk)
        return Response(bulk_json(bulk, request))


def _bulk_schema(serializer: type[BulkRequestSerializer]) -> dict[str, Any]:
    """The OpenAPI of a bulk path's actions: ``serializer`` is the POST body, and the summary's
    query takes the same fields (``ids`` comma-separated)."""
    period = [
        OpenApiParameter(name, OpenApiTypes.DATE, description=field.help_text)
        for name, field in serializer().fields.items()
        if name in PERIOD_FIELDS
    ]
    return {
        "start": extend_schema(
            request=serializer, parameters=[IDEMPOTENCY_KEY_PARAMETER], responses={202: BulkSendSerializer}
        ),
        "summary": extend_schema(
            parameters=[
                OpenApiParameter("ids", OpenApiTypes.STR, description=gettext_lazy("Comma-separated ids.")),
                OpenApiParameter("template_id", OpenApiTypes.INT),
                OpenApiParameter("module", OpenApiTypes.STR),
                *period,
            ],
            responses={200: OpenApiTypes.OBJECT},
        ),
    }


def _bulk_viewset(base: type[_BulkViewSet], name: str, **attrs: Any) -> type[_BulkViewSet]:
    viewset = type(name, (base,), attrs)
    for action, schema in _bulk_schema(viewset.request_serializer).items():
        setattr(viewset, action, schema(_own(getattr(base, action))))
    viewset.start = extend_schema(operation_id=f"{name}_start", summary="Send many over WhatsApp")(viewset.start)
    viewset.summary = extend_schema(operation_id=f"{name}_summary", summary="What a bulk WhatsApp send would do")(
        viewset.summary
    )
    return viewset


BULK_VIEWSETS: dict[str, type[_BulkViewSet]] = {
    resource: _bulk_viewset(
        DocumentBulkViewSet,
        f"{resource}_whatsapp_bulk",
        spec=viewset.spec,
        default_module=KIND_MODULES[viewset.spec.kind],
        modules=tuple(m for m, spec in MODULES.items() if spec.document_kind == viewset.spec.kind),
    )
    for resource, viewset in SEND_VIEWSETS.items()
}
BULK_VIEWSETS["contacts"] = _bulk_viewset(ContactBulkViewSet, "contacts_whatsapp_bulk")
