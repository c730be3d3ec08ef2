"""Template filters that show amounts, dates and phone numbers the organization's way.

{% load books_format %}
{{ document.total|money:document }}        ₹48,500.00 (currency and locale from the document)
{{ amount|money:organization }}            in the organization's base currency
{{ document.date|orgdate:organization }}   01/10/2026 (the organization's date format)
{{ person.mobile|phone }}                  +91 98200 12345
"""

import datetime
from decimal import Decimal

from django import template

from books.formatting import date_format, money_format
from books.models import Document, Organization
from books.phone import phone_display

register = template.Library()


@register.filter
def money(amount: Decimal | None, source: Document | Organization) -> str:
    if amount is None:
        return ""
    if isinstance(source, Document):
        return money_format(amount, source.currency, organization=source.organization)
    return money_format(amount, source.currency, organization=source)


@register.filter
def orgdate(value: datetime.date | None, organization: Organization) -> str:
    return date_format(value, organization=organization)


@register.filter
def phone(value: str) -> str:
    return phone_display(value)
