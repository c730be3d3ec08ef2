"""Settings for the benchmarks: the hub's production settings (DEBUG off, so no query log skews the
figures) with what a run outside a deployment lacks: a secret key, an encryption key and static
files from the source tree."""

import os

os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-serving")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "bench-field-encryption-key")  # the seeded access token

from config.settings import *  # noqa: F403

STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # seeding, not login, is measured
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
STATIC_ROOT = None  # nothing is collected: whitenoise must not look for var/staticfiles
WHITENOISE_USE_FINDERS = True
CELERY_TASK_ALWAYS_EAGER = False
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405 (the test client's host)
