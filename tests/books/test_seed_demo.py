import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.kinds import KINDS
from books.models import Allocation, Contact, ContactPerson, Document, LineItem, Membership, Organization
from books.permissions import Perm
from books.selectors import document_list

pytestmark = pytest.mark.django_db

MODELS = (Organization, Membership, Contact, ContactPerson, Document, LineItem, Allocation, get_user_model())


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def demo(monkeypatch) -> Organization:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    seed()
    return Organization.objects.get(name="Demo Traders")


def test_it_prints_what_it_created_and_the_login(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)

    output = seed()

    assert "Created the demo organization Demo Traders" in output
    assert "Demo login: demo / demo-whatsapp-2026" in output
    assert "http://127.0.0.1:8000/" in output


def test_running_it_twice_changes_nothing(demo):
    before = counts()

    output = seed()

    assert "Demo data already present" in output
    assert counts() == before


def test_the_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-pass")

    output = seed()

    assert "Demo login: demo / another-demo-pass" in output
    assert get_user_model().objects.get(username="demo").check_password("another-demo-pass")


def test_the_demo_user_logs_in_as_admin_but_not_superuser(demo, client):
    user = get_user_model().objects.get(username="demo")
    membership = Membership.objects.get(user=user, organization=demo)

    assert client.login(username="demo", password="demo-whatsapp-2026")
    assert (user.is_staff, user.is_superuser) == (True, False)
    assert membership.role.name == "Admin"
    assert membership.has_perm(Perm.SETTINGS_MANAGE)


def test_the_organization_is_indian(demo):
    assert (demo.country, demo.currency, demo.time_zone, demo.phone_region) == ("IN", "INR", "Asia/Kolkata", "IN")
    assert demo.date_format == "dd/MM/yyyy"
    assert "Mumbai" in demo.address
    assert demo.tax_id


def test_it_creates_customers_and_vendors_with_e164_mobiles(demo):
    customers = demo.contacts.filter(contact_type=ContactType.CUSTOMER)
    vendors = demo.contacts.filter(contact_type=ContactType.VENDOR)
    persons = ContactPerson.objects.filter(contact__organization=demo)

    assert customers.count() >= 6
    assert vendors.count() >= 3
    assert all(1 <= contact.persons.count() <= 2 for contact in demo.contacts.all())
    valid = [p for p in persons if p.mobile_is_valid]
    assert len(valid) == persons.count() - 1
    assert all(p.mobile.startswith("+91") for p in valid)


def test_one_customer_has_no_whatsapp_and_one_person_an_invalid_mobile(demo):
    persons = ContactPerson.objects.filter(contact__organization=demo)

    assert demo.contacts.filter(contact_type=ContactType.CUSTOMER, whatsapp_enabled=False).count() == 1
    invalid = [p for p in persons if not p.mobile_is_valid]
    assert [p.mobile for p in invalid] == ["98200"]
    assert invalid[0].contact.whatsapp_enabled


def test_invoices_are_in_every_status(demo):
    def invoices(status: str) -> int:
        return document_list(organization=demo, kind=DocumentKind.INVOICE, status=status).count()

    assert invoices(DocumentStatus.OVERDUE) >= 3
    for status in (DocumentStatus.DRAFT, DocumentStatus.SENT, DocumentStatus.PARTIALLY_PAID):
        assert invoices(status) >= 1, status
    for status in (DocumentStatus.PAID, DocumentStatus.VOID):
        assert invoices(status) >= 1, status


def test_overdue_invoices_span_weeks_to_months(demo):
    today = demo.today()
    overdue = document_list(organization=demo, kind=DocumentKind.INVOICE, status=DocumentStatus.OVERDUE)

    assert sorted((today - d.due_date).days for d in overdue) == [5, 20, 45, 75]


def test_every_kind_is_present(demo):
    kinds = set(Document.objects.filter(organization=demo).values_list("kind", flat=True))

    assert kinds == set(KINDS)


def test_payments_are_applied_and_bills_are_open_and_overdue(demo):
    bills = document_list(organization=demo, kind=DocumentKind.BILL)

    assert Allocation.objects.filter(organization=demo, source__kind=DocumentKind.CUSTOMER_PAYMENT).exists()
    assert Allocation.objects.filter(organization=demo, source__kind=DocumentKind.VENDOR_PAYMENT).exists()
    assert {b.effective_status for b in bills} >= {DocumentStatus.OPEN, DocumentStatus.OVERDUE}


def test_a_second_run_prints_a_login_that_works(demo, monkeypatch, client):
    monkeypatch.setenv("DEMO_PASSWORD", "changed-demo-pass")

    output = seed()

    assert "Demo login: demo / changed-demo-pass" in output
    assert client.login(username="demo", password="changed-demo-pass")
