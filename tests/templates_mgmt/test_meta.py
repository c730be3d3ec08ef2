"""The create request Meta receives: NAMED format, examples for every variable, a media handle."""

from typing import Any

import httpx2
import pytest

from books.models import Organization
from templates_mgmt.attachments import sample_document
from templates_mgmt.choices import AttachmentMode, HeaderType, Module
from templates_mgmt.meta import header_handle_upload, header_sample, template_payload_build
from tests.books.factories import make_organization
from tests.templates_mgmt.factories import PNG, make_template, static_file
from whatsapp.client import CloudAPI

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization() -> Organization:
    return make_organization(name="Acme Books")


def test_the_payload_carries_named_examples_formatted_for_the_organization(organization: Organization) -> None:
    template = make_template(
        organization, header_type=HeaderType.TEXT, header_text="Invoice {{invoice_number}}", attachment_mode=""
    )

    payload = template_payload_build(template)

    assert payload == {
        "name": "invoice_notice",
        "language": "en",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Invoice {{invoice_number}}",
                "example": {"header_text_named_params": [{"param_name": "invoice_number", "example": "INV-000001"}]},
            },
            {
                "type": "BODY",
                "text": template.body,
                "example": {
                    "body_text_named_params": [
                        {"param_name": "customer_name", "example": "Ravi Traders"},
                        {"param_name": "invoice_number", "example": "INV-000001"},
                        {"param_name": "invoice_total", "example": "₹1,18,000.00"},
                        {"param_name": "due_date", "example": "16/04/2026"},
                    ]
                },
            },
            {"type": "FOOTER", "text": "Acme Books, Mumbai"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "View invoice",
                        "url": "https://books.example.com/i/{{1}}",
                        "example": ["https://books.example.com/i/INV-000001"],
                    },
                    {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+912240001234"},
                ],
            },
        ],
    }


def test_a_body_without_fields_has_no_example(organization: Organization) -> None:
    template = make_template(
        organization, header_type=HeaderType.NONE, body="Thank you for your payment.", footer="", buttons=[]
    )

    assert template_payload_build(template)["components"] == [{"type": "BODY", "text": "Thank you for your payment."}]


def test_a_media_header_needs_a_handle(organization: Organization) -> None:
    template = make_template(organization)

    with pytest.raises(ValueError, match="header_handle"):
        template_payload_build(template)
    header = template_payload_build(template, header_handle="4::abc")["components"][0]

    assert header == {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::abc"]}}


def test_a_dynamic_header_is_reviewed_with_the_sample_pdf_and_a_static_one_with_its_file(
    organization: Organization,
) -> None:
    dynamic = make_template(organization)
    static = make_template(
        organization,
        name="new_price_list",
        module=Module.CUSTOMERS,
        header_type=HeaderType.IMAGE,
        attachment_mode=AttachmentMode.STATIC,
        attachment=static_file(PNG, "banner.png"),
        body="Dear {{customer_name}}, our new price list starts next month for all customers.",
        buttons=[],
    )

    assert header_sample(dynamic) == (sample_document(), "sample_document.pdf", "application/pdf")
    assert sample_document().startswith(b"%PDF-")
    assert header_sample(static) == (PNG, "banner.png", "image/png")


def test_the_header_sample_goes_through_the_resumable_upload(organization: Organization) -> None:
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        if request.url.path.endswith("/uploads"):
            return httpx2.Response(200, json={"id": "upload:MTphdHRhY2htZW50?sig=abc"})
        return httpx2.Response(200, json={"h": "4::aW1hZ2UvanBlZw=="})

    api = CloudAPI(
        "EAATestToken00000000000000000000", base_url="https://graph.test", transport=httpx2.MockTransport(handler)
    )
    handle = header_handle_upload(template=make_template(organization), api=api, app_id="123456")

    assert handle == "4::aW1hZ2UvanBlZw=="
    session: Any = requests[0]
    assert session.url.params["file_type"] == "application/pdf"
    assert session.url.params["file_name"] == "sample_document.pdf"
    assert requests[1].content == sample_document()
