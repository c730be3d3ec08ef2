"""Dispatch: claim once, send once, and react to each kind of Meta error as documented.

Meta is httpx2's MockTransport behind the real client (``whatsapp.cloud.cloud_api`` is patched to
inject it); each test scripts Meta's answers and counts the requests that reached it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from books.models import Notification
from tests.books.factories import make_organization
from tests.whatsapp.factories import make_account
from whatsapp import cloud
from whatsapp.choices import AccountStatus, MessageStatus
from whatsapp.client import CloudAPI
from whatsapp.models import BulkSend, Message
from whatsapp.services.bulk_pause import HELD_UNTIL, bulk_send_resume
from whatsapp.services.dispatch import (
    RetryDispatch,
    message_dispatch,
    message_template_queue,
    message_text_queue,
    messages_sweep,
)
from whatsapp.services.messages import StatusUpdate, message_status_apply
from whatsapp.tasks import message_dispatch_task

pytestmark = pytest.mark.django_db
CUSTOMER = "+919820012345"


class Meta:
    """Answers ``POST /{phone-number-id}/messages`` with the scripted responses in turn."""

    def __init__(self, *answers: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(json.loads(request.content))
        answer = self.answers.pop(0) if self.answers else accepted("wamid.LAST")
        return answer(request)


def accepted(wamid: str) -> Callable[[httpx2.Request], httpx2.Response]:
    return lambda request: httpx2.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": CUSTOMER, "wa_id": CUSTOMER[1:]}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        },
    )


def error(code: int, status: int = 400, title: str = "Error") -> Callable[[httpx2.Request], httpx2.Response]:
    body = {
        "error": {
            "message": f"({code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": f"details of {code}"},
            "fbtrace_id": "AbCdEf",
        }
    }
    return lambda request: httpx2.Response(status, json=body)


def timeout(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ReadTimeout("no answer", request=request)


@pytest.fixture
def meta(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Meta]:
    def install(*answers: Callable[[httpx2.Request], httpx2.Response]) -> Meta:
        server = Meta(*answers)
        monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(server)))
        return server

    return install


@pytest.fixture
def account():
    return make_account(make_organization())


def queued_text(account, django_capture_on_commit_callbacks) -> Message:
    # The dispatch task is enqueued on commit; these tests call the service themselves.
    with django_capture_on_commit_callbacks(execute=False):
        return message_text_queue(account=account, to=CUSTOMER, text="Your invoice is ready.")


def test_a_queued_message_is_sent_once_with_its_id_as_callback_data(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    server = meta(accepted("wamid.ONE"))
    message = queued_text(account, django_capture_on_commit_callbacks)
    sent = message_dispatch(message_id=message.pk)
    again = message_dispatch(message_id=message.pk)  # a redelivered task
    assert (sent.status, sent.wamid, sent.attempts) == (MessageStatus.SENDING, "wamid.ONE", 1)
    assert again is None and len(server.requests) == 1
    request = server.requests[0]
    assert request["biz_opaque_callback_data"] == str(message.pk)
    assert (request["to"], request["type"], request["text"]["body"]) == (CUSTOMER, "text", "Your invoice is ready.")


def test_the_task_delivered_twice_sends_once(account, meta, django_capture_on_commit_callbacks) -> None:
    server = meta(accepted("wamid.TWICE"))
    message = queued_text(account, django_capture_on_commit_callbacks)
    message_dispatch_task.apply(args=[message.pk])
    message_dispatch_task.apply(args=[message.pk])
    assert len(server.requests) == 1
    assert Message.objects.get(pk=message.pk).wamid == "wamid.TWICE"


def test_queueing_enqueues_the_dispatch_on_commit(account, meta, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message_text_queue(account=account, to=CUSTOMER, text="Hi")
    assert len(callbacks) == 1


def test_a_throughput_error_requeues_the_row_and_asks_for_a_retry(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    meta(error(130429, title="Rate limit hit"), accepted("wamid.LATER"))
    message = queued_text(account, django_capture_on_commit_callbacks)
    with pytest.raises(RetryDispatch) as retry:
        message_dispatch(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED and retry.value.countdown > 0
    assert message_dispatch(message_id=message.pk).wamid == "wamid.LATER"


def test_a_pair_rate_limit_backs_off_four_to_the_n_seconds(account, meta, django_capture_on_commit_callbacks) -> None:
    meta(error(131056), error(131056))
    message = queued_text(account, django_capture_on_commit_callbacks)
    countdowns = []
    for _ in range(2):
        with pytest.raises(RetryDispatch) as retry:
            message_dispatch(message_id=message.pk)
        countdowns.append(retry.value.countdown)
    assert countdowns == [4.0, 16.0]


def test_a_permanent_error_fails_the_row_with_meta_s_error_and_is_not_retried(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    server = meta(error(131026, title="Message undeliverable"))
    message = queued_text(account, django_capture_on_commit_callbacks)
    failed = message_dispatch(message_id=message.pk)
    assert failed.status == MessageStatus.FAILED and failed.failed_at
    assert (failed.error_code, failed.error_details) == (131026, "details of 131026")
    assert failed.fix_hint and message_dispatch(message_id=message.pk) is None
    assert len(server.requests) == 1


def test_retryable_errors_give_up_after_the_last_attempt(account, meta, django_capture_on_commit_callbacks) -> None:
    from whatsapp.services.dispatch import MAX_ATTEMPTS

    meta(*[error(131000, status=500)] * MAX_ATTEMPTS)
    message = queued_text(account, django_capture_on_commit_callbacks)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(RetryDispatch):
            message_dispatch(message_id=message.pk)
    final = message_dispatch(message_id=message.pk)
    assert (final.status, final.error_code, final.attempts) == (MessageStatus.FAILED, 131000, MAX_ATTEMPTS)


def test_no_answer_is_never_retried_blindly_and_the_sweeper_fails_it_later(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    server = meta(timeout)
    message = queued_text(account, django_capture_on_commit_callbacks)
    waiting = message_dispatch(message_id=message.pk)
    waiting.refresh_from_db()
    assert waiting.status == MessageStatus.SENDING and waiting.wamid is None
    assert messages_sweep() == {
        "requeued": 0,
        "abandoned": 0,
        "unconfirmed": 0,
        "resent": 0,
        "credits_closed": 0,
        "credits_released": 0,
    }
    later = timezone.now() + datetime.timedelta(minutes=16)
    assert messages_sweep(now=later)["unconfirmed"] == 1
    waiting.refresh_from_db()
    assert waiting.status == MessageStatus.FAILED and "did not confirm" in waiting.error_title
    assert len(server.requests) == 1


def killed_between_start_and_request(message: Message) -> Message:
    """``message`` as a worker killed after marking its send started, before the request left,
    leaves it: claimed and started, with no answer and no error."""
    now = timezone.now()
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, claimed_at=now, sending_at=now, attempts=1
    )
    return message


@pytest.mark.parametrize("later_send_reported", [True, False])
def test_a_start_nothing_was_heard_of_is_sent_again_once_later_sends_are_reported(
    account, meta, django_capture_on_commit_callbacks, later_send_reported: bool
) -> None:
    server = meta(timeout, accepted("wamid.LATER"), accepted("wamid.AGAIN"))
    silent = killed_between_start_and_request(queued_text(account, django_capture_on_commit_callbacks))
    unanswered = message_dispatch(message_id=queued_text(account, django_capture_on_commit_callbacks).pk)
    later = message_dispatch(message_id=queued_text(account, django_capture_on_commit_callbacks).pk)
    assert unanswered.status == MessageStatus.SENDING and unanswered.error_title  # the request went out
    if later_send_reported:  # WhatsApp's webhooks arrive: a send started after both was delivered
        update = StatusUpdate(wamid="wamid.LATER", status="delivered", at=timezone.now())
        message_status_apply(organization=account.organization, update=update)

    with django_capture_on_commit_callbacks(execute=False):
        swept = messages_sweep(now=timezone.now() + datetime.timedelta(minutes=16))

    silent.refresh_from_db()
    unanswered.refresh_from_db()
    # A request that went out unanswered may have reached Meta: never resent, failed with a hint.
    assert unanswered.status == MessageStatus.FAILED and "did not confirm" in unanswered.error_title
    if not later_send_reported:  # nothing to go by: the silent start is failed too
        assert (swept["resent"], swept["unconfirmed"]) == (0, 2)
        assert silent.status == MessageStatus.FAILED
        return
    assert (swept["resent"], swept["unconfirmed"]) == (1, 1)
    assert (silent.status, silent.sending_at, silent.claimed_at) == (MessageStatus.QUEUED, None, None)
    assert swept["requeued"] >= 1  # queued long ago: dispatched again by this same sweep
    sent = message_dispatch(message_id=silent.pk)
    assert (sent.status, sent.wamid) == (MessageStatus.SENDING, "wamid.AGAIN")
    callbacks = [request["biz_opaque_callback_data"] for request in server.requests]
    assert sorted(callbacks) == sorted([str(unanswered.pk), str(later.pk), str(silent.pk)])
    assert later.wamid == "wamid.LATER"


def test_a_refused_token_puts_the_message_back_and_pauses_the_account(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    server = meta(error(190, status=401, title="Invalid OAuth access token"))
    first = queued_text(account, django_capture_on_commit_callbacks)
    second = queued_text(account, django_capture_on_commit_callbacks)

    waiting = message_dispatch(message_id=first.pk)

    assert (waiting.status, waiting.attempts, waiting.sending_at, waiting.error_code) == (
        MessageStatus.QUEUED,
        0,
        None,
        None,
    )
    account.refresh_from_db()
    assert account.token_refused_at is not None and account.check_error_code == 190
    assert message_dispatch(message_id=second.pk) is None  # paused: not sent, still queued
    second.refresh_from_db()
    assert (second.status, second.attempts) == (MessageStatus.QUEUED, 0)
    assert len(server.requests) == 1


def test_the_sweeper_requeues_a_message_whose_task_was_lost(account, meta, django_capture_on_commit_callbacks) -> None:
    message = queued_text(account, django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(queued_at=timezone.now() - datetime.timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=False):
        result = messages_sweep()
    assert result["requeued"] == 1


def test_nothing_is_queued_while_whatsapp_is_inactive(account) -> None:
    account.status = AccountStatus.INACTIVE
    account.save()
    with pytest.raises(ValidationError, match="not active"):
        message_text_queue(account=account, to=CUSTOMER, text="Hi")
    assert not Message.objects.exists()


@pytest.mark.parametrize(("to", "text"), [("98200", "Hi"), (CUSTOMER, ""), (CUSTOMER, "x" * 4097)])
def test_bad_input_is_refused_before_a_row_is_written(account, to: str, text: str) -> None:
    with pytest.raises(ValidationError):
        message_text_queue(account=account, to=to, text=text)
    assert not Message.objects.exists()


def test_a_template_send_carries_name_language_and_components(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    server = meta(accepted("wamid.T"))
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ravi"}]}]
    with django_capture_on_commit_callbacks(execute=False):
        message = message_template_queue(
            account=account, to=CUSTOMER, name="invoice_notice", language="en", components=components
        )
    message_dispatch(message_id=message.pk)
    template = server.requests[0]["template"]
    assert template == {"name": "invoice_notice", "language": {"code": "en"}, "components": components}


def test_a_spam_limit_refusal_fails_a_one_off_message_only(account, meta, django_capture_on_commit_callbacks) -> None:
    server = meta(error(131048, title="Spam rate limit hit"), accepted("wamid.NEXT"))
    refused = queued_text(account, django_capture_on_commit_callbacks)
    next_one = queued_text(account, django_capture_on_commit_callbacks)

    failed = message_dispatch(message_id=refused.pk)

    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, 131048)
    assert "pause bulk sends" in failed.fix_hint
    assert message_dispatch(message_id=next_one.pk).wamid == "wamid.NEXT"  # nothing held: no bulk send
    assert not Notification.objects.filter(kind="whatsapp.bulk_paused").exists()
    assert len(server.requests) == 2


def test_a_spam_limit_refusal_pauses_the_bulk_send_and_its_other_messages_wait_for_a_resume(
    account, meta, django_capture_on_commit_callbacks
) -> None:
    server = meta(error(131048, title="Spam rate limit hit"), accepted("wamid.AFTER"))
    bulk = BulkSend.objects.create(organization=account.organization, target="documents", module="invoices", total=3)
    refused, waiting, redelivered = (queued_text(account, django_capture_on_commit_callbacks) for _ in range(3))
    Message.objects.filter(pk__in=[refused.pk, waiting.pk, redelivered.pk]).update(bulk=bulk)

    failed = message_dispatch(message_id=refused.pk)

    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, 131048)
    bulk.refresh_from_db()
    assert bulk.paused_at is not None and "131048" in bulk.pause_reason
    # A task already enqueued for a held message claims it, finds the bulk send paused, puts it back.
    Message.objects.filter(pk=redelivered.pk).update(send_after=None)
    assert message_dispatch(message_id=redelivered.pk) is None
    for message in (waiting, redelivered):
        message.refresh_from_db()
        assert (message.status, message.send_after, message.attempts) == (MessageStatus.QUEUED, HELD_UNTIL, 0)
    assert len(server.requests) == 1

    with django_capture_on_commit_callbacks(execute=False):
        assert bulk_send_resume(bulk=bulk) == 2
    assert message_dispatch(message_id=waiting.pk).wamid == "wamid.AFTER"
    assert Notification.objects.filter(kind="whatsapp.bulk_paused").count() == 1
