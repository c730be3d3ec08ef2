"""Acceptance test of buying IM credits in a real browser (Chromium): quantity → Calculate payment
(htmx) → Make payment → the sandbox gateway's checkout → Pay → the credits are there; and the bell
rings once when the credits run low."""

import re
from decimal import Decimal

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from credits.selectors import credit_balance_get
from credits.services import ReservationRequest, credits_reserve
from tests.books.factories import UserFactory, make_organization
from tests.credits.factories import default_prices

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pass-1234-word")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))


@override_settings(CREDITS_GATEWAY="sandbox")
def test_an_administrator_buys_credits_and_is_told_when_they_run_low(page, live_server):
    default_prices()
    user = UserFactory(username="meera")
    org = make_organization(user=user)
    sign_in(page, "meera")

    # Settings → IM credits → Buy: the price per credit, then the total without leaving the page.
    page.goto("/settings/credits/")
    page.get_by_role("link", name="Buy IM credits").first.click()
    expect(page.locator("#credits-unit-price")).to_contain_text("₹1.00")
    page.get_by_label("IM credits to buy").fill("60")
    page.get_by_role("button", name="Calculate payment").click()
    expect(page.locator("#credits-total")).to_contain_text("₹60.00")
    expect(page).to_have_url(re.compile(r"/settings/credits/buy/$"))

    # Make payment → the gateway's page → Pay → back in the hub with the credits.
    page.get_by_role("button", name="Make payment").click()
    expect(page.locator("#sandbox-checkout")).to_contain_text("₹60.00")
    page.get_by_role("button", name="Pay").click()
    expect(page.locator("#credits-purchase")).to_contain_text("60 IM credits were added")
    assert credit_balance_get(organization=org).balance == Decimal("60.00")

    # Messages hold 20 credits: available falls below the alert threshold (50); the bell rings.
    credits_reserve(organization=org, requests=[ReservationRequest("m:1", Decimal("20"), "marketing")])
    page.goto("/settings/credits/")
    expect(page.locator("#credits-low")).to_contain_text("running low")
    bell = page.locator("#notification-bell")
    expect(bell.locator("[data-unread]")).to_have_text("1")
    bell.locator("summary").click()
    bell.get_by_role("button", name="Mark all as read").click()
    expect(bell.locator("[data-unread]")).to_have_count(0)
