"""REST API of message templates: ``/api/v1/whatsapp/templates`` and ``/api/v1/whatsapp/modules``.

What Settings → WhatsApp → Message templates does, for integrators: build a template (every Meta
rule is checked first: a broken one is a 400 keyed by field), submit it for approval, clone it,
make it its module's default, delete it at Meta, sync the list with Meta, and switch WhatsApp on
per module. Everything is settings: every call needs ``settings.manage``.

Views validate the body, call one service and serialize. A service's ``ValidationError`` — a
rule, a state that doesn't allow it, or Meta refusing with its fix hint — is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.status import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from templates_mgmt.choices import Module
from templates_mgmt.models import MessageTemplate
from templates_mgmt.selectors import module_state_list, template_list
from templates_mgmt.services import module_setting_update, template_create, template_set_default, template_update
from whatsapp.api.accounts import ReplaceAllMixin, WhatsAppSettingsViewSet
from whatsapp.models import WhatsAppAccount
from whatsapp.selectors.accounts import account_get_live
from whatsapp.services import templates as services

# --- Serializers ----------------------------------------------------------------------------------


class TemplateButtonSerializer(serializers.Serializer):
    type = serializers.CharField(help_text=gettext_lazy("url or phone_number."))
    text = serializers.CharField(help_text=gettext_lazy("The button's label (up to 25 characters)."))
    url = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=gettext_lazy(
            "For a url button. A dynamic suffix is written at the end: https://example.com/i/{{invoice_number}}."
        ),
    )
    url_suffix_field = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=gettext_lazy("The module field that ends the URL (when the URL ends with {{1}})."),
    )
    phone_number = serializers.CharField(
        required=False, allow_blank=True, help_text=gettext_lazy("For a phone_number button, with the country code.")
    )


# Plain strings, not enums: a second enum named "status" or "category" would rename other APIs' enums.
class TemplateSerializer(serializers.ModelSerializer):
    """A message template as the hub holds it; ``components`` is what Meta approved."""

    status = serializers.CharField(
        read_only=True,
        help_text=gettext_lazy(
            "DRAFT, PENDING (approval), APPROVED, REJECTED (see status_reason and rejection_recommendation), "
            "PAUSED, DISABLED, PENDING_DELETION, DELETION_FAILED or DELETED."
        ),
    )
    category = serializers.CharField(read_only=True, help_text=gettext_lazy("UTILITY or MARKETING."))
    module = serializers.CharField(read_only=True, help_text=gettext_lazy("Empty until assigned to a module."))
    header_type = serializers.CharField(read_only=True, help_text=gettext_lazy("none, text, document or image."))
    attachment_mode = serializers.CharField(read_only=True, help_text=gettext_lazy("dynamic, static or empty."))
    buttons = TemplateButtonSerializer(many=True, read_only=True)
    is_usable = serializers.BooleanField(read_only=True, help_text=gettext_lazy("Approved: can be used to send."))
    field_mapping = serializers.JSONField(read_only=True)
    components = serializers.JSONField(read_only=True)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "language",
            "category",
            "module",
            "status",
            "status_reason",
            "rejection_recommendation",
            "quality_score",
            "is_default",
            "is_usable",
            "meta_id",
            "header_type",
            "header_text",
            "attachment_mode",
            "attachment_filename",
            "body",
            "footer",
            "buttons",
            "field_mapping",
            "components",
            "submitted_at",
            "status_updated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TemplateWriteSerializer(serializers.Serializer):
    """The builder's fields. The rules are the service's: only the shapes are checked here."""

    name = serializers.CharField(max_length=512, help_text=gettext_lazy("Lowercase letters, digits, underscores."))
    language = serializers.CharField(max_length=16, help_text=gettext_lazy("A Meta language code: en, en_US, es…"))
    category = serializers.CharField(max_length=16, help_text=gettext_lazy("UTILITY or MARKETING."))
    module = serializers.CharField(max_length=32, help_text=gettext_lazy("invoices, customers, quotes…"))
    header_type = serializers.CharField(
        max_length=16, required=False, default="none", help_text=gettext_lazy("none, text, document or image.")
    )
    header_text = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    attachment_mode = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        help_text=gettext_lazy("dynamic (the transaction's PDF) or static (customers only, with attachment_base64)."),
    )
    attachment_name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    attachment_base64 = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text=gettext_lazy("A static attachment's file (PDF, JPEG or PNG), base64-encoded."),
    )
    body = serializers.CharField(
        max_length=4096, help_text=gettext_lazy("The message; dynamic fields are written {{field_name}}.")
    )
    footer = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    buttons = TemplateButtonSerializer(many=True, required=False, default=list)

    def service_arguments(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        encoded = data.pop("attachment_base64", "")
        filename = data.pop("attachment_name", "") or "attachment"
        if encoded:
            try:
                data["attachment"] = ContentFile(base64.b64decode(encoded, validate=True), name=filename)
            except (binascii.Error, ValueError):
                raise exceptions.ValidationError(
                    {"attachment_base64": [_("The attachment is not valid base64.")]}
                ) from None
        data["buttons"] = [dict(button) for button in data.get("buttons", [])]
        return data


class TemplateCloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512, help_text=gettext_lazy("The copy's name."))
    submit = serializers.BooleanField(
        default=True, help_text=gettext_lazy("Submit the copy for approval at once (as the settings page does).")
    )


class SyncResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text=gettext_lazy("Templates made in WhatsApp Manager, now recorded."))
    updated = serializers.IntegerField()
    deleted = serializers.IntegerField(help_text=gettext_lazy("Templates Meta no longer lists."))


class ModuleStateSerializer(serializers.Serializer):
    module = serializers.CharField()
    label = serializers.CharField(read_only=True)
    enabled = serializers.BooleanField()
    approved_templates = serializers.IntegerField(read_only=True)


class ModuleUpdateSerializer(serializers.Serializer):
    module = serializers.CharField(help_text=gettext_lazy("invoices, payment_reminders, customers…"))
    enabled = serializers.BooleanField()


# --- Views ----------------------------------------------------------------------------------------

_FILTERS = [
    OpenApiParameter("module", OpenApiTypes.STR, description=gettext_lazy("Only this module's templates.")),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        description=gettext_lazy("Only this status (DELETED included only when asked for)."),
    ),
    OpenApiParameter("language", OpenApiTypes.STR, description=gettext_lazy("Only this language code.")),
]


@extend_schema_view(
    list=extend_schema(summary="List the message templates", parameters=_FILTERS),
    retrieve=extend_schema(summary="Get a message template"),
    create=extend_schema(
        summary="Create a message template (a draft)",
        description="Every Meta rule is checked; a broken one is a 400 keyed by field. POST /{id}/submit sends "
        "the draft for approval.",
        request=TemplateWriteSerializer,
        responses={201: TemplateSerializer},
    ),
    update=extend_schema(
        summary="Edit a draft or rejected template",
        request=TemplateWriteSerializer,
        responses=TemplateSerializer,
    ),
    partial_update=extend_schema(
        summary="Edit some fields of a draft or rejected template",
        request=TemplateWriteSerializer(partial=True),
        responses=TemplateSerializer,
    ),
    destroy=extend_schema(
        summary="Delete a template at Meta",
        description="200 with the template (status DELETED) once Meta deleted it; 204 for a draft Meta never "
        "saw; 400 with Meta's reason when the deletion failed (status DELETION_FAILED: retried every 30 "
        "minutes, or call again).",
        responses={200: TemplateSerializer, 204: None},
    ),
)
class TemplateViewSet(WhatsAppSettingsViewSet):
    """The organization's templates of its connected WhatsApp Business account."""

    queryset = MessageTemplate.objects.all()
    serializer_class = TemplateSerializer
    lookup_url_kwarg = "id"

    def organization_queryset(self) -> QuerySet[MessageTemplate]:
        account = account_get_live(organization=self.organization)
        if account is None:
            return MessageTemplate.objects.none()
        params = self.request.query_params
        status = params.get("status") or None
        queryset = template_list(
            organization=self.organization,
            module=params.get("module") or None,
            status=status.upper() if status else None,
            waba_id=account.waba_id,
        )
        if params.get("language"):
            queryset = queryset.filter(language=params["language"])
        return queryset.order_by("module", "name", "language")

    def get_object(self) -> MessageTemplate:
        template = self.get_queryset_for_lookup().filter(pk=self.kwargs["id"]).first()
        if template is None:
            raise exceptions.NotFound(_("No such message template."))
        return template

    def get_queryset_for_lookup(self) -> QuerySet[MessageTemplate]:
        account = account_get_live(organization=self.organization)
        if account is None:
            return MessageTemplate.objects.none()
        return MessageTemplate.objects.filter(organization=self.organization, waba_id=account.waba_id)

    def account(self) -> WhatsAppAccount:
        return services.template_account_get(organization=self.organization)

    def _response(self, template: MessageTemplate, status: int = 200) -> Response:
        return Response(TemplateSerializer(template).data, status=status)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TemplateSerializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._response(self.get_object())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.account()
        body = TemplateWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        template = template_create(
            organization=self.organization,
            waba_id=account.waba_id,
            created_by=request.user,
            **body.service_arguments(),
        )
        return self._response(template, status=HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, partial: bool = False, **kwargs: Any) -> Response:
        self.account()
        template = self.get_object()
        body = TemplateWriteSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        arguments = body.service_arguments()
        if partial:
            arguments = {key: value for key, value in arguments.items() if key in request.data or key == "attachment"}
        return self._response(template_update(template=template, **arguments))

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.account()
        template = self.get_object()
        deleted = services.account_template_delete(account=account, template=template)
        if deleted.pk is None:
            return Response(status=HTTP_204_NO_CONTENT)
        return self._response(deleted)

    @extend_schema(
        summary="Submit for approval",
        description="A draft goes to Meta (status PENDING); a rejected, edited template is resubmitted. Meta's "
        "verdict arrives by webhook (or sync).",
        request=None,
        responses=TemplateSerializer,
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.account()
        return self._response(services.account_template_submit(account=account, template=self.get_object()))

    @extend_schema(
        summary="Clone under a new name",
        description="The copy is submitted for approval unless submit is false. If Meta refuses it, the copy "
        "stays a draft and the answer is a 400 naming it.",
        request=TemplateCloneSerializer,
        responses={201: TemplateSerializer},
    )
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.account()
        template = self.get_object()
        body = TemplateCloneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clone, refused = services.account_template_clone(
            account=account, template=template, created_by=request.user, **body.validated_data
        )
        if refused is not None:
            raise exceptions.ValidationError(
                {"detail": refused.messages, "id": [str(clone.pk)], "status": [clone.status]}
            )
        return self._response(clone, status=HTTP_201_CREATED)

    @extend_schema(summary="Make it the module's default", request=None, responses=TemplateSerializer)
    @action(detail=True, methods=["post"])
    def default(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._response(template_set_default(template=self.get_object()))

    @extend_schema(
        summary="Sync the templates with Meta",
        description="Reads every page of Meta's list: records templates made in WhatsApp Manager, updates "
        "statuses, marks the ones Meta no longer lists as deleted.",
        request=None,
        responses=SyncResultSerializer,
    )
    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        result = services.account_templates_sync(account=self.account())
        return Response(SyncResultSerializer(result).data)


@extend_schema_view(list=extend_schema(summary="List the modules and whether WhatsApp is on for each"))
class ModuleViewSet(ReplaceAllMixin, WhatsAppSettingsViewSet):
    """WhatsApp notifications per module: GET lists the toggles, PUT switches one or several."""

    queryset = MessageTemplate.objects.all()
    serializer_class = ModuleStateSerializer
    pagination_class = None

    def organization_queryset(self) -> QuerySet[MessageTemplate]:
        return MessageTemplate.objects.none()

    def _states(self) -> Response:
        return Response(ModuleStateSerializer(module_state_list(organization=self.organization), many=True).data)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._states()

    @extend_schema(
        summary="Switch WhatsApp on or off for modules",
        description="A list of {module, enabled} (or one object). A module can be switched on only while it has "
        "an approved template; otherwise nothing is changed and the answer is a 400.",
        request=ModuleUpdateSerializer(many=True),
        responses=ModuleStateSerializer(many=True),
    )
    def update_all(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items = request.data if isinstance(request.data, list) else [request.data]
        body = ModuleUpdateSerializer(data=items, many=True)
        body.is_valid(raise_exception=True)
        for item in body.validated_data:
            if item["module"] not in Module.values:
                raise exceptions.ValidationError({"module": [_("“%(module)s” is not a module.") % item]})
        with transaction.atomic():  # all or nothing
            for item in body.validated_data:
                module_setting_update(
                    organization=self.organization, module=item["module"], enabled=item["enabled"], user=request.user
                )
        return self._states()
