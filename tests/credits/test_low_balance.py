"""The low-balance alert: one notification each time available credits cross below the threshold."""

from decimal import Decimal

import pytest

from books.models import Notification
from credits.models import CreditAccount
from credits.services import (
    ReservationRequest,
    credits_adjust,
    credits_reserve,
    credits_threshold_set,
    reservation_release,
)
from credits.services.ledger import LOW_BALANCE_KIND

from .factories import fund

pytestmark = pytest.mark.django_db

D = Decimal


def alerts(org) -> list[Notification]:
    return list(Notification.objects.filter(organization=org, kind=LOW_BALANCE_KIND).order_by("id"))


def reserve(org, n: int, amount: str) -> None:
    credits_reserve(organization=org, requests=[ReservationRequest(f"m:{n}", D(amount), "utility")])


def test_crossing_below_the_threshold_notifies_every_member_once(org):
    fund(org, "60")  # threshold 50 by default

    reserve(org, 1, "5")  # 55: still above
    assert alerts(org) == []
    reserve(org, 2, "10")  # 45: crossed
    reserve(org, 3, "10")  # 35: still below, nothing new

    [alert] = alerts(org)
    assert alert.user is None  # every member
    assert alert.title == "IM credits are running low"
    assert "45" in alert.body and "50" in alert.body
    assert alert.url == "/settings/credits/"
    assert CreditAccount.objects.get(organization=org).low_balance_notified


def test_each_crossing_is_told_again_after_the_balance_recovered(org, org_admin):
    fund(org, "60")
    reserve(org, 1, "20")  # 40: first crossing
    reservation_release(organization=org, reference="m:1")  # 60: back above, re-armed
    assert not CreditAccount.objects.get(organization=org).low_balance_notified

    reserve(org, 2, "20")  # 40: second crossing
    credits_adjust(organization=org, amount=D("-5"), note="correction", user=org_admin)  # 35: still below

    assert len(alerts(org)) == 2


def test_a_first_purchase_below_the_threshold_is_no_crossing(org):
    fund(org, "10")  # from 0 to 10: never was above 50

    assert alerts(org) == []


def test_a_failed_reservation_notifies_nobody(org):
    fund(org, "60")

    with pytest.raises(Exception):  # noqa: B017 (InsufficientCredits; the point is the rollback)
        reserve(org, 1, "61")

    assert alerts(org) == []


def test_the_threshold_is_the_organizations_to_choose(org):
    fund(org, "60")
    credits_threshold_set(organization=org, threshold=D("10"))

    reserve(org, 1, "45")  # 15: above 10
    assert alerts(org) == []
    reserve(org, 2, "10")  # 5: below 10
    assert len(alerts(org)) == 1


def test_raising_the_threshold_above_the_balance_warns_on_the_page_not_by_notification(org):
    fund(org, "60")

    credits_threshold_set(organization=org, threshold=D("100"))
    reserve(org, 1, "1")

    assert alerts(org) == []
