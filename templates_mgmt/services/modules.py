"""Switching WhatsApp notifications on and off per module, and assigning Meta-made templates to one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from books.models import Organization
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.fields import catalogue_field
from templates_mgmt.models import MessageTemplate, ModuleSetting
from templates_mgmt.placeholders import ANY_PLACEHOLDER, POSITIONAL, variables
from templates_mgmt.validation import mapping_clean


def module_setting_update(
    *, organization: Organization, module: str, enabled: bool, user: AbstractBaseUser | None = None
) -> ModuleSetting:
    """Turn a module's WhatsApp notifications on or off.

    On only with an approved template in the module: otherwise every send from it would fail at
    the template check, and the toggle would promise something that can't happen.
    """
    if module not in Module.values:
        raise ValidationError({"module": [_("Choose a module.")]})
    with transaction.atomic():
        if (
            enabled
            and not MessageTemplate.objects.filter(
                organization=organization, module=module, status=TemplateStatus.APPROVED
            ).exists()
        ):
            raise ValidationError(
                {
                    "enabled": [
                        _("%(module)s can be enabled once WhatsApp has approved one of its templates.")
                        % {"module": Module(module).label}
                    ]
                }
            )
        setting, _created = ModuleSetting.objects.select_for_update().get_or_create(
            organization=organization, module=module
        )
        setting.enabled = enabled
        setting.updated_by = user
        setting.save(update_fields=["enabled", "updated_by", "updated_at"])
    return setting


def template_variables(template: MessageTemplate) -> dict[str, list[str]]:
    """The variables of Meta's copy (its ``components``) per part: header, body, URL buttons by index."""
    parameter_format = template.parameter_format or "POSITIONAL"
    found: dict[str, list[str]] = {"header": [], "body": [], "buttons": []}
    for component in template.components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER" and str(component.get("format", "TEXT")).upper() == "TEXT":
            found["header"] = variables(str(component.get("text", "")), parameter_format)
        elif kind == "BODY":
            found["body"] = variables(str(component.get("text", "")), parameter_format)
        elif kind == "BUTTONS":
            found["buttons"] = [
                str(index)
                for index, button in enumerate(component.get("buttons", []))
                if str(button.get("type", "")).upper() == "URL" and ANY_PLACEHOLDER.search(str(button.get("url", "")))
            ]
    return found


def template_assign(
    *, template: MessageTemplate, module: str, field_mapping: Mapping[str, Any] | None = None
) -> MessageTemplate:
    """Put a template (typically one made in WhatsApp Manager) in a module and map its variables.

    Variables whose name is a field of the module are mapped to it unless ``field_mapping`` says
    otherwise; every other variable must be mapped explicitly. Meta's content is not changed, so
    this is allowed in any status.
    """
    found = template_variables(template)
    proposed: dict[str, dict[str, str]] = {"header": {}, "body": {}, "buttons": {}}
    for part in ("header", "body"):
        for name in found[part]:
            if not POSITIONAL.fullmatch("{{" + name + "}}") and catalogue_field(module, name) is not None:
                proposed[part][name] = name
    for part, given in (field_mapping or {}).items():
        if isinstance(given, Mapping):
            proposed.setdefault(part, {}).update({str(key): str(value) for key, value in given.items()})
    cleaned = mapping_clean(module=module, variables=found, mapping=proposed)
    with transaction.atomic():
        row = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        if row.module != module:
            row.is_default = False
        row.module = module
        row.field_mapping = cleaned
        for index, button in enumerate(row.buttons or []):
            if button.get("type") == "url":
                button["url_suffix_field"] = cleaned["buttons"].get(str(index), "")
        row.updated_at = timezone.now()
        row.save(update_fields=["module", "field_mapping", "buttons", "is_default", "updated_at"])
    return row
