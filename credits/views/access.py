"""Who may open the IM credits pages: reading needs ``credits.manage`` or ``reports.view``;
buying, changing the alert threshold and the sandbox checkout need ``credits.manage``."""

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from books.permissions import Perm
from books.views.access import member_required

View = Callable[..., HttpResponse]

READ_PERMS = (Perm.CREDITS_MANAGE, Perm.REPORTS_VIEW)


def can_manage(request: HttpRequest) -> bool:
    return bool(request.membership) and request.membership.has_perm(Perm.CREDITS_MANAGE)


def credits_reader_required(view: View) -> View:
    """A member whose role grants ``credits.manage`` or ``reports.view``."""

    @member_required()
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not any(request.membership.has_perm(perm) for perm in READ_PERMS):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


credits_manager_required = member_required(Perm.CREDITS_MANAGE)
