"""Who may see a page: a signed-in member of the current organization holding a permission."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from books.permissions import Perm

View = Callable[..., HttpResponse]


def member_required(perm: Perm | str | None = None) -> Callable[[View], View]:
    """Require a signed-in user with a membership in the current organization and, if given,
    ``perm`` through their role. Without an organization the user sees a page that says so."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not request.membership:  # a lazy object: test its truth, not identity
                return render(request, "books/no_organization.html", status=403)
            if perm is not None and not request.membership.has_perm(perm):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
