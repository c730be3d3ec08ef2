"""Payment gateways that sell IM credits: one module per gateway, one interface.

``stripe`` is Stripe Checkout (the only code here that speaks HTTP); ``sandbox`` is a checkout
page inside the hub for ``make run``, where nobody pays anything. ``CREDITS_GATEWAY`` says which
one new purchases use; a purchase remembers its gateway, so switching leaves older ones alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from credits.models import Purchase


@dataclass(frozen=True)
class Checkout:
    """A payment page at the gateway: where to send the buyer, and the gateway's id for it."""

    reference: str
    url: str


class GatewayError(Exception):
    """The gateway refused or could not be reached. ``retryable``: trying again later may work."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class PaymentGateway(Protocol):
    name: str

    def checkout_create(self, *, purchase: Purchase, success_url: str, cancel_url: str) -> Checkout:
        """Open a payment page for ``purchase``; the buyer comes back to one of the URLs."""
        ...

    def checkout_paid(self, *, reference: str) -> bool:
        """Whether the checkout ``reference`` has been paid (asked of the gateway)."""
        ...


def gateway_get(name: str) -> PaymentGateway:
    """The gateway called ``name`` (``stripe`` or ``sandbox``)."""
    if name == "stripe":
        from .stripe import StripeGateway

        return StripeGateway()
    if name == "sandbox":
        from .sandbox import SandboxGateway

        return SandboxGateway()
    raise ValueError(f"Unknown payment gateway {name!r}.")
