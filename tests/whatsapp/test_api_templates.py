"""Message templates through the REST API: /api/v1/whatsapp/templates and /api/v1/whatsapp/modules.

Meta is the Cloud API sandbox on ``live_server``; its approval webhooks reach
``/webhooks/whatsapp/`` signed and are applied by Celery running eagerly in the live server.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from books.services.organizations import membership_add
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate, ModuleSetting
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_organization
from tests.templates_mgmt.factories import approve, make_template
from tests.whatsapp.factories import make_sandbox_account
from whatsapp import client as client_module
from whatsapp.models import WhatsAppAccount
from whatsapp.sandbox import delivery
from whatsapp.sandbox.models import SandboxTemplate
from whatsapp.services import templates as template_services

from .factories import make_account

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "EAATemplatesApiToken00000000000000000000000"
WABA_ID = "104455667788456"
APP_ID = "205566778899456"
URL = "/api/v1/whatsapp/templates"
MODULES = "/api/v1/whatsapp/modules"

BODY = {
    "name": "invoice_ready",
    "language": "en",
    "category": "UTILITY",
    "module": "invoices",
    "header_type": "document",
    "attachment_mode": "dynamic",
    "body": "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} is ready. Thank you.",
    "footer": "Acme Books",
    "buttons": [
        {"type": "url", "text": "View invoice", "url": "https://books.example.com/i/{{invoice_number}}"},
        {"type": "phone_number", "text": "Call us", "phone_number": "+91 22 4000 1234"},
    ],
}


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def live(sandbox_live: str, celery_eager: None) -> str:
    return sandbox_live


@pytest.fixture
def user() -> Any:
    return UserFactory()


@pytest.fixture
def org(user: Any) -> Any:
    return make_organization(user=user, role="Admin")


@pytest.fixture
def account(org: Any) -> WhatsAppAccount:
    return make_sandbox_account(org, waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


@pytest.fixture
def api(user: Any, org: Any) -> APIClient:
    return client_for(user)


def created(api: APIClient, **changes: Any) -> dict[str, Any]:
    response = api.post(URL, {**BODY, **changes})
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_submit_approve_by_webhook_then_enable_and_default(
    api: APIClient, account: WhatsAppAccount, org: Any
) -> None:
    draft = created(api)
    assert (draft["status"], draft["meta_id"], draft["is_usable"]) == ("DRAFT", "", False)
    assert draft["buttons"][0]["url"] == "https://books.example.com/i/{{1}}"

    submitted = api.post(f"{URL}/{draft['id']}/submit").json()
    assert submitted["status"] == "PENDING" and submitted["meta_id"]

    delivery.flush()  # Meta's verdict, by the signed webhook

    approved = api.get(f"{URL}/{draft['id']}").json()
    assert (approved["status"], approved["is_usable"]) == ("APPROVED", True)
    enabled = api.put(MODULES, [{"module": "invoices", "enabled": True}])
    assert enabled.status_code == 200
    assert {"module": "invoices", "label": "Invoices", "enabled": True, "approved_templates": 1} in enabled.json()
    assert api.post(f"{URL}/{draft['id']}/default").json()["is_default"] is True


def test_broken_rules_are_400_field_errors_and_nothing_is_saved(api: APIClient, account: WhatsAppAccount) -> None:
    response = api.post(
        URL,
        {
            **BODY,
            "name": "Invoice Ready",
            "body": "{{customer_name}} {{invoice_number}}",
            "footer": "Thanks 🙏",
            "buttons": [{"type": "url", "text": "Pay", "url": "ftp://x"}],
        },
    )

    assert response.status_code == 400
    errors = response.json()
    assert set(errors) >= {"name", "body", "footer", "buttons"}
    assert errors["footer"] == ["The footer can't contain emoji."]
    assert not MessageTemplate.objects.exists()


def test_modules_cannot_be_enabled_without_an_approved_template_and_nothing_changes(
    api: APIClient, account: WhatsAppAccount, org: Any
) -> None:
    approve(make_template(org, waba_id=WABA_ID))

    response = api.put(MODULES, [{"module": "invoices", "enabled": True}, {"module": "quotes", "enabled": True}])

    assert response.status_code == 400
    assert "Quotes can be enabled once WhatsApp has approved one of its templates." in response.json()["enabled"]
    assert not ModuleSetting.objects.filter(enabled=True).exists()
    assert api.put(MODULES, {"module": "invoices", "enabled": True}).status_code == 200


def test_a_rejected_template_carries_reason_and_recommendation_and_is_edited_then_resubmitted(
    api: APIClient, account: WhatsAppAccount
) -> None:
    draft = created(
        api,
        header_type="none",
        attachment_mode="",
        body="Dear {{customer_name}}, REJECT_ME invoice {{invoice_number}} is ready for you to view today.",
    )
    api.post(f"{URL}/{draft['id']}/submit")
    delivery.flush()

    rejected = api.get(f"{URL}/{draft['id']}").json()
    assert (rejected["status"], rejected["status_reason"]) == ("REJECTED", "PROMOTIONAL")
    assert "promotional" in rejected["rejection_recommendation"]

    edited = api.patch(f"{URL}/{draft['id']}", {"body": rejected["body"].replace("REJECT_ME ", "")})
    assert edited.status_code == 200, edited.json()
    assert api.post(f"{URL}/{draft['id']}/submit").json()["status"] == "PENDING"


def test_an_approved_template_is_not_edited_in_place(api: APIClient, account: WhatsAppAccount, org: Any) -> None:
    template = approve(make_template(org, waba_id=WABA_ID))

    response = api.patch(f"{URL}/{template.pk}", {"footer": "Changed"})

    assert response.status_code == 400
    assert "clone" in response.json()["non_field_errors"][0]


def test_delete_reaches_deleted_and_a_draft_is_simply_removed(api: APIClient, account: WhatsAppAccount) -> None:
    sent = created(api)
    api.post(f"{URL}/{sent['id']}/submit")
    delivery.flush()
    draft = created(api, name="just_a_draft")

    deleted = api.delete(f"{URL}/{sent['id']}")
    removed = api.delete(f"{URL}/{draft['id']}")

    assert deleted.status_code == 200 and deleted.json()["status"] == "DELETED"
    assert SandboxTemplate.objects.get(template_id=sent["meta_id"] or deleted.json()["meta_id"]).status == "DELETED"
    assert removed.status_code == 204
    assert not MessageTemplate.objects.filter(pk=draft["id"]).exists()
    assert api.get(URL, {"status": "deleted"}).json()["results"][0]["name"] == "invoice_ready"


def test_sync_picks_up_a_template_made_on_meta_s_side_across_pages(
    api: APIClient, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("invoice_one", "invoice_two"):
        api.post(f"{URL}/{created(api, name=name)['id']}/submit")
    meta = client_module.CloudAPI(TOKEN)
    meta.create_template(
        WABA_ID,
        {
            "name": "legacy_reminder",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {
                    "type": "BODY",
                    "text": "Hello {{1}}, invoice {{2}} is still open. Please pay it this week.",
                    "example": {"body_text": [["Ravi", "INV-1"]]},
                }
            ],
        },
    )
    # No flush: the sandbox's webhook about it has not arrived, only sync can find it.
    monkeypatch.setattr(template_services, "SYNC_PAGE_SIZE", 2)

    result = api.post(f"{URL}/sync")

    assert result.status_code == 200
    assert result.json()["created"] == 1
    legacy = api.get(URL, {"language": "en_US"}).json()["results"]
    assert [(row["name"], row["module"], row["status"]) for row in legacy] == [("legacy_reminder", "", "PENDING")]


def test_clone_takes_a_new_name_and_submits_the_copy(api: APIClient, account: WhatsAppAccount) -> None:
    original = created(api)

    response = api.post(f"{URL}/{original['id']}/clone", {"name": "invoice_ready_v2"})

    assert response.status_code == 201
    assert (response.json()["name"], response.json()["status"]) == ("invoice_ready_v2", "PENDING")
    assert api.post(f"{URL}/{original['id']}/clone", {"name": "invoice_ready_v2"}).status_code == 400


def test_the_list_filters_and_its_query_count_does_not_grow(api: APIClient, account: WhatsAppAccount, org: Any) -> None:
    approve(make_template(org, waba_id=WABA_ID, name="approved_one"))
    make_template(org, waba_id=WABA_ID, name="draft_one")
    make_template(
        org,
        waba_id=WABA_ID,
        name="quote_one",
        module="quotes",
        body="Dear {{customer_name}}, quote {{quote_number}} is ready for you to review.",
        buttons=[],
        header_type="none",
        attachment_mode="",
    )

    def names(**params: str) -> list[str]:
        return [row["name"] for row in api.get(URL, params).json()["results"]]

    assert names(module="invoices") == ["approved_one", "draft_one"]
    assert names(status="approved") == ["approved_one"]
    assert names(module="quotes", language="en") == ["quote_one"]
    with CaptureQueriesContext(connection) as few:
        api.get(URL)
    for index in range(3):
        make_template(org, waba_id=WABA_ID, name=f"more_{index}")
    with CaptureQueriesContext(connection) as more:
        api.get(URL)
    assert len(more) == len(few)


def test_a_staff_member_gets_403_and_changes_nothing(org: Any, account: WhatsAppAccount) -> None:
    template = approve(make_template(org, waba_id=WABA_ID))
    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")
    api = client_for(staff)

    assert api.get(URL).status_code == 403
    assert api.get(MODULES).status_code == 403
    assert api.post(URL, BODY).status_code == 403
    assert api.post(f"{URL}/{template.pk}/default").status_code == 403
    assert api.delete(f"{URL}/{template.pk}").status_code == 403
    assert api.put(MODULES, {"module": "invoices", "enabled": True}).status_code == 403
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED and not template.is_default


def test_another_organization_s_template_is_a_404(api: APIClient, account: WhatsAppAccount) -> None:
    other = make_organization(name="Other Books")
    theirs = make_template(other, waba_id=make_account(other).waba_id)

    assert api.get(f"{URL}/{theirs.pk}").status_code == 404
    assert api.delete(f"{URL}/{theirs.pk}").status_code == 404
    assert api.post(f"{URL}/{theirs.pk}/submit").status_code == 404
    assert MessageTemplate.objects.get(pk=theirs.pk).status == TemplateStatus.DRAFT


def test_session_authenticated_writes_need_the_csrf_token(user: Any, account: WhatsAppAccount) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post(URL, BODY, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not MessageTemplate.objects.exists()


def test_meta_not_answering_is_a_400_with_the_hint(api: APIClient, org: Any) -> None:
    make_account(org)
    with override_settings(WHATSAPP_GRAPH_URL="http://127.0.0.1:9/graph", WHATSAPP_SANDBOX_ENABLED=False):
        response = api.post(f"{URL}/sync")

    assert response.status_code == 400
    assert response.json()["non_field_errors"][0]
