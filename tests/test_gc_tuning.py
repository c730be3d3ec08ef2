"""The long-running processes freeze what they loaded at startup out of the cycle collector's walks
(config/gc_tuning.py): each is checked in a fresh interpreter, as gunicorn and Celery start them."""

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

REPORT = """
import gc, json, sys
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "urlconf": "config.urls" in sys.modules,
    "broker_transport": "kombu.transport.memory" in sys.modules,
    "tracked": len(gc.get_objects()),
}))
"""


def _run(code: str, report: str = REPORT) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "gc-tuning-test-key",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "memory://",
    }
    result = subprocess.run(
        [sys.executable, "-c", code + report], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_interpreter_that_only_sets_django_up_is_not_tuned() -> None:
    state = _run("import django; django.setup()")

    assert state["frozen"] == 0
    assert not state["broker_transport"]


def test_a_web_process_freezes_the_application_and_its_urlconf() -> None:
    state = _run("import config.wsgi")

    assert state["urlconf"], "the URLconf is imported before the freeze, not by the first request"
    assert state["broker_transport"], "so is the broker's transport (the tests' is memory://)"
    assert state["frozen"] > 50_000
    assert state["tracked"] < state["frozen"] / 10, "what startup loaded is out of the collector's walks"


def test_an_asgi_process_is_tuned_as_a_wsgi_one() -> None:
    state = _run("import config.asgi")

    assert state["urlconf"]
    assert state["frozen"] > 50_000


def test_a_celery_pool_process_freezes_the_tasks_it_loaded() -> None:
    code = (
        "from config.celery import app\n"
        "app.loader.import_default_modules()\n"
        "from celery.signals import worker_process_init\n"
        "worker_process_init.send(sender=None)\n"
    )
    state = _run(code)

    assert state["frozen"] > 50_000
    assert state["tracked"] < state["frozen"] / 10


def test_a_celery_worker_loads_what_its_tasks_import_before_it_forks_and_freezes_it() -> None:
    code = (
        "import json, sys\n"
        "from config.celery import app, PRELOADED\n"
        "app.loader.import_default_modules()\n"
        "missing_before = [name for name in PRELOADED if name not in sys.modules]\n"
        "from celery.signals import worker_init\n"
        "worker_init.send(sender=None)\n"
        "print(json.dumps({'missing_before': missing_before,"
        " 'missing_after': [name for name in PRELOADED if name not in sys.modules]}))\n"
    )
    state = _run(code, report="")

    assert "whatsapp.services.bulk" in state["missing_before"]  # the tasks import it when they run
    assert state["missing_after"] == []
