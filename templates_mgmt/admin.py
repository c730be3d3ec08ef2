"""Django admin for message templates: read-only, scoped like the books admin.

A template's content and approval status are Meta's (sync and the status webhook write them);
the builder that creates and edits templates comes with its own pages and services. Until then
the admin shows what the hub knows, including the components as Meta returned them.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from books.admin import ORGANIZATION_FILTER, ORGANIZATION_LOOKUPS, ReadOnlyScopedAdmin

from .models import MessageTemplate

ORGANIZATION_LOOKUPS[MessageTemplate] = "organization"


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ReadOnlyScopedAdmin):
    list_display = ("name", "language", "category", "status", "quality_score", "organization", "status_updated_at")
    list_filter = ("status", "category", "language", ORGANIZATION_FILTER)
    search_fields = ("name", "meta_id", "waba_id")
    list_select_related = ("organization",)
    readonly_fields = ("components_display", "status_detail_display")
    fieldsets = (
        (None, {"fields": ("organization", "waba_id", "meta_id", "name", "language", "category", "parameter_format")}),
        (
            _("Approval"),
            {
                "fields": (
                    "status",
                    "status_reason",
                    "rejection_recommendation",
                    "status_updated_at",
                    "quality_score",
                    "status_detail_display",
                )
            },
        ),
        (_("Components"), {"fields": ("components_display",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: MessageTemplate | None = None) -> list[Any]:
        # Whatever the builder adds to the model shows too, in a section of its own.
        fieldsets = list(super().get_fieldsets(request, obj))
        placed = {name for _name, options in fieldsets for name in options["fields"]}
        shown = {"components": "components_display", "status_detail": "status_detail_display"}
        rest = [
            field.name
            for field in MessageTemplate._meta.concrete_fields
            if field.name not in placed and shown.get(field.name) not in placed and not field.primary_key
        ]
        if rest:
            fieldsets.insert(-1, (_("Builder"), {"fields": rest}))
        return fieldsets

    @admin.display(description=_("components"))
    def components_display(self, obj: MessageTemplate) -> SafeString | str:
        return _pretty_json(obj.components) if obj.components else ""

    @admin.display(description=_("status detail"))
    def status_detail_display(self, obj: MessageTemplate) -> SafeString | str:
        return _pretty_json(obj.status_detail) if obj.status_detail else ""


def _pretty_json(value: object) -> SafeString:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )
