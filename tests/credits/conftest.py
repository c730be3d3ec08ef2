from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from books.models import Organization
from tests.books.factories import UserFactory, make_organization

from .factories import default_prices
from .stripe_standin import StripeStandIn


@pytest.fixture
def prices(db: None) -> None:
    default_prices()


@pytest.fixture
def org_admin(db: None) -> Any:
    return UserFactory()


@pytest.fixture
def org(org_admin: Any, prices: None) -> Organization:
    """An Indian organization (INR) where ``org_admin`` is Admin."""
    return make_organization(user=org_admin)


@pytest.fixture
def signed_in(client: Client, org_admin: Any, org: Organization) -> Client:
    client.force_login(org_admin)
    return client


@pytest.fixture
def stripe() -> Iterator[StripeStandIn]:
    """Stripe's API on loopback; the hub's Stripe settings point at it."""
    from django.test import override_settings

    standin = StripeStandIn()
    standin.start()
    try:
        with override_settings(
            CREDITS_GATEWAY="stripe",
            STRIPE_API_BASE=standin.url,
            STRIPE_SECRET_KEY=standin.secret_key,
            STRIPE_WEBHOOK_SECRET=standin.webhook_secret,
        ):
            yield standin
    finally:
        standin.stop()


@pytest.fixture
def sandbox_gateway() -> Iterator[None]:
    from django.test import override_settings

    with override_settings(CREDITS_GATEWAY="sandbox"):
        yield
