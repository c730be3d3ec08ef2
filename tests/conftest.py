import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import translation

from tests import settings as test_settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (locking, concurrency)")
    config.addinivalue_line("markers", "redis: needs Redis (Celery delivery, shared limiters)")
    config.addinivalue_line("markers", "browser: drives Debian's Chromium through Playwright")
    if test_settings.UNAVAILABLE:
        message = (
            f"\n{'!' * 78}\n!! {', '.join(test_settings.UNAVAILABLE)} unreachable: the tests that need it are SKIPPED."
            f"\n!! Start it, or set DATABASE_URL / REDIS_URL.\n{'!' * 78}\n"
        )
        if os.environ.get("CI", "").lower() == "true":
            raise pytest.UsageError(message + "CI=true: an unreachable service is a failure.")
        config.issue_config_time_warning(pytest.PytestWarning(message), stacklevel=2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and not test_settings.POSTGRES_AVAILABLE:
            item.add_marker(pytest.mark.skip(reason="PostgreSQL unreachable (set DATABASE_URL)"))
        if "redis" in item.keywords and not test_settings.REDIS_AVAILABLE:
            item.add_marker(pytest.mark.skip(reason="Redis unreachable (set REDIS_URL)"))


@pytest.fixture(autouse=True)
def default_language() -> Iterator[None]:
    """Each test starts in the default language: a request in another one (Accept-Language, the
    language switcher) leaves it active in the thread after the test client returns."""
    yield
    translation.deactivate()


@pytest.fixture
def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


#: The app secret the sandbox signs its webhooks with in tests that use ``sandbox_live``.
SANDBOX_APP_SECRET = "sandbox-live-test-app-secret"


@pytest.fixture
def sandbox_live(live_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The hub on a live server with the Cloud API sandbox in it as Meta; yields the server's URL.

    The client speaks to the sandbox's Graph paths over HTTP, and the sandbox's webhooks reach
    ``/webhooks/whatsapp/`` over HTTP, signed with :data:`SANDBOX_APP_SECRET`. Delivery is manual:
    nothing is posted until the test calls ``whatsapp.sandbox.delivery.flush()``. The client gets
    a connection pool of the test's own, closed at the end: a kept-alive connection would keep a
    live-server thread, and its database session, open past the test.
    """
    from whatsapp import client as client_module
    from whatsapp.sandbox import selectors as sandbox_selectors

    monkeypatch.setattr(client_module, "_shared_client", None)
    sandbox_selectors.sandbox_settings_forget()
    with override_settings(
        WHATSAPP_SANDBOX_ENABLED=True,
        WHATSAPP_SANDBOX_DELIVERY="manual",
        WHATSAPP_SANDBOX_WEBHOOK_URL=live_server.url + "/webhooks/whatsapp/",
        WHATSAPP_GRAPH_URL=live_server.url + "/sandbox/graph",
        WHATSAPP_APP_SECRET=SANDBOX_APP_SECRET,
    ):
        yield live_server.url
    sandbox_selectors.sandbox_settings_forget()
    if client_module._shared_client is not None:
        client_module._shared_client.close()


@pytest.fixture
def celery_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run Celery tasks inline (where they are enqueued: in the live server, for webhooks)."""
    from config.celery import app as celery_app
    from whatsapp.services.pacing import pacing_forget
    from whatsapp.services.pump import dispatch_keys_clear

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)
    # An earlier test may have enqueued a pump on the real broker, which no worker runs here: its
    # "a pump is queued" key would make this test's wakes wait for it. Phone number ids and
    # recipients repeat from test to test: earlier tests' pair-rate bookings would hold this one's.
    dispatch_keys_clear()
    pacing_forget()
