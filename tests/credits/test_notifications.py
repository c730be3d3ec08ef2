"""The bell in the header (``books``): a member's own notifications, read per member."""

import pytest
from django.test import Client
from django.urls import reverse

from books.models import Notification, NotificationRead
from books.selectors_notifications import notification_list, notification_unread_count
from books.services.notifications import notification_create, notifications_mark_read
from books.services.organizations import membership_add
from tests.books.factories import UserFactory, make_organization

pytestmark = pytest.mark.django_db

BELL = reverse("books:notification_bell")


def test_a_notification_for_everyone_is_read_per_member(org, org_admin):
    colleague = UserFactory()
    membership_add(organization=org, user=colleague, role_name="Staff")
    notification = notification_create(organization=org, kind="test.hello", title="Hello", url="/settings/")

    notifications_mark_read(user=org_admin, organization=org)

    assert notification_unread_count(user=org_admin, organization=org) == 0
    assert notification_unread_count(user=colleague, organization=org) == 1
    assert NotificationRead.objects.filter(notification=notification).count() == 1
    assert notifications_mark_read(user=org_admin, organization=org) == 0  # twice is harmless


def test_a_notification_for_one_member_is_theirs_alone(org, org_admin):
    colleague = UserFactory()
    membership_add(organization=org, user=colleague, role_name="Staff")
    notification_create(organization=org, kind="test.private", title="Only for you", user=colleague)

    assert notification_unread_count(user=org_admin, organization=org) == 0
    assert [n.title for n in notification_list(user=colleague, organization=org)] == ["Only for you"]
    assert notifications_mark_read(user=org_admin, organization=org) == 0


def test_a_notification_links_inside_the_hub_only(org):
    with pytest.raises(ValueError):
        notification_create(organization=org, kind="test", title="x", url="https://evil.example/")


def test_the_bell_shows_the_unread_count_and_the_latest(signed_in, org):
    notification_create(organization=org, kind="test", title="IM credits are running low", body="45 left")
    make_organization(name="Globex")  # and another organization's notification is not counted
    notification_create(organization=Notification.objects.first().organization, kind="test", title="Second")

    html = signed_in.get(BELL).content.decode()

    assert 'data-unread="2"' in html
    assert "IM credits are running low" in html and "45 left" in html


def test_the_bell_is_loaded_after_the_page(signed_in, org):
    html = signed_in.get(reverse("books:dashboard")).content.decode()

    assert f'hx-get="{BELL}"' in html


def test_mark_all_as_read_from_the_bell(signed_in, org):
    notification_create(organization=org, kind="test", title="One")

    response = signed_in.post(reverse("books:notifications_read"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "data-unread" not in response.content.decode()


def test_opening_a_notification_marks_it_read_and_follows_its_link(signed_in, org, org_admin):
    notification = notification_create(organization=org, kind="test", title="One", url="/settings/credits/")

    response = signed_in.get(reverse("books:notification_open", args=[notification.pk]))

    assert response.status_code == 302 and response["Location"] == "/settings/credits/"
    assert notification_unread_count(user=org_admin, organization=org) == 0


def test_another_organizations_notification_cannot_be_opened(signed_in, org):
    foreign = notification_create(organization=make_organization(name="Globex"), kind="test", title="Not yours")

    assert signed_in.get(reverse("books:notification_open", args=[foreign.pk])).status_code == 404


def test_the_notifications_page_lists_them_with_mark_all_as_read(signed_in, org):
    notification_create(organization=org, kind="test", title="First alert")

    html = signed_in.get(reverse("books:notification_list")).content.decode()
    signed_in.post(reverse("books:notifications_read"))

    assert "First alert" in html and "Mark all as read" in html
    assert "Unread" not in signed_in.get(reverse("books:notification_list")).content.decode()


def test_signed_out_visitors_get_no_bell(client: Client):
    assert client.get(BELL).status_code == 302
