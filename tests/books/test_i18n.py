"""The Spanish UI: language negotiation, the language switcher and the committed catalog."""

import datetime
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.urls import reverse

from .factories import UserFactory, make_contact, make_document, make_organization

PO_FILE = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")

SPANISH_NAV = ["Facturas", "Cotizaciones", "Clientes", "Proveedores"]


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def org(user):
    return make_organization(user=user, role="Admin")


@pytest.fixture
def member(client, user, org):
    client.force_login(user)
    return client


@pytest.fixture
def overdue_invoice(org):
    today = org.today()
    customer = make_contact(org, name="Sharma Traders")
    return make_document(
        org, contact=customer, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=10)
    )


def set_language(client, code: str, next_url: str = "/"):
    response = client.post(reverse("set_language"), {"language": code, "next": next_url})
    assert response.status_code == 302
    return response


@pytest.mark.django_db
def test_the_login_page_follows_accept_language(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="es")

    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="es">' in content
    assert "Iniciar sesión" in content
    assert "Contraseña" in content
    assert "Sign in" not in content


@pytest.mark.django_db
def test_the_login_page_is_english_by_default(client):
    content = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Sign in" in content
    assert "Iniciar sesión" not in content


@pytest.mark.django_db
def test_the_switcher_turns_the_dashboard_and_invoice_list_spanish(member, overdue_invoice):
    set_language(member, "es")

    dashboard = member.get(reverse("books:dashboard")).content.decode()
    invoices = member.get(reverse("books:document_list", args=["invoices"])).content.decode()

    for content in (dashboard, invoices):
        assert '<html lang="es">' in content
        for label in SPANISH_NAV:
            assert f">{label}<" in content, label
        assert "Panel" in content
        assert ">Invoices<" not in content
    assert "Total de cuentas por cobrar" in dashboard
    assert overdue_invoice.number in invoices
    assert 'class="badge badge-overdue">Vencida<' in invoices
    assert ">Vencida<" in dashboard


@pytest.mark.django_db
def test_switching_back_to_english(member, overdue_invoice):
    set_language(member, "es")
    assert ">Facturas<" in member.get(reverse("books:dashboard")).content.decode()

    set_language(member, "en")

    for url in (reverse("books:dashboard"), reverse("books:document_list", args=["invoices"])):
        content = member.get(url).content.decode()
        assert '<html lang="en">' in content
        for label in ("Invoices", "Quotes", "Customers", "Vendors"):
            assert f">{label}<" in content, label
        assert ">Overdue<" in content
        assert ">Facturas<" not in content
        assert "Vencida" not in content


def test_the_committed_catalog_is_fully_translated():
    """Every entry of the committed Spanish .po has a translation and none is fuzzy (msgfmt and
    Django ignore fuzzy entries). After adding strings, run makemessages and translate them."""
    with PO_FILE.open("rb") as f:
        catalog = read_po(f, locale="es")

    assert catalog.num_plurals == 2
    assert not catalog.fuzzy, "the header is marked fuzzy"
    untranslated, fuzzy = [], []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        if not all(strings) or (message.pluralizable and len(strings) != catalog.num_plurals):
            untranslated.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)
    assert len(catalog) > 100
    assert untranslated == []
    assert fuzzy == []


def test_the_compiled_catalog_matches_the_po_file():
    """The .mo is committed (machines without gettext can't compile it) and was compiled from
    the current .po: run compilemessages after editing translations."""
    with PO_FILE.open("rb") as f:
        po = read_po(f, locale="es")
    with MO_FILE.open("rb") as f:
        mo = read_mo(f)

    def entries(catalog):
        as_tuple = lambda value: tuple(value) if isinstance(value, (list, tuple)) else (value,)  # noqa: E731
        # read_mo gives contexts as bytes.
        context = lambda m: m.context.decode() if isinstance(m.context, bytes) else m.context  # noqa: E731
        return {(context(m), as_tuple(m.id)): as_tuple(m.string) for m in catalog if m.id}

    assert entries(mo) == entries(po)
