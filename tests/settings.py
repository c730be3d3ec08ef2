"""Settings for the test suite: the hub's own settings, pointed at PostgreSQL and Redis when reachable.

PostgreSQL at DATABASE_URL (default postgres://hub:hub@127.0.0.1:5432/hub) and Redis at
REDIS_URL (default redis://127.0.0.1:6379/15) are used when they answer. When one does not, the
suite falls back to SQLite / no Redis and the tests that depend on it are skipped with a loud
reason, except under CI=true, where an unreachable service fails the run.
"""

import os
import socket
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgres://hub:hub@127.0.0.1:5432/hub"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)

POSTGRES_AVAILABLE = database_url.startswith("postgres") and _reachable(database_url, 5432)
REDIS_AVAILABLE = _reachable(redis_url, 6379)
UNAVAILABLE = [
    name
    for name, ok, url in (("PostgreSQL", POSTGRES_AVAILABLE, database_url), ("Redis", REDIS_AVAILABLE, redis_url))
    if not ok
]

os.environ["DATABASE_URL"] = database_url if POSTGRES_AVAILABLE else "sqlite:///:memory:"
os.environ["REDIS_URL"] = redis_url if REDIS_AVAILABLE else ""
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "test-field-encryption-key")
os.environ.setdefault("WHATSAPP_APP_SECRET", "test-app-secret")
os.environ.setdefault("WHATSAPP_VERIFY_TOKEN", "test-verify-token")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (whitenoise warns when it is missing)
CELERY_TASK_ALWAYS_EAGER = False
# A drain stops as soon as nothing is pending (tests that need the linger set it themselves).
WHATSAPP_WEBHOOK_DRAIN_LINGER = 0.0
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
