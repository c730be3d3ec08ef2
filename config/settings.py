"""Settings for the hub. Everything that varies between machines comes from ``config.env``.

Defaults are the safe production ones (DEBUG off, secure cookies, no default secret key);
``make run`` opts into the embedded development defaults by setting ``DEBUG=true``.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .env import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=False)

# No default outside DEBUG: Django refuses to sign anything with an empty key, and
# config/wsgi.py refuses to serve without one.
SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-do-not-use-in-production" if DEBUG else "")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "books",
    "whatsapp",
    "templates_mgmt",
    "credits",
    "reports",
    "chat",
    "whatsapp.sandbox.apps.SandboxConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Answers /webhooks/whatsapp/ itself: Meta's signed webhooks need none of what follows.
    "whatsapp.middleware.WhatsAppWebhookMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "books.middleware.CurrentOrganizationMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "books.context_processors.organization",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Data stores -------------------------------------------------------------------------------
# PostgreSQL in production and CI; SQLite only as ``make run``'s embedded default.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web server share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    # Persistent connections for the web server's threads and the Celery worker's processes alike
    # (config/celery.py applies these between tasks as Django does between requests): a webhook is
    # one INSERT, a new session would cost more than the statement. The health check (SELECT 1
    # once per request or task) turns a connection PostgreSQL dropped into a reconnect, not an error.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.redis_cache.RedisCache",  # Django's, without a new client per call
            "LOCATION": REDIS_URL,
            # The webhook receiver asks the cache whether a drain is queued: a Redis that does not
            # answer must fail that question fast (it then enqueues a drain anyway), not hold the 200.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ------------------------------------------------------------------------------------
# Redis in production and CI; kombu's serverless filesystem transport as the embedded default.
CELERY_QUEUE_DIR = Path(env("CELERY_QUEUE_DIR", default=str(BASE_DIR / "var" / "celery")))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "out"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "out"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connections around every task unless this is set; with
# it, once in so many tasks. Between those, CONN_MAX_AGE and CONN_HEALTH_CHECKS decide (config/celery.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Periodic tasks every deployment needs; the DatabaseScheduler copies them into its tables at start,
# where administrators can pause or reschedule them (Django admin → Periodic tasks).
CELERY_BEAT_SCHEDULE = {
    "whatsapp-webhook-events-sweep": {"task": "whatsapp.tasks.webhook_events_sweep_task", "schedule": 60.0},
    "whatsapp-messages-sweep": {"task": "whatsapp.tasks.messages_sweep_task", "schedule": 60.0},
    "whatsapp-bulk-sends-sweep": {"task": "whatsapp.tasks.bulk_sends_sweep_task", "schedule": 5 * 60.0},
    "whatsapp-templates-sync": {"task": "whatsapp.tasks.templates_sync_all_task", "schedule": 30 * 60.0},
    "whatsapp-templates-deletion-retry": {
        "task": "whatsapp.tasks.templates_deletion_retry_task",
        "schedule": 30 * 60.0,
    },
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Auth --------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "books:dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- I18n --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles")))
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ----------------------------------------------------------------------------------
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
# Meta's webhook bodies can reach several megabytes (batched statuses).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [],
    # DRF's stock JSON parser answers a deeply nested body with a 500 (RecursionError).
    "DEFAULT_PARSER_CLASSES": ["books.api.parsers.JSONBodyParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "EXCEPTION_HANDLER": "books.api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp hub for accounting API",
    "DESCRIPTION": "Books, contacts and WhatsApp notifications. Resource names follow Zoho Books' API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # Swagger UI and Redoc from drf-spectacular-sidecar: served locally, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- WhatsApp Cloud API (public contract names) ------------------------------------------------
WHATSAPP_GRAPH_VERSION = env("WHATSAPP_GRAPH_VERSION", default="v25.0")
WHATSAPP_APP_ID = env("WHATSAPP_APP_ID", default="")
# Secrets at rest (books.encrypted). make run (DEBUG) derives a development key; production must set it.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", default=f"dev-only:{SECRET_KEY}" if DEBUG else "")
# The Cloud API sandbox (whatsapp/sandbox/): on in DEBUG only; where it sends the hub's webhooks.
WHATSAPP_SANDBOX_ENABLED = env.bool("WHATSAPP_SANDBOX_ENABLED", default=DEBUG)
WHATSAPP_SANDBOX_WEBHOOK_URL = env("WHATSAPP_SANDBOX_WEBHOOK_URL", default="http://127.0.0.1:8000/webhooks/whatsapp/")
# The app secret signs webhooks (Meta's, or the sandbox's). With the sandbox on and no secret
# given, a development secret is derived so make run's webhooks are signed and checked too;
# without a secret the receiver refuses every POST.
WHATSAPP_APP_SECRET = env(
    "WHATSAPP_APP_SECRET", default=f"dev-only-app-secret:{SECRET_KEY}" if WHATSAPP_SANDBOX_ENABLED else ""
)
WHATSAPP_VERIFY_TOKEN = env(
    "WHATSAPP_VERIFY_TOKEN", default="dev-only-verify-token" if WHATSAPP_SANDBOX_ENABLED else ""
)
# Meta's Graph API in production; the embedded sandbox when it is on (make run), so a fresh
# machine with no Meta account talks to the stand-in, with the real client, unchanged.
WHATSAPP_GRAPH_URL = env(
    "WHATSAPP_GRAPH_URL",
    default="http://127.0.0.1:8000/sandbox/graph" if WHATSAPP_SANDBOX_ENABLED else "https://graph.facebook.com",
)
# Dispatch: "batch" pumps (paced per number through the shared limiter, concurrent HTTP calls), or
# "per_message" (one task and one fresh connection per message: the naive way, for comparison).
WHATSAPP_DISPATCH_MODE = env("WHATSAPP_DISPATCH_MODE", default="batch")
if WHATSAPP_DISPATCH_MODE not in ("batch", "per_message"):
    raise ImproperlyConfigured(f"WHATSAPP_DISPATCH_MODE must be batch or per_message, not {WHATSAPP_DISPATCH_MODE!r}.")
# HTTP calls one dispatch pump keeps in flight (at 100 ms a call, 100 carry 1,000 msg/s).
WHATSAPP_DISPATCH_CONCURRENCY = env.int("WHATSAPP_DISPATCH_CONCURRENCY", default=100)
# Pace each number at this fraction of the rate Meta allows it (80 or 1,000 msg/s): a margin for
# jitter, which bunches evenly spaced requests on arrival. A worker short of CPU bunches them too:
# at 90 % the dispatch benchmark still drew 130429s from a busy two-core box, at 85 % none.
WHATSAPP_PACE_HEADROOM = env.float("WHATSAPP_PACE_HEADROOM", default=0.85)
# Seconds a webhook drain waits for more events once it has applied every pending one, before it
# stops: under a steady flow of statuses one drain carries on, instead of a task for every burst.
WHATSAPP_WEBHOOK_DRAIN_LINGER = env.float("WHATSAPP_WEBHOOK_DRAIN_LINGER", default=1.0)

# --- IM credits ----------------------------------------------------------------------------------
# Which payment gateway sells IM credits: "stripe" (Stripe Checkout), or "sandbox", a checkout page
# in the hub where nobody pays: the default in DEBUG only (make run), never for production.
CREDITS_GATEWAY = env("CREDITS_GATEWAY", default="sandbox" if DEBUG else "stripe")
if CREDITS_GATEWAY not in ("stripe", "sandbox"):
    raise ImproperlyConfigured(f"CREDITS_GATEWAY must be stripe or sandbox, not {CREDITS_GATEWAY!r}.")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
# Signs Stripe's webhooks (POST /webhooks/stripe/); without it every webhook is refused.
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")

# --- Logging -----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx2 logs whole URLs at INFO; some carry one-time codes (verify_code?code=…).
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
