"""Amounts and dates as an organization's customers expect to read them (Babel / CLDR)."""

import copy
import datetime
import functools
from decimal import Decimal

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.numbers import NumberPattern, format_currency, get_currency_precision, get_currency_symbol

from .models import Organization


def money_format(amount: Decimal, currency: str, *, organization: Organization) -> str:
    """``₹48,500.00`` with lakh grouping in an Indian organization, ``$1,234.50`` in a US one."""
    pattern = _currency_pattern(organization.locale, currency)
    if pattern is None:
        return format_currency(amount, currency, locale=_locale(organization.locale))
    return pattern.apply(amount, _locale(organization.locale), currency=None)


@functools.lru_cache(maxsize=256)
def _currency_pattern(identifier: str, currency: str) -> NumberPattern | None:
    """The locale's currency pattern with the currency's digits and symbol already in it.

    ``format_currency`` is this pattern's ``apply`` with the currency, which looks up the
    currency's digits and symbol again for every amount, and its full name too (for a ``¤¤¤``
    the standard patterns never have): more than half of formatting an amount, and a bulk send
    formats thousands. None for a pattern with more than one ``¤`` in a row (the code, the name):
    ``format_currency`` formats those.
    """
    locale = _locale(identifier)
    pattern = copy.copy(locale.currency_formats["standard"])
    if any("¤¤" in part for part in (*pattern.prefix, *pattern.suffix)):
        return None
    symbol = get_currency_symbol(currency, locale)
    digits = get_currency_precision(currency)
    pattern.prefix = tuple(part.replace("¤", symbol) for part in pattern.prefix)
    pattern.suffix = tuple(part.replace("¤", symbol) for part in pattern.suffix)
    pattern.frac_prec = (digits, digits)
    return pattern


def date_format(value: datetime.date | None, *, organization: Organization) -> str:
    if value is None:
        return ""
    return babel_format_date(value, format=organization.date_format, locale=_locale(organization.locale))


@functools.lru_cache(maxsize=64)
def _locale(identifier: str) -> Locale:
    """Babel parses a locale given by name on every call (half of formatting an amount): once is enough."""
    return Locale.parse(identifier)
