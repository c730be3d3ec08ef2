"""The WhatsApp and template admin: pages render, staff see only their organizations, webhooks are
for superusers, the access token is never shown and can be replaced, messages are read-only."""

import html
import json

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from books.services.organizations import membership_add
from templates_mgmt.choices import TemplateCategory, TemplateStatus
from templates_mgmt.models import MessageTemplate
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from whatsapp.choices import AccountStatus, Audience, Category, MessageStatus
from whatsapp.models import Channel, Message, PhoneNumber, WebhookEvent, WhatsAppAccount

from .factories import make_account, make_message

pytestmark = pytest.mark.django_db

SCOPED_MODELS = [WhatsAppAccount, PhoneNumber, Channel, Message, MessageTemplate]
ALL_MODELS = [*SCOPED_MODELS, WebhookEvent]
OWN_TOKEN = "EAAOwnTradersSecretToken1111111111111111"
FOREIGN_TOKEN = "EAAForeignTradersSecretToken22222222222222"
NEW_TOKEN = "EAANewlyIssuedSystemUserToken333333333333"


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def add(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def stored_token(account: WhatsAppAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM whatsapp_whatsappaccount WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def rows():
    """Two organizations, each with an account, numbers, channels, a failed message and a template."""
    data = {}
    for name, token in (("Own Traders", OWN_TOKEN), ("Foreign Traders", FOREIGN_TOKEN)):
        organization = make_organization(name=name)
        account = make_account(organization, token=token)
        customer = make_contact(organization, name=f"{name} customer")
        message = make_message(
            account,
            contact=customer,
            document=make_document(organization, contact=customer),
            template_name="invoice_notification",
            status=MessageStatus.FAILED,
            failed_at=timezone.now(),
            error_code=131026,
            error_title="Message undeliverable",
            payload={"template": {"name": "invoice_notification"}},
        )
        template = MessageTemplate.objects.create(
            organization=organization,
            waba_id=account.waba_id,
            meta_id=f"9{account.pk:09d}",
            name="invoice_notification",
            language="en",
            category=TemplateCategory.UTILITY,
            status=TemplateStatus.APPROVED,
            components=[{"type": "BODY", "text": "Hello {{1}}"}],
        )
        data[name] = {
            "organization": organization,
            "account": account,
            "number": account.default_phone_number,
            "channel": account.channels.first(),
            "message": message,
            "template": template,
        }
    data["event"] = WebhookEvent.objects.create(
        body=json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]}),
        body_sha256="a" * 64,
    )
    return data


@pytest.fixture
def staff_client(client, rows):
    """A staff user (not superuser) who is Admin of "Own Traders" only."""
    user = UserFactory(username="org-admin", is_staff=True)
    membership_add(organization=rows["Own Traders"]["organization"], user=user, role_name="Admin")
    client.force_login(user)
    return client


def row_of(model, data) -> object:
    key = {
        WhatsAppAccount: "account",
        PhoneNumber: "number",
        Channel: "channel",
        Message: "message",
        MessageTemplate: "template",
    }[model]
    return data[key]


def test_every_whatsapp_and_template_model_is_registered():
    assert set(ALL_MODELS) <= set(admin.site._registry)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_for_a_superuser(admin_client, rows, model):
    obj = rows["event"] if model is WebhookEvent else row_of(model, rows["Foreign Traders"])

    assert admin_client.get(changelist(model)).status_code == 200
    assert admin_client.get(change(obj)).status_code == 200


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_a_scoped_staff_user_sees_only_their_organizations_rows(staff_client, rows, model):
    own, foreign = rows["Own Traders"], rows["Foreign Traders"]

    response = staff_client.get(changelist(model))

    assert response.status_code == 200
    visible = set(response.context["cl"].queryset)
    assert row_of(model, own) in visible
    assert {obj.organization for obj in visible} == {own["organization"]}
    assert staff_client.get(change(row_of(model, own))).status_code == 200
    foreign_page = staff_client.get(change(row_of(model, foreign)))
    assert foreign_page.status_code == 302 and foreign_page.url == reverse("admin:index")


def test_webhook_events_are_for_superusers_only(staff_client, admin_client, rows):
    assert staff_client.get(changelist(WebhookEvent)).status_code == 403
    assert staff_client.get(change(rows["event"])).status_code in (302, 403)
    assert "webhookevent" not in staff_client.get(reverse("admin:index")).text

    page = html.unescape(admin_client.get(change(rows["event"])).text)
    assert '{\n  "object": "whatsapp_business_account",' in page  # pretty-printed
    assert "_save" not in page  # read-only


def test_choices_of_a_channel_are_limited_to_the_users_organizations(staff_client, rows):
    form = staff_client.get(add(Channel)).context["adminform"].form

    assert list(form.fields["account"].queryset) == [rows["Own Traders"]["account"]]
    assert {n.organization for n in form.fields["phone_number"].queryset} == {rows["Own Traders"]["organization"]}


# --- The access token --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "staff"])
def test_the_access_token_is_on_no_page(admin_client, staff_client, rows, who):
    client = admin_client if who == "superuser" else staff_client
    account = rows["Own Traders"]["account"]
    pages = [
        changelist(WhatsAppAccount),
        change(account),
        add(WhatsAppAccount),
        reverse("admin:whatsapp_whatsappaccount_history", args=[account.pk]),
        changelist(PhoneNumber),
        changelist(Message),
    ]
    ciphertext = stored_token(account)

    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert OWN_TOKEN not in response.text, url
        assert ciphertext not in response.text and "fernet:" not in response.text, url
    assert "Stored, encrypted" in client.get(change(account)).text


def account_post_data(client, account: WhatsAppAccount, **changes) -> dict:
    """The change form as the browser posts it, with the inline's management form."""
    response = client.get(change(account))
    data = {
        "name": account.name,
        "waba_id": account.waba_id,
        "app_id": account.app_id,
        "status": account.status,
        "default_phone_number": account.default_phone_number_id,
        "customer_same_number": "on",
        "new_access_token": "",
    }
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
    return {**data, **changes}


def test_a_new_access_token_replaces_the_stored_one(staff_client, rows):
    account = rows["Own Traders"]["account"]

    response = staff_client.post(change(account), account_post_data(staff_client, account, new_access_token=NEW_TOKEN))

    assert response.status_code == 302, response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.access_token == NEW_TOKEN
    assert stored_token(account).startswith("fernet:") and NEW_TOKEN not in stored_token(account)
    assert all(NEW_TOKEN not in entry.change_message for entry in LogEntry.objects.all())
    assert NEW_TOKEN not in staff_client.get(change(account)).text


def test_a_new_access_token_lifts_a_refused_token_s_pause(staff_client, rows):
    account = rows["Own Traders"]["account"]
    WhatsAppAccount.objects.filter(pk=account.pk).update(token_refused_at=timezone.now())
    account.refresh_from_db()
    kept = staff_client.post(change(account), account_post_data(staff_client, account, name="Own Traders WA"))
    assert kept.status_code == 302
    account.refresh_from_db()
    assert account.token_refused_at is not None  # another change does not resume sending

    response = staff_client.post(change(account), account_post_data(staff_client, account, new_access_token=NEW_TOKEN))

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.access_token, account.token_refused_at) == (NEW_TOKEN, None)


def test_an_empty_token_field_keeps_the_stored_token(staff_client, rows):
    account = rows["Own Traders"]["account"]
    before = stored_token(account)

    response = staff_client.post(change(account), account_post_data(staff_client, account, name="Own Traders WA"))

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Own Traders WA"
    assert account.access_token == OWN_TOKEN and stored_token(account) == before


def test_a_token_with_spaces_is_refused_without_being_quoted(staff_client, rows):
    account = rows["Own Traders"]["account"]
    bad = "EAASecret WithASpace0000000000000"

    response = staff_client.post(change(account), account_post_data(staff_client, account, new_access_token=bad))

    assert response.status_code == 200
    assert "new_access_token" in response.context["adminform"].form.errors
    assert bad not in response.text and "EAASecret" not in response.text
    account.refresh_from_db()
    assert account.access_token == OWN_TOKEN


def test_an_account_added_in_the_admin_needs_a_token_and_stores_it_encrypted(admin_client, rows):
    organization = make_organization(name="New Traders")
    data = {
        "organization": organization.pk,
        "name": "New Traders WA",
        "waba_id": "190000000000001",
        "app_id": "290000000000001",
        "status": AccountStatus.CONNECTED,
        "customer_same_number": "on",
    }

    without = admin_client.post(add(WhatsAppAccount), {**data, "new_access_token": ""})
    assert without.status_code == 200 and "new_access_token" in without.context["adminform"].form.errors

    response = admin_client.post(add(WhatsAppAccount), {**data, "new_access_token": NEW_TOKEN})

    assert response.status_code == 302
    account = WhatsAppAccount.objects.get(waba_id="190000000000001")
    assert account.access_token == NEW_TOKEN and stored_token(account).startswith("fernet:")
    assert account.connected_by is not None


def test_a_second_live_account_for_an_organization_is_refused_on_the_form(staff_client, rows):
    own = rows["Own Traders"]
    old = make_account(own["organization"], status=AccountStatus.DISCONNECTED, numbers=0)

    response = staff_client.post(
        change(old), account_post_data(staff_client, old, status=AccountStatus.CONNECTED, default_phone_number="")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()
    old.refresh_from_db()
    assert old.status == AccountStatus.DISCONNECTED


# --- Messages, channels, templates -------------------------------------------------------------------


def test_a_message_is_read_only_and_its_page_shows_the_fix_hint(staff_client, rows):
    message = rows["Own Traders"]["message"]

    page = staff_client.get(change(message))

    assert page.status_code == 200
    assert "can&#x27;t receive WhatsApp messages" in page.text or "can't receive WhatsApp messages" in page.text
    assert "Message undeliverable" in page.text
    assert "_save" not in page.text
    assert staff_client.get(add(Message)).status_code == 403
    listing = staff_client.get(changelist(Message)).text
    assert "Failed" in listing and "+91 98200 12345" in listing and "invoice_notification" in listing


def test_a_template_is_read_only(staff_client, rows):
    template = rows["Own Traders"]["template"]

    page = staff_client.get(change(template))

    assert page.status_code == 200 and "Hello {{1}}" in page.text and "_save" not in page.text
    assert staff_client.get(add(MessageTemplate)).status_code == 403


def test_a_channel_takes_only_a_verified_number_of_its_own_account(staff_client, rows):
    own = rows["Own Traders"]
    account = own["account"]
    Channel.objects.filter(account=account, audience=Audience.CUSTOMER, category=Category.MARKETING).delete()
    unverified = PhoneNumber.objects.create(
        organization=own["organization"],
        account=account,
        phone_number_id="999",
        display_phone_number="+91 22 4000 9999",
    )
    other_account_number = make_account(make_organization(name="Third"), numbers=1).default_phone_number
    data = {"account": account.pk, "audience": Audience.CUSTOMER, "category": Category.MARKETING}

    refused = staff_client.post(add(Channel), {**data, "phone_number": unverified.pk})
    assert "phone_number" in refused.context["adminform"].form.errors
    foreign = staff_client.post(add(Channel), {**data, "phone_number": other_account_number.pk})
    assert "phone_number" in foreign.context["adminform"].form.errors
    not_a_channel = staff_client.post(
        add(Channel), {**data, "audience": Audience.VENDOR, "phone_number": own["number"].pk}
    )
    assert "category" in not_a_channel.context["adminform"].form.errors

    response = staff_client.post(add(Channel), {**data, "phone_number": own["number"].pk})

    assert response.status_code == 302
    channel = Channel.objects.get(account=account, audience=Audience.CUSTOMER, category=Category.MARKETING)
    assert channel.organization == own["organization"]
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages
