"""What a message costs in credits, from the price table and the recipient's country."""

from decimal import Decimal

import phonenumbers

from books.models import Organization
from books.phone import e164_parse
from credits.selectors import price_table_get


def phone_calling_code(*, phone: str, region: str = "") -> str:
    """The country calling code of ``phone`` (``+919820012345`` → ``"91"``); ``""`` when it does not parse.

    Numbers are stored in E.164; ``region`` reads one typed without its country code.
    """
    if not region and (number := e164_parse(phone)) is not None:
        return str(number.country_code) if number.country_code else ""
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, region.upper() or None)
    except phonenumbers.NumberParseException:
        return ""
    return str(number.country_code) if number.country_code else ""


def credits_price(*, organization: Organization, category: str, phone: str = "") -> Decimal:
    """Credits one message of ``category`` to ``phone`` costs ``organization``.

    The most specific price row wins (organization + country, organization, default + country,
    default); with none, a service message costs 0 and any other 1. ``category`` is Meta's word
    (``utility``, ``marketing``, ``authentication``, ``service``; ``authentication-international``
    and ``marketing_lite`` are priced as the category they refine).
    """
    country_code = phone_calling_code(phone=phone, region=organization.phone_region)
    return price_table_get(organization=organization).price(category, country_code)
