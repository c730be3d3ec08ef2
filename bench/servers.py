"""The hub's own processes for a benchmark (gunicorn, a Celery worker), always stopped afterwards.

Each child runs in a session (process group) of its own, so stopping it reaches gunicorn's workers
and Celery's pool too: SIGTERM to the child, SIGKILL to whatever is left of its group after a
grace period. A
terminal's Ctrl-C goes to the benchmark alone, which then stops them; if the benchmark is killed
outright, the kernel sends each child SIGTERM (PR_SET_PDEATHSIG, Linux).
Output goes to ``var/bench/<name>.log``; its tail is shown when a child dies early.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

GRACE = 10  # seconds between SIGTERM and SIGKILL
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback nobody listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def production_env(*, redis_url: str, app_secret: str, verify_token: str) -> dict[str, str]:
    """The environment of a child server: production settings (DEBUG off) pointed at the
    benchmark's database (the one Django is configured with here) and its Redis database."""
    from django.conf import settings
    from django.db import connection

    database = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}").geturl()
    env = {key: value for key, value in os.environ.items() if key not in ("GUNICORN_CMD_ARGS", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database,
        REDIS_URL=redis_url,
        DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,
        FIELD_ENCRYPTION_KEY=settings.FIELD_ENCRYPTION_KEY,
        WHATSAPP_APP_SECRET=app_secret,
        WHATSAPP_VERIFY_TOKEN=verify_token,
        CELERY_TASK_ALWAYS_EAGER="false",
        ALLOWED_HOSTS=HOST,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


class ServerDied(RuntimeError):
    """A child exited while the benchmark still needed it."""


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child when the benchmark dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


def _killpg(pgid: int, signum: int) -> bool:
    """Signal a whole process group; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


class Servers:
    """Named child processes, each in its own process group; a context manager that stops them all."""

    def __init__(self, *, env: dict[str, str], cwd: Path, log_dir: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def pgid(self, name: str) -> int:
        """The process group of a child (its own pid: each child leads a session)."""
        return self.children[name].pid

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, command: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("wb") as log:
            # The benchmark has started no thread yet, so preexec_fn is safe.
            self.children[name] = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
                command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )

    def check(self) -> None:
        """Raise :class:`ServerDied` (with the end of its log) if a child has exited."""
        for name, process in self.children.items():
            code = process.poll()
            if code is not None:
                raise ServerDied(f"{name} exited with code {code}; the end of {self.log(name)}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            text = self.log(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _groups_alive(self) -> bool:
        for process in self.children.values():
            process.poll()  # reap an exited leader, or its zombie keeps the group "alive"
        return any(_killpg(process.pid, 0) for process in self.children.values())

    def stop(self) -> None:
        """SIGTERM every child, SIGKILL to what is left of their groups after the grace period."""
        if not self.children:
            return
        for process in self.children.values():
            # The leader first: gunicorn's master and Celery's main process stop their own workers.
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            else:
                _killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline and self._groups_alive():
            time.sleep(0.1)
        if self._groups_alive():
            for process in self.children.values():
                _killpg(process.pid, signal.SIGKILL)
        for process in self.children.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"bench: pid {process.pid} did not exit", file=sys.stderr)
        self.children.clear()
