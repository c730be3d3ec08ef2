"""REST API of IM credits: ``/api/v1/credits`` (the balance), ``/credits/ledger`` and
``/credits/purchases``.

Organization and role are resolved as in the books API (``organization_id``; token auth).
Reading needs the ``credits.manage`` or the ``reports.view`` permission; buying needs
``credits.manage``. Another organization's purchase is 404, as one that does not exist.

Buying answers 201 with the pending purchase and its ``checkout_url``: the buyer pays there and
the gateway's confirmation adds the credits. If the gateway refuses to open a checkout, the
purchase is kept as failed and the answer is 502 with the gateway's reason.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from books.api.access import OrganizationViewSet
from books.api.exceptions import service_errors
from books.api.fields import MAX_ID
from books.permissions import Perm
from credits.api.serializers import (
    CreditBalanceSerializer,
    LedgerEntrySerializer,
    LedgerFilterSerializer,
    PurchaseCreateSerializer,
    PurchaseSerializer,
)
from credits.gateways import GatewayError
from credits.models import CreditAccount, LedgerEntry, Purchase
from credits.selectors import credit_balance_get, ledger_list, purchase_get, purchase_list
from credits.services import purchase_checkout_start, purchase_create

READ_PERMS = (Perm.CREDITS_MANAGE, Perm.REPORTS_VIEW)


class GatewayUnavailable(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = gettext_lazy("The payment gateway did not open a checkout.")
    default_code = "gateway_error"


class CreditsViewSet(OrganizationViewSet):
    """Reads need ``credits.manage`` or ``reports.view``; writes need ``credits.manage``."""

    def check_role(self, request: Request) -> None:
        if self.writing:
            self.require(Perm.CREDITS_MANAGE)
        elif not any(self.membership.has_perm(perm) for perm in READ_PERMS):
            raise exceptions.PermissionDenied(_("Your role does not allow reading IM credits."))


@extend_schema_view(retrieve=extend_schema(summary="Get the IM credit balance"))
class BalanceViewSet(CreditsViewSet):
    """The organization's IM credits: owned, held for messages in flight, available."""

    serializer_class = CreditBalanceSerializer
    queryset = CreditAccount.objects.none()  # a singleton: read with credit_balance_get
    pagination_class = None

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(credit_balance_get(organization=self.organization)).data)


@extend_schema_view(list=extend_schema(summary="List ledger entries", parameters=[LedgerFilterSerializer]))
class LedgerViewSet(CreditsViewSet):
    """Every change of the organization's credits, newest first."""

    serializer_class = LedgerEntrySerializer
    queryset = LedgerEntry.objects.all()

    def organization_queryset(self) -> QuerySet[LedgerEntry]:
        return ledger_list(organization=self.organization)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        filters = LedgerFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = ledger_list(organization=self.organization, **filters.bounds(self.organization.tzinfo))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List purchases of IM credits"),
    retrieve=extend_schema(summary="Get a purchase of IM credits"),
    create=extend_schema(
        summary="Buy IM credits",
        request=PurchaseCreateSerializer,
        responses={
            201: PurchaseSerializer,
            502: OpenApiResponse(description="The payment gateway refused to open a checkout."),
        },
    ),
)
class PurchaseViewSet(CreditsViewSet):
    """Purchases of IM credits, newest first; pay a pending one at its ``checkout_url``."""

    serializer_class = PurchaseSerializer
    queryset = Purchase.objects.all()
    lookup_url_kwarg = "purchase_id"

    def organization_queryset(self) -> QuerySet[Purchase]:
        return purchase_list(organization=self.organization)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.organization_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def get_object(self) -> Purchase:
        pk = int(self.kwargs[self.lookup_url_kwarg])
        try:
            if pk > MAX_ID:
                raise Purchase.DoesNotExist
            return purchase_get(organization=self.organization, pk=pk)
        except Purchase.DoesNotExist:
            raise exceptions.NotFound(_("Purchase not found.")) from None

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = PurchaseCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors({}):
            purchase = purchase_create(
                organization=self.organization, quantity=body.validated_data["quantity"], user=request.user
            )
        # The buyer comes back to the hub's pages, as after buying in the browser.
        success_url = request.build_absolute_uri(reverse("credits:purchase", args=[purchase.pk]))
        cancel_url = request.build_absolute_uri(reverse("credits:purchase_cancel", args=[purchase.pk]))
        try:
            purchase = purchase_checkout_start(purchase=purchase, success_url=success_url, cancel_url=cancel_url)
        except GatewayError as exc:
            raise GatewayUnavailable(exc.message) from None
        return Response(self.get_serializer(purchase).data, status=status.HTTP_201_CREATED)
