"""The foundation's figures: writing invoices through the service, printing them, listing them over the API.

Everything runs in this process: the API is called through Django's test client (URL routing,
middleware, token authentication, DRF serialization and JSON rendering, but no HTTP server or
network), so the figures are the application's own cost, not a server's throughput.
"""

import datetime
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from bench.timing import Result, measure
from books.choices import ContactType, DocumentKind
from books.models import Contact, Document, Organization
from books.pdf import document_pdf
from books.services.contacts import contact_create
from books.services.documents import LineInput, document_create
from books.services.organizations import organization_create

INVOICES_PATH = "/api/v1/invoices"

LINES = [
    LineInput("Statutory audit FY 2025-26", Decimal("1"), Decimal("48500.00"), Decimal("18")),
    LineInput("GST return filing", Decimal("3"), Decimal("2500.00"), Decimal("18")),
    LineInput("Courier and stationery", Decimal("1"), Decimal("350.00")),
]


@dataclass(frozen=True)
class Options:
    invoices: int = 300
    customers: int = 30
    pdfs: int = 20
    requests: int = 200


@dataclass
class Dataset:
    organization: Organization
    customers: list[Contact]
    token: str


def _seed_organization(*, customers: int) -> Dataset:
    user = get_user_model().objects.create_user("bench", password="bench-password")  # noqa: S106
    organization = organization_create(
        name="Bench Traders", country="IN", currency="INR", time_zone="Asia/Kolkata", owner=user
    )
    contacts = [
        contact_create(
            organization=organization,
            contact_type=ContactType.CUSTOMER,
            display_name=f"Customer {n:03d}",
            whatsapp_enabled=True,
            persons=[
                {"first_name": "Asha", "last_name": f"Rao {n}", "mobile": f"98200{n:05d}", "whatsapp_enabled": True}
            ],
        )
        for n in range(customers)
    ]
    return Dataset(organization=organization, customers=contacts, token=Token.objects.create(user=user).key)


def _invoice_writer(dataset: Dataset) -> Callable[[], Document]:
    today = dataset.organization.today()
    customers = itertools.cycle(dataset.customers)
    days = itertools.cycle(range(120))

    def write() -> Document:
        contact = next(customers)
        return document_create(
            organization=dataset.organization,
            kind=DocumentKind.INVOICE,
            contact=contact,
            date=today - datetime.timedelta(days=next(days)),
            lines=LINES,
            share_with=list(contact.persons.all()),
        )

    return write


def run(options: Options) -> list[Result]:
    dataset = _seed_organization(customers=options.customers)
    results = [
        measure(
            "document_create: invoice, 3 lines",
            _invoice_writer(dataset),
            count=options.invoices,
            note="service call in one transaction: numbering, lines, totals, recipients",
        )
    ]

    invoices = itertools.cycle(Document.objects.filter(kind=DocumentKind.INVOICE).order_by("id")[: options.pdfs])
    results.append(
        measure(
            "document_pdf: invoice PDF",
            lambda: document_pdf(next(invoices)),
            count=options.pdfs,
            note="WeasyPrint, bytes in memory",
        )
    )

    client = Client(HTTP_AUTHORIZATION=f"Token {dataset.token}")
    total = Document.objects.filter(kind=DocumentKind.INVOICE).count()

    def list_invoices() -> None:
        response = client.get(INVOICES_PATH)
        if response.status_code != 200:
            raise RuntimeError(f"GET {INVOICES_PATH} answered {response.status_code}: {response.content[:300]!r}")

    with CaptureQueriesContext(connection) as queries:
        list_invoices()
    results.append(
        measure(
            f"GET {INVOICES_PATH}: first page",
            list_invoices,
            count=options.requests,
            note=f"test client, token auth, {total} invoices, {len(queries)} queries per request",
        )
    )
    return results
