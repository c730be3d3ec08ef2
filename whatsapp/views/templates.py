"""Settings → Integrations → WhatsApp → Message templates, mounted at ``…/whatsapp/templates/``.

URL names (namespace ``whatsapp``): ``template_list`` (per module, with a status filter),
``template_sync``, ``template_new``, ``template_edit``, ``template_preview`` (the htmx bubble),
``template_detail``, ``template_submit``, ``template_clone``, ``template_default``,
``template_delete`` and ``template_modules`` (the per-module toggles).

Every page needs SETTINGS_MANAGE and a connected (or inactive) account, as the rest of the
WhatsApp settings do. Views validate, call one service (``templates_mgmt.services`` for the
hub's own rows, ``whatsapp.services.templates`` when Meta is involved) and redirect; a service's
``ValidationError`` — a Meta rule, or Meta's own refusal with its fix hint — goes on the form
field it concerns or into a message, never a 500. A template is looked up within the
organization: another organization's id is a 404.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, Final

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from books.choices import DocumentStatus
from books.models import Contact, Document, Organization
from books.permissions import Perm
from books.selectors import statement_build
from books.views.access import member_required
from templates_mgmt.choices import ButtonType, HeaderType, Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.modules import MODULES
from templates_mgmt.rendering import TemplateNotSendable, TemplatePreview, template_preview
from templates_mgmt.selectors import module_state_list, template_list
from templates_mgmt.services import (
    module_setting_update,
    template_create,
    template_set_default,
    template_update,
)
from templates_mgmt.services.lifecycle import EDITABLE_STATUSES
from whatsapp.forms_templates import SUFFIX, CloneForm, ModuleToggleForm, TemplateForm, errors_to_form
from whatsapp.models import WhatsAppAccount
from whatsapp.services import templates as services
from whatsapp.views.integration import account_required

LIST = "whatsapp:template_list"

#: The list's status filter: the seed's statuses, Meta's quality holds grouped as "paused / disabled".
STATUS_FILTERS: Final[dict[str, tuple[Any, tuple[str, ...]]]] = {
    "draft": (gettext_lazy("Draft"), (TemplateStatus.DRAFT,)),
    "pending": (gettext_lazy("Pending approval"), (TemplateStatus.PENDING, TemplateStatus.IN_APPEAL)),
    "approved": (gettext_lazy("Approved"), (TemplateStatus.APPROVED, TemplateStatus.REINSTATED)),
    "rejected": (gettext_lazy("Rejected"), (TemplateStatus.REJECTED,)),
    "paused": (
        gettext_lazy("Paused / disabled"),
        (
            TemplateStatus.PAUSED,
            TemplateStatus.DISABLED,
            TemplateStatus.FLAGGED,
            TemplateStatus.LIMIT_EXCEEDED,
            TemplateStatus.LOCKED,
            TemplateStatus.ARCHIVED,
        ),
    ),
    "deleting": (gettext_lazy("Deletion in progress"), (TemplateStatus.PENDING_DELETION,)),
    "deletion_failed": (gettext_lazy("Deletion failed"), (TemplateStatus.DELETION_FAILED,)),
    "deleted": (gettext_lazy("Deleted"), (TemplateStatus.DELETED,)),
}

#: Status → badge of the app's vocabulary (static/css/app.css).
BADGES: Final[dict[str, str]] = {
    TemplateStatus.DRAFT: "badge-draft",
    TemplateStatus.PENDING: "badge-sent",
    TemplateStatus.IN_APPEAL: "badge-sent",
    TemplateStatus.APPROVED: "badge-paid",
    TemplateStatus.REINSTATED: "badge-paid",
    TemplateStatus.REJECTED: "badge-overdue",
    TemplateStatus.PENDING_DELETION: "badge-muted",
    TemplateStatus.DELETION_FAILED: "badge-overdue",
    TemplateStatus.DELETED: "badge-void",
}
UNASSIGNED: Final = "unassigned"


def badge_class(status: str) -> str:
    return BADGES.get(status, "badge-warning")


def _error_text(error: ValidationError) -> str:
    return " ".join(str(message) for message in error.messages)


def _template_or_404(request: HttpRequest, account: WhatsAppAccount, pk: int) -> MessageTemplate:
    template = MessageTemplate.objects.filter(organization=request.organization, pk=pk).first()
    if template is None or template.waba_id != account.waba_id:
        raise Http404(_("No such message template."))
    return template


def _detail_url(template: MessageTemplate) -> str:
    return reverse("whatsapp:template_detail", args=[template.pk])


def _list_url(module: str) -> str:
    return f"{reverse(LIST)}?module={module}" if module else reverse(LIST)


# --- The list -----------------------------------------------------------------------------------


def _module_tabs(organization: Organization, account: WhatsAppAccount, current: str) -> list[dict[str, Any]]:
    counts = dict(
        template_list(organization=organization, waba_id=account.waba_id)
        .values_list("module")
        .annotate(count=Count("pk"))
        .order_by()
    )
    tabs = [
        {"value": value, "label": label, "count": counts.get(value, 0), "active": value == current}
        for value, label in Module.choices
    ]
    if counts.get(""):
        tabs.append(
            {"value": UNASSIGNED, "label": _("Not assigned"), "count": counts[""], "active": current == UNASSIGNED}
        )
    return tabs


def _list_queryset(
    organization: Organization, account: WhatsAppAccount, module: str, status: str
) -> QuerySet[MessageTemplate]:
    queryset = template_list(
        organization=organization,
        module=None if module == UNASSIGNED else module,
        waba_id=account.waba_id,
        include_deleted=status == "deleted",
    )
    if module == UNASSIGNED:
        queryset = queryset.filter(module="")
    if status in STATUS_FILTERS:
        queryset = queryset.filter(status__in=STATUS_FILTERS[status][1])
    return queryset.order_by("-is_default", "name", "language")


@account_required(*services.TEMPLATE_STATES)
@require_GET
def template_list_view(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    module = request.GET.get("module") or Module.CUSTOMERS
    if module not in Module.values and module != UNASSIGNED:
        module = Module.CUSTOMERS
    status = request.GET.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    templates = list(_list_queryset(request.organization, account, module, status))
    states = {state.module: state for state in module_state_list(organization=request.organization)}
    return render(
        request,
        "whatsapp/templates/list.html",
        {
            "nav": "settings",
            "account": account,
            "module": module,
            "module_label": _("Not assigned") if module == UNASSIGNED else Module(module).label,
            "module_state": states.get(module),
            "status": status,
            "tabs": _module_tabs(request.organization, account, module),
            "status_filters": [(key, label) for key, (label, _statuses) in STATUS_FILTERS.items()],
            "rows": [{"template": template, "badge": badge_class(template.status)} for template in templates],
            "editable": EDITABLE_STATUSES,
        },
    )


@account_required(*services.TEMPLATE_STATES)
@require_POST
def template_sync(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    try:
        result = services.account_templates_sync(account=account)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            _("Templates synced with Meta: %(created)d new, %(updated)d updated, %(deleted)d deleted.")
            % {"created": result.created, "updated": result.updated, "deleted": result.deleted},
        )
    return redirect(_list_url(request.POST.get("module", "")))


# --- The builder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewSource:
    """What fills the preview: a real document (or contact, statement) of the organization, else examples."""

    label: str
    document: Document | None = None
    contact: Contact | None = None
    statement: Any = None


def _preview_source(organization: Organization, module: str) -> PreviewSource:
    """The latest transaction of the module's kind, so the preview shows real values."""
    spec = MODULES.get(module)
    examples = PreviewSource(_("Example values"))
    if spec is None:
        return examples
    if spec.document_kind is not None:
        document = (
            Document.objects.filter(organization=organization, kind=spec.document_kind)
            .exclude(status=DocumentStatus.VOID)
            .select_related("contact", "organization")
            .order_by("-date", "-id")
            .first()
        )
        if document is None:
            return examples
        return PreviewSource(_("Values from %(document)s") % {"document": document.number}, document=document)
    contact = (
        Contact.objects.filter(organization=organization, contact_type=spec.party)
        .select_related("organization")
        .order_by("-created_at", "-id")
        .first()
    )
    if contact is None:
        return examples
    if spec.uses_statement:
        today = datetime.date.today()
        try:
            statement = statement_build(contact=contact, from_date=today.replace(day=1), to_date=today)
        except Exception:  # a statement the books can't build only costs the preview its real values
            return examples
        return PreviewSource(
            _("Values from %(contact)s's statement") % {"contact": contact.display_name}, statement=statement
        )
    return PreviewSource(_("Values from %(contact)s") % {"contact": contact.display_name}, contact=contact)


def _preview_template(organization: Organization, form: TemplateForm) -> MessageTemplate:
    """An unsaved template holding what the form has now (valid or not): the preview renders it."""
    data = form.data
    prefix = form.add_prefix

    def value(key: str) -> str:
        return str(data.get(prefix(key)) or "")

    module = form.module
    buttons = []
    for button in form.buttons_value({key: data.get(prefix(key)) for key in form.fields}):
        if button.get("type") != ButtonType.PHONE_NUMBER and button.get("url_suffix_field"):
            button["url"] = button["url"] + SUFFIX
        buttons.append(button)
    template = MessageTemplate(
        organization=organization,
        module=module,
        name=value("name"),
        header_type=value("header_type") or HeaderType.NONE,
        header_text=value("header_text"),
        attachment_mode=value("attachment_mode"),
        body=value("body"),
        footer=value("footer"),
        buttons=buttons,
        field_mapping={},
    )
    if form.template is not None:
        template.attachment_filename = form.template.attachment_filename
        if form.template.meta_id:
            template.module = form.template.module
    return template


_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~([^~\n]+)~(?![\w~])")


def whatsapp_markup(text: str) -> SafeString:
    """WhatsApp's *bold*, _italic_ and ~strikethrough~, on escaped text, line breaks kept."""
    html = str(escape(text))
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    html = _ITALIC.sub(r"<em>\1</em>", html)
    html = _STRIKE.sub(r"<s>\1</s>", html)
    return mark_safe(html.replace("\n", "<br>"))  # noqa: S308 - escaped above; only our tags added


def _preview_context(template: MessageTemplate, source: PreviewSource) -> dict[str, Any]:
    try:
        preview: TemplatePreview = template_preview(
            template=template, document=source.document, contact=source.contact, statement=source.statement
        )
        label = source.label
    except TemplateNotSendable:
        preview = template_preview(template=template)
        label = _("Example values")
    return {
        "preview": preview,
        "preview_body": whatsapp_markup(preview.body),
        "preview_source": label,
        "preview_document": preview.header_type == HeaderType.DOCUMENT,
        "preview_image": preview.header_type == HeaderType.IMAGE,
    }


def _form_context(
    request: HttpRequest, account: WhatsAppAccount, form: TemplateForm, template: MessageTemplate | None
) -> dict[str, Any]:
    preview_template = _preview_template(request.organization, form) if form.is_bound else None
    if preview_template is None:
        form_initial = TemplateForm(
            {key: value for key, value in form.initial.items() if value is not None}, template=template
        )
        preview_template = _preview_template(request.organization, form_initial)
    return {
        "nav": "settings",
        "account": account,
        "form": form,
        "template": template,
        "catalogue": form.catalogue,
        "button_rows": form.button_rows(),
        "module_label": Module(form.module).label if form.module in Module.values else "",
        "static_allowed": MODULES[form.module].allows_static_attachment if form.module in MODULES else False,
        **_preview_context(preview_template, _preview_source(request.organization, form.module)),
    }


def _save(
    request: HttpRequest, account: WhatsAppAccount, form: TemplateForm, template: MessageTemplate | None
) -> MessageTemplate | None:
    """Create or update the draft; on a broken rule the errors go on the form and None is returned."""
    arguments = form.service_arguments()
    try:
        if template is None:
            return template_create(
                organization=request.organization, waba_id=account.waba_id, created_by=request.user, **arguments
            )
        return template_update(template=template, **arguments)
    except ValidationError as exc:
        errors_to_form(form, exc)
        return None


def _builder(request: HttpRequest, account: WhatsAppAccount, template: MessageTemplate | None) -> HttpResponse:
    if request.method == "POST":
        # Disabled fields (name, language, module of a template Meta knows) take their initial value.
        initial = TemplateForm.initial_for(template) if template is not None else None
        form = TemplateForm(request.POST, request.FILES, initial=initial, template=template)
        if form.is_valid():
            saved = _save(request, account, form, template)
            if saved is not None:
                if request.POST.get("action") != "submit":
                    messages.success(request, _("The template “%(name)s” was saved as a draft.") % {"name": saved.name})
                    return redirect(_detail_url(saved))
                try:
                    saved = services.account_template_submit(account=account, template=saved)
                except ValidationError as exc:
                    # Saved, but Meta (or a rule checked again at submission) refused it: fix it here.
                    errors_to_form(form, exc)
                    messages.error(
                        request,
                        _("The template was saved as a draft but not submitted. Check the highlighted fields."),
                    )
                    form.template = saved
                    return render(request, "whatsapp/templates/form.html", _form_context(request, account, form, saved))
                messages.success(
                    request,
                    _("“%(name)s” was submitted to WhatsApp for approval. It can take up to 24 hours.")
                    % {"name": saved.name},
                )
                return redirect(_detail_url(saved))
        messages.error(request, _("The template was not saved. Check the highlighted fields."))
    else:
        if template is not None:
            initial = TemplateForm.initial_for(template)
        else:
            module = request.GET.get("module")
            initial = {
                "module": module if module in Module.values else Module.CUSTOMERS,
                "category": "UTILITY",
                "language": "en",
                "header_type": HeaderType.NONE,
            }
        form = TemplateForm(initial=initial, template=template)
    return render(request, "whatsapp/templates/form.html", _form_context(request, account, form, template))


@account_required(*services.TEMPLATE_STATES)
def template_new(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    return _builder(request, account, None)


@account_required(*services.TEMPLATE_STATES)
def template_edit(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    template = _template_or_404(request, account, pk)
    if template.status not in EDITABLE_STATUSES:
        messages.info(
            request,
            _("Only draft or rejected templates can be edited; clone “%(name)s” to change it.")
            % {"name": template.name},
        )
        return redirect(_detail_url(template))
    return _builder(request, account, template)


@member_required(Perm.SETTINGS_MANAGE)
@require_POST
def template_preview_view(request: HttpRequest) -> HttpResponse:
    """The bubble again, from the builder's current values (htmx, as the administrator types)."""
    template = None
    pk = request.GET.get("template")
    if pk and pk.isdigit():
        template = MessageTemplate.objects.filter(organization=request.organization, pk=pk).first()
    form = TemplateForm(request.POST, template=template)
    preview_template = _preview_template(request.organization, form)
    context = _preview_context(preview_template, _preview_source(request.organization, form.module))
    return render(request, "whatsapp/templates/_preview.html", context)


# --- One template -------------------------------------------------------------------------------


def _timeline(template: MessageTemplate) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"at": template.created_at, "label": _("Created"), "detail": ""}]
    if template.submitted_at:
        events.append({"at": template.submitted_at, "label": _("Submitted to WhatsApp for approval"), "detail": ""})
    if template.status_updated_at:
        events.append(
            {
                "at": template.status_updated_at,
                "label": _("WhatsApp: %(status)s") % {"status": template.get_status_display()},
                "detail": template.status_reason,
            }
        )
    events.sort(key=lambda event: event["at"])
    return events


@account_required(*services.TEMPLATE_STATES)
@require_GET
def template_detail(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    template = _template_or_404(request, account, pk)
    context: dict[str, Any] = {
        "nav": "settings",
        "account": account,
        "template": template,
        "badge": badge_class(template.status),
        "editable": template.status in EDITABLE_STATUSES,
        "can_submit": template.status == TemplateStatus.DRAFT
        or (template.status == TemplateStatus.REJECTED and bool(template.meta_id)),
        "can_default": template.status == TemplateStatus.APPROVED and bool(template.module) and not template.is_default,
        "can_delete": template.status not in (TemplateStatus.DELETED, TemplateStatus.PENDING_DELETION),
        "deletion_failed": template.status == TemplateStatus.DELETION_FAILED,
        "can_clone": bool(template.module) and template.parameter_format != "POSITIONAL",
        "timeline": _timeline(template),
        "error_detail": (template.status_detail or {}).get("error") or {},
    }
    context.update(_preview_context(template, _preview_source(request.organization, template.module)))
    return render(request, "whatsapp/templates/detail.html", context)


@account_required(*services.TEMPLATE_STATES)
@require_POST
def template_submit(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    template = _template_or_404(request, account, pk)
    try:
        template = services.account_template_submit(account=account, template=template)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            _("“%(name)s” was submitted to WhatsApp for approval. It can take up to 24 hours.")
            % {"name": template.name},
        )
    return redirect(_detail_url(template))


@account_required(*services.TEMPLATE_STATES)
def template_clone(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    template = _template_or_404(request, account, pk)
    form = CloneForm(request.POST or None, initial={"name": f"{template.name}_copy"[:512], "submit": True})
    if request.method == "POST" and form.is_valid():
        try:
            clone, refused = services.account_template_clone(
                account=account,
                template=template,
                name=form.cleaned_data["name"],
                submit=form.cleaned_data["submit"],
                created_by=request.user,
            )
        except ValidationError as exc:
            errors_to_form(form, exc)
        else:
            if refused is not None:
                messages.error(
                    request,
                    _("The copy “%(name)s” was saved as a draft but not submitted: %(error)s")
                    % {"name": clone.name, "error": _error_text(refused)},
                )
                return redirect("whatsapp:template_edit", pk=clone.pk)
            if clone.status == TemplateStatus.DRAFT:
                messages.success(request, _("“%(name)s” was created as a draft.") % {"name": clone.name})
            else:
                messages.success(
                    request, _("“%(name)s” was created and submitted for approval.") % {"name": clone.name}
                )
            return redirect(_detail_url(clone))
    return render(
        request,
        "whatsapp/templates/clone.html",
        {"nav": "settings", "account": account, "template": template, "form": form},
    )


@account_required(*services.TEMPLATE_STATES)
@require_POST
def template_default(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    template = _template_or_404(request, account, pk)
    try:
        template_set_default(template=template)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            _("“%(name)s” is the default template for %(module)s.")
            % {"name": template.name, "module": template.get_module_display()},
        )
    return redirect(request.POST.get("next") or _detail_url(template))


@account_required(*services.TEMPLATE_STATES)
def template_delete(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    template = _template_or_404(request, account, pk)
    module = template.module
    if request.method == "POST":
        try:
            deleted = services.account_template_delete(account=account, template=template)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
            return redirect(_detail_url(template))
        if deleted.pk is None:
            messages.success(request, _("The draft “%(name)s” was deleted.") % {"name": template.name})
        else:
            messages.success(request, _("The template “%(name)s” was deleted.") % {"name": template.name})
        return redirect(_list_url(module))
    return render(
        request,
        "whatsapp/templates/confirm.html",
        {
            "nav": "settings",
            "title": _("Delete template"),
            "question": _("Delete the template “%(name)s” (%(language)s)?")
            % {"name": template.name, "language": template.language},
            "explanation": _(
                "Deleting a template is permanent and cannot be undone. WhatsApp keeps its name blocked for "
                "4 weeks; messages already sent with it stay in the history. You can create a new template "
                "and submit it for approval."
            ),
            "confirm_label": _("Delete"),
            "danger": True,
            "cancel_url": _detail_url(template),
        },
    )


# --- Module enablement --------------------------------------------------------------------------


@account_required(*services.TEMPLATE_STATES)
def template_modules(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    if request.method == "POST":
        form = ModuleToggleForm(request.POST)
        if form.is_valid():
            module, enabled = form.cleaned_data["module"], form.cleaned_data["enabled"]
            try:
                module_setting_update(
                    organization=request.organization, module=module, enabled=enabled, user=request.user
                )
            except ValidationError as exc:
                messages.error(request, _error_text(exc))
            else:
                label = Module(module).label
                if enabled:
                    messages.success(request, _("WhatsApp notifications are on for %(module)s.") % {"module": label})
                else:
                    messages.success(request, _("WhatsApp notifications are off for %(module)s.") % {"module": label})
        else:
            messages.error(request, _("Choose a module."))
        return redirect("whatsapp:template_modules")
    return render(
        request,
        "whatsapp/templates/modules.html",
        {"nav": "settings", "account": account, "states": module_state_list(organization=request.organization)},
    )
