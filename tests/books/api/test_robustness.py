"""Garbage in never makes a 500: every resource answers bad bodies and queries with a 4xx."""

import json

import pytest
from rest_framework.test import APIClient

from books.kinds import KINDS, KINDS_BY_RESOURCE
from books.models import Organization
from tests.books.api.builders import make_any
from tests.books.factories import make_contact

pytestmark = pytest.mark.django_db

HUGE = 10**30
GARBAGE_BODIES = [
    None,
    [],
    [1, 2],
    "text",
    42,
    True,
    {},
    {"line_items": "lots"},
    {"line_items": [None, 1, "x", []]},
    {"line_items": [{"name": None, "quantity": "1e400", "rate": "Infinity", "tax_percentage": "-0"}]},
    {"line_items": [{"name": "x" * 10_000, "quantity": HUGE, "rate": -HUGE}]},
    {"line_items": [{"name": "\x00", "quantity": 1, "rate": 1}]},
    {"line_items": [{"name": "A", "quantity": 1, "rate": 1}] * 600},
    {"customer_id": HUGE, "vendor_id": -1},
    {"customer_id": "1; DROP TABLE books_document", "vendor_id": "١٢"},
    {"customer_id": {"id": 1}, "vendor_id": [1]},
    {"customer_id": None, "vendor_id": None},
    {"customer_id": "9" * 5000, "vendor_id": 9**5000 % 10**4000, "contact_persons": ["9" * 5000]},
    {"contact_persons": list(range(1, 1000))},
    {"date": "2026-02-30", "due_date": "99999-01-01", "expiry_date": "0000-00-00", "shipment_date": 20260101},
    {"date": "9999-12-31", "due_date": None},
    {"amount": "NaN", "payment_mode": "barter", "invoices": "all", "bills": {"bill_id": 1}},
    {"amount": HUGE, "invoices": [{"invoice_id": HUGE, "amount_applied": HUGE}], "bills": [None]},
    {"amount": "1", "invoices": [{"invoice_id": "x"}], "bills": [{"bill_id": True, "amount_applied": "1e-9"}]},
    {"amount": "9" * 5000, "invoices": [{"invoice_id": "9" * 5000}], "bills": [{"bill_id": "9" * 5000}]},
    {"contact_persons": ["a", None, HUGE], "is_draft": "maybe"},
    {"contact_persons": "everyone"},
    {"currency_code": "\u202e", "reference_number": "r" * 1000, "notes": "\x00", "terms": "\ud800"},
    {"invoice_number": "INV\n1", "bill_number": "\x00", "payment_number": "x" * 100},
    {"contact_name": None, "contact_type": ["customer"], "email": "@", "payment_terms": 10**10},
    {
        "contact_name": "A",
        "contact_type": "customer",
        "contact_persons": [{"first_name": "B", "mobile": "+" + "9" * 40}],
    },
    {"contact_name": "A", "contact_type": "customer", "contact_persons": [None, "x", {"mobile": {}}]},
    {"contact_name": "A", "contact_type": "vendor", "status": True, "language_code": None, "currency_code": 123},
    {"first_name": ["x"], "mobile": 9820012345, "phone": "+1 (555) CALL-NOW", "is_primary_contact": "sure"},
    {"first_name": "\x00", "email": "a" * 300 + "@example.com", "language_code": "en" * 10},
]
RAW_BODIES = [
    b'{"customer_id": ' + b"9" * 5000 + b"}",
    b"{",
    b"\xff\xfe\x00",
    b'{"line_items": [',
    b"null",
    b"[" * 5000 + b"]" * 5000,
    b'{"a": 1e999999}',
]


def as_json(body: object) -> str:
    # json.dumps escapes lone surrogates ("\\ud800"), which the server then decodes: as attackers send them.
    return json.dumps(body)


RESOURCES = [*(spec.api_resource for spec in KINDS.values()), "contacts", "contactpersons"]


def paths_of(resource: str, org: Organization) -> tuple[str, str]:
    """The collection and one member's path of ``resource`` in ``org``."""
    customer = make_contact(org)
    if resource == "contacts":
        return "/api/v1/contacts", f"/api/v1/contacts/{customer.pk}"
    if resource == "contactpersons":
        persons = f"/api/v1/contacts/{customer.pk}/contactpersons"
        return persons, f"{persons}/{customer.persons.get().pk}"
    spec = KINDS_BY_RESOURCE[resource]
    return f"/api/v1/{resource}", f"/api/v1/{resource}/{make_any(org, spec).pk}"


@pytest.mark.parametrize("resource", RESOURCES)
def test_garbage_bodies_never_cause_a_server_error(api: APIClient, org: Organization, resource: str):
    collection, member = paths_of(resource, org)
    failures = []
    for body in GARBAGE_BODIES:
        response = api.post(collection, as_json(body), content_type="application/json")
        if response.status_code >= 500 or (response.status_code == 201 and body in (None, [], {})):
            failures.append(("POST", body, response.status_code))
        for method in (api.put, api.patch):
            response = method(member, as_json(body), content_type="application/json")
            if response.status_code >= 500:
                failures.append((method.__name__, body, response.status_code))
    for raw in RAW_BODIES:
        for method, path in ((api.post, collection), (api.put, member), (api.patch, member)):
            if (status := method(path, raw, content_type="application/json").status_code) >= 500:
                failures.append((method.__name__, raw[:20], status))

    assert failures == []


GARBAGE_QUERIES = [
    "status=%00",
    "search_text=%00",
    "search_text=" + "x" * 5000,
    "customer_id=99999999999999999999999",
    "customer_id=" + "9" * 5000,
    "vendor_id=-1",
    "date_start=2026-02-30",
    "date_end=0000-01-01",
    "contact_type=%00",
    "organization_id=%00",
    "organization_id=1e3",
    "page=abc",
    "page=99999",
    "format=xml",
]


@pytest.mark.parametrize("resource", RESOURCES)
def test_garbage_queries_never_cause_a_server_error(api: APIClient, org: Organization, resource: str):
    collection, _ = paths_of(resource, org)

    failures = [
        (query, response.status_code)
        for query in GARBAGE_QUERIES
        if (response := api.get(f"{collection}?{query}")).status_code >= 500
    ]

    assert failures == []


def test_garbage_queries_on_statements_and_pdfs_never_cause_a_server_error(api: APIClient, org: Organization):
    contact = make_contact(org)
    invoice = make_any(org, KINDS["invoice"])
    paths = [
        f"/api/v1/contacts/{contact.pk}/statements",
        f"/api/v1/contacts/{contact.pk}/statements/pdf",
        f"/api/v1/invoices/{invoice.pk}/pdf",
    ]
    queries = ["from_date=9999-99-99&to_date=x", "from_date=%00", "organization_id=%00", "format=xml", "format=pdf"]

    failures = [
        (path, query, response.status_code)
        for path in paths
        for query in queries
        if (response := api.get(f"{path}?{query}")).status_code >= 500
    ]

    assert failures == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/invoices/abc",
        "/api/v1/invoices/99999999999999999999999",
        "/api/v1/contacts/1.5",
        "/api/v1/contacts/" + "9" * 5000,
        "/api/v1/contacts/" + "9" * 5000 + "/contactpersons",
        "/api/v1/bills/" + "9" * 5000 + "/pdf",
    ],
)
def test_malformed_ids_are_not_found(api: APIClient, org: Organization, path: str):
    assert api.get(path).status_code == 404
