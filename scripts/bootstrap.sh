#!/usr/bin/env bash
# Make the machine ready for `make run` / `make test` / `make bench` / `make lint`:
#   - .venv exists (Python 3.11+), with requirements.txt installed. The install is skipped while
#     .venv/.requirements.sha256 matches requirements.txt, so repeated `make` calls cost nothing.
#   - WeasyPrint's system libraries (Pango) are present.
#   - with --with-chromium: /usr/bin/chromium is present (the browser tests drive it).
#   - with --with-compose: docker-compose is present (the tests validate docker-compose.yml with it).
# Missing system packages are installed with apt-get when running as root; otherwise it says what to install.
#
# Environment: VENV (default .venv), PYTHON (interpreter to build the venv from).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${VENV:-.venv}"
with_chromium=false
with_compose=false
for arg in "$@"; do
    case "$arg" in
        --with-chromium) with_chromium=true ;;
        --with-compose) with_compose=true ;;
        *) echo "bootstrap.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

say() { printf '[bootstrap] %s\n' "$*" >&2; }

can_apt() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_updated=false
apt_install() {
    if ! $apt_updated; then
        DEBIAN_FRONTEND=noninteractive apt-get update
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- Python interpreter ---------------------------------------------------------------------------
python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }

find_python() {
    if [ -n "${PYTHON:-}" ]; then
        python_ok "$PYTHON" || { say "PYTHON=$PYTHON is not Python 3.11+"; return 1; }
        command -v "$PYTHON"
        return 0
    fi
    # 3.11 first: requirements.txt is frozen and tested on it.
    local candidate
    for candidate in python3.11 python3 python3.12 python3.13; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    say "Python 3.11+ not found. Install it (Debian 12: apt-get install python3 python3-venv) or set PYTHON=."
    return 1
}

create_venv() {
    local python
    python="$(find_python)"
    say "creating $VENV with $python ($("$python" --version 2>&1))"
    if ! "$python" -m venv "$VENV"; then
        rm -rf "$VENV"
        # Debian and Ubuntu ship the venv module (ensurepip) separately.
        if can_apt; then
            local minor
            minor="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt_install "python${minor}-venv" || apt_install python3-venv
            "$python" -m venv "$VENV"
        else
            say "could not create $VENV: install your distribution's venv package (Debian: python3-venv)."
            return 1
        fi
    fi
}

if [ ! -x "$VENV/bin/python" ]; then
    create_venv
fi

stamp="$VENV/.requirements.sha256"
wanted="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "installing requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -r requirements.txt
    printf '%s\n' "$wanted" >"$stamp"
fi

# --- System libraries -----------------------------------------------------------------------------
ldconfig_bin="$(command -v ldconfig || echo /sbin/ldconfig)"
if [ -x "$ldconfig_bin" ]; then
    libs="$("$ldconfig_bin" -p)"
    if ! grep -q 'libpango-1\.0\.so\.0' <<<"$libs" || ! grep -q 'libpangoft2-1\.0\.so\.0' <<<"$libs"; then
        if can_apt; then
            say "installing WeasyPrint's libraries (Pango) and a font"
            apt_install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
        else
            say "WARNING: WeasyPrint (PDFs) needs Pango: apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core"
        fi
    fi
fi

if $with_chromium && [ ! -x /usr/bin/chromium ]; then
    if can_apt; then
        say "installing Debian's chromium for the browser tests"
        apt_install chromium
    else
        say "WARNING: /usr/bin/chromium is missing and we are not root: the browser tests cannot run."
    fi
fi

# Only the v1 client is packaged for Debian 12; it validates the file without a Docker engine.
if $with_compose && ! command -v docker-compose >/dev/null 2>&1; then
    if can_apt; then
        say "installing docker-compose to check docker-compose.yml"
        apt_install docker-compose
    else
        say "WARNING: docker-compose is missing and we are not root: the compose file check is skipped."
    fi
fi
