"""Phone numbers in E.164, read with the organization's default region (phonenumbers, never by hand)."""

import functools

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def phone_normalize(raw: str, *, region: str) -> str:
    """Return ``raw`` as E.164 (``+919820012345``), reading a number without ``+`` in ``region``.

    Raises ValidationError with a message fit for the person who typed it.
    """
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region.upper() or None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("“%(raw)s” is not a phone number. Enter it with the country code, e.g. +91 98200 12345."),
            code="invalid_phone",
            params={"raw": raw},
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("“%(raw)s” is not a valid phone number for %(region)s. Check the digits and the country code."),
            code="invalid_phone",
            params={"raw": raw, "region": phonenumbers.region_code_for_number(number) or region.upper()},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=4096)
def e164_parse(value: str) -> phonenumbers.PhoneNumber | None:
    """``value`` read as a number in E.164 (``+`` and the country code), None when it isn't one.

    Remembered for the last few thousand numbers: a bulk send reads each recipient's number
    several times (the checks, the message, its price). Treat the result as read-only.
    """
    if not value or not value.startswith("+"):
        return None
    try:
        return phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None


@functools.lru_cache(maxsize=4096)
def is_valid_e164(value: str) -> bool:
    number = e164_parse(value)
    return number is not None and phonenumbers.is_valid_number(number)


def phone_display(value: str) -> str:
    """E.164 shown in international format (``+91 98200 12345``); anything else as stored."""
    if not is_valid_e164(value):
        return value
    return phonenumbers.format_number(e164_parse(value), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
