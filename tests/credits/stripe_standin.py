"""A stand-in for Stripe's API on loopback, for tests only (no test reaches the internet).

It serves what the hub's Stripe gateway calls, with Stripe's shapes: ``POST /v1/checkout/sessions``
(form-encoded; checks the Bearer key and every field the hub must send, answers
``{id, object, url, …}`` or Stripe's ``{"error": {…}}``, honours ``Idempotency-Key``) and
``GET /v1/checkout/sessions/{id}``. Every request is recorded. A test then plays the buyer and
Stripe: :meth:`StripeStandIn.complete` marks a session paid and returns the signed
``checkout.session.completed`` event Stripe would post to ``/webhooks/stripe/``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from credits.gateways.stripe import signature_header

SESSION_PATH = re.compile(r"^/v1/checkout/sessions/(?P<id>cs_test_[A-Za-z0-9]+)$")
REQUIRED = (
    "mode",
    "line_items[0][price_data][currency]",
    "line_items[0][price_data][unit_amount]",
    "line_items[0][price_data][product_data][name]",
    "line_items[0][quantity]",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata[purchase_id]",
)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)


#: Test-only credentials: the stand-in accepts this key; the webhooks it builds are signed with this secret.
SECRET_KEY = "sk_test_standin_51H"
WEBHOOK_SECRET = "whsec_standin"


class StripeStandIn:
    def __init__(self, *, secret_key: str = SECRET_KEY, webhook_secret: str = WEBHOOK_SECRET) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.requests: list[Recorded] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # --- Lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_GET(self) -> None:
                standin._handle(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-standin", daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- What a test does as the buyer and as Stripe ---------------------------------------------------------

    def complete(self, session_id: str, *, timestamp: int | None = None) -> tuple[bytes, str]:
        """The buyer paid: the session is paid and complete. Returns the ``checkout.session.completed``
        event body and its ``Stripe-Signature`` header."""
        with self._lock:
            session = self.sessions[session_id]
            session.update(payment_status="paid", status="complete")
        return self.event("checkout.session.completed", session_id, timestamp=timestamp)

    def event(self, event_type: str, session_id: str, *, timestamp: int | None = None) -> tuple[bytes, str]:
        """A signed event about a session, as Stripe posts it."""
        body = json.dumps(
            {
                "id": f"evt_{secrets.token_hex(12)}",
                "object": "event",
                "api_version": "2025-01-27.acacia",
                "created": int(time.time()),
                "livemode": False,
                "type": event_type,
                "data": {"object": dict(self.sessions[session_id])},
            }
        ).encode()
        return body, signature_header(body, self.webhook_secret, timestamp)

    @property
    def session_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]

    # --- The API --------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(handler.path).path
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True)) if raw else {}
        with self._lock:
            self.requests.append(Recorded(method, path, dict(handler.headers.items()), form))
        status, body = self._answer(method, path, handler.headers, form)
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, method: str, path: str, headers: Any, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if headers.get("Authorization") != f"Bearer {self.secret_key}":
            return 401, _error("invalid_request_error", "Invalid API Key provided.")
        if method == "POST" and path == "/v1/checkout/sessions":
            if headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
                return 400, _error("invalid_request_error", "Bodies must be form-encoded.")
            return self._session_create(headers, form)
        match = SESSION_PATH.match(path)
        if method == "GET" and match:
            with self._lock:
                session = self.sessions.get(match["id"])
            if session is None:
                return 404, _error("invalid_request_error", f"No such checkout.session: '{match['id']}'")
            return 200, session
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _session_create(self, headers: Any, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for name in REQUIRED:
            if not form.get(name):
                return 400, _error("invalid_request_error", f"Missing required param: {name}.", param=name)
        if form["mode"] != "payment":
            return 400, _error("invalid_request_error", "Invalid mode.", param="mode")
        currency = form["line_items[0][price_data][currency]"]
        if not re.fullmatch(r"[a-z]{3}", currency):
            return 400, _error("invalid_request_error", "Invalid currency.", param="currency")
        try:
            unit_amount = int(form["line_items[0][price_data][unit_amount]"])
            quantity = int(form["line_items[0][quantity]"])
        except ValueError:
            return 400, _error("invalid_request_error", "Invalid integer.", param="unit_amount")
        if unit_amount < 1 or quantity < 1:
            return 400, _error("invalid_request_error", "Amounts must be positive.", param="unit_amount")
        for name in ("success_url", "cancel_url"):
            if not form[name].startswith(("http://", "https://")):
                return 400, _error("invalid_request_error", "Not a valid URL.", param=name)
        key = headers.get("Idempotency-Key", "")
        with self._lock:
            if key and key in self._idempotency:
                return 200, self.sessions[self._idempotency[key]]
            session_id = f"cs_test_{secrets.token_hex(16)}"
            metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "url": f"{self.url}/c/pay/{session_id}",
                "amount_subtotal": unit_amount * quantity,
                "amount_total": unit_amount * quantity,
                "currency": currency,
                "client_reference_id": form["client_reference_id"],
                "metadata": metadata,
                "payment_status": "unpaid",
                "status": "open",
                "success_url": form["success_url"],
                "cancel_url": form["cancel_url"],
            }
            self.sessions[session_id] = session
            if key:
                self._idempotency[key] = session_id
        return 200, session


def _error(kind: str, message: str, *, param: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if param:
        error["param"] = param
    return {"error": error}
