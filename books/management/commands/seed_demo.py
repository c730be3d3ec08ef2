"""``python manage.py seed_demo``: an Indian demo organization with customers, vendors and documents
in every kind and every status, so that ``make run`` opens on something to look at.

Idempotent: the organization is found by name ("Demo Traders") and, when present, nothing is
written. Every row is made through the services, so the demo data obeys the same rules as real
data (E.164 phones, numbered documents, totals and balances computed, payments applied).
"""

import datetime
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand
from django.db import transaction

from books.choices import ContactType, DateFormat, DocumentKind, DocumentStatus, PaymentMode
from books.models import Contact, ContactPerson, Document, Organization
from books.services.contacts import contact_create
from books.services.documents import AllocationInput, LineInput, document_create, document_void
from books.services.organizations import membership_add, organization_create

DEMO_ORGANIZATION = "Demo Traders"
DEMO_USERNAME = "demo"
DEFAULT_DEMO_PASSWORD = "demo-whatsapp-2026"  # noqa: S105 - a published demo login, not a secret
DEMO_URL = "http://127.0.0.1:8000/"

NOTES = "Thank you for your business."
TERMS = (
    "Payment within the due date by bank transfer or UPI.\n"
    "HDFC Bank, Andheri East branch · A/c 50200012345678 · IFSC HDFC0000123 · UPI demotraders@hdfcbank"
)


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    mobile: str  # typed as a bare 10-digit Indian mobile: the service stores it as +91…
    whatsapp: bool = True
    salutation: str = "Mr."


@dataclass(frozen=True)
class Party:
    display_name: str
    contact_type: str
    address: str
    tax_id: str
    persons: Sequence[Person]
    whatsapp: bool = True
    payment_terms_days: int = 30
    extra: dict[str, Any] = field(default_factory=dict)


CUSTOMERS = (
    Party(
        "Sharma Textiles",
        ContactType.CUSTOMER,
        "14 Kalbadevi Road, Marine Lines\nMumbai, Maharashtra 400002",
        "27AAGFS4821K1Z3",
        (Person("Rajesh", "Sharma", "9820012345"), Person("Priya", "Sharma", "9820154321", salutation="Ms.")),
    ),
    Party(
        "Patel Electronics",
        ContactType.CUSTOMER,
        "Shop 7, Relief Road\nAhmedabad, Gujarat 380001",
        "24AAHFP7312M1Z8",
        (Person("Amit", "Patel", "9825098765"),),
    ),
    Party(
        "Gupta & Sons Hardware",
        ContactType.CUSTOMER,
        "2231 Chawri Bazar\nNew Delhi, Delhi 110006",
        "07AAFFG9023Q1Z1",
        (Person("Suresh", "Gupta", "9811034567"), Person("Neha", "Gupta", "9811076543", salutation="Ms.")),
    ),
    Party(
        "Iyer Consulting Services",
        ContactType.CUSTOMER,
        "45 Cathedral Road, Gopalapuram\nChennai, Tamil Nadu 600086",
        "33AAJCI5567L1Z6",
        (Person("Lakshmi", "Iyer", "9840023456", salutation="Ms."),),
    ),
    Party(
        "Reddy Agro Foods",
        ContactType.CUSTOMER,
        "Plot 18, IDA Uppal\nHyderabad, Telangana 500039",
        "36AAKCR2219B1Z4",
        (Person("Venkat", "Reddy", "9848045678"),),
    ),
    # Asked not to be contacted on WhatsApp: the hub must skip it.
    Party(
        "Khan Auto Parts",
        ContactType.CUSTOMER,
        "112 Shivaji Nagar\nPune, Maharashtra 411005",
        "27AAEFK6654H1Z9",
        (Person("Imran", "Khan", "9890056789", whatsapp=False),),
        whatsapp=False,
    ),
    # Its person's mobile is overwritten with an invalid number after creation (see below).
    Party(
        "Mehta Jewellers",
        ContactType.CUSTOMER,
        "Ring Road, Ghod Dod Road\nSurat, Gujarat 395007",
        "24AAMFM3390D1Z2",
        (Person("Kiran", "Mehta", "9879067890", salutation="Ms."),),
    ),
    Party(
        "Banerjee Publications",
        ContactType.CUSTOMER,
        "8 College Street\nKolkata, West Bengal 700073",
        "19AABCB4471F1Z5",
        (Person("Arindam", "Banerjee", "9830078901"),),
    ),
)

VENDORS = (
    Party(
        "Bharat Office Supplies",
        ContactType.VENDOR,
        "Lamington Road, Grant Road East\nMumbai, Maharashtra 400007",
        "27AADFB1180C1Z7",
        (Person("Manoj", "Verma", "9819089012"),),
    ),
    Party(
        "Deccan Logistics",
        ContactType.VENDOR,
        "Survey 54, Chakan MIDC\nPune, Maharashtra 410501",
        "27AAECD8812E1Z0",
        (Person("Srinivas", "Rao", "9849090123"), Person("Anil", "Kumar", "9822001234")),
    ),
    Party(
        "Kumar Packaging Industries",
        ContactType.VENDOR,
        "B-42 Okhla Industrial Area Phase II\nNew Delhi, Delhi 110020",
        "07AAGFK7703G1Z3",
        (Person("Ravi", "Kumar", "9812012345"),),
        payment_terms_days=45,
    ),
)

INVALID_MOBILE_CONTACT = "Mehta Jewellers"

GST = Decimal("18")
GST_GOODS = Decimal("5")


def _line(item: str, quantity: str, rate: str, tax: Decimal = GST, description: str = "") -> LineInput:
    return LineInput(item, Decimal(quantity), Decimal(rate), tax, description)


class Command(BaseCommand):
    help = "Create the demo organization Demo Traders with its data and the demo login (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        if Organization.objects.filter(name=DEMO_ORGANIZATION).exists():
            self.stdout.write("Demo data already present.")
            # The login printed must be the one that works: (re)set the published demo password.
            self._demo_user(password, reset_password=True)
            self._print_login(password)
            return
        with transaction.atomic():
            organization = self._seed(password)
        self._print_summary(organization)
        self._print_login(password)

    # --- Seeding -------------------------------------------------------------------------------

    def _seed(self, password: str) -> Organization:
        user = self._demo_user(password)
        organization = organization_create(
            name=DEMO_ORGANIZATION,
            country="IN",
            currency="INR",
            time_zone="Asia/Kolkata",
            phone_region="IN",
            date_format=DateFormat.DMY_SLASH,
            address="Unit 402, Sagar Tech Plaza, Andheri-Kurla Road\nSakinaka, Mumbai, Maharashtra 400072",
            tax_id="27AABCD1234E1Z5",
            email="accounts@demotraders.example",
            phone="+91 22 4012 3456",
        )
        membership_add(organization=organization, user=user, role_name="Admin")
        contacts = {party.display_name: self._contact(organization, party) for party in (*CUSTOMERS, *VENDORS)}

        # Simulates a number imported from a legacy system: the services refuse invalid numbers,
        # so it is written directly, and the UI flags it "Invalid number".
        ContactPerson.objects.filter(contact=contacts[INVALID_MOBILE_CONTACT]).update(mobile="98200")

        self._documents(organization, user, contacts)
        return organization

    def _demo_user(self, password: str, *, reset_password: bool = False) -> AbstractBaseUser:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={"email": "demo@demotraders.example", "first_name": "Demo", "last_name": "Admin"},
        )
        if created or reset_password:
            user.set_password(password)
        # Staff so that Django admin opens, never superuser: the admin is scoped to its organization.
        user.is_staff = True
        user.is_superuser = False
        user.save()
        return user

    def _contact(self, organization: Organization, party: Party) -> Contact:
        slug = party.display_name.split()[0].lower()
        return contact_create(
            organization=organization,
            contact_type=party.contact_type,
            display_name=party.display_name,
            company_name=party.display_name,
            email=f"accounts@{slug}.example",
            billing_address=party.address,
            tax_id=party.tax_id,
            payment_terms_days=party.payment_terms_days,
            whatsapp_enabled=party.whatsapp,
            persons=[
                {
                    "salutation": person.salutation,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "email": f"{person.first_name.lower()}@{slug}.example",
                    "mobile": person.mobile,
                    "whatsapp_enabled": person.whatsapp,
                }
                for person in party.persons
            ],
            **party.extra,
        )

    def _documents(self, organization: Organization, user: AbstractBaseUser, contacts: dict[str, Contact]) -> None:
        today = organization.today()

        def days(n: int) -> datetime.date:
            return today + datetime.timedelta(days=n)

        def create(kind: str, contact_name: str, **kwargs: Any) -> Document:
            contact = contacts[contact_name]
            kwargs.setdefault("share_with", [p for p in contact.persons.all() if p.whatsapp_enabled])
            if kind not in (DocumentKind.CUSTOMER_PAYMENT, DocumentKind.VENDOR_PAYMENT):
                kwargs.setdefault("notes", NOTES)
            if kind in (DocumentKind.INVOICE, DocumentKind.RETAINER_INVOICE, DocumentKind.ESTIMATE):
                kwargs.setdefault("terms", TERMS)
            return document_create(organization=organization, kind=kind, contact=contact, created_by=user, **kwargs)

        consulting = [
            _line("GST compliance consulting", "12", "2500.00", description="Monthly GSTR-1 and GSTR-3B review"),
            _line("Bookkeeping", "1", "8000.00", description="Ledger reconciliation for the month"),
        ]

        # Invoices in every status.
        create(
            DocumentKind.INVOICE,
            "Banerjee Publications",
            date=today,
            issue=False,
            lines=[_line("Annual report design", "1", "45000.00"), _line("Printing (500 copies)", "500", "85.00")],
        )
        create(
            DocumentKind.INVOICE,
            "Sharma Textiles",
            date=days(-3),
            due_date=days(27),
            reference_number="PO-ST-2291",
            lines=[
                _line("Cotton fabric roll (50 m)", "40", "4250.00", GST_GOODS, "Plain weave, 60 inch width"),
                _line("Transport and loading", "1", "3500.00"),
            ],
        )
        for contact_name, due_in, lines in (
            (
                "Patel Electronics",
                -5,
                [_line('LED monitor 24"', "10", "9800.00"), _line("HDMI cable 2 m", "10", "350")],
            ),
            ("Khan Auto Parts", -20, [_line("Brake pad set", "25", "1850.00", GST_GOODS)]),
            ("Reddy Agro Foods", -45, consulting),
            ("Mehta Jewellers", -75, [_line("Display showcase lighting", "6", "12500.00")]),
        ):
            create(DocumentKind.INVOICE, contact_name, date=days(due_in - 30), due_date=days(due_in), lines=lines)

        partly_paid = create(
            DocumentKind.INVOICE,
            "Iyer Consulting Services",
            date=days(-25),
            due_date=days(5),
            lines=consulting,
        )
        create(
            DocumentKind.CUSTOMER_PAYMENT,
            "Iyer Consulting Services",
            date=days(-10),
            amount=Decimal("20000.00"),
            payment_mode=PaymentMode.UPI,
            reference_number="UPI-412398765432",
            allocations=[AllocationInput(partly_paid, Decimal("20000.00"))],
        )
        paid = create(
            DocumentKind.INVOICE,
            "Patel Electronics",
            date=days(-40),
            due_date=days(-10),
            lines=[_line("Wireless keyboard and mouse", "15", "1450.00")],
        )
        create(
            DocumentKind.CUSTOMER_PAYMENT,
            "Patel Electronics",
            date=days(-12),
            amount=paid.total + Decimal("1000.00"),  # paid a little extra: an unused amount remains
            payment_mode=PaymentMode.BANK_TRANSFER,
            reference_number="NEFT-HDFC-88213",
            allocations=[AllocationInput(paid, paid.total)],
        )
        mistaken = create(
            DocumentKind.INVOICE,
            "Gupta & Sons Hardware",
            date=days(-8),
            lines=[_line("Padlock 50 mm", "100", "240.00")],
            notes="Raised twice by mistake; replaced by the next invoice.",
        )
        document_void(document=mistaken)
        create(
            DocumentKind.INVOICE,
            "Gupta & Sons Hardware",
            date=days(-8),
            due_date=days(22),
            lines=[_line("Padlock 50 mm", "100", "240.00"), _line("Door hinge (pair)", "200", "65.00")],
        )

        # One of every other kind.
        create(
            DocumentKind.SALES_ORDER,
            "Sharma Textiles",
            date=days(-1),
            due_date=days(10),
            reference_number="PO-ST-2304",
            lines=[_line("Silk blend fabric roll (25 m)", "20", "7800.00", GST_GOODS)],
        )
        create(
            DocumentKind.ESTIMATE,
            "Banerjee Publications",
            date=days(-2),
            due_date=days(15),
            lines=[
                _line("Catalogue design", "1", "35000.00", description="48 pages, two rounds of revisions"),
                _line("Offset printing", "2000", "42.50"),
            ],
        )
        create(
            DocumentKind.RETAINER_INVOICE,
            "Iyer Consulting Services",
            date=days(-4),
            lines=[_line("Retainer: quarterly audit support", "1", "60000.00")],
        )
        create(
            DocumentKind.CREDIT_NOTE,
            "Reddy Agro Foods",
            date=days(-30),
            notes="Goodwill discount for the delayed bookkeeping report.",
            lines=[_line("Discount: bookkeeping", "1", "3000.00")],
        )
        create(
            DocumentKind.SALES_RECEIPT,
            "Khan Auto Parts",
            date=days(-6),
            payment_mode=PaymentMode.CASH,
            lines=[_line("Engine oil 5 L", "4", "2150.00"), _line("Oil filter", "4", "320.00")],
        )

        # Purchases: an open bill, an overdue bill and a bill partly paid by a payment made.
        create(
            DocumentKind.BILL,
            "Bharat Office Supplies",
            date=days(-5),
            due_date=days(10),
            reference_number="BOS/2026/1184",
            lines=[_line("A4 copier paper (box of 5 reams)", "20", "1350.00"), _line("Toner cartridge", "4", "4200")],
        )
        create(
            DocumentKind.BILL,
            "Deccan Logistics",
            date=days(-42),
            due_date=days(-12),
            reference_number="DL-INV-7781",
            lines=[_line("Freight Mumbai–Pune (full truck load)", "3", "18500.00", Decimal("12"))],
        )
        bill = create(
            DocumentKind.BILL,
            "Kumar Packaging Industries",
            date=days(-20),
            reference_number="KPI-0932",
            lines=[_line("Corrugated boxes 18x12x10", "1500", "28.00", Decimal("12"))],
        )
        create(
            DocumentKind.VENDOR_PAYMENT,
            "Kumar Packaging Industries",
            date=days(-7),
            amount=Decimal("25000.00"),
            payment_mode=PaymentMode.BANK_TRANSFER,
            reference_number="IMPS-559031",
            allocations=[AllocationInput(bill, Decimal("25000.00"))],
        )

    # --- Output --------------------------------------------------------------------------------

    def _print_summary(self, organization: Organization) -> None:
        contacts = Counter(organization.contacts.values_list("contact_type", flat=True))
        persons = ContactPerson.objects.filter(contact__organization=organization).count()
        self.stdout.write(self.style.SUCCESS(f"Created the demo organization {organization.name}:"))
        self.stdout.write(
            f"  {contacts[ContactType.CUSTOMER]} customers and {contacts[ContactType.VENDOR]} vendors "
            f"with {persons} contact persons"
        )
        documents = list(Document.objects.filter(organization=organization).select_related("organization"))
        for kind, label in DocumentKind.choices:
            of_kind = [d for d in documents if d.kind == kind]
            statuses = Counter(DocumentStatus(d.effective_status).label for d in of_kind)
            detail = ", ".join(f"{n} {status.lower()}" for status, n in sorted(statuses.items()))
            self.stdout.write(f"  {len(of_kind)} × {label.lower()}" + (f" ({detail})" if detail else ""))

    def _print_login(self, password: str) -> None:
        self.stdout.write(f"Demo login: {DEMO_USERNAME} / {password}")
        self.stdout.write(f"Open {DEMO_URL}")
