"""The WABA's templates as Meta has them, brought into the hub (periodic and on demand).

Webhooks can be lost or arrive late; sync is what makes the list right anyway. It reads every
page (``paging.next``) before writing anything — a sync cut short by an error must not mark the
unread half as deleted — then, in one transaction: updates the templates it knows (by Meta id,
else name × language), records the ones created in WhatsApp Manager, and marks the ones Meta no
longer lists as deleted.

Sync does not touch ``status_updated_at``: that stamp is Meta's event time and orders webhooks;
our clock is not Meta's, and a wrong stamp could make a genuine later webhook look stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from books.models import Organization
from templates_mgmt.choices import ButtonType, HeaderType, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.placeholders import PARAMETER_FORMAT_POSITIONAL
from whatsapp.client import CloudAPI, TemplateInfo

#: Local states Meta's listing does not override: the hub's own deletion bookkeeping.
_DELETION_STATES = (TemplateStatus.PENDING_DELETION, TemplateStatus.DELETION_FAILED)


@dataclass(frozen=True)
class SyncResult:
    """How many local templates sync created (made in WhatsApp Manager), updated and marked deleted."""

    created: int = 0
    updated: int = 0
    deleted: int = 0


def builder_fields_from_components(components: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Builder fields describing a template that was made in WhatsApp Manager, read from Meta's JSON.

    Headers the builder doesn't offer (video, location) are left as "none"; rendering then refuses
    the template with a clear reason rather than guessing.
    """
    fields: dict[str, Any] = {
        "header_type": HeaderType.NONE,
        "header_text": "",
        "body": "",
        "footer": "",
        "buttons": [],
    }
    for component in components:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            fmt = str(component.get("format", "TEXT")).upper()
            if fmt == "TEXT":
                fields.update(header_type=HeaderType.TEXT, header_text=str(component.get("text", "")))
            elif fmt in ("DOCUMENT", "IMAGE"):
                fields["header_type"] = fmt.lower()
        elif kind == "BODY":
            fields["body"] = str(component.get("text", ""))
        elif kind == "FOOTER":
            fields["footer"] = str(component.get("text", ""))
        elif kind == "BUTTONS":
            for button in component.get("buttons", []):
                button_type = str(button.get("type", "")).upper()
                if button_type == "URL":
                    fields["buttons"].append(
                        {
                            "type": ButtonType.URL,
                            "text": str(button.get("text", "")),
                            "url": str(button.get("url", "")),
                            "url_suffix_field": "",
                        }
                    )
                elif button_type == "PHONE_NUMBER":
                    fields["buttons"].append(
                        {
                            "type": ButtonType.PHONE_NUMBER,
                            "text": str(button.get("text", "")),
                            "phone_number": str(button.get("phone_number", "")),
                        }
                    )
                else:  # quick replies and the like: kept, so the preview shows them
                    fields["buttons"].append({"type": button_type.lower(), "text": str(button.get("text", ""))})
    return fields


def _apply_info(template: MessageTemplate, info: TemplateInfo) -> bool:
    """Copy Meta's view onto the row; True when something changed."""
    before = (
        template.meta_id,
        template.status,
        template.category,
        template.components,
        template.parameter_format,
        template.quality_score,
        template.status_reason,
    )
    template.meta_id = info.id or template.meta_id
    status = (info.status or "").upper()
    keep_local = template.status in _DELETION_STATES and status not in (
        TemplateStatus.PENDING_DELETION,
        TemplateStatus.DELETED,
    )
    if status in TemplateStatus.values and not keep_local:
        template.status = status
    if info.category:
        template.category = info.category.upper()
    if info.components:
        template.components = info.components
    template.parameter_format = (
        info.parameter_format or template.parameter_format or PARAMETER_FORMAT_POSITIONAL
    ).upper()
    if info.quality_score is not None:
        template.quality_score = info.quality_score
    if info.rejected_reason is not None:
        template.status_reason = "" if info.rejected_reason in ("", "NONE") else info.rejected_reason
    after = (
        template.meta_id,
        template.status,
        template.category,
        template.components,
        template.parameter_format,
        template.quality_score,
        template.status_reason,
    )
    return before != after


def templates_sync(*, organization: Organization, waba_id: str, api: CloudAPI, limit: int = 100) -> SyncResult:
    """Make the organization's templates of ``waba_id`` match Meta's list; ``limit`` is the page size."""
    listed = list(api.list_templates(waba_id, limit=limit))  # every page, before any write
    created = updated = deleted = 0
    with transaction.atomic():
        rows = list(MessageTemplate.objects.select_for_update().filter(organization=organization, waba_id=waba_id))
        by_id = {row.meta_id: row for row in rows if row.meta_id}
        by_name = {(row.name, row.language): row for row in rows}
        seen: set[int] = set()
        for info in listed:
            if not info.name or not info.language:
                continue
            row = by_id.get(info.id) or by_name.get((info.name, info.language))
            if row is None:
                row = MessageTemplate(
                    organization=organization,
                    waba_id=waba_id,
                    name=info.name,
                    language=info.language,
                    status=TemplateStatus.PENDING,
                    **builder_fields_from_components(info.components),
                )
                _apply_info(row, info)
                row.save()
                by_name[(row.name, row.language)] = row
                created += 1
            elif _apply_info(row, info):
                row.save()
                updated += 1
            seen.add(row.pk)
        gone = [
            row.pk
            for row in rows
            if row.pk not in seen and row.meta_id and row.status not in (TemplateStatus.DELETED, TemplateStatus.DRAFT)
        ]
        if gone:
            deleted = MessageTemplate.objects.filter(pk__in=gone).update(
                status=TemplateStatus.DELETED, is_default=False, updated_at=timezone.now()
            )
    return SyncResult(created=created, updated=updated, deleted=deleted)
