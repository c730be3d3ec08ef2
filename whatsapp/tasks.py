"""Celery tasks of the WhatsApp app: thin wrappers that load by id and call one service."""

from celery import shared_task
from django.db import OperationalError

from whatsapp.client import CloudAPIError
from whatsapp.services.dispatch import RetryDispatch, message_dispatch, messages_sweep
from whatsapp.services.messages import inbound_media_fetch
from whatsapp.services.webhooks import (
    RetryLater,
    webhook_event_process,
    webhook_events_drain,
    webhook_events_sweep,
)

# --- webhooks (whatsapp.services.webhooks) ---


@shared_task(bind=True, max_retries=3, ignore_result=True)
def webhook_events_drain_task(self) -> int:
    """Apply pending webhook events in batches; the receiver enqueues one per burst of webhooks.

    A deadlock with another drain (two events of one message in opposite orders) or a lost
    connection rolls back one batch, whose events stay pending: try again a second later.
    """
    try:
        return webhook_events_drain()
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=1) from None


@shared_task(bind=True, max_retries=None, ignore_result=True)
def webhook_event_process_task(self, event_id: int) -> None:
    """Apply one stored webhook again. Statuses for messages not recorded yet (the webhook beat the
    send's response) are retried a few times, 2, 4, 8… seconds apart, then the event is closed;
    the event row counts the attempts."""
    try:
        webhook_event_process(event_id=event_id)
    except RetryLater as exc:
        raise self.retry(exc=exc, countdown=exc.countdown) from None


@shared_task(ignore_result=True)
def webhook_events_sweep_task() -> int:
    """Beat: enqueue what webhook events left pending wait for (a lost task, a broker or cache outage)."""
    return webhook_events_sweep()


@shared_task(bind=True, max_retries=6, ignore_result=True)
def inbound_media_fetch_task(self, message_id: int) -> None:
    """Download an inbound message's media; transient Meta errors back off and retry."""
    try:
        inbound_media_fetch(message_id=message_id)
    except CloudAPIError as exc:
        raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries)) from None


@shared_task(bind=True, max_retries=None, ignore_result=True)
def message_dispatch_task(self, message_id: int) -> None:
    """Send one queued message; retryable Meta errors come back here after a backoff."""
    try:
        message_dispatch(message_id=message_id)
    except RetryDispatch as exc:
        raise self.retry(countdown=exc.countdown) from None


@shared_task(ignore_result=True)
def dispatch_pump_task() -> dict[str, int]:
    """Send queued messages in batches, paced per number, for a few seconds; the next pump
    carries on (see whatsapp.services.pump). A second delivery finds the first one running."""
    from whatsapp.services.pump import dispatch_pump

    return dispatch_pump().as_dict()


@shared_task(ignore_result=True)
def messages_sweep_task() -> dict[str, int]:
    """Beat: re-enqueue lost dispatches, fail sends WhatsApp never confirmed."""
    return messages_sweep()


# --- bulk sends (whatsapp.services.bulk) ---


@shared_task(ignore_result=True)
def bulk_send_run_task(bulk_id: int) -> None:
    """Check, render and queue a bulk send's messages (a second delivery finds nothing to claim)."""
    from whatsapp.services.bulk import bulk_send_run

    bulk_send_run(bulk_id=bulk_id)


@shared_task(ignore_result=True)
def bulk_send_parts_run_task(bulk_id: int) -> None:
    """Help write a large bulk send: take its pending parts until none is left."""
    from whatsapp.services.bulk import bulk_send_parts_run

    bulk_send_parts_run(bulk_id=bulk_id)


@shared_task(ignore_result=True)
def bulk_sends_sweep_task() -> int:
    """Beat: restart bulk sends whose worker died or whose task was lost."""
    from whatsapp.services.bulk import bulk_sends_sweep

    return bulk_sends_sweep()


# --- account, numbers, template deletion (whatsapp.services.accounts) ---


@shared_task(bind=True, max_retries=8, ignore_result=True)
def account_templates_delete(self, account_id: int) -> None:
    """Changing the business account, automatic mode: delete every template of the old WABA at Meta.

    Safe to run twice: the service does nothing once the account is no longer DELETING TEMPLATES.
    Temporary Meta errors retry 30 s, 1, 2, 4… min apart (at most 30 min between tries); a permanent
    one is recorded on the account for the settings page and is not retried.
    """
    from django.core.exceptions import ValidationError

    from whatsapp.models import WhatsAppAccount
    from whatsapp.services.accounts import account_templates_delete_all

    account = WhatsAppAccount.objects.filter(pk=account_id).first()
    if account is None:
        return
    try:
        account_templates_delete_all(account=account)
    except ValidationError as exc:
        if getattr(exc, "retryable", False):
            raise self.retry(countdown=min(1800, 30 * 2**self.request.retries)) from None


# --- message templates (whatsapp.services.templates) ---


@shared_task(bind=True, max_retries=5, ignore_result=True)
def templates_sync_task(self, account_id: int) -> None:
    """Bring one account's templates in line with Meta's list (webhooks can be lost or late).

    Does nothing for an account that is gone or being changed; temporary Meta errors retry 1, 2,
    4… minutes apart, permanent ones wait for the next beat.
    """
    from whatsapp.models import WhatsAppAccount
    from whatsapp.selectors.accounts import MetaError
    from whatsapp.services.templates import TEMPLATE_STATES, account_templates_sync

    account = WhatsAppAccount.objects.filter(pk=account_id, status__in=TEMPLATE_STATES).first()
    if account is None:
        return
    try:
        account_templates_sync(account=account)
    except MetaError as exc:
        if exc.retryable:
            raise self.retry(countdown=min(1800, 60 * 2**self.request.retries)) from None


@shared_task(ignore_result=True)
def templates_sync_all_task() -> int:
    """Beat (every 30 min): one sync task per connected or inactive account."""
    from whatsapp.models import WhatsAppAccount
    from whatsapp.services.templates import TEMPLATE_STATES

    account_ids = list(WhatsAppAccount.objects.filter(status__in=TEMPLATE_STATES).values_list("pk", flat=True))
    for account_id in account_ids:
        templates_sync_task.delay(account_id)
    return len(account_ids)


@shared_task(ignore_result=True)
def templates_deletion_retry_task() -> dict[str, int]:
    """Beat: ask Meta again to delete the templates whose deletion failed."""
    from whatsapp.services.templates import templates_deletion_retry

    return templates_deletion_retry()


# --- reminders (whatsapp.services.reminders) ---


@shared_task(bind=True, max_retries=3, ignore_result=True)
def reminders_run_task(self, organization_id: int) -> dict[str, object]:
    """Beat, daily at the organization's time of day (its PeriodicTask): send today's payment reminders.

    Safe to deliver twice or to retry: each (rule, invoice) is claimed by a unique row before its
    messages are queued, so a second run sends nothing more. A lost database connection retries
    a minute later; the invoices already done stay done.
    """
    from books.models import Organization
    from whatsapp.services.reminders import reminders_run

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return {}
    try:
        return reminders_run(organization=organization).counts()
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=60) from None
