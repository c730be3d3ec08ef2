"""Writes on IM credits. Every balance change happens here, under the organization's credit lock,
with exactly one ledger entry per change.

- :mod:`.ledger`: reserve, settle and release credits for messages; administrators' adjustments
  and the low-balance threshold.
- :mod:`.pricing`: what a message costs.
- :mod:`.purchases`: buying credits through a payment gateway.
"""

from .ledger import (
    InsufficientCredits,
    ReservationClose,
    ReservationRequest,
    credits_adjust,
    credits_reserve,
    credits_threshold_set,
    reservation_release,
    reservation_settle,
    reservations_close,
)
from .pricing import credits_price, phone_calling_code
from .purchases import (
    purchase_cancel,
    purchase_checkout_start,
    purchase_confirm,
    purchase_create,
    purchase_quote,
    purchase_refund,
    purchase_sync,
)

__all__ = [
    "InsufficientCredits",
    "ReservationClose",
    "ReservationRequest",
    "credits_adjust",
    "credits_price",
    "credits_reserve",
    "credits_threshold_set",
    "phone_calling_code",
    "purchase_cancel",
    "purchase_checkout_start",
    "purchase_confirm",
    "purchase_create",
    "purchase_quote",
    "purchase_refund",
    "purchase_sync",
    "reservation_release",
    "reservation_settle",
    "reservations_close",
]
