"""Reading stored numbers: the short way for a canonical E.164 string reads exactly what
phonenumbers' parser reads, in every country, and leaves anything else to the parser."""

from __future__ import annotations

import itertools

import phonenumbers
import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat, PhoneNumberType

from books.phone import _canonical_read, e164_parse, is_valid_e164


def _parsed(value: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None


def _example_numbers() -> list[str]:
    """Every country's example number of every type, in E.164."""
    found = set()
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region, kind in itertools.product(regions, PhoneNumberType.values()):
            if region == "001":
                example = phonenumbers.example_number_for_non_geo_entity(code)
            else:
                example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.add(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    return sorted(found)


def _variants(value: str) -> list[str]:
    """The number, and what a careless import stores: digits dropped or added, the national
    prefix kept after the country code, a zero after it."""
    number = phonenumbers.parse(value, None)
    code = str(number.country_code)
    national = value[1 + len(code) :]
    prefix = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        number.country_code, phonenumbers.region_code_for_country_code(number.country_code)
    ).national_prefix
    out = [value, value[:-1], value + "1", value + "12", f"+{code}0{national}", f"+{code}{national[:1]}"]
    if prefix:
        out.append(f"+{code}{prefix}{national}")
    return out


EXAMPLES = _example_numbers()


def test_there_are_examples_of_every_country() -> None:
    assert len(EXAMPLES) > 1000
    assert len({phonenumbers.parse(value, None).country_code for value in EXAMPLES}) > 200


def test_the_short_way_reads_what_the_parser_reads_or_leaves_it_to_the_parser() -> None:
    read = 0
    for value in itertools.chain.from_iterable(_variants(value) for value in EXAMPLES):
        number = _canonical_read(value)
        if number is not None:
            read += 1
            assert number == _parsed(value), value
        e164_parse.cache_clear()
        is_valid_e164.cache_clear()
        expected = _parsed(value)
        assert e164_parse(value) == expected, value
        assert is_valid_e164(value) == (expected is not None and phonenumbers.is_valid_number(expected)), value
    assert read > len(EXAMPLES)  # most of them go the short way (and some of their variants)


@pytest.mark.parametrize(
    "value",
    ["+919820012345", "+14155550123", "+447400123456", "+5511961234567", "+61412345678", "+2348031234567"],
)
def test_common_mobiles_go_the_short_way(value: str) -> None:
    assert _canonical_read(value) == phonenumbers.parse(value, None)
    assert is_valid_e164(value)


@pytest.mark.parametrize(
    "value",
    ["", "919820012345", "+91 98200 12345", "+91-9820012345", "+0919820012345", "+9", "+999123456789", "+390612345678"],
)
def test_anything_else_is_left_to_the_parser(value: str) -> None:
    assert _canonical_read(value) is None
    assert e164_parse(value) == (_parsed(value) if value.startswith("+") else None)
