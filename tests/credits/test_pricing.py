"""What a message costs: the most specific price row, the recipient's country, the fallbacks."""

from decimal import Decimal

import pytest

from credits.models import Price
from credits.selectors import price_table_get
from credits.services import credits_price, phone_calling_code
from tests.books.factories import make_organization

pytestmark = pytest.mark.django_db

D = Decimal


def test_the_default_prices_apply_to_every_organization(org):
    assert credits_price(organization=org, category="marketing", phone="+919820012345") == D("1.00")
    assert credits_price(organization=org, category="utility") == D("0.50")
    assert credits_price(organization=org, category="authentication") == D("0.50")
    assert credits_price(organization=org, category="service") == D("0.00")


def test_the_most_specific_price_wins(org):
    other = make_organization(name="Globex")
    Price.objects.create(organization=None, category="marketing", country_code="91", credits=D("0.80"))
    Price.objects.create(organization=None, category="marketing", country_code="44", credits=D("1.50"))
    Price.objects.create(organization=org, category="marketing", country_code="", credits=D("0.90"))
    Price.objects.create(organization=org, category="marketing", country_code="91", credits=D("0.60"))

    # organization + country
    assert credits_price(organization=org, category="marketing", phone="+919820012345") == D("0.60")
    # organization, any country (beats the default's row for the UK)
    assert credits_price(organization=org, category="marketing", phone="+447911123456") == D("0.90")
    # another organization: default + country, then default
    assert credits_price(organization=other, category="marketing", phone="+919820012345") == D("0.80")
    assert credits_price(organization=other, category="marketing", phone="+14155550123") == D("1.00")


def test_without_any_price_row_service_is_free_and_the_rest_costs_one_credit(org):
    Price.objects.all().delete()
    table = price_table_get(organization=org)

    assert table.price("service") == D("0")
    assert table.price("marketing") == D("1.00")
    assert table.price("utility", "91") == D("1.00")
    assert table.price("referral_conversion") == D("1.00")


def test_meta_words_are_read_case_and_alias_insensitively(org):
    assert credits_price(organization=org, category="MARKETING") == D("1.00")
    assert credits_price(organization=org, category="marketing_lite") == D("1.00")
    assert credits_price(organization=org, category="authentication-international") == D("0.50")


def test_a_number_without_its_country_code_is_read_in_the_organizations_region(org):
    Price.objects.create(organization=None, category="utility", country_code="91", credits=D("0.20"))

    assert credits_price(organization=org, category="utility", phone="98200 12345") == D("0.20")


@pytest.mark.parametrize(
    ("phone", "code"),
    [("+919820012345", "91"), ("+14155550123", "1"), ("+447911123456", "44"), ("", ""), ("not a number", "")],
)
def test_the_calling_code_comes_from_the_number(phone, code):
    assert phone_calling_code(phone=phone) == code


def test_one_price_row_per_organization_category_and_country(org):
    from django.db import IntegrityError, transaction

    Price.objects.create(organization=org, category="utility", country_code="", credits=D("0.40"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(organization=org, category="utility", country_code="", credits=D("0.45"))
    with pytest.raises(IntegrityError), transaction.atomic():  # defaults too, though organization is NULL
        Price.objects.create(organization=None, category="utility", country_code="", credits=D("0.45"))
