"""The Send page: a document, a notice or a statement to a contact's people over WhatsApp.

What "Send → WhatsApp message" (document and contact pages), "Reminders → Send WhatsApp
message" (invoices), "Share via → WhatsApp" (statement tab) and the form's "Save and send" open.
URL names (namespace ``whatsapp_send``, mounted at ``whatsapp/``): ``document``
(``?module=payment_reminders`` picks another module of the kind), ``contact`` and ``statement``
(``?from=YYYY-MM-DD&to=YYYY-MM-DD``); ``?contact_persons=1,2`` preselects people.

The page shows :func:`~whatsapp.services.notifications.notification_plan`: the module's approved
templates (the default chosen), the preview in a WhatsApp bubble, each contact person and
whether WhatsApp can reach them, the credits it needs and the first rule that would refuse it;
changing the template or the people refreshes it through htmx. Send calls
:func:`~whatsapp.services.notifications.notification_send` with a one-time token from the page as
idempotency key, so a double submit sends once; a refusal comes back on the page (400), never a
500. Every page needs NOTIFICATIONS_SEND and the right to see the document or contact; another
organization's id is a 404.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from books.api.access import CONTACT_PERMS, DOCUMENT_PERMS
from books.choices import ContactType
from books.formatting import date_format
from books.history import document_url
from books.models import Contact, ContactPerson, Document
from books.permissions import Perm
from books.phone import phone_display
from books.views.access import member_required
from credits.formatting import credits_format
from templates_mgmt.choices import HeaderType, Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from whatsapp.services.notifications import (
    IdempotencyConflict,
    NotificationPlan,
    NotificationRefused,
    Subject,
    notification_plan,
    notification_send,
    recipient_check,
    subject_for_contact,
    subject_for_document,
    template_chosen,
)
from whatsapp.views.templates import whatsapp_markup

#: The idempotency key of a send from this page is this prefix and the page's one-time token.
IDEMPOTENCY_PREFIX = "send-page:"
#: POSTed and htmx-refreshed with the form: the checkboxes are the choice, even when none is ticked.
CHOSEN_FIELD = "recipients_chosen"


@dataclass(frozen=True)
class SendTarget:
    """What a Send page sends and where the accountant goes back to."""

    subject: Subject
    back_url: str
    title: str
    #: Hidden fields that keep the subject across the form's requests (module, statement period).
    hidden: dict[str, str]


# --- Access and lookups ------------------------------------------------------------------------


def _require(request: HttpRequest, perm: str) -> None:
    if not request.membership.has_perm(perm):
        raise PermissionDenied


def _params(request: HttpRequest) -> QueryDict:
    return request.POST if request.method == "POST" else request.GET


def _document_target(request: HttpRequest, pk: int) -> SendTarget:
    document = (
        Document.objects.filter(organization=request.membership.organization, pk=pk)
        .select_related("contact", "organization")
        .prefetch_related("share_with")
        .first()
    )
    if document is None:
        raise Http404(_("No such document."))
    _require(request, DOCUMENT_PERMS[document.spec.party].view)
    module = _params(request).get("module") or None
    try:
        subject = subject_for_document(document=document, module=module)
    except NotificationRefused as refusal:  # a kind (or module) WhatsApp doesn't send
        raise Http404(refusal.message) from None
    return SendTarget(
        subject=subject,
        back_url=document_url(document),
        title=f"{document.spec.label} {document.number}",
        hidden={"module": module} if module else {},
    )


def _contact(request: HttpRequest, pk: int) -> Contact:
    contact = (
        Contact.objects.filter(organization=request.membership.organization, pk=pk)
        .select_related("organization")
        .first()
    )
    if contact is None:
        raise Http404(_("No such contact."))
    _require(request, CONTACT_PERMS[contact.contact_type].view)
    return contact


def _contact_target(request: HttpRequest, pk: int) -> SendTarget:
    contact = _contact(request, pk)
    module = _params(request).get("module") or None
    try:
        subject = subject_for_contact(contact=contact, module=module)
    except NotificationRefused as refusal:
        raise Http404(refusal.message) from None
    return SendTarget(
        subject=subject,
        back_url=reverse("books:contact_detail", args=[contact.pk]),
        title=contact.display_name,
        hidden={"module": module} if module else {},
    )


def _statement_target(request: HttpRequest, pk: int) -> SendTarget:
    contact = _contact(request, pk)
    params = _params(request)
    module = Module.VENDOR_STATEMENTS if contact.contact_type == ContactType.VENDOR else Module.CUSTOMER_STATEMENTS
    start, end = _date(params.get("from")), _date(params.get("to"))
    try:
        subject = subject_for_contact(contact=contact, module=module, statement_from=start, statement_to=end)
    except NotificationRefused as refusal:  # a period that ends before it starts
        raise Http404(refusal.message) from None
    period = {"from": subject.statement_from.isoformat(), "to": subject.statement_to.isoformat()}
    back = reverse("books:contact_statement", args=[contact.pk])
    organization = contact.organization
    return SendTarget(
        subject=subject,
        back_url=f"{back}?from_date={period['from']}&to_date={period['to']}",
        title=_("Statement of %(contact)s, %(start)s to %(end)s")
        % {
            "contact": contact.display_name,
            "start": date_format(subject.statement_from, organization=organization),
            "end": date_format(subject.statement_to, organization=organization),
        },
        hidden=period,
    )


def _date(value: str | None) -> datetime.date | None:
    try:
        return parse_date(value or "")
    except ValueError:
        return None


# --- What the form says ------------------------------------------------------------------------


def _template(subject: Subject, params: QueryDict) -> MessageTemplate | NotificationRefused | None:
    """The template asked for (:func:`~whatsapp.services.notifications.template_chosen`)."""
    return template_chosen(organization=subject.organization, raw=params.get("template", ""))


def _ids(params: QueryDict) -> list[int]:
    """``contact_persons`` as repeated fields (checkboxes) or one comma-separated value (links)."""
    return [int(part) for value in params.getlist("contact_persons") for part in value.split(",") if part.isdigit()]


def _persons(subject: Subject, params: QueryDict, *, posted: bool) -> list[ContactPerson] | None:
    """The people chosen: the ticked boxes once the form was used (none ticked is a choice), the
    ``?contact_persons=`` of a link (those WhatsApp can reach, else as given so the page says
    why), or None for the service's default (the document's "Share with" people)."""
    persons = list(subject.contact.persons.all())
    wanted = set(_ids(params))
    chosen = [person for person in persons if person.pk in wanted]
    if posted or params.get(CHOSEN_FIELD):
        return chosen
    if not wanted:
        return None
    reachable = [person for person in chosen if recipient_check(person, contact=subject.contact).ok]
    return reachable or chosen


# --- Rendering ---------------------------------------------------------------------------------


def _preview_source(subject: Subject) -> str:
    if subject.document is not None:
        return _("Values from %(document)s") % {"document": subject.document.number}
    if subject.statement_from is not None:
        return _("Values from the statement of %(contact)s") % {"contact": subject.contact.display_name}
    return _("Values of %(contact)s") % {"contact": subject.contact.display_name}


def _plan_context(target: SendTarget, plan: NotificationPlan, error: NotificationRefused | None) -> dict[str, Any]:
    options = list(plan.templates)
    if plan.template is not None and plan.template not in options:
        options.append(plan.template)  # asked for but not usable: shown, so the refusal reads right
    refusal = error or plan.refusal
    preview = plan.preview
    return {
        "target": target,
        "subject": target.subject,
        "plan": plan,
        "module_label": Module(target.subject.module).label,
        "template_options": [
            {
                "template": template,
                "selected": plan.template is not None and template.pk == plan.template.pk,
                "approved": template.status == TemplateStatus.APPROVED,
            }
            for template in options
        ],
        "recipients": [
            {
                "person": check.person,
                "phone": phone_display(check.phone) if check.phone else "",
                "ok": check.ok,
                "problem": check.problem,
                "checked": check.ok and check.person.pk in plan.selected_ids,
            }
            for check in plan.recipients
        ],
        "refusal": refusal,
        "error": error,
        "can_send": refusal is None,
        "show_credits": refusal is None or refusal.code == "insufficient_credits",
        "credits_needed": credits_format(plan.credits_needed, organization=plan.subject.organization),
        "credits_available": credits_format(plan.credits_available, organization=plan.subject.organization),
        "preview": preview,
        "preview_body": whatsapp_markup(preview.body) if preview else "",
        "preview_source": _preview_source(target.subject),
        "preview_document": preview is not None and preview.header_type == HeaderType.DOCUMENT,
        "preview_image": preview is not None and preview.header_type == HeaderType.IMAGE,
        "chosen_field": CHOSEN_FIELD,
    }


def _render(
    request: HttpRequest,
    target: SendTarget,
    plan: NotificationPlan,
    *,
    error: NotificationRefused | None = None,
    status: int = 200,
) -> HttpResponse:
    context = _plan_context(target, plan, error)
    if request.headers.get("HX-Request") and request.method == "GET":
        return render(request, "whatsapp/send/_plan.html", context, status=status)
    context["token"] = secrets.token_urlsafe(24)
    return render(request, "whatsapp/send/page.html", context, status=status)


# --- The page ----------------------------------------------------------------------------------


def _send_page(request: HttpRequest, target: SendTarget) -> HttpResponse:
    subject = target.subject
    posted = request.method == "POST"
    params = _params(request)
    template = _template(subject, params)
    persons = _persons(subject, params, posted=posted)
    if isinstance(template, NotificationRefused):  # shown with the module's default; nothing sent
        plan = notification_plan(subject=subject, template=None, contact_persons=persons)
        return _render(request, target, plan, error=template, status=400 if posted else 200)
    if not posted:
        return _render(request, target, notification_plan(subject=subject, template=template, contact_persons=persons))
    token = params.get("token", "")
    try:
        result = notification_send(
            subject=subject,
            template=template,
            contact_persons=persons,
            user=request.user,
            idempotency_key=f"{IDEMPOTENCY_PREFIX}{token}" if token else "",
        )
    except NotificationRefused as refusal:
        plan = notification_plan(subject=subject, template=template, contact_persons=persons)
        return _render(request, target, plan, error=refusal, status=400)
    except IdempotencyConflict:
        plan = notification_plan(subject=subject, template=template, contact_persons=persons)
        conflict = NotificationRefused(
            "idempotency_conflict",
            _("This page was already used to send another message. Check the recipients and press Send again."),
        )
        return _render(request, target, plan, error=conflict, status=400)
    count = len(result.messages)
    messages.success(
        request,
        ngettext(
            "WhatsApp message queued for %(count)d recipient.",
            "WhatsApp message queued for %(count)d recipients.",
            count,
        )
        % {"count": count},
    )
    return redirect(target.back_url)


@member_required(Perm.NOTIFICATIONS_SEND)
@require_http_methods(["GET", "POST"])
def send_document(request: HttpRequest, pk: int) -> HttpResponse:
    return _send_page(request, _document_target(request, pk))


@member_required(Perm.NOTIFICATIONS_SEND)
@require_http_methods(["GET", "POST"])
def send_contact(request: HttpRequest, pk: int) -> HttpResponse:
    return _send_page(request, _contact_target(request, pk))


@member_required(Perm.NOTIFICATIONS_SEND)
@require_http_methods(["GET", "POST"])
def send_statement(request: HttpRequest, pk: int) -> HttpResponse:
    return _send_page(request, _statement_target(request, pk))
