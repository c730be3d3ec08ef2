"""Documents of every kind: one viewset, specialised per ``KindSpec`` by ``document_viewset``."""

import datetime
from typing import Any, ClassVar

from django.db.models import Prefetch, QuerySet
from django.utils.text import format_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.status import HTTP_201_CREATED

from books.api.access import DOCUMENT_PERMS, OrganizationViewSet
from books.api.exceptions import service_errors
from books.api.renderers import PDF_RENDERERS, pdf_response
from books.api.serializers.documents import (
    DocumentSerializer,
    component_name,
    document_filter_serializer,
    document_serializer,
    id_field_name,
)
from books.kinds import KINDS_BY_RESOURCE, KindSpec
from books.models import Allocation, Document
from books.pdf import document_pdf, document_pdf_filename
from books.selectors import document_list
from books.services.documents import document_create, document_update


class DocumentViewSet(OrganizationViewSet):
    """List, read, create, change and print the documents of one kind (``spec``)."""

    spec: ClassVar[KindSpec]
    filter_serializer_class: ClassVar[type[serializers.Serializer]]
    serializer_class: type[DocumentSerializer]
    queryset = Document.objects.all()

    def check_role(self, request: Request) -> None:
        self.require(DOCUMENT_PERMS[self.spec.party].for_request(request))

    def organization_queryset(self) -> QuerySet[Document]:
        return self.documents()

    def documents(
        self,
        *,
        status: str = "",
        search_text: str = "",
        contact_id: int | None = None,
        date_start: datetime.date | None = None,
        date_end: datetime.date | None = None,
    ) -> QuerySet[Document]:
        """The kind's documents of the organization, newest first, with what serializing them reads."""
        queryset = document_list(organization=self.organization, kind=self.spec.kind, status=status, search=search_text)
        if contact_id is not None:
            queryset = queryset.filter(contact_id=contact_id)
        if date_start is not None:
            queryset = queryset.filter(date__gte=date_start)
        if date_end is not None:
            queryset = queryset.filter(date__lte=date_end)
        prefetch: list[Any] = ["share_with"]
        if self.spec.has_lines:
            prefetch.append("lines")
        if self.spec.is_payment:
            prefetch.append(Prefetch("allocations_out", queryset=Allocation.objects.select_related("target")))
        return queryset.prefetch_related(*prefetch).order_by("-date", "-id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        filters = self.filter_serializer_class(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(self.documents(**filters.validated_data))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors(serializer.error_field_names()):
            document = document_create(
                organization=self.organization,
                kind=self.spec.kind,
                created_by=request.user,
                **serializer.service_kwargs(),
            )
        return Response(self.get_serializer(self.get_queryset().get(pk=document.pk)).data, status=HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, partial: bool = False, **kwargs: Any) -> Response:
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with service_errors(serializer.error_field_names()):
            document_update(document=serializer.instance, **serializer.service_kwargs())
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    @action(detail=True, methods=["get"], renderer_classes=PDF_RENDERERS)
    def pdf(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        document = self.get_object()
        return pdf_response(document_pdf(document), filename=document_pdf_filename(document))


def document_viewset(spec: KindSpec) -> type[DocumentViewSet]:
    """The viewset of ``/api/v1/<spec.api_resource>``."""
    filters = document_filter_serializer(spec)
    viewset = type(
        f"{component_name(spec)}ViewSet",
        (DocumentViewSet,),
        {
            "spec": spec,
            "serializer_class": document_serializer(spec),
            "filter_serializer_class": filters,
            "lookup_url_kwarg": id_field_name(spec),
            "__module__": __name__,
            "__doc__": f"{spec.api_resource}: documents of kind ``{spec.kind}``, in Zoho Books' field names.",
        },
    )
    plural, label = spec.label_plural, spec.label
    return extend_schema_view(
        list=extend_schema(summary=format_lazy("List {}", plural), parameters=[filters]),
        retrieve=extend_schema(summary=format_lazy("Get {}", label)),
        create=extend_schema(summary=format_lazy("Create {}", label)),
        update=extend_schema(summary=format_lazy("Update {}", label)),
        partial_update=extend_schema(summary=format_lazy("Partially update {}", label)),
        pdf=extend_schema(
            summary=format_lazy("Download {} PDF", label),
            responses={(200, "application/pdf"): OpenApiTypes.BINARY},
        ),
    )(viewset)


DOCUMENT_VIEWSETS: dict[str, type[DocumentViewSet]] = {
    resource: document_viewset(spec) for resource, spec in KINDS_BY_RESOURCE.items()
}
