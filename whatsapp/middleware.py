"""Meta's webhooks are answered ahead of the browser's middleware, which they have no use for.

``/webhooks/whatsapp/`` is a machine endpoint: Meta signs each body, nobody logs in, and a busy hub
receives hundreds of them a second. Sessions, locale, CSRF, authentication, messages, htmx and the
current organization would run for each one and change nothing (the view is CSRF-exempt and reads
only the raw body and one header); measured in process, they were a fifth of the receiver's CPU
per webhook. Placed right after ``SecurityMiddleware``, which still redirects to HTTPS and sets its
headers on the answer, this middleware hands requests for that one path straight to the view;
every other request goes down the stack as before. What ``CommonMiddleware`` did that matters
here it still does: the host is checked against ``ALLOWED_HOSTS`` (a 400) and the answer gets a
``Content-Length``. The view keeps its own checks: GET and POST only, the signature on the raw body
before anything is stored.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix, reverse

from whatsapp.views.webhook import whatsapp_webhook


class WhatsAppWebhookMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # The view's path as request.path_info spells it (without the script prefix). Resolved
        # once: the URLconf maps the same path to the same view, for reverse() and in case this
        # middleware is not installed.
        self.path = "/" + reverse("whatsapp_webhook").removeprefix(get_script_prefix())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != self.path:
            return self.get_response(request)
        request.get_host()  # DisallowedHost (a 400) for a host this hub does not serve
        response = whatsapp_webhook(request)
        # As CommonMiddleware would: without it the server frames the answer in chunks (gunicorn:
        # one more write, and for the sender one more read).
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response
