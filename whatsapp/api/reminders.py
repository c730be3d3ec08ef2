"""REST API of payment reminders by due date: ``/api/v1/whatsapp/reminders``.

What Settings → WhatsApp → Reminders does, for integrators: list, add, change and delete the
reminder rules (N days before an invoice's due date, on it, N days after; each sent by WhatsApp
with its template, or the module's default), and read or set the schedule at
``/api/v1/whatsapp/reminders/schedule`` (on or off, and the time of day in the organization's
time zone). Everything is settings: every call needs ``settings.manage``.

Views validate the body, call one service of :mod:`whatsapp.services.reminders` and serialize; a
service's ``ValidationError`` is a 400 keyed by field. Another organization's rule is a 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.status import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from books.api.exceptions import service_errors
from templates_mgmt.models import MessageTemplate
from whatsapp.api.accounts import WhatsAppSettingsViewSet
from whatsapp.models import ReminderRule, ReminderSchedule
from whatsapp.services import reminders as services

# --- Serializers ----------------------------------------------------------------------------------


class ReminderRuleSerializer(serializers.ModelSerializer):
    """A reminder rule as the Reminders page shows it."""

    when = serializers.CharField(read_only=True, help_text=gettext_lazy("before, on or after (the due date)."))
    template_id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text=gettext_lazy("The payment reminder template; null: the module's default."),
    )
    description = serializers.CharField(read_only=True, help_text=gettext_lazy("e.g. 3 days before the due date."))

    class Meta:
        model = ReminderRule
        fields = ("id", "name", "days", "when", "description", "enabled", "template_id", "created_at", "updated_at")
        read_only_fields = fields


class ReminderRuleWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    days = serializers.IntegerField(
        min_value=0, max_value=ReminderRule.MAX_DAYS, default=0, help_text=gettext_lazy("0 with when=on.")
    )
    when = serializers.ChoiceField(choices=ReminderRule.When.choices)
    enabled = serializers.BooleanField(default=True, help_text=gettext_lazy("Send this reminder by WhatsApp."))
    template_id = serializers.IntegerField(
        allow_null=True,
        default=None,
        help_text=gettext_lazy("An approved template of payment_reminders; null: the module's default."),
    )


class ReminderScheduleSerializer(serializers.ModelSerializer):
    """Whether reminders go out automatically, and when (HH:MM in ``time_zone``)."""

    send_at = serializers.TimeField(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"])
    time_zone = serializers.CharField(source="organization.time_zone", read_only=True)

    class Meta:
        model = ReminderSchedule
        fields = ("enabled", "send_at", "time_zone", "last_run_on", "last_run_at", "last_run_counts")
        read_only_fields = ("time_zone", "last_run_on", "last_run_at", "last_run_counts")


# --- Views ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List the payment reminder rules", responses=ReminderRuleSerializer(many=True)),
    retrieve=extend_schema(summary="Get a payment reminder rule", responses=ReminderRuleSerializer),
    create=extend_schema(
        summary="Add a payment reminder rule",
        request=ReminderRuleWriteSerializer,
        responses={201: ReminderRuleSerializer},
    ),
    update=extend_schema(
        summary="Change a payment reminder rule",
        description="Invoices the rule already reminded are not reminded again, whatever changes.",
        request=ReminderRuleWriteSerializer,
        responses=ReminderRuleSerializer,
    ),
    partial_update=extend_schema(
        summary="Change part of a payment reminder rule",
        request=ReminderRuleWriteSerializer,
        responses=ReminderRuleSerializer,
    ),
    destroy=extend_schema(summary="Delete a payment reminder rule", responses={204: None}),
)
class ReminderRuleViewSet(WhatsAppSettingsViewSet):
    """The organization's payment reminder rules, in the order they go out."""

    queryset = ReminderRule.objects.all()
    serializer_class = ReminderRuleSerializer
    pagination_class = None
    lookup_url_kwarg = "id"

    def organization_queryset(self) -> QuerySet[ReminderRule]:
        return ReminderRule.objects.filter(organization=self.organization)

    def get_object(self) -> ReminderRule:
        try:
            return services.reminder_rule_get(organization=self.organization, pk=int(self.kwargs["id"]))
        except ReminderRule.DoesNotExist:
            raise exceptions.NotFound(_("No such reminder.")) from None

    def _template(self, template_id: int | None) -> MessageTemplate | None:
        if template_id is None:
            return None
        template = MessageTemplate.objects.filter(organization=self.organization, pk=template_id).first()
        if template is None:
            raise exceptions.ValidationError({"template_id": [_("No such message template.")]})
        return template

    def _arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        arguments = {key: value for key, value in data.items() if key != "template_id"}
        if "template_id" in data:
            arguments["template"] = self._template(data["template_id"])
        return arguments

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rules = services.reminder_rule_list(organization=self.organization)
        return Response(ReminderRuleSerializer(rules, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(ReminderRuleSerializer(self.get_object()).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ReminderRuleWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors({"template": "template_id"}):
            rule = services.reminder_rule_create(organization=self.organization, **self._arguments(body.validated_data))
        return Response(ReminderRuleSerializer(rule).data, status=HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, partial: bool = False, **kwargs: Any) -> Response:
        rule = self.get_object()
        body = ReminderRuleWriteSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        data = (
            body.validated_data if not partial else {k: v for k, v in body.validated_data.items() if k in request.data}
        )
        with service_errors({"template": "template_id"}):
            rule = services.reminder_rule_update(rule=rule, **self._arguments(data))
        return Response(ReminderRuleSerializer(rule).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.reminder_rule_delete(rule=self.get_object())
        return Response(status=HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], summary="Get the payment reminder schedule", responses=ReminderScheduleSerializer)
    @extend_schema(
        methods=["PUT"],
        summary="Turn payment reminders on or off and set their time of day",
        description="Every day at send_at in the organization's time zone (Celery beat), each enabled rule "
        "reminds the invoices that fall on its day, once per invoice. Days on which the run did not happen "
        "are caught up by the next run, up to 7 days back, for the rules on or after the due date only "
        "(last_run_counts.caught_up_from); an invoice several of them fall on gets the latest one. "
        "A change of the organization's time zone moves the schedule with it.",
        request=ReminderScheduleSerializer,
        responses=ReminderScheduleSerializer,
    )
    @action(detail=False, methods=["get", "put"], url_path="schedule")
    def schedule(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.method == "PUT":
            body = ReminderScheduleSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            services.reminder_schedule_update(
                organization=self.organization,
                enabled=body.validated_data.get("enabled", False),
                send_at=body.validated_data.get("send_at"),
            )
        schedule = services.reminder_schedule_get(organization=self.organization)
        return Response(ReminderScheduleSerializer(schedule).data)
