"""Reads of in-app notifications: what one member of one organization sees under the bell."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import Notification, NotificationRead, Organization


def notification_list(
    *, user: AbstractBaseUser, organization: Organization, unread: bool = False
) -> QuerySet[Notification]:
    """The member's notifications in ``organization``, newest first, each annotated ``is_read``:
    those for every member and those for this user alone."""
    queryset = (
        Notification.objects.filter(organization=organization)
        .filter(Q(user__isnull=True) | Q(user=user))
        .annotate(is_read=Exists(NotificationRead.objects.filter(notification=OuterRef("pk"), user=user)))
    )
    if unread:
        queryset = queryset.filter(is_read=False)
    return queryset


def notification_unread_count(*, user: AbstractBaseUser, organization: Organization) -> int:
    return notification_list(user=user, organization=organization, unread=True).count()
