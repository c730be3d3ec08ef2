"""Django admin for WhatsApp: business accounts, numbers, channels, messages and raw webhooks.

Scoped as the books admin is (``books.admin.OrganizationScopedMixin``): a staff user who is not a
superuser sees only the rows of organizations where their role grants ``settings.manage``. The
models are added to ``books.admin.ORGANIZATION_LOOKUPS`` here, which is how the mixin learns how
each one reaches its organization.

The access token is write-only: no list, form or page shows it (nor its ciphertext); a "new
access token" field replaces it when filled. Messages and webhook events are written by the
services only and are read-only here; webhook events are for superusers only (a raw body of
one tenant may name numbers of several).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from books.admin import (
    ORGANIZATION_FILTER,
    ORGANIZATION_LOOKUPS,
    ReadOnlyScopedAdmin,
    ReadOnlyScopedTabularInline,
    ScopedAdmin,
    document_admin_action_register,
)
from books.models import Document
from books.phone import phone_display

from .choices import Audience, Category, MessageStatus
from .models import Channel, Message, PhoneNumber, WebhookEvent, WhatsAppAccount
from .services.notifications import NotificationRefused, notification_send, subject_for_document

ORGANIZATION_LOOKUPS.update(
    {
        WhatsAppAccount: "organization",
        PhoneNumber: "organization",
        Channel: "organization",
        Message: "organization",
    }
)

#: What a token can be: one line of printable ASCII, as an HTTP header carries it.
_TOKEN = re.compile(r"^[\x21-\x7e]+$")

#: The audience × category pairs that are channels (the seed's customer utility, customer
#: marketing and vendor utility numbers).
CHANNEL_PAIRS = {
    (Audience.CUSTOMER, Category.UTILITY),
    (Audience.CUSTOMER, Category.MARKETING),
    (Audience.VENDOR, Category.UTILITY),
}


def _pretty_json(value: Any) -> SafeString:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


# --- Business accounts ---------------------------------------------------------------------------


class WhatsAppAccountAdminForm(forms.ModelForm):
    """The account's ids and state; the token can be replaced, never read."""

    new_access_token = forms.CharField(
        label=_("new access token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "The stored token is never shown. Paste a new system-user access token to replace it; "
            "leave empty to keep the current one."
        ),
    )

    class Meta:
        model = WhatsAppAccount
        fields = ("organization", "name", "waba_id", "app_id", "status", "default_phone_number", "customer_same_number")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            token = self.fields["new_access_token"]
            token.required, token.label = True, _("access token")
            token.help_text = _("A system-user access token of the business account. It is stored encrypted.")
        if "default_phone_number" in self.fields:
            # Only this account's own numbers (a new account has none until they are fetched).
            self.fields["default_phone_number"].queryset = PhoneNumber.objects.filter(account_id=self.instance.pk)

    def clean_new_access_token(self) -> str:
        token = self.cleaned_data["new_access_token"]
        if token and not _TOKEN.match(token):
            # The message must not quote the value: it is a secret.
            raise ValidationError(
                _("An access token is one line of letters, digits and punctuation, without spaces."),
                code="invalid_token",
            )
        return token

    def _get_validation_exclusions(self) -> set[str]:
        # The organization is read-only once the account exists; it must still count for
        # "one live account per organization", so a status change is refused, not a 500.
        return super()._get_validation_exclusions() - {"organization"}

    def save(self, commit: bool = True) -> WhatsAppAccount:
        token = self.cleaned_data.get("new_access_token")
        if token:
            self.instance.access_token = token
        return super().save(commit=commit)


class PhoneNumberInline(ReadOnlyScopedTabularInline):
    model = PhoneNumber
    fields = (
        "display_phone_number",
        "phone_number_id",
        "verified_name",
        "code_verification_status",
        "quality_rating",
        "status",
        "throughput_level",
        "messaging_limit_tier",
        "synced_at",
    )
    readonly_fields = fields
    show_change_link = True


@admin.register(WhatsAppAccount)
class WhatsAppAccountAdmin(ScopedAdmin):
    form = WhatsAppAccountAdminForm
    inlines = (PhoneNumberInline,)
    list_display = (
        "__str__",
        "organization",
        "waba_id",
        "status",
        "default_phone_number",
        "checked_at",
        "connected_at",
    )
    list_filter = ("status", ORGANIZATION_FILTER)
    search_fields = ("name", "waba_id", "app_id", "organization__name")
    list_select_related = ("organization", "default_phone_number")
    readonly_fields = (
        "access_token_state",
        "checked_at",
        "check_error_code",
        "check_error",
        "token_refused_at",
        "meta_event",
        "meta_event_at",
        "meta_event_detail_display",
        "connected_by",
        "connected_at",
        "updated_at",
        "disconnected_at",
    )
    fieldsets = (
        (None, {"fields": ("organization", "name", "waba_id", "app_id", "status")}),
        (_("Access token"), {"fields": ("access_token_state", "new_access_token")}),
        (_("Numbers"), {"fields": ("default_phone_number", "customer_same_number")}),
        (
            _("Health"),
            {
                "fields": (
                    "checked_at",
                    "check_error_code",
                    "check_error",
                    "token_refused_at",
                    "meta_event",
                    "meta_event_at",
                )
            },
        ),
        (_("Latest Meta event"), {"fields": ("meta_event_detail_display",), "classes": ("collapse",)}),
        (_("Audit"), {"fields": ("connected_by", "connected_at", "updated_at", "disconnected_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: WhatsAppAccount | None = None) -> tuple[str, ...]:
        return ("organization", *self.readonly_fields) if obj is not None else self.readonly_fields

    def get_fieldsets(self, request: HttpRequest, obj: WhatsAppAccount | None = None) -> Any:
        if obj is None:  # a new account has nothing to report yet
            return (
                (None, {"fields": ("organization", "name", "waba_id", "app_id", "status")}),
                (_("Access token"), {"fields": ("new_access_token",)}),
                (_("Numbers"), {"fields": ("customer_same_number",)}),
            )
        return super().get_fieldsets(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        # Deleting drops the numbers and channels; changing accounts disconnects instead.
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_inlines(self, request: HttpRequest, obj: WhatsAppAccount | None = None) -> Any:
        return self.inlines if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: WhatsAppAccount, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.connected_by = request.user
            obj.save()
            return
        # Only what was changed here: webhook and "test connection" tasks write the health fields
        # of the same row, and the token is re-encrypted only when it is replaced.
        model_fields = {field.name for field in WhatsAppAccount._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in model_fields]
        if form.cleaned_data.get("new_access_token"):
            changed.append("access_token")
            if obj.token_refused_at is not None:
                # A refused token had paused sending: the new one resumes it (a refused one pauses again).
                obj.token_refused_at = None
                changed.append("token_refused_at")
                from whatsapp.services.pump import dispatch_wake

                transaction.on_commit(dispatch_wake)
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])

    @admin.display(description=_("access token"))
    def access_token_state(self, obj: WhatsAppAccount) -> str:
        # The field is decrypted on load; only whether it is there is shown.
        return gettext("Stored, encrypted") if obj.access_token else gettext("Not set")

    @admin.display(description=_("latest Meta event detail"))
    def meta_event_detail_display(self, obj: WhatsAppAccount) -> SafeString | str:
        return _pretty_json(obj.meta_event_detail) if obj.meta_event_detail else ""


# --- Numbers and channels -------------------------------------------------------------------------


@admin.register(PhoneNumber)
class PhoneNumberAdmin(ReadOnlyScopedAdmin):
    """As Meta last reported the number: synced by the services, not edited here."""

    list_display = (
        "display_phone_number",
        "verified_name",
        "account",
        "organization",
        "verified",
        "quality_rating",
        "status",
        "throughput_level",
        "messaging_limit_tier",
        "synced_at",
    )
    list_filter = ("code_verification_status", "quality_rating", "status", ORGANIZATION_FILTER)
    search_fields = ("display_phone_number", "phone_number_id", "verified_name")
    list_select_related = ("account", "organization")

    @admin.display(description=_("verified"), boolean=True)
    def verified(self, obj: PhoneNumber) -> bool:
        return obj.is_verified


class ChannelAdminForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ("account", "audience", "category", "phone_number")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        account = cleaned.get("account") or (self.instance.account if self.instance.account_id else None)
        number = cleaned.get("phone_number")
        audience, category = cleaned.get("audience"), cleaned.get("category")
        if audience and category and (audience, category) not in CHANNEL_PAIRS:
            self.add_error(
                "category",
                _("Channels are customer utility, customer marketing and vendor utility."),
            )
        if account is not None and number is not None:
            if number.account_id != account.pk:
                self.add_error("phone_number", _("Choose a number of this business account."))
            elif not number.is_verified:
                self.add_error("phone_number", _("Only verified numbers can send: verify this number first."))
        return cleaned

    def _get_validation_exclusions(self) -> set[str]:
        # The account is read-only once the channel exists; it still counts for "one channel per
        # account, audience and category".
        return super()._get_validation_exclusions() - {"account"}


@admin.register(Channel)
class ChannelAdmin(ScopedAdmin):
    form = ChannelAdminForm
    list_display = ("account", "audience", "category", "phone_number", "organization", "updated_at")
    list_filter = ("audience", "category", ORGANIZATION_FILTER)
    search_fields = ("phone_number__display_phone_number", "account__waba_id", "account__name")
    list_select_related = ("account", "phone_number", "organization")
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: Channel | None = None) -> tuple[str, ...]:
        return ("account", "updated_at") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Channel, form: forms.ModelForm, change: bool) -> None:
        obj.organization_id = obj.account.organization_id
        super().save_model(request, obj, form, change)


# --- Messages -------------------------------------------------------------------------------------

_STATUS_COLORS = {
    MessageStatus.QUEUED: "#6b7280",
    MessageStatus.SENDING: "#6b7280",
    MessageStatus.SENT: "#2563eb",
    MessageStatus.DELIVERED: "#0f766e",
    MessageStatus.READ: "#15803d",
    MessageStatus.FAILED: "#b91c1c",
    MessageStatus.RECEIVED: "#7c3aed",
}


@admin.register(Message)
class MessageAdmin(ReadOnlyScopedAdmin):
    """Written by the services (sending, webhooks); shown here to find out what happened."""

    list_display = (
        "created_at",
        "status_badge",
        "direction",
        "phone_display",
        "recipient",
        "document",
        "template_name",
        "organization",
    )
    list_filter = ("status", "direction", "message_type", "category", ORGANIZATION_FILTER)
    search_fields = ("phone", "wamid", "template_name")
    list_select_related = ("organization", "contact", "contact_person", "document")
    readonly_fields = ("status_badge", "fix_hint_display", "status_history_display", "payload_display")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "organization",
                    "direction",
                    "message_type",
                    "status_badge",
                    "phone",
                    "wa_id",
                    "profile_name",
                    "contact",
                    "contact_person",
                    "document",
                )
            },
        ),
        (_("Error"), {"fields": ("error_code", "error_subcode", "error_title", "error_details", "fix_hint_display")}),
        (
            _("Content"),
            {
                "fields": (
                    "template_name",
                    "template_language",
                    "category",
                    "content",
                    "reply_to_wamid",
                    "media_id",
                    "media_mime_type",
                    "media_filename",
                    "media_file",
                    "media_state",
                )
            },
        ),
        (_("Delivery"), {"fields": ("wamid", "status_history_display", "attempts", "account", "phone_number")}),
        (_("Pricing"), {"fields": ("pricing_type", "pricing_category", "billable")}),
        (_("Payload"), {"fields": ("payload_display",), "classes": ("collapse",)}),
        (None, {"fields": ("created_by", "created_at", "updated_at")}),
    )

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Message) -> SafeString:
        return format_html(
            '<span style="background: {}; color: #fff; padding: 1px 8px; border-radius: 8px; white-space: nowrap">'
            "{}</span>",
            _STATUS_COLORS.get(obj.status, "#6b7280"),
            obj.get_status_display(),
        )

    @admin.display(description=_("phone"), ordering="phone")
    def phone_display(self, obj: Message) -> str:
        return phone_display(obj.phone)

    @admin.display(description=_("recipient or sender"))
    def recipient(self, obj: Message) -> str:
        return obj.recipient_name

    @admin.display(description=_("what to do"))
    def fix_hint_display(self, obj: Message) -> str:
        return obj.fix_hint

    @admin.display(description=_("status history"))
    def status_history_display(self, obj: Message) -> SafeString | str:
        steps = obj.status_history()
        if not steps:
            return ""
        return format_html(
            "<ol style='margin: 0; padding-left: 1.2em'>{}</ol>",
            format_html_join(
                "",
                "<li>{} · <time datetime='{}'>{}</time></li>",
                (
                    (MessageStatus(status).label, at.isoformat(), formats.localize(timezone.localtime(at)))
                    for status, at in steps
                ),
            ),
        )

    @admin.display(description=_("payload"))
    def payload_display(self, obj: Message) -> SafeString | str:
        return _pretty_json(obj.payload) if obj.payload else ""


# --- Webhook events -----------------------------------------------------------------------------


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Meta's webhook bodies as received: superusers only, never changed here."""

    list_display = ("pk", "received_at", "state", "attempts", "processed_at", "body_size")
    list_filter = ("state",)
    search_fields = ("body_sha256",)
    fields = ("received_at", "state", "attempts", "processed_at", "error", "body_sha256", "body_pretty")
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEvent]:
        # Bodies run to megabytes: the list needs only their length.
        return super().get_queryset(request).annotate(body_length=Length("body")).defer("body")

    @admin.display(description=_("size"), ordering="body_length")
    def body_size(self, obj: WebhookEvent) -> str:
        return gettext("%(count)s characters") % {"count": f"{obj.body_length:,}"}

    @admin.display(description=_("body"))
    def body_pretty(self, obj: WebhookEvent) -> SafeString:
        try:
            return _pretty_json(json.loads(obj.body))
        except ValueError:
            return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', obj.body)


# --- "Send by WhatsApp" on the Document list (books.admin knows nothing of WhatsApp) ---------------


@document_admin_action_register
@admin.action(description=_("Send by WhatsApp (default template)"), permissions=["change"])
def send_by_whatsapp(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Document]) -> None:
    """Send each selected document with its module's default template to its "Share with" people
    (as the Send page would by default), through ``notification_send``; say what was queued and
    why each refused document was refused."""
    queued = documents = 0
    for document in queryset.select_related("organization", "contact").order_by("id"):
        try:
            result = notification_send(subject=subject_for_document(document=document), user=request.user)
        except NotificationRefused as refusal:
            modeladmin.message_user(
                request,
                gettext("%(number)s was not sent: %(reason)s") % {"number": document.number, "reason": refusal.message},
                messages.ERROR,
            )
        else:
            documents += 1
            queued += len(result.messages)
    if documents:
        modeladmin.message_user(
            request,
            ngettext(
                "%(documents)d document sent by WhatsApp (%(messages)d message queued).",
                "%(documents)d documents sent by WhatsApp (%(messages)d messages queued).",
                documents,
            )
            % {"documents": documents, "messages": queued},
            messages.SUCCESS,
        )


# --- Payment reminders by due date (whatsapp.services.reminders) -----------------------------------
# Read-only: rules and the schedule are changed on Settings → WhatsApp → Reminders, whose service
# keeps each organization's PeriodicTask in step (the task itself is editable under Periodic tasks).

from .models import ReminderRule, ReminderSchedule, ReminderSent  # noqa: E402  (this section's own models)

ORGANIZATION_LOOKUPS.update(
    {
        ReminderRule: "organization",
        ReminderSchedule: "organization",
        ReminderSent: "organization",
    }
)


@admin.register(ReminderRule)
class ReminderRuleAdmin(ReadOnlyScopedAdmin):
    list_display = ("name", "organization", "description", "enabled", "template", "updated_at")
    list_filter = ("enabled", "when", ORGANIZATION_FILTER)
    search_fields = ("name",)
    list_select_related = ("organization", "template")


@admin.register(ReminderSchedule)
class ReminderScheduleAdmin(ReadOnlyScopedAdmin):
    list_display = ("organization", "enabled", "send_at", "periodic_task", "last_run_on", "last_run_at")
    list_filter = ("enabled",)
    list_select_related = ("organization", "periodic_task")


@admin.register(ReminderSent)
class ReminderSentAdmin(ReadOnlyScopedAdmin):
    """What each rule did with each invoice: sent (with its first message) or skipped with the reason."""

    list_display = ("created_at", "organization", "rule", "document", "run_on", "outcome", "reason_code", "message")
    list_filter = ("outcome", "reason_code", ORGANIZATION_FILTER)
    search_fields = ("document__number", "rule__name", "reason")
    list_select_related = ("organization", "rule", "document", "message")
    date_hierarchy = "created_at"
