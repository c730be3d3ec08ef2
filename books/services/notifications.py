"""In-app notifications: the bell in the header.

Any app raises one with :func:`notification_create` (``books`` knows nothing of what they are
about); members mark them read with :func:`notifications_mark_read`. Reads are per member
(``NotificationRead``), whether the notification was for one member or for all of them.
"""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from books.models import Notification, NotificationRead, Organization

TITLE_MAX = Notification._meta.get_field("title").max_length
URL_MAX = Notification._meta.get_field("url").max_length


def notification_create(
    *,
    organization: Organization,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    user: AbstractBaseUser | None = None,
) -> Notification:
    """Notify ``user``, or every member of ``organization`` when ``user`` is None.

    Written in the caller's transaction: if the change it is about rolls back, so does the
    notification. ``title`` and ``body`` should already be in the organization's language
    (``translation.override(organization.language)``); ``url`` is a path in the hub.
    """
    if url and not url.startswith("/"):
        raise ValueError("A notification links to a path in the hub (starting with /).")
    return Notification.objects.create(
        organization=organization,
        user=user,
        kind=kind,
        title=str(title)[:TITLE_MAX],
        body=str(body),
        url=url[:URL_MAX],
    )


def notifications_mark_read(
    *, user: AbstractBaseUser, organization: Organization, notification_ids: Iterable[int] | None = None
) -> int:
    """Mark ``user``'s notifications in ``organization`` read: the given ones, or all of them.

    Ids of notifications the user cannot see (another organization's, another member's) are
    ignored. Returns how many became read; marking twice is harmless.
    """
    visible = Notification.objects.filter(organization=organization).filter(Q(user__isnull=True) | Q(user=user))
    if notification_ids is not None:
        visible = visible.filter(pk__in=list(notification_ids))
    unread = list(visible.exclude(reads__user=user).values_list("pk", flat=True))
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification_id=pk, user=user) for pk in unread], ignore_conflicts=True
    )
    return len(unread)
