"""Contacts (customers and vendors), their contact persons and their statements."""

from typing import Any

from django.db.models import QuerySet
from django.utils.text import slugify
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.status import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from books.api.access import CONTACT_PERMS, DOCUMENT_PERMS, OrganizationViewSet
from books.api.exceptions import api_field_names, service_errors
from books.api.renderers import PDF_RENDERERS, pdf_response
from books.api.serializers.contacts import (
    ContactCreateSerializer,
    ContactFilterSerializer,
    ContactPersonSerializer,
    ContactSerializer,
)
from books.api.serializers.statements import StatementQuerySerializer, StatementSerializer
from books.models import Contact, ContactPerson
from books.pdf import statement_pdf
from books.selectors import Statement, contact_balance_annotate, contact_list, statement_build
from books.services.contacts import (
    contact_create,
    contact_person_create,
    contact_person_delete,
    contact_person_update,
    contact_update,
)


@extend_schema_view(
    list=extend_schema(summary="List contacts", parameters=[ContactFilterSerializer]),
    retrieve=extend_schema(summary="Get a contact"),
    create=extend_schema(
        summary="Create a contact", request=ContactCreateSerializer, responses={201: ContactSerializer}
    ),
    update=extend_schema(summary="Update a contact"),
    partial_update=extend_schema(summary="Partially update a contact"),
)
class ContactViewSet(OrganizationViewSet):
    """Customers and vendors. Customers need the Customers permissions of the caller's role,
    vendors the Vendors ones."""

    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    lookup_url_kwarg = "contact_id"

    def check_role(self, request: Request) -> None:
        # Which type is concerned is known later (filter, body or row); here, either will do.
        if not self.allowed_types(write=self.writing):
            raise exceptions.PermissionDenied(_("Your role does not allow this on customers or vendors."))

    def allowed_types(self, *, write: bool) -> list[str]:
        return [
            contact_type
            for contact_type, perms in CONTACT_PERMS.items()
            if self.membership.has_perm(perms.manage if write else perms.view)
        ]

    def organization_queryset(self) -> QuerySet[Contact]:
        return self.contacts()

    def contacts(
        self, *, contact_type: str | None = None, search_text: str = "", is_active: bool | None = None
    ) -> QuerySet[Contact]:
        types = self.allowed_types(write=False)
        if contact_type is not None:
            self.require(CONTACT_PERMS[contact_type].view)
            types = [contact_type]
        queryset = contact_list(organization=self.organization, search=search_text).filter(contact_type__in=types)
        if is_active is not None:
            queryset = queryset.filter(is_active=is_active)
        return contact_balance_annotate(queryset)

    def get_object(self) -> Contact:
        queryset = contact_balance_annotate(contact_list(organization=self.organization))
        contact = get_object_or_404(queryset, pk=self.kwargs["contact_id"])
        self.require(CONTACT_PERMS[contact.contact_type].for_request(self.request))
        return contact

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        filters = ContactFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(self.contacts(**filters.validated_data))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ContactCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        self.require(CONTACT_PERMS[serializer.validated_data["contact_type"]].manage)
        with service_errors(api_field_names(serializer)):
            contact = contact_create(organization=self.organization, **serializer.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=contact.pk)).data, status=HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, partial: bool = False, **kwargs: Any) -> Response:
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with service_errors(api_field_names(serializer)):
            contact_update(contact=serializer.instance, **serializer.validated_data)
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        summary="Get a contact's statement", parameters=[StatementQuerySerializer], responses=StatementSerializer
    )
    @action(detail=True, methods=["get"])
    def statements(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(StatementSerializer(self.statement(request)).data)

    @extend_schema(
        summary="Download a contact's statement as PDF",
        parameters=[StatementQuerySerializer],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="statements/pdf", renderer_classes=PDF_RENDERERS)
    def statement_pdf(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        statement = self.statement(request)
        filename = f"statement-{slugify(statement.contact.display_name) or statement.contact.pk}"
        return pdf_response(
            statement_pdf(statement), filename=f"{filename}-{statement.from_date}-{statement.to_date}.pdf"
        )

    def statement(self, request: Request) -> Statement:
        """The statement asked for; it lists documents, so it needs the documents' view permission too."""
        contact = self.get_object()
        self.require(DOCUMENT_PERMS[contact.contact_type].view)
        query = StatementQuerySerializer(data=request.query_params, context=self.get_serializer_context())
        query.is_valid(raise_exception=True)
        return statement_build(contact=contact, **query.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List a contact's persons"),
    retrieve=extend_schema(summary="Get a contact person"),
    create=extend_schema(summary="Add a contact person"),
    update=extend_schema(summary="Update a contact person"),
    partial_update=extend_schema(summary="Partially update a contact person"),
    destroy=extend_schema(summary="Delete a contact person"),
)
class ContactPersonViewSet(OrganizationViewSet):
    """The persons of one contact (``/contacts/{contact_id}/contactpersons``). Deleting the
    primary person makes the oldest remaining one primary."""

    queryset = ContactPerson.objects.all()
    serializer_class = ContactPersonSerializer
    lookup_url_kwarg = "contact_person_id"
    contact: Contact

    def check_role(self, request: Request) -> None:
        # The contact in the path decides which permissions apply; another organization's is not found.
        self.contact = get_object_or_404(
            Contact.objects.filter(organization=self.organization), pk=self.kwargs["contact_id"]
        )
        self.require(CONTACT_PERMS[self.contact.contact_type].for_request(request))

    def organization_queryset(self) -> QuerySet[ContactPerson]:
        return ContactPerson.objects.filter(contact=self.contact)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors(api_field_names(serializer)):
            person = contact_person_create(contact=self.contact, **serializer.validated_data)
        return Response(self.get_serializer(person).data, status=HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, partial: bool = False, **kwargs: Any) -> Response:
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with service_errors(api_field_names(serializer)):
            person = contact_person_update(person=serializer.instance, **serializer.validated_data)
        return Response(self.get_serializer(person).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact_person_delete(person=self.get_object())
        return Response(status=HTTP_204_NO_CONTENT)
