"""The deployment files keep their promises: docker-compose.yml's services, the Makefile's targets, .ci/run."""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def _healthcheck(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_compose_has_the_five_services(compose: dict[str, Any]) -> None:
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(compose["services"])


def test_compose_runs_gunicorn_a_worker_and_beat_with_the_database_scheduler(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert "gunicorn config.wsgi" in _command(services["web"])
    assert re.search(r"\bcelery -A config worker\b", _command(services["worker"]))
    beat = _command(services["beat"])
    assert re.search(r"\bcelery -A config beat\b", beat)
    assert "django_celery_beat.schedulers:DatabaseScheduler" in beat
    assert "manage.py migrate" in _command(services["migrate"])
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")


def test_compose_health_checks_every_service_the_others_wait_for(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert "pg_isready" in _healthcheck(services["postgres"])
    assert "redis-cli ping" in _healthcheck(services["redis"])
    assert "/login/" in _healthcheck(services["web"])
    assert "celery -A config inspect ping" in _healthcheck(services["worker"])


def test_the_hub_services_start_only_once_postgres_redis_and_migrations_are_ready(compose: dict[str, Any]) -> None:
    for name in ("web", "worker", "beat"):
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name
        assert depends_on["redis"] == {"condition": "service_healthy"}, name
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}, name


def test_the_hub_services_get_the_public_contract_settings(compose: dict[str, Any]) -> None:
    for name in ("migrate", "web", "worker", "beat"):
        environment = compose["services"][name]["environment"]
        for variable in (
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
            "ALLOWED_HOSTS",
            "SECURE_COOKIES",
            "WHATSAPP_GRAPH_URL",
            "WHATSAPP_GRAPH_VERSION",
            "WHATSAPP_APP_ID",
            "WHATSAPP_APP_SECRET",
            "WHATSAPP_VERIFY_TOKEN",
        ):
            assert variable in environment, f"{name} lacks {variable}"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://redis:6379")
        # Required from outside: no default key baked into the file.
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), environment["SECRET_KEY"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file() -> None:
    env = {**os.environ, "SECRET_KEY": "compose-check", "FIELD_ENCRYPTION_KEY": "compose-check"}
    result = subprocess.run(
        ["docker-compose", "-f", str(BASE_DIR / "docker-compose.yml"), "config", "-q"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_image_has_weasyprints_libraries_and_collects_static_files() -> None:
    dockerfile = (BASE_DIR / "Dockerfile").read_text()

    assert re.search(r"^FROM python:3\.11-slim-bookworm", dockerfile, re.MULTILINE)
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu"):
        assert package in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert "collectstatic --noinput" in dockerfile


def test_requirements_are_fully_pinned() -> None:
    lines = [
        line.strip()
        for line in (BASE_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert lines
    assert [line for line in lines if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", line)] == []
    assert any(line.startswith("Django==") for line in lines)


def test_the_makefile_has_the_public_targets() -> None:
    makefile = (BASE_DIR / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))

    assert {"run", "test", "bench", "lint"} <= targets
    assert re.search(r"^test:.*\n(\t.*\n)*\t.*-m pytest", makefile, re.MULTILINE)
    assert re.search(r"^bench:.*\n(\t.*\n)*\t.*-m bench", makefile, re.MULTILINE)


def test_ci_runs_make_test_with_ci_true() -> None:
    script = BASE_DIR / ".ci" / "run"
    text = script.read_text()

    assert os.access(script, os.X_OK)
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "export CI=true" in text
    assert re.search(r"^make test\b", text, re.MULTILINE)


def test_the_readme_documents_every_variable_the_settings_read() -> None:
    settings_source = (BASE_DIR / "config" / "settings.py").read_text()
    variables = set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", settings_source))
    readme = (BASE_DIR / "README.md").read_text()

    assert "DATABASE_URL" in variables
    assert sorted(v for v in variables if f"| `{v}` |" not in readme) == []
