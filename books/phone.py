"""Phone numbers in E.164, read with the organization's default region (phonenumbers: its parser,
metadata and validation; a stored number is only split at its country code, where the parser
would do nothing more, see :func:`_canonical_read`)."""

import functools
import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata


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
    number = _canonical_read(value)
    if number is not None:
        return number
    try:
        return phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None


#: ``+``, then digits only: how every number is stored (:func:`phone_normalize`).
_CANONICAL = re.compile(r"\+[1-9][0-9]{5,16}")


def _canonical_read(value: str) -> phonenumbers.PhoneNumber | None:
    """``value`` as phonenumbers' parser reads a stored number, without its passes for what people
    type (spaces, letters, extensions, dialling prefixes): the country code split off, the rest the
    national number. None whenever the parser would do more than that split — no such country
    code, a national number that starts with a zero or the country's national prefix, a length out
    of its bounds — and the parser reads those. The parser was a tenth of writing a bulk send.
    """
    if not _CANONICAL.fullmatch(value):
        return None
    digits = value[1:]
    for length in (1, 2, 3):  # country codes are prefix-free: the first one found is the one
        code = int(digits[:length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[length:]
    if len(national) < 2 or national.startswith("0"):  # (Italian leading zeros: the parser's rules)
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, phonenumbers.region_code_for_country_code(code))
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):  # the parser may strip it
        return None
    return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))


@functools.lru_cache(maxsize=4096)
def is_valid_e164(value: str) -> bool:
    number = e164_parse(value)
    return number is not None and phonenumbers.is_valid_number(number)


def phone_display(value: str) -> str:
    """E.164 shown in international format (``+91 98200 12345``); anything else as stored."""
    if not is_valid_e164(value):
        return value
    return phonenumbers.format_number(e164_parse(value), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
