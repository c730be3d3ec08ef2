"""A template's life in the hub: drafted, submitted to Meta, edited and resubmitted, cloned,
made the module's default, deleted.

Every service takes what it needs from WhatsApp as arguments (``api``, ``app_id``, ``waba_id``):
``templates_mgmt`` never reads the business account itself (DESIGN.md's import direction), the
WhatsApp app does and calls these. No Graph call is made inside a database transaction: the row
is read, Meta is called, then the outcome is written under a row lock.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from books.models import Organization
from templates_mgmt.attachments import file_bytes
from templates_mgmt.choices import AttachmentMode, HeaderType, TemplateStatus
from templates_mgmt.meta import header_handle_upload, template_payload_build
from templates_mgmt.models import MessageTemplate
from templates_mgmt.placeholders import PARAMETER_FORMAT_NAMED
from templates_mgmt.validation import CleanTemplate, TemplateDraft, error_for_meta, template_clean
from whatsapp.client import CloudAPI, CloudAPIError, TemplateInfo

#: States in which the hub lets the builder change a template: never sent, or sent back by Meta.
EDITABLE_STATUSES = (TemplateStatus.DRAFT, TemplateStatus.REJECTED)

#: Meta's "content in this language already exists" (a retried create whose first answer was lost).
DUPLICATE_SUBCODE = 2388024

BUILDER_FIELDS = (
    "name",
    "language",
    "category",
    "module",
    "body",
    "header_type",
    "header_text",
    "attachment_mode",
    "attachment",
    "footer",
    "buttons",
)


def _error(message: str, key: str = NON_FIELD_ERRORS) -> ValidationError:
    return ValidationError({key: [message]})


# --- Drafts -------------------------------------------------------------------------------------


def _apply(template: MessageTemplate, clean: CleanTemplate, attachment: File | None) -> None:
    """Copy a cleaned draft onto the row; a new upload replaces the stored file."""
    template.name = clean.name
    template.language = clean.language
    template.category = clean.category
    template.module = clean.module
    template.header_type = clean.header_type
    template.header_text = clean.header_text
    template.attachment_mode = clean.attachment_mode
    template.body = clean.body
    template.footer = clean.footer
    template.buttons = clean.buttons
    template.field_mapping = clean.field_mapping
    template.parameter_format = PARAMETER_FORMAT_NAMED
    if clean.attachment_mode == AttachmentMode.STATIC and attachment is not None:
        if attachment is not template.attachment:
            filename = os.path.basename(attachment.name or "") or "attachment"
            template.attachment = File(attachment, name=filename)
            template.attachment_filename = filename[:255]
        template.attachment_mime = clean.attachment_mime
    else:
        template.attachment = None
        template.attachment_mime = ""
        template.attachment_filename = ""


def _save_new(template: MessageTemplate) -> None:
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError as exc:  # the same name × language created concurrently
        raise _error(
            _("A template named “%(name)s” already exists in this language.") % {"name": template.name}, "name"
        ) from exc


def template_create(
    *,
    organization: Organization,
    waba_id: str,
    name: str,
    language: str,
    category: str,
    module: str,
    body: str,
    header_type: str = HeaderType.NONE,
    header_text: str = "",
    attachment_mode: str = "",
    attachment: File | None = None,
    footer: str = "",
    buttons: Sequence[Mapping[str, Any]] = (),
    created_by: AbstractBaseUser | None = None,
) -> MessageTemplate:
    """Check a new template against every Meta rule and save it as a DRAFT (nothing is sent yet).

    Raises ValidationError keyed by builder field.
    """
    draft = TemplateDraft(
        name=name,
        language=language,
        category=category,
        module=module,
        body=body,
        header_type=header_type,
        header_text=header_text,
        attachment_mode=attachment_mode,
        attachment=attachment,
        footer=footer,
        buttons=list(buttons),
    )
    clean = template_clean(organization=organization, waba_id=waba_id, draft=draft)
    template = MessageTemplate(
        organization=organization, waba_id=waba_id, status=TemplateStatus.DRAFT, created_by=created_by
    )
    _apply(template, clean, attachment)
    _save_new(template)
    return template


def _draft_of(template: MessageTemplate, changes: Mapping[str, Any]) -> TemplateDraft:
    values = {key: changes.get(key, getattr(template, key)) for key in BUILDER_FIELDS if key != "attachment"}
    attachment = changes.get("attachment") or (template.attachment if template.attachment else None)
    return TemplateDraft(**values, attachment=attachment)


def template_update(*, template: MessageTemplate, **changes: Any) -> MessageTemplate:
    """Edit a draft, or a template Meta rejected (then resubmit it with :func:`template_resubmit`).

    An approved template is not edited in place: sends keep using it while a copy goes through
    review (:func:`template_clone`). A template Meta knows keeps its name and language, as Meta
    identifies it by them.
    """
    unknown = set(changes) - set(BUILDER_FIELDS)
    if unknown:
        raise TypeError(f"template_update() got unexpected fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        previous_file = template.attachment.name
        if template.status not in EDITABLE_STATUSES:
            raise _error(
                _("Only draft or rejected templates can be edited; clone “%(name)s” to change it.")
                % {"name": template.name}
            )
        if template.meta_id:
            for key in ("name", "language"):
                if key in changes and changes[key] != getattr(template, key):
                    raise _error(
                        _("A template sent to WhatsApp keeps its name and language; clone it to use others."), key
                    )
        draft = _draft_of(template, changes)
        clean = template_clean(
            organization=template.organization, waba_id=template.waba_id, draft=draft, exclude_pk=template.pk
        )
        _apply(template, clean, draft.attachment)
        template.save()
    if previous_file and previous_file != template.attachment.name:
        template.attachment.storage.delete(previous_file)  # replaced or dropped: nothing else points at it
    return template


def template_clone(
    *,
    template: MessageTemplate,
    name: str,
    language: str | None = None,
    created_by: AbstractBaseUser | None = None,
    api: CloudAPI | None = None,
    app_id: str = "",
) -> MessageTemplate:
    """A new draft with ``template``'s content under a new name; submitted at once when ``api`` is given.

    A static attachment is copied, so deleting one template never removes the other's file.
    """
    attachment = None
    if template.attachment_mode == AttachmentMode.STATIC and template.attachment:
        attachment = ContentFile(file_bytes(template.attachment), name=template.attachment_filename or "attachment")
    clone = template_create(
        organization=template.organization,
        waba_id=template.waba_id,
        name=name,
        language=language or template.language,
        category=template.category,
        module=template.module,
        body=template.body,
        header_type=template.header_type,
        header_text=template.header_text,
        attachment_mode=template.attachment_mode,
        attachment=attachment,
        footer=template.footer,
        buttons=template.buttons,
        created_by=created_by,
    )
    if api is not None:
        clone = template_submit(template=clone, api=api, app_id=app_id)
    return clone


# --- Submission ---------------------------------------------------------------------------------


def _revalidate(template: MessageTemplate) -> None:
    """The rules again at submission: the name may have been taken meanwhile, a field retired."""
    template_clean(
        organization=template.organization,
        waba_id=template.waba_id,
        draft=_draft_of(template, {}),
        exclude_pk=template.pk,
    )


def _same_content(info: TemplateInfo, payload: Mapping[str, Any]) -> bool:
    def body(components: Sequence[Mapping[str, Any]]) -> str:
        return next((str(c.get("text", "")) for c in components if str(c.get("type", "")).upper() == "BODY"), "")

    return info.language == payload["language"] and body(info.components) == body(payload["components"])


def _find_created(api: CloudAPI, template: MessageTemplate, payload: Mapping[str, Any]) -> TemplateInfo | None:
    """Meta's copy of this very template, when an earlier attempt created it but its answer was lost.

    Only a template with the same name, language and body is adopted: one made in WhatsApp
    Manager under the same name is a different template, and the duplicate error stands.
    """
    for info in api.list_templates(template.waba_id, name=template.name):
        if info.name == template.name and _same_content(info, payload):
            return info
    return None


def _record_submission(
    template: MessageTemplate,
    *,
    before: tuple[str, datetime.datetime | None],
    meta_id: str,
    status: str | None,
    category: str | None,
    components: list[dict[str, Any]],
) -> MessageTemplate:
    """Store what Meta accepted. A status webhook that arrived while Meta was answering wins:
    Meta may approve a template within a second, before its create request has returned."""
    with transaction.atomic():
        row = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        row.meta_id = meta_id
        row.components = components
        row.parameter_format = PARAMETER_FORMAT_NAMED
        row.submitted_at = timezone.now()
        if category:
            row.category = category.upper()
        if (row.status, row.status_updated_at) == before:
            row.status = status if status in TemplateStatus.values else TemplateStatus.PENDING
            row.status_reason = ""
            row.rejection_recommendation = ""
            row.status_detail = {}
        row.save(
            update_fields=[
                "meta_id",
                "components",
                "parameter_format",
                "submitted_at",
                "category",
                "status",
                "status_reason",
                "rejection_recommendation",
                "status_detail",
                "updated_at",
            ]
        )
    return row


def template_submit(*, template: MessageTemplate, api: CloudAPI, app_id: str) -> MessageTemplate:
    """Send a draft to Meta for approval (→ PENDING, with Meta's id), or a rejected one again.

    A media header's sample goes through the Resumable Upload API first (``app_id`` is the Meta
    app that owns the upload session). If Meta refuses, the draft stays a draft and the
    ValidationError carries Meta's reason and a fix hint, on the field it concerns.
    """
    template.refresh_from_db()
    if template.status == TemplateStatus.REJECTED and template.meta_id:
        return template_resubmit(template=template, api=api, app_id=app_id)
    if template.status != TemplateStatus.DRAFT:
        raise _error(
            _("“%(name)s” was already sent to WhatsApp (%(status)s).")
            % {"name": template.name, "status": template.get_status_display()}
        )
    _revalidate(template)
    before = (template.status, template.status_updated_at)
    payload: dict[str, Any] = {}
    try:
        handle = header_handle_upload(template=template, api=api, app_id=app_id)
        payload = template_payload_build(template, header_handle=handle)
        info = api.create_template(template.waba_id, payload)
    except CloudAPIError as exc:
        found = _find_created(api, template, payload) if exc.subcode == DUPLICATE_SUBCODE and payload else None
        if found is None:
            raise error_for_meta(exc) from exc
        info = found
    return _record_submission(
        template,
        before=before,
        meta_id=info.id,
        status=info.status,
        category=info.category,
        components=info.components or payload["components"],
    )


def template_resubmit(*, template: MessageTemplate, api: CloudAPI, app_id: str) -> MessageTemplate:
    """Send a rejected template's edited content back to Meta (``POST /{template_id}``) → PENDING."""
    template.refresh_from_db()
    if template.status != TemplateStatus.REJECTED or not template.meta_id:
        raise _error(_("Only a template WhatsApp rejected can be resubmitted."))
    _revalidate(template)
    before = (template.status, template.status_updated_at)
    try:
        handle = header_handle_upload(template=template, api=api, app_id=app_id)
        payload = template_payload_build(template, header_handle=handle)
        api.edit_template(template.meta_id, {"category": payload["category"], "components": payload["components"]})
    except CloudAPIError as exc:
        raise error_for_meta(exc) from exc
    return _record_submission(
        template,
        before=before,
        meta_id=template.meta_id,
        status=TemplateStatus.PENDING,
        category=payload["category"],
        components=payload["components"],
    )


# --- Default and deletion -----------------------------------------------------------------------


def template_set_default(*, template: MessageTemplate) -> MessageTemplate:
    """Make ``template`` the one preselected when sending from its module (one default per module)."""
    with transaction.atomic():
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        if not template.module:
            raise _error(_("Assign “%(name)s” to a module first.") % {"name": template.name})
        if template.status != TemplateStatus.APPROVED:
            raise _error(_("Only an approved template can be the default."))
        # Cleared first: the one-default constraint is checked row by row, not at commit.
        MessageTemplate.objects.filter(
            organization=template.organization, module=template.module, is_default=True
        ).exclude(pk=template.pk).update(is_default=False, updated_at=timezone.now())
        template.is_default = True
        template.save(update_fields=["is_default", "updated_at"])
    return template


def template_delete(*, template: MessageTemplate, api: CloudAPI) -> MessageTemplate:
    """Delete a template at Meta: deletion in progress → deleted, or deletion failed (call again to retry).

    A draft Meta never saw is simply removed. The row of a deleted template stays, with its
    name: Meta keeps the name × language blocked for 4 weeks, and past messages point at it.
    Raises ValidationError with Meta's reason when the deletion failed.
    """
    template.refresh_from_db()
    if template.status == TemplateStatus.DRAFT and not template.meta_id:
        if template.attachment:
            template.attachment.delete(save=False)
        template.delete()
        return template
    claimed = (
        MessageTemplate.objects.filter(pk=template.pk)
        .exclude(status=TemplateStatus.DELETED)
        .update(status=TemplateStatus.PENDING_DELETION, is_default=False, updated_at=timezone.now())
    )
    if not claimed:
        template.refresh_from_db()
        return template
    try:
        api.delete_template(template.waba_id, template.name, hsm_id=template.meta_id or None)
    except CloudAPIError as exc:
        MessageTemplate.objects.filter(pk=template.pk, status=TemplateStatus.PENDING_DELETION).update(
            status=TemplateStatus.DELETION_FAILED,
            status_detail={"error": {"code": exc.code, "subcode": exc.subcode, "title": exc.title}},
            updated_at=timezone.now(),
        )
        template.refresh_from_db()
        raise error_for_meta(exc, deleting=True) from exc
    MessageTemplate.objects.filter(pk=template.pk, status=TemplateStatus.PENDING_DELETION).update(
        status=TemplateStatus.DELETED, status_detail={}, updated_at=timezone.now()
    )
    template.refresh_from_db()
    return template
