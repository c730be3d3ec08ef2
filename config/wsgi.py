import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after setup)
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

if not settings.SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY (or SECRET_KEY_FILE) before serving the hub.")

from config.gc_tuning import gc_tune  # noqa: E402

gc_tune(urlconf=True)  # the application is loaded: what the process keeps is frozen out of the collector's walks
