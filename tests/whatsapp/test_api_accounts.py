"""The WhatsApp connection through the REST API: /api/v1/whatsapp/account, /phonenumbers, /channels.

Meta is the Cloud API sandbox on ``live_server`` (as in ``test_accounts.py``). Every request goes
through :func:`call`, which also checks that no response body ever carries an access token.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from books.models import Organization
from books.services.organizations import membership_add
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_organization
from tests.whatsapp.factories import make_account
from whatsapp.fix_hints import fix_hint
from whatsapp.models import PhoneNumber, WhatsAppAccount
from whatsapp.sandbox import selectors as sandbox_selectors
from whatsapp.sandbox import services as sandbox
from whatsapp.sandbox.management.commands.sandbox_setup import number_specs
from whatsapp.sandbox.models import SandboxPhoneNumber

WABA_ID = "102290129340777"
APP_ID = "209876543210777"
TOKEN = "EAASandboxApiAccountsToken00000000000000000"
OTHER_WABA_ID = "102290129340888"
OTHER_TOKEN = "EAASandboxApiAccountsOther00000000000000000"
SECRETS = (TOKEN, OTHER_TOKEN, "EAAWrongApiToken0000000000000000000000")

ACCOUNT_FIELDS = {
    "id",
    "waba_id",
    "app_id",
    "name",
    "status",
    "token_refused_at",
    "default_phone_number",
    "customer_same_number",
    "checked_at",
    "check_error_code",
    "check_error",
    "connected_at",
}


@pytest.fixture(autouse=True)
def sandbox_on(sandbox_live: str) -> None:
    """The sandbox on the live server is Meta for every test here."""


@pytest.fixture
def user(transactional_db: None) -> AbstractBaseUser:
    return UserFactory()


@pytest.fixture
def org(user: AbstractBaseUser) -> Organization:
    return make_organization(name="Acme Books", user=user, role="Admin")


@pytest.fixture
def api(user: AbstractBaseUser, org: Organization) -> APIClient:
    return client_for(user)


@pytest.fixture(autouse=True)
def wabas(transactional_db: None) -> None:
    for waba_id, token in ((WABA_ID, TOKEN), (OTHER_WABA_ID, OTHER_TOKEN)):
        sandbox.business_account_setup(
            waba_id=waba_id,
            app_id=APP_ID,
            access_token=token,
            name="Acme Books",
            verified_name="Acme Books",
            numbers=number_specs(waba_id),
        )


def call(api: APIClient, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = getattr(api, method)(path, body, format="json") if body is not None else getattr(api, method)(path)
    content = response.content.decode()
    assert not any(secret in content for secret in SECRETS), f"a token leaked from {method.upper()} {path}"
    return response


def connect(api: APIClient, waba_id: str = WABA_ID, token: str = TOKEN) -> dict[str, Any]:
    response = call(
        api, "post", "/api/v1/whatsapp/account", {"waba_id": waba_id, "app_id": APP_ID, "access_token": token}
    )
    assert response.status_code == 201, response.json()
    return response.json()


def numbers(org: Organization) -> dict[str, PhoneNumber]:
    """The live account's numbers: ``first`` (the default), ``second`` (also verified) and ``unverified``."""
    account = WhatsAppAccount.objects.get(organization=org, status__in=["connected", "inactive", "deleting_templates"])
    first = account.default_phone_number
    second = account.phone_numbers.filter(code_verification_status="VERIFIED").exclude(pk=first.pk).get()
    return {
        "first": first,
        "second": second,
        "unverified": account.phone_numbers.get(code_verification_status="NOT_VERIFIED"),
    }


# --- The account ----------------------------------------------------------------------------------


def test_the_account_is_404_until_connected_then_shown_without_the_token(api: APIClient, org: Organization) -> None:
    missing = call(api, "get", "/api/v1/whatsapp/account")

    created = connect(api)
    shown = call(api, "get", "/api/v1/whatsapp/account").json()

    assert missing.status_code == 404
    assert set(created) == ACCOUNT_FIELDS
    assert shown == created
    assert (shown["waba_id"], shown["app_id"], shown["status"], shown["name"]) == (
        WABA_ID,
        APP_ID,
        "connected",
        "Acme Books",
    )
    assert shown["default_phone_number"] == numbers(org)["first"].pk
    assert "access_token" not in shown


def test_connecting_needs_every_field_in_the_right_shape(api: APIClient) -> None:
    empty = call(api, "post", "/api/v1/whatsapp/account", {})
    shaped = call(api, "post", "/api/v1/whatsapp/account", {"waba_id": "abc", "app_id": "1", "access_token": "EAA x"})

    assert empty.status_code == 400
    assert set(empty.json()) == {"waba_id", "app_id", "access_token"}
    assert shaped.status_code == 400
    assert set(shaped.json()) == {"waba_id", "access_token"}
    assert not WhatsAppAccount.objects.exists()


def test_a_refused_token_is_a_400_on_access_token_with_the_fix_hint(api: APIClient) -> None:
    response = call(
        api,
        "post",
        "/api/v1/whatsapp/account",
        {"waba_id": WABA_ID, "app_id": APP_ID, "access_token": "EAAWrongApiToken0000000000000000000000"},
    )

    assert response.status_code == 400
    assert fix_hint(190) in response.json()["access_token"][0]
    assert not WhatsAppAccount.objects.exists()


def test_a_second_connection_is_a_400_while_one_is_live(api: APIClient) -> None:
    connect(api)

    response = call(
        api,
        "post",
        "/api/v1/whatsapp/account",
        {"waba_id": OTHER_WABA_ID, "app_id": APP_ID, "access_token": OTHER_TOKEN},
    )

    assert response.status_code == 400
    assert "change the account first" in response.json()["non_field_errors"][0]


def test_test_connection_and_inactive_active_answer_the_account(api: APIClient) -> None:
    connect(api)

    tested = call(api, "post", "/api/v1/whatsapp/account/test")
    paused = call(api, "post", "/api/v1/whatsapp/account/inactive")
    again = call(api, "post", "/api/v1/whatsapp/account/inactive")
    resumed = call(api, "post", "/api/v1/whatsapp/account/active")

    assert tested.status_code == 200
    assert tested.json()["checked_at"] is not None
    assert (tested.json()["check_error_code"], tested.json()["check_error"]) == (None, "")
    assert (paused.status_code, paused.json()["status"]) == (200, "inactive")
    assert again.status_code == 400
    assert "non_field_errors" in again.json()
    assert (resumed.status_code, resumed.json()["status"]) == (200, "connected")


def test_a_new_access_token_is_checked_with_meta_and_resumes_a_paused_account(api: APIClient) -> None:
    from whatsapp.client import CloudAPIError
    from whatsapp.services.accounts import account_token_refused

    connect(api)
    account = WhatsAppAccount.objects.get(waba_id=WABA_ID)
    account_token_refused(account=account, error=CloudAPIError("Invalid OAuth access token", code=190))
    assert call(api, "get", "/api/v1/whatsapp/account").json()["token_refused_at"] is not None

    missing = call(api, "post", "/api/v1/whatsapp/account/token", {})
    wrong = call(api, "post", "/api/v1/whatsapp/account/token", {"access_token": SECRETS[2]})
    replaced = call(api, "post", "/api/v1/whatsapp/account/token", {"access_token": TOKEN})

    assert (missing.status_code, list(missing.json())) == (400, ["access_token"])
    assert (wrong.status_code, list(wrong.json())) == (400, ["access_token"])
    assert replaced.status_code == 200
    assert (replaced.json()["token_refused_at"], replaced.json()["check_error"]) == (None, "")


def test_actions_on_a_missing_account_are_404_and_lists_are_empty(api: APIClient) -> None:
    assert call(api, "post", "/api/v1/whatsapp/account/test").status_code == 404
    assert call(api, "post", "/api/v1/whatsapp/account/token", {"access_token": TOKEN}).status_code == 404
    assert call(api, "post", "/api/v1/whatsapp/phonenumbers/sync").status_code == 404
    assert call(api, "put", "/api/v1/whatsapp/channels", {"customer_same_number": True}).status_code == 404
    assert call(api, "get", "/api/v1/whatsapp/phonenumbers").json()["results"] == []
    assert call(api, "get", "/api/v1/whatsapp/channels").json() == []


def test_changing_the_account_by_hand_then_connecting_the_new_one(api: APIClient, org: Organization) -> None:
    old = connect(api)
    waba = sandbox_selectors.account_for_token(token=TOKEN)
    sandbox.template_create(
        account=waba,
        data={"name": "invoice_notice", "language": "en", "category": "UTILITY", "components": [_body()]},
    )

    bad_mode = call(api, "post", "/api/v1/whatsapp/account/change", {"mode": "someday"})
    started = call(api, "post", "/api/v1/whatsapp/account/change", {"mode": "manual"})
    listed = call(api, "get", "/api/v1/whatsapp/account/templates")
    refused_connect = call(
        api,
        "post",
        "/api/v1/whatsapp/account",
        {"waba_id": OTHER_WABA_ID, "app_id": APP_ID, "access_token": OTHER_TOKEN},
    )
    deleted = call(api, "post", "/api/v1/whatsapp/account/templates/delete", {"name": "invoice_notice"})
    new = connect(api, OTHER_WABA_ID, OTHER_TOKEN)

    assert bad_mode.status_code == 400
    assert set(bad_mode.json()) == {"mode"}
    assert started.json()["status"] == "deleting_templates"
    assert [(t["name"], t["language"]) for t in listed.json()] == [("invoice_notice", "en")]
    assert refused_connect.status_code == 400
    assert deleted.json()["status"] == "setup_pending"
    assert new["waba_id"] == OTHER_WABA_ID
    assert WhatsAppAccount.objects.get(pk=old["id"]).status == "disconnected"
    assert call(api, "get", "/api/v1/whatsapp/account").json()["id"] == new["id"]


def test_a_change_can_be_checked_and_cancelled(api: APIClient) -> None:
    connect(api)
    call(api, "post", "/api/v1/whatsapp/account/change", {"mode": "manual"})

    checked = call(api, "post", "/api/v1/whatsapp/account/change/check")
    cancelled = call(api, "post", "/api/v1/whatsapp/account/change/cancel")
    again = call(api, "post", "/api/v1/whatsapp/account/change/cancel")

    assert checked.json()["status"] == "setup_pending"  # the account had no template left
    assert cancelled.status_code == 400  # setup pending: nothing left to cancel
    assert again.status_code == 400


def _body() -> dict[str, str]:
    return {"type": "BODY", "text": "Your statement is ready."}


# --- Phone numbers --------------------------------------------------------------------------------


def test_numbers_are_listed_with_a_constant_number_of_queries_and_retrieved(api: APIClient, org: Organization) -> None:
    connect(api)
    with CaptureQueriesContext(connection) as three:
        listed = call(api, "get", "/api/v1/whatsapp/phonenumbers")
    account = WhatsAppAccount.objects.get(organization=org)
    for index in range(3):
        PhoneNumber.objects.create(
            organization=org, account=account, phone_number_id=f"9000{index}", display_phone_number=f"+1 555 010{index}"
        )
    with CaptureQueriesContext(connection) as six:
        more = call(api, "get", "/api/v1/whatsapp/phonenumbers")
    first = numbers(org)["first"]
    one = call(api, "get", f"/api/v1/whatsapp/phonenumbers/{first.pk}").json()

    assert listed.json()["count"] == 3
    assert more.json()["count"] == 6
    assert len(six.captured_queries) == len(three.captured_queries) <= 8
    assert one["phone_number_id"] == first.phone_number_id
    assert (one["is_verified"], one["is_default"], one["code_verification_status"]) == (True, True, "VERIFIED")
    assert {"display_phone_number", "quality_rating", "status", "messaging_limit_tier", "synced_at"} <= set(one)


def test_sync_fetches_the_numbers_from_meta_again(api: APIClient, org: Organization) -> None:
    connect(api)
    SandboxPhoneNumber.objects.filter(phone_number_id=numbers(org)["second"].phone_number_id).update(
        quality_rating="RED"
    )

    response = call(api, "post", "/api/v1/whatsapp/phonenumbers/sync")

    assert response.status_code == 200
    assert sorted(number["quality_rating"] for number in response.json()) == ["GREEN", "GREEN", "RED"]


def test_a_number_is_verified_with_a_code_then_made_the_default(api: APIClient, org: Organization) -> None:
    connect(api)
    number, first = numbers(org)["unverified"], numbers(org)["first"]
    path = f"/api/v1/whatsapp/phonenumbers/{number.pk}"

    too_early = call(api, "post", f"{path}/default")
    bad_method = call(api, "post", f"{path}/request_code", {"code_method": "PIGEON"})
    requested = call(api, "post", f"{path}/request_code", {"code_method": "SMS"})
    code = SandboxPhoneNumber.objects.get(phone_number_id=number.phone_number_id).otp_code
    wrong = call(api, "post", f"{path}/verify_code", {"code": "000000" if code != "000000" else "111111"})
    verified = call(api, "post", f"{path}/verify_code", {"code": f"{code[:3]}-{code[3:]}"})
    default = call(api, "post", f"{path}/default")
    not_default = call(api, "delete", f"/api/v1/whatsapp/phonenumbers/{first.pk}/default")
    cleared = call(api, "delete", f"{path}/default")

    assert too_early.status_code == 400
    assert "verify" in too_early.json()["non_field_errors"][0]
    assert (bad_method.status_code, set(bad_method.json())) == (400, {"code_method"})
    assert requested.status_code == 204
    assert wrong.status_code == 400
    assert "wrong or has expired" in wrong.json()["code"][0]
    assert (verified.status_code, verified.json()["is_verified"]) == (200, True)
    assert (default.status_code, default.json()["is_default"]) == (200, True)
    assert not_default.status_code == 400
    assert cleared.status_code == 204
    assert call(api, "get", "/api/v1/whatsapp/account").json()["default_phone_number"] is None


# --- Channels -------------------------------------------------------------------------------------


def test_channels_are_listed_and_replaced(api: APIClient, org: Organization) -> None:
    connect(api)
    first, second = numbers(org)["first"], numbers(org)["second"]

    listed = call(api, "get", "/api/v1/whatsapp/channels")
    saved = call(
        api,
        "put",
        "/api/v1/whatsapp/channels",
        {
            "customer_same_number": False,
            "customer_utility": first.pk,
            "customer_marketing": second.pk,
            "vendor_utility": second.pk,
        },
    )
    same = call(
        api,
        "put",
        "/api/v1/whatsapp/channels",
        {"customer_same_number": True, "customer_utility": second.pk, "vendor_utility": first.pk},
    )

    assert sorted((c["audience"], c["category"], c["phone_number"]) for c in listed.json()) == [
        ("customer", "marketing", first.pk),
        ("customer", "utility", first.pk),
        ("vendor", "utility", first.pk),
    ]
    assert saved.status_code == 200
    assert {(c["audience"], c["category"]): c["phone_number"] for c in saved.json()} == {
        ("customer", "utility"): first.pk,
        ("customer", "marketing"): second.pk,
        ("vendor", "utility"): second.pk,
    }
    assert {(c["audience"], c["category"]): c["phone_number"] for c in same.json()} == {
        ("customer", "utility"): second.pk,
        ("customer", "marketing"): second.pk,
        ("vendor", "utility"): first.pk,
    }
    assert call(api, "get", "/api/v1/whatsapp/account").json()["customer_same_number"] is True


def test_channels_refuse_unverified_foreign_and_missing_numbers_with_field_errors(
    api: APIClient, org: Organization
) -> None:
    connect(api)
    first, unverified = numbers(org)["first"], numbers(org)["unverified"]
    foreign = make_account(make_organization(name="Globex", user=UserFactory())).default_phone_number

    refused = call(
        api,
        "put",
        "/api/v1/whatsapp/channels",
        {
            "customer_same_number": False,
            "customer_utility": first.pk,
            "customer_marketing": unverified.pk,
            "vendor_utility": foreign.pk,
        },
    )
    missing = call(api, "put", "/api/v1/whatsapp/channels", {"customer_same_number": False})

    assert refused.status_code == 400
    assert set(refused.json()) == {"vendor_utility"}  # another organization's number is unknown here
    assert missing.status_code == 400
    assert set(missing.json()) == {"customer_utility", "vendor_utility"}
    unverified_only = call(
        api,
        "put",
        "/api/v1/whatsapp/channels",
        {
            "customer_same_number": False,
            "customer_utility": first.pk,
            "customer_marketing": unverified.pk,
            "vendor_utility": first.pk,
        },
    )
    assert unverified_only.status_code == 400
    assert set(unverified_only.json()) == {"customer_marketing"}


# --- Who may -------------------------------------------------------------------------------------


def test_another_organizations_numbers_are_404(api: APIClient) -> None:
    connect(api)
    foreign = make_account(make_organization(name="Globex", user=UserFactory())).default_phone_number
    path = f"/api/v1/whatsapp/phonenumbers/{foreign.pk}"

    assert call(api, "get", path).status_code == 404
    assert call(api, "post", f"{path}/request_code", {"code_method": "SMS"}).status_code == 404
    assert call(api, "post", f"{path}/verify_code", {"code": "123456"}).status_code == 404
    assert call(api, "post", f"{path}/default").status_code == 404
    assert call(api, "delete", f"{path}/default").status_code == 404


def test_another_organization_id_is_404(api: APIClient) -> None:
    other = make_organization(name="Globex", user=UserFactory())
    make_account(other)

    for path in ("/api/v1/whatsapp/account", "/api/v1/whatsapp/phonenumbers", "/api/v1/whatsapp/channels"):
        assert call(api, "get", f"{path}?organization_id={other.pk}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/whatsapp/account"),
        ("post", "/api/v1/whatsapp/account"),
        ("post", "/api/v1/whatsapp/account/test"),
        ("post", "/api/v1/whatsapp/account/inactive"),
        ("post", "/api/v1/whatsapp/account/change"),
        ("get", "/api/v1/whatsapp/account/templates"),
        ("get", "/api/v1/whatsapp/phonenumbers"),
        ("post", "/api/v1/whatsapp/phonenumbers/sync"),
        ("get", "/api/v1/whatsapp/channels"),
        ("put", "/api/v1/whatsapp/channels"),
    ],
)
def test_a_role_without_settings_manage_is_403(method: str, path: str, org: Organization) -> None:
    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")
    make_account(org)

    response = call(client_for(staff), method, path, {} if method != "get" else None)

    assert response.status_code == 403


def test_without_credentials_it_is_401(org: Organization) -> None:
    assert APIClient().get("/api/v1/whatsapp/account").status_code == 401
