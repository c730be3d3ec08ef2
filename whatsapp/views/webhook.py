"""``/webhooks/whatsapp/``: Meta's webhook receiver.

GET answers Meta's subscription handshake. POST checks ``X-Hub-Signature-256`` against the raw
body, stores the body once (:func:`~whatsapp.services.webhooks.webhook_event_store`) and answers
200 at once; a Celery drain task applies it, with whatever else arrived meanwhile
(:func:`~whatsapp.services.webhooks.webhook_events_drain_enqueue` enqueues one per burst, not one
per webhook). Nothing about the body is trusted or parsed here: a refused POST (bad or missing
signature) writes nothing and enqueues nothing.

Meta retries any non-200 for days, so a body that was stored is always acknowledged, even if the
cache or the broker is down at that moment (the beat sweeper enqueues a drain later). A body larger
than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (5 MB by default; Meta's batches reach a few) is answered 413
without being read.

``whatsapp.middleware.WhatsAppWebhookMiddleware`` sends requests for this path here directly,
past the browser's middleware (sessions, CSRF, authentication…), which this view has no use for.
"""

import hmac
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from whatsapp.services.webhooks import webhook_event_store, webhook_events_drain_enqueue
from whatsapp.signature import signature_valid

logger = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _handshake(request)
    try:
        body = request.body
    except RequestDataTooBig:
        logger.warning("WhatsApp webhook refused: the body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.")
        return HttpResponse("request body too large", status=413, content_type="text/plain")
    # From META: request.headers would build a dict of every header for this one.
    signature = request.META.get("HTTP_X_HUB_SIGNATURE_256")
    if not signature_valid(body, signature, settings.WHATSAPP_APP_SECRET):
        if not settings.WHATSAPP_APP_SECRET:
            logger.error("WhatsApp webhook refused: WHATSAPP_APP_SECRET is not set.")
        else:
            logger.warning("WhatsApp webhook refused: missing or wrong X-Hub-Signature-256.")
        return HttpResponseForbidden("invalid signature", content_type="text/plain")
    if webhook_event_store(body=body) is not None:
        webhook_events_drain_enqueue()
    return HttpResponse("ok", content_type="text/plain")


def _handshake(request: HttpRequest) -> HttpResponse:
    """Meta's verification request: echo ``hub.challenge`` when the verify token matches."""
    expected = settings.WHATSAPP_VERIFY_TOKEN
    token = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    return HttpResponseForbidden("verification failed", content_type="text/plain")
