"""The receiver's path through Django: ``WhatsAppWebhookMiddleware`` answers ``/webhooks/whatsapp/``
ahead of the browser's middleware, and what that must not change.

What the receiver does with a body (signature, storage, the drain) is tested in ``test_webhooks``
and ``test_webhook_drain``; here: what a webhook costs (one INSERT when a drain is already pending),
which middleware still runs (SecurityMiddleware's headers, the ALLOWED_HOSTS check), bodies
beyond the upload limit, and a kept database connection that died (the INSERT checks it, no
``SELECT 1`` goes first).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from whatsapp.models import WebhookEvent
from whatsapp.services import webhooks
from whatsapp.signature import signature_compute

SECRET = "test-app-secret"
URL = "/webhooks/whatsapp/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def app_secret(settings: Any) -> None:
    settings.WHATSAPP_APP_SECRET = SECRET


@pytest.fixture
def drain_pending() -> None:
    """A drain is queued already (its key is held), so accepting a webhook enqueues nothing."""
    key = webhooks._drain_key()
    cache.set(key, 1, timeout=60)
    yield
    cache.delete(key)


def signed_post(client: Client, body: bytes, **extra: Any) -> Any:
    signature = signature_compute(body, SECRET)
    return client.post(URL, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature, **extra)


def status_body(wamid: str = "wamid.RECEIVER", *, padding: int = 0) -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [{"id": wamid}]}}]}],
        "padding": "x" * padding,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def test_a_webhook_costs_one_insert_when_a_drain_is_pending(
    client: Client, drain_pending: None, django_assert_num_queries: Any
) -> None:
    # No session, user, organization or locale lookups: the middleware answers before any of them.
    with django_assert_num_queries(1):
        response = signed_post(client, status_body())
    assert (response.status_code, response.content) == (200, b"ok")
    assert WebhookEvent.objects.get().body.encode() == status_body()


def test_the_answer_skips_the_browser_middleware_but_keeps_the_security_headers(
    client: Client, drain_pending: None
) -> None:
    response = signed_post(client, status_body())
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs first
    assert response["Referrer-Policy"] == "same-origin"
    # LocaleMiddleware and XFrameOptionsMiddleware mark every answer they see; this one they never saw.
    assert "Content-Language" not in response and "X-Frame-Options" not in response
    assert not response.cookies
    assert response["Content-Length"] == "2"  # as CommonMiddleware would set it: not a chunked answer


def test_a_host_the_hub_does_not_serve_is_refused_and_changes_nothing(client: Client) -> None:
    response = signed_post(client, status_body(), HTTP_HOST="hub.attacker.example")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_body_over_the_upload_limit_is_answered_413_and_changes_nothing(client: Client, settings: Any) -> None:
    body = status_body(padding=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    response = signed_post(client, body)
    assert (response.status_code, response.content) == (413, b"request body too large")
    assert not WebhookEvent.objects.exists()


def test_a_body_just_under_the_upload_limit_is_accepted(client: Client, settings: Any, drain_pending: None) -> None:
    body = status_body(padding=settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(status_body()))
    assert len(body) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert signed_post(client, body).status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_methods_other_than_get_and_post_are_refused(client: Client) -> None:
    assert client.put(URL, data=status_body(), content_type="application/json").status_code == 405
    assert not WebhookEvent.objects.exists()


def test_other_paths_still_go_through_the_browser_middleware(client: Client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies  # CsrfViewMiddleware
    assert response["Content-Language"] == "en"  # LocaleMiddleware
    assert response["X-Frame-Options"] == "DENY"  # XFrameOptionsMiddleware


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_webhook_on_a_connection_postgresql_dropped_is_stored_on_a_new_one(
    client: Client, drain_pending: None
) -> None:
    # Given a kept connection that PostgreSQL has since closed (a restart, a proxy's idle timeout)
    assert signed_post(client, status_body("wamid.BEFORE")).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    # when the next webhook arrives, then it is stored all the same (no SELECT 1 went first to notice)
    response = signed_post(client, status_body("wamid.AFTER"))
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 2
