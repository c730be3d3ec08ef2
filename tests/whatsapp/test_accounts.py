"""Connecting an organization's WhatsApp Business Account, its numbers, channels and change of account.

Every call to Meta goes through the real client to the Cloud API sandbox on ``live_server``
(``WHATSAPP_GRAPH_URL`` points there), so these tests exercise the same HTTP, error shapes and
fix hints the hub meets in production. The sandbox's own state (its numbers, templates, OTP
codes) stands for Meta's and is set up and read through its services and models. Webhook
delivery is manual: nothing is POSTed to the hub.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from books.models import Organization
from templates_mgmt.models import MessageTemplate
from tests.books.factories import UserFactory, make_organization
from tests.whatsapp.factories import make_message
from whatsapp import tasks
from whatsapp.choices import AccountStatus, Audience, Category
from whatsapp.client import CloudAPI, CloudAPIError
from whatsapp.fix_hints import fix_hint
from whatsapp.models import Message, PhoneNumber, WhatsAppAccount
from whatsapp.sandbox import services as sandbox
from whatsapp.sandbox.management.commands.sandbox_setup import number_specs
from whatsapp.sandbox.models import SandboxBusinessAccount, SandboxPhoneNumber, SandboxTemplate
from whatsapp.selectors.accounts import account_get_live, account_remote_templates, channel_list, channel_number
from whatsapp.services import accounts as services

WABA_ID = "102290129340398"
APP_ID = "209876543210123"
TOKEN = "EAASandboxAccountsTestToken0000000000000000"
OTHER_WABA_ID = "102290129340555"
OTHER_APP_ID = "209876543210555"
OTHER_TOKEN = "EAASandboxAccountsOtherToken000000000000000"


# --- The sandbox as Meta ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sandbox_on(sandbox_live: str) -> None:
    """The sandbox on the live server is Meta for every test here."""


def meta_account(waba_id: str = WABA_ID, app_id: str = APP_ID, token: str = TOKEN) -> SandboxBusinessAccount:
    """A business account at "Meta" with three numbers, the first two verified."""
    return sandbox.business_account_setup(
        waba_id=waba_id,
        app_id=app_id,
        access_token=token,
        name="Acme Books",
        verified_name="Acme Books",
        numbers=number_specs(waba_id),
        subscribed=False,
    )


def meta_template(waba: SandboxBusinessAccount, name: str, language: str = "en") -> SandboxTemplate:
    return sandbox.template_create(
        account=waba,
        data={
            "name": name,
            "language": language,
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Your statement is ready."}],
        },
    )


@pytest.fixture
def waba(transactional_db: None) -> SandboxBusinessAccount:
    return meta_account()


@pytest.fixture
def org(transactional_db: None) -> Organization:
    return make_organization(name="Acme Books", user=UserFactory())


@pytest.fixture
def account(org: Organization, waba: SandboxBusinessAccount) -> WhatsAppAccount:
    return services.account_connect(organization=org, waba_id=WABA_ID, app_id=APP_ID, access_token=TOKEN)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The account ids the automatic template deletion was enqueued for (not run: tests run it)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.account_templates_delete, "delay", calls.append)
    return calls


def numbers_by_status(account: WhatsAppAccount) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for number in PhoneNumber.objects.filter(account=account).order_by("phone_number_id"):
        result.setdefault(number.code_verification_status, []).append(number.phone_number_id)
    return result


def verified_pair(account: WhatsAppAccount) -> tuple[PhoneNumber, PhoneNumber]:
    """The default number (the first verified one Meta listed) and the other verified number."""
    default = account.default_phone_number
    other = account.phone_numbers.filter(code_verification_status="VERIFIED").exclude(pk=default.pk).get()
    return default, other


def local_template(org: Organization, name: str, language: str = "en", waba_id: str = WABA_ID) -> MessageTemplate:
    return MessageTemplate.objects.create(
        organization=org, waba_id=waba_id, name=name, language=language, category="UTILITY", status="APPROVED"
    )


# --- Connecting -----------------------------------------------------------------------------------


def test_connecting_stores_the_numbers_the_first_verified_as_default_and_three_channels_on_it(
    org: Organization, waba: SandboxBusinessAccount
) -> None:
    user = UserFactory()

    account = services.account_connect(
        organization=org, waba_id=WABA_ID, app_id=APP_ID, access_token=f"  {TOKEN} ", user=user
    )

    account.refresh_from_db()
    specs = number_specs(WABA_ID)  # the order Meta lists them in: the first two are verified
    verified, unverified = sorted(spec.phone_number_id for spec in specs[:2]), specs[2]
    assert (account.status, account.waba_id, account.app_id, account.name) == (
        "connected",
        WABA_ID,
        APP_ID,
        "Acme Books",
    )
    assert account.access_token == TOKEN
    assert account.connected_by == user
    assert numbers_by_status(account) == {"VERIFIED": verified, "NOT_VERIFIED": [unverified.phone_number_id]}
    default = account.default_phone_number
    assert default.phone_number_id == specs[0].phone_number_id
    assert default.display_phone_number.startswith("+91 22 ")
    assert (default.quality_rating, default.status, default.throughput_level) == ("GREEN", "CONNECTED", "STANDARD")
    assert (default.messaging_limit_tier, default.can_send_message, default.synced_at is not None) == (
        "TIER_2K",
        "AVAILABLE",
        True,
    )
    assert sorted((c.audience, c.category, c.phone_number_id) for c in channel_list(account=account)) == [
        ("customer", "marketing", default.pk),
        ("customer", "utility", default.pk),
        ("vendor", "utility", default.pk),
    ]
    assert channel_number(account=account, audience=Audience.VENDOR, category=Category.UTILITY) == default
    assert SandboxBusinessAccount.objects.get(waba_id=WABA_ID).subscribed  # Meta now sends its webhooks
    assert account_get_live(organization=org) == account


def test_the_access_token_is_encrypted_at_rest_and_in_no_repr(account: WhatsAppAccount) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM whatsapp_whatsappaccount WHERE id = %s", [account.pk])
        [stored] = cursor.fetchone()

    assert TOKEN not in stored
    assert TOKEN not in repr(account) + str(account)


def test_a_refused_token_is_an_access_token_error_with_the_fix_hint_and_nothing_is_saved(
    org: Organization, waba: SandboxBusinessAccount, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "EAAWrongTokenForTheSandbox000000000000000000"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ValidationError) as refused:
        services.account_connect(organization=org, waba_id=WABA_ID, app_id=APP_ID, access_token=wrong)

    [message] = refused.value.message_dict["access_token"]
    assert fix_hint(190) in message
    assert "190" in message
    assert wrong not in str(refused.value) + repr(refused.value) + caplog.text
    assert not WhatsAppAccount.objects.exists()
    assert not PhoneNumber.objects.exists()
    assert not SandboxBusinessAccount.objects.get(waba_id=WABA_ID).subscribed


def test_ids_must_be_digits_and_the_token_given_before_meta_is_asked(org: Organization) -> None:
    with pytest.raises(ValidationError) as refused:
        services.account_connect(organization=org, waba_id="WABA-1", app_id="", access_token="   ")
    with pytest.raises(ValidationError) as spaced:
        services.account_connect(organization=org, waba_id="1", app_id="2", access_token="EAA token with spaces")

    assert set(refused.value.message_dict) == {"waba_id", "app_id", "access_token"}
    assert set(spaced.value.message_dict) == {"access_token"}


def test_a_waba_the_token_cannot_see_is_an_error_on_waba_id(org: Organization, waba: SandboxBusinessAccount) -> None:
    with pytest.raises(ValidationError) as refused:
        services.account_connect(organization=org, waba_id="999999999999999", app_id=APP_ID, access_token=TOKEN)

    assert "doesn't exist" in refused.value.message_dict["waba_id"][0]
    assert not WhatsAppAccount.objects.exists()


def test_an_app_id_not_subscribed_to_the_waba_is_an_error_on_app_id(
    org: Organization, waba: SandboxBusinessAccount
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.account_connect(organization=org, waba_id=WABA_ID, app_id="123456", access_token=TOKEN)

    assert set(refused.value.message_dict) == {"app_id"}
    assert not WhatsAppAccount.objects.exists()


def test_a_waba_live_in_another_organization_is_refused_without_naming_it(account: WhatsAppAccount) -> None:
    other = make_organization(name="Globex Secret Holdings", user=UserFactory())

    with pytest.raises(ValidationError) as refused:
        services.account_connect(organization=other, waba_id=WABA_ID, app_id=APP_ID, access_token=TOKEN)

    [message] = refused.value.message_dict["waba_id"]
    assert "another organization" in message
    assert "Acme" not in message
    assert not WhatsAppAccount.objects.filter(organization=other).exists()


def test_a_second_account_is_refused_while_one_is_connected(account: WhatsAppAccount, org: Organization) -> None:
    meta_account(OTHER_WABA_ID, OTHER_APP_ID, OTHER_TOKEN)

    with pytest.raises(ValidationError) as refused:
        services.account_connect(organization=org, waba_id=OTHER_WABA_ID, app_id=OTHER_APP_ID, access_token=OTHER_TOKEN)

    assert "change the account first" in refused.value.messages[0]
    assert list(WhatsAppAccount.objects.values_list("waba_id", flat=True)) == [WABA_ID]


def test_the_token_appears_in_no_log_line_of_a_connection(
    org: Organization, waba: SandboxBusinessAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    account = services.account_connect(organization=org, waba_id=WABA_ID, app_id=APP_ID, access_token=TOKEN)
    services.account_test_connection(account=account)
    services.phone_numbers_sync(account=account)

    assert "connected to organization" in caplog.text
    assert TOKEN not in caplog.text


# --- Test connection and numbers ------------------------------------------------------------------


def test_test_connection_records_a_refusal_with_its_hint_and_a_later_success_clears_it(
    account: WhatsAppAccount, waba: SandboxBusinessAccount
) -> None:
    SandboxBusinessAccount.objects.filter(pk=waba.pk).update(access_token="EAARevokedAtMeta0000000000000000000")

    refused = services.account_test_connection(account=account)
    refused_at = refused.checked_at
    SandboxBusinessAccount.objects.filter(pk=waba.pk).update(access_token=TOKEN)
    fine = services.account_test_connection(account=account)

    assert refused_at is not None
    assert (fine.check_error_code, fine.check_error) == (None, "")
    assert fine.checked_at > refused_at
    account.refresh_from_db()
    assert account.check_error == ""


def test_a_passing_connection_test_resumes_sending_a_refused_token_paused(
    account: WhatsAppAccount, waba: SandboxBusinessAccount
) -> None:
    SandboxBusinessAccount.objects.filter(pk=waba.pk).update(access_token="EAARevokedAtMeta0000000000000000000")
    refusal = CloudAPIError("Invalid OAuth access token", code=190, http_status=401)
    assert services.account_token_refused(account=account, error=refusal)
    assert not services.account_token_refused(account=account, error=refusal)  # paused once

    services.account_test_connection(account=account)  # still refused: still paused
    account.refresh_from_db()
    assert account.token_refused_at is not None
    SandboxBusinessAccount.objects.filter(pk=waba.pk).update(access_token=TOKEN)  # Meta took it back
    services.account_test_connection(account=account)

    account.refresh_from_db()
    assert (account.token_refused_at, account.check_error) == (None, "")


def test_test_connection_keeps_the_error_code_and_hint(account: WhatsAppAccount, waba: SandboxBusinessAccount) -> None:
    SandboxBusinessAccount.objects.filter(pk=waba.pk).update(access_token="EAARevokedAtMeta0000000000000000000")

    services.account_test_connection(account=account)

    account.refresh_from_db()
    assert (account.check_error_code, account.check_error) == (190, fix_hint(190))
    assert account.status == AccountStatus.CONNECTED


def test_sync_keeps_a_number_meta_no_longer_lists_as_removed_with_its_messages(
    account: WhatsAppAccount, waba: SandboxBusinessAccount
) -> None:
    gone = account.phone_numbers.get(code_verification_status="NOT_VERIFIED")
    message = make_message(account)
    Message.objects.filter(pk=message.pk).update(phone_number=gone)
    SandboxPhoneNumber.objects.filter(phone_number_id=gone.phone_number_id).delete()
    SandboxPhoneNumber.objects.filter(account=waba).update(quality_rating="YELLOW")

    listed = services.phone_numbers_sync(account=account)

    gone.refresh_from_db()
    assert gone.status == "REMOVED"
    assert Message.objects.get(pk=message.pk).phone_number == gone
    assert len(listed) == 2
    assert {number.quality_rating for number in listed} == {"YELLOW"}
    with pytest.raises(ValidationError) as refused:
        services.phone_request_code(phone_number=gone)
    assert "no longer lists" in refused.value.messages[0]


def test_a_code_by_sms_verifies_a_number_and_a_wrong_code_is_refused(
    account: WhatsAppAccount, waba: SandboxBusinessAccount
) -> None:
    number = account.phone_numbers.get(code_verification_status="NOT_VERIFIED")

    services.phone_request_code(phone_number=number, code_method="SMS", language="es_ES")
    code = SandboxPhoneNumber.objects.get(phone_number_id=number.phone_number_id).otp_code
    with pytest.raises(ValidationError) as wrong:
        services.phone_verify_code(phone_number=number, code="000000" if code != "000000" else "111111")
    number.refresh_from_db()
    still_unverified = number.code_verification_status
    verified = services.phone_verify_code(phone_number=number, code=f"{code[:3]}-{code[3:]}")

    [message] = wrong.value.message_dict["code"]
    assert "wrong or has expired" in message
    assert "136025" in message
    assert still_unverified == "NOT_VERIFIED"
    assert verified.code_verification_status == "VERIFIED"
    assert PhoneNumber.objects.get(pk=number.pk).is_verified


def test_a_code_by_voice_call_is_accepted_and_other_methods_are_not(account: WhatsAppAccount) -> None:
    number = account.phone_numbers.get(code_verification_status="NOT_VERIFIED")

    services.phone_request_code(phone_number=number, code_method="voice")
    with pytest.raises(ValidationError) as refused:
        services.phone_request_code(phone_number=number, code_method="EMAIL")
    with pytest.raises(ValidationError) as letters:
        services.phone_verify_code(phone_number=number, code="12a456")

    assert SandboxPhoneNumber.objects.get(phone_number_id=number.phone_number_id).otp_method == "VOICE"
    assert set(refused.value.message_dict) == {"code_method"}
    assert set(letters.value.message_dict) == {"code"}


# --- Default number and channels ------------------------------------------------------------------


def test_channels_refuse_unverified_numbers_and_numbers_of_another_account(account: WhatsAppAccount) -> None:
    unverified = account.phone_numbers.get(code_verification_status="NOT_VERIFIED")
    verified = account.default_phone_number
    stranger = make_organization(name="Globex", user=UserFactory())
    foreign = PhoneNumber.objects.create(
        organization=stranger,
        account=WhatsAppAccount.objects.create(
            organization=stranger, waba_id="555", app_id="556", access_token="EAAForeign"
        ),
        phone_number_id="777",
        display_phone_number="+1 555 0100",
        code_verification_status="VERIFIED",
    )

    with pytest.raises(ValidationError) as refused:
        services.channels_save(
            account=account,
            customer_same_number=False,
            customer_utility=verified,
            customer_marketing=unverified,
            vendor_utility=foreign,
        )
    with pytest.raises(ValidationError) as missing:
        services.channels_save(
            account=account, customer_same_number=False, customer_utility=None, vendor_utility=verified
        )

    assert set(refused.value.message_dict) == {"customer_marketing", "vendor_utility"}
    assert "verify" in refused.value.message_dict["customer_marketing"][0]
    assert set(missing.value.message_dict) == {"customer_utility", "customer_marketing"}
    assert {channel.phone_number_id for channel in channel_list(account=account)} == {verified.pk}


def test_channels_send_marketing_from_its_own_number_or_from_the_utility_number(
    account: WhatsAppAccount,
) -> None:
    first, second = verified_pair(account)

    separate = services.channels_save(
        account=account,
        customer_same_number=False,
        customer_utility=first,
        customer_marketing=second,
        vendor_utility=second,
    )
    marketing_separate = channel_number(account=account, audience=Audience.CUSTOMER, category=Category.MARKETING)
    services.channels_save(
        account=account,
        customer_same_number=True,
        customer_utility=second,
        customer_marketing=first,
        vendor_utility=first,
    )
    account.refresh_from_db()

    assert len(separate) == 3
    assert marketing_separate == second
    assert account.customer_same_number
    assert channel_number(account=account, audience=Audience.CUSTOMER, category=Category.MARKETING) == second
    assert channel_number(account=account, audience=Audience.CUSTOMER, category=Category.UTILITY) == second
    assert channel_number(account=account, audience=Audience.VENDOR, category=Category.UTILITY) == first
    # No channel row for a category: the default number sends it.
    assert channel_number(account=account, audience=Audience.CUSTOMER, category=Category.SERVICE) == first


def test_changing_the_default_number_moves_the_channels_that_used_it(account: WhatsAppAccount) -> None:
    first, second = verified_pair(account)
    unverified = account.phone_numbers.get(code_verification_status="NOT_VERIFIED")
    services.channels_save(
        account=account,
        customer_same_number=False,
        customer_utility=first,
        customer_marketing=second,
        vendor_utility=first,
    )

    with pytest.raises(ValidationError) as refused:
        services.default_number_set(account=account, phone_number=unverified)
    services.default_number_clear(account=account)
    cleared = channel_number(account=account, audience=Audience.CUSTOMER, category=Category.UTILITY)
    services.default_number_set(account=account, phone_number=second)

    account.refresh_from_db()
    assert set(refused.value.message_dict) == {"phone_number"}
    assert cleared is None  # the channels that used the old default have no number until a new one is set
    assert account.default_phone_number == second
    assert sorted((c.audience, c.category, c.phone_number_id) for c in channel_list(account=account)) == [
        ("customer", "marketing", second.pk),
        ("customer", "utility", second.pk),
        ("vendor", "utility", second.pk),
    ]


def test_a_number_that_is_not_verified_sends_nothing(account: WhatsAppAccount) -> None:
    PhoneNumber.objects.filter(pk=account.default_phone_number_id).update(code_verification_status="EXPIRED")
    account.refresh_from_db()

    assert channel_number(account=account, audience=Audience.CUSTOMER, category=Category.UTILITY) is None


# --- Inactive and active --------------------------------------------------------------------------


def test_an_account_is_marked_inactive_then_active_again_and_only_from_the_right_state(
    account: WhatsAppAccount,
) -> None:
    paused = services.account_mark_inactive(account=account).status
    with pytest.raises(ValidationError):
        services.account_mark_inactive(account=account)
    resumed = services.account_mark_active(account=account).status
    with pytest.raises(ValidationError):
        services.account_mark_active(account=account)

    assert paused == AccountStatus.INACTIVE
    assert resumed == AccountStatus.CONNECTED
    assert WhatsAppAccount.objects.get(pk=account.pk).can_send


# --- Changing the business account ----------------------------------------------------------------


def test_changing_account_automatically_deletes_the_templates_at_meta_then_connects_the_new_one(
    account: WhatsAppAccount, org: Organization, waba: SandboxBusinessAccount, enqueued: list[int]
) -> None:
    for name, language in (("invoice_notice", "en"), ("invoice_notice", "es"), ("statement_ready", "en")):
        meta_template(waba, name, language)
        local_template(org, name, language)
    elsewhere = local_template(org, "invoice_notice", waba_id="123")
    message = make_message(account)

    started = services.account_change_start(account=account, mode="automatic")
    status_while_deleting = started.status
    tasks.account_templates_delete.apply(args=[account.pk]).get()

    account.refresh_from_db()
    assert status_while_deleting == AccountStatus.DELETING_TEMPLATES
    assert enqueued == [account.pk]
    assert set(SandboxTemplate.objects.filter(account=waba).values_list("status", flat=True)) == {"DELETED"}
    assert set(MessageTemplate.objects.filter(waba_id=WABA_ID).values_list("status", flat=True)) == {"DELETED"}
    assert MessageTemplate.objects.get(pk=elsewhere.pk).status == "APPROVED"
    assert account.status == AccountStatus.SETUP_PENDING

    meta_account(OTHER_WABA_ID, OTHER_APP_ID, OTHER_TOKEN)
    new = services.account_connect(
        organization=org, waba_id=OTHER_WABA_ID, app_id=OTHER_APP_ID, access_token=OTHER_TOKEN
    )

    old = WhatsAppAccount.objects.get(pk=account.pk)
    assert (old.status, old.disconnected_at is not None) == (AccountStatus.DISCONNECTED, True)
    assert account_get_live(organization=org) == new
    assert new.status == AccountStatus.CONNECTED
    kept = Message.objects.get(pk=message.pk)
    assert (kept.account_id, kept.phone_number_id) == (old.pk, old.default_phone_number_id)
    assert PhoneNumber.objects.filter(account=old).count() == 3


def test_the_automatic_deletion_run_twice_changes_nothing_more(
    account: WhatsAppAccount, org: Organization, waba: SandboxBusinessAccount, enqueued: list[int]
) -> None:
    meta_template(waba, "invoice_notice")
    local_template(org, "invoice_notice")
    services.account_change_start(account=account, mode="automatic")
    tasks.account_templates_delete.apply(args=[account.pk]).get()
    before = (
        list(SandboxTemplate.objects.values_list("pk", "status", "updated_at")),
        list(MessageTemplate.objects.values_list("pk", "status", "updated_at")),
        WhatsAppAccount.objects.values_list("status", "updated_at").get(pk=account.pk),
    )

    tasks.account_templates_delete.apply(args=[account.pk]).get()

    after = (
        list(SandboxTemplate.objects.values_list("pk", "status", "updated_at")),
        list(MessageTemplate.objects.values_list("pk", "status", "updated_at")),
        WhatsAppAccount.objects.values_list("status", "updated_at").get(pk=account.pk),
    )
    assert after == before
    assert after[2][0] == AccountStatus.SETUP_PENDING


def test_the_automatic_deletion_retries_a_temporary_meta_error(
    account: WhatsAppAccount, waba: SandboxBusinessAccount, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    meta_template(waba, "invoice_notice")
    real_delete = CloudAPI.delete_template
    attempts: list[str] = []

    def flaky_delete(self: CloudAPI, waba_id: str, name: str, **kwargs: Any) -> None:
        attempts.append(name)
        if len(attempts) == 1:
            raise CloudAPIError("Service temporarily unavailable", code=2, http_status=503, retryable=True)
        real_delete(self, waba_id, name, **kwargs)

    monkeypatch.setattr(CloudAPI, "delete_template", flaky_delete)
    services.account_change_start(account=account, mode="automatic")

    tasks.account_templates_delete.apply(args=[account.pk]).get()

    assert attempts == ["invoice_notice", "invoice_notice"]
    assert WhatsAppAccount.objects.get(pk=account.pk).status == AccountStatus.SETUP_PENDING


def test_a_template_meta_refuses_to_delete_stays_and_the_account_keeps_deleting(
    account: WhatsAppAccount, org: Organization, waba: SandboxBusinessAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta_template(waba, "invoice_notice")
    local_template(org, "invoice_notice")

    def refused(self: CloudAPI, waba_id: str, name: str, **kwargs: Any) -> None:
        raise CloudAPIError("Permission denied", code=200, http_status=403)

    monkeypatch.setattr(CloudAPI, "delete_template", refused)
    services.account_change_start(account=account, mode="manual")

    with pytest.raises(ValidationError) as stopped:
        services.account_templates_delete_all(account=account)

    account.refresh_from_db()
    assert "invoice_notice" in stopped.value.messages[0]
    assert not stopped.value.retryable
    assert account.status == AccountStatus.DELETING_TEMPLATES
    assert (account.check_error_code, account.check_error) == (200, fix_hint(200))
    assert MessageTemplate.objects.get(name="invoice_notice").status == "DELETION_FAILED"


def test_changing_account_manually_deletes_one_template_at_a_time(
    account: WhatsAppAccount, org: Organization, waba: SandboxBusinessAccount, enqueued: list[int]
) -> None:
    meta_template(waba, "invoice_notice", "en")
    meta_template(waba, "invoice_notice", "es")
    meta_template(waba, "statement_ready")
    local_template(org, "invoice_notice")
    local_template(org, "statement_ready")

    services.account_change_start(account=account, mode="manual")
    listed = [(template.name, template.language) for template in account_remote_templates(account=account)]
    services.account_template_delete(account=account, name="invoice_notice")
    account.refresh_from_db()
    after_first = account.status
    with pytest.raises(ValidationError) as unknown:
        services.account_template_delete(account=account, name="no_such_template")
    services.account_template_delete(account=account, name="statement_ready")

    account.refresh_from_db()
    assert enqueued == []
    assert listed == [("invoice_notice", "en"), ("invoice_notice", "es"), ("statement_ready", "en")]
    assert after_first == AccountStatus.DELETING_TEMPLATES
    assert set(unknown.value.message_dict) == {"name"}
    assert account.status == AccountStatus.SETUP_PENDING
    assert set(MessageTemplate.objects.values_list("status", flat=True)) == {"DELETED"}
    assert account_remote_templates(account=account) == []


def test_a_change_can_be_cancelled_and_blocks_connecting_and_channels_meanwhile(
    account: WhatsAppAccount, org: Organization, waba: SandboxBusinessAccount
) -> None:
    meta_template(waba, "invoice_notice")
    services.account_change_start(account=account, mode="manual")
    meta_account(OTHER_WABA_ID, OTHER_APP_ID, OTHER_TOKEN)

    with pytest.raises(ValidationError):
        services.account_connect(organization=org, waba_id=OTHER_WABA_ID, app_id=OTHER_APP_ID, access_token=OTHER_TOKEN)
    with pytest.raises(ValidationError) as no_channels:
        services.default_number_clear(account=account)
    checked = services.account_change_check(account=account)
    checked_status = checked.status
    cancelled = services.account_change_cancel(account=account)

    assert "being changed" in no_channels.value.messages[0]
    assert checked_status == AccountStatus.DELETING_TEMPLATES  # a template is still at Meta
    assert cancelled.status == AccountStatus.CONNECTED
    with pytest.raises(ValidationError):
        services.account_change_cancel(account=account)
    with pytest.raises(ValidationError) as mode:
        services.account_change_start(account=account, mode="later")
    assert set(mode.value.message_dict) == {"mode"}


# --- The command ----------------------------------------------------------------------------------


def test_the_connect_command_connects_once_then_only_syncs_the_numbers(
    org: Organization, waba: SandboxBusinessAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--organization", org.name, "--waba-id", WABA_ID, "--app-id", APP_ID, "--token", TOKEN]

    call_command("whatsapp_connect", *arguments)
    first = capsys.readouterr().out
    call_command("whatsapp_connect", *arguments)
    second = capsys.readouterr().out

    assert first.startswith("Connected Acme Books to WhatsApp Business Account")
    assert "(default)" in first
    assert "already connected" in second
    assert WhatsAppAccount.objects.filter(organization=org).count() == 1
    assert TOKEN not in first + second


def test_verifying_with_a_pin_registers_the_number_so_it_can_send(
    account: WhatsAppAccount, waba: SandboxBusinessAccount
) -> None:
    number = account.phone_numbers.get(code_verification_status="NOT_VERIFIED")
    services.phone_request_code(phone_number=number)
    remote = SandboxPhoneNumber.objects.get(phone_number_id=number.phone_number_id)

    services.phone_verify_code(phone_number=number, code=remote.otp_code, pin="135790")
    remote.refresh_from_db()
    with pytest.raises(ValidationError) as mismatch:
        services.phone_register(phone_number=number, pin="000000")

    assert remote.registered and remote.pin == "135790"
    assert PhoneNumber.objects.get(pk=number.pk).is_verified
    [message] = mismatch.value.message_dict["pin"]
    assert "did not register" in message and "PIN is wrong" in message
