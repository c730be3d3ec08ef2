"""Run the hub on embedded defaults: migrate, seed the demo, then supervise web + worker + beat.

Started by ``make run`` with the virtualenv's interpreter; standard library only. Defaults are
SQLite and Celery on kombu's ``filesystem://`` transport; DATABASE_URL / REDIS_URL in the
environment switch to PostgreSQL / Redis. ``PORT`` changes the web port (default 8000).

Every child runs in its own session (process group), so this script alone decides how they stop:
on Ctrl-C, SIGTERM, SIGHUP or the death of any one child, each child gets SIGTERM (the worker then
stops its pool itself), and whatever is left in any of their process groups after a grace period
gets SIGKILL, the worker's pool processes included. If this script is itself killed with SIGKILL,
the children get SIGTERM from the kernel (PR_SET_PDEATHSIG, Linux).
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PORT = int(os.environ.get("PORT", "8000"))
URL = f"http://{HOST}:{PORT}/"
READY_TIMEOUT = 120  # seconds for the web server to answer /login/
SEED_DEMO = BASE_DIR / "books" / "management" / "commands" / "seed_demo.py"
SANDBOX_SETUP = BASE_DIR / "whatsapp" / "sandbox" / "management" / "commands" / "sandbox_setup.py"
#: What django-environ reads as true (WHATSAPP_SANDBOX_ENABLED).
TRUE_WORDS = {"true", "on", "ok", "y", "yes", "1"}
GRACE = 10  # seconds between SIGTERM and SIGKILL at shutdown


class Stop(Exception):
    """Raised from the signal handler so every phase (migrate, seed, supervise) unwinds the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signum)


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child when this script dies (Linux only)."""
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


def _masked(url: str) -> str:
    """``url`` without its password, for printing."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DEBUG"] = "true"  # embedded defaults: dev secret key, static files served from the finders
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if PORT != 8000:  # the sandbox's default webhook target and Graph URL assume port 8000
        env.setdefault("WHATSAPP_SANDBOX_WEBHOOK_URL", f"{URL}webhooks/whatsapp/")
        if sandbox_enabled(env):
            env.setdefault("WHATSAPP_GRAPH_URL", f"{URL}sandbox/graph")
    return env


def sandbox_enabled(env: dict[str, str]) -> bool:
    """``WHATSAPP_SANDBOX_ENABLED`` as the settings read it: by default on, because make run sets DEBUG."""
    value = env.get("WHATSAPP_SANDBOX_ENABLED")
    if value is None:
        value = env.get("DEBUG", "")
    return value.strip().lower() in TRUE_WORDS


def module_constant(path: Path, name: str) -> str | None:
    """A string constant of a project module, read from its source.

    The modules need Django set up to be imported, and this script stays standard library only.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value if isinstance(value, str) else None
    return None


def prepare_queue_folders(env: dict[str, str]) -> None:
    """kombu's filesystem transport does not create its folders; the worker would crash on a fresh clone."""
    if env.get("REDIS_URL"):
        return
    queue_dir = Path(env.get("CELERY_QUEUE_DIR") or BASE_DIR / "var" / "celery")
    for name in ("out", "control", "processed"):
        (queue_dir / name).mkdir(parents=True, exist_ok=True)


def port_is_free() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, PORT)) != 0


def manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def run_once(command: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    """Run a one-shot step in the foreground; raises CalledProcessError on failure.

    With ``capture`` its standard output is echoed once it ends and returned.
    """
    stdout = subprocess.PIPE if capture else None
    result = subprocess.run(command, env=env, cwd=BASE_DIR, check=True, stdout=stdout, text=True)  # noqa: S603 (our interpreter)
    if capture:
        print(result.stdout, end="", flush=True)
    return result.stdout or ""


def seed_demo(env: dict[str, str]) -> str:
    """Run ``manage.py seed_demo`` when some app provides it; return what it printed (the demo login)."""
    if not any(BASE_DIR.glob("*/management/commands/seed_demo.py")):
        say("WARNING: no seed_demo command yet; there is no demo organization or user to log in with.")
        return ""
    return run_once(manage("seed_demo"), env, capture=True).strip()


def connect_demo_to_sandbox(env: dict[str, str]) -> None:
    """Connect the demo organization to the sandbox's business account, once the web server answers.

    The sandbox is served by the hub's own web server, so this runs after start-up. Connecting
    subscribes the app to the WABA (the sandbox sends webhooks only for subscribed accounts) and
    stores the verified numbers, the default number and the channels. Idempotent (a second run syncs
    the numbers). A failure is reported, not fatal: the hub still runs, and the settings page can connect.
    """
    organization = module_constant(SEED_DEMO, "DEMO_ORGANIZATION")
    if organization is None or not SANDBOX_SETUP.exists():
        say("WARNING: no demo organization or sandbox_setup; the demo is not connected to WhatsApp.")
        return
    # --sandbox: the WABA, app and token sandbox_setup created (its DEFAULT_* constants).
    try:
        run_once(manage("whatsapp_connect", "--organization", organization, "--sandbox"), env, capture=True)
    except subprocess.CalledProcessError:
        say("WARNING: connecting the demo organization to the WhatsApp sandbox failed (see above).")


def _killpg(pgid: int, signum: int) -> bool:
    """Signal a whole process group; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


class Supervisor:
    """Starts named commands, each in its own process group, and stops all of them together."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.preexec = _parent_death_signal()

    def start(self, name: str, command: list[str]) -> None:
        say(f"starting {name}: {' '.join(command)}")
        self.children[name] = subprocess.Popen(  # noqa: S603 (our own interpreter and manage.py)
            command,
            cwd=BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=self.preexec,  # this script starts no threads, so preexec_fn is safe
        )

    def exited(self) -> tuple[str, int] | None:
        for name, process in self.children.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def _groups_alive(self) -> bool:
        for process in self.children.values():
            process.poll()  # reap an exited leader, or its zombie keeps the group "alive"
        return any(_killpg(process.pid, 0) for process in self.children.values())

    def stop(self) -> None:
        if not self.children:
            return
        say("stopping " + ", ".join(self.children))
        # SIGTERM to each leader: the worker then stops its own pool (a warm shutdown). A group whose
        # leader is already gone gets it directly.
        for process in self.children.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            else:
                _killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline and self._groups_alive():
            time.sleep(0.2)
        if self._groups_alive():
            say(f"still running after {GRACE}s: SIGKILL")
            for process in self.children.values():
                _killpg(process.pid, signal.SIGKILL)
        for process in self.children.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                say(f"pid {process.pid} did not exit")
        self.children.clear()
        say("stopped")


def wait_until_ready(supervisor: Supervisor) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if (dead := supervisor.exited()) is not None:
            raise RuntimeError(f"{dead[0]} exited with code {dead[1]} during start-up")
        try:
            with urllib.request.urlopen(f"{URL}login/", timeout=2) as response:  # noqa: S310 (loopback http)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{URL}login/ did not answer 200 within {READY_TIMEOUT}s")


def main() -> int:
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    env = child_env()
    supervisor = Supervisor(env)
    try:
        if not port_is_free():
            say(f"ERROR: {HOST}:{PORT} is already in use (another `make run`?). Stop it or set PORT.")
            return 1
        prepare_queue_folders(env)
        say("database: " + (_masked(env.get("DATABASE_URL", "")) or f"SQLite at {BASE_DIR / 'db.sqlite3'}"))
        say("broker:   " + (_masked(env.get("REDIS_URL", "")) or "kombu filesystem:// (var/celery)"))
        run_once(manage("migrate", "--noinput"), env)
        demo = seed_demo(env)
        # The Cloud API sandbox's business account and numbers (idempotent): Meta's stand-in.
        run_once(manage("sandbox_setup"), env, capture=True)

        celery = [sys.executable, "-m", "celery", "-A", "config"]
        supervisor.start("web", manage("runserver", f"{HOST}:{PORT}", "--noreload"))
        supervisor.start("worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"])
        supervisor.start("beat", [*celery, "beat", "--loglevel", "INFO"])
        wait_until_ready(supervisor)
        if sandbox_enabled(env):
            connect_demo_to_sandbox(env)

        rule = "=" * 72
        lines = [rule, f"  The hub is running at {URL}", f"  Log in at {URL}login/"]
        lines += [f"  {line}" for line in demo.splitlines()] or ["  (no demo login: seed_demo is missing)"]
        lines += ["  Ctrl-C stops the web server, the worker and beat.", rule]
        print("\n".join(lines), flush=True)

        while (dead := supervisor.exited()) is None:
            time.sleep(0.5)
        say(f"{dead[0]} exited with code {dead[1]}; stopping the rest")
        return 1
    except Stop as stop:
        say(f"{stop} received")
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as error:
        say(f"ERROR: {error}")
        return 1
    finally:
        # A second Ctrl-C must not interrupt the clean-up half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
