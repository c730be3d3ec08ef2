"""A bulk send paused by Meta's spam limit (131048): what waits, what the page and the API show,
and "Resume sending" (POST, CSRF, NOTIFICATIONS_SEND, the organization's own bulk sends only).

The bulk send is written by its task as in production; Meta is httpx2's MockTransport behind the
real client, refusing the first message with 131048 (through the per-message dispatch service).
"""

from __future__ import annotations

import datetime
import html
import json
import re
from decimal import Decimal

import httpx2
import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from books.models import Notification, Role
from books.permissions import Perm
from books.services.organizations import membership_add
from credits.models import Price, Reservation
from credits.services import credits_adjust
from templates_mgmt.choices import Module
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template
from whatsapp import cloud
from whatsapp.choices import MessageStatus
from whatsapp.client import CloudAPI
from whatsapp.models import BulkSend, Message
from whatsapp.services import pump as pump_module
from whatsapp.services.bulk import bulk_send_run, bulk_send_start
from whatsapp.services.bulk_pause import HELD_UNTIL
from whatsapp.services.charges import CreditsFollow, credits_reference
from whatsapp.services.dispatch import message_dispatch, messages_sweep
from whatsapp.services.messages import StatusBatch, StatusUpdate, message_status_apply

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def woken(monkeypatch) -> list[list[int]]:
    """The broker: bulk tasks never run by themselves; each dispatch wake is recorded with its ids."""
    wakes: list[list[int]] = []
    monkeypatch.setattr("whatsapp.services.bulk._enqueue", lambda bulk_id: None)
    monkeypatch.setattr("whatsapp.services.dispatch._dispatch_after_commit", lambda ids: wakes.append(sorted(ids)))
    return wakes


@pytest.fixture
def user():
    return UserFactory(username="meera")


@pytest.fixture
def org(user):
    organization = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    credits_adjust(organization=organization, amount=Decimal("50"), note="opening", user=None)
    Price.objects.create(organization=organization, category="utility", country_code="", credits=Decimal("1"))
    return organization


@pytest.fixture
def account(org):
    account = make_account(org)
    make_approved_template(account, Module.INVOICES)
    return account


@pytest.fixture
def meta(monkeypatch) -> list[dict]:
    """Refuses the first send with 131048 and accepts the others; the send requests, in order."""
    requests: list[dict] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/media"):  # the invoice's PDF for the template's header
            return httpx2.Response(200, json={"id": "media.1"})
        body = json.loads(request.content)
        requests.append(body)
        if len(requests) == 1:
            error = {"message": "(#131048) Spam rate limit hit", "code": 131048, "type": "OAuthException"}
            return httpx2.Response(400, json={"error": {**error, "fbtrace_id": "x"}})
        wamid = f"wamid.{body['biz_opaque_callback_data']}"
        return httpx2.Response(200, json={"messaging_product": "whatsapp", "messages": [{"id": wamid}]})

    monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(answer)))
    return requests


@pytest.fixture
def paused(org, account, meta, django_capture_on_commit_callbacks) -> tuple[BulkSend, Message, list[Message]]:
    """Three invoices sent in bulk; Meta refused the first message: (bulk send, refused, held)."""
    documents = [make_document(org) for _ in range(3)]
    bulk, _created = bulk_send_start(
        organization=org, target="documents", module=Module.INVOICES, ids=[d.pk for d in documents]
    )
    with django_capture_on_commit_callbacks(execute=False):
        bulk_send_run(bulk_id=bulk.pk)
    refused, *others = Message.objects.filter(bulk=bulk).order_by("pk")
    message_dispatch(message_id=refused.pk)
    bulk.refresh_from_db()
    return bulk, refused, others


def page(response) -> str:
    return html.unescape(response.content.decode())


def fragment(client, bulk):
    return client.get(reverse("whatsapp_send:bulk_progress", args=[bulk.pk]), headers={"HX-Request": "true"})


def percent(response) -> int:
    return int(re.search(r'<progress[^>]*value="(\d+)" max="100"', response.content.decode()).group(1))


def resume_url(bulk) -> str:
    return reverse("whatsapp_send:bulk_resume", args=[bulk.pk])


def held(bulk) -> list[int]:
    return sorted(
        Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED, send_after=HELD_UNTIL).values_list(
            "pk", flat=True
        )
    )


def test_the_refused_message_fails_and_the_rest_wait_with_their_credits(org, paused, meta) -> None:
    bulk, refused, others = paused

    refused.refresh_from_db()
    assert (refused.status, refused.error_code) == (MessageStatus.FAILED, 131048) and refused.fix_hint
    assert bulk.paused_at is not None and "131048" in bulk.pause_reason
    assert held(bulk) == [m.pk for m in others] and len(meta) == 1
    statuses = dict(Reservation.objects.filter(organization=org).values_list("reference", "status"))
    assert statuses[credits_reference(refused.pk)] == "released"
    assert all(statuses[credits_reference(m.pk)] == "reserved" for m in others)  # nothing released for them
    (notice,) = Notification.objects.filter(organization=org, kind="whatsapp.bulk_paused")
    assert notice.url == reverse("whatsapp_send:bulk", args=[bulk.pk]) and "2 messages" in notice.body


def test_the_sweeper_does_not_take_held_messages_for_stuck_ones(paused, monkeypatch) -> None:
    bulk, _refused, others = paused
    wakes: list[bool] = []
    monkeypatch.setattr(pump_module, "dispatch_wake", lambda countdown=0, force=False: wakes.append(force))

    swept = messages_sweep(now=timezone.now() + datetime.timedelta(minutes=30))

    assert swept["requeued"] == swept["abandoned"] == 0 and not wakes
    assert held(bulk) == [m.pk for m in others]


def test_the_page_shows_the_pause_and_resume_sending_releases_the_held_messages(
    user, paused, woken, django_capture_on_commit_callbacks
) -> None:
    bulk, _refused, others = paused
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    response = fragment(browser, bulk)
    text = page(response)
    assert "data-bulk-state>Paused<" in text and bulk.pause_reason in text
    # Every message but the held ones is final: the page does not claim the send is complete.
    assert percent(response) < 100 and "Finished" not in text
    form = re.search(r'<form method="post" action="([^"]+)">.*?name="csrfmiddlewaretoken" value="([^"]+)"', text, re.S)
    assert form and form.group(1) == resume_url(bulk) and "Resume sending" in text

    assert browser.post(resume_url(bulk)).status_code == 403  # no CSRF token: refused, still paused
    assert held(bulk) == [m.pk for m in others]

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(resume_url(bulk), {"csrfmiddlewaretoken": form.group(2)})

    assert response.status_code == 302 and response["Location"] == reverse("whatsapp_send:bulk", args=[bulk.pk])
    bulk.refresh_from_db()
    assert bulk.paused_at is None and bulk.pause_reason == ""
    rows = Message.objects.filter(pk__in=[m.pk for m in others])
    assert all((m.status, m.send_after) == (MessageStatus.QUEUED, None) for m in rows)
    assert woken == [sorted(m.pk for m in others)]  # dispatch woken for them
    after = page(fragment(browser, bulk))
    assert "data-bulk-state>Paused<" not in after and "data-bulk-resume" not in after

    with django_capture_on_commit_callbacks(execute=True):  # a second click changes nothing
        assert browser.post(resume_url(bulk), {"csrfmiddlewaretoken": form.group(2)}).status_code == 302
    assert len(woken) == 1


def test_resuming_needs_notifications_send_and_the_organization_s_own_bulk_send(client, org, paused) -> None:
    bulk, _refused, others = paused
    viewer = UserFactory()
    Role.objects.create(organization=org, name="Viewer", permissions=[Perm.SALES_VIEW, Perm.CUSTOMERS_VIEW])
    membership_add(organization=org, user=viewer, role_name="Viewer")
    client.force_login(viewer)
    assert client.post(resume_url(bulk)).status_code == 403

    stranger = UserFactory()
    make_organization(name="Globex", user=stranger, role="Admin")
    client.force_login(stranger)
    assert client.post(resume_url(bulk)).status_code == 404
    assert client.get(resume_url(bulk)).status_code in (404, 405)

    assert held(bulk) == [m.pk for m in others]
    assert BulkSend.objects.get(pk=bulk.pk).paused_at is not None


def test_rest_shows_the_pause_and_resumes_the_bulk_send(
    user, paused, woken, django_capture_on_commit_callbacks
) -> None:
    bulk, _refused, others = paused
    api = client_for(user)

    detail = api.get(f"/api/v1/whatsapp/bulk/{bulk.pk}").json()
    assert detail["paused_at"] and "131048" in detail["pause_reason"]
    assert detail["status_counts"] == {"failed": 1, "queued": 2} and detail["percent"] < 100
    assert api.get(f"/api/v1/whatsapp/bulk/{bulk.pk}/resume").status_code == 405

    with django_capture_on_commit_callbacks(execute=True):
        resumed = api.post(f"/api/v1/whatsapp/bulk/{bulk.pk}/resume")

    assert resumed.status_code == 200
    assert (resumed.json()["paused_at"], resumed.json()["pause_reason"]) == (None, "")
    assert held(bulk) == [] and woken == [sorted(m.pk for m in others)]

    stranger = UserFactory()
    make_organization(name="Globex", user=stranger, role="Admin")
    assert client_for(stranger).post(f"/api/v1/whatsapp/bulk/{bulk.pk}/resume").status_code == 404


@pytest.mark.parametrize("path", ["drain", "one_by_one"])
def test_a_131048_in_a_failed_status_webhook_pauses_the_bulk_send_too(
    org, account, django_capture_on_commit_callbacks, monkeypatch, path: str
) -> None:
    """Meta accepted the send, then refused it in a ``failed`` status: the rest is held as well."""
    accepting = lambda request: (  # noqa: E731
        httpx2.Response(200, json={"id": "media.1"})
        if request.url.path.endswith("/media")
        else httpx2.Response(
            200,
            json={"messages": [{"id": f"wamid.{json.loads(request.content)['biz_opaque_callback_data']}"}]},
        )
    )
    monkeypatch.setattr(cloud, "cloud_api", lambda token: CloudAPI(token, transport=httpx2.MockTransport(accepting)))
    documents = [make_document(org) for _ in range(3)]
    bulk, _created = bulk_send_start(
        organization=org, target="documents", module=Module.INVOICES, ids=[d.pk for d in documents]
    )
    with django_capture_on_commit_callbacks(execute=False):
        bulk_send_run(bulk_id=bulk.pk)
    first, *others = Message.objects.filter(bulk=bulk).order_by("pk")
    first = message_dispatch(message_id=first.pk)
    update = StatusUpdate(
        wamid=first.wamid,
        status="failed",
        at=timezone.now(),
        error_code=131048,
        error_title="Spam rate limit hit",
    )

    if path == "drain":
        batch = StatusBatch(credits=CreditsFollow())
        with transaction.atomic():
            batch.load([(org, update)])
            batch.apply(organization=org, update=update)
            batch.save()
    else:
        message_status_apply(organization=org, update=update)

    bulk.refresh_from_db()
    assert bulk.paused_at is not None and "131048" in bulk.pause_reason
    held = Message.objects.filter(pk__in=[m.pk for m in others])
    assert all(m.status == MessageStatus.QUEUED and m.send_after == HELD_UNTIL for m in held)
    assert Notification.objects.filter(organization=org, kind="whatsapp.bulk_paused").count() == 1
    first.refresh_from_db()
    assert (first.status, first.error_code) == (MessageStatus.FAILED, 131048)
