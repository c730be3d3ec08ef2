"""The default price table (credits per message, for every organization) and the price of one
credit in the currencies organizations usually keep their books in. Administrators change both
in Django admin; reversing removes only the rows this migration added, if still unchanged."""

from decimal import Decimal

from django.db import migrations

PRICES = {
    "marketing": Decimal("1.00"),
    "utility": Decimal("0.50"),
    "authentication": Decimal("0.50"),
    "service": Decimal("0.00"),
}
PACK_PRICES = {
    "INR": Decimal("1.00"),
    "USD": Decimal("0.02"),
    "EUR": Decimal("0.02"),
    "GBP": Decimal("0.02"),
    "AED": Decimal("0.07"),
}


def seed(apps, schema_editor):
    Price = apps.get_model("credits", "Price")
    CreditPackPrice = apps.get_model("credits", "CreditPackPrice")
    for category, credits in PRICES.items():
        Price.objects.get_or_create(
            organization=None, category=category, country_code="", defaults={"credits": credits}
        )
    for currency, unit_price in PACK_PRICES.items():
        CreditPackPrice.objects.get_or_create(currency=currency, defaults={"unit_price": unit_price})


def unseed(apps, schema_editor):
    Price = apps.get_model("credits", "Price")
    CreditPackPrice = apps.get_model("credits", "CreditPackPrice")
    for category, credits in PRICES.items():
        Price.objects.filter(organization=None, category=category, country_code="", credits=credits).delete()
    for currency, unit_price in PACK_PRICES.items():
        CreditPackPrice.objects.filter(currency=currency, unit_price=unit_price).delete()


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
