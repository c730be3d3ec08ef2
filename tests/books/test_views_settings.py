"""Settings (organization profile, users and roles), the dashboard and the reports."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from books.choices import DocumentKind
from books.models import Organization, Role
from books.permissions import Perm
from books.services.documents import AllocationInput, LineInput
from books.services.organizations import membership_add

from .factories import UserFactory, make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db

SETTINGS_PAGES = ["books:settings", "books:settings_organization", "books:settings_roles", "books:settings_role_create"]


@pytest.fixture
def admin():
    return UserFactory()


@pytest.fixture
def org(admin):
    return make_organization(user=admin)


@pytest.fixture
def signed_in(client, admin, org):
    client.force_login(admin)
    return client


def member_client(client, org, role: str):
    user = UserFactory()
    membership_add(organization=org, user=user, role_name=role)
    client.force_login(user)
    return client


def organization_post(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Acme Books",
        "country": "IN",
        "currency": "INR",
        "time_zone": "Asia/Kolkata",
        "phone_region": "IN",
        "date_format": "dd/MM/yyyy",
        "language": "en",
        "email": "books@acme.example",
        "phone": "022 2345 6789",
        "address": "Mumbai",
        "tax_id": "27AAAPL1234C1ZV",
    }
    data.update(overrides)
    return data


# --- Access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SETTINGS_PAGES)
def test_settings_pages_send_anonymous_visitors_to_the_login_page(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", SETTINGS_PAGES)
def test_a_staff_member_cannot_open_the_settings(client, org, name):
    staff = member_client(client, org, "Staff")

    assert staff.get(reverse(name)).status_code == 403


def test_a_staff_member_cannot_change_the_organization(client, org):
    staff = member_client(client, org, "Staff")

    response = staff.post(reverse("books:settings_organization"), organization_post(name="Hijacked"))

    assert response.status_code == 403
    org.refresh_from_db()
    assert org.name == "Acme Books"


def test_the_403_page_keeps_the_app_shell(client, org):
    staff = member_client(client, org, "Staff")

    response = staff.get(reverse("books:settings"))

    body = response.content.decode()
    assert "You don’t have access to this page" in body
    assert reverse("books:customer_list") in body  # the sidebar is there
    assert reverse("books:settings") not in body.split("</aside>")[0]  # without the link Staff cannot use


def test_the_404_page_renders_for_anonymous_visitors(client):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "We couldn’t find that page" in response.content.decode()


def test_the_sidebar_lists_sales_in_zoho_books_order(signed_in):
    body = signed_in.get(reverse("books:dashboard")).content.decode()

    slugs = [
        "quotes",
        "salesorders",
        "invoices",
        "retainerinvoices",
        "salesreceipts",
        "paymentsreceived",
        "creditnotes",
    ]
    positions = [body.index(reverse("books:document_list", args=[slug])) for slug in slugs]
    assert body.index(reverse("books:customer_list")) < positions[0]
    assert positions == sorted(positions)


def test_an_accountant_sees_the_settings_link_only_when_allowed(client, org):
    accountant = member_client(client, org, "Accountant")

    body = accountant.get(reverse("books:dashboard")).content.decode()

    assert reverse("books:settings") not in body
    assert accountant.get(reverse("books:settings")).status_code == 403


# --- Organization profile ----------------------------------------------------------------------


def test_an_admin_edits_the_organization_profile(signed_in, org):
    response = signed_in.post(
        reverse("books:settings_organization"),
        organization_post(name="Acme Books LLP", time_zone="Asia/Dubai", currency="AED", date_format="yyyy-MM-dd"),
    )

    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.name, org.time_zone, org.currency, org.date_format) == (
        "Acme Books LLP",
        "Asia/Dubai",
        "AED",
        "yyyy-MM-dd",
    )
    assert org.phone == "+912223456789"  # read in the default phone region


def test_the_organization_profile_refuses_an_unknown_time_zone(signed_in, org):
    response = signed_in.post(reverse("books:settings_organization"), organization_post(time_zone="Mars/Olympus"))

    assert response.status_code == 200
    assert response.context["form"].errors["time_zone"]
    assert "Mars/Olympus is not an IANA time zone" in response.content.decode()
    assert Organization.objects.get(pk=org.pk).time_zone == "Asia/Kolkata"


def test_the_organization_profile_refuses_an_invalid_phone(signed_in, org):
    response = signed_in.post(reverse("books:settings_organization"), organization_post(phone="12345"))

    assert response.status_code == 200
    assert response.context["form"].errors["phone"]


# --- Users and roles ---------------------------------------------------------------------------


def test_the_roles_page_lists_members_and_roles(signed_in, org, admin):
    other = UserFactory(username="meera", email="meera@example.com")
    membership_add(organization=org, user=other, role_name="Staff")

    response = signed_in.get(reverse("books:settings_roles"))

    body = response.content.decode()
    assert "meera@example.com" in body and admin.username in body
    for name in ("Admin", "Accountant", "Staff"):
        assert name in body


def test_an_admin_creates_a_custom_role(signed_in, org):
    response = signed_in.post(
        reverse("books:settings_role_create"),
        {"name": "Collections", "permissions": [Perm.NOTIFICATIONS_SEND, Perm.CUSTOMERS_VIEW, Perm.REPORTS_VIEW]},
    )

    assert response.status_code == 302
    role = Role.objects.get(organization=org, name="Collections")
    assert not role.is_builtin
    assert role.permissions == [Perm.CUSTOMERS_VIEW, Perm.NOTIFICATIONS_SEND, Perm.REPORTS_VIEW]


def test_the_role_form_groups_every_permission(signed_in):
    response = signed_in.get(reverse("books:settings_role_create"))

    groups = response.context["form"].grouped_permissions()
    labels = [str(g["label"]) for g in groups]
    assert labels == ["Customers", "Vendors", "Sales", "Purchases", "Notifications", "Reports", "Settings"]
    codes = [box.data["value"] for g in groups for box, _label in g["items"]]
    assert sorted(codes) == sorted(Perm.values)
    assert "Communication (WhatsApp chat)" in response.content.decode()


def test_an_admin_edits_a_custom_role(signed_in, org):
    role = Role.objects.create(organization=org, name="Collections", permissions=[Perm.CUSTOMERS_VIEW])

    response = signed_in.post(
        reverse("books:settings_role_edit", args=[role.pk]),
        {"name": "Collections team", "permissions": [Perm.CUSTOMERS_VIEW, Perm.CUSTOMERS_COMMUNICATION]},
    )

    assert response.status_code == 302
    role.refresh_from_db()
    assert role.name == "Collections team"
    assert role.permissions == [Perm.CUSTOMERS_VIEW, Perm.CUSTOMERS_COMMUNICATION]


def test_a_role_name_is_unique_in_the_organization(signed_in, org):
    response = signed_in.post(reverse("books:settings_role_create"), {"name": "staff", "permissions": []})

    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert Role.objects.filter(organization=org).count() == 3


def test_built_in_roles_are_read_only(signed_in, org):
    staff_role = Role.objects.get(organization=org, name="Staff")
    before = list(staff_role.permissions)

    page = signed_in.get(reverse("books:settings_role_edit", args=[staff_role.pk]))
    response = signed_in.post(
        reverse("books:settings_role_edit", args=[staff_role.pk]),
        {"name": "Staff", "permissions": list(Perm.values)},
    )

    assert page.status_code == 200
    assert all(field.disabled for field in page.context["form"].fields.values())
    assert response.status_code == 403
    staff_role.refresh_from_db()
    assert staff_role.permissions == before


def test_another_organizations_role_is_not_found(signed_in):
    foreign = Role.objects.create(organization=make_organization(name="Other"), name="Theirs", permissions=[])

    assert signed_in.get(reverse("books:settings_role_edit", args=[foreign.pk])).status_code == 404


def test_a_custom_role_decides_what_its_members_can_open(client, org):
    Role.objects.create(organization=org, name="Reader", permissions=[Perm.CUSTOMERS_VIEW, Perm.REPORTS_VIEW])
    reader = member_client(client, org, "Reader")

    assert reader.get(reverse("books:customer_list")).status_code == 200
    assert reader.get(reverse("books:reports")).status_code == 200
    assert reader.get(reverse("books:vendor_list")).status_code == 403
    assert reader.get(reverse("books:customer_create")).status_code == 403


# --- Dashboard and reports ---------------------------------------------------------------------


def test_the_dashboard_shows_kpis_and_overdue_invoices(signed_in, org):
    contact = make_contact(org, name="Late Payer")
    late = make_document(
        org,
        contact=contact,
        date=org.today() - datetime.timedelta(days=40),
        due_date=org.today() - datetime.timedelta(days=10),
    )
    make_document(org, contact=contact, issue=False)

    response = signed_in.get(reverse("books:dashboard"))

    body = response.content.decode()
    assert response.context["summary"].overdue_count == 1
    assert response.context["overdue_invoices"] == [late]
    assert reverse("books:document_detail", args=["invoices", late.pk]) in body
    assert "10 days" in body
    assert "₹3,540.00" in body


def test_the_customer_balances_report_sums_per_customer_in_one_query(signed_in, org, django_assert_max_num_queries):
    acme = make_contact(org, name="Acme Traders")
    invoice = make_document(org, contact=acme, lines=[LineInput("Audit", Decimal("1"), Decimal("1000"))])
    make_document(org, contact=acme, lines=[LineInput("Filing", Decimal("1"), Decimal("500"))])
    make_document(
        org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=acme,
        amount=Decimal("400"),
        allocations=[AllocationInput(invoice, Decimal("400"))],
    )
    for i in range(5):
        make_document(org, contact=make_contact(org, name=f"Other {i}"))

    with django_assert_max_num_queries(6):
        response = signed_in.get(reverse("books:report_customer_balances"))

    rows = {row["contact"].display_name: row for row in response.context["rows"]}
    assert len(rows) == 6
    acme_row = rows["Acme Traders"]
    assert (acme_row["invoiced"], acme_row["received"], acme_row["balance_due"]) == (
        "₹1,500.00",
        "₹400.00",
        "₹1,100.00",
    )


def test_the_reports_need_the_reports_permission(client, org):
    staff = member_client(client, org, "Staff")

    assert staff.get(reverse("books:reports")).status_code == 403
    assert staff.get(reverse("books:report_customer_balances")).status_code == 403
