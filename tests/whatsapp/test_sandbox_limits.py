"""The sandbox enforces Meta's throughput rules and reports them, as the benchmarks rely on.

Sends go to the Graph stand-in over HTTP (Django's test client, or the live server where several
requests must run at once). The clock the limits count with (``whatsapp.sandbox.limits.clock``)
is replaced by :class:`Clock`, so a test puts its sends in the second it wants instead of racing
the wall clock; a reset at the start drops any count a previous test left.
"""

from __future__ import annotations

import datetime
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2  # several sends in flight at once against the live server
import pytest
from django.test import override_settings

from tests.books.factories import make_organization
from tests.whatsapp.factories import make_sandbox_account
from whatsapp.choices import MessageStatus
from whatsapp.models import PhoneNumber, WebhookEvent, WhatsAppAccount
from whatsapp.sandbox import delivery, limits, selectors, services
from whatsapp.sandbox.management.commands.sandbox_setup import number_specs
from whatsapp.sandbox.models import SandboxBusinessAccount, SandboxMessage, SandboxPhoneNumber, SandboxWebhookDelivery
from whatsapp.services.dispatch import message_template_queue

TOKEN = "EAALimitsTestToken000000000000000000000000"
WABA_ID = "104400000000077"
APP_ID = "204400000000077"
#: A quarter past a whole second, far from the wall clock: no real send shares its counters.
START = 2_000_000_000.25
CUSTOMER = "919876543210"


class Clock:
    """The limits' clock, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def sandbox_on() -> Any:
    selectors.sandbox_settings_forget()
    with override_settings(
        WHATSAPP_SANDBOX_ENABLED=True,
        WHATSAPP_SANDBOX_DELIVERY="manual",
        WHATSAPP_SANDBOX_WEBHOOK_URL="http://127.0.0.1:9/not-listening/",
    ):
        yield
    selectors.sandbox_settings_forget()


@pytest.fixture
def account(transactional_db: None) -> SandboxBusinessAccount:
    account = services.business_account_setup(
        waba_id=WABA_ID,
        app_id=APP_ID,
        access_token=TOKEN,
        name="Acme Books",
        verified_name="Acme Books",
        numbers=number_specs(WABA_ID),
    )
    services.sample_template_ensure(account=account)
    return account


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, account: SandboxBusinessAccount) -> Clock:
    fake = Clock(START)
    monkeypatch.setattr(limits, "clock", fake)
    services.sandbox_reset()  # forgets the counters of these seconds, whoever left them
    return fake


@pytest.fixture
def phone(account: SandboxBusinessAccount) -> SandboxPhoneNumber:
    return account.phone_numbers.filter(registered=True).order_by("phone_number_id").first()


def customer(n: int) -> str:
    return f"9198{n:08d}"


def message(to: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    }


def send(client: Any, phone: SandboxPhoneNumber, to: str) -> Any:
    return client.post(
        f"/sandbox/graph/v25.0/{phone.phone_number_id}/messages",
        message(to),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def codes(responses: list[Any]) -> list[int]:
    """200 for an accepted send, Meta's error code for a refused one."""
    return [200 if r.status_code == 200 else r.json()["error"]["code"] for r in responses]


def stats(client: Any, **query: str) -> dict[str, Any]:
    return client.get("/sandbox/control/stats", query).json()["phone_numbers"]


def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat()


# --- Throughput: messages per second per number -------------------------------------------------


def test_the_81st_send_of_a_number_in_one_second_is_refused_with_130429(
    client: Any, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    first = [send(client, phone, customer(n)) for n in range(80)]
    refused = send(client, phone, customer(80))
    clock.now += 1
    next_second = send(client, phone, customer(80))

    assert codes(first) == [200] * 80
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["type"], error["message"]) == (130429, "OAuthException", "(#130429) Rate limit hit")
    assert error["error_data"]["details"] == "Cloud API message throughput has been reached."
    assert error["fbtrace_id"]
    assert next_second.status_code == 200
    # Nothing of the refused send was kept: one message (its statuses to come) per accepted send.
    assert SandboxMessage.objects.filter(direction="outbound", status_due_at__isnull=False).count() == 81


def test_with_an_async_fault_set_the_limits_are_taken_one_by_one_and_still_hold(
    client: Any, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    # An async fault that could apply makes a send take its limits a statement each (a counted
    # fault is used up by an accepted send only), not in the statement that saves it.
    services.fault_create(code="131026", mode="async", remaining=1)

    responses = [send(client, phone, customer(n)) for n in range(81)]
    clock.now += 1
    same = [send(client, phone, CUSTOMER) for _ in range(46)]

    assert codes(responses) == [200] * 80 + [130429]
    assert codes(same) == [200] * 45 + [131056]
    first = SandboxMessage.objects.get(wamid=responses[0].json()["messages"][0]["id"])
    assert (first.error_code, first.pricing) == (131026, None)
    assert SandboxMessage.objects.filter(direction="outbound", error_code__isnull=True).count() == 79 + 45
    assert stats(client)[phone.phone_number_id]["refused_130429"] == 1


def test_a_high_throughput_number_takes_more_than_80_a_second(
    client: Any, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    upgraded = client.post(
        f"/sandbox/control/phone_numbers/{phone.phone_number_id}",
        {"throughput_level": "HIGH"},
        content_type="application/json",
    )

    responses = [send(client, phone, customer(n)) for n in range(120)]

    assert upgraded.json() | {"waba_id": ""} == {
        "phone_number_id": phone.phone_number_id,
        "display_phone_number": phone.display_phone_number,
        "waba_id": "",
        "registered": True,
        "code_verification_status": "VERIFIED",
        "throughput_level": "HIGH",
        "messages_per_second": 1000,
        "messaging_limit_tier": "TIER_2K",
    }
    assert codes(responses) == [200] * 120


def test_a_send_refused_for_the_pair_rate_leaves_its_place_in_the_second(
    client: Any, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    burst = [send(client, phone, CUSTOMER) for _ in range(46)]
    others = [send(client, phone, customer(n)) for n in range(36)]

    # 45 + 35 accepted fill the second; the pair-rate refusal did not count against it.
    assert codes(burst) == [200] * 45 + [131056]
    assert codes(others) == [200] * 35 + [130429]


# --- Counted in the second the send arrived, not when it was processed ----------------------------


class Backlog:
    """The sandbox reaching each send ``lag`` seconds after it arrived, as a process starved of CPU does.

    Installed around :func:`whatsapp.sandbox.services.message_send`, after the request was seen: the
    clock moves on by ``lag`` while the send waits to be processed, and back for the next arrival.
    """

    def __init__(self, clock: Clock, send_service: Any) -> None:
        self.clock = clock
        self.send_service = send_service
        self.lag = 0.0

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.clock.now += self.lag
        try:
            return self.send_service(**kwargs)
        finally:
            self.clock.now -= self.lag


@pytest.fixture
def backlog(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Backlog:
    late = Backlog(clock, services.message_send)
    monkeypatch.setattr(services, "message_send", late)
    return late


@pytest.fixture(params=["view", "middleware"])
def stamped_by(request: pytest.FixtureRequest, settings: Any) -> str:
    """Where the arrival is stamped: the Graph view as it starts, or the middleware the bench's sandbox runs."""
    if request.param == "middleware":
        security = settings.MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
        settings.MIDDLEWARE = [
            *settings.MIDDLEWARE[: security + 1],
            "whatsapp.sandbox.middleware.SandboxGraphMiddleware",
            *settings.MIDDLEWARE[security + 1 :],
        ]
    return request.param


def test_a_send_counts_in_the_second_it_arrived_even_when_processed_after_that_second_ends(
    client: Any, phone: SandboxPhoneNumber, clock: Clock, backlog: Backlog, stamped_by: str
) -> None:
    on_time = [send(client, phone, customer(n)) for n in range(40)]  # arrived in S, processed in S
    backlog.lag = 1.0
    late = [send(client, phone, customer(n)) for n in range(40, 81)]  # arrived in S, processed in S + 1
    backlog.lag = 0.0
    clock.now += 1
    next_second = [send(client, phone, customer(n)) for n in range(80)]  # arrived and processed in S + 1

    # S is full at its 80th arrival, whenever the sends were processed; the late ones left S + 1 alone.
    assert codes(on_time + late) == [200] * 80 + [130429]
    assert codes(next_second) == [200] * 80
    detailed = stats(client, detail="1")[phone.phone_number_id]
    assert detailed["per_second"] == {iso(int(START)): 80, iso(int(START) + 1): 80}
    assert (detailed["peak_per_second"], detailed["refused_130429"]) == (80, 1)
    last_late = SandboxMessage.objects.get(wamid=late[-2].json()["messages"][0]["id"])
    assert last_late.created_at == datetime.datetime.fromtimestamp(START, tz=datetime.UTC)


def test_the_pair_rate_refills_up_to_the_arrival_not_the_processing(
    client: Any, phone: SandboxPhoneNumber, clock: Clock, backlog: Backlog
) -> None:
    burst = [send(client, phone, CUSTOMER) for _ in range(45)]
    clock.now += 5.5  # less than the 6 s one message is paid back in...
    backlog.lag = 1.0  # ...though more than 6 s have passed when the send is processed
    too_soon = send(client, phone, CUSTOMER)
    clock.now += 1
    in_time = send(client, phone, CUSTOMER)  # arrived 6.5 s after the burst

    assert codes(burst) == [200] * 45
    assert codes([too_soon, in_time]) == [131056, 200]


# --- Pair rate: a token bucket per (number, customer) --------------------------------------------


def test_the_46th_message_of_a_burst_to_one_customer_is_refused_with_131056_until_paid_back(
    client: Any, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    burst = [send(client, phone, CUSTOMER) for _ in range(46)]
    someone_else = send(client, phone, customer(7))
    clock.now += 6  # one message paid back
    after_6s = [send(client, phone, CUSTOMER) for _ in range(2)]
    clock.now += 60  # ten more
    after_a_minute = [send(client, phone, CUSTOMER) for _ in range(11)]
    clock.now += 3600  # the bucket refills to 45, no further
    after_an_hour = [send(client, phone, CUSTOMER) for _ in range(46)]

    assert codes(burst) == [200] * 45 + [131056]
    error = burst[-1].json()["error"]
    assert error["message"] == "(#131056) (Business Account, Consumer Account) pair rate limit hit"
    assert someone_else.status_code == 200
    assert codes(after_6s) == [200, 131056]
    assert codes(after_a_minute) == [200] * 10 + [131056]
    assert codes(after_an_hour) == [200] * 45 + [131056]


def test_the_pair_rate_is_per_business_number(client: Any, account: SandboxBusinessAccount, clock: Clock) -> None:
    first, second = account.phone_numbers.filter(registered=True).order_by("phone_number_id")

    from_first = [send(client, first, CUSTOMER) for _ in range(46)]
    from_second = send(client, second, CUSTOMER)

    assert codes(from_first)[-2:] == [200, 131056]
    assert from_second.status_code == 200


# --- Stats and reset --------------------------------------------------------------------------


def test_stats_count_accepted_and_refused_sends_and_the_busiest_second(
    client: Any, account: SandboxBusinessAccount, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    [send(client, phone, customer(n)) for n in range(82)]  # 80 accepted, 2 refused (130429)
    clock.now += 1
    [send(client, phone, CUSTOMER) for _ in range(46)]  # 45 accepted, 1 refused (131056)

    numbers = stats(client)
    detailed = stats(client, detail="1")

    other = account.phone_numbers.exclude(pk=phone.pk).order_by("phone_number_id").first()
    assert set(numbers) == set(account.phone_numbers.values_list("phone_number_id", flat=True))
    assert numbers[phone.phone_number_id] == {
        "accepted": 125,
        "refused_130429": 2,
        "refused_131056": 1,
        "peak_per_second": 80,
        "first_accepted_at": iso(START),
        "last_accepted_at": iso(START + 1),
    }
    assert numbers[other.phone_number_id] == {
        "accepted": 0,
        "refused_130429": 0,
        "refused_131056": 0,
        "peak_per_second": 0,
        "first_accepted_at": None,
        "last_accepted_at": None,
    }
    assert "per_second" not in numbers[phone.phone_number_id]
    assert detailed[phone.phone_number_id]["per_second"] == {iso(int(START)): 80, iso(int(START) + 1): 45}
    assert detailed[other.phone_number_id]["per_second"] == {}


def test_injected_limit_faults_count_as_refusals(client: Any, phone: SandboxPhoneNumber, clock: Clock) -> None:
    services.fault_create(code="130429", remaining=2)
    services.fault_create(code="131056", remaining=1)

    responses = [send(client, phone, customer(n)) for n in range(4)]

    assert codes(responses) == [130429, 130429, 131056, 200]
    assert stats(client)[phone.phone_number_id] | {"first_accepted_at": None, "last_accepted_at": None} == {
        "accepted": 1,
        "refused_130429": 2,
        "refused_131056": 1,
        "peak_per_second": 1,
        "first_accepted_at": None,
        "last_accepted_at": None,
    }


def test_reset_clears_the_stats_and_the_limits(client: Any, phone: SandboxPhoneNumber, clock: Clock) -> None:
    [send(client, phone, customer(n)) for n in range(81)]
    clock.now += 1
    [send(client, phone, CUSTOMER) for _ in range(46)]

    reset = client.post("/sandbox/control/reset")
    after = stats(client)[phone.phone_number_id]
    again = send(client, phone, CUSTOMER)  # the same second: its count and the pair's bucket are gone

    assert reset.json() == {"success": True}
    assert after == {
        "accepted": 0,
        "refused_130429": 0,
        "refused_131056": 0,
        "peak_per_second": 0,
        "first_accepted_at": None,
        "last_accepted_at": None,
    }
    assert again.status_code == 200
    assert [send(client, phone, customer(n)).status_code for n in range(79)] == [200] * 79


def test_the_control_api_sets_the_messaging_limit_and_refuses_unknown_values(
    client: Any, phone: SandboxPhoneNumber
) -> None:
    url = f"/sandbox/control/phone_numbers/{phone.phone_number_id}"

    changed = client.post(url, {"messaging_limit_tier": "TIER_UNLIMITED"}, content_type="application/json")
    wrong_level = client.post(url, {"throughput_level": "TURBO"}, content_type="application/json")
    wrong_field = client.post(url, {"quality_rating": "RED"}, content_type="application/json")
    unknown = client.post("/sandbox/control/phone_numbers/999", {}, content_type="application/json")
    listed = client.get("/sandbox/control/phone_numbers").json()["data"]
    graph = client.get(
        f"/sandbox/graph/v25.0/{phone.phone_number_id}",
        {"fields": "whatsapp_business_manager_messaging_limit,throughput"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()

    assert changed.json()["messaging_limit_tier"] == "TIER_UNLIMITED"
    assert (wrong_level.status_code, wrong_field.status_code, unknown.status_code) == (400, 400, 404)
    assert {n["phone_number_id"]: n["messaging_limit_tier"] for n in listed}[phone.phone_number_id] == "TIER_UNLIMITED"
    assert graph["whatsapp_business_manager_messaging_limit"] == "TIER_UNLIMITED"
    assert graph["throughput"] == {"level": "STANDARD"}
    [announced] = SandboxWebhookDelivery.objects.filter(kind="phone_number")
    value = json.loads(announced.payload)["entry"][0]["changes"][0]["value"]
    assert value == {
        "display_phone_number": phone.digits,
        "event": "UPGRADE",
        "old_limit": "TIER_2K",
        "current_limit": "TIER_UNLIMITED",
        "max_daily_conversations_per_business": "TIER_UNLIMITED",
    }


# --- Across threads: the limits are atomic ------------------------------------------------------


@pytest.mark.postgres
def test_concurrent_sends_never_pass_the_cap_or_the_pair_rate(
    live_server: Any, phone: SandboxPhoneNumber, clock: Clock
) -> None:
    url = f"{live_server.url}/sandbox/graph/v25.0/{phone.phone_number_id}/messages"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(headers=headers, timeout=30) as http, ThreadPoolExecutor(max_workers=10) as pool:
        distinct = list(pool.map(lambda n: http.post(url, json=message(customer(n))), range(100)))
        clock.now += 1
        same = list(pool.map(lambda n: http.post(url, json=message(CUSTOMER)), range(60)))

    def tally(responses: list[Any]) -> dict[int, int]:
        found = [200 if r.status_code == 200 else r.json()["error"]["code"] for r in responses]
        return {code: found.count(code) for code in set(found)}

    assert tally(distinct) == {200: 80, 130429: 20}
    assert tally(same) == {200: 45, 131056: 15}
    assert selectors.send_stats()["phone_numbers"][phone.phone_number_id] | {"first_accepted_at": None} == {
        "accepted": 125,
        "refused_130429": 20,
        "refused_131056": 15,
        "peak_per_second": 80,
        "first_accepted_at": None,
        "last_accepted_at": iso(START + 1),
    }


# --- Batched status webhooks, end to end through the hub's receiver ---------------------------------


@pytest.fixture
def hub_account(sandbox_live: str, celery_eager: None) -> WhatsAppAccount:
    return make_sandbox_account(make_organization(), waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


def test_batched_statuses_reach_every_message_of_both_numbers_in_one_webhook(
    hub_account: WhatsAppAccount,
) -> None:
    meta = SandboxBusinessAccount.objects.get(waba_id=WABA_ID)
    services.sample_template_ensure(account=meta)
    first, second = meta.phone_numbers.filter(registered=True).order_by("phone_number_id")
    other_number = PhoneNumber.objects.create(
        organization=hub_account.organization,
        account=hub_account,
        phone_number_id=second.phone_number_id,
        display_phone_number=second.display_phone_number,
        code_verification_status="VERIFIED",
    )
    services.sandbox_settings_update(status_batch_ms=1000)
    sent = [
        message_template_queue(
            account=hub_account,
            to="+" + customer(n),
            name="hello_world",
            language="en_US",
            phone_number=other_number if n == 2 else None,
        )
        for n in range(3)
    ]
    events_before = WebhookEvent.objects.count()

    delivery.flush()

    new_events = list(WebhookEvent.objects.order_by("pk")[events_before:])
    assert len(new_events) == 1 and new_events[0].state == "processed"
    changes = json.loads(new_events[0].body)["entry"][0]["changes"]
    assert {change["value"]["metadata"]["phone_number_id"]: len(change["value"]["statuses"]) for change in changes} == {
        first.phone_number_id: 6,
        second.phone_number_id: 3,
    }
    for item in sent:
        item.refresh_from_db()
    assert [item.status for item in sent] == [MessageStatus.READ] * 3
    assert sent[2].phone_number_id == other_number.pk
    assert set(SandboxWebhookDelivery.objects.filter(kind="message_status").values_list("state", "attempts")) == {
        ("delivered", 1)
    }
    assert set(SandboxMessage.objects.filter(direction="outbound").values_list("status", flat=True)) == {"read"}
