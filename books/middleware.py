from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from .models import Membership
from .selectors import membership_get, membership_list

SESSION_KEY = "organization_id"


def _current_membership(request: HttpRequest) -> Membership | None:
    user = request.user
    if not user.is_authenticated:
        return None
    wanted = request.session.get(SESSION_KEY)
    if wanted is not None:
        membership = membership_get(user=user, organization_id=wanted)
        if membership is not None:
            return membership
    return membership_list(user=user).order_by("organization__name").first()


class CurrentOrganizationMiddleware:
    """Sets ``request.membership`` and ``request.organization`` (the organization the user is
    working in, chosen with the switcher and kept in the session), lazily."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = SimpleLazyObject(lambda: _current_membership(request))
        request.organization = SimpleLazyObject(lambda: request.membership.organization if request.membership else None)
        return self.get_response(request)
