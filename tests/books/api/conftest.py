import pytest
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from books.models import Organization
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_organization


@pytest.fixture
def user() -> AbstractBaseUser:
    return UserFactory()


@pytest.fixture
def org(user: AbstractBaseUser) -> Organization:
    """The test user's only organization, where they are Admin."""
    return make_organization(user=user, role="Admin")


@pytest.fixture
def api(user: AbstractBaseUser, org: Organization) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_org() -> Organization:
    """An organization the test user does not belong to."""
    return make_organization(name="Globex", user=UserFactory())
