"""Settings → Integrations → WhatsApp: send a test message and watch its status.

The quickest proof that a connection works end to end: Meta's sample template ``hello_world``
(``en_US``, created in every new WhatsApp Business Account, and in the sandbox's demo account)
goes to a number of the administrator's choice, and the "Recent messages" card refreshes itself
until every message has reached a final status (read or failed).

URL names (namespace ``whatsapp``): ``test_message`` (POST) and ``recent_messages`` (the card, for
htmx polling).
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from books.models import ContactPerson
from books.permissions import Perm
from books.phone import phone_normalize
from books.views.access import member_required
from whatsapp.choices import Category, MessageStatus
from whatsapp.models import WhatsAppAccount
from whatsapp.selectors.accounts import account_get_live
from whatsapp.selectors.messages import message_list
from whatsapp.services.dispatch import message_template_queue

SAMPLE_TEMPLATE = "hello_world"
SAMPLE_LANGUAGE = "en_US"
SAMPLE_TEXT = "Hello World"
RECENT = 10
#: Statuses after which a message changes no more (the card stops polling when all are final).
FINAL = {MessageStatus.READ, MessageStatus.FAILED, MessageStatus.RECEIVED}


class TestMessageForm(forms.Form):
    to = forms.CharField(
        label=gettext_lazy("Send to"),
        max_length=32,
        help_text=gettext_lazy("A WhatsApp number with its country code, e.g. +91 98200 12345."),
    )

    def __init__(self, *args: object, region: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.region = region

    def clean_to(self) -> str:
        return phone_normalize(self.cleaned_data["to"], region=self.region)


def recent_context(account: WhatsAppAccount | None) -> dict[str, object]:
    """The rows of the "Recent messages" card and whether it should keep refreshing."""
    if account is None:
        return {"recent": [], "recent_polling": False}
    recent = list(message_list(organization=account.organization)[:RECENT])
    return {"recent": recent, "recent_polling": any(message.status not in FINAL for message in recent)}


@member_required(Perm.SETTINGS_MANAGE)
@require_POST
def test_message(request: HttpRequest) -> HttpResponse:
    account = account_get_live(organization=request.organization)
    form = TestMessageForm(request.POST, region=request.organization.phone_region)
    if account is None:
        messages.error(request, _("Connect a WhatsApp Business account first."))
    elif not form.is_valid():
        messages.error(request, " ".join(form.errors["to"]))
    else:
        to = form.cleaned_data["to"]
        person = (
            ContactPerson.objects.filter(contact__organization=account.organization, mobile=to)
            .select_related("contact")
            .first()
        )
        try:
            message_template_queue(
                account=account,
                to=to,
                name=SAMPLE_TEMPLATE,
                language=SAMPLE_LANGUAGE,
                content=SAMPLE_TEXT,
                category=Category.UTILITY,
                contact_person=person,
                user=request.user,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("A test message to %(to)s is queued. Its status updates below.") % {"to": to})
    return redirect("whatsapp:integration")


@member_required(Perm.SETTINGS_MANAGE)
@require_GET
def recent_messages(request: HttpRequest) -> HttpResponse:
    account = account_get_live(organization=request.organization)
    return render(request, "whatsapp/settings/_recent_messages.html", recent_context(account))
