"""A read-only chat view of a contact: every WhatsApp message to and from its people, as bubbles.

Where the recipient's name in a document's Comments & History and in the contact's "Mails &
messages" tab leads. URL name ``whatsapp_send:chat_contact``. Replying (the 24-hour window,
take-over, the common inbox) arrives with the chat module; this page only reads.

Needs the contact's view permission; another organization's contact is a 404. Inbound text is
the customer's: it is escaped before WhatsApp's *bold*/_italic_ markup is applied.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from books.api.access import CONTACT_PERMS
from books.models import Contact
from books.views.access import member_required
from whatsapp.selectors.messages import contact_messages
from whatsapp.views.templates import whatsapp_markup

#: The latest messages shown (oldest of them at the top, newest at the bottom).
CHAT_LENGTH = 200


@member_required()
@require_GET
def contact_chat(request: HttpRequest, pk: int) -> HttpResponse:
    contact = (
        Contact.objects.filter(organization=request.membership.organization, pk=pk)
        .select_related("organization")
        .first()
    )
    if contact is None:
        raise Http404(_("No such contact."))
    if not request.membership.has_perm(CONTACT_PERMS[contact.contact_type].view):
        raise PermissionDenied
    latest = list(contact_messages(contact=contact)[:CHAT_LENGTH])
    latest.reverse()
    bubbles = [
        {
            "message": message,
            "outbound": message.is_outbound,
            "html": whatsapp_markup(message.content),
            "person": message.recipient_name,
        }
        for message in latest
    ]
    return render(
        request,
        "whatsapp/chat/contact.html",
        {
            "contact": contact,
            "organization": contact.organization,
            "bubbles": bubbles,
            "truncated": len(latest) == CHAT_LENGTH,
            "contact_url": reverse("books:contact_detail", args=[contact.pk]),
            "nav": "vendors" if contact.contact_type == "vendor" else "customers",
        },
    )
