"""Amounts and dates as an organization's customers expect to read them (Babel / CLDR)."""

import datetime
from decimal import Decimal

from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency

from .models import Organization


def money_format(amount: Decimal, currency: str, *, organization: Organization) -> str:
    """``₹48,500.00`` with lakh grouping in an Indian organization, ``$1,234.50`` in a US one."""
    return format_currency(amount, currency, locale=organization.locale)


def date_format(value: datetime.date | None, *, organization: Organization) -> str:
    if value is None:
        return ""
    return babel_format_date(value, format=organization.date_format, locale=organization.locale)
