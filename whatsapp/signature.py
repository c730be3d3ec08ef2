"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<HMAC-SHA256(app secret, raw body)>``.

Meta signs the bytes it sends (with non-ASCII escaped), so the check runs on ``request.body``
exactly as received, never on re-serialised JSON, and compares in constant time.
"""

import hashlib
import hmac

PREFIX = "sha256="


def signature_compute(body: bytes, secret: str) -> str:
    """The header value Meta would send for ``body``."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``header`` signs ``body`` with ``secret``. An empty secret never validates."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(header.encode(), signature_compute(body, secret).encode())
