"""Reads of IM credits, always scoped to one organization. Nothing here writes (not even the
account, which the services create on first use)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, QuerySet

from books.models import Organization

from .choices import PriceCategory
from .models import (
    DEFAULT_LOW_BALANCE_THRESHOLD,
    ZERO,
    CreditAccount,
    CreditPackPrice,
    LedgerEntry,
    Price,
    Purchase,
    Reservation,
)

# --- Balance -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditBalance:
    """An organization's credits at one moment. ``is_low``: available below the threshold."""

    balance: Decimal
    reserved: Decimal
    available: Decimal
    threshold: Decimal
    is_low: bool


def credit_balance_get(*, organization: Organization) -> CreditBalance:
    """The organization's balance; an organization that never had credits has none (and is low)."""
    account = CreditAccount.objects.filter(organization=organization).first()
    if account is None:
        return CreditBalance(ZERO, ZERO, ZERO, DEFAULT_LOW_BALANCE_THRESHOLD, True)
    available = account.available
    return CreditBalance(
        balance=account.balance,
        reserved=account.reserved,
        available=available,
        threshold=account.low_balance_threshold,
        is_low=available < account.low_balance_threshold,
    )


# --- Ledger, reservations, purchases -----------------------------------------------------------------


def ledger_list(
    *,
    organization: Organization,
    kind: str | None = None,
    created_from: datetime.datetime | None = None,
    created_to: datetime.datetime | None = None,
    reference: str = "",
) -> QuerySet[LedgerEntry]:
    """The organization's ledger, newest first; ``created_from`` inclusive, ``created_to`` exclusive."""
    queryset = LedgerEntry.objects.filter(organization=organization).select_related("purchase", "created_by")
    if kind:
        queryset = queryset.filter(kind=kind)
    if created_from is not None:
        queryset = queryset.filter(created_at__gte=created_from)
    if created_to is not None:
        queryset = queryset.filter(created_at__lt=created_to)
    if reference:
        queryset = queryset.filter(reference=reference)
    return queryset


def reservation_get(*, organization: Organization, reference: str) -> Reservation | None:
    return Reservation.objects.filter(organization=organization, reference=reference).first()


def purchase_list(*, organization: Organization, status: str | None = None) -> QuerySet[Purchase]:
    """The organization's purchases, newest first."""
    queryset = Purchase.objects.filter(organization=organization).select_related("created_by")
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def purchase_get(*, organization: Organization, pk: int) -> Purchase:
    """One purchase of the organization; raises Purchase.DoesNotExist for another organization's id."""
    return Purchase.objects.select_related("organization", "created_by").get(organization=organization, pk=pk)


def credit_pack_price_get(*, currency: str) -> CreditPackPrice | None:
    """What one credit costs in ``currency``; None when credits cannot be bought in it."""
    return CreditPackPrice.objects.filter(currency=currency.upper()).first()


# --- Prices ----------------------------------------------------------------------------------------

#: What a message costs when no price row matches its category: service messages are free,
#: anything else costs one credit.
FALLBACK_PRICES: dict[str, Decimal] = {PriceCategory.SERVICE: ZERO}
FALLBACK_PRICE = Decimal("1.00")

#: Meta's finer categories, priced as the category they refine.
CATEGORY_ALIASES: dict[str, str] = {
    "authentication-international": PriceCategory.AUTHENTICATION,
    "authentication_international": PriceCategory.AUTHENTICATION,
    "marketing_lite": PriceCategory.MARKETING,
}


def category_normalize(category: str) -> str:
    """Meta's pricing category as the price table names it (lower case, aliases folded)."""
    word = (category or "").strip().lower()
    return CATEGORY_ALIASES.get(word, word)


@dataclass(frozen=True)
class PriceTable:
    """The price rows that apply to one organization: its own and the defaults, by (category, country)."""

    own: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    default: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def price(self, category: str, country_code: str = "") -> Decimal:
        """Credits for one message: the most specific row wins (organization + country,
        organization, default + country, default); no row → 0 for service, else 1."""
        category = category_normalize(category)
        for rows, country in (
            (self.own, country_code),
            (self.own, ""),
            (self.default, country_code),
            (self.default, ""),
        ):
            if (category, country) in rows:
                return rows[(category, country)]
        return FALLBACK_PRICES.get(category, FALLBACK_PRICE)


def price_table_get(*, organization: Organization) -> PriceTable:
    """Every price row that can apply to ``organization``, in one query (for pricing many messages)."""
    own: dict[tuple[str, str], Decimal] = {}
    default: dict[tuple[str, str], Decimal] = {}
    rows = Price.objects.filter(Q(organization=organization) | Q(organization__isnull=True)).values_list(
        "organization_id", "category", "country_code", "credits"
    )
    for organization_id, category, country_code, credits in rows:  # tuples: read per bulk chunk and drain batch
        (own if organization_id is not None else default)[(category, country_code)] = credits
    return PriceTable(own=own, default=default)
