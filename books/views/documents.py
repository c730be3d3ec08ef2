"""Pages of the sales and purchase documents: list, create and edit (lines or a payment), detail,
PDF, the status actions (mark as sent, void, accepted…) and the Comments & History card alone
(``document_history``, polled by htmx while an entry can still change).

Other apps add to these pages through ``books.actions`` without ``books`` importing them: the
detail page's menus ("Send", "Reminders"), the form's "Save and send", which saves (issuing a
draft) and goes to the registered send page with the "Share with" people preselected, and the
list's bulk-action bar, whose buttons POST the ticked rows (``selected``) where they were registered.

The kind comes from the URL (``<kind:spec>``): every lookup is scoped to the current organization
*and* that kind, so another organization's id or an invoice id under /quotes/ is a 404. Which
permission a page needs also follows from the kind (sales or purchases).
"""

from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from books import pdf
from books.actions import document_menus, document_send_url, document_sender, list_menus
from books.choices import ContactType, DocumentKind, DocumentStatus
from books.forms.documents import DocumentEditor, PaymentApplyForm, share_with_choices
from books.history import document_history, document_url, history_pending
from books.kinds import KINDS, KindSpec
from books.list_filters import DocumentListFilter
from books.models import Contact, Document, Organization
from books.permissions import Perm
from books.selectors import document_get, payment_target_list
from books.services import documents as document_services
from books.views.access import member_required

PAGE_SIZE = 25
#: The form's "Save and send" button (``action`` of the POST).
SAVE_AND_SEND = "send"

# Quotes and sales orders move along their own statuses by hand; other kinds' follow from payments.
STATUS_ACTION_KINDS = (DocumentKind.ESTIMATE, DocumentKind.SALES_ORDER)
MARK_AS_LABELS = {
    DocumentStatus.SENT: gettext_lazy("Mark as sent"),
    DocumentStatus.OPEN: gettext_lazy("Mark as open"),
    DocumentStatus.PAID: gettext_lazy("Mark as paid"),
    DocumentStatus.ACCEPTED: gettext_lazy("Mark as accepted"),
    DocumentStatus.DECLINED: gettext_lazy("Mark as declined"),
    DocumentStatus.INVOICED: gettext_lazy("Mark as invoiced"),
    DocumentStatus.CLOSED: gettext_lazy("Mark as closed"),
}


# --- Access ------------------------------------------------------------------------------------


def kind_perm(spec: KindSpec, *, manage: bool) -> Perm:
    """The permission a page of this kind needs: sales or purchases, view or manage."""
    if spec.party == ContactType.VENDOR:
        return Perm.PURCHASES_MANAGE if manage else Perm.PURCHASES_VIEW
    return Perm.SALES_MANAGE if manage else Perm.SALES_VIEW


def kind_member_required(*, manage: bool) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """``member_required`` with the permission of the kind in the URL (known only per request)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @member_required()
        @wraps(view)
        def wrapper(request: HttpRequest, spec: KindSpec, *args: object, **kwargs: object) -> HttpResponse:
            # request.membership is a lazy proxy: "is None" is never true of it, but bool() is.
            if not request.membership:
                return render(request, "books/no_organization.html", status=403)
            if not request.membership.has_perm(kind_perm(spec, manage=manage)):
                raise PermissionDenied
            return view(request, spec, *args, **kwargs)

        return wrapper

    return decorator


def _organization(request: HttpRequest) -> Organization:
    # request.organization is a lazy proxy; the membership's organization is the model instance.
    return request.membership.organization


def _document_or_404(request: HttpRequest, spec: KindSpec, pk: int) -> Document:
    try:
        return document_get(organization=_organization(request), pk=pk, kind=spec.kind)
    except Document.DoesNotExist:
        raise Http404(_("No such document.")) from None


def _contact_or_none(organization: Organization, spec: KindSpec, raw: str | None) -> Contact | None:
    if not raw or not str(raw).isdigit():
        return None
    return (
        Contact.objects.filter(organization=organization, contact_type=spec.party, pk=int(raw))
        .prefetch_related("persons")
        .first()
    )


def payment_spec_for(document: Document) -> KindSpec | None:
    """The payment kind that pays ``document`` ("Payment received" for an invoice, "made" for a bill)."""
    return next((s for s in KINDS.values() if s.is_payment and document.kind in s.applies_to), None)


# --- Pages -------------------------------------------------------------------------------------


@kind_member_required(manage=False)
@require_GET
def document_list_view(request: HttpRequest, spec: KindSpec) -> HttpResponse:
    organization = _organization(request)
    # The filter a bulk action's "Select all N matching" posts back is parsed and run by this same code.
    list_filter = DocumentListFilter.from_params(spec, request.GET)
    status, q = list_filter.status, list_filter.search
    documents = list_filter.queryset(organization=organization)
    page = Paginator(documents, PAGE_SIZE).get_page(request.GET.get("page"))
    tabs = [
        {
            "label": DocumentStatus(value).label if value else _("All"),
            "query": urlencode({k: v for k, v in (("status", value), ("q", q)) if v}),
            "active": value == status,
        }
        for value in ("", *spec.filter_statuses)
    ]
    base_query = list_filter.querystring()
    return render(
        request,
        "books/documents/list.html",
        {
            "spec": spec,
            "party_label": ContactType(spec.party).label,
            "page_obj": page,
            "documents": page.object_list,
            "tabs": tabs,
            "status": status,
            "q": q,
            "page_query": f"{base_query}&" if base_query else "",
            "matching": base_query,
            "can_manage": request.membership.has_perm(kind_perm(spec, manage=True)),
            "list_menus": list_menus(kind=spec.kind, membership=request.membership),
        },
    )


def _render_form(request: HttpRequest, spec: KindSpec, editor: DocumentEditor, *, status: int = 200) -> HttpResponse:
    organization = _organization(request)
    can_send = editor.document is None or editor.document.status != DocumentStatus.VOID
    return render(
        request,
        "books/documents/form.html",
        {
            "spec": spec,
            "editor": editor,
            "form": editor.header,
            "formset": editor.lines,
            "document": editor.document,
            "party_label": ContactType(spec.party).label,
            "locale": organization.locale.replace("_", "-"),
            "currency": editor.document.currency if editor.document else organization.currency,
            # "Save and send": offered when an app sends this kind and the user may use it.
            "can_save_and_send": can_send and document_sender(spec.kind, membership=request.membership) is not None,
        },
        status=status,
    )


def _saved(request: HttpRequest, document: Document) -> HttpResponse:
    """After a save: the document, or for "Save and send" the send page with its "Share with"
    people preselected (the document page when nothing sends this kind)."""
    messages.success(request, _("%(number)s saved.") % {"number": document.number})
    if request.POST.get("action") == SAVE_AND_SEND:
        url = document_send_url(document, membership=request.membership, persons=document.share_with.all())
        if url:
            return redirect(url)
    return redirect(document_url(document))


@kind_member_required(manage=True)
def document_create_view(request: HttpRequest, spec: KindSpec) -> HttpResponse:
    organization = _organization(request)
    if request.method != "POST":
        return _render_form(request, spec, _new_editor(request, spec, organization))
    editor = DocumentEditor(spec=spec, organization=organization, data=request.POST)
    if editor.is_valid():
        try:
            document = document_services.document_create(
                organization=organization,
                kind=spec.kind,
                issue=request.POST.get("action") != "draft",
                created_by=request.user,
                **editor.service_kwargs(),
            )
        except ValidationError as error:
            editor.add_service_error(error)
        else:
            return _saved(request, document)
    return _render_form(request, spec, editor)


def _new_editor(request: HttpRequest, spec: KindSpec, organization: Organization) -> DocumentEditor:
    """An empty form, prefilled from ``?contact=<id>`` and, for payments, ``?invoice=<id>``."""
    initial: dict[str, object] = {"date": organization.today()}
    apply_initial: dict[int, Decimal] = {}
    contact = _contact_or_none(organization, spec, request.GET.get("contact"))
    invoice_id = request.GET.get("invoice", "")
    if spec.is_payment and invoice_id.isdigit():
        target = (
            Document.objects.filter(organization=organization, kind__in=spec.applies_to, pk=int(invoice_id))
            .exclude(status__in=[DocumentStatus.DRAFT, DocumentStatus.VOID])
            .select_related("contact")
            .first()
        )
        if target is not None:
            contact = target.contact
            initial["amount"] = target.balance
            initial["currency"] = target.currency
            apply_initial[target.pk] = target.balance
    if contact is not None:
        initial["contact"] = contact
    return DocumentEditor(spec=spec, organization=organization, initial=initial, apply_initial=apply_initial)


@kind_member_required(manage=True)
def document_edit_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    document = _document_or_404(request, spec, pk)
    if document.status == DocumentStatus.VOID:
        messages.error(request, _("A void document cannot be changed."))
        return redirect(document_url(document))
    organization = _organization(request)
    if request.method != "POST":
        return _render_form(request, spec, DocumentEditor(spec=spec, organization=organization, document=document))
    editor = DocumentEditor(spec=spec, organization=organization, data=request.POST, document=document)
    if editor.is_valid():
        try:
            document = document_services.document_update(document=document, **editor.service_kwargs())
            if request.POST.get("action") == SAVE_AND_SEND:
                # Only issued documents are sent: "Save and send" takes a draft out of draft.
                document = document_services.document_issue(document=document)
        except ValidationError as error:
            editor.add_service_error(error)
        else:
            return _saved(request, document)
    return _render_form(request, spec, editor)


@kind_member_required(manage=False)
@require_GET
def document_detail_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    document = _document_or_404(request, spec, pk)
    payment_spec = payment_spec_for(document)
    can_manage = request.membership.has_perm(kind_perm(spec, manage=True))
    is_open = not document.is_draft_or_void
    status_actions = []
    if spec.kind in STATUS_ACTION_KINDS and is_open:
        status_actions = [
            {"status": s, "label": MARK_AS_LABELS[s]}
            for s in spec.statuses
            if s not in (DocumentStatus.DRAFT, DocumentStatus.VOID, document.status)
        ]
    history = document_history(document)
    return render(
        request,
        "books/documents/detail.html",
        {
            "spec": spec,
            "document": document,
            "organization": document.organization,
            "party_label": ContactType(spec.party).label,
            "lines": document.lines.all(),
            "payments_in": document.allocations_in.select_related("source").order_by("date", "id"),
            "applied_to": document.allocations_out.select_related("target").order_by("date", "id"),
            "share_with": list(document.share_with.all()),
            "history": history,
            "history_polling": history_pending(history),
            "menus": document_menus(document, membership=request.membership),
            "can_manage": can_manage,
            "issue_label": MARK_AS_LABELS.get(spec.issued_status, _("Issue")),
            "status_actions": status_actions,
            "record_payment_url": (
                f"{reverse('books:document_create', args=[payment_spec.slug])}?"
                f"{urlencode({'contact': document.contact_id, 'invoice': document.pk})}"
                if payment_spec and is_open and document.balance > 0
                else ""
            ),
        },
    )


@kind_member_required(manage=False)
@require_GET
def document_history_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    """The Comments & History card alone: polled by htmx while an entry can still change (a
    WhatsApp message on its way), rendered without the polling trigger once none can."""
    # Polled every few seconds: only what the card reads (no lines, no "Share with").
    document = (
        Document.objects.filter(organization=_organization(request), kind=spec.kind, pk=pk)
        .select_related("organization", "created_by")
        .first()
    )
    if document is None:
        raise Http404(_("No such document."))
    history = document_history(document)
    return render(
        request,
        "books/documents/_history_card.html",
        {
            "spec": spec,
            "document": document,
            "organization": document.organization,
            "history": history,
            "history_polling": history_pending(history),
        },
    )


@kind_member_required(manage=False)
@require_GET
def document_pdf_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    document = _document_or_404(request, spec, pk)
    response = HttpResponse(pdf.document_pdf(document), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=request.GET.get("download") == "1", filename=pdf.document_pdf_filename(document)
    )
    return response


def _document_action(
    request: HttpRequest, document: Document, action: Callable[[], Document], success: Callable[[Document], str]
) -> HttpResponse:
    """Run one service on a document, report its refusal or its success, and go back to the document."""
    try:
        document = action()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success(document))
    return redirect(document_url(document))


def _now_status(document: Document) -> str:
    return _("%(number)s is now %(status)s.") % {"number": document.number, "status": _status_label(document)}


@kind_member_required(manage=True)
@require_POST
def document_issue_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    document = _document_or_404(request, spec, pk)
    return _document_action(request, document, lambda: document_services.document_issue(document=document), _now_status)


@kind_member_required(manage=True)
@require_POST
def document_void_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    document = _document_or_404(request, spec, pk)
    return _document_action(
        request,
        document,
        lambda: document_services.document_void(document=document),
        lambda done: _("%(number)s is void.") % {"number": done.number},
    )


@kind_member_required(manage=True)
@require_POST
def document_status_view(request: HttpRequest, spec: KindSpec, pk: int) -> HttpResponse:
    if spec.kind not in STATUS_ACTION_KINDS:
        raise Http404(_("This kind of document has no status actions."))
    document = _document_or_404(request, spec, pk)
    status = request.POST.get("status", "")
    return _document_action(
        request, document, lambda: document_services.document_set_status(document=document, status=status), _now_status
    )


def _status_label(document: Document) -> str:
    return str(document.effective_status_label).lower()


# --- htmx fragments of the form ----------------------------------------------------------------


@kind_member_required(manage=True)
@require_GET
def document_contact_persons_view(request: HttpRequest, spec: KindSpec) -> HttpResponse:
    """The "Share with" checkboxes for the contact just chosen (``?contact=<id>``)."""
    contact = _contact_or_none(_organization(request), spec, request.GET.get("contact"))
    return render(
        request,
        "books/documents/_share_with.html",
        {
            "contact": contact,
            "persons": share_with_choices(contact, None),
            "party_label": ContactType(spec.party).label,
        },
    )


@kind_member_required(manage=True)
@require_GET
def document_open_documents_view(request: HttpRequest, spec: KindSpec) -> HttpResponse:
    """A payment's "apply to" table for the contact just chosen (``?contact=<id>``)."""
    if not spec.is_payment:
        raise Http404(_("Only payments are applied to documents."))
    contact = _contact_or_none(_organization(request), spec, request.GET.get("contact"))
    targets = payment_target_list(spec=spec, contact=contact) if contact else []
    return render(
        request,
        "books/documents/_open_documents.html",
        {"contact": contact, "apply": PaymentApplyForm(targets=targets), "spec": spec},
    )


urlpatterns = [
    path("<kind:spec>/", document_list_view, name="document_list"),
    path("<kind:spec>/new/", document_create_view, name="document_create"),
    path("<kind:spec>/new/contact-persons/", document_contact_persons_view, name="document_contact_persons"),
    path("<kind:spec>/new/open-documents/", document_open_documents_view, name="document_open_documents"),
    path("<kind:spec>/<int:pk>/", document_detail_view, name="document_detail"),
    path("<kind:spec>/<int:pk>/edit/", document_edit_view, name="document_edit"),
    path("<kind:spec>/<int:pk>/pdf/", document_pdf_view, name="document_pdf"),
    path("<kind:spec>/<int:pk>/history/", document_history_view, name="document_history"),
    path("<kind:spec>/<int:pk>/issue/", document_issue_view, name="document_issue"),
    path("<kind:spec>/<int:pk>/void/", document_void_view, name="document_void"),
    path("<kind:spec>/<int:pk>/status/", document_status_view, name="document_status"),
]
