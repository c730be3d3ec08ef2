"""Celery tasks of the WhatsApp app: thin wrappers that load by id and call one service."""

from celery import shared_task

from whatsapp.client import CloudAPIError
from whatsapp.services.messages import inbound_media_fetch
from whatsapp.services.webhooks import UNMATCHED_RETRIES, RetryLater, webhook_event_process, webhook_events_sweep

# --- webhooks (whatsapp.services.webhooks) ---


@shared_task(bind=True, max_retries=None, ignore_result=True)
def webhook_event_process_task(self, event_id: int) -> None:
    """Apply a stored webhook. Statuses for messages not recorded yet (the webhook beat the send's
    response) are retried a few times, 2, 4, 8… seconds apart, then the event is closed."""
    try:
        webhook_event_process(event_id=event_id, final_attempt=self.request.retries >= UNMATCHED_RETRIES)
    except RetryLater as exc:
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 1)) from None


@shared_task(ignore_result=True)
def webhook_events_sweep_task() -> int:
    """Beat: enqueue webhook events left pending (a lost task or a broker outage)."""
    return webhook_events_sweep()


@shared_task(bind=True, max_retries=6, ignore_result=True)
def inbound_media_fetch_task(self, message_id: int) -> None:
    """Download an inbound message's media; transient Meta errors back off and retry."""
    try:
        inbound_media_fetch(message_id=message_id)
    except CloudAPIError as exc:
        raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries)) from None

# --- account, numbers, template deletion (whatsapp.services.accounts) ---
