"""The bell in the header: a member's in-app notifications in the current organization.

URL names (namespace ``books``): ``notification_bell`` (the bell and its menu, loaded by htmx
after the page, so pages themselves run no extra query), ``notification_list`` (every
notification, with "Mark all as read"), ``notifications_read`` (POST) and ``notification_open``
(marks one read and follows its link). Any member may open them; they only ever show the
member's own notifications of the current organization.
"""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from books.selectors_notifications import notification_list as notifications_of
from books.selectors_notifications import notification_unread_count
from books.services.notifications import notifications_mark_read
from books.views.access import member_required

#: How many notifications the bell's menu shows.
BELL_SIZE = 8
PAGE_SIZE = 50


def _bell(request: HttpRequest) -> HttpResponse:
    user, organization = request.user, request.organization
    return render(
        request,
        "books/notifications/_bell.html",
        {
            "unread_count": notification_unread_count(user=user, organization=organization),
            "recent": list(notifications_of(user=user, organization=organization)[:BELL_SIZE]),
        },
    )


@member_required()
@require_GET
def notification_bell(request: HttpRequest) -> HttpResponse:
    return _bell(request)


@member_required()
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = notifications_of(user=request.user, organization=request.organization)
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "books/notifications/list.html", {"page": page})


@member_required()
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark all of the member's notifications read; from the bell (htmx) it answers the new bell."""
    notifications_mark_read(user=request.user, organization=request.organization)
    if request.htmx:
        return _bell(request)
    return redirect("books:notification_list")


@member_required()
@require_GET
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    notification = get_object_or_404(notifications_of(user=request.user, organization=request.organization), pk=pk)
    notifications_mark_read(user=request.user, organization=request.organization, notification_ids=[notification.pk])
    if notification.url and url_has_allowed_host_and_scheme(notification.url, allowed_hosts=None):
        return redirect(notification.url)
    return redirect("books:notification_list")


urlpatterns = [
    path("notifications/", notification_list, name="notification_list"),
    path("notifications/bell/", notification_bell, name="notification_bell"),
    path("notifications/read/", notifications_read, name="notifications_read"),
    path("notifications/<int:pk>/", notification_open, name="notification_open"),
]
