"""Templates for tests: built through the services (so every rule applies), approved by hand.

``approve`` stands in for Meta: it stores the components the hub would submit, with the status
Meta would report, without a network call. Tests of the real round trip use the sandbox.
"""

import datetime
import itertools
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile

from books.choices import DocumentKind
from books.models import Contact, Document, Organization
from books.services.documents import LineInput
from templates_mgmt.choices import AttachmentMode, ButtonType, HeaderType, Module, TemplateCategory, TemplateStatus
from templates_mgmt.meta import template_components_build
from templates_mgmt.models import MessageTemplate
from templates_mgmt.services import template_create
from tests.books.factories import make_contact, make_document

WABA_ID = "104200000000001"
PDF = b"%PDF-1.4\n% a test attachment\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64

INVOICE_BODY = (
    "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} is due on {{due_date}}. "
    "Please pay on time to avoid late fees."
)
_ids = itertools.count(1)


def invoice_template_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "invoice_notice",
        "language": "en",
        "category": TemplateCategory.UTILITY,
        "module": Module.INVOICES,
        "header_type": HeaderType.DOCUMENT,
        "attachment_mode": AttachmentMode.DYNAMIC,
        "body": INVOICE_BODY,
        "footer": "Acme Books, Mumbai",
        "buttons": [
            {"type": ButtonType.URL, "text": "View invoice", "url": "https://books.example.com/i/{{invoice_number}}"},
            {"type": ButtonType.PHONE_NUMBER, "text": "Call us", "phone_number": "+91 22 4000 1234"},
        ],
    }
    fields.update(overrides)
    return fields


def make_template(organization: Organization, *, waba_id: str = WABA_ID, **overrides: Any) -> MessageTemplate:
    """A valid DRAFT (an invoice notice with a PDF header and two buttons unless told otherwise)."""
    return template_create(organization=organization, waba_id=waba_id, **invoice_template_fields(**overrides))


def approve(template: MessageTemplate, *, meta_id: str | None = None) -> MessageTemplate:
    """What a submission then Meta's approval leave on the row."""
    template.components = template_components_build(template, header_handle="4::aGVhZGVy")
    template.meta_id = meta_id or f"99{next(_ids):013d}"
    template.status = TemplateStatus.APPROVED
    template.save()
    return template


def static_file(content: bytes = PDF, name: str = "price-list.pdf") -> ContentFile:
    return ContentFile(content, name=name)


def make_invoice(organization: Organization, *, contact: Contact | None = None, **overrides: Any) -> Document:
    """INV-000001 of ₹1,00,000.00 dated 01/04/2026, due 16/04/2026, to Ravi Traders."""
    contact = contact or make_contact(organization, name="Ravi Traders")
    fields: dict[str, Any] = {
        "kind": DocumentKind.INVOICE,
        "contact": contact,
        "date": datetime.date(2026, 4, 1),
        "due_date": datetime.date(2026, 4, 16),
        "lines": [LineInput("Consulting", Decimal("1"), Decimal("100000.00"))],
    }
    fields.update(overrides)
    return make_document(organization, **fields)
