"""WhatsApp messages in a document's Comments & History.

``books`` knows nothing of WhatsApp: ``WhatsappConfig.ready()`` registers :func:`message_history`
with ``books.history.history_provider_register``, and the document page calls it on every
render. One entry per message linked to the document: who it went to (or came from), its status
and when it got there, and for a failed message Meta's error and what to do about it. It costs
one query per render, whatever the number of messages.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from books.formatting import date_format
from books.history import HistoryEntry
from books.models import Document, Organization
from books.phone import phone_display
from whatsapp.choices import MessageStatus
from whatsapp.models import Message
from whatsapp.selectors.messages import document_messages

HISTORY_KIND = "whatsapp"


def message_history(document: Document) -> list[HistoryEntry]:
    """The Comments & History entries of ``document``'s WhatsApp messages (any order)."""
    # The organization comes with the messages, so the provider stays at one query whether or
    # not the caller loaded the document's organization.
    messages = document_messages(document=document).select_related("organization")
    return [message_history_entry(message, organization=message.organization) for message in messages]


def message_history_entry(message: Message, *, organization: Organization) -> HistoryEntry:
    return HistoryEntry(
        at=message.created_at,
        title=_message_title(message),
        detail=_message_detail(message, organization=organization),
        user=message.created_by.get_username() if message.created_by_id else "",
        kind=HISTORY_KIND,
    )


def _message_title(message: Message) -> str:
    name, phone = message.recipient_name, phone_display(message.phone)
    if message.is_outbound:
        if name:
            return _("WhatsApp message sent to %(name)s (%(phone)s)") % {"name": name, "phone": phone}
        return _("WhatsApp message sent to %(phone)s") % {"phone": phone}
    if name:
        return _("WhatsApp reply from %(name)s (%(phone)s)") % {"name": name, "phone": phone}
    return _("WhatsApp reply from %(phone)s") % {"phone": phone}


def _message_detail(message: Message, *, organization: Organization) -> str:
    """``Read · 12/03/2026 14:05``; for a failed message, the error and the fix hint after it."""
    status = MessageStatus(message.status).label
    when = _status_time(message)
    detail = _("%(status)s · %(when)s") % {"status": status, "when": _local(when, organization)} if when else status
    if message.status == MessageStatus.FAILED:
        error = message.error_title or (
            _("Error %(code)s") % {"code": message.error_code} if message.error_code is not None else ""
        )
        parts = [detail, error, message.fix_hint]
        detail = " — ".join(part for part in parts if part)
    return detail


def _status_time(message: Message) -> datetime.datetime | None:
    """When the message reached its current status (statuses and their ``*_at`` share names)."""
    reached = getattr(message, f"{message.status}_at", None)
    if reached is not None:
        return reached
    steps = message.status_history()
    return steps[-1][1] if steps else None


def _local(when: datetime.datetime, organization: Organization) -> str:
    local = timezone.localtime(when, organization.tzinfo)
    return f"{date_format(local.date(), organization=organization)} {local:%H:%M}"
