"""Clients, request bodies and documents the API tests start from."""

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from books.kinds import KINDS, KindSpec
from books.models import Contact, Document, Organization
from tests.books.factories import make_document

KIND_PARAMS = [pytest.param(spec, id=spec.api_resource) for spec in KINDS.values()]

ID_FIELDS = {
    "invoice": "invoice_id",
    "salesorder": "salesorder_id",
    "estimate": "estimate_id",
    "retainerinvoice": "retainerinvoice_id",
    "creditnote": "creditnote_id",
    "salesreceipt": "salesreceipt_id",
    "customerpayment": "payment_id",
    "bill": "bill_id",
    "vendorpayment": "payment_id",
}


def client_for(user: AbstractBaseUser) -> APIClient:
    """A client that authenticates as ``user`` with a token, as integrators do."""
    client = APIClient()
    client.default_format = "json"  # the API takes JSON bodies only
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def line_items(*rates: str) -> list[dict[str, Any]]:
    return [
        {"name": f"Item {i}", "quantity": "2", "rate": rate, "tax_percentage": "18"} for i, rate in enumerate(rates)
    ]


def valid_body(spec: KindSpec, contact: Contact, **extra: Any) -> dict[str, Any]:
    """The smallest body that creates a document of ``spec`` for ``contact``."""
    body: dict[str, Any] = {f"{spec.party}_id": contact.pk}
    if spec.has_lines:
        body["line_items"] = line_items("1500.00")
    if spec.is_payment:
        body["amount"] = "100.00"
    return {**body, **extra}


def make_any(organization: Organization, spec: KindSpec, **kwargs: Any) -> Document:
    """An issued document of any kind (payments get an amount)."""
    if spec.is_payment:
        kwargs.setdefault("amount", Decimal("100.00"))
    return make_document(organization, kind=spec.kind, **kwargs)


def make_overdue_invoice(organization: Organization, **kwargs: Any) -> Document:
    today = organization.today()
    return make_document(
        organization, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=10), **kwargs
    )
