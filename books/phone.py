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
def is_valid_e164(value: str) -> bool:
    """Whether ``value`` is a valid number in E.164. Remembered for the last few thousand numbers:
    a bulk send asks it several times per recipient (checks, the message, its price)."""
    if not value or not value.startswith("+"):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return False


def phone_display(value: str) -> str:
    """E.164 shown in international format (``+91 98200 12345``); anything else as stored."""
    if not is_valid_e164(value):
        return value
    return phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
