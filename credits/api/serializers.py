"""Serializers of ``/api/v1/credits``. Amounts of credits and money are strings with two decimals,
as everywhere in the API."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from books.api.fields import BoundedDateField
from credits.choices import EntryKind
from credits.models import CREDITS, LedgerEntry, Purchase
from credits.services.purchases import MAX_QUANTITY


def _credits(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(read_only=True, **CREDITS, **kwargs)


class CreditBalanceSerializer(serializers.Serializer):
    """The organization's IM credits now."""

    balance = _credits(help_text=gettext_lazy("Credits owned."))
    reserved = _credits(help_text=gettext_lazy("Credits held for messages not yet charged."))
    available = _credits(help_text=gettext_lazy("Credits new messages can use: balance − reserved."))
    low_balance_threshold = _credits(
        source="threshold", help_text=gettext_lazy("Members are notified when available falls below this.")
    )
    is_low = serializers.BooleanField(read_only=True, help_text=gettext_lazy("available < low_balance_threshold."))


KIND_HELP = gettext_lazy(
    "purchase, reservation (held for a message), settlement (charged what WhatsApp reported), release "
    "(hold let go, nothing charged), refund or adjustment."
)


class LedgerEntrySerializer(serializers.ModelSerializer):
    """One change of the organization's credits."""

    # A string, not an enum, in the schema (as the other APIs' "status" fields).
    kind = serializers.CharField(help_text=KIND_HELP)
    purchase_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "reserved_change",
            "balance_after",
            "reserved_after",
            "reference",
            "category",
            "country_code",
            "note",
            "purchase_id",
            "created_at",
        ]
        read_only_fields = fields


class LedgerFilterSerializer(serializers.Serializer):
    """Query parameters of ``GET /credits/ledger``."""

    kind = serializers.ChoiceField(choices=EntryKind.choices, required=False, help_text=KIND_HELP)
    date_start = BoundedDateField(
        required=False, help_text=gettext_lazy("Entries on or after this day (the organization's time zone).")
    )
    date_end = BoundedDateField(
        required=False, help_text=gettext_lazy("Entries on or before this day (the organization's time zone).")
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("date_start"), attrs.get("date_end")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"date_end": [_("This is before date_start.")]})
        return attrs

    def bounds(self, tzinfo: datetime.tzinfo) -> dict[str, Any]:
        """The validated filters as ``ledger_list`` arguments: whole days in ``tzinfo``."""
        data = self.validated_data
        bounds: dict[str, Any] = {"kind": data.get("kind")}
        if data.get("date_start") is not None:
            bounds["created_from"] = datetime.datetime.combine(data["date_start"], datetime.time.min, tzinfo=tzinfo)
        if data.get("date_end") is not None:
            next_day = data["date_end"] + datetime.timedelta(days=1)
            bounds["created_to"] = datetime.datetime.combine(next_day, datetime.time.min, tzinfo=tzinfo)
        return bounds


class PurchaseSerializer(serializers.ModelSerializer):
    """A purchase of IM credits. Pay it at ``checkout_url`` while it is pending."""

    status = serializers.CharField(help_text=gettext_lazy("pending, paid, failed, cancelled or refunded."))
    gateway = serializers.CharField(help_text=gettext_lazy("stripe or sandbox."))
    checkout_url = serializers.SerializerMethodField(
        help_text=gettext_lazy("The payment page, while the purchase is pending; null afterwards.")
    )

    class Meta:
        model = Purchase
        fields = [
            "id",
            "quantity",
            "unit_price",
            "currency",
            "total",
            "status",
            "gateway",
            "checkout_url",
            "receipt_number",
            "failure_reason",
            "created_at",
            "paid_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_checkout_url(self, purchase: Purchase) -> str | None:
        if purchase.status != "pending" or not purchase.checkout_url:
            return None
        request = self.context.get("request")
        if purchase.checkout_url.startswith("/") and request is not None:
            return request.build_absolute_uri(purchase.checkout_url)
        return purchase.checkout_url


class PurchaseCreateSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(
        min_value=1, max_value=MAX_QUANTITY, help_text=gettext_lazy("How many IM credits to buy.")
    )
