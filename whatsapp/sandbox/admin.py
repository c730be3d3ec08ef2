"""Django admin for the sandbox's phone numbers: the throughput level and messaging limit Meta would set.

Shown only while the sandbox is enabled (production has no fake Meta). A change goes through
:func:`.services.phone_number_limits_update`, so an upgrade is announced by webhook as Meta does.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import services
from .graph import sandbox_is_enabled
from .limits import throughput_cap
from .models import SandboxPhoneNumber


@admin.register(SandboxPhoneNumber)
class SandboxPhoneNumberAdmin(admin.ModelAdmin):
    list_display = [
        "display_phone_number",
        "phone_number_id",
        "account",
        "registered",
        "throughput_level",
        "messages_per_second",
        "messaging_limit_tier",
    ]
    list_filter = ["throughput_level", "messaging_limit_tier", "registered"]
    search_fields = ["display_phone_number", "phone_number_id", "verified_name"]
    fields = [
        "account",
        "phone_number_id",
        "display_phone_number",
        "verified_name",
        "code_verification_status",
        "registered",
        "throughput_level",
        "messaging_limit_tier",
    ]
    readonly_fields = [
        "account",
        "phone_number_id",
        "display_phone_number",
        "verified_name",
        "code_verification_status",
        "registered",
    ]

    @admin.display(description=_("messages a second"))
    def messages_per_second(self, obj: SandboxPhoneNumber) -> int:
        return throughput_cap(obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return sandbox_is_enabled() and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sandbox_is_enabled() and super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sandbox_is_enabled() and super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # numbers come from sandbox_setup, as Meta's come from the WABA

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SandboxPhoneNumber, form: Any, change: bool) -> None:
        before = SandboxPhoneNumber.objects.get(pk=obj.pk)
        wanted = obj.throughput_level, obj.messaging_limit_tier
        obj.throughput_level, obj.messaging_limit_tier = before.throughput_level, before.messaging_limit_tier
        services.phone_number_limits_update(phone=obj, throughput_level=wanted[0], messaging_limit_tier=wanted[1])
