"""The organization's credit lock, taken in one fixed order.

Every change of an organization's credits first locks its :class:`~credits.models.CreditAccount`
row (``SELECT … FOR UPDATE``), then, when it needs one, the :class:`~credits.models.Purchase` or
:class:`~credits.models.Reservation` row it is about. Always the account first: two services
taking the same two locks in opposite orders would deadlock.
"""

from django.db import transaction

from books.models import Organization

from .models import CreditAccount, Purchase


def credit_account_lock(*, organization: Organization) -> CreditAccount:
    """The organization's account, locked until the caller's transaction ends.

    The account is created on first use. It is created *before* the lock is taken, because a
    row that does not exist cannot be locked: two first uses at once both try to insert, one
    wins, the other reads the winner's row, and both then queue on the same lock. Once it exists
    (every time but the first), locking it is the only query.
    """
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("credit_account_lock() needs a transaction (atomic).")
    locked = list(CreditAccount.objects.select_for_update().filter(organization=organization))  # one: unique
    if locked:
        return locked[0]
    CreditAccount.objects.get_or_create(organization=organization)
    return CreditAccount.objects.select_for_update().get(organization=organization)


def purchase_lock(*, purchase: Purchase) -> tuple[CreditAccount, Purchase]:
    """The purchase's organization's account, then the purchase itself, both locked (in that order)."""
    account = credit_account_lock(organization=purchase.organization)
    return account, Purchase.objects.select_for_update().get(pk=purchase.pk)
