"""The customers and vendors pages, the statement, and the organization switcher."""

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from books.choices import ContactType, DocumentKind
from books.formatting import money_format
from books.middleware import SESSION_KEY
from books.models import Contact, ContactPerson
from books.selectors import statement_build
from books.services.documents import AllocationInput, LineInput

from .factories import UserFactory, make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def org(user):
    return make_organization(user=user)  # Indian organization, user is Admin


@pytest.fixture
def signed_in(client, user, org):
    client.force_login(user)
    return client


def contact_post(**overrides: str) -> dict[str, str]:
    """What the create/edit form posts: the contact fields and one person row."""
    data = {
        "display_name": "Acme Traders",
        "company_name": "Acme Traders Pvt Ltd",
        "email": "accounts@acme.example",
        "currency": "",
        "payment_terms_days": "15",
        "billing_address": "12 MG Road\nMumbai",
        "tax_id": "",
        "language": "en",
        "whatsapp_enabled": "on",
        "notes": "",
        "is_active": "on",
        "persons-TOTAL_FORMS": "1",
        "persons-INITIAL_FORMS": "0",
        "persons-MIN_NUM_FORMS": "0",
        "persons-MAX_NUM_FORMS": "50",
        "persons-0-id": "",
        "persons-0-salutation": "Mr.",
        "persons-0-first_name": "Ravi",
        "persons-0-last_name": "Kumar",
        "persons-0-email": "ravi@acme.example",
        "persons-0-phone": "",
        "persons-0-mobile": "9820012345",
        "persons-0-whatsapp_enabled": "on",
        "persons-0-language": "en",
    }
    data.update(overrides)
    return data


# --- Access ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["books:customer_list", "books:vendor_list", "books:customer_create", "books:vendor_create", "books:dashboard"],
)
def test_pages_send_anonymous_visitors_to_the_login_page(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_contact_pages_send_anonymous_visitors_to_the_login_page(client, org):
    contact = make_contact(org)

    for name in ("contact_detail", "contact_edit", "contact_statement", "contact_statement_pdf"):
        response = client.get(reverse(f"books:{name}", args=[contact.pk]))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_a_staff_member_cannot_create_customers(client):
    staff = UserFactory()
    org = make_organization(user=staff, role="Staff")
    contact = make_contact(org)
    client.force_login(staff)

    assert client.get(reverse("books:customer_list")).status_code == 200
    assert client.get(reverse("books:customer_create")).status_code == 403
    assert client.post(reverse("books:customer_create"), contact_post()).status_code == 403
    assert client.get(reverse("books:contact_edit", args=[contact.pk])).status_code == 403
    assert not Contact.objects.filter(display_name="Acme Traders").exists()


def test_vendor_pages_need_the_vendor_permission(client):
    user = UserFactory()
    org = make_organization(user=user, role="Staff")
    role = user.memberships.get().role
    role.permissions = ["customers.view"]
    role.save()
    vendor = make_contact(org, contact_type=ContactType.VENDOR)
    client.force_login(user)

    assert client.get(reverse("books:vendor_list")).status_code == 403
    assert client.get(reverse("books:contact_detail", args=[vendor.pk])).status_code == 403


def test_a_user_without_an_organization_is_told_so_on_the_contact_pages(client):
    client.force_login(UserFactory())

    response = client.get(reverse("books:customer_list"))

    assert response.status_code == 403
    assert "not a member of any organization" in response.content.decode()


def test_a_user_without_an_organization_is_told_so_on_the_dashboard(client):
    client.force_login(UserFactory())

    response = client.get(reverse("books:dashboard"))

    assert response.status_code == 403
    assert "not a member of any organization" in response.content.decode()


@pytest.mark.parametrize("name", ["contact_detail", "contact_edit", "contact_statement", "contact_statement_pdf"])
def test_another_organizations_contact_is_not_found(signed_in, name):
    other = make_organization(name="Someone Else")
    foreign = make_contact(other, name="Their Customer")

    assert signed_in.get(reverse(f"books:{name}", args=[foreign.pk])).status_code == 404


def test_editing_another_organizations_contact_changes_nothing(signed_in):
    foreign = make_contact(make_organization(name="Someone Else"), name="Their Customer")

    response = signed_in.post(reverse("books:contact_edit", args=[foreign.pk]), contact_post(display_name="Mine now"))

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.display_name == "Their Customer"


# --- Organization switcher ---------------------------------------------------------------------


def test_switching_organization_keeps_the_choice_in_the_session(signed_in, user):
    second = make_organization(name="Beta Exports", user=user, role="Accountant")

    response = signed_in.post(reverse("books:organization_switch"), {"organization": second.pk})

    assert response.status_code == 302
    assert response.url == reverse("books:dashboard")
    assert signed_in.session[SESSION_KEY] == second.pk
    assert signed_in.get(reverse("books:dashboard")).context["current_organization"] == second


def test_switching_to_an_organization_the_user_is_not_a_member_of_is_not_found(signed_in, org):
    stranger = make_organization(name="Not Mine")

    response = signed_in.post(reverse("books:organization_switch"), {"organization": stranger.pk})

    assert response.status_code == 404
    assert signed_in.session.get(SESSION_KEY) != stranger.pk


def test_switching_needs_a_post(signed_in, org):
    assert signed_in.get(reverse("books:organization_switch")).status_code == 405


# --- Create and edit ---------------------------------------------------------------------------


def test_it_creates_a_customer_reading_a_bare_mobile_in_the_organizations_region(signed_in, org):
    response = signed_in.post(reverse("books:customer_create"), contact_post())

    contact = Contact.objects.get(organization=org, display_name="Acme Traders")
    assert response.status_code == 302
    assert response.url == reverse("books:contact_detail", args=[contact.pk])
    assert contact.contact_type == ContactType.CUSTOMER
    person = contact.persons.get()
    assert person.mobile == "+919820012345"
    assert person.is_primary and person.whatsapp_enabled


def test_it_creates_a_vendor_from_the_vendor_path(signed_in, org):
    signed_in.post(reverse("books:vendor_create"), contact_post(display_name="Paper Mills"))

    assert Contact.objects.get(display_name="Paper Mills").contact_type == ContactType.VENDOR


def test_an_invalid_mobile_shows_the_message_and_saves_nothing(signed_in, org):
    response = signed_in.post(reverse("books:customer_create"), contact_post(**{"persons-0-mobile": "12345"}))

    assert response.status_code == 200
    assert "“12345” is not a valid phone number for IN" in response.content.decode()
    assert response.context["formset"].forms[0].errors["mobile"]
    assert not Contact.objects.filter(organization=org).exists()
    assert not ContactPerson.objects.exists()


def test_a_bad_second_person_rolls_back_the_whole_save(signed_in, org):
    data = contact_post(
        **{
            "persons-TOTAL_FORMS": "2",
            "persons-1-first_name": "Asha",
            "persons-1-mobile": "12345",
            "persons-1-language": "en",
        }
    )

    response = signed_in.post(reverse("books:customer_create"), data)

    assert response.status_code == 200
    assert response.context["formset"].forms[1].errors["mobile"]
    assert not Contact.objects.filter(organization=org).exists()


def test_the_form_says_how_numbers_without_a_country_code_are_read(signed_in):
    response = signed_in.get(reverse("books:customer_create"))

    assert "India (+91)" in response.content.decode()


def test_it_edits_a_contact_and_its_persons(signed_in, org):
    contact = make_contact(org, name="Old Name", persons=2)
    first, second = contact.persons.order_by("id")
    data = contact_post(
        display_name="New Name",
        **{
            "persons-TOTAL_FORMS": "3",
            "persons-INITIAL_FORMS": "2",
            "persons-0-id": str(first.pk),
            "persons-0-first_name": first.first_name,
            "persons-0-mobile": first.mobile,
            "persons-0-DELETE": "on",
            "persons-1-id": str(second.pk),
            "persons-1-first_name": "Renamed",
            "persons-1-mobile": "+1 415 555 2671",
            "persons-1-language": "en",
            "persons-2-id": "",
            "persons-2-first_name": "Newcomer",
            "persons-2-mobile": "98201 55555",
            "persons-2-is_primary": "on",
            "persons-2-language": "en",
        },
    )

    response = signed_in.post(reverse("books:contact_edit", args=[contact.pk]), data)

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.display_name == "New Name"
    persons = {p.first_name: p for p in contact.persons.all()}
    assert set(persons) == {"Renamed", "Newcomer"}
    assert persons["Renamed"].mobile == "+14155552671"
    assert persons["Newcomer"].mobile == "+919820155555"
    assert persons["Newcomer"].is_primary and not persons["Renamed"].is_primary


def test_the_edit_form_starts_from_the_stored_contact(signed_in, org):
    contact = make_contact(org, name="Stored Name")

    response = signed_in.get(reverse("books:contact_edit", args=[contact.pk]))

    assert response.status_code == 200
    assert response.context["form"]["display_name"].value() == "Stored Name"
    assert response.context["formset"].initial_form_count() == 1


# --- Lists -------------------------------------------------------------------------------------


def test_the_list_searches_by_name_company_and_mobile(signed_in, org):
    make_contact(org, name="Acme Traders", mobile="9820011111")
    make_contact(org, name="Zenith Labs", mobile="9820022222")

    by_name = signed_in.get(reverse("books:customer_list"), {"q": "acme"}).content.decode()
    by_mobile = signed_in.get(reverse("books:customer_list"), {"q": "9820022222"}).content.decode()

    assert "Acme Traders" in by_name and "Zenith Labs" not in by_name
    assert "Zenith Labs" in by_mobile and "Acme Traders" not in by_mobile


def test_the_list_filters_by_status_and_whatsapp(signed_in, org):
    make_contact(org, name="Chatty Co", whatsapp=True)
    make_contact(org, name="Quiet Co", whatsapp=False)
    gone = make_contact(org, name="Gone Co", whatsapp=False)
    gone.is_active = False
    gone.save()

    def names(filter_name: str) -> set[str]:
        page = signed_in.get(reverse("books:customer_list"), {"filter": filter_name}).context["page"]
        return {c.display_name for c in page.object_list}

    assert names("all") == {"Chatty Co", "Quiet Co", "Gone Co"}
    assert names("active") == {"Chatty Co", "Quiet Co"}
    assert names("inactive") == {"Gone Co"}
    assert names("whatsapp") == {"Chatty Co"}


def test_customers_and_vendors_have_their_own_lists(signed_in, org):
    make_contact(org, name="A Customer")
    make_contact(org, name="A Vendor", contact_type=ContactType.VENDOR)

    customers = signed_in.get(reverse("books:customer_list")).content.decode()
    vendors = signed_in.get(reverse("books:vendor_list")).content.decode()

    assert "A Customer" in customers and "A Vendor" not in customers
    assert "A Vendor" in vendors and "A Customer" not in vendors


def test_the_list_shows_receivables_of_open_invoices_only(signed_in, org):
    contact = make_contact(org, name="Acme Traders")
    make_document(org, contact=contact)  # 2 × 1,500.00 + 18 % = 3,540.00
    make_document(org, contact=contact)
    make_document(org, contact=contact, issue=False)  # a draft is not owed yet

    response = signed_in.get(reverse("books:customer_list"))

    listed = response.context["page"].object_list[0]
    assert listed.open_balance == Decimal("7080.00")
    assert "₹7,080.00" in response.content.decode()


def test_the_receivables_are_not_multiplied_by_a_search_on_persons(signed_in, org):
    contact = make_contact(org, name="Acme Traders", persons=2)
    make_document(org, contact=contact)

    response = signed_in.get(reverse("books:customer_list"), {"q": "Person"})  # matches both persons

    assert [c.open_balance for c in response.context["page"].object_list] == [Decimal("3540.00")]


def test_the_list_query_count_does_not_grow_with_the_contacts(signed_in, org, django_assert_max_num_queries):
    for i in range(30):
        contact = make_contact(org, name=f"Customer {i:02d}", persons=2)
        make_document(org, contact=contact)

    with django_assert_max_num_queries(8):
        response = signed_in.get(reverse("books:customer_list"))

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 25
    assert response.context["page"].paginator.num_pages == 2


def test_the_list_paginates_keeping_the_filter(signed_in, org):
    for i in range(27):
        make_contact(org, name=f"Customer {i:02d}")

    response = signed_in.get(reverse("books:customer_list"), {"filter": "active", "page": 2})

    assert [c.display_name for c in response.context["page"].object_list] == ["Customer 25", "Customer 26"]
    assert "filter=active" in response.content.decode()


# --- Detail ------------------------------------------------------------------------------------


def test_the_detail_page_shows_persons_and_flags_an_invalid_mobile(signed_in, org):
    contact = make_contact(org, name="Acme Traders", mobile="9820012345")
    ContactPerson.objects.create(contact=contact, first_name="Imported", mobile="12345")  # as an import leaves it

    body = signed_in.get(reverse("books:contact_detail", args=[contact.pk])).content.decode()

    assert "+91 98200 12345" in body
    assert "Invalid number" in body
    assert body.count("Invalid number") == 1


def test_the_transactions_tab_lists_the_contacts_documents(signed_in, org):
    contact = make_contact(org)
    invoice = make_document(org, contact=contact)
    other = make_document(org)

    body = signed_in.get(reverse("books:contact_detail", args=[contact.pk])).content.decode()

    assert invoice.number in body
    assert reverse("books:document_detail", args=["invoices", invoice.pk]) in body
    assert other.contact.display_name not in body


# --- Statement ---------------------------------------------------------------------------------


@pytest.fixture
def statement_contact(org):
    """An invoice before the period, an invoice inside it and a payment against the first."""
    contact = make_contact(org, name="Acme Traders")
    today = org.today()
    earlier = make_document(
        org,
        contact=contact,
        date=today - datetime.timedelta(days=60),
        lines=[LineInput("Audit", Decimal("1"), Decimal("1000"))],
    )
    make_document(
        org,
        contact=contact,
        date=today - datetime.timedelta(days=5),
        lines=[LineInput("Filing", Decimal("1"), Decimal("500"))],
    )
    make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=contact,
        date=today - datetime.timedelta(days=3),
        amount=Decimal("400"),
        allocations=[AllocationInput(earlier, Decimal("400"))],
    )
    return contact


def test_the_statement_shows_opening_and_closing_balances(signed_in, org, statement_contact):
    today = org.today()
    from_date, to_date = today - datetime.timedelta(days=10), today

    response = signed_in.get(
        reverse("books:contact_statement", args=[statement_contact.pk]),
        {"from_date": from_date.isoformat(), "to_date": to_date.isoformat()},
    )

    body = response.content.decode()
    statement = statement_build(contact=statement_contact, from_date=from_date, to_date=to_date)
    assert statement.opening_balance == Decimal("1000.00")
    assert statement.closing_balance == Decimal("1100.00")
    assert "Opening balance" in body and "Closing balance" in body
    assert money_format(Decimal("1000.00"), "INR", organization=org) in body
    assert money_format(Decimal("1100.00"), "INR", organization=org) in body
    assert response.context["tab"] == "statement"


def test_the_statement_defaults_to_the_current_month(signed_in, org, statement_contact):
    response = signed_in.get(reverse("books:contact_statement", args=[statement_contact.pk]))

    statement = response.context["statement"]
    assert (statement.from_date, statement.to_date) == (org.today().replace(day=1), org.today())


def test_the_statement_refuses_a_period_that_ends_before_it_starts(signed_in, org, statement_contact):
    response = signed_in.get(
        reverse("books:contact_statement", args=[statement_contact.pk]),
        {"from_date": "2026-05-10", "to_date": "2026-05-01"},
    )

    assert response.status_code == 200
    assert "The start date must be on or before the end date." in response.content.decode()


def test_the_statement_pdf_is_a_pdf_named_after_the_contact_and_period(signed_in, org, statement_contact):
    response = signed_in.get(
        reverse("books:contact_statement_pdf", args=[statement_contact.pk]),
        {"from_date": "2026-01-01", "to_date": "2026-01-31"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert 'filename="Statement-Acme-Traders-2026-01-01-2026-01-31.pdf"' in response["Content-Disposition"]


# --- Select all matching -------------------------------------------------------------------------


def select_matching(content: str) -> tuple[str, str] | None:
    """The list's "Select all N matching" offer, inside the results a live search swaps: N and the
    filter it posts, if offered."""
    results = content[content.index('<div id="contact-results">') :]
    offer = re.search(r'data-select-matching="(\d+)"', results)
    if offer is None:
        return None
    field = re.search(
        r'<input type="hidden" name="matching" value="([^"]*)" form="contact-bulk-form" disabled', results
    )
    assert f"Select all {offer.group(1)} matching" in results
    return offer.group(1), html.unescape(field.group(1))


@pytest.mark.parametrize(
    ("list_name", "contact_type"), [("books:customer_list", "customer"), ("books:vendor_list", "vendor")]
)
def test_a_contact_list_longer_than_its_page_offers_to_select_all_matching_with_its_filter(
    signed_in, org, monkeypatch, list_name, contact_type
):
    monkeypatch.setattr("books.views.contacts.PAGE_SIZE", 2)
    for n in range(3):
        make_contact(org, name=f"Acme {n}", contact_type=contact_type, whatsapp=True)
    make_contact(org, name="Acme Quiet", contact_type=contact_type, whatsapp=False)
    other = ContactType.VENDOR if contact_type == ContactType.CUSTOMER else ContactType.CUSTOMER
    make_contact(org, name="Acme Other", contact_type=other, whatsapp=True)

    filtered = signed_in.get(reverse(list_name), {"filter": "whatsapp", "q": "acme"}).content.decode()
    assert select_matching(filtered) == ("3", "filter=whatsapp&q=acme")
    assert select_matching(signed_in.get(reverse(list_name), {"q": "acme"}).content.decode()) == ("4", "q=acme")
    # One page holds every match: ticking the page already selects them all.
    assert select_matching(signed_in.get(reverse(list_name), {"q": "quiet"}).content.decode()) is None
