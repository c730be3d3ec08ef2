"""Django admin for IM credits: accounts, the ledger, reservations, purchases and prices.

Scoped as the books admin is (``books.admin.OrganizationScopedMixin``): a staff user who is not a
superuser sees the rows of the organizations where their role grants ``settings.manage``. The
models are added to ``books.admin.ORGANIZATION_LOOKUPS`` here.

Credits are money: only superusers (the hub's operators) change prices, adjust a balance, mark a
purchase paid by hand or refund one; organization administrators may look, and change their own
low-balance threshold. Every change goes through :mod:`credits.services`, so it writes its ledger
entry under the credit lock like any other. The ledger and reservations are read-only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from books.admin import ORGANIZATION_FILTER, ORGANIZATION_LOOKUPS, ReadOnlyScopedAdmin, ScopedAdmin
from books.formatting import money_format

from .choices import PurchaseStatus
from .models import CREDITS, CreditAccount, CreditPackPrice, LedgerEntry, Price, Purchase, Reservation
from .services import credits_adjust, credits_threshold_set, purchase_confirm, purchase_refund

ORGANIZATION_LOOKUPS.update(
    {
        CreditAccount: "organization",
        LedgerEntry: "organization",
        Reservation: "organization",
        Price: "organization",
        Purchase: "organization",
    }
)


def _superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


# --- Accounts ---------------------------------------------------------------------------------------


class AdjustForm(forms.Form):
    amount = forms.DecimalField(
        label=_("credits"),
        max_digits=CREDITS["max_digits"],
        decimal_places=CREDITS["decimal_places"],
        help_text=_("Positive adds credits, negative takes them away."),
    )
    note = forms.CharField(label=_("reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)


@admin.register(CreditAccount)
class CreditAccountAdmin(ScopedAdmin):
    list_display = ("organization", "balance", "reserved", "available_display", "low_balance_threshold", "is_low")
    list_select_related = ("organization",)
    search_fields = ("organization__name",)
    fields = (
        "organization",
        "balance",
        "reserved",
        "available_display",
        "low_balance_threshold",
        "low_balance_notified",
        "adjust_link",
        "updated_at",
    )
    readonly_fields = (
        "balance",
        "reserved",
        "available_display",
        "low_balance_notified",
        "adjust_link",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: CreditAccount | None = None) -> tuple[str, ...]:
        fixed = ("organization",) if obj is not None else ()
        return (*fixed, *self.readonly_fields)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)  # accounts are otherwise created on first use

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False  # the ledger would no longer add up

    def save_model(self, request: HttpRequest, obj: CreditAccount, form: forms.ModelForm, change: bool) -> None:
        # Through the service, under the lock: the balance itself is never saved from a form.
        account = credits_threshold_set(
            organization=obj.organization, threshold=form.cleaned_data["low_balance_threshold"]
        )
        obj.pk = account.pk
        obj.refresh_from_db()

    @admin.display(description=_("available"))
    def available_display(self, obj: CreditAccount) -> Decimal:
        return obj.available

    @admin.display(description=_("low"), boolean=True)
    def is_low(self, obj: CreditAccount) -> bool:
        return obj.available < obj.low_balance_threshold

    @admin.display(description=_("adjust"))
    def adjust_link(self, obj: CreditAccount) -> str:
        if obj.pk is None:
            return ""
        url = reverse("admin:credits_creditaccount_adjust", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, gettext("Adjust credits…"))

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="credits_creditaccount_adjust",
            ),
            *super().get_urls(),
        ]

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Add or take away credits with a reason (``credits_adjust``): superusers only."""
        if not _superuser(request):
            raise PermissionDenied
        account = get_object_or_404(CreditAccount.objects.select_related("organization"), pk=object_id)
        form = AdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = credits_adjust(
                    organization=account.organization,
                    amount=form.cleaned_data["amount"],
                    note=form.cleaned_data["note"],
                    user=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self.message_user(
                    request,
                    gettext("%(organization)s: %(amount)s credits, balance now %(balance)s.")
                    % {"organization": account.organization, "amount": entry.amount, "balance": entry.balance_after},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:credits_creditaccount_change", args=[account.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Adjust the IM credits of %(organization)s") % {"organization": account.organization},
            "account": account,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/credits/creditaccount/adjust.html", context)


# --- Ledger and reservations ------------------------------------------------------------------------


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "created_at",
        "organization",
        "kind",
        "amount",
        "reserved_change",
        "balance_after",
        "reserved_after",
        "reference",
        "category",
        "country_code",
    )
    list_filter = ("kind", "category", ORGANIZATION_FILTER)
    search_fields = ("reference", "note")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the ledger only grows
        return actions


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "reference",
        "organization",
        "amount",
        "category",
        "country_code",
        "status",
        "charged",
        "created_at",
    )
    list_filter = ("status", "category", ORGANIZATION_FILTER)
    search_fields = ("reference",)
    list_select_related = ("organization",)
    date_hierarchy = "created_at"


# --- Purchases ---------------------------------------------------------------------------------------


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "created_at",
        "organization",
        "quantity",
        "total_display",
        "gateway",
        "status",
        "receipt_number",
        "paid_at",
    )
    list_filter = ("status", "gateway", ORGANIZATION_FILTER)
    search_fields = ("receipt_number", "gateway_reference", "organization__name")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"
    actions = ("mark_paid", "refund")

    @admin.display(description=_("total"), ordering="total")
    def total_display(self, obj: Purchase) -> str:
        return money_format(obj.total, obj.currency, organization=obj.organization)

    def has_mark_paid_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)

    @admin.action(description=_("Mark paid (manual payment)"), permissions=["mark_paid"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Purchase]) -> None:
        """For a payment received outside the gateway (a bank transfer), or a lost webhook."""
        paid = 0
        for purchase in queryset.select_related("organization").order_by("id"):
            if purchase.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED):
                continue
            try:
                purchase_confirm(
                    purchase=purchase, gateway_reference=purchase.gateway_reference or f"manual-{purchase.pk}"
                )
            except ValidationError as exc:
                self.message_user(request, f"{purchase}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                paid += 1
        if paid:
            self.message_user(
                request,
                ngettext("%(count)d purchase marked paid.", "%(count)d purchases marked paid.", paid) % {"count": paid},
                messages.SUCCESS,
            )

    @admin.action(description=_("Refund (take the credits back)"), permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Purchase]) -> None:
        """After the payment was refunded in the gateway's dashboard."""
        refunded = 0
        for purchase in queryset.select_related("organization").order_by("id"):
            try:
                purchase_refund(purchase=purchase, user=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{purchase}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                refunded += 1
        if refunded:
            self.message_user(
                request,
                ngettext("%(count)d purchase refunded.", "%(count)d purchases refunded.", refunded)
                % {"count": refunded},
                messages.SUCCESS,
            )


# --- Prices ------------------------------------------------------------------------------------------


@admin.register(Price)
class PriceAdmin(ScopedAdmin):
    """Organization administrators see their own prices; only superusers set prices."""

    list_display = ("category", "country_code", "credits", "organization", "updated_at")
    list_filter = ("category", ("organization", admin.RelatedOnlyFieldListFilter))
    search_fields = ("country_code", "organization__name")
    list_select_related = ("organization",)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)


@admin.register(CreditPackPrice)
class CreditPackPriceAdmin(admin.ModelAdmin):
    """The price of one credit per currency: the hub's operators' (superusers only)."""

    list_display = ("currency", "unit_price", "updated_at")
    search_fields = ("currency",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return _superuser(request)
