"""The one place that reads the process environment.

Every setting the hub takes from outside is read here, through django-environ's
``FileAwareEnv``: a variable ``X`` may instead be given as ``X_FILE`` pointing at a
file that holds the value (Docker and Kubernetes secrets).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()

if (BASE_DIR / ".env").is_file():
    environ.FileAwareEnv.read_env(BASE_DIR / ".env")
