"""The OpenAPI schema and its Swagger UI."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_and_documents_every_resource():
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    paths = set(schema["paths"])
    for resource in (
        "invoices",
        "salesorders",
        "estimates",
        "retainerinvoices",
        "creditnotes",
        "salesreceipts",
        "customerpayments",
        "bills",
        "vendorpayments",
    ):
        assert f"/api/v1/{resource}" in paths
    assert "/api/v1/invoices/{invoice_id}/pdf" in paths
    assert "/api/v1/contacts/{contact_id}/contactpersons/{contact_person_id}" in paths
    assert "/api/v1/contacts/{contact_id}/statements" in paths
    parameters = {p["name"] for p in schema["paths"]["/api/v1/invoices"]["get"]["parameters"]}
    assert {"organization_id", "status", "customer_id", "search_text", "date_start", "date_end", "page"} <= parameters
    assert {"invoice_id", "invoice_number", "customer_id", "line_items"} <= set(
        schema["components"]["schemas"]["Invoice"]["properties"]
    )


def test_the_docs_page_is_served_from_local_assets():
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn." not in response.content
