"""``POST /webhooks/stripe/``: Stripe's events about checkouts of IM credits.

The ``Stripe-Signature`` header is checked against the raw body before anything is parsed; a
missing or wrong signature (or one older than five minutes) is a 400 and changes nothing.
Events are dispatched by type to ``handle_<event>``; a type nobody handles is acknowledged (200)
and ignored. Confirming is idempotent, so Stripe's retries and duplicate deliveries add the
credits once. A session that is not one of the hub's purchases (the Stripe account may sell
other things) or whose amount does not match the purchase is logged and acknowledged: retrying
would not change the answer.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from credits.choices import Gateway
from credits.currency import to_minor_units
from credits.gateways.stripe import signature_valid
from credits.models import Purchase
from credits.services import purchase_cancel, purchase_confirm

logger = logging.getLogger(__name__)

Session = dict[str, Any]


def _purchase_for(session: Session) -> Purchase | None:
    """The hub's purchase a checkout session pays for, if the session matches it in every respect."""
    metadata = session.get("metadata") if isinstance(session.get("metadata"), dict) else {}
    purchase_id = str(metadata.get("purchase_id") or session.get("client_reference_id") or "")
    session_id = session.get("id")
    if not purchase_id.isdecimal() or not isinstance(session_id, str) or not session_id:
        logger.info("Stripe checkout session without a purchase id: ignored.")
        return None
    purchase = (
        Purchase.objects.select_related("organization").filter(pk=int(purchase_id), gateway=Gateway.STRIPE).first()
    )
    if purchase is None:
        logger.warning("Stripe checkout session %s names purchase %s, which does not exist.", session_id, purchase_id)
        return None
    if purchase.gateway_reference and purchase.gateway_reference != session_id:
        logger.warning("Stripe checkout session %s is not purchase %s's checkout.", session_id, purchase.pk)
        return None
    return purchase


def _amount_matches(purchase: Purchase, session: Session) -> bool:
    expected = to_minor_units(purchase.total, purchase.currency)
    currency = str(session.get("currency") or "").upper()
    if session.get("amount_total") != expected or currency != purchase.currency:
        logger.error(
            "Stripe checkout session %s paid %s %s for purchase %s of %s %s: not credited.",
            session.get("id"),
            session.get("amount_total"),
            currency,
            purchase.pk,
            expected,
            purchase.currency,
        )
        return False
    return True


def _confirm(session: Session) -> None:
    purchase = _purchase_for(session)
    if purchase is None or not _amount_matches(purchase, session):
        return
    try:
        purchase_confirm(purchase=purchase, gateway_reference=session["id"])
    except ValidationError as exc:
        logger.error("Stripe checkout session %s: purchase %s not confirmed: %s", session["id"], purchase.pk, exc)


def handle_checkout_session_completed(session: Session) -> None:
    # Card payments are paid at completion; delayed methods (bank debits) complete unpaid and
    # send async_payment_succeeded later.
    if session.get("payment_status") == "paid":
        _confirm(session)


def handle_checkout_session_async_payment_succeeded(session: Session) -> None:
    _confirm(session)


def handle_checkout_session_expired(session: Session) -> None:
    purchase = _purchase_for(session)
    if purchase is not None:
        purchase_cancel(purchase=purchase, reason="Stripe: checkout expired.")


def handle_checkout_session_async_payment_failed(session: Session) -> None:
    purchase = _purchase_for(session)
    if purchase is not None:
        purchase_cancel(purchase=purchase, reason="Stripe: payment failed.")


HANDLERS: dict[str, Callable[[Session], None]] = {
    "checkout.session.completed": handle_checkout_session_completed,
    "checkout.session.async_payment_succeeded": handle_checkout_session_async_payment_succeeded,
    "checkout.session.async_payment_failed": handle_checkout_session_async_payment_failed,
    "checkout.session.expired": handle_checkout_session_expired,
}


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    body = request.body
    if not signature_valid(body, request.headers.get("Stripe-Signature"), settings.STRIPE_WEBHOOK_SECRET):
        if not settings.STRIPE_WEBHOOK_SECRET:
            logger.error("Stripe webhook refused: STRIPE_WEBHOOK_SECRET is not set.")
        else:
            logger.warning("Stripe webhook refused: missing, wrong or stale Stripe-Signature.")
        return HttpResponseBadRequest("invalid signature", content_type="text/plain")
    try:
        event = json.loads(body)
        event_type = event["type"]
        session = event["data"]["object"]
    except (ValueError, TypeError, KeyError):
        return HttpResponseBadRequest("not a Stripe event", content_type="text/plain")
    handler = HANDLERS.get(event_type) if isinstance(event_type, str) else None
    if handler is not None and isinstance(session, dict):
        handler(session)
    return HttpResponse("ok", content_type="text/plain")
