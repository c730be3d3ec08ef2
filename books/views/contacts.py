"""Customers and vendors: lists, detail (transactions, statement), create and edit, statement PDF.

URL names (namespace ``books``): ``customer_list``, ``vendor_list``, ``customer_create`` and
``vendor_create`` (the same view with ``contact_type`` fixed by the path), ``contact_detail``,
``contact_edit``, ``contact_statement``, ``contact_statement_pdf`` and ``contact_tab`` (a tab another
app registered in ``books.actions``, e.g. "Mails & messages").

Every lookup is scoped to ``request.organization``: another organization's contact id is a 404,
before any permission is checked. Customers need the CUSTOMERS_* permissions, vendors VENDORS_*.
"""

import datetime
import re
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from books.actions import MENU_SEND, MENU_SHARE_VIA, contact_menus, contact_tab_get, contact_tabs, list_menus
from books.choices import ContactType
from books.formatting import money_format
from books.forms.contacts import (
    ContactForm,
    ContactPersonFormSet,
    StatementPeriodForm,
    contact_forms_save,
    person_initial,
    region_label,
)
from books.list_filters import CONTACT_FILTERS, ContactListFilter
from books.models import ZERO, Contact, Organization
from books.pdf import statement_pdf
from books.permissions import Perm
from books.selectors import (
    Statement,
    contact_balance_annotate,
    contact_list_with_balance,
    document_list,
    statement_build,
)
from books.views.access import member_required

PAGE_SIZE = 25
TRANSACTIONS_SHOWN = 50

VIEW_PERM = {ContactType.CUSTOMER: Perm.CUSTOMERS_VIEW, ContactType.VENDOR: Perm.VENDORS_VIEW}
MANAGE_PERM = {ContactType.CUSTOMER: Perm.CUSTOMERS_MANAGE, ContactType.VENDOR: Perm.VENDORS_MANAGE}
NAV = {ContactType.CUSTOMER: "customers", ContactType.VENDOR: "vendors"}
LIST_URL = {ContactType.CUSTOMER: "books:customer_list", ContactType.VENDOR: "books:vendor_list"}
CREATE_URL = {ContactType.CUSTOMER: "books:customer_create", ContactType.VENDOR: "books:vendor_create"}
TITLES = {
    ContactType.CUSTOMER: (gettext_lazy("Customers"), gettext_lazy("New customer")),
    ContactType.VENDOR: (gettext_lazy("Vendors"), gettext_lazy("New vendor")),
}


def _check(request: HttpRequest, perm: str) -> None:
    # request.membership is a lazy object: test its truth, never `is None`.
    if not request.membership or not request.membership.has_perm(perm):
        raise PermissionDenied


def _contact_get(request: HttpRequest, pk: int, *, manage: bool = False) -> Contact:
    """The organization's contact ``pk`` (404 for anyone else's), if the user may see (or edit) it."""
    if not request.membership:
        raise PermissionDenied
    contact = get_object_or_404(
        Contact.objects.select_related("organization").prefetch_related("persons"),
        pk=pk,
        organization=request.organization,
    )
    _check(request, (MANAGE_PERM if manage else VIEW_PERM)[contact.contact_type])
    return contact


def _money(amount: Decimal, currency: str, organization: Organization) -> str:
    return money_format(amount, currency, organization=organization)


# --- Lists -------------------------------------------------------------------------------------


def _contact_list(request: HttpRequest, contact_type: str) -> HttpResponse:
    organization = request.organization
    # The filter a bulk action's "Select all N matching" posts back is parsed and run by this same code.
    list_filter = ContactListFilter.from_params(contact_type, request.GET)
    # Receivable for customers, payable for vendors: what the list's balance column adds up.
    contacts = contact_balance_annotate(list_filter.queryset(organization=organization))
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    for contact in page.object_list:
        contact.balance_display = _money(contact.open_balance, contact.currency or organization.currency, organization)
    query = request.GET.copy()
    query.pop("page", None)
    title, create_title = TITLES[contact_type]
    return render(
        request,
        "books/contacts/list.html",
        {
            "nav": NAV[contact_type],
            "contact_type": contact_type,
            "title": title,
            "create_title": create_title,
            "create_url": CREATE_URL[contact_type],
            "can_manage": request.membership.has_perm(MANAGE_PERM[contact_type]),
            "page": page,
            "search": list_filter.search,
            "filters": [(key, label) for key, (label, _q) in CONTACT_FILTERS.items()],
            "active_filter": list_filter.filter,
            "querystring": query.urlencode(),
            "matching": list_filter.querystring(),
            "list_menus": list_menus(contact_type=contact_type, membership=request.membership),
        },
    )


@member_required(Perm.CUSTOMERS_VIEW)
def customer_list(request: HttpRequest) -> HttpResponse:
    return _contact_list(request, ContactType.CUSTOMER)


@member_required(Perm.VENDORS_VIEW)
def vendor_list(request: HttpRequest) -> HttpResponse:
    return _contact_list(request, ContactType.VENDOR)


# --- Create and edit ---------------------------------------------------------------------------


def _contact_form_page(request: HttpRequest, *, contact_type: str, contact: Contact | None) -> HttpResponse:
    organization = request.organization
    # The bound form writes into the instance: keep the stored name for the heading.
    title = contact.display_name if contact else TITLES[contact_type][1]
    if request.method == "POST":
        form = ContactForm(request.POST, instance=contact or Contact(), organization=organization)
        # The stored persons as initial data, so rows left untouched are recognised and skipped.
        formset = ContactPersonFormSet(
            request.POST, prefix="persons", initial=person_initial(contact) if contact else None
        )
        if form.is_valid() and formset.is_valid():
            saved = contact_forms_save(
                form=form, formset=formset, organization=organization, contact_type=contact_type, contact=contact
            )
            if saved is not None:
                message = _("%(name)s was saved.") if contact else _("%(name)s was created.")
                messages.success(request, message % {"name": saved.display_name})
                return redirect("books:contact_detail", pk=saved.pk)
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
    else:
        form = ContactForm(instance=contact or Contact(), organization=organization)
        formset = ContactPersonFormSet(prefix="persons", initial=person_initial(contact) if contact else None)
    return render(
        request,
        "books/contacts/form.html",
        {
            "nav": NAV[contact_type],
            "contact_type": contact_type,
            "contact": contact,
            "title": title,
            "list_url": LIST_URL[contact_type],
            "list_title": TITLES[contact_type][0],
            "form": form,
            "formset": formset,
            "region_label": region_label(organization.phone_region),
        },
    )


@member_required(Perm.CUSTOMERS_MANAGE)
def customer_create(request: HttpRequest) -> HttpResponse:
    return _contact_form_page(request, contact_type=ContactType.CUSTOMER, contact=None)


@member_required(Perm.VENDORS_MANAGE)
def vendor_create(request: HttpRequest) -> HttpResponse:
    return _contact_form_page(request, contact_type=ContactType.VENDOR, contact=None)


@member_required()
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact_get(request, pk, manage=True)
    return _contact_form_page(request, contact_type=contact.contact_type, contact=contact)


# --- Detail: transactions and statement --------------------------------------------------------


def _detail_context(request: HttpRequest, contact: Contact, tab: str) -> dict:
    persons = list(contact.persons.all())
    return {
        "nav": NAV[contact.contact_type],
        "contact": contact,
        "persons": persons,
        "tab": tab,
        # Registered by other apps (books.actions): "Send" menu items and extra tabs.
        "menus": contact_menus(contact, membership=request.membership, menu=MENU_SEND),
        "extra_tabs": contact_tabs(contact, membership=request.membership),
        "list_url": LIST_URL[contact.contact_type],
        "list_title": TITLES[contact.contact_type][0],
        "can_manage": request.membership.has_perm(MANAGE_PERM[contact.contact_type]),
        "open_balance": _money(
            contact_list_with_balance(organization=contact.organization, contact_type=contact.contact_type)
            .filter(pk=contact.pk)
            .values_list("open_balance", flat=True)
            .first()
            or ZERO,
            contact.effective_currency,
            contact.organization,
        ),
    }


@member_required()
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact_get(request, pk)
    documents = document_list(organization=request.organization, contact=contact).order_by("-date", "-id")
    context = _detail_context(request, contact, "transactions")
    context["documents"] = list(documents[:TRANSACTIONS_SHOWN])
    context["more_documents"] = len(context["documents"]) == TRANSACTIONS_SHOWN
    return render(request, "books/contacts/detail.html", context)


def _statement_display(statement: Statement, organization: Organization) -> dict[str, str]:
    currency = statement.currency
    return {
        "opening": _money(statement.opening_balance, currency, organization),
        "amount": _money(statement.total_amount, currency, organization),
        "payments": _money(statement.total_payments, currency, organization),
        "closing": _money(statement.closing_balance, currency, organization),
    }


@member_required()
def contact_statement(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact_get(request, pk)
    period_form = StatementPeriodForm(request.GET or None, today=request.organization.today())
    from_date, to_date = period_form.period()
    statement = statement_build(contact=contact, from_date=from_date, to_date=to_date)
    context = _detail_context(request, contact, "statement")
    context.update(
        {
            "period_form": period_form,
            "statement": statement,
            "amounts": _statement_display(statement, contact.organization),
            "pdf_query": f"from_date={from_date.isoformat()}&to_date={to_date.isoformat()}",
            "share_menus": contact_menus(
                contact,
                membership=request.membership,
                menu=MENU_SHARE_VIA,
                params={"from": from_date.isoformat(), "to": to_date.isoformat()},
            ),
        }
    )
    return render(request, "books/contacts/detail.html", context)


@member_required()
def contact_tab(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """A tab another app registered (``books.actions.contact_tab_register``), e.g. "Mails &
    messages": the contact page with that app's panel in it."""
    contact = _contact_get(request, pk)
    tab = contact_tab_get(key)
    if tab is None or tab not in contact_tabs(contact, membership=request.membership):
        raise Http404(_("No such tab."))
    context = _detail_context(request, contact, key)
    # The registered renderer returns escaped HTML (a rendered template).
    context["tab_panel"] = mark_safe(tab.render(request, contact))  # noqa: S308
    return render(request, "books/contacts/detail.html", context)


def statement_filename(contact: Contact, from_date: datetime.date, to_date: datetime.date) -> str:
    """``Statement-Acme-Traders-2026-10-01-2026-10-31.pdf``: safe in a Content-Disposition header."""
    name = re.sub(r"[^\w.-]+", "-", contact.display_name).strip("-.") or "contact"
    return f"Statement-{name}-{from_date.isoformat()}-{to_date.isoformat()}.pdf"


@member_required()
def contact_statement_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact_get(request, pk)
    period_form = StatementPeriodForm(request.GET or None, today=request.organization.today())
    if period_form.is_bound and not period_form.is_valid():
        return HttpResponseBadRequest(_("Choose a valid period."))
    from_date, to_date = period_form.period()
    pdf = statement_pdf(statement_build(contact=contact, from_date=from_date, to_date=to_date))
    filename = statement_filename(contact, from_date, to_date)
    return HttpResponse(
        pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": content_disposition_header(as_attachment=True, filename=filename)},
    )


urlpatterns = [
    path("customers/", customer_list, name="customer_list"),
    path("customers/new/", customer_create, name="customer_create"),
    path("vendors/", vendor_list, name="vendor_list"),
    path("vendors/new/", vendor_create, name="vendor_create"),
    path("contacts/<int:pk>/", contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/statement/", contact_statement, name="contact_statement"),
    path("contacts/<int:pk>/statement/pdf/", contact_statement_pdf, name="contact_statement_pdf"),
    path("contacts/<int:pk>/tabs/<slug:key>/", contact_tab, name="contact_tab"),
]
