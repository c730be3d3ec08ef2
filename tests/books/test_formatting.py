"""Amounts: the prepared currency patterns format exactly as Babel's ``format_currency``."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from babel import localedata
from babel.numbers import format_currency

from books.formatting import _currency_pattern, money_format

CURRENCIES = ["INR", "USD", "EUR", "JPY", "KWD", "GBP", "AED", "BRL", "CHF"]  # 0, 2 and 3 decimals
AMOUNTS = [Decimal(text) for text in ("0", "0.5", "1", "-1", "1234.5", "-98765.432", "12345678.9", "0.005")]


def test_every_locale_and_currency_formats_as_babel_does() -> None:
    prepared = 0
    for identifier in localedata.locale_identifiers():
        organization = SimpleNamespace(locale=identifier)
        for currency in CURRENCIES:
            prepared += _currency_pattern(identifier, currency) is not None
            for amount in AMOUNTS:
                expected = format_currency(amount, currency, locale=identifier)
                assert money_format(amount, currency, organization=organization) == expected, (identifier, currency)
    assert prepared > 0.9 * len(localedata.locale_identifiers()) * len(CURRENCIES)


@pytest.mark.parametrize(
    ("locale", "amount", "currency", "text"),
    [
        ("en_IN", "4850000", "INR", "₹48,50,000.00"),
        ("en_US", "1234.5", "USD", "$1,234.50"),
        ("de_DE", "-1234.5", "EUR", "-1.234,50\xa0€"),
        ("ja_JP", "1234.5", "JPY", "￥1,234"),
    ],
)
def test_amounts_read_as_customers_expect(locale: str, amount: str, currency: str, text: str) -> None:
    assert money_format(Decimal(amount), currency, organization=SimpleNamespace(locale=locale)) == text
