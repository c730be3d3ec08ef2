import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()

from config.gc_tuning import gc_tune  # noqa: E402

gc_tune(urlconf=True)  # as config/wsgi.py
