"""Reserving under contention, on PostgreSQL: the credit lock lets exactly the credits there are go."""

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from books.models import Notification
from credits.choices import EntryKind
from credits.models import CreditAccount, LedgerEntry, Reservation
from credits.services import InsufficientCredits, ReservationRequest, credits_reserve
from tests.books.factories import make_organization

from .factories import fund

THREADS = 200
CREDITS = 100
#: Connections open at once: PostgreSQL's default max_connections is 100, shared with other tests.
CONCURRENT_CONNECTIONS = 16


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_200_threads_reserving_one_credit_each_against_100_get_exactly_100():
    organization = make_organization(name="Contended Traders")
    fund(organization, CREDITS)
    start = threading.Barrier(THREADS)
    connections = threading.BoundedSemaphore(CONCURRENT_CONNECTIONS)
    outcomes: list[str] = []
    outcomes_lock = threading.Lock()

    def reserve_one(n: int) -> None:
        start.wait()
        with connections:
            try:
                credits_reserve(
                    organization=organization,
                    requests=[ReservationRequest(f"test.message:{n}", Decimal("1.00"), "utility", "91")],
                )
                outcome = "reserved"
            except InsufficientCredits:
                outcome = "insufficient"
            except Exception as exc:  # any other error is a failure of the test, reported below
                outcome = repr(exc)
            finally:
                connection.close()  # this thread's own connection
        with outcomes_lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=reserve_one, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert Counter(outcomes) == {"reserved": CREDITS, "insufficient": THREADS - CREDITS}
    account = CreditAccount.objects.get(organization=organization)
    assert (account.balance, account.reserved, account.available) == (Decimal("100.00"), Decimal("100.00"), 0)
    assert Reservation.objects.filter(organization=organization).count() == CREDITS
    entries = list(LedgerEntry.objects.filter(organization=organization, kind=EntryKind.RESERVATION))
    assert len(entries) == CREDITS
    # Each hold saw the one before it: the running totals are 1, 2, … 100, never above the balance.
    assert sorted(entry.reserved_after for entry in entries) == [Decimal(n) for n in range(1, CREDITS + 1)]
    assert all(0 <= entry.reserved_after <= entry.balance_after for entry in entries)
    # Crossing the alert threshold (50) once, under contention, told the members once.
    assert Notification.objects.filter(organization=organization, kind="credits.low_balance").count() == 1
