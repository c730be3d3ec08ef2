"""Reads on message templates and module settings, always scoped to one organization."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from books.models import Organization

from .choices import Module, TemplateStatus
from .models import MessageTemplate, ModuleSetting


def template_list(
    *,
    organization: Organization,
    module: str | None = None,
    status: str | None = None,
    waba_id: str | None = None,
    include_deleted: bool = False,
) -> QuerySet[MessageTemplate]:
    """The organization's templates, filtered as the Settings list filters them (deleted ones hidden)."""
    queryset = MessageTemplate.objects.filter(organization=organization)
    if module:
        queryset = queryset.filter(module=module)
    if status:
        queryset = queryset.filter(status=status)
    elif not include_deleted:
        queryset = queryset.exclude(status=TemplateStatus.DELETED)
    if waba_id:
        queryset = queryset.filter(waba_id=waba_id)
    return queryset


def template_default_get(*, organization: Organization, module: str) -> MessageTemplate | None:
    """The template preselected when sending from ``module``, if it is still approved."""
    return MessageTemplate.objects.filter(
        organization=organization, module=module, is_default=True, status=TemplateStatus.APPROVED
    ).first()


@dataclass(frozen=True)
class ModuleState:
    module: str
    label: str
    enabled: bool
    approved_templates: int


def module_state_list(*, organization: Organization) -> list[ModuleState]:
    """Every module with its toggle and how many approved templates it has (the Settings toggles)."""
    enabled = set(
        ModuleSetting.objects.filter(organization=organization, enabled=True).values_list("module", flat=True)
    )
    approved: dict[str, int] = {}
    for module in MessageTemplate.objects.filter(organization=organization, status=TemplateStatus.APPROVED).values_list(
        "module", flat=True
    ):
        approved[module] = approved.get(module, 0) + 1
    return [
        ModuleState(module=value, label=str(label), enabled=value in enabled, approved_templates=approved.get(value, 0))
        for value, label in Module.choices
    ]


def module_is_enabled(*, organization: Organization, module: str) -> bool:
    return ModuleSetting.objects.filter(organization=organization, module=module, enabled=True).exists()
