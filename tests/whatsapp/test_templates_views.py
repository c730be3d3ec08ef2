"""Settings → Integrations → WhatsApp → Message templates, through the pages an administrator uses.

Meta is the Cloud API sandbox on ``live_server``; its approval webhooks really reach
``/webhooks/whatsapp/`` (signed) and are applied by Celery running eagerly inside the live server.
Webhook delivery is ``manual``: the test flushes it (``delivery.flush()``) when Meta would answer.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.html import escape

from books.services.organizations import membership_add
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import MessageTemplate, ModuleSetting
from tests.books.factories import UserFactory, make_organization
from tests.templates_mgmt.factories import approve, make_invoice, make_template
from tests.whatsapp.factories import make_sandbox_account
from whatsapp import client as client_module
from whatsapp.models import WhatsAppAccount
from whatsapp.sandbox import delivery
from whatsapp.sandbox.models import SandboxTemplate
from whatsapp.services import templates as template_services

from .factories import make_account

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "EAATemplatesViewsToken000000000000000000000"
WABA_ID = "104455667788123"
APP_ID = "205566778899123"

LIST = reverse("whatsapp:template_list")
NEW = reverse("whatsapp:template_new")
MODULES = reverse("whatsapp:template_modules")

INVOICE_FORM = {
    "module": "invoices",
    "name": "invoice_ready",
    "category": "UTILITY",
    "language": "en",
    "header_type": "document",
    "attachment_mode": "dynamic",
    "header_text": "",
    "body": "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} is ready. Thank you for "
    "your business.",
    "footer": "Acme Books, Mumbai",
    "button1_type": "url",
    "button1_text": "View invoice",
    "button1_url": "https://books.example.com/i/",
    "button1_suffix": "invoice_number",
    "button2_type": "",
    "button2_text": "",
}


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def live(sandbox_live: str, celery_eager: None) -> str:
    return sandbox_live


@pytest.fixture
def admin() -> Any:
    return UserFactory()


@pytest.fixture
def org(admin: Any) -> Any:
    return make_organization(user=admin)


@pytest.fixture
def account(live: str, org: Any) -> WhatsAppAccount:
    """The WABA at "Meta" (subscribed, so its webhooks come) and the hub's side of it."""
    return make_sandbox_account(org, waba_id=WABA_ID, app_id=APP_ID, token=TOKEN)


@pytest.fixture
def signed_in(client: Client, admin: Any, org: Any) -> Client:
    client.force_login(admin)
    return client


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def create(client: Client, **changes: Any) -> Any:
    return client.post(NEW, {**INVOICE_FORM, "action": "submit", **changes}, follow=True)


# --- Create → pending → approved by webhook → usable -----------------------------------------------


def test_a_template_is_created_submitted_approved_by_the_signed_webhook_and_the_module_enabled(
    signed_in: Client, account: WhatsAppAccount, org: Any
) -> None:
    html = page(create(signed_in))

    template = MessageTemplate.objects.get(organization=org, name="invoice_ready")
    assert template.status == TemplateStatus.PENDING and template.meta_id
    assert "submitted to WhatsApp for approval" in html and "Pending approval" in html
    assert template.buttons[0]["url"] == "https://books.example.com/i/{{1}}"

    delivery.flush()  # the sandbox's verdict, POSTed signed to /webhooks/whatsapp/

    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED
    listing = page(signed_in.get(LIST, {"module": "invoices", "status": "approved"}))
    assert 'data-template="invoice_ready"' in listing and 'data-template-status="APPROVED"' in listing

    enabled = page(signed_in.post(MODULES, {"module": "invoices", "enabled": "1"}, follow=True))
    assert "WhatsApp notifications are on for Invoices." in enabled
    assert ModuleSetting.objects.get(organization=org, module="invoices").enabled
    signed_in.post(reverse("whatsapp:template_default", args=[template.pk]))
    template.refresh_from_db()
    assert template.is_default and template.is_usable


def test_a_module_without_an_approved_template_cannot_be_enabled(signed_in: Client, account: WhatsAppAccount) -> None:
    html = page(signed_in.post(MODULES, {"module": "payment_reminders", "enabled": "1"}, follow=True))

    assert "Payment reminders can be enabled once WhatsApp has approved one of its templates." in html
    assert not ModuleSetting.objects.filter(module="payment_reminders", enabled=True).exists()


def test_a_template_saved_as_draft_is_not_sent_to_meta(signed_in: Client, account: WhatsAppAccount) -> None:
    html = page(create(signed_in, action="draft"))

    template = MessageTemplate.objects.get(name="invoice_ready")
    assert template.status == TemplateStatus.DRAFT and not template.meta_id
    assert "saved as a draft" in html
    assert not SandboxTemplate.objects.exists()


# --- Validation on the field -----------------------------------------------------------------------


def test_every_broken_rule_is_shown_on_its_field_and_nothing_is_saved(
    signed_in: Client, account: WhatsAppAccount
) -> None:
    response = signed_in.post(
        NEW,
        {
            **INVOICE_FORM,
            "name": "Invoice Ready",
            "body": "{{customer_name}} your invoice is ready",
            "footer": "Thanks 🙏",
            "button1_url": "books.example.com",
            "action": "submit",
        },
    )

    html = page(response)
    form = response.context["form"]
    assert "Use only lowercase letters, digits and underscores" in form.errors["name"][0]
    assert any("can't start or end with a dynamic field" in error for error in form.errors["body"])
    assert form.errors["footer"] == ["The footer can't contain emoji."]
    assert any("Button 1: enter a full website address" in error for error in form.errors["buttons"])
    assert "The template was not saved." in html
    assert not MessageTemplate.objects.exists()


def test_a_static_attachment_outside_customers_is_refused_on_the_attachment_field(
    signed_in: Client, account: WhatsAppAccount
) -> None:
    response = signed_in.post(NEW, {**INVOICE_FORM, "attachment_mode": "static", "action": "draft"})

    assert (
        "Static attachments can be used only in Customers templates"
        in response.context["form"].errors["attachment_mode"][0]
    )


# --- Rejected, deleted, synced ---------------------------------------------------------------------


def test_a_rejected_template_shows_the_reason_and_recommendation_then_is_resubmitted(
    signed_in: Client, account: WhatsAppAccount, org: Any
) -> None:
    create(signed_in, body="Dear {{customer_name}}, REJECT_ME invoice {{invoice_number}} is ready for you today.")
    delivery.flush()
    template = MessageTemplate.objects.get(name="invoice_ready")
    assert template.status == TemplateStatus.REJECTED

    detail = page(signed_in.get(reverse("whatsapp:template_detail", args=[template.pk])))
    assert "WhatsApp rejected this template." in detail
    assert "<span data-reason>PROMOTIONAL</span>" in detail
    assert template.rejection_recommendation and escape(template.rejection_recommendation) in detail
    listing = page(signed_in.get(LIST, {"module": "invoices", "status": "rejected"}))
    assert "PROMOTIONAL" in listing

    edited = {**INVOICE_FORM, "body": "Dear {{customer_name}}, invoice {{invoice_number}} is ready for you today."}
    signed_in.post(reverse("whatsapp:template_edit", args=[template.pk]), {**edited, "action": "submit"})
    template.refresh_from_db()
    assert template.status == TemplateStatus.PENDING
    delivery.flush()
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED


def test_delete_asks_first_then_reaches_deleted(signed_in: Client, account: WhatsAppAccount) -> None:
    create(signed_in)
    delivery.flush()
    template = MessageTemplate.objects.get(name="invoice_ready")
    url = reverse("whatsapp:template_delete", args=[template.pk])

    assert "permanent and cannot be undone" in page(signed_in.get(url))
    html = page(signed_in.post(url, follow=True))

    template.refresh_from_db()
    assert template.status == TemplateStatus.DELETED
    assert SandboxTemplate.objects.get(template_id=template.meta_id).status == "DELETED"
    assert "was deleted" in html
    assert "invoice_ready" in page(signed_in.get(LIST, {"module": "invoices", "status": "deleted"}))


def test_sync_picks_up_a_template_made_in_whatsapp_manager_across_pages(
    signed_in: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("invoice_one", "invoice_two"):
        create(signed_in, name=name)
    api = client_module.CloudAPI(TOKEN)
    api.create_template(
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
    monkeypatch.setattr(template_services, "SYNC_PAGE_SIZE", 2)  # three templates: two pages

    html = page(signed_in.post(reverse("whatsapp:template_sync"), {"module": "unassigned"}, follow=True))

    assert "Templates synced with Meta: 1 new" in html
    legacy = MessageTemplate.objects.get(name="legacy_reminder")
    assert (legacy.module, legacy.status, legacy.parameter_format) == ("", TemplateStatus.PENDING, "POSITIONAL")
    assert 'data-template="legacy_reminder"' in html  # listed under "Not assigned"


def test_clone_asks_a_new_name_and_submits_the_copy(signed_in: Client, account: WhatsAppAccount) -> None:
    create(signed_in)
    original = MessageTemplate.objects.get(name="invoice_ready")
    url = reverse("whatsapp:template_clone", args=[original.pk])
    assert 'value="invoice_ready_copy"' in page(signed_in.get(url))

    page(signed_in.post(url, {"name": "invoice_ready_v2", "submit": "on"}, follow=True))

    clone = MessageTemplate.objects.get(name="invoice_ready_v2")
    assert clone.status == TemplateStatus.PENDING and clone.body == original.body
    assert SandboxTemplate.objects.filter(name="invoice_ready_v2").exists()


def test_meta_not_answering_is_a_message_not_a_500(signed_in: Client, org: Any) -> None:
    make_account(org)
    with override_settings(WHATSAPP_GRAPH_URL="http://127.0.0.1:9/graph", WHATSAPP_SANDBOX_ENABLED=False):
        response = signed_in.post(reverse("whatsapp:template_sync"), follow=True)

    assert response.status_code == 200
    assert 'class="message message-error"' in response.content.decode()


# --- The preview -----------------------------------------------------------------------------------


def test_the_preview_shows_the_latest_invoice_s_values(signed_in: Client, account: WhatsAppAccount, org: Any) -> None:
    make_invoice(org)

    html = page(signed_in.post(reverse("whatsapp:template_preview"), INVOICE_FORM, headers={"HX-Request": "true"}))

    assert "Dear Ravi Traders, invoice INV-000001 for ₹1,00,000.00 is ready." in html
    assert "INV-000001.pdf" in html
    assert 'data-url="https://books.example.com/i/INV-000001"' in html
    assert "Values from INV-000001" in html


def test_without_a_document_the_preview_uses_the_catalogue_examples(
    signed_in: Client, account: WhatsAppAccount
) -> None:
    html = page(
        signed_in.post(reverse("whatsapp:template_preview"), {**INVOICE_FORM, "body": "Hi *{{customer_name}}*"})
    )

    assert "Example values" in html
    assert "<strong>" in html and "{{customer_name}}" not in html


def test_the_builder_offers_the_module_s_fields_and_refreshes_the_preview_with_htmx(
    signed_in: Client, account: WhatsAppAccount
) -> None:
    html = page(signed_in.get(NEW, {"module": "invoices"}))

    assert 'hx-trigger="keyup changed delay:400ms' in html
    assert reverse("whatsapp:template_preview") in html
    assert "{{invoice_number}}" in html and "data-insert-select" in html
    assert "js/templates.js" in html


# --- Access ----------------------------------------------------------------------------------------


def test_a_staff_member_gets_403_on_every_page_and_action(client: Client, org: Any) -> None:
    make_account(org)
    template = approve(make_template(org, waba_id=org.whatsapp_accounts.get().waba_id))
    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")
    client.force_login(staff)

    for name, args in (
        ("whatsapp:template_list", []),
        ("whatsapp:template_new", []),
        ("whatsapp:template_modules", []),
        ("whatsapp:template_detail", [template.pk]),
        ("whatsapp:template_edit", [template.pk]),
        ("whatsapp:template_clone", [template.pk]),
        ("whatsapp:template_delete", [template.pk]),
    ):
        assert client.get(reverse(name, args=args)).status_code == 403, name
    for name, args in (
        ("whatsapp:template_sync", []),
        ("whatsapp:template_preview", []),
        ("whatsapp:template_submit", [template.pk]),
        ("whatsapp:template_default", [template.pk]),
        ("whatsapp:template_delete", [template.pk]),
    ):
        assert client.post(reverse(name, args=args)).status_code == 403, name
    assert client.post(MODULES, {"module": "invoices", "enabled": "1"}).status_code == 403
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED and not template.is_default


def test_another_organization_s_template_is_a_404(signed_in: Client, org: Any) -> None:
    make_account(org)
    other = make_organization(name="Other Books")
    theirs = make_template(other, waba_id=make_account(other).waba_id)

    for name in ("whatsapp:template_detail", "whatsapp:template_edit", "whatsapp:template_clone"):
        assert signed_in.get(reverse(name, args=[theirs.pk])).status_code == 404, name
    assert signed_in.post(reverse("whatsapp:template_delete", args=[theirs.pk])).status_code == 404
    assert MessageTemplate.objects.filter(pk=theirs.pk).exists()


def test_a_post_without_the_csrf_token_is_refused(admin: Any, org: Any) -> None:
    account = make_account(org)
    template = approve(make_template(org, waba_id=account.waba_id))
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)

    assert browser.post(reverse("whatsapp:template_default", args=[template.pk])).status_code == 403
    assert browser.post(MODULES, {"module": "invoices", "enabled": "1"}).status_code == 403
    template.refresh_from_db()
    assert not template.is_default


def test_every_form_carries_the_csrf_token(signed_in: Client, org: Any) -> None:
    account = make_account(org)
    template = approve(make_template(org, waba_id=account.waba_id))

    for url in (
        LIST + "?module=invoices",
        NEW,
        MODULES,
        reverse("whatsapp:template_detail", args=[template.pk]),
        reverse("whatsapp:template_clone", args=[template.pk]),
    ):
        html = page(signed_in.get(url))
        assert html.count('method="post"') <= html.count('name="csrfmiddlewaretoken"'), url


def test_the_overview_links_to_the_templates(signed_in: Client, org: Any) -> None:
    make_account(org)

    html = page(signed_in.get(reverse("whatsapp:integration")))

    assert f'href="{LIST}"' in html and f'href="{MODULES}"' in html


def test_the_list_shows_every_module_and_filters_by_status(signed_in: Client, org: Any) -> None:
    account = make_account(org)
    approve(make_template(org, waba_id=account.waba_id, name="approved_one"))
    make_template(org, waba_id=account.waba_id, name="draft_one")

    everything = page(signed_in.get(LIST, {"module": "invoices"}))
    drafts = page(signed_in.get(LIST, {"module": "invoices", "status": "draft"}))

    assert all(f'data-module="{module}"' in everything for module in Module.values)
    assert "approved_one" in everything and "draft_one" in everything
    assert "draft_one" in drafts and "approved_one" not in drafts
