"""Meta's word on a template's approval status, applied (used by the webhook processor)."""

import datetime
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from books.models import Organization
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate


@transaction.atomic
def template_status_apply(
    *,
    organization: Organization,
    waba_id: str,
    meta_id: str,
    name: str,
    language: str,
    event: str,
    at: datetime.datetime,
    reason: str = "",
    category: str = "",
    detail: Mapping[str, Any] | None = None,
) -> MessageTemplate:
    """Record Meta's ``message_template_status_update`` on the template it names.

    The template is found by Meta's id, else by name × language (a template submitted before its
    id was stored); one created on Meta's side is recorded as found. An event older than the one
    already applied changes nothing, so a late or repeated webhook cannot move a status back.
    """
    # Events Meta may add later are kept in the detail without touching the status.
    status = event if event in TemplateStatus.values else None
    template = (
        MessageTemplate.objects.select_for_update()
        .filter(organization=organization, waba_id=waba_id)
        .filter(meta_id=meta_id)
        .first()
    ) or (
        MessageTemplate.objects.select_for_update()
        .filter(organization=organization, waba_id=waba_id, name=name, language=language)
        .first()
    )
    if template is None:
        template = MessageTemplate(organization=organization, waba_id=waba_id, name=name, language=language)
    elif template.status_updated_at is not None and at < template.status_updated_at:
        return template
    template.meta_id = meta_id or template.meta_id
    if status is not None:
        template.status = status
    template.status_reason = "" if reason in ("", "NONE") else reason
    detail = dict(detail or {})
    rejection = detail.get("rejection_info")
    if isinstance(rejection, Mapping):
        template.rejection_recommendation = str(rejection.get("recommendation") or "")
    elif status != TemplateStatus.REJECTED:
        template.rejection_recommendation = ""
    template.status_detail = detail
    template.status_updated_at = at
    if category:
        template.category = category.upper()
    template.save()
    return template
