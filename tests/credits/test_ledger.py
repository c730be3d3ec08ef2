"""Reserving, settling and releasing credits, adjustments, and the append-only ledger behind them."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from credits.choices import EntryKind, ReservationStatus
from credits.locks import credit_account_lock
from credits.models import AppendOnlyError, CreditAccount, LedgerEntry, Price, Reservation
from credits.selectors import credit_balance_get, ledger_list
from credits.services import (
    InsufficientCredits,
    ReservationClose,
    ReservationRequest,
    credits_adjust,
    credits_reserve,
    reservation_release,
    reservation_settle,
    reservations_close,
)
from tests.books.factories import make_organization

from .factories import fund

pytestmark = pytest.mark.django_db

D = Decimal


def request(n: int, amount: str = "1.00", category: str = "utility", country_code: str = "91") -> ReservationRequest:
    return ReservationRequest(
        reference=f"whatsapp.message:{n}", amount=D(amount), category=category, country_code=country_code
    )


def balance(org):
    return credit_balance_get(organization=org)


def assert_ledger_adds_up(org) -> None:
    """The account equals the sum of its ledger, and every entry's running totals follow."""
    entries = list(LedgerEntry.objects.filter(organization=org).order_by("id"))
    running_balance = running_reserved = D("0")
    for entry in entries:
        running_balance += entry.amount
        running_reserved += entry.reserved_change
        assert (entry.balance_after, entry.reserved_after) == (running_balance, running_reserved)
        assert entry.reserved_after >= 0 and entry.balance_after >= entry.reserved_after
    account = CreditAccount.objects.get(organization=org)
    assert (account.balance, account.reserved) == (running_balance, running_reserved)


# --- The ledger only grows ---------------------------------------------------------------------------


def test_a_ledger_entry_cannot_be_changed_or_deleted(org):
    fund(org, "10")
    entry = LedgerEntry.objects.get(organization=org)

    entry.note = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(note="rewritten")
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()

    entry.refresh_from_db()
    assert entry.note == "test funds"


def test_the_database_refuses_more_reserved_than_owned(org):
    fund(org, "5")

    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(organization=org).update(reserved=D("6"))
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(organization=org).update(reserved=D("-1"), balance=D("0"))


# --- Reserving ------------------------------------------------------------------------------------------


def test_reserving_holds_credits_without_spending_them(org):
    fund(org, "10")

    reservations = credits_reserve(organization=org, requests=[request(1, "1.00"), request(2, "0.50")])

    assert [r.reference for r in reservations] == ["whatsapp.message:1", "whatsapp.message:2"]
    assert all(r.status == ReservationStatus.RESERVED for r in reservations)
    now = balance(org)
    assert (now.balance, now.reserved, now.available) == (D("10.00"), D("1.50"), D("8.50"))
    entries = list(ledger_list(organization=org, kind=EntryKind.RESERVATION).order_by("id"))
    assert [(e.amount, e.reserved_change, e.reservation_id) for e in entries] == [
        (D("0"), D("1.00"), reservations[0].pk),
        (D("0"), D("0.50"), reservations[1].pk),
    ]
    assert_ledger_adds_up(org)


def test_reserving_is_all_or_nothing(org):
    fund(org, "2")

    with pytest.raises(InsufficientCredits) as caught:
        credits_reserve(organization=org, requests=[request(1), request(2), request(3)])

    assert (caught.value.needed, caught.value.available) == (D("3.00"), D("2.00"))
    assert "3.00 needed, 2.00 available" in str(caught.value)
    assert not Reservation.objects.filter(organization=org).exists()
    assert balance(org).reserved == 0
    assert LedgerEntry.objects.filter(organization=org).count() == 1  # the funding only


def test_an_organization_without_credits_cannot_reserve(org):
    with pytest.raises(InsufficientCredits) as caught:
        credits_reserve(organization=org, requests=[request(1)])

    assert caught.value.available == 0


def test_reserving_a_reference_again_returns_the_same_reservation(org):
    fund(org, "3")
    first = credits_reserve(organization=org, requests=[request(1)])[0]

    again = credits_reserve(organization=org, requests=[request(1), request(2)])

    assert again[0].pk == first.pk
    assert balance(org).reserved == D("2.00")
    assert LedgerEntry.objects.filter(organization=org, kind=EntryKind.RESERVATION).count() == 2


def test_a_retried_reservation_of_known_references_needs_no_credits(org):
    fund(org, "1")
    credits_reserve(organization=org, requests=[request(1)])

    again = credits_reserve(organization=org, requests=[request(1)])  # available is 0 now

    assert len(again) == 1
    assert balance(org).available == 0


def test_references_said_to_be_new_are_not_looked_up_and_a_known_one_fails_loudly(org):
    fund(org, "3")
    credits_reserve(organization=org, requests=[request(1)])

    with pytest.raises(IntegrityError), transaction.atomic():  # never held twice
        credits_reserve(organization=org, requests=[request(1), request(2)], new_references=True)
    assert balance(org).reserved == D("1.00")
    created = credits_reserve(organization=org, requests=[request(2), request(3)], new_references=True)
    assert [r.reference for r in created] == [request(2).reference, request(3).reference]
    assert balance(org).reserved == D("3.00")


def test_free_messages_are_reserved_at_zero(org):
    reservation = credits_reserve(organization=org, requests=[request(1, "0.00", category="service")])[0]

    assert reservation.amount == 0
    assert LedgerEntry.objects.get(organization=org, kind=EntryKind.RESERVATION).reserved_change == 0


@pytest.mark.parametrize(
    "bad",
    [
        ReservationRequest(reference="", amount=D("1"), category="utility"),
        ReservationRequest(reference="x" * 101, amount=D("1"), category="utility"),
        ReservationRequest(reference="a", amount=D("-1"), category="utility"),
        ReservationRequest(reference="a", amount=D("0.001"), category="utility"),
        ReservationRequest(reference="a", amount=1.5, category="utility"),  # type: ignore[arg-type]
    ],
)
def test_malformed_requests_are_refused(org, bad):
    fund(org, "10")

    with pytest.raises(ValueError):
        credits_reserve(organization=org, requests=[bad])


def test_one_reference_twice_in_one_request_is_refused(org):
    fund(org, "10")

    with pytest.raises(ValueError):
        credits_reserve(organization=org, requests=[request(1), request(1)])


# --- Settling ---------------------------------------------------------------------------------------------


def test_settling_charges_the_reported_category(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1, "0.50", category="utility")])

    reservation = reservation_settle(
        organization=org, reference="whatsapp.message:1", billable=True, category="marketing", country_code="91"
    )

    assert reservation.status == ReservationStatus.SETTLED
    assert reservation.charged == D("1.00")  # marketing, as WhatsApp reported it
    now = balance(org)
    assert (now.balance, now.reserved, now.available) == (D("9.00"), D("0.00"), D("9.00"))
    entry = LedgerEntry.objects.get(organization=org, kind=EntryKind.SETTLEMENT)
    assert (entry.amount, entry.reserved_change, entry.category, entry.country_code) == (
        D("-1.00"),
        D("-0.50"),
        "marketing",
        "91",
    )
    assert entry.reservation_id == reservation.pk
    assert_ledger_adds_up(org)


def test_settling_uses_the_price_of_the_recipients_country(org):
    Price.objects.create(organization=None, category="utility", country_code="1", credits=D("0.30"))
    Price.objects.create(organization=org, category="utility", country_code="", credits=D("0.40"))
    Price.objects.create(organization=org, category="utility", country_code="44", credits=D("0.70"))
    fund(org, "10")
    credits_reserve(
        organization=org, requests=[request(1, country_code="44"), request(2, country_code="1"), request(3)]
    )

    uk = reservation_settle(organization=org, reference="whatsapp.message:1", billable=True, category="utility")
    us = reservation_settle(
        organization=org, reference="whatsapp.message:2", billable=True, category="utility", country_code="1"
    )
    india = reservation_settle(
        organization=org, reference="whatsapp.message:3", billable=True, category="utility", country_code="91"
    )

    # organization + country, then organization (beats the default's country row), then …
    assert (uk.charged, us.charged, india.charged) == (D("0.70"), D("0.40"), D("0.40"))


def test_a_message_that_is_not_billable_costs_nothing(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1, "1.00", category="marketing")])

    reservation = reservation_settle(
        organization=org, reference="whatsapp.message:1", billable=False, category="marketing"
    )

    assert reservation.charged == 0
    assert (balance(org).balance, balance(org).reserved) == (D("10.00"), D("0.00"))


def test_settling_twice_charges_once(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1, "1.00", category="marketing")])
    first = reservation_settle(organization=org, reference="whatsapp.message:1", billable=True, category="marketing")

    second = reservation_settle(organization=org, reference="whatsapp.message:1", billable=True, category="marketing")

    assert second.pk == first.pk and second.status == ReservationStatus.SETTLED
    assert balance(org).balance == D("9.00")
    assert LedgerEntry.objects.filter(organization=org, kind=EntryKind.SETTLEMENT).count() == 1


def test_settling_or_releasing_an_unknown_reference_does_nothing(org):
    fund(org, "10")

    assert (
        reservation_settle(organization=org, reference="whatsapp.message:404", billable=True, category="utility")
        is None
    )
    assert reservation_release(organization=org, reference="whatsapp.message:404") is None
    assert LedgerEntry.objects.filter(organization=org).count() == 1


def test_a_costlier_category_than_reserved_never_uncovers_other_holds(org):
    fund(org, "1")
    credits_reserve(organization=org, requests=[request(1, "0.50", category="utility"), request(2, "0.50")])

    # Reported as marketing (1.00): only 0.50 can be charged while message 2 stays covered.
    reservation = reservation_settle(
        organization=org, reference="whatsapp.message:1", billable=True, category="marketing"
    )

    assert reservation.charged == D("0.50")
    now = balance(org)
    assert (now.balance, now.reserved, now.available) == (D("0.50"), D("0.50"), D("0.00"))
    entry = LedgerEntry.objects.get(organization=org, kind=EntryKind.SETTLEMENT)
    assert "Shortfall" in entry.note and "1.00" in entry.note
    assert_ledger_adds_up(org)


def test_meta_refined_categories_are_priced_as_their_category(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1, "0.50", category="authentication")])

    reservation = reservation_settle(
        organization=org, reference="whatsapp.message:1", billable=True, category="authentication-international"
    )

    assert reservation.charged == D("0.50")


# --- Releasing ---------------------------------------------------------------------------------------------


def test_releasing_gives_the_hold_back_once(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1, "1.00")])

    released = reservation_release(organization=org, reference="whatsapp.message:1", reason="131026")
    again = reservation_release(organization=org, reference="whatsapp.message:1", reason="131026")

    assert released.status == again.status == ReservationStatus.RELEASED
    assert (balance(org).balance, balance(org).reserved) == (D("10.00"), D("0.00"))
    entry = LedgerEntry.objects.get(organization=org, kind=EntryKind.RELEASE)
    assert (entry.amount, entry.reserved_change, entry.note) == (D("0"), D("-1.00"), "131026")


def test_a_settled_reservation_is_not_released_and_a_released_one_not_settled(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1), request(2)])
    reservation_settle(organization=org, reference="whatsapp.message:1", billable=True, category="utility")
    reservation_release(organization=org, reference="whatsapp.message:2")

    assert reservation_release(organization=org, reference="whatsapp.message:1").status == ReservationStatus.SETTLED
    assert (
        reservation_settle(organization=org, reference="whatsapp.message:2", billable=True, category="utility").status
        == ReservationStatus.RELEASED
    )
    assert balance(org).balance == D("9.50")
    assert_ledger_adds_up(org)


def test_reservations_are_per_organization(org):
    other = make_organization(name="Globex")
    fund(org, "10")
    fund(other, "10")
    credits_reserve(organization=org, requests=[request(1)])
    credits_reserve(organization=other, requests=[request(1)])

    reservation_settle(organization=other, reference="whatsapp.message:1", billable=True, category="marketing")

    assert balance(org).reserved == D("1.00") and balance(org).balance == D("10.00")
    assert balance(other).balance == D("9.00")


# --- Closing many holds at once -----------------------------------------------------------------------------


def settle(n: int, category: str = "marketing", *, billable: bool = True) -> ReservationClose:
    return ReservationClose(reference=f"whatsapp.message:{n}", settle=True, billable=billable, category=category)


def release(n: int, reason: str = "131026") -> ReservationClose:
    return ReservationClose(reference=f"whatsapp.message:{n}", settle=False, reason=reason)


def entries(org) -> list[tuple]:
    return list(
        LedgerEntry.objects.filter(organization=org)
        .order_by("id")
        .values_list("kind", "amount", "reserved_change", "balance_after", "reserved_after", "category", "note")
    )


def test_closing_holds_together_ends_them_as_closing_them_one_by_one(org):
    together, one_by_one = org, make_organization(name="Globex")
    closes = [settle(1), release(2), settle(3, "utility", billable=False), settle(4), settle(5), release(1)]
    for organization in (together, one_by_one):
        fund(organization, "2.50")  # all held: message 1 (marketing, 1.00) is settled short
        credits_reserve(
            organization=organization, requests=[request(n, "0.50", category="utility") for n in range(1, 6)]
        )

    ended = reservations_close(organization=together, closes=[*closes, settle(404)])
    for close in closes:
        if close.settle:
            reservation_settle(
                organization=one_by_one, reference=close.reference, billable=close.billable, category=close.category
            )
        else:
            reservation_release(organization=one_by_one, reference=close.reference, reason=close.reason)

    assert ended == 5  # message 1's release comes after its settlement; 404 has no hold
    assert entries(together) == entries(one_by_one)
    statuses = dict(Reservation.objects.filter(organization=together).values_list("reference", "status"))
    assert list(statuses.values()).count(ReservationStatus.SETTLED) == 4
    first = LedgerEntry.objects.get(organization=together, kind=EntryKind.SETTLEMENT, reference="whatsapp.message:1")
    assert first.amount == D("-0.50") and "Shortfall" in first.note
    assert_ledger_adds_up(together)


def test_closing_holds_again_changes_nothing(org):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1), request(2)])
    reservations_close(organization=org, closes=[settle(1), release(2)])
    before = entries(org)

    assert reservations_close(organization=org, closes=[settle(1), release(2), settle(2)]) == 0

    assert entries(org) == before


def test_closing_holds_that_are_not_held_takes_no_lock(org, django_assert_num_queries):
    fund(org, "10")
    credits_reserve(organization=org, requests=[request(1)])
    reservation_settle(organization=org, reference="whatsapp.message:1", billable=True, category="utility")

    with django_assert_num_queries(3) as queries:  # the savepoint, one look, the release
        assert reservations_close(organization=org, closes=[settle(1), settle(2), release(3)]) == 0

    assert not any("FOR UPDATE" in query["sql"] for query in queries.captured_queries)


def test_the_credit_lock_creates_the_account_on_first_use_and_then_is_one_statement(org, django_assert_num_queries):
    CreditAccount.objects.filter(organization=org).delete()
    with transaction.atomic():
        created = credit_account_lock(organization=org)
    assert created.balance == 0 and CreditAccount.objects.filter(organization=org).count() == 1

    with transaction.atomic(), django_assert_num_queries(1) as queries:
        locked = credit_account_lock(organization=org)

    assert locked.pk == created.pk
    assert queries.captured_queries[0]["sql"].endswith("FOR UPDATE")


# --- Adjusting ---------------------------------------------------------------------------------------------


def test_an_adjustment_is_written_with_its_author_and_reason(org, org_admin):
    entry = credits_adjust(organization=org, amount=D("25"), note="Welcome credits", user=org_admin)

    assert (entry.kind, entry.amount, entry.balance_after, entry.note, entry.created_by) == (
        EntryKind.ADJUSTMENT,
        D("25.00"),
        D("25.00"),
        "Welcome credits",
        org_admin,
    )


def test_an_adjustment_cannot_take_reserved_credits(org, org_admin):
    fund(org, "5")
    credits_reserve(organization=org, requests=[request(1, "4.00")])

    with pytest.raises(ValidationError) as caught:
        credits_adjust(organization=org, amount=D("-2"), note="correction", user=org_admin)

    assert "amount" in caught.value.message_dict
    assert balance(org).balance == D("5.00")
    credits_adjust(organization=org, amount=D("-1"), note="correction", user=org_admin)
    assert balance(org).available == 0


@pytest.mark.parametrize(("amount", "note"), [("0", "x"), ("1.001", "x"), ("5", ""), ("5", "   ")])
def test_an_adjustment_needs_an_amount_and_a_reason(org, org_admin, amount, note):
    with pytest.raises(ValidationError):
        credits_adjust(organization=org, amount=D(amount), note=note, user=org_admin)
