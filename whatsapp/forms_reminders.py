"""Forms of Settings → Integrations → WhatsApp → Reminders.

They shape what the administrator typed; the rules (a template of Payment reminders that WhatsApp
approved, the days that go with "before", "on" or "after", one rule per day) are the model's and
are applied by :mod:`whatsapp.services.reminders`, whose ``ValidationError`` the views put back
on the form with :func:`~whatsapp.forms.errors_to_form`.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from books.models import Organization
from templates_mgmt.models import MessageTemplate
from whatsapp.models import ReminderRule
from whatsapp.services.reminders import reminder_templates

__all__ = ["ReminderRuleForm", "ReminderScheduleForm", "RuleToggleForm"]


class ReminderScheduleForm(forms.Form):
    """The "Reminders based on due date" switch and the time of day they go out."""

    enabled = forms.BooleanField(label=_("Reminders based on due date"), required=False)
    send_at = forms.TimeField(
        label=_("Time of day"),
        initial=datetime.time(9, 0),
        input_formats=["%H:%M", "%H:%M:%S"],
        widget=forms.TimeInput(format="%H:%M", attrs={"type": "time", "step": 60}),
        help_text=_("Every day at this time, in the organization's time zone."),
    )


class ReminderRuleForm(forms.Form):
    """One reminder rule: when it goes out, and its WhatsApp tab (on or off, and the template)."""

    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("e.g. Three days before the due date."))
    days = forms.IntegerField(
        label=_("Days"),
        min_value=0,
        max_value=ReminderRule.MAX_DAYS,
        required=False,
        initial=1,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=_("Not used on the due date itself."),
    )
    when = forms.ChoiceField(label=_("When"), choices=ReminderRule.When.choices, initial=ReminderRule.When.BEFORE)
    enabled = forms.BooleanField(label=_("Send this reminder by WhatsApp"), required=False, initial=True)
    template = forms.ModelChoiceField(
        label=_("Message template"),
        queryset=MessageTemplate.objects.none(),
        required=False,
        empty_label=_("The default template of Payment reminders"),
        help_text=_("Approved templates of Payment reminders."),
    )

    def __init__(self, *args: Any, organization: Organization, rule: ReminderRule | None = None, **kwargs: Any) -> None:
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": rule.name,
                "days": rule.days,
                "when": rule.when,
                "enabled": rule.enabled,
                "template": rule.template_id,
            }
        super().__init__(*args, **kwargs)
        queryset = reminder_templates(organization=organization)
        if rule is not None and rule.template_id:
            # The rule's own template stays visible even when it is no longer approved, so the
            # page shows what is chosen; saving it again is refused with the reason.
            queryset = MessageTemplate.objects.filter(
                Q(pk__in=queryset.values("pk")) | Q(pk=rule.template_id)
            ).order_by("-is_default", "name", "language")
        self.fields["template"].queryset = queryset
        self.fields["template"].label_from_instance = _template_label

    def clean_days(self) -> int:
        return self.cleaned_data.get("days") or 0


def _template_label(template: MessageTemplate) -> str:
    label = f"{template.name} ({template.language})"
    if template.is_default:
        label += f" · {_('default')}"
    if not template.is_usable:
        label += f" · {template.get_status_display()}"
    return label


class RuleToggleForm(forms.Form):
    """The rule's WhatsApp switch in the list."""

    enabled = forms.BooleanField(required=False)
