"""The document pages: list, create/edit (lines and payments), detail, PDF, status actions,
permissions and tenant isolation."""

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.kinds import KINDS, KINDS_BY_SLUG
from books.models import Document, Role
from books.permissions import Perm
from books.services.documents import AllocationInput, LineInput, document_create
from books.services.organizations import membership_add

from .factories import UserFactory, make_contact, make_document, make_organization

pytestmark = pytest.mark.django_db

INVOICE = KINDS[DocumentKind.INVOICE]
PAYMENT_RECEIVED = KINDS[DocumentKind.CUSTOMER_PAYMENT]
LINE_KINDS = [spec for spec in KINDS.values() if spec.has_lines]
ZERO = Decimal("0.00")


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def org(user):
    return make_organization(user=user, role="Accountant")


@pytest.fixture
def member(client, user, org):
    client.force_login(user)
    return client


@pytest.fixture
def customer(org):
    return make_contact(org, name="Sharma Traders", persons=2)


def a_document(org, spec, **kwargs):
    """One issued document of ``spec``'s kind (a payment pays nothing unless told)."""
    if spec.is_payment:
        kwargs.setdefault("amount", Decimal("500.00"))
    return make_document(org, kind=spec.kind, **kwargs)


def lines_data(lines):
    data = {
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for index, line in enumerate(lines):
        for name, value in line.items():
            data[f"lines-{index}-{name}"] = value
    return data


def document_post(contact, lines, *, action="save", **fields):
    data = {
        "contact": str(contact.pk) if contact else "",
        "date": "2026-10-01",
        "reference_number": "",
        "currency": "",
        "notes": "",
        "terms": "",
        "action": action,
        **lines_data(lines),
    }
    data.update(fields)
    return data


TWO_LINES = [
    {"item": "Audit", "description": "FY 2025-26", "quantity": "2", "rate": "1500.00", "tax_percent": "18"},
    {"item": "Filing", "description": "", "quantity": "1", "rate": "0", "tax_percent": "0"},
]


def url(name, spec, *args):
    return reverse(f"books:{name}", args=[spec.slug, *args])


# --- List --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(KINDS.values()), ids=lambda s: s.slug)
def test_every_kind_lists_its_documents(member, org, spec):
    document = a_document(org, spec)

    response = member.get(url("document_list", spec))

    assert response.status_code == 200
    content = response.content.decode()
    assert document.number in content
    assert f'name="selected" value="{document.pk}"' in content
    assert "data-select-all" in content
    assert f"badge-{document.effective_status}" in content


def test_the_overdue_tab_shows_only_overdue_invoices(member, org):
    today = org.today()
    late = make_document(org, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=10))
    on_time = make_document(org, date=today, due_date=today + datetime.timedelta(days=15))

    response = member.get(url("document_list", INVOICE), {"status": "overdue"})

    content = response.content.decode()
    assert late.number in content
    assert on_time.number not in content
    assert "badge-overdue" in content


def test_search_matches_number_customer_name_and_reference(member, org):
    sharma = make_document(org, contact=make_contact(org, name="Sharma Traders"))
    patel = make_document(org, contact=make_contact(org, name="Patel Stores"))
    Document.objects.filter(pk=patel.pk).update(reference_number="PO-7781")

    by_name = member.get(url("document_list", INVOICE), {"q": "sharma"}).content.decode()
    by_reference = member.get(url("document_list", INVOICE), {"q": "7781"}).content.decode()
    by_number = member.get(url("document_list", INVOICE), {"q": sharma.number}).content.decode()

    assert sharma.number in by_name and patel.number not in by_name
    assert patel.number in by_reference and sharma.number not in by_reference
    assert sharma.number in by_number and patel.number not in by_number


def test_the_list_paginates_at_25(member, org):
    contact = make_contact(org)
    for _ in range(26):
        make_document(org, contact=contact, share_with=[])

    first = member.get(url("document_list", INVOICE))
    second = member.get(url("document_list", INVOICE), {"page": 2})

    assert len(first.context["documents"]) == 25
    assert len(second.context["documents"]) == 1


def test_the_list_query_count_does_not_grow_with_rows(member, org):
    contact = make_contact(org)
    make_document(org, contact=contact, share_with=[])
    with CaptureQueriesContext(connection) as one:
        assert member.get(url("document_list", INVOICE)).status_code == 200
    for _ in range(29):
        make_document(org, contact=make_contact(org), share_with=[])

    with CaptureQueriesContext(connection) as thirty:
        response = member.get(url("document_list", INVOICE))

    assert len(response.context["documents"]) == 25
    assert len(thirty) == len(one)
    assert len(thirty) <= 8  # session, user, membership, count, page (+ context processor)


# --- Create and edit ---------------------------------------------------------------------------


def test_an_invoice_is_created_with_two_lines_and_issued(member, org, user, customer):
    persons = list(customer.persons.all())

    response = member.post(
        url("document_create", INVOICE),
        document_post(customer, TWO_LINES, share_with=[str(persons[1].pk)], reference_number="PO-1"),
    )

    invoice = Document.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("document_detail", INVOICE, invoice.pk)
    assert invoice.number == "INV-000001"
    assert invoice.status == DocumentStatus.SENT
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("3000.00"),
        Decimal("540.00"),
        Decimal("3540.00"),
    )
    assert [line.item for line in invoice.lines.all()] == ["Audit", "Filing"]
    assert invoice.currency == "INR"
    assert invoice.reference_number == "PO-1"
    # Left empty, the due date follows the customer's payment terms.
    assert invoice.due_date == datetime.date(2026, 10, 1) + datetime.timedelta(days=customer.payment_terms_days)
    assert list(invoice.share_with.all()) == [persons[1]]
    assert invoice.created_by == user


def test_save_as_draft_keeps_the_document_a_draft(member, org, customer):
    member.post(url("document_create", INVOICE), document_post(customer, TWO_LINES, action="draft"))

    assert Document.objects.get().status == DocumentStatus.DRAFT


def test_blank_and_removed_lines_are_ignored(member, org, customer):
    lines = [
        *TWO_LINES,
        {"item": "", "description": "", "quantity": "1", "rate": "", "tax_percent": "0"},
        {"item": "Removed", "description": "", "quantity": "1", "rate": "99", "tax_percent": "0", "DELETE": "on"},
    ]

    member.post(url("document_create", INVOICE), document_post(customer, lines))

    assert Document.objects.get().total == Decimal("3540.00")


@pytest.mark.parametrize("spec", LINE_KINDS, ids=lambda s: s.slug)
def test_every_kind_with_lines_can_be_created_from_its_form(member, org, spec):
    contact = make_contact(org, contact_type=spec.party)

    form = member.get(url("document_create", spec), {"contact": contact.pk})
    response = member.post(url("document_create", spec), document_post(contact, TWO_LINES))

    assert form.status_code == 200
    assert 'name="lines-TOTAL_FORMS"' in form.content.decode()
    assert response.status_code == 302
    document = Document.objects.get()
    assert (document.kind, document.total, document.status) == (spec.kind, Decimal("3540.00"), spec.issued_status)


def _invalid_cases():
    return {
        "no lines": lambda org, customer: document_post(customer, []),
        "only blank lines": lambda org, customer: document_post(
            customer, [{"item": "", "quantity": "1", "rate": "", "tax_percent": "0"}]
        ),
        "negative quantity": lambda org, customer: document_post(
            customer, [{"item": "Audit", "quantity": "-2", "rate": "10", "tax_percent": "0"}]
        ),
        "bad decimal": lambda org, customer: document_post(
            customer, [{"item": "Audit", "quantity": "1", "rate": "abc", "tax_percent": "0"}]
        ),
        "tax over 100": lambda org, customer: document_post(
            customer, [{"item": "Audit", "quantity": "1", "rate": "10", "tax_percent": "180"}]
        ),
        "contact of another organization": lambda org, customer: document_post(
            make_contact(make_organization(name="Other")), TWO_LINES
        ),
        "vendor on an invoice": lambda org, customer: document_post(
            make_contact(org, contact_type=ContactType.VENDOR), TWO_LINES
        ),
        "no contact": lambda org, customer: document_post(None, TWO_LINES),
        "due date before date": lambda org, customer: document_post(customer, TWO_LINES, due_date="2026-09-01"),
        "bad currency": lambda org, customer: document_post(customer, TWO_LINES, currency="rupees"),
        "amount too large": lambda org, customer: document_post(
            customer, [{"item": "Audit", "quantity": "99999999999", "rate": "9999999999999999", "tax_percent": "18"}]
        ),
        "person of another contact": lambda org, customer: document_post(
            customer, TWO_LINES, share_with=[str(make_contact(org).persons.first().pk)]
        ),
    }


@pytest.mark.parametrize("case", list(_invalid_cases()))
def test_invalid_input_shows_errors_and_saves_nothing(member, org, customer, case):
    data = _invalid_cases()[case](org, customer)

    response = member.post(url("document_create", INVOICE), data)

    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert not Document.objects.exists()


def test_the_no_lines_error_says_what_to_do(member, org, customer):
    response = member.post(url("document_create", INVOICE), document_post(customer, []))

    assert "Add at least one line item." in response.content.decode()


def test_a_service_error_lands_on_its_field_and_nothing_is_saved(member, org, customer):
    make_document(org, contact=customer)  # takes INV-000001
    Document.objects.update(number="INV-000002")  # the series' next number is now taken: skipped, not an error
    response = member.post(url("document_create", INVOICE), document_post(customer, TWO_LINES, due_date="2026-09-01"))

    assert response.status_code == 200
    assert "The due date cannot be before the document date." in response.content.decode()
    assert Document.objects.count() == 1


def test_editing_changes_lines_and_keeps_the_status(member, org, customer):
    invoice = make_document(org, contact=customer, issue=False)
    form = member.get(url("document_edit", INVOICE, invoice.pk))
    assert form.status_code == 200
    assert 'value="Consulting"' in form.content.decode()

    response = member.post(
        url("document_edit", INVOICE, invoice.pk),
        document_post(
            customer,
            [{"item": "Consulting", "quantity": "3", "rate": "1000", "tax_percent": "0"}],
            due_date="2026-10-31",
            terms="Net 30",
        ),
    )

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.total, invoice.status, invoice.terms) == (Decimal("3000.00"), DocumentStatus.DRAFT, "Net 30")
    assert invoice.due_date == datetime.date(2026, 10, 31)


def test_a_void_document_cannot_be_edited(member, org):
    invoice = make_document(org)
    Document.objects.filter(pk=invoice.pk).update(status=DocumentStatus.VOID)

    response = member.get(url("document_edit", INVOICE, invoice.pk))

    assert response.status_code == 302


def test_the_contact_persons_fragment_lists_the_chosen_contacts_persons(member, org, customer):
    other = make_contact(make_organization(name="Other"))

    response = member.get(url("document_contact_persons", INVOICE), {"contact": customer.pk})
    foreign = member.get(url("document_contact_persons", INVOICE), {"contact": other.pk})

    content = response.content.decode()
    for person in customer.persons.all():
        assert person.first_name in content
        assert f'value="{person.pk}"' in content
    assert "badge-whatsapp" in content
    assert content.count(" checked") == 1  # the primary person, by default
    assert "Person0" not in foreign.content.decode()


# --- Payments ----------------------------------------------------------------------------------


def payment_post(contact, amount, applied, **fields):
    data = {
        "contact": str(contact.pk),
        "date": "2026-10-05",
        "amount": amount,
        "payment_mode": "bank_transfer",
        "reference_number": "UTR-1",
        "currency": "",
        "notes": "",
        "action": "save",
    }
    data.update({f"apply_{doc.pk}": value for doc, value in applied.items()})
    data.update(fields)
    return data


def test_a_payment_recorded_through_the_form_reduces_the_invoice_balance(member, org, customer):
    invoice = make_document(org, contact=customer, date=datetime.date(2026, 10, 1))

    response = member.post(url("document_create", PAYMENT_RECEIVED), payment_post(customer, "1000", {invoice: "1000"}))

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.balance, invoice.status) == (Decimal("2540.00"), DocumentStatus.PARTIALLY_PAID)
    payment = Document.objects.get(kind=DocumentKind.CUSTOMER_PAYMENT)
    assert (payment.total, payment.balance, payment.payment_mode) == (Decimal("1000.00"), ZERO, "bank_transfer")
    detail = member.get(url("document_detail", PAYMENT_RECEIVED, payment.pk)).content.decode()
    assert invoice.number in detail


@pytest.mark.parametrize(
    ("amount", "applied", "message"),
    [
        ("5000", "5000", "has a balance of"),
        ("100", "200", "exceed the amount"),
        ("100", "abc", "Enter a number."),
        ("0", "", "Enter an amount greater than zero."),
    ],
    ids=["more than the balance", "more than the amount", "bad decimal", "zero amount"],
)
def test_a_payment_that_cannot_be_applied_shows_why_and_saves_nothing(member, org, customer, amount, applied, message):
    invoice = make_document(org, contact=customer)

    response = member.post(url("document_create", PAYMENT_RECEIVED), payment_post(customer, amount, {invoice: applied}))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Document.objects.filter(kind=DocumentKind.CUSTOMER_PAYMENT).exists()
    invoice.refresh_from_db()
    assert invoice.balance == Decimal("3540.00")


def test_record_payment_prefills_the_payment_form_from_the_invoice(member, org, customer):
    invoice = make_document(org, contact=customer)
    detail = member.get(url("document_detail", INVOICE, invoice.pk)).content.decode()
    record_url = f"{url('document_create', PAYMENT_RECEIVED)}?contact={customer.pk}&amp;invoice={invoice.pk}"
    assert record_url in detail

    response = member.get(url("document_create", PAYMENT_RECEIVED), {"invoice": invoice.pk})

    content = response.content.decode()
    assert response.context["editor"].contact == customer
    assert f'name="apply_{invoice.pk}" value="3540.00"' in content
    assert 'name="amount" value="3540.00"' in content


def test_the_open_documents_fragment_lists_only_issued_documents_with_a_balance(member, org, customer):
    sent = make_document(org, contact=customer)
    draft = make_document(org, contact=customer, issue=False)
    paid = make_document(org, contact=customer, lines=[LineInput("A", Decimal("1"), Decimal("10"))])
    document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        date=org.today(),
        amount=Decimal("10"),
        allocations=[AllocationInput(paid, Decimal("10"))],
    )

    content = member.get(url("document_open_documents", PAYMENT_RECEIVED), {"contact": customer.pk}).content.decode()

    assert f"apply_{sent.pk}" in content
    assert f"apply_{draft.pk}" not in content
    assert f"apply_{paid.pk}" not in content


def test_editing_a_payment_shows_and_replaces_what_it_applies(member, org, customer):
    invoice = make_document(org, contact=customer)
    payment = document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        date=org.today(),
        amount=Decimal("3540"),
        allocations=[AllocationInput(invoice, Decimal("3540"))],
    )
    form = member.get(url("document_edit", PAYMENT_RECEIVED, payment.pk)).content.decode()
    assert f'name="apply_{invoice.pk}" value="3540.00"' in form

    member.post(url("document_edit", PAYMENT_RECEIVED, payment.pk), payment_post(customer, "3540", {invoice: "540"}))

    invoice.refresh_from_db()
    assert invoice.balance == Decimal("3000.00")


# --- Detail and actions ------------------------------------------------------------------------


def test_the_detail_page_shows_lines_totals_payments_share_with_and_history(member, org, user, customer):
    today = org.today()
    invoice = make_document(
        org, contact=customer, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=3)
    )
    Document.objects.filter(pk=invoice.pk).update(created_by=user)
    payment = document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        date=today,
        amount=Decimal("540"),
        allocations=[AllocationInput(invoice, Decimal("540"))],
    )

    response = member.get(url("document_detail", INVOICE, invoice.pk))

    content = response.content.decode()
    assert "Consulting" in content
    assert "₹3,540.00" in content and "₹3,000.00" in content  # total and balance due
    assert "Overdue by 3 days" in content
    assert payment.number in content
    assert customer.persons.first().first_name in content
    assert "Invoice created" in content and user.username in content
    assert response.context["history"][0].kind in {"payment", "created", "updated"}
    assert url("document_pdf", INVOICE, invoice.pk) in content


@pytest.mark.parametrize("spec", list(KINDS.values()), ids=lambda s: s.slug)
def test_every_kind_has_a_detail_page(member, org, spec):
    document = a_document(org, spec)

    response = member.get(url("document_detail", spec, document.pk))

    assert response.status_code == 200
    assert document.number in response.content.decode()


def test_mark_as_sent_issues_a_draft(member, org):
    invoice = make_document(org, issue=False)

    response = member.post(url("document_issue", INVOICE, invoice.pk))

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == DocumentStatus.SENT


def test_a_quote_can_be_marked_accepted(member, org):
    spec = KINDS[DocumentKind.ESTIMATE]
    quote = make_document(org, kind=spec.kind)
    assert "Mark as accepted" in member.get(url("document_detail", spec, quote.pk)).content.decode()

    member.post(url("document_status", spec, quote.pk), {"status": "accepted"})

    quote.refresh_from_db()
    assert quote.status == DocumentStatus.ACCEPTED


def test_a_status_the_kind_does_not_have_is_refused_with_a_message(member, org):
    spec = KINDS[DocumentKind.ESTIMATE]
    quote = make_document(org, kind=spec.kind)

    response = member.post(url("document_status", spec, quote.pk), {"status": "paid"}, follow=True)

    quote.refresh_from_db()
    assert quote.status == DocumentStatus.SENT
    assert "is not a status you can set here" in response.content.decode()


def test_invoices_have_no_hand_set_statuses(member, org):
    invoice = make_document(org)

    assert member.post(url("document_status", INVOICE, invoice.pk), {"status": "paid"}).status_code == 404


def test_void_voids_a_document(member, org):
    invoice = make_document(org)

    member.post(url("document_void", INVOICE, invoice.pk))

    invoice.refresh_from_db()
    assert invoice.status == DocumentStatus.VOID


def test_void_is_refused_with_the_services_message_when_payments_are_applied(member, org, customer):
    invoice = make_document(org, contact=customer)
    document_create(
        organization=org,
        kind=DocumentKind.CUSTOMER_PAYMENT,
        contact=customer,
        date=org.today(),
        amount=Decimal("100"),
        allocations=[AllocationInput(invoice, Decimal("100"))],
    )

    response = member.post(url("document_void", INVOICE, invoice.pk), follow=True)

    assert response.status_code == 200
    assert f"Remove the payments and credits applied to {invoice.number} first." in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == DocumentStatus.PARTIALLY_PAID


def test_actions_only_accept_post(member, org):
    invoice = make_document(org, issue=False)

    for name in ("document_issue", "document_void", "document_status"):
        assert member.get(url(name, INVOICE, invoice.pk)).status_code == 405
    invoice.refresh_from_db()
    assert invoice.status == DocumentStatus.DRAFT


# --- PDF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(KINDS.values()), ids=lambda s: s.slug)
def test_every_kind_has_a_pdf(member, org, spec):
    document = a_document(org, spec)

    response = member.get(url("document_pdf", spec, document.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response["Content-Disposition"] == f'inline; filename="{document.number}.pdf"'


def test_the_pdf_downloads_as_an_attachment_when_asked(member, org):
    invoice = make_document(org)

    response = member.get(url("document_pdf", INVOICE, invoice.pk), {"download": "1"})

    assert response["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'


# --- Tenant isolation, kinds and permissions ---------------------------------------------------

GET_PAGES = ("document_detail", "document_edit", "document_pdf")
POST_ACTIONS = ("document_issue", "document_void", "document_status", "document_edit")


@pytest.mark.parametrize("name", GET_PAGES + POST_ACTIONS)
def test_another_organizations_document_is_not_found(member, org, name):
    spec = KINDS[DocumentKind.ESTIMATE]  # a kind every action applies to
    foreign = make_document(make_organization(name="Other"), kind=spec.kind, issue=False)
    method = member.get if name in GET_PAGES and name not in POST_ACTIONS else member.post

    response = method(url(name, spec, foreign.pk), {"status": "accepted"} if method == member.post else {})

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == DocumentStatus.DRAFT


def test_another_organizations_documents_and_contacts_never_show(member, org):
    other = make_organization(name="Other")
    foreign = make_document(other)
    foreign_payment_target = make_document(other)

    listing = member.get(url("document_list", INVOICE), {"q": foreign.number})
    form = member.get(url("document_create", INVOICE)).content.decode()
    prefill = member.get(url("document_create", PAYMENT_RECEIVED), {"invoice": foreign_payment_target.pk})
    apply = member.get(url("document_open_documents", PAYMENT_RECEIVED), {"contact": foreign.contact_id})

    assert list(listing.context["documents"]) == []
    assert foreign.contact.display_name not in form
    assert prefill.context["editor"].contact is None
    assert f"apply_{foreign_payment_target.pk}" not in prefill.content.decode()
    assert foreign.number not in apply.content.decode()


@pytest.mark.parametrize("name", GET_PAGES + POST_ACTIONS)
def test_a_document_under_another_kinds_url_is_not_found(member, org, name):
    invoice = make_document(org, issue=False)
    quotes = KINDS[DocumentKind.ESTIMATE]
    method = member.get if name in GET_PAGES and name not in POST_ACTIONS else member.post

    assert method(url(name, quotes, invoice.pk)).status_code == 404


def test_an_unknown_kind_is_not_found(member):
    assert member.get("/widgets/").status_code == 404


def test_staff_can_view_and_create_sales_documents_but_not_purchases(client, org):
    staff = UserFactory()
    membership_add(organization=org, user=staff, role_name="Staff")
    client.force_login(staff)
    invoice = make_document(org)
    bills = KINDS_BY_SLUG["bills"]

    assert client.get(url("document_list", INVOICE)).status_code == 200
    assert client.get(url("document_detail", INVOICE, invoice.pk)).status_code == 200
    assert client.get(url("document_create", INVOICE)).status_code == 200
    assert client.get(url("document_list", bills)).status_code == 200
    assert client.get(url("document_create", bills)).status_code == 403


def test_a_role_without_sales_manage_can_view_but_not_write(client, org):
    viewer = UserFactory()
    Role.objects.create(organization=org, name="Viewer", permissions=[Perm.SALES_VIEW])
    membership_add(organization=org, user=viewer, role_name="Viewer")
    client.force_login(viewer)
    invoice = make_document(org, issue=False)

    assert client.get(url("document_list", INVOICE)).status_code == 200
    assert client.get(url("document_detail", INVOICE, invoice.pk)).status_code == 200
    assert client.get(url("document_pdf", INVOICE, invoice.pk)).status_code == 200
    assert client.get(url("document_create", INVOICE)).status_code == 403
    assert client.post(url("document_create", INVOICE), document_post(invoice.contact, TWO_LINES)).status_code == 403
    for name in ("document_edit", "document_issue", "document_void"):
        assert client.post(url(name, INVOICE, invoice.pk)).status_code == 403
    assert client.get(url("document_list", KINDS_BY_SLUG["bills"])).status_code == 403
    assert Document.objects.count() == 1
    detail = client.get(url("document_detail", INVOICE, invoice.pk)).content.decode()
    assert url("document_edit", INVOICE, invoice.pk) not in detail


def test_anonymous_users_are_sent_to_the_login_page(client, org):
    response = client.get(url("document_list", INVOICE))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_without_an_organization_is_told_so(client):
    client.force_login(UserFactory())

    response = client.get(url("document_list", INVOICE))

    assert response.status_code == 403


# --- Select all matching -------------------------------------------------------------------------


def select_matching(content: str) -> tuple[str, str] | None:
    """The list's "Select all N matching" offer: N and the filter it posts, if offered."""
    offer = re.search(r'data-select-matching="(\d+)"', content)
    if offer is None:
        return None
    field = re.search(
        r'<input type="hidden" name="matching" value="([^"]*)" form="document-bulk-form" disabled', content
    )
    assert f"Select all {offer.group(1)} matching" in content
    return offer.group(1), html.unescape(field.group(1))


@pytest.mark.parametrize("spec", list(KINDS.values()), ids=lambda s: s.slug)
def test_a_list_longer_than_its_page_offers_to_select_all_matching_with_its_filter(member, org, spec, monkeypatch):
    monkeypatch.setattr("books.views.documents.PAGE_SIZE", 2)
    sharma = make_contact(org, name="Sharma & Sons", contact_type=spec.party)
    for _ in range(3):
        a_document(org, spec, contact=sharma)
    a_document(org, spec, contact=make_contact(org, name="Patel Stores", contact_type=spec.party))

    searched = member.get(url("document_list", spec), {"q": "sharma & sons"}).content.decode()
    assert select_matching(searched) == ("3", "q=sharma+%26+sons")
    # One page holds every match: ticking the page already selects them all.
    assert select_matching(member.get(url("document_list", spec), {"q": "patel"}).content.decode()) is None


def test_select_all_matching_carries_the_status_tab_and_the_search(member, org, monkeypatch):
    monkeypatch.setattr("books.views.documents.PAGE_SIZE", 1)
    today = org.today()
    for _ in range(2):
        make_document(org, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=10))
    make_document(org)

    content = member.get(url("document_list", INVOICE), {"status": "overdue", "q": " Customer ", "page": 2})
    assert select_matching(content.content.decode()) == ("2", "status=overdue&q=Customer")
    unknown = member.get(url("document_list", INVOICE), {"status": "nonsense"}).content.decode()
    assert select_matching(unknown) == ("3", "")  # an unknown status is the whole list, as the list shows
