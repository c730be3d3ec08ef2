"""Amounts and dates as an organization's customers expect to read them (Babel / CLDR)."""

import datetime
import functools
from decimal import Decimal

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency

from .models import Organization


def money_format(amount: Decimal, currency: str, *, organization: Organization) -> str:
    """``₹48,500.00`` with lakh grouping in an Indian organization, ``$1,234.50`` in a US one."""
    return format_currency(amount, currency, locale=_locale(organization.locale))


def date_format(value: datetime.date | None, *, organization: Organization) -> str:
    if value is None:
        return ""
    return babel_format_date(value, format=organization.date_format, locale=_locale(organization.locale))


@functools.lru_cache(maxsize=64)
def _locale(identifier: str) -> Locale:
    """Babel parses a locale given by name on every call (half of formatting an amount): once is enough."""
    return Locale.parse(identifier)
