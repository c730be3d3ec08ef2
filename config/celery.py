"""The Celery app. Configuration comes from Django settings (``CELERY_*``); tasks from each app's ``tasks.py``.

Run a worker with ``celery -A config worker`` and the scheduler with ``celery -A config beat``
(django-celery-beat's DatabaseScheduler, set in settings).

Database connections in a worker live as they do in the web server: Django closes a connection
that is older than ``CONN_MAX_AGE`` or broken when a request starts and ends; the handlers below do
the same when a task starts and ends. Celery's own Django fix-up would close every connection
around every task (a new PostgreSQL session per task); ``CELERY_DB_REUSE_MAX`` in settings turns
that down to once in so many tasks.

The collector is tuned (:mod:`config.gc_tuning`) once the worker has loaded its tasks and the
modules they import when they run (:data:`PRELOADED`), before it forks its pool, and again in each
pool process.
"""

import importlib
import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init
from django.db import close_old_connections

from config.gc_tuning import gc_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Celery's Django fix-up runs Django's system checks when a worker starts; the URL checks import the
# whole URLconf (every view, serializer and the API schema generator): 15 MB in every worker process
# for code a worker never runs. The checks run where they belong, at deploy (`migrate`, the `migrate`
# service of docker-compose.yml, `manage.py check --deploy`). CELERY_SKIP_CHECKS= (empty) runs them.
os.environ.setdefault("CELERY_SKIP_CHECKS", "true")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Task | None = None, **kwargs: Any) -> None:
    # An eager task runs inside its caller (a request, a test's transaction), whose connection is
    # not the task's to close.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


#: What the tasks import when they first run (``whatsapp.tasks`` imports its services inside the
#: tasks, to keep the web process and the import graph light): imported once in the worker before
#: it forks its pool, every pool process starts with them. Imported by each pool process on its
#: first task, they took about 0.15 s of CPU in each (a dispatch wake's ``redis`` alone 0.06 s),
#: so that the first bulk send after a start was a sixth slower than the next.
PRELOADED = (
    "redis",
    "whatsapp.services.bulk",
    "whatsapp.services.dispatch",
    "whatsapp.services.pump",
    "whatsapp.services.reminders",
    "whatsapp.services.templates",
    "whatsapp.services.webhooks",
)


@worker_init.connect
def _worker_init(**kwargs: Any) -> None:
    for module in PRELOADED:
        importlib.import_module(module)
    gc_tune()


@worker_process_init.connect
def _gc_tune(**kwargs: Any) -> None:
    gc_tune()
