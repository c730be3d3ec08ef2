"""The webhook bodies the sandbox sends, in Meta's shapes.

Every webhook is the ``whatsapp_business_account`` envelope with one entry (the WABA) and one
change, except batched statuses (:func:`statuses`): one change per phone number. Bodies are
serialised once, compactly and with non-ASCII escaped (as Meta does), and that exact text is what
gets signed and POSTed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .errors import status_error
from .models import SandboxBusinessAccount, SandboxContact, SandboxPhoneNumber, SandboxTemplate
from .validation import REJECTION_RECOMMENDATIONS


def dumps(payload: Mapping[str, Any]) -> str:
    """Serialise a webhook body the way it is signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def envelope(account: SandboxBusinessAccount, field: str, value: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": account.waba_id, "changes": [{"value": dict(value), "field": field}]}
    if field != "messages":
        entry["time"] = int(time.time())
    return {"object": "whatsapp_business_account", "entry": [entry]}


def _metadata(phone: SandboxPhoneNumber) -> dict[str, str]:
    return {"display_phone_number": phone.digits, "phone_number_id": phone.phone_number_id}


def status_item(
    *,
    wamid: str,
    status: str,
    timestamp: int,
    recipient_id: str,
    callback_data: str = "",
    pricing: Mapping[str, Any] | None = None,
    error_code: int | None = None,
) -> dict[str, Any]:
    """One entry of ``statuses[]`` for an outbound message: sent, delivered, read or failed.

    ``pricing`` goes with sent and delivered (Meta leaves it off read), ``errors`` with failed.
    """
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": recipient_id}
    if callback_data:
        item["biz_opaque_callback_data"] = callback_data
    if pricing:
        item["pricing"] = dict(pricing)
    if error_code is not None:
        item["errors"] = [status_error(error_code)]
    return item


def statuses(
    account: SandboxBusinessAccount, changes: list[tuple[SandboxPhoneNumber, list[dict[str, Any]]]]
) -> dict[str, Any]:
    """A status webhook of one WABA: one change per phone number with its ``statuses``, in the order given.

    One status makes the usual webhook; several are what Meta sends under load (batched), each
    number's change with its own ``metadata``.
    """
    values = [
        {
            "value": {"messaging_product": "whatsapp", "metadata": _metadata(phone), "statuses": items},
            "field": "messages",
        }
        for phone, items in changes
    ]
    return {"object": "whatsapp_business_account", "entry": [{"id": account.waba_id, "changes": values}]}


def phone_number_quality_update(phone: SandboxPhoneNumber, event: str, old_limit: str | None = None) -> dict[str, Any]:
    """A ``phone_number_quality_update`` webhook: a throughput upgrade, or a messaging limit change (``old_limit``)."""
    value: dict[str, Any] = {"display_phone_number": phone.digits, "event": event}
    if old_limit is not None:
        value["old_limit"] = old_limit
    value["current_limit"] = phone.messaging_limit_tier
    value["max_daily_conversations_per_business"] = phone.messaging_limit_tier
    return envelope(phone.account, "phone_number_quality_update", value)


def template_status(template: SandboxTemplate, event: str, reason: str | None) -> dict[str, Any]:
    """A ``message_template_status_update`` webhook: APPROVED, or REJECTED with ``rejection_info``."""
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template.template_id),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": reason or "NONE",
        "message_template_category": template.category,
    }
    if event == "REJECTED" and reason:
        value["rejection_info"] = {
            "reason": reason,
            "recommendation": REJECTION_RECOMMENDATIONS.get(reason, "Review the template and submit it again."),
        }
    return envelope(template.account, "message_template_status_update", value)


def inbound_message(phone: SandboxPhoneNumber, contact: SandboxContact, message: Mapping[str, Any]) -> dict[str, Any]:
    """A customer's message: ``contacts[]`` with the profile name and ``messages[]`` with the message object."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone),
        "contacts": [{"profile": {"name": contact.profile_name or contact.wa_id}, "wa_id": contact.wa_id}],
        "messages": [dict(message)],
    }
    return envelope(phone.account, "messages", value)
