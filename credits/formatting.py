"""Amounts of credits as an organization's locale writes numbers (Babel / CLDR)."""

from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal

from books.models import Organization


def credits_format(value: Decimal, *, organization: Organization | None) -> str:
    """``1,00,000.5`` in an Indian organization, ``100,000.5`` in a US one.

    A language and country CLDR does not pair (English in Japan) falls back to the language.
    """
    locale = organization.locale if organization is not None else "en"
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError):
        locale = locale.split("_")[0] or "en"
    return format_decimal(value, locale=locale)
