"""Settings → Integrations → WhatsApp through the browser: every account state, and every flow an
administrator walks (connect, test, verify a number, channels, default number, inactive, change account).

Pages that only read the hub's rows use accounts made by ``make_account``; flows that call Meta run
against the Cloud API sandbox on ``live_server`` (no HTTP is mocked), with webhook delivery in
``manual`` mode so nothing is posted behind the test's back. Everything else points the Graph URL
at a closed loopback port: no test can reach the internet, and a page that asks Meta shows the
failure instead of a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from books.services.organizations import membership_add
from tests.books.factories import UserFactory, make_organization
from whatsapp.choices import AccountStatus, Audience, Category, MessageStatus
from whatsapp.models import Channel, PhoneNumber, WhatsAppAccount
from whatsapp.sandbox import services as sandbox_services
from whatsapp.sandbox.management.commands.sandbox_setup import number_specs
from whatsapp.sandbox.models import SandboxBusinessAccount, SandboxPhoneNumber

from .factories import TOKEN as FACTORY_TOKEN
from .factories import make_account, make_message

WABA_ID = "102290129340398"
APP_ID = "209876543210123"
TOKEN = "EAASettingsViewsToken00000000000000000000"
NEW_WABA_ID = "102290129340399"
NEW_TOKEN = "EAASettingsViewsNewToken000000000000000000"
DEAD_GRAPH = "http://127.0.0.1:9/graph"  # nothing listens: Meta "doesn't answer"

OVERVIEW = reverse("whatsapp:integration")


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_internet() -> Iterator[None]:
    with override_settings(WHATSAPP_GRAPH_URL=DEAD_GRAPH, WHATSAPP_SANDBOX_ENABLED=False):
        yield


@pytest.fixture
def admin(db: None) -> Any:
    return UserFactory()


@pytest.fixture
def org(admin: Any) -> Any:
    return make_organization(user=admin)


@pytest.fixture
def signed_in(client: Client, admin: Any, org: Any) -> Client:
    client.force_login(admin)
    return client


@pytest.fixture
def sandbox(sandbox_live: str) -> str:
    """The Cloud API sandbox on the live server, as the hub's Meta."""
    return sandbox_live


def _sandbox_waba(waba_id: str, token: str, name: str) -> SandboxBusinessAccount:
    return sandbox_services.business_account_setup(
        waba_id=waba_id,
        app_id=APP_ID,
        access_token=token,
        name=name,
        verified_name=name,
        numbers=number_specs(waba_id),  # three numbers, the first two verified
    )


@pytest.fixture
def meta_waba(sandbox: str) -> SandboxBusinessAccount:
    return _sandbox_waba(WABA_ID, TOKEN, "Acme Books")


@pytest.fixture
def connected(signed_in: Client, meta_waba: SandboxBusinessAccount) -> WhatsAppAccount:
    """The organization connected to the sandbox WABA through the connect form."""
    response = signed_in.post(
        reverse("whatsapp:connect"), {"waba_id": WABA_ID, "app_id": APP_ID, "access_token": TOKEN}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return WhatsAppAccount.objects.get(waba_id=WABA_ID, status=AccountStatus.CONNECTED)


def member_client(client: Client, org: Any, role: str) -> Client:
    user = UserFactory()
    membership_add(organization=org, user=user, role_name=role)
    client.force_login(user)
    return client


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def followed(response: Any) -> str:
    """The page a POST redirected to, with its messages."""
    assert response.redirect_chain, "expected a redirect"
    return page(response)


def hub_numbers(account: WhatsAppAccount) -> dict[str, PhoneNumber]:
    return {n.phone_number_id: n for n in PhoneNumber.objects.filter(account=account)}


# --- Every account state renders ------------------------------------------------------------------


def test_without_an_account_the_page_is_the_connect_form_with_the_prerequisites(signed_in: Client) -> None:
    html = page(signed_in.get(OVERVIEW))

    assert 'action="' + reverse("whatsapp:connect") + '"' in html
    assert 'name="waba_id"' in html and 'name="app_id"' in html
    assert 'type="password" name="access_token"' in html
    assert "Business Solution Provider" in html  # the seed's prerequisites
    assert "verified Meta Business Manager" in html
    assert "Configure" not in html


def test_a_connected_account_shows_its_card_numbers_default_number_and_channels(signed_in: Client, org: Any) -> None:
    account = make_account(org, numbers=2)
    default = account.default_phone_number

    html = page(signed_in.get(OVERVIEW))

    assert 'class="badge badge-connected"' in html
    assert account.waba_id in html and account.name in html
    assert reverse("whatsapp:test_connection") in html
    assert reverse("whatsapp:numbers_refresh") in html
    for number in account.phone_numbers.all():
        assert number.display_phone_number in html
    assert "Verified" in html and "High" in html  # verification and quality of Meta's GREEN
    assert "1,000 customers / 24 h" in html  # TIER_1K
    assert "Default WhatsApp Business number" in html
    assert reverse("whatsapp:default_number_remove") in html
    assert html.count(default.display_phone_number) >= 4  # the table, the default box, three channels
    assert reverse("whatsapp:channels") in html
    assert reverse("whatsapp:mark_inactive") in html and reverse("whatsapp:change") in html
    assert 'name="waba_id"' not in html  # no connect form; the token can only be replaced
    assert reverse("whatsapp:token_replace") in html and "data-token-refused" not in html


def test_the_account_card_shows_a_failed_check_with_its_fix_hint_and_metas_latest_event(
    signed_in: Client, org: Any
) -> None:
    account = make_account(org)
    WhatsAppAccount.objects.filter(pk=account.pk).update(
        checked_at=timezone.now(),
        check_error_code=190,
        check_error="Error validating access token: Session has expired.",
        meta_event="ACCOUNT_VIOLATION",
        meta_event_detail={"violation_type": "SCAM"},
        meta_event_at=timezone.now(),
    )

    html = page(signed_in.get(OVERVIEW))

    assert "(#190) Error validating access token" in html
    assert "access token expired or was revoked" in html  # the fix hint for 190
    assert "Failed" in html
    assert "ACCOUNT_VIOLATION" in html and "violation_type" in html and "SCAM" in html


def test_an_inactive_account_says_nothing_is_sent_and_offers_mark_as_active(signed_in: Client, org: Any) -> None:
    make_account(org, status=AccountStatus.INACTIVE)

    html = page(signed_in.get(OVERVIEW))

    assert 'class="badge badge-inactive"' in html
    assert "WhatsApp is inactive." in html
    assert reverse("whatsapp:mark_active") in html
    assert reverse("whatsapp:mark_inactive") not in html


def test_while_deleting_templates_the_overview_polls_the_progress_and_shows_a_meta_failure(
    signed_in: Client, org: Any
) -> None:
    make_account(org, status=AccountStatus.DELETING_TEMPLATES)

    html = page(signed_in.get(OVERVIEW))

    assert 'class="badge badge-deleting_templates"' in html
    assert f'hx-get="{reverse("whatsapp:change_progress")}"' in html
    assert 'hx-trigger="every 4s"' in html
    assert "Meta did not say which templates are left" in html  # Meta is unreachable here: no 500
    assert reverse("whatsapp:change_cancel") in html
    assert reverse("whatsapp:numbers_refresh") not in html


def test_setup_pending_shows_the_badge_and_the_connect_form_for_the_new_account(signed_in: Client, org: Any) -> None:
    account = make_account(org, status=AccountStatus.SETUP_PENDING)

    html = page(signed_in.get(OVERVIEW))

    assert 'class="badge badge-setup_pending"' in html and "Setup pending" in html
    assert account.waba_id in html
    assert "Connect the new WhatsApp Business account" in html
    assert 'name="waba_id"' in html
    assert reverse("whatsapp:test_connection") not in html


@pytest.mark.parametrize(
    "status",
    [
        AccountStatus.CONNECTED,
        AccountStatus.INACTIVE,
        AccountStatus.DELETING_TEMPLATES,
        AccountStatus.SETUP_PENDING,
    ],
)
def test_the_access_token_is_never_on_a_page(signed_in: Client, org: Any, status: str) -> None:
    make_account(org, status=status)
    urls = [
        OVERVIEW,
        reverse("whatsapp:channels"),
        reverse("whatsapp:default_number"),
        reverse("whatsapp:verify"),
        reverse("whatsapp:change"),
        reverse("whatsapp:mark_inactive"),
        reverse("books:settings"),
    ]

    for url in urls:
        response = signed_in.get(url, follow=True)
        assert response.status_code == 200, url
        assert FACTORY_TOKEN not in response.content.decode(), url


def test_pages_of_a_connected_account_send_elsewhere_while_the_account_is_being_changed(
    signed_in: Client, org: Any
) -> None:
    make_account(org, status=AccountStatus.SETUP_PENDING)

    response = signed_in.get(reverse("whatsapp:channels"), follow=True)

    assert response.redirect_chain[-1][0] == OVERVIEW
    assert "Connect the new WhatsApp Business account first." in page(response)


# --- The way in from Settings ---------------------------------------------------------------------


def test_the_settings_page_lists_whatsapp_under_integrations(signed_in: Client) -> None:
    html = page(signed_in.get(reverse("books:settings")))

    assert "Integrations" in html
    assert f'href="{OVERVIEW}" data-integration="whatsapp"' in html


# --- Access -------------------------------------------------------------------------------------

GET_PAGES = [
    ("whatsapp:integration", []),
    ("whatsapp:channels", []),
    ("whatsapp:default_number", []),
    ("whatsapp:default_number_remove", []),
    ("whatsapp:verify", []),
    ("whatsapp:mark_inactive", []),
    ("whatsapp:change", []),
    ("whatsapp:change_progress", []),
]
POST_ACTIONS = [
    "whatsapp:connect",
    "whatsapp:test_connection",
    "whatsapp:numbers_refresh",
    "whatsapp:mark_inactive",
    "whatsapp:mark_active",
    "whatsapp:change",
    "whatsapp:change_template_delete",
    "whatsapp:change_check",
    "whatsapp:change_cancel",
]


@pytest.mark.parametrize(("name", "args"), GET_PAGES)
def test_a_staff_member_gets_403_on_every_page(client: Client, org: Any, name: str, args: list[Any]) -> None:
    make_account(org)
    staff = member_client(client, org, "Staff")

    assert staff.get(reverse(name, args=args)).status_code == 403


@pytest.mark.parametrize("name", POST_ACTIONS)
def test_a_staff_member_gets_403_on_every_action_and_nothing_changes(client: Client, org: Any, name: str) -> None:
    account = make_account(org)
    staff = member_client(client, org, "Staff")

    assert staff.post(reverse(name), {"mode": "manual", "name": "x"}).status_code == 403
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED


def test_a_staff_member_gets_403_on_a_number(client: Client, org: Any) -> None:
    number = make_account(org).phone_numbers.first()
    staff = member_client(client, org, "Staff")

    assert staff.get(reverse("whatsapp:verify_number", args=[number.pk])).status_code == 403
    assert staff.post(reverse("whatsapp:verify_send", args=[number.pk])).status_code == 403


def test_an_anonymous_visitor_is_sent_to_the_login_page(client: Client, db: None) -> None:
    response = client.get(OVERVIEW)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_post_without_the_csrf_token_is_refused(admin: Any, org: Any) -> None:
    account = make_account(org)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)

    response = browser.post(reverse("whatsapp:mark_inactive"))
    connect = browser.post(reverse("whatsapp:connect"), {"waba_id": "1", "app_id": "2", "access_token": "x"})

    assert response.status_code == 403
    assert connect.status_code == 403
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED


def test_every_form_carries_the_csrf_token(signed_in: Client, org: Any) -> None:
    make_account(org, numbers=3)
    PhoneNumber.objects.filter(account__organization=org).update(code_verification_status="NOT_VERIFIED")

    for url in (OVERVIEW, reverse("whatsapp:channels"), reverse("whatsapp:verify"), reverse("whatsapp:change")):
        html = page(signed_in.get(url))
        assert html.count('method="post"') <= html.count('name="csrfmiddlewaretoken"'), url


def test_another_organizations_number_is_a_404(signed_in: Client, org: Any) -> None:
    make_account(org)
    other = make_organization(name="Other Books")
    foreign = make_account(other).phone_numbers.first()

    assert signed_in.get(reverse("whatsapp:verify_number", args=[foreign.pk])).status_code == 404
    assert signed_in.post(reverse("whatsapp:verify_send", args=[foreign.pk]), {"code_method": "SMS"}).status_code == 404
    assert signed_in.post(reverse("whatsapp:verify_number", args=[foreign.pk]), {"code": "123456"}).status_code == 404


def test_a_number_of_an_account_the_organization_replaced_is_a_404(signed_in: Client, org: Any) -> None:
    old = make_account(org, status=AccountStatus.DISCONNECTED)
    make_account(org)

    response = signed_in.get(reverse("whatsapp:verify_number", args=[old.phone_numbers.first().pk]))

    assert response.status_code == 404


# --- Forms that need no Meta ----------------------------------------------------------------------


def test_the_connect_form_shows_its_errors_and_never_echoes_the_token(signed_in: Client) -> None:
    secret = "EAASecretThatMustNotComeBack000000000000"

    html = page(
        signed_in.post(reverse("whatsapp:connect"), {"waba_id": "not-a-number", "app_id": "", "access_token": secret})
    )

    assert "Meta&#x27;s IDs are numbers" in html or "Meta's IDs are numbers" in html
    assert "This field is required." in html
    assert secret not in html
    assert 'value="not-a-number"' in html  # the rest is kept for correction
    assert not WhatsAppAccount.objects.exists()


def test_a_second_connect_while_connected_changes_nothing(signed_in: Client, org: Any) -> None:
    account = make_account(org)

    response = signed_in.post(
        reverse("whatsapp:connect"), {"waba_id": "123456", "app_id": "654321", "access_token": "EAAx"}, follow=True
    )

    assert "already connected" in followed(response)
    assert list(WhatsAppAccount.objects.filter(organization=org)) == [account]


def test_the_default_number_can_be_removed_after_confirming(signed_in: Client, org: Any) -> None:
    account = make_account(org)

    confirm = page(signed_in.get(reverse("whatsapp:default_number_remove")))
    html = followed(signed_in.post(reverse("whatsapp:default_number_remove"), follow=True))

    assert "Remove" in confirm and account.default_phone_number.display_phone_number in confirm
    account.refresh_from_db()
    assert account.default_phone_number is None
    assert "No default number is set" in html
    assert reverse("whatsapp:default_number") in html


def test_set_default_number_offers_only_verified_numbers_and_links_the_others_to_verification(
    signed_in: Client, org: Any
) -> None:
    account = make_account(org, numbers=3)
    numbers = list(account.phone_numbers.order_by("phone_number_id"))
    PhoneNumber.objects.filter(pk=numbers[2].pk).update(code_verification_status="NOT_VERIFIED")

    html = page(signed_in.get(reverse("whatsapp:default_number")))
    refused = page(signed_in.post(reverse("whatsapp:default_number"), {"phone_number": numbers[2].pk}))
    signed_in.post(reverse("whatsapp:default_number"), {"phone_number": numbers[1].pk})

    assert f'value="{numbers[0].pk}"' in html and f'value="{numbers[1].pk}"' in html
    assert f'value="{numbers[2].pk}"' not in html
    assert reverse("whatsapp:verify_number", args=[numbers[2].pk]) + "?back=default" in html
    assert "Select a valid choice" in refused
    account.refresh_from_db()
    assert account.default_phone_number == numbers[1]


def test_mark_inactive_asks_first_and_explains_that_nothing_is_sent(signed_in: Client, org: Any) -> None:
    account = make_account(org)

    html = page(signed_in.get(reverse("whatsapp:mark_inactive")))

    assert "While WhatsApp is inactive nothing is sent" in html
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED


def test_the_progress_card_asks_htmx_to_reload_once_the_deletion_is_over(signed_in: Client, org: Any) -> None:
    make_account(org, status=AccountStatus.SETUP_PENDING)

    polled = signed_in.get(reverse("whatsapp:change_progress"), HTTP_HX_REQUEST="true")
    plain = signed_in.get(reverse("whatsapp:change_progress"))

    assert polled.status_code == 204 and polled["HX-Refresh"] == "true"
    assert plain.status_code == 302 and plain.url == OVERVIEW


# --- Flows against the sandbox ----------------------------------------------------------------------


def test_connecting_a_waba_fetches_its_numbers_sets_the_default_and_the_channels(
    signed_in: Client, org: Any, meta_waba: SandboxBusinessAccount
) -> None:
    response = signed_in.post(
        reverse("whatsapp:connect"), {"waba_id": WABA_ID, "app_id": APP_ID, "access_token": TOKEN}, follow=True
    )

    html = followed(response)
    account = WhatsAppAccount.objects.get(organization=org)
    numbers = hub_numbers(account)
    assert account.status == AccountStatus.CONNECTED and account.access_token == TOKEN
    assert len(numbers) == 3
    assert sum(n.is_verified for n in numbers.values()) == 2
    assert account.default_phone_number.is_verified
    assert Channel.objects.filter(account=account).count() == 3
    assert "is connected" in html
    assert 'class="badge badge-connected"' in html
    assert "Not verified" in html and reverse("whatsapp:verify") in html
    assert TOKEN not in html


def test_meta_refusing_the_token_shows_on_the_form_and_saves_nothing(
    signed_in: Client, meta_waba: SandboxBusinessAccount
) -> None:
    wrong = "EAAWrongTokenForTheSandbox00000000000000"

    html = page(
        signed_in.post(reverse("whatsapp:connect"), {"waba_id": WABA_ID, "app_id": APP_ID, "access_token": wrong})
    )

    assert "WhatsApp refused the access token" in html
    assert "The account was not connected" in html
    assert wrong not in html
    assert not WhatsAppAccount.objects.exists()


def test_test_connection_records_success_and_a_refused_token(
    signed_in: Client, org: Any, connected: WhatsAppAccount
) -> None:
    ok = followed(signed_in.post(reverse("whatsapp:test_connection"), follow=True))
    connected.refresh_from_db()
    assert connected.checked_at is not None and connected.check_error == ""
    assert "The connection works" in ok and "Working" in ok

    # Meta revokes the token (the sandbox's account now answers to another one).
    SandboxBusinessAccount.objects.filter(waba_id=WABA_ID).update(access_token="EAARotated000000000000000000")
    failed = followed(signed_in.post(reverse("whatsapp:test_connection"), follow=True))

    connected.refresh_from_db()
    assert connected.check_error and connected.check_error_code is not None
    assert "The connection test failed" in failed
    assert f"(#{connected.check_error_code})" in failed and "Failed" in failed
    assert TOKEN not in failed


def test_refresh_from_meta_updates_the_numbers(signed_in: Client, connected: WhatsAppAccount) -> None:
    SandboxPhoneNumber.objects.filter(account__waba_id=WABA_ID).update(quality_rating="YELLOW")

    html = followed(signed_in.post(reverse("whatsapp:numbers_refresh"), follow=True))

    assert "3 phone numbers refreshed from Meta." in html
    assert set(PhoneNumber.objects.filter(account=connected).values_list("quality_rating", flat=True)) == {"YELLOW"}
    assert "Medium" in html


def test_a_number_is_verified_with_the_code_sent_by_sms(signed_in: Client, connected: WhatsAppAccount) -> None:
    number = PhoneNumber.objects.get(account=connected, code_verification_status="NOT_VERIFIED")
    remote = SandboxPhoneNumber.objects.get(phone_number_id=number.phone_number_id)

    listing = page(signed_in.get(reverse("whatsapp:verify") + "?back=channels"))
    sent = followed(
        signed_in.post(
            reverse("whatsapp:verify_send", args=[number.pk]), {"code_method": "SMS", "back": "channels"}, follow=True
        )
    )
    remote.refresh_from_db()
    code = remote.otp_code
    wrong = page(
        signed_in.post(
            reverse("whatsapp:verify_number", args=[number.pk]) + "?back=channels",
            {"code": "000000" if code != "000000" else "111111", "pin": "246810"},
        )
    )
    done = signed_in.post(
        reverse("whatsapp:verify_number", args=[number.pk]) + "?back=channels",
        {"code": f"{code[:3]} {code[3:]}", "pin": "246810"},
        follow=True,
    )

    assert number.display_phone_number in listing and "Send OTP" in listing
    assert reverse("whatsapp_sandbox:dashboard") in listing  # the sandbox hint
    assert remote.otp_method == "SMS" and len(code) == 6
    assert "A code was sent by SMS" in sent and 'name="code"' in sent
    assert "The code is wrong or has expired" in wrong
    assert done.redirect_chain[-1][0] == reverse("whatsapp:channels")
    assert "is verified" in page(done)
    number.refresh_from_db()
    remote.refresh_from_db()
    assert number.is_verified and remote.registered and remote.pin == "246810"  # registered: it can send
    assert f'value="{number.pk}"' in page(done)  # now offered for the channels


def test_a_voice_call_code_can_be_requested(signed_in: Client, connected: WhatsAppAccount) -> None:
    number = PhoneNumber.objects.get(account=connected, code_verification_status="NOT_VERIFIED")

    html = followed(
        signed_in.post(reverse("whatsapp:verify_send", args=[number.pk]), {"code_method": "VOICE"}, follow=True)
    )

    assert "is calling" in html
    assert SandboxPhoneNumber.objects.get(phone_number_id=number.phone_number_id).otp_method == "VOICE"


def test_channels_take_separate_numbers_and_only_verified_ones(signed_in: Client, connected: WhatsAppAccount) -> None:
    verified = list(PhoneNumber.objects.filter(account=connected, code_verification_status="VERIFIED").order_by("pk"))
    unverified = PhoneNumber.objects.get(account=connected, code_verification_status="NOT_VERIFIED")
    url = reverse("whatsapp:channels")

    form = page(signed_in.get(url))
    refused = page(
        signed_in.post(
            url,
            {
                "customer_same_number": "no",
                "customer_utility": verified[0].pk,
                "customer_marketing": unverified.pk,
                "vendor_utility": verified[0].pk,
            },
        )
    )
    missing = page(
        signed_in.post(url, {"customer_same_number": "no", "customer_utility": verified[0].pk, "vendor_utility": ""})
    )
    saved = signed_in.post(
        url,
        {
            "customer_same_number": "no",
            "customer_utility": verified[0].pk,
            "customer_marketing": verified[1].pk,
            "vendor_utility": verified[1].pk,
        },
        follow=True,
    )

    assert "Customer communication" in form and "Vendor communication" in form
    assert "Pro tip" in form and reverse("whatsapp:verify") in form
    assert f'value="{unverified.pk}"' not in form
    assert "Select a valid choice" in refused
    assert "Choose the marketing number" in missing and "This field is required." in missing
    assert "The WhatsApp channels were saved." in followed(saved)
    connected.refresh_from_db()
    assert connected.customer_same_number is False
    pick = {(c.audience, c.category): c.phone_number for c in Channel.objects.filter(account=connected)}
    assert pick[(Audience.CUSTOMER, Category.UTILITY)] == verified[0]
    assert pick[(Audience.CUSTOMER, Category.MARKETING)] == verified[1]
    assert pick[(Audience.VENDOR, Category.UTILITY)] == verified[1]


def test_the_same_number_for_every_category_ignores_the_marketing_choice(
    signed_in: Client, connected: WhatsAppAccount
) -> None:
    verified = list(PhoneNumber.objects.filter(account=connected, code_verification_status="VERIFIED").order_by("pk"))

    signed_in.post(
        reverse("whatsapp:channels"),
        {
            "customer_same_number": "yes",
            "customer_utility": verified[1].pk,
            "customer_marketing": verified[0].pk,
            "vendor_utility": verified[0].pk,
        },
    )
    html = page(signed_in.get(OVERVIEW))

    connected.refresh_from_db()
    assert connected.customer_same_number is True
    marketing = Channel.objects.get(account=connected, audience=Audience.CUSTOMER, category=Category.MARKETING)
    assert marketing.phone_number == verified[1]
    assert "same number for every category" in html


def test_mark_inactive_then_active_again(signed_in: Client, connected: WhatsAppAccount) -> None:
    inactive = followed(signed_in.post(reverse("whatsapp:mark_inactive"), follow=True))
    connected.refresh_from_db()
    assert connected.status == AccountStatus.INACTIVE
    assert "WhatsApp is inactive" in inactive

    active = followed(signed_in.post(reverse("whatsapp:mark_active"), follow=True))
    connected.refresh_from_db()
    assert connected.status == AccountStatus.CONNECTED
    assert "active again" in active
    assert 'class="badge badge-connected"' in active


def test_changing_the_account_by_deleting_templates_by_hand_ends_in_setup_pending_then_connects_the_new_one(
    signed_in: Client, org: Any, connected: WhatsAppAccount, meta_waba: SandboxBusinessAccount
) -> None:
    for name in ("invoice_notice", "payment_thanks"):
        sandbox_services.template_create(
            account=meta_waba,
            data={
                "name": name,
                "language": "en",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi"}],
            },
        )
    _sandbox_waba(NEW_WABA_ID, NEW_TOKEN, "Acme Books (new)")

    explain = page(signed_in.get(reverse("whatsapp:change")))
    started = signed_in.post(reverse("whatsapp:change"), {"mode": "manual"}, follow=True)
    listing = followed(started)
    connected.refresh_from_db()
    assert connected.status == AccountStatus.DELETING_TEMPLATES
    progress = page(signed_in.get(OVERVIEW))
    polled = page(signed_in.get(reverse("whatsapp:change_progress"), HTTP_HX_REQUEST="true"))
    first = followed(
        signed_in.post(reverse("whatsapp:change_template_delete"), {"name": "invoice_notice"}, follow=True)
    )
    connected.refresh_from_db()
    assert connected.status == AccountStatus.DELETING_TEMPLATES
    last = signed_in.post(reverse("whatsapp:change_template_delete"), {"name": "payment_thanks"}, follow=True)

    assert "Delete the templates here, not in Meta" in explain
    assert 'value="automatic"' in explain and 'value="manual"' in explain
    assert "invoice_notice" in listing and "payment_thanks" in listing
    assert 'data-remaining="2"' in progress and "hx-trigger" in progress
    assert 'data-remaining="2"' in polled and "<html" not in polled
    assert "invoice_notice" not in first.split("Templates still at Meta")[1] and "payment_thanks" in first
    assert last.redirect_chain[-1][0] == OVERVIEW
    pending = page(last)
    assert "Every template was deleted" in pending
    assert 'class="badge badge-setup_pending"' in pending and 'name="waba_id"' in pending
    connected.refresh_from_db()
    assert connected.status == AccountStatus.SETUP_PENDING

    new = signed_in.post(
        reverse("whatsapp:connect"), {"waba_id": NEW_WABA_ID, "app_id": APP_ID, "access_token": NEW_TOKEN}, follow=True
    )

    assert "is connected" in followed(new)
    connected.refresh_from_db()
    assert connected.status == AccountStatus.DISCONNECTED
    assert WhatsAppAccount.objects.get(organization=org, status=AccountStatus.CONNECTED).waba_id == NEW_WABA_ID


def test_a_change_of_account_can_be_cancelled(signed_in: Client, connected: WhatsAppAccount) -> None:
    signed_in.post(reverse("whatsapp:change"), {"mode": "manual"})

    html = followed(signed_in.post(reverse("whatsapp:change_cancel"), follow=True))

    connected.refresh_from_db()
    assert connected.status == AccountStatus.CONNECTED
    assert "The change was cancelled" in html


def test_automatic_deletion_shows_progress_until_the_task_is_done_then_setup_pending(
    signed_in: Client, connected: WhatsAppAccount, meta_waba: SandboxBusinessAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whatsapp import tasks

    sandbox_services.template_create(
        account=meta_waba,
        data={
            "name": "invoice_notice",
            "language": "en",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi"}],
        },
    )
    enqueued: list[int] = []
    monkeypatch.setattr(tasks.account_templates_delete, "delay", enqueued.append)  # no broker in this test

    started = followed(signed_in.post(reverse("whatsapp:change"), {"mode": "automatic"}, follow=True))
    polled = page(signed_in.get(reverse("whatsapp:change_progress"), HTTP_HX_REQUEST="true"))
    tasks.account_templates_delete.apply(args=enqueued)  # what the worker does
    done = signed_in.get(reverse("whatsapp:change_progress"), HTTP_HX_REQUEST="true")

    assert enqueued == [connected.pk]
    assert "The templates are being deleted" in started and 'data-remaining="1"' in started
    assert 'data-remaining="1"' in polled
    assert done.status_code == 204 and done["HX-Refresh"] == "true"
    connected.refresh_from_db()
    assert connected.status == AccountStatus.SETUP_PENDING
    assert "Setup pending" in page(signed_in.get(OVERVIEW))


# --- A refused access token ------------------------------------------------------------------------


def test_a_paused_account_says_so_and_a_new_token_meta_accepts_resumes_sending(
    signed_in: Client, connected: WhatsAppAccount, meta_waba: SandboxBusinessAccount
) -> None:
    from whatsapp.client import CloudAPIError
    from whatsapp.services.accounts import account_token_refused

    make_message(connected, status=MessageStatus.QUEUED)
    make_message(connected, status=MessageStatus.QUEUED)
    refusal = CloudAPIError("Invalid OAuth access token", code=190, http_status=401)
    account_token_refused(account=connected, error=refusal)
    SandboxBusinessAccount.objects.filter(pk=meta_waba.pk).update(access_token=NEW_TOKEN)  # regenerated at Meta

    html = page(signed_in.get(OVERVIEW))
    assert "data-token-refused" in html and "2 messages wait in the queue" in html
    assert "<details" in html and 'id="wa-token" open' in html

    wrong = signed_in.post(
        reverse("whatsapp:token_replace"), {"access_token": "EAANotTheRightOne000000000000000000000"}
    )
    assert wrong.status_code == 400
    assert wrong.context["token_form"].errors["access_token"]
    connected.refresh_from_db()
    assert connected.token_refused_at is not None and connected.access_token == TOKEN
    assert "EAANotTheRightOne" not in wrong.content.decode()  # never echoed

    response = signed_in.post(reverse("whatsapp:token_replace"), {"access_token": NEW_TOKEN}, follow=True)

    assert response.redirect_chain[-1][0] == OVERVIEW
    assert "The waiting messages are going out." in response.content.decode()
    connected.refresh_from_db()
    assert (connected.token_refused_at, connected.access_token, connected.check_error) == (None, NEW_TOKEN, "")
    assert "data-token-refused" not in response.content.decode()


def test_only_an_administrator_replaces_the_token(client: Client, org: Any) -> None:
    account = make_account(org)
    member_client(client, org, "Staff")

    response = client.post(reverse("whatsapp:token_replace"), {"access_token": NEW_TOKEN})

    assert response.status_code in (302, 403)
    account.refresh_from_db()
    assert account.access_token == FACTORY_TOKEN
