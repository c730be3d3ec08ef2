"""Stripe Checkout over Stripe's REST API: the only code in ``credits`` that speaks HTTP.

Buying credits opens a Checkout Session (``POST /v1/checkout/sessions``, form-encoded, one line
item: the price of one credit in the currency's minor unit × the number of credits) and sends the
buyer to its ``url``. Stripe then posts ``checkout.session.completed`` to ``/webhooks/stripe/``,
signed in ``Stripe-Signature``; :func:`signature_valid` checks it before anything is read.

Settings: ``STRIPE_API_BASE`` (``https://api.stripe.com``; tests point it at a loopback
stand-in), ``STRIPE_SECRET_KEY`` (the Bearer key) and ``STRIPE_WEBHOOK_SECRET`` (``whsec_…``,
signs the webhooks). The key travels in the ``Authorization`` header only, never in a URL or
an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import httpx2
from django.conf import settings
from django.utils.translation import gettext as _

from credits.currency import to_minor_units

from . import Checkout, GatewayError

if TYPE_CHECKING:
    from credits.models import Purchase

logger = logging.getLogger(__name__)

TIMEOUT: Final = httpx2.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
#: Stripe's own libraries refuse signatures older (or newer) than five minutes: replay protection.
SIGNATURE_TOLERANCE_SECONDS: Final = 300
SIGNATURE_SCHEME: Final = "v1"


class StripeGateway:
    """Stripe Checkout. ``transport`` replaces the network (httpx2's ``MockTransport``) in tests."""

    name = "stripe"

    def __init__(
        self,
        *,
        api_base: str | None = None,
        secret_key: str | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.api_base = (api_base or settings.STRIPE_API_BASE).rstrip("/")
        self.secret_key = secret_key if secret_key is not None else settings.STRIPE_SECRET_KEY
        self.transport = transport

    # --- Operations --------------------------------------------------------------------------------

    def checkout_create(self, *, purchase: Purchase, success_url: str, cancel_url: str) -> Checkout:
        try:
            unit_amount = to_minor_units(purchase.unit_price, purchase.currency)
        except ValueError as exc:
            raise GatewayError(str(exc)) from None
        form = {
            "mode": "payment",
            "line_items[0][price_data][currency]": purchase.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(unit_amount),
            "line_items[0][price_data][product_data][name]": _("IM credits"),
            "line_items[0][quantity]": str(purchase.quantity),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(purchase.pk),
            "metadata[purchase_id]": str(purchase.pk),
            "metadata[organization_id]": str(purchase.organization_id),
        }
        # One session per purchase, even if this request is retried after a lost response.
        session = self._request(
            "POST", "/v1/checkout/sessions", data=form, idempotency_key=f"credits-purchase-{purchase.pk}-checkout"
        )
        session_id, url = session.get("id"), session.get("url")
        if not isinstance(session_id, str) or not isinstance(url, str) or not session_id or not url:
            raise GatewayError(_("Stripe answered without a checkout session."), retryable=True)
        return Checkout(reference=session_id, url=url)

    def checkout_paid(self, *, reference: str) -> bool:
        session = self._request("GET", f"/v1/checkout/sessions/{reference}")
        return session.get("payment_status") == "paid"

    # --- Transport ----------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, data: dict[str, str] | None = None, idempotency_key: str = ""
    ) -> dict[str, Any]:
        if not self.secret_key:
            raise GatewayError(_("Payments are not set up: STRIPE_SECRET_KEY is empty."))
        headers = {"Authorization": f"Bearer {self.secret_key}", "User-Agent": "whatsapp-accounting-hub"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            with httpx2.Client(base_url=self.api_base, timeout=TIMEOUT, transport=self.transport) as client:
                response = client.request(method, path, data=data, headers=headers)
        except httpx2.HTTPError as exc:
            logger.warning("Stripe %s %s failed: %s", method, path, type(exc).__name__)
            raise GatewayError(_("Stripe could not be reached. Try again in a moment."), retryable=True) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            message = str(error.get("message") or response.reason_phrase or response.status_code)
            message = message.replace(self.secret_key, "[key]")
            logger.warning("Stripe %s %s: %s %s", method, path, response.status_code, message)
            retryable = response.status_code == 429 or response.status_code >= 500
            raise GatewayError(
                _("Stripe refused the payment: %(message)s") % {"message": message},
                retryable=retryable,
                status=response.status_code,
            )
        return body


# --- Webhook signatures ------------------------------------------------------------------------------


def signature_compute(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` signature Stripe sends: HMAC-SHA256 of ``"{timestamp}.{payload}"`` with the secret."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A whole ``Stripe-Signature`` header for ``payload`` (what Stripe would send)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},{SIGNATURE_SCHEME}={signature_compute(payload, secret, timestamp)}"


def signature_valid(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` (``t=…,v1=…[,v1=…]``) signs the raw ``payload`` with ``secret``, within
    ``tolerance`` seconds of ``now``. Compared in constant time; an empty secret never validates."""
    if not secret or not header:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SIGNATURE_SCHEME and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature_compute(payload, secret, timestamp).encode()
    # Every candidate is compared (Stripe sends several while a secret is being rolled).
    return any(hmac.compare_digest(expected, signature.encode()) for signature in signatures)
