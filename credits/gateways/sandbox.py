"""The sandbox gateway: a checkout page inside the hub, for ``make run`` and demos.

Nobody pays anything: the page (``credits:sandbox_checkout``) has a Pay and a Cancel button, and
Pay confirms the purchase through the same ``purchase_confirm`` a real gateway's webhook calls.
It only works while ``CREDITS_GATEWAY`` is ``sandbox``, which is the default only in DEBUG.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.urls import reverse

from . import Checkout

if TYPE_CHECKING:
    from credits.models import Purchase


class SandboxGateway:
    name = "sandbox"

    def checkout_create(self, *, purchase: Purchase, success_url: str, cancel_url: str) -> Checkout:
        # The return URLs are the hub's own: the checkout page derives them from the purchase.
        return Checkout(
            reference=f"sandbox_{purchase.pk}_{secrets.token_hex(8)}",
            url=reverse("credits:sandbox_checkout", args=[purchase.pk]),
        )

    def checkout_paid(self, *, reference: str) -> bool:
        return False  # the checkout page confirms the purchase itself
