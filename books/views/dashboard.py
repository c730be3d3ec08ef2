"""The landing page, the organization switcher and the reports."""

from collections import defaultdict
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from books.choices import DocumentKind, DocumentStatus
from books.formatting import money_format
from books.middleware import SESSION_KEY
from books.models import ZERO
from books.permissions import Perm
from books.selectors import customer_balance_list, dashboard_summary, document_list, membership_get
from books.views.access import member_required


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    # request.membership is a lazy object: test its truth, never `is None`.
    if not request.membership:
        return render(request, "books/no_organization.html", status=403)
    organization = request.organization
    can_see_sales = request.membership.has_perm(Perm.SALES_VIEW)
    context = {
        "nav": "dashboard",
        "summary": dashboard_summary(organization=organization),
        "can_see_sales": can_see_sales,
        "overdue_invoices": [],
        "recent_invoices": [],
    }
    if can_see_sales:
        overdue = document_list(organization=organization, kind=DocumentKind.INVOICE, status=DocumentStatus.OVERDUE)
        context["overdue_invoices"] = list(overdue.order_by("due_date", "id")[:10])
        recent = document_list(organization=organization, kind=DocumentKind.INVOICE)
        context["recent_invoices"] = list(recent.order_by("-date", "-id")[:8])
    return render(request, "books/dashboard.html", context)


@require_POST
@login_required
def organization_switch(request: HttpRequest) -> HttpResponse:
    """Work in another organization: only one the user is an active member of (else 404)."""
    membership = membership_get(user=request.user, organization_id=request.POST.get("organization", ""))
    if membership is None:
        raise Http404("No such organization.")
    request.session[SESSION_KEY] = membership.organization_id
    return redirect("books:dashboard")


# --- Reports -----------------------------------------------------------------------------------


@member_required(Perm.REPORTS_VIEW)
def reports(request: HttpRequest) -> HttpResponse:
    return render(request, "books/reports/index.html", {"nav": "reports"})


@member_required(Perm.REPORTS_VIEW)
def report_customer_balances(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    rows = []
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for contact in customer_balance_list(organization=organization):
        currency = contact.currency or organization.currency
        amounts = {
            "invoiced": contact.invoiced,
            "received": contact.received,
            "balance_due": contact.balance_due,
            "overdue": contact.overdue,
        }
        for key, value in amounts.items():
            totals[currency][key] += value
        rows.append(
            {
                "contact": contact,
                "currency": currency,
                **{key: money_format(value, currency, organization=organization) for key, value in amounts.items()},
                "has_overdue": contact.overdue > 0,
            }
        )
    total_rows = [
        {
            "currency": currency,
            **{key: money_format(value, currency, organization=organization) for key, value in sums.items()},
        }
        for currency, sums in sorted(totals.items())
    ]
    return render(
        request,
        "books/reports/customer_balances.html",
        {"nav": "reports", "rows": rows, "total_rows": total_rows, "as_of": organization.today()},
    )


urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("organizations/switch/", organization_switch, name="organization_switch"),
    path("reports/", reports, name="reports"),
    path("reports/customer-balances/", report_customer_balances, name="report_customer_balances"),
]
