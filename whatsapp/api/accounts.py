"""REST API of the WhatsApp connection: ``/api/v1/whatsapp/account``, ``/phonenumbers``, ``/channels``.

What the Settings → Integrations → WhatsApp pages do, for integrators: connect the WhatsApp
Business Account, test the connection, verify numbers with a code, choose the default number and
the channels, mark WhatsApp inactive, and change the business account (delete its templates
first). Everything is settings, so every call needs the ``settings.manage`` permission of the
caller's role in the organization chosen by ``organization_id``.

Views validate the body, call one service of :mod:`whatsapp.services.accounts` and serialize. A
service's ``ValidationError`` (bad input, a state that doesn't allow it, or Meta refusing, with
the plain-language fix hint) is a 400 with field errors, never a 500. The access token is
write-only: no response ever carries it.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.status import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from books.api.access import OrganizationSchema, OrganizationViewSet
from books.api.exceptions import service_errors
from books.permissions import Perm
from whatsapp.models import Channel, PhoneNumber, WhatsAppAccount
from whatsapp.selectors import accounts as selectors
from whatsapp.services import accounts as services

_WHATSAPP_RESOURCE = re.compile(r"^/api/v[0-9]+/whatsapp/([^/{]+)")
#: A service's error about "the number" is about the one in the path: not a body field.
_PATH_NUMBER = {"phone_number": api_settings.NON_FIELD_ERRORS_KEY}


class WhatsAppSchema(OrganizationSchema):
    """Tags operations ``whatsapp/account``, ``whatsapp/phonenumbers`` …; singletons aren't lists.

    The account (one per organization) is served on the router's list route, which the schema
    generator would otherwise document as a paginated array.
    """

    def get_tags(self) -> list[str]:
        match = _WHATSAPP_RESOURCE.match(self.path)
        return [f"whatsapp/{match.group(1)}"] if match else super().get_tags()

    def _is_list_view(self, serializer: Any = None) -> bool:
        if getattr(self.view, "singleton", False) and getattr(self.view, "action", None) == "list":
            return False
        return super()._is_list_view(serializer)


# --- Serializers ----------------------------------------------------------------------------------


class AccountSerializer(serializers.ModelSerializer):
    """The organization's WhatsApp Business Account, as the settings page shows it (never the token)."""

    # A string, not an enum: a second enum named "status" would rename the books API's in the schema.
    status = serializers.CharField(
        read_only=True,
        help_text=gettext_lazy(
            "connected, inactive (paused), deleting_templates (changing accounts), setup_pending (connect the "
            "new account) or disconnected."
        ),
    )
    default_phone_number = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text=gettext_lazy("Id of the default number (``/phonenumbers/{id}``), or null.")
    )

    class Meta:
        model = WhatsAppAccount
        fields = [
            "id",
            "waba_id",
            "app_id",
            "name",
            "status",
            "default_phone_number",
            "customer_same_number",
            "checked_at",
            "check_error_code",
            "check_error",
            "token_refused_at",
            "connected_at",
        ]
        read_only_fields = fields


class AccountConnectSerializer(serializers.Serializer):
    waba_id = serializers.CharField(
        max_length=32, help_text=gettext_lazy("The WhatsApp Business Account ID (digits), from WhatsApp Manager.")
    )
    app_id = serializers.CharField(max_length=32, help_text=gettext_lazy("The Meta app ID (digits)."))
    access_token = serializers.CharField(
        max_length=4096,
        write_only=True,
        style={"input_type": "password"},
        help_text=gettext_lazy("A system user's access token. Stored encrypted; never returned."),
    )


class AccountTokenSerializer(serializers.Serializer):
    access_token = serializers.CharField(
        max_length=4096,
        write_only=True,
        style={"input_type": "password"},
        help_text=gettext_lazy("The new system user's access token. Stored encrypted; never returned."),
    )


class AccountChangeSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=services.CHANGE_MODES,
        help_text=gettext_lazy(
            "automatic: the hub deletes every template in the background. manual: delete them one by one "
            "with POST /account/templates/delete."
        ),
    )


class RemoteTemplateSerializer(serializers.Serializer):
    """A template still at Meta (one name × language)."""

    id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    language = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    category = serializers.CharField(allow_null=True)


class TemplateDeleteSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=512, help_text=gettext_lazy("The template's name: every language of it is deleted.")
    )


class PhoneNumberSerializer(serializers.ModelSerializer):
    """A business phone number as Meta last reported it. ``status`` is ``REMOVED`` for a number Meta
    no longer lists (kept for the messages that used it)."""

    is_verified = serializers.BooleanField(read_only=True)
    is_default = serializers.SerializerMethodField()

    class Meta:
        model = PhoneNumber
        fields = [
            "id",
            "phone_number_id",
            "display_phone_number",
            "verified_name",
            "name_status",
            "code_verification_status",
            "is_verified",
            "is_default",
            "quality_rating",
            "status",
            "throughput_level",
            "messaging_limit_tier",
            "can_send_message",
            "synced_at",
        ]
        read_only_fields = fields

    def get_is_default(self, number: PhoneNumber) -> bool:
        return number.account.default_phone_number_id == number.pk


class RequestCodeSerializer(serializers.Serializer):
    code_method = serializers.ChoiceField(
        choices=services.CODE_METHODS, default="SMS", help_text=gettext_lazy("SMS, or VOICE for a phone call.")
    )
    language = serializers.CharField(
        max_length=16, default="en_US", help_text=gettext_lazy("Language of the SMS or call, e.g. en_US, es_ES.")
    )


class VerifyCodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32, help_text=gettext_lazy("The code received, e.g. 123456 or 123-456."))


class ChannelSerializer(serializers.ModelSerializer):
    phone_number = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Channel
        fields = ["audience", "category", "phone_number"]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class OrganizationNumberField(serializers.PrimaryKeyRelatedField):
    """A hub phone number id of the request's organization (another organization's is not found)."""

    default_error_messages = {"does_not_exist": gettext_lazy("There is no WhatsApp number with id {pk_value}.")}

    def get_queryset(self) -> QuerySet[PhoneNumber]:
        organization = self.context.get("organization")
        if organization is None:
            return PhoneNumber.objects.none()
        return PhoneNumber.objects.filter(organization=organization).select_related("account")


class ChannelsSaveSerializer(serializers.Serializer):
    customer_same_number = serializers.BooleanField(
        help_text=gettext_lazy("Send customer marketing messages from the customer utility number.")
    )
    customer_utility = OrganizationNumberField(help_text=gettext_lazy("Id of a verified number."))
    customer_marketing = OrganizationNumberField(
        allow_null=True,
        default=None,
        help_text=gettext_lazy("Id of a verified number; needed when customer_same_number is false."),
    )
    vendor_utility = OrganizationNumberField(help_text=gettext_lazy("Id of a verified number."))


# --- Views ----------------------------------------------------------------------------------------


class WhatsAppSettingsViewSet(OrganizationViewSet):
    """Base of the connection's views: settings.manage for everything, and the live account."""

    schema = WhatsAppSchema()

    def check_role(self, request: Request) -> None:
        self.require(Perm.SETTINGS_MANAGE)

    def live_account(self) -> WhatsAppAccount:
        account = selectors.account_get_live(organization=self.organization)
        if account is None:
            raise exceptions.NotFound(_("This organization has no WhatsApp Business account connected."))
        return account


class ReplaceAllMixin:
    """``PUT`` on the collection calls ``update_all``: for sets replaced as a whole (channels,
    module toggles). The router maps only GET/POST on a collection, so the view adds PUT itself."""

    @classmethod
    def as_view(cls, actions: dict[str, str] | None = None, **initkwargs: Any) -> Any:
        if actions and actions.get("get") == "list":
            actions = {**actions, "put": "update_all"}
        return super().as_view(actions, **initkwargs)


@extend_schema_view(
    list=extend_schema(summary="Get the WhatsApp Business account", responses=AccountSerializer),
    create=extend_schema(
        summary="Connect a WhatsApp Business account",
        description=(
            "Checks the access token and the WABA with Meta (lists its numbers), subscribes the app to the "
            "WABA's webhooks, then stores the account, its numbers, the default number (the first verified "
            "one) and the three channels on it. Refused while another account is connected (change the "
            "account first) or when the WABA is connected to another organization."
        ),
        request=AccountConnectSerializer,
        responses={201: AccountSerializer},
    ),
)
class AccountViewSet(WhatsAppSettingsViewSet):
    """The organization's WhatsApp Business account: one at a time, so no id in the path."""

    queryset = WhatsAppAccount.objects.all()
    serializer_class = AccountSerializer
    pagination_class = None
    singleton = True

    def organization_queryset(self) -> QuerySet[WhatsAppAccount]:
        return WhatsAppAccount.objects.filter(organization=self.organization)

    def _account_response(self, account: WhatsAppAccount, status: int = 200) -> Response:
        return Response(AccountSerializer(account).data, status=status)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._account_response(self.live_account())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = AccountConnectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.account_connect(organization=self.organization, user=request.user, **body.validated_data)
        return self._account_response(account, status=HTTP_201_CREATED)

    @extend_schema(
        summary="Test the connection",
        description="Asks Meta for the numbers again and records the result in checked_at, check_error_code "
        "and check_error (the fix hint); a refusal is reported there, not as an error.",
        request=None,
        responses=AccountSerializer,
    )
    @action(detail=False, methods=["post"])
    def test(self, request: Request) -> Response:
        return self._account_response(services.account_test_connection(account=self.live_account()))

    @extend_schema(
        summary="Replace the access token",
        description="Meta is asked first (the account's numbers, with the new token); on success the token is "
        "stored encrypted and, when a refused token (error 190) had paused sending (token_refused_at), "
        "the queued messages go out again. A refusal is a 400 on access_token; nothing is saved.",
        request=AccountTokenSerializer,
        responses=AccountSerializer,
    )
    @action(detail=False, methods=["post"])
    def token(self, request: Request) -> Response:
        body = AccountTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.account_token_replace(account=self.live_account(), **body.validated_data)
        return self._account_response(account)

    @extend_schema(summary="Mark WhatsApp inactive", request=None, responses=AccountSerializer)
    @action(detail=False, methods=["post"])
    def inactive(self, request: Request) -> Response:
        return self._account_response(services.account_mark_inactive(account=self.live_account()))

    @extend_schema(summary="Mark WhatsApp active again", request=None, responses=AccountSerializer)
    @action(detail=False, methods=["post"])
    def active(self, request: Request) -> Response:
        return self._account_response(services.account_mark_active(account=self.live_account()))

    @extend_schema(
        summary="Start changing the business account",
        description="The account's templates must be deleted first: status becomes deleting_templates; when "
        "none is left it becomes setup_pending and POST /account connects the new one.",
        request=AccountChangeSerializer,
        responses=AccountSerializer,
    )
    @action(detail=False, methods=["post"])
    def change(self, request: Request) -> Response:
        body = AccountChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.account_change_start(account=self.live_account(), mode=body.validated_data["mode"])
        return self._account_response(account)

    @extend_schema(
        summary="Check whether the templates are gone",
        description="While deleting templates: when Meta lists none, the status becomes setup_pending.",
        request=None,
        responses=AccountSerializer,
    )
    @action(detail=False, methods=["post"], url_path="change/check")
    def change_check(self, request: Request) -> Response:
        return self._account_response(services.account_change_check(account=self.live_account()))

    @extend_schema(summary="Cancel changing the business account", request=None, responses=AccountSerializer)
    @action(detail=False, methods=["post"], url_path="change/cancel")
    def change_cancel(self, request: Request) -> Response:
        return self._account_response(services.account_change_cancel(account=self.live_account()))

    @extend_schema(
        summary="List the templates still at Meta",
        description="Asked of Meta now; templates deleted or being deleted are left out.",
        responses=RemoteTemplateSerializer(many=True),
    )
    @action(detail=False, methods=["get"])
    def templates(self, request: Request) -> Response:
        templates = selectors.account_remote_templates(account=self.live_account())
        return Response(RemoteTemplateSerializer(templates, many=True).data)

    @extend_schema(
        summary="Delete a template at Meta (changing accounts, manual mode)",
        request=TemplateDeleteSerializer,
        responses=AccountSerializer,
    )
    @action(detail=False, methods=["post"], url_path="templates/delete")
    def template_delete(self, request: Request) -> Response:
        body = TemplateDeleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = self.live_account()
        services.account_template_delete(account=account, name=body.validated_data["name"])
        account.refresh_from_db()
        return self._account_response(account)


@extend_schema_view(
    list=extend_schema(summary="List the WhatsApp numbers"),
    retrieve=extend_schema(summary="Get a WhatsApp number"),
)
class PhoneNumberViewSet(WhatsAppSettingsViewSet):
    """The connected account's business numbers, as Meta last reported them. Ids are the hub's."""

    queryset = PhoneNumber.objects.all()
    serializer_class = PhoneNumberSerializer
    lookup_url_kwarg = "id"

    def organization_queryset(self) -> QuerySet[PhoneNumber]:
        account = selectors.account_get_live(organization=self.organization)
        if account is None:
            return PhoneNumber.objects.none()
        return selectors.phone_number_list(account=account).select_related("account")

    def get_object(self) -> PhoneNumber:
        try:
            return selectors.phone_number_get(organization=self.organization, pk=self.kwargs["id"])
        except PhoneNumber.DoesNotExist:
            raise exceptions.NotFound(_("No such WhatsApp number.")) from None

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Fetch the numbers from Meta again",
        request=None,
        responses=PhoneNumberSerializer(many=True),
    )
    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        account = self.live_account()
        services.phone_numbers_sync(account=account)
        numbers = selectors.phone_number_list(account=account).select_related("account")
        return Response(self.get_serializer(numbers, many=True).data)

    @extend_schema(
        summary="Send a verification code to the number",
        description="By SMS or voice call; then POST the code to verify_code.",
        request=RequestCodeSerializer,
        responses={204: None},
    )
    @action(detail=True, methods=["post"])
    def request_code(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        number = self.get_object()
        body = RequestCodeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.phone_request_code(phone_number=number, **body.validated_data)
        return Response(status=HTTP_204_NO_CONTENT)

    @extend_schema(summary="Verify the number with the code received", request=VerifyCodeSerializer)
    @action(detail=True, methods=["post"])
    def verify_code(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        number = self.get_object()
        body = VerifyCodeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        number = services.phone_verify_code(phone_number=number, code=body.validated_data["code"])
        return Response(self.get_serializer(number).data)

    @extend_schema(
        summary="Make the number the default",
        description="Only a verified number of the connected account. Channels that used the previous "
        "default move to this one.",
        request=None,
    )
    @action(detail=True, methods=["post"])
    def default(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        number = self.get_object()
        account = self.live_account()
        with service_errors(_PATH_NUMBER):
            services.default_number_set(account=account, phone_number=number)
        number.account = account
        return Response(self.get_serializer(number).data)

    @extend_schema(
        summary="Remove the number as the default",
        description="Channels that used it are removed until a new default is set.",
        request=None,
        responses={204: None},
    )
    @default.mapping.delete
    def default_clear(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        number = self.get_object()
        account = self.live_account()
        if account.default_phone_number_id != number.pk:
            raise exceptions.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [_("This is not the default number.")]}
            )
        services.default_number_clear(account=account)
        return Response(status=HTTP_204_NO_CONTENT)


@extend_schema_view(list=extend_schema(summary="List the channels", responses=ChannelSerializer(many=True)))
class ChannelViewSet(ReplaceAllMixin, WhatsAppSettingsViewSet):
    """Audience × category → number. One set per account: GET lists it, PUT replaces it."""

    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer
    pagination_class = None

    def organization_queryset(self) -> QuerySet[Channel]:
        account = selectors.account_get_live(organization=self.organization)
        if account is None:
            return Channel.objects.none()
        return selectors.channel_list(account=account)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(ChannelSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        summary="Set the channels",
        description="Which verified number sends customer utility, customer marketing and vendor utility "
        "messages. With customer_same_number, customer marketing uses the customer utility number.",
        request=ChannelsSaveSerializer,
        responses=ChannelSerializer(many=True),
    )
    def update_all(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.live_account()
        body = ChannelsSaveSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        channels = services.channels_save(account=account, **body.validated_data)
        return Response(ChannelSerializer(channels, many=True).data)
