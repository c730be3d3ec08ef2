"""Rendering: the exact send ``components`` (outside-contracts §1), the refusals, and the preview."""

import copy
import datetime

import pytest

from books.choices import DocumentKind
from books.models import Organization
from books.selectors import statement_build
from templates_mgmt.choices import AttachmentMode, HeaderType, Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.placeholders import PARAMETER_FORMAT_NAMED, variables
from templates_mgmt.rendering import (
    TemplateNotSendable,
    template_components_render,
    template_preview,
    template_preview_render,
)
from templates_mgmt.services import template_assign
from tests.books.factories import make_contact, make_document, make_organization
from tests.templates_mgmt.factories import INVOICE_BODY, WABA_ID, approve, make_invoice, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization() -> Organization:
    return make_organization(name="Acme Books")


@pytest.fixture
def template(organization: Organization) -> MessageTemplate:
    return approve(make_template(organization))


def test_an_invoice_renders_exactly_the_documented_components(
    organization: Organization, template: MessageTemplate
) -> None:
    invoice = make_invoice(organization)

    components = template_components_render(template=template, document=invoice, media_id="1013859600285441")

    assert components == [
        {
            "type": "header",
            "parameters": [{"type": "document", "document": {"id": "1013859600285441", "filename": "INV-000001.pdf"}}],
        },
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "customer_name", "text": "Ravi Traders"},
                {"type": "text", "parameter_name": "invoice_number", "text": "INV-000001"},
                {"type": "text", "parameter_name": "invoice_total", "text": "₹1,00,000.00"},
                {"type": "text", "parameter_name": "due_date", "text": "16/04/2026"},
            ],
        },
        # The URL button's suffix; the phone button is static and is not sent.
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "INV-000001"}]},
    ]
    body_variables = variables(INVOICE_BODY, PARAMETER_FORMAT_NAMED)
    assert len(components[1]["parameters"]) == len(body_variables) == 4


def test_a_given_filename_and_an_unsafe_document_number(organization: Organization, template: MessageTemplate) -> None:
    invoice = make_invoice(organization)
    invoice.number = "INV/2026 04"

    named = template_components_render(template=template, document=invoice, media_id="m1", filename="Factura.pdf")
    default = template_components_render(template=template, document=invoice, media_id="m1")

    assert named[0]["parameters"][0]["document"]["filename"] == "Factura.pdf"
    assert default[0]["parameters"][0]["document"]["filename"] == "INV-2026-04.pdf"
    assert default[2]["parameters"][0]["text"] == "INV%2F2026%2004"  # a URL suffix is encoded


def test_a_text_header_with_a_field_and_no_buttons(organization: Organization) -> None:
    template = approve(
        make_template(
            organization,
            header_type=HeaderType.TEXT,
            header_text="Invoice {{invoice_number}}",
            attachment_mode="",
            buttons=[],
        )
    )

    components = template_components_render(template=template, document=make_invoice(organization))

    assert components[0] == {
        "type": "header",
        "parameters": [{"type": "text", "parameter_name": "invoice_number", "text": "INV-000001"}],
    }
    assert [c["type"] for c in components] == ["header", "body"]


def test_values_are_made_acceptable_to_meta(organization: Organization, template: MessageTemplate) -> None:
    contact = make_contact(organization, name="Ravi\nTraders     Pvt\tLtd")

    components = template_components_render(
        template=template, document=make_invoice(organization, contact=contact), media_id="m1"
    )

    assert components[1]["parameters"][0]["text"] == "Ravi Traders Pvt Ltd"


def test_an_unapproved_template_is_refused(organization: Organization) -> None:
    template = make_template(organization)

    with pytest.raises(TemplateNotSendable) as refused:
        template_components_render(template=template, document=make_invoice(organization), media_id="m1")

    assert refused.value.code == "not_approved"
    assert refused.value.message == (
        "“invoice_notice” isn't approved (status: Draft); only templates WhatsApp approved can be sent."
    )


def test_a_body_that_no_longer_matches_its_mapping_is_refused(
    organization: Organization, template: MessageTemplate
) -> None:
    # Meta's copy gained a variable (edited in WhatsApp Manager) that the hub never mapped.
    template.components[1]["text"] = "Dear {{customer_name}}, {{balance_due}} is due on invoice {{invoice_number}}."
    template.save()

    with pytest.raises(TemplateNotSendable) as refused:
        template_components_render(template=template, document=make_invoice(organization), media_id="m1")

    assert refused.value.code == "structure_mismatch"
    assert refused.value.message == (
        "“invoice_notice” no longer matches what WhatsApp approved (the message has 3 variables and 4 are mapped). "
        "Sync the templates and check its fields."
    )


def test_a_header_that_changed_kind_is_refused(organization: Organization, template: MessageTemplate) -> None:
    template.components[0] = {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["h"]}}
    template.save()

    with pytest.raises(TemplateNotSendable) as refused:
        template_components_render(template=template, document=make_invoice(organization), media_id="m1")

    assert refused.value.code == "structure_mismatch"
    assert "its header is image at WhatsApp and document here" in refused.value.message


def test_a_media_header_needs_its_media_id(organization: Organization, template: MessageTemplate) -> None:
    with pytest.raises(TemplateNotSendable) as refused:
        template_components_render(template=template, document=make_invoice(organization))

    assert refused.value.code == "missing_media"


def test_a_document_of_another_kind_is_refused(organization: Organization, template: MessageTemplate) -> None:
    quote = make_document(organization, kind=DocumentKind.ESTIMATE)

    with pytest.raises(TemplateNotSendable) as refused:
        template_components_render(template=template, document=quote, media_id="m1")

    assert refused.value.code == "wrong_source"
    assert refused.value.message == "“invoice_notice” belongs to Invoices and can't be sent for this document."


def test_a_statement_template_renders_balances(organization: Organization) -> None:
    template = approve(
        make_template(
            organization,
            name="statement_ready",
            module=Module.CUSTOMER_STATEMENTS,
            body="Dear {{customer_name}}, your statement for {{statement_period}} shows {{closing_balance}} due. "
            "Please review it at your convenience.",
            buttons=[],
        )
    )
    contact = make_contact(organization, name="Ravi Traders")
    make_invoice(organization, contact=contact)
    statement = statement_build(
        contact=contact, from_date=datetime.date(2026, 4, 1), to_date=datetime.date(2026, 4, 30)
    )

    components = template_components_render(template=template, statement=statement, media_id="m2")

    assert components[0]["parameters"][0]["document"]["filename"] == "statement_2026-04-01_2026-04-30.pdf"
    assert [p["text"] for p in components[1]["parameters"]] == [
        "Ravi Traders",
        "01/04/2026 – 30/04/2026",
        "₹1,00,000.00",
    ]


def test_a_positional_template_made_in_whatsapp_manager_renders_by_number(organization: Organization) -> None:
    template = MessageTemplate.objects.create(
        organization=organization,
        waba_id=WABA_ID,
        meta_id="5550001",
        name="legacy_invoice",
        language="en",
        category="UTILITY",
        status=TemplateStatus.APPROVED,
        parameter_format="POSITIONAL",
        components=[{"type": "BODY", "text": "Hi {{2}}, invoice {{1}} is ready for you to download today."}],
        body="Hi {{2}}, invoice {{1}} is ready for you to download today.",
    )
    template = template_assign(
        template=template, module=Module.INVOICES, field_mapping={"body": {"1": "invoice_number", "2": "customer_name"}}
    )

    components = template_components_render(template=template, document=make_invoice(organization))

    assert components == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "INV-000001"}, {"type": "text", "text": "Ravi Traders"}],
        }
    ]


def test_the_preview_shows_a_documents_values(organization: Organization, template: MessageTemplate) -> None:
    invoice = make_invoice(organization)

    text = template_preview_render(template=template, document=invoice)

    assert text == (
        "Dear Ravi Traders, invoice INV-000001 for ₹1,00,000.00 is due on 16/04/2026. "
        "Please pay on time to avoid late fees."
    )


def test_the_preview_of_a_draft_uses_examples(organization: Organization) -> None:
    template = make_template(organization, attachment_mode=AttachmentMode.DYNAMIC)

    preview = template_preview(template=template)

    assert preview.body.startswith("Dear Ravi Traders, invoice INV-000001 for ₹1,18,000.00 is due on 16/04/2026.")
    assert preview.footer == "Acme Books, Mumbai"
    assert preview.buttons == [
        {"type": "url", "text": "View invoice", "url": "https://books.example.com/i/INV-000001"},
        {"type": "phone_number", "text": "Call us", "phone_number": "+912240001234"},
    ]


def test_an_instance_rendered_before_renders_its_new_copy_after_a_change(
    organization: Organization, template: MessageTemplate
) -> None:
    """What depends on the template alone is worked out once per instance (a bulk send renders
    thousands with one); replacing the instance's Meta copy or mapping is seen at the next render."""
    invoice = make_invoice(organization)
    first = template_components_render(template=template, document=invoice, media_id="m1")
    assert template_components_render(template=template, document=invoice, media_id="m1") == first

    original = template.components
    components = copy.deepcopy(original)
    components[1]["text"] = "Dear {{customer_name}}, {{balance_due}} is due on invoice {{invoice_number}}."
    template.components = components  # as a sync from Meta replaces it
    with pytest.raises(TemplateNotSendable) as refused:
        template_components_render(template=template, document=invoice, media_id="m1")
    assert refused.value.code == "structure_mismatch"

    template.components = copy.deepcopy(original)
    assert template_components_render(template=template, document=invoice, media_id="m1") == first
