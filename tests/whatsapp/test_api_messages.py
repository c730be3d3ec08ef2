"""``/api/v1/whatsapp/messages``: list, filters, one message with its history, errors and pricing,
tenant isolation, role rules, bad query parameters and the list's query count."""

import datetime
import zoneinfo

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from books.choices import ContactType, DocumentKind
from books.models import Role
from books.permissions import Perm
from books.services.organizations import membership_add
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from whatsapp.choices import Category, Direction, MediaState, MessageStatus, MessageType
from whatsapp.models import BulkSend, Message

from .factories import make_account, make_message

pytestmark = pytest.mark.django_db

URL = "/api/v1/whatsapp/messages"
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def org(user):
    return make_organization(name="Sharma Accounting", user=user, role="Admin")


@pytest.fixture
def api(user, org):
    return client_for(user)


@pytest.fixture
def account(org):
    return make_account(org)


@pytest.fixture
def customer(org):
    return make_contact(org, name="Ravi Traders", mobile="+919820012345")


@pytest.fixture
def invoice(org, customer):
    return make_document(org, contact=customer)


def a_message(account, **fields) -> Message:
    return make_message(account, **fields)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- List ------------------------------------------------------------------------------------------


def test_it_lists_the_organizations_messages_newest_first_with_party_and_document(api, account, customer, invoice):
    person = customer.persons.get()
    older = a_message(
        account,
        contact=customer,
        contact_person=person,
        document=invoice,
        template_name="invoice_notification",
        template_language="en",
        category=Category.UTILITY,
        content="Dear Ravi, invoice INV-000001 is ready.",
    )
    newer = a_message(
        account, direction=Direction.INBOUND, status=MessageStatus.RECEIVED, message_type=MessageType.TEXT
    )

    response = api.get(URL)

    assert ids(response) == [newer.pk, older.pk]
    body = response.json()
    assert body["count"] == 2 and {"next", "previous"} <= set(body)
    row = body["results"][1]
    assert row["direction"] == "outbound" and row["type"] == "template"
    assert row["contact"] == {"id": customer.pk, "name": "Ravi Traders"}
    assert row["contact_person"] == {"id": person.pk, "name": person.name}
    assert row["document"] == {"id": invoice.pk, "kind": "invoice", "number": invoice.number}
    assert row["template_name"] == "invoice_notification" and row["template_language"] == "en"
    assert row["category"] == "utility"
    assert row["content"] == "Dear Ravi, invoice INV-000001 is ready."
    assert row["phone"] == "+919820012345"
    assert row["status"] == "sent" and row["wamid"].startswith("wamid.")
    assert row["error"] is None and row["pricing"] is None and row["media"] is None
    unknown = body["results"][0]
    assert unknown["contact"] is None and unknown["contact_person"] is None and unknown["document"] is None
    assert unknown["status"] == "received"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "failed"}, ["failed"]),
        ({"direction": "inbound"}, ["inbound"]),
        ({"template_name": "payment_reminder"}, ["reminder"]),
        ({"phone": "+91 98200 99999"}, ["other phone"]),
        ({"phone": "98200 99999"}, ["other phone"]),  # read in the organization's region (IN)
        ({"search_text": "99999"}, ["other phone"]),
    ],
    ids=["status", "direction", "template_name", "phone", "phone-national", "search_text"],
)
def test_each_filter_narrows_the_list(api, account, params, expected):
    made = {
        "failed": a_message(account, status=MessageStatus.FAILED, failed_at=timezone.now(), error_code=131026),
        "inbound": a_message(
            account, direction=Direction.INBOUND, status=MessageStatus.RECEIVED, message_type=MessageType.TEXT
        ),
        "reminder": a_message(account, template_name="payment_reminder"),
        "other phone": a_message(account, phone="+919820099999", status=MessageStatus.DELIVERED),
    }

    response = api.get(URL, params)

    assert ids(response) == [made[name].pk for name in expected]


def test_it_filters_by_document_and_contact(api, org, account, customer, invoice):
    other_customer = make_contact(org, name="Mehta & Sons")
    other_invoice = make_document(org, contact=other_customer)
    about_invoice = a_message(account, contact=customer, document=invoice)
    a_message(account, contact=other_customer, document=other_invoice)
    to_customer = a_message(account, contact=customer)

    assert ids(api.get(URL, {"document_id": invoice.pk})) == [about_invoice.pk]
    assert ids(api.get(URL, {"contact_id": customer.pk})) == [to_customer.pk, about_invoice.pk]
    assert ids(api.get(URL, {"contact_id": customer.pk, "document_id": other_invoice.pk})) == []


def test_created_from_and_to_take_whole_days_in_the_organizations_zone_or_instants(api, account):
    def made_at(local: datetime.datetime) -> Message:
        message = a_message(account)
        Message.objects.filter(pk=message.pk).update(created_at=local.replace(tzinfo=KOLKATA))
        return message

    before = made_at(datetime.datetime(2026, 2, 28, 23, 59))
    first_thing = made_at(datetime.datetime(2026, 3, 1, 0, 5))  # 2026-02-28 18:35 UTC
    late = made_at(datetime.datetime(2026, 3, 1, 23, 50))
    after = made_at(datetime.datetime(2026, 3, 2, 0, 1))

    assert ids(api.get(URL, {"created_from": "2026-03-01", "created_to": "2026-03-01"})) == [late.pk, first_thing.pk]
    assert ids(api.get(URL, {"created_from": "2026-03-02"})) == [after.pk]
    assert ids(api.get(URL, {"created_to": "2026-02-28"})) == [before.pk]
    # A date-time without an offset is read in the organization's zone; with one, as given.
    assert ids(api.get(URL, {"created_from": "2026-03-01T12:00"})) == [after.pk, late.pk]
    assert ids(api.get(URL, {"created_to": "2026-02-28T18:40:00+00:00"})) == [first_thing.pk, before.pk]


# --- One message -----------------------------------------------------------------------------------


def test_the_status_history_lists_every_status_reached_oldest_first(api, account):
    t0 = timezone.now().replace(microsecond=0) - datetime.timedelta(minutes=10)
    message = a_message(
        account,
        status=MessageStatus.READ,
        queued_at=t0,
        sending_at=t0 + datetime.timedelta(seconds=1),
        sent_at=t0 + datetime.timedelta(seconds=2),
        delivered_at=t0 + datetime.timedelta(minutes=1),
        read_at=t0 + datetime.timedelta(minutes=5),
    )

    body = api.get(f"{URL}/{message.pk}").json()

    assert [step["status"] for step in body["status_history"]] == ["queued", "sending", "sent", "delivered", "read"]
    ats = [datetime.datetime.fromisoformat(step["at"]) for step in body["status_history"]]
    assert ats == sorted(ats) and ats[0] == t0
    assert datetime.datetime.fromisoformat(body["read_at"]) == t0 + datetime.timedelta(minutes=5)
    assert body["failed_at"] is None and body["received_at"] is None


def test_a_failed_message_carries_metas_error_and_the_fix_hint(api, account, customer):
    message = a_message(
        account,
        contact=customer,
        status=MessageStatus.FAILED,
        failed_at=timezone.now(),
        error_code=131026,
        error_title="Message undeliverable",
        error_details="Unable to deliver message.",
    )

    body = api.get(f"{URL}/{message.pk}").json()

    assert body["status"] == "failed"
    assert body["error"]["code"] == 131026 and body["error"]["subcode"] is None
    assert body["error"]["title"] == "Message undeliverable"
    assert body["error"]["details"] == "Unable to deliver message."
    assert "can't receive WhatsApp messages" in body["error"]["fix_hint"]
    assert [step["status"] for step in body["status_history"]] == ["queued", "failed"]


def test_pricing_is_shown_once_meta_reported_it(api, account):
    message = a_message(
        account, status=MessageStatus.DELIVERED, pricing_type="regular", pricing_category="utility", billable=True
    )

    body = api.get(f"{URL}/{message.pk}").json()

    assert body["pricing"] == {"type": "regular", "category": "utility", "billable": True}


def test_media_has_a_url_only_once_the_file_is_stored(api, account, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.MEDIA_ROOT = tmp_path
    incoming = {"direction": Direction.INBOUND, "status": MessageStatus.RECEIVED, "message_type": MessageType.DOCUMENT}
    pending = a_message(
        account, media_id="1013", media_mime_type="application/pdf", media_state=MediaState.PENDING, **incoming
    )
    stored = a_message(
        account,
        media_id="1014",
        media_mime_type="application/pdf",
        media_filename="PO-77.pdf",
        media_state=MediaState.STORED,
        **incoming,
    )
    stored.media_file.save("PO-77.pdf", ContentFile(b"%PDF-1.4"), save=True)

    assert api.get(f"{URL}/{pending.pk}").json()["media"] == {
        "mime_type": "application/pdf",
        "filename": "",
        "url": None,
    }
    media = api.get(f"{URL}/{stored.pk}").json()["media"]
    assert media["filename"] == "PO-77.pdf"
    assert media["url"].startswith("http://testserver/") and media["url"].endswith(".pdf")


# --- Tenants and roles -----------------------------------------------------------------------------


def test_another_organizations_message_does_not_exist(api, account):
    foreign_org = make_organization(name="Globex", user=UserFactory())
    foreign = a_message(make_account(foreign_org))
    own = a_message(account)

    assert api.get(f"{URL}/{foreign.pk}").status_code == 404
    assert ids(api.get(URL)) == [own.pk]
    assert api.get(URL, {"organization_id": foreign_org.pk}).status_code == 404
    assert api.get(f"{URL}/{foreign.pk}", {"organization_id": foreign_org.pk}).status_code == 404
    assert api.get(f"{URL}/{2**63}").status_code == 404
    assert api.get(f"{URL}/99999999999999999999999999").status_code == 404


def test_it_needs_credentials(account):
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401


def role_client(org, *perms: str):
    user = UserFactory()
    role = Role.objects.create(organization=org, name="Custom " + "-".join(perms), permissions=list(perms))
    membership_add(organization=org, user=user, role_name=role.name)
    return client_for(user)


def test_a_role_reads_the_messages_of_the_parties_it_may_view(org, account, customer):
    vendor = make_contact(org, contact_type=ContactType.VENDOR, name="Paper Mills")
    bill = make_document(org, kind=DocumentKind.BILL, contact=vendor)
    to_customer = a_message(account, contact=customer)
    to_vendor = a_message(account, contact=vendor, document=bill)
    unknown = a_message(account, direction=Direction.INBOUND, status=MessageStatus.RECEIVED)

    customers_only = role_client(org, Perm.CUSTOMERS_VIEW)
    assert ids(customers_only.get(URL)) == [to_customer.pk]
    assert customers_only.get(f"{URL}/{to_customer.pk}").status_code == 200
    assert customers_only.get(f"{URL}/{to_vendor.pk}").status_code == 403
    assert customers_only.get(f"{URL}/{unknown.pk}").status_code == 403

    vendors_and_inbox = role_client(org, Perm.VENDORS_VIEW, Perm.VENDORS_COMMUNICATION)
    assert ids(vendors_and_inbox.get(URL)) == [unknown.pk, to_vendor.pk]

    assert role_client(org, Perm.SALES_VIEW).get(URL).status_code == 403


def test_it_is_read_only(api, account):
    message = a_message(account)

    assert api.post(URL, {"phone": "+919820012345"}).status_code == 405
    assert api.patch(f"{URL}/{message.pk}", {"status": "read"}).status_code == 405
    assert api.delete(f"{URL}/{message.pk}").status_code == 405
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


# --- Bad query parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "delivered-ish"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"document_id": "abc"}, "document_id"),
        ({"document_id": "0"}, "document_id"),
        ({"contact_id": "-3"}, "contact_id"),
        ({"contact_id": "9" * 30}, "contact_id"),
        ({"phone": "hello"}, "phone"),
        ({"phone": "+91 12"}, "phone"),
        ({"template_name": "x" * 600}, "template_name"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_from": "2026-02-30"}, "created_from"),
        ({"created_to": "2026-13-01T10:00"}, "created_to"),
        ({"created_to": "0001-01-01"}, "created_to"),
        ({"created_from": "2026-03-02", "created_to": "2026-03-01"}, "created_to"),
        ({"created_from": "2026-03-02T10:00+05:30", "created_to": "2026-03-02T09:00+05:30"}, "created_to"),
        ({"search_text": "x" * 101}, "search_text"),
    ],
)
def test_bad_filter_values_answer_400_with_the_field_named(api, account, params, field):
    response = api.get(URL, params)

    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_date_and_a_date_time_of_the_same_day_are_a_valid_range(api, account):
    assert api.get(URL, {"created_from": "2026-03-01T10:00", "created_to": "2026-03-01"}).status_code == 200


# --- Cost ------------------------------------------------------------------------------------------


def test_the_list_costs_the_same_number_of_queries_for_one_row_or_many(api, org, account, invoice, customer):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(URL).status_code == 200
        return len(queries)

    person = customer.persons.get()
    a_message(account, contact=customer, contact_person=person, document=invoice)
    one_row = list_queries()
    for index in range(12):
        other = make_contact(org)
        a_message(
            account,
            contact=other,
            contact_person=other.persons.get(),
            document=make_document(org, contact=other),
            status=MessageStatus.FAILED if index % 2 else MessageStatus.READ,
            error_code=131026 if index % 2 else None,
            pricing_category="utility",
        )
    many_rows = list_queries()

    assert len(ids(api.get(URL))) == 13
    assert many_rows == one_row
    # Token, membership, count, page.
    assert one_row <= 5


# --- The messages of a bulk send -------------------------------------------------------------------


def test_it_filters_by_bulk_send_and_another_organizations_bulk_send_lists_nothing(api, org, account, customer):
    bulk = BulkSend.objects.create(organization=org, target="documents", module="invoices", total=2)
    earlier = BulkSend.objects.create(organization=org, target="documents", module="invoices", total=1)
    first, second = (a_message(account, contact=customer, bulk=bulk) for _ in range(2))
    a_message(account, contact=customer, bulk=earlier)
    a_message(account, contact=customer)  # sent alone
    foreign_org = make_organization(name="Globex", user=UserFactory())
    theirs = BulkSend.objects.create(organization=foreign_org, target="documents", module="invoices", total=1)
    a_message(make_account(foreign_org), bulk=theirs)

    assert ids(api.get(URL, {"bulk": bulk.pk})) == [second.pk, first.pk]
    assert ids(api.get(URL, {"bulk": bulk.pk, "status": MessageStatus.READ})) == []
    assert ids(api.get(URL, {"bulk": theirs.pk})) == []  # as another organization's document_id
    assert "bulk" in api.get(URL, {"bulk": "abc"}).json()


def test_the_bulk_filter_and_the_bulk_send_s_messages_link_are_in_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/whatsapp/messages"]["get"]["parameters"]}
    assert parameters["bulk"]["in"] == "query" and parameters["bulk"]["schema"]["type"] == "integer"
    assert "bulk send" in parameters["bulk"]["description"]
    bulk = schema["components"]["schemas"]["BulkSend"]["properties"]["messages_url"]
    assert bulk["format"] == "uri"
