"""Lifecycle services without a network: Meta is a MockTransport, or not needed at all."""

import datetime
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction

from books.models import Organization
from templates_mgmt.choices import AttachmentMode, HeaderType, Module, TemplateStatus
from templates_mgmt.models import MessageTemplate, ModuleSetting
from templates_mgmt.selectors import module_is_enabled, module_state_list, template_default_get, template_list
from templates_mgmt.services import (
    module_setting_update,
    template_clone,
    template_delete,
    template_set_default,
    template_status_apply,
    template_submit,
    template_update,
)
from tests.books.factories import make_organization
from tests.templates_mgmt.factories import PDF, PNG, WABA_ID, approve, make_template, static_file
from whatsapp.client import CloudAPI

pytestmark = pytest.mark.django_db

APP_ID = "209876543210123"
Handler = Callable[[httpx2.Request], httpx2.Response]


@pytest.fixture
def organization() -> Organization:
    return make_organization(name="Acme Books")


def cloud(handler: Handler) -> CloudAPI:
    return CloudAPI(
        "EAATestToken00000000000000000000", base_url="https://graph.test", transport=httpx2.MockTransport(handler)
    )


def meta_error(code: int, subcode: int | None, title: str, details: str = "") -> httpx2.Response:
    error: dict[str, Any] = {"message": f"(#{code}) {title}", "type": "OAuthException", "code": code}
    if subcode:
        error.update(error_subcode=subcode, error_user_title=title, error_user_msg=details)
    return httpx2.Response(400, json={"error": error})


# --- Status updates from Meta (what the webhook processor calls) -----------------------------------


def meta_status_value(event: str, template: MessageTemplate, **extra: Any) -> dict[str, Any]:
    """``changes[].value`` of a ``message_template_status_update`` webhook, as Meta sends it."""
    return {
        "event": event,
        "message_template_id": int(template.meta_id),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": extra.pop("reason", "NONE"),
        "message_template_category": "UTILITY",
        **extra,
    }


def apply(template: MessageTemplate, value: dict[str, Any], at: datetime.datetime) -> MessageTemplate:
    detail = {k: v for k, v in value.items() if k in ("rejection_info", "other_info", "disable_info")}
    return template_status_apply(
        organization=template.organization,
        waba_id=template.waba_id,
        meta_id=str(value["message_template_id"]),
        name=value["message_template_name"],
        language=value["message_template_language"],
        event=value["event"],
        at=at,
        reason=value["reason"],
        category=value["message_template_category"],
        detail=detail,
    )


def test_status_updates_approve_reject_and_ignore_late_events(organization: Organization) -> None:
    template = make_template(organization)
    template.meta_id, template.status = "1234567890", TemplateStatus.PENDING
    template.save()
    t0 = datetime.datetime(2026, 11, 20, 10, 0, tzinfo=datetime.UTC)
    rejection = {"reason": "INVALID_FORMAT", "recommendation": "Remove adjacent variables."}

    rejected = apply(
        template,
        meta_status_value("REJECTED", template, reason="INVALID_FORMAT", rejection_info=rejection),
        t0,
    )
    assert (rejected.status, rejected.status_reason, rejected.rejection_recommendation) == (
        "REJECTED",
        "INVALID_FORMAT",
        "Remove adjacent variables.",
    )
    approved = apply(template, meta_status_value("APPROVED", template), t0 + datetime.timedelta(hours=1))
    late = apply(template, meta_status_value("REJECTED", template, reason="INVALID_FORMAT"), t0)

    assert (approved.status, approved.status_reason, approved.rejection_recommendation) == ("APPROVED", "", "")
    assert late.status == "APPROVED"
    paused = apply(
        template,
        meta_status_value("PAUSED", template, other_info={"title": "FIRST_PAUSE", "description": "Low quality"}),
        t0 + datetime.timedelta(days=2),
    )
    assert paused.status == "PAUSED" and paused.status_detail["other_info"]["title"] == "FIRST_PAUSE"


# --- Submission -----------------------------------------------------------------------------------


def test_submit_uploads_the_sample_creates_the_template_and_records_pending(organization: Organization) -> None:
    template = make_template(organization)
    calls: list[tuple[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append((request.method, request.url.path))
        if request.url.path.endswith("/uploads"):
            return httpx2.Response(200, json={"id": "upload:abc?sig=1"})
        if "upload:" in request.url.path:
            return httpx2.Response(200, json={"h": "4::handle"})
        body = json.loads(request.content)
        assert body["parameter_format"] == "NAMED"
        assert body["components"][0]["example"] == {"header_handle": ["4::handle"]}
        return httpx2.Response(200, json={"id": "594425479261596", "status": "PENDING", "category": "UTILITY"})

    submitted = template_submit(template=template, api=cloud(handler), app_id=APP_ID)

    assert (submitted.status, submitted.meta_id) == ("PENDING", "594425479261596")
    assert submitted.submitted_at is not None
    assert submitted.components[1]["type"] == "BODY"
    assert [method for method, _ in calls] == ["POST", "POST", "POST"]
    assert calls[-1][1].endswith(f"/{WABA_ID}/message_templates")


def test_a_refusal_by_meta_keeps_the_draft_and_explains_on_the_field(organization: Organization) -> None:
    template = make_template(organization, header_type=HeaderType.NONE, attachment_mode="")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return meta_error(100, 2388299, "Variables can't be at the start or end of the template", "Move {{1}}.")

    with pytest.raises(ValidationError) as refused:
        template_submit(template=template, api=cloud(handler), app_id=APP_ID)

    template.refresh_from_db()
    assert (template.status, template.meta_id) == (TemplateStatus.DRAFT, "")
    [message] = refused.value.message_dict["body"]
    assert message.startswith(
        "WhatsApp refused the template — Variables can't be at the start or end of the template: Move {{1}}."
    )


def test_a_retried_submit_adopts_the_template_an_earlier_attempt_created(organization: Organization) -> None:
    template = make_template(organization, header_type=HeaderType.NONE, attachment_mode="")

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            return meta_error(100, 2388024, "Content in this language already exists")
        listed = {
            "id": "777",
            "name": template.name,
            "language": "en",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": template.body}],
        }
        return httpx2.Response(200, json={"data": [listed]})

    submitted = template_submit(template=template, api=cloud(handler), app_id=APP_ID)

    assert (submitted.meta_id, submitted.status) == ("777", "APPROVED")


def test_a_duplicate_with_other_content_is_not_adopted(organization: Organization) -> None:
    template = make_template(organization, header_type=HeaderType.NONE, attachment_mode="")

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            return meta_error(100, 2388024, "Content in this language already exists")
        other = {"id": "778", "name": template.name, "language": "en", "components": [{"type": "BODY", "text": "Hi"}]}
        return httpx2.Response(200, json={"data": [other]})

    with pytest.raises(ValidationError) as refused:
        template_submit(template=template, api=cloud(handler), app_id=APP_ID)

    assert "Content in this language already exists" in refused.value.message_dict["name"][0]


def test_a_submitted_template_is_not_submitted_again(organization: Organization) -> None:
    template = approve(make_template(organization))

    with pytest.raises(ValidationError) as refused:
        template_submit(template=template, api=cloud(lambda r: httpx2.Response(500)), app_id=APP_ID)

    assert refused.value.message_dict[NON_FIELD_ERRORS] == ["“invoice_notice” was already sent to WhatsApp (Approved)."]


# --- Editing and cloning --------------------------------------------------------------------------


def test_a_draft_is_edited_and_checked_again(organization: Organization) -> None:
    template = make_template(organization)

    updated = template_update(template=template, footer="Acme Books, Pune")
    with pytest.raises(ValidationError) as refused:
        template_update(template=template, footer="Acme 😀")

    assert updated.footer == "Acme Books, Pune"
    assert refused.value.message_dict["footer"] == ["The footer can't contain emoji."]


def test_an_approved_template_is_cloned_not_edited(organization: Organization) -> None:
    template = approve(make_template(organization))

    with pytest.raises(ValidationError) as refused:
        template_update(template=template, footer="Other")

    assert refused.value.message_dict[NON_FIELD_ERRORS] == [
        "Only draft or rejected templates can be edited; clone “invoice_notice” to change it."
    ]


def test_a_rejected_template_keeps_its_name(organization: Organization) -> None:
    template = approve(make_template(organization))
    MessageTemplate.objects.filter(pk=template.pk).update(status=TemplateStatus.REJECTED)

    with pytest.raises(ValidationError) as refused:
        template_update(template=template, name="invoice_notice_v2")
    edited = template_update(template=template, body=template.body.replace("Please pay", "Kindly pay"))

    assert refused.value.message_dict["name"] == [
        "A template sent to WhatsApp keeps its name and language; clone it to use others."
    ]
    assert "Kindly pay" in edited.body and edited.status == TemplateStatus.REJECTED


def test_a_clone_is_a_new_draft_with_its_own_copy_of_the_file(organization: Organization) -> None:
    original = make_template(
        organization,
        name="price_list",
        module=Module.CUSTOMERS,
        attachment_mode=AttachmentMode.STATIC,
        attachment=static_file(PDF, "prices.pdf"),
        body="Dear {{customer_name}}, our price list for the new season is attached here.",
        buttons=[],
    )
    approve(original)

    clone = template_clone(template=original, name="price_list_v2")

    assert (clone.status, clone.name, clone.module, clone.body) == (
        "DRAFT",
        "price_list_v2",
        "customers",
        original.body,
    )
    assert clone.attachment.name != original.attachment.name
    assert clone.attachment.read() == PDF and clone.attachment_filename == "prices.pdf"
    with pytest.raises(ValidationError) as taken:
        template_clone(template=original, name="price_list")
    assert "already exists" in taken.value.message_dict["name"][0]


# --- Default and deletion -------------------------------------------------------------------------


def test_one_default_per_module(organization: Organization) -> None:
    first = approve(make_template(organization))
    second = approve(make_template(organization, name="invoice_notice_short"))

    template_set_default(template=first)
    template_set_default(template=second)

    assert list(MessageTemplate.objects.filter(is_default=True)) == [second]
    assert template_default_get(organization=organization, module=Module.INVOICES) == second
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageTemplate.objects.filter(pk=first.pk).update(is_default=True)


def test_only_an_approved_template_can_be_the_default(organization: Organization) -> None:
    with pytest.raises(ValidationError) as refused:
        template_set_default(template=make_template(organization))

    assert refused.value.message_dict[NON_FIELD_ERRORS] == ["Only an approved template can be the default."]


def test_a_draft_is_deleted_without_asking_meta(organization: Organization) -> None:
    template = make_template(organization)

    template_delete(template=template, api=cloud(lambda r: httpx2.Response(500)))

    assert not MessageTemplate.objects.exists()


def test_a_failed_deletion_can_be_retried(organization: Organization) -> None:
    template = approve(make_template(organization))
    template_set_default(template=template)
    answers = [httpx2.Response(503, text="busy"), httpx2.Response(200, json={"success": True})]
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return answers.pop(0)

    api = cloud(handler)
    with pytest.raises(ValidationError) as failed:
        template_delete(template=template, api=api)
    template.refresh_from_db()
    assert (template.status, template.is_default) == (TemplateStatus.DELETION_FAILED, False)
    assert failed.value.message_dict[NON_FIELD_ERRORS][0].startswith("WhatsApp couldn't delete the template")

    deleted = template_delete(template=template, api=api)

    assert deleted.status == TemplateStatus.DELETED
    assert seen[-1].method == "DELETE"
    assert dict(seen[-1].url.params) == {"name": "invoice_notice", "hsm_id": template.meta_id}


# --- Modules --------------------------------------------------------------------------------------


def test_a_module_is_enabled_only_with_an_approved_template(organization: Organization) -> None:
    make_template(organization)

    with pytest.raises(ValidationError) as refused:
        module_setting_update(organization=organization, module=Module.INVOICES, enabled=True)
    assert refused.value.message_dict["enabled"] == [
        "Invoices can be enabled once WhatsApp has approved one of its templates."
    ]
    approve(MessageTemplate.objects.get())
    module_setting_update(organization=organization, module=Module.INVOICES, enabled=True)

    assert module_is_enabled(organization=organization, module=Module.INVOICES)
    states = {state.module: state for state in module_state_list(organization=organization)}
    assert (states["invoices"].enabled, states["invoices"].approved_templates) == (True, 1)
    assert states["payment_reminders"].enabled is False
    module_setting_update(organization=organization, module=Module.INVOICES, enabled=False)
    assert not module_is_enabled(organization=organization, module=Module.INVOICES)
    assert ModuleSetting.objects.count() == 1


def test_the_list_hides_deleted_templates(organization: Organization) -> None:
    kept = make_template(organization)
    gone = approve(make_template(organization, name="old_notice"))
    MessageTemplate.objects.filter(pk=gone.pk).update(status=TemplateStatus.DELETED)

    assert list(template_list(organization=organization)) == [kept]
    assert list(template_list(organization=organization, status=TemplateStatus.DELETED)) == [gone]
    assert template_list(organization=make_organization(name="Other")).count() == 0


def test_a_static_image_is_checked_again_and_uploaded_as_the_header_sample(organization: Organization) -> None:
    template = make_template(
        organization,
        name="festive_offer",
        category="MARKETING",
        module=Module.CUSTOMERS,
        header_type=HeaderType.IMAGE,
        attachment_mode=AttachmentMode.STATIC,
        attachment=static_file(PNG, "diwali.png"),
        body="Dear {{customer_name}}, enjoy ten percent off all services booked this festive season.",
        buttons=[],
    )
    uploaded: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/uploads"):
            assert request.url.params["file_type"] == "image/png"
            return httpx2.Response(200, json={"id": "upload:xyz?sig=2"})
        if "upload:" in request.url.path:
            uploaded.append(request.content)
            return httpx2.Response(200, json={"h": "4::img"})
        assert json.loads(request.content)["components"][0] == {
            "type": "HEADER",
            "format": "IMAGE",
            "example": {"header_handle": ["4::img"]},
        }
        return httpx2.Response(200, json={"id": "31337", "status": "PENDING", "category": "MARKETING"})

    submitted = template_submit(template=template, api=cloud(handler), app_id=APP_ID)

    assert uploaded == [PNG]
    assert (submitted.status, submitted.category, submitted.attachment_mime) == ("PENDING", "MARKETING", "image/png")


def test_replacing_a_static_file_removes_the_old_one(organization: Organization) -> None:
    template = make_template(
        organization,
        name="price_list",
        module=Module.CUSTOMERS,
        attachment_mode=AttachmentMode.STATIC,
        attachment=static_file(PDF, "prices-2025.pdf"),
        body="Dear {{customer_name}}, our price list for the new season is attached here.",
        buttons=[],
    )
    old_name = template.attachment.name
    storage = template.attachment.storage

    updated = template_update(template=template, attachment=static_file(PDF, "prices-2026.pdf"))

    assert updated.attachment_filename == "prices-2026.pdf"
    assert storage.exists(updated.attachment.name) and not storage.exists(old_name)
