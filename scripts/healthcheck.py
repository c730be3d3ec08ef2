"""``python scripts/healthcheck.py URL``: exit 0 when the web server answers URL below 500.

Used by docker-compose.yml's web health check (the image has no curl). Any answer under 500 proves
the server and the application are up; a 400 can only mean that the probe's Host (127.0.0.1) is not
in ALLOWED_HOSTS, which says nothing about the hub's health.
"""

import sys
import urllib.error
import urllib.request


def main(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a loopback http URL)
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    print(f"{url}: {status}")
    return 0 if status < 500 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/login/"))
