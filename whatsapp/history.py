"""WhatsApp messages where accountants look for them: a document's Comments & History and the
contact's "Mails & messages" tab.

``books`` knows nothing of WhatsApp: ``WhatsappConfig.ready()`` registers :func:`message_history`
with ``books.history.history_provider_register`` and :func:`contact_messages_tab` with
``books.actions.contact_tab_register``. One history entry per message linked to the document:
who it went to (or came from, the name linking to the read-only chat), its status and when it
got there, and under "Show details" the number, the status timeline, and for a failed message
Meta's error and what to do about it. An entry whose message can still change is *pending*, so
the card refreshes itself until every message is final. It costs one query per render, whatever
the number of messages.
"""

from __future__ import annotations

import datetime

from django.core.paginator import Paginator
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from books.formatting import date_format
from books.history import HistoryDetail, HistoryEntry, document_url
from books.models import Contact, Document, Organization
from books.phone import phone_display
from whatsapp.choices import Direction, MessageStatus
from whatsapp.models import Message
from whatsapp.selectors.messages import contact_messages, document_messages

HISTORY_KIND = "whatsapp"
#: Statuses after which a message changes no more (``delivered`` still becomes ``read`` or ``failed``).
FINAL_STATUSES = frozenset({MessageStatus.READ, MessageStatus.FAILED, MessageStatus.RECEIVED})
#: Rows per page of the contact's "Mails & messages" tab.
TAB_PAGE_SIZE = 25
#: The tab's "show" menu: which of the contact's messages are listed.
TAB_FILTERS: dict[str, Promise] = {
    "whatsapp": gettext_lazy("WhatsApp messages"),
    "sent": gettext_lazy("Sent"),
    "received": gettext_lazy("Replies"),
    "failed": gettext_lazy("Failed"),
}


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
        title_url=chat_url(message),
        details=tuple(message_details(message)),
        state=message.status,
        html_id=f"whatsapp-message-{message.pk}",
        pending=message.status not in FINAL_STATUSES,
    )


def chat_url(message: Message) -> str:
    """The read-only chat with the message's contact ("" for a number no contact has)."""
    return reverse("whatsapp_send:chat_contact", args=[message.contact_id]) if message.contact_id else ""


def message_details(message: Message) -> list[HistoryDetail]:
    """What "Show details" lists: name (to the chat), number, status, template, every status
    reached and when, and for a failed message the error and its fix hint."""
    name = message.recipient_name or phone_display(message.phone)
    lines = [
        HistoryDetail(_("Recipient") if message.is_outbound else _("From"), name, url=chat_url(message)),
        HistoryDetail(_("Phone"), phone_display(message.phone)),
        HistoryDetail(_("Status"), str(MessageStatus(message.status).label)),
    ]
    if message.template_name:
        lines.append(HistoryDetail(_("Template"), message.template_name))
    lines.extend(
        HistoryDetail(str(MessageStatus(status).label), at=when, tone="step")
        for status, when in message.status_history()
    )
    if message.status == MessageStatus.FAILED:
        error = message.error_title or _("Unknown error")
        if message.error_code is not None:
            error = f"{error} ({message.error_code})"
        lines.append(HistoryDetail(_("Error"), error, tone="error"))
        if message.error_details:
            lines.append(HistoryDetail(_("Error details"), message.error_details, tone="error"))
        if message.fix_hint:
            lines.append(HistoryDetail(_("What to do"), message.fix_hint, tone="hint"))
    return lines


def contact_messages_tab(request: HttpRequest, contact: Contact) -> str:
    """The contact page's "Mails & messages" panel: the contact's WhatsApp messages, newest first,
    filtered by ``?show=`` (sent, replies, failed), paginated by ``?page=``."""
    show = request.GET.get("show", "whatsapp")
    if show not in TAB_FILTERS:
        show = "whatsapp"
    queryset = contact_messages(contact=contact)
    if show == "sent":
        queryset = queryset.filter(direction=Direction.OUTBOUND)
    elif show == "received":
        queryset = queryset.filter(direction=Direction.INBOUND)
    elif show == "failed":
        queryset = queryset.filter(status=MessageStatus.FAILED)
    page = Paginator(queryset, TAB_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "message": message,
            "name": message.recipient_name or phone_display(message.phone),
            "phone": phone_display(message.phone),
            "document_url": document_url(message.document) if message.document_id else "",
            "details": message_details(message),
        }
        for message in page.object_list
    ]
    return render_to_string(
        "whatsapp/chat/_contact_messages.html",
        {
            "contact": contact,
            "organization": contact.organization,
            "rows": rows,
            "page_obj": page,
            "show": show,
            "filters": list(TAB_FILTERS.items()),
            "tab_url": reverse("books:contact_tab", args=[contact.pk, "messages"]),
            "chat_url": reverse("whatsapp_send:chat_contact", args=[contact.pk]),
        },
        request=request,
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
