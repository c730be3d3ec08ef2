"""Settings for the sandbox's own gunicorn in ``python -m bench --only dispatch`` (Meta's stand-in).

The hub's production settings, plus what only environment variables can reach here: how many
threads each sandbox process gives to sending status webhooks (one by default; one new connection
per POST, so more threads keep up with several hundred messages a second, each with three statuses),
and static files served from the source tree, as in bench/settings.py (nothing is collected: the
manifest storage would turn every error page, a 404 included, into a 500).
"""

import os

from config.settings import *  # noqa: F403

STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHATSAPP_SANDBOX_DELIVERY_THREADS = max(1, int(os.environ.get("BENCH_SANDBOX_DELIVERY_THREADS", "1")))
