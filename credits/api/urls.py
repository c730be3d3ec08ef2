"""REST API v1 of IM credits: ``/api/v1/credits``, ``/credits/ledger``, ``/credits/purchases`` (under ``api/v1/``)."""

from django.urls import re_path

from credits.api.views import BalanceViewSet, LedgerViewSet, PurchaseViewSet

app_name = "credits-api"

# "(?:/)?": both /api/v1/credits/ledger and …/ledger/ answer; the schema documents the former.
urlpatterns = [
    re_path(r"^credits(?:/)?$", BalanceViewSet.as_view({"get": "retrieve"}), name="balance"),
    re_path(r"^credits/ledger(?:/)?$", LedgerViewSet.as_view({"get": "list"}), name="ledger"),
    re_path(
        r"^credits/purchases(?:/)?$", PurchaseViewSet.as_view({"get": "list", "post": "create"}), name="purchase-list"
    ),
    re_path(
        r"^credits/purchases/(?P<purchase_id>[0-9]+)(?:/)?$",
        PurchaseViewSet.as_view({"get": "retrieve"}),
        name="purchase-detail",
    ),
]
