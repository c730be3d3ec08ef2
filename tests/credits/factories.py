"""Organizations with credits, prices and purchases, made through the services (as the hub does)."""

from decimal import Decimal

from books.models import Organization
from credits.models import CreditPackPrice, Price
from credits.services import credits_adjust

DEFAULT_PRICES = {
    "marketing": Decimal("1.00"),
    "utility": Decimal("0.50"),
    "authentication": Decimal("0.50"),
    "service": Decimal("0.00"),
}


def default_prices() -> None:
    """The default price table and the INR/USD prices of a credit, as the data migration seeds them.

    Tests set them explicitly: a transactional test elsewhere in the run flushes migration data.
    """
    for category, credits in DEFAULT_PRICES.items():
        Price.objects.update_or_create(
            organization=None, category=category, country_code="", defaults={"credits": credits}
        )
    for currency, unit_price in (("INR", Decimal("1.00")), ("USD", Decimal("0.02"))):
        CreditPackPrice.objects.update_or_create(currency=currency, defaults={"unit_price": unit_price})


def fund(organization: Organization, amount: str | Decimal, *, note: str = "test funds") -> None:
    """Give ``organization`` credits (an administrator's adjustment, with its ledger entry)."""
    credits_adjust(organization=organization, amount=Decimal(amount), note=note, user=None)
