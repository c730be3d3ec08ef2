"""The Celery app. Configuration comes from Django settings (``CELERY_*``); tasks from each app's ``tasks.py``.

Run a worker with ``celery -A config worker`` and the scheduler with ``celery -A config beat``
(django-celery-beat's DatabaseScheduler, set in settings).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
