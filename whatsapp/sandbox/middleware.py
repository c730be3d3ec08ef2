"""The Graph API stand-in answered ahead of the browser's middleware.

``/sandbox/graph/...`` is a machine endpoint, as Meta's is: a bearer token, JSON in and out.
Sessions, locale, CSRF (the views are exempt), authentication, messages, htmx and the current
organization would run for every send and change nothing; they were a fifth of a send's CPU
(``bench/sandbox_profile.py``). Placed right after ``SecurityMiddleware``, this middleware hands
requests under that prefix straight to their view; every other request, the sandbox's pages and
control API included, goes down the stack as before. The host is still checked against
``ALLOWED_HOSTS`` (a 400), and the views keep their own checks (enabled, token, Meta's errors).

It is also where a Graph request's arrival is stamped (:func:`arrival_stamp`): Meta counts a send
against the number's messages a second in the second it arrived, and a busy sandbox process may
only reach the send's statement in the next one.
"""

from collections.abc import Callable
from typing import Final

from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, get_script_prefix, resolve, reverse

from . import limits

#: Paths whose view is remembered (one or two per phone number and WABA of a run).
MAX_PATHS: Final = 1000
#: The ``request.META`` key (a WSGI extension's dotted name) of a Graph request's arrival time.
ARRIVED_AT: Final = "whatsapp_sandbox.arrived_at"


def arrival_stamp(request: HttpRequest) -> float:
    """When the sandbox first saw this request, on the limits' clock (:func:`.limits.clock`).

    The first call stamps it: this middleware's, or the Graph view's when the middleware is not
    installed. Later calls read the same time back.
    """
    arrived_at = request.META.get(ARRIVED_AT)
    if arrived_at is None:
        arrived_at = request.META[ARRIVED_AT] = limits.clock()
    return arrived_at


class SandboxGraphMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # The Graph prefix as request.path_info spells it (without the script prefix), resolved once.
        root = reverse("whatsapp_sandbox:graph_unknown", kwargs={"path": ""})
        self.prefix = "/" + root.removeprefix(get_script_prefix())
        self.matches: dict[str, ResolverMatch] = {}  # the URLconf does not change while the process runs

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(self.prefix):
            return self.get_response(request)
        arrival_stamp(request)
        request.get_host()  # DisallowedHost (a 400) for a host this server does not serve
        match = self.matches.get(request.path_info)
        if match is None:
            match = resolve(request.path_info)  # a Resolver404 becomes the usual 404
            if len(self.matches) >= MAX_PATHS:
                self.matches = {}
            self.matches[request.path_info] = match
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
