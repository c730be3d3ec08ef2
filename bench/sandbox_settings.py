"""Settings for the sandbox's own gunicorn in ``python -m bench --only dispatch`` (Meta's stand-in).

The hub's production settings, plus what only environment variables can reach here: how many
threads each sandbox process gives to sending status webhooks (one by default; one new connection
per POST, so more threads keep up with several hundred messages a second, each with three statuses),
and static files served from the source tree, as in bench/settings.py (nothing is collected: the
manifest storage would turn every error page, a 404 included, into a 500).

What the sandbox serves as Meta costs as little as it can, so that the benchmark measures the hub:

- the Graph API is answered ahead of the browser's middleware
  (:class:`whatsapp.sandbox.middleware.SandboxGraphMiddleware`);
- no connection health check: on loopback to a server that outlives the run, the ``SELECT 1``
  before each request's first query cost a third of a send's statements (a connection PostgreSQL
  dropped fails that one request, which the hub retries);
- server-side binding, so psycopg prepares the statements a connection repeats instead of
  quoting every parameter in Python and PostgreSQL planning each statement again;
- ``synchronous_commit`` off for the sandbox's sessions: a crash may lose Meta's last few
  hundred milliseconds of a throwaway database, and no commit waits for the WAL flush.
"""

import os

from config.settings import *  # noqa: F403

STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHATSAPP_SANDBOX_DELIVERY_THREADS = max(1, int(os.environ.get("BENCH_SANDBOX_DELIVERY_THREADS", "1")))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
MIDDLEWARE = [*MIDDLEWARE]  # noqa: F405
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whatsapp.sandbox.middleware.SandboxGraphMiddleware",
)
DATABASES["default"].setdefault("OPTIONS", {}).update(  # noqa: F405
    server_side_binding=True, prepare_threshold=5, options="-c synchronous_commit=off"
)
