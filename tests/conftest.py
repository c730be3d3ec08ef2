import os

import pytest
from django.conf import settings

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


@pytest.fixture
def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
