"""The sandbox's pages: the overview (/sandbox/) and the phone simulator (/sandbox/phone/).

Server-rendered for any signed-in user. The overview shows what Meta would show in its tools
(accounts, numbers with their pending verification codes, templates, messages, webhooks) and
the knobs (faults, latency, delays). The phone simulator shows each customer's chat as the
customer sees it and lets them answer, which reaches the hub as a real, signed inbound webhook.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import delivery, selectors, services
from .choices import Direction, MessageStatus
from .errors import GraphError
from .forms import FaultForm, NewChatForm, ReplyForm, SettingsForm
from .graph import media_download_url, sandbox_enabled
from .models import SandboxMedia, SandboxMessage, SandboxPhoneNumber

REVIEW_RULES = [
    gettext_lazy("Template names starting with “reject” are REJECTED (reason INVALID_FORMAT)."),
    gettext_lazy("Bodies with adjacent variables such as {{1}}{{2}} are REJECTED (INVALID_FORMAT)."),
    gettext_lazy("Bodies containing REJECT_ME are REJECTED (PROMOTIONAL)."),
    gettext_lazy("Every other template is APPROVED after the review delay."),
]


def _page(view: Any) -> Any:
    return login_required(sandbox_enabled(view))


@_page
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "nav": "sandbox",
        "accounts": selectors.account_list(),
        "templates": selectors.template_list(limit=100),
        "recent_messages": selectors.message_list(limit=50),
        "deliveries": selectors.delivery_list(limit=50),
        "faults": selectors.fault_list(),
        "fault_form": FaultForm(),
        "settings_form": SettingsForm(instance=selectors.sandbox_settings_get(fresh=True)),
        "review_rules": REVIEW_RULES,
        "graph_url": request.build_absolute_uri(reverse("whatsapp_sandbox:dashboard") + "graph"),
        "webhook_url": getattr(settings, "WHATSAPP_SANDBOX_WEBHOOK_URL", delivery.DEFAULT_WEBHOOK_URL),
        "delivery_mode": delivery.delivery_mode(),
        "app_secret_set": bool(getattr(settings, "WHATSAPP_APP_SECRET", "")),
    }
    return render(request, "whatsapp_sandbox/dashboard.html", context)


@_page
@require_POST
def fault_add(request: HttpRequest) -> HttpResponse:
    form = FaultForm(request.POST)
    if form.is_valid():
        try:
            services.fault_create(**form.cleaned_data)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Fault added."))
    else:
        messages.error(request, _("The fault wasn't added: %(errors)s") % {"errors": form.errors.as_text()})
    return redirect(reverse("whatsapp_sandbox:dashboard") + "#faults")


@_page
@require_POST
def fault_remove(request: HttpRequest, pk: int) -> HttpResponse:
    services.fault_delete(pk=pk)
    messages.success(request, _("Fault removed."))
    return redirect(reverse("whatsapp_sandbox:dashboard") + "#faults")


@_page
@require_POST
def settings_save(request: HttpRequest) -> HttpResponse:
    form = SettingsForm(request.POST, instance=selectors.sandbox_settings_get(fresh=True))
    if form.is_valid():
        values = {name: form.cleaned_data[name] for name in services.SETTINGS_FIELDS}
        services.sandbox_settings_update(**{name: value for name, value in values.items() if value is not None})
        messages.success(request, _("Settings saved."))
    else:
        messages.error(request, _("The settings weren't saved: %(errors)s") % {"errors": form.errors.as_text()})
    return redirect(reverse("whatsapp_sandbox:dashboard") + "#settings")


@_page
@require_POST
def flush_now(request: HttpRequest) -> HttpResponse:
    processed = delivery.flush()
    messages.success(request, _("%(count)s pending webhook(s) processed.") % {"count": processed})
    return redirect(reverse("whatsapp_sandbox:dashboard") + "#webhooks")


# --- Phone simulator ----------------------------------------------------------------------------


@_page
@require_http_methods(["GET", "POST"])
def phone_list(request: HttpRequest) -> HttpResponse:
    form = NewChatForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        phone = form.cleaned_data["phone_number"]
        wa_id = form.cleaned_data["wa_id"]
        services.inbound_message_create(
            phone=phone,
            wa_id=wa_id,
            profile_name=form.cleaned_data["name"],
            text=form.cleaned_data["text"],
            media_url=lambda media: media_download_url(request, media),
        )
        return redirect(_thread_url(wa_id, phone))
    return render(
        request,
        "whatsapp_sandbox/phone_list.html",
        {"nav": "sandbox", "threads": selectors.thread_list(), "form": form},
    )


def _thread_url(wa_id: str, phone: SandboxPhoneNumber) -> str:
    return reverse("whatsapp_sandbox:phone_thread", args=[wa_id]) + f"?number={phone.phone_number_id}#latest"


def _thread_phone(request: HttpRequest, wa_id: str) -> tuple[SandboxPhoneNumber, list[SandboxPhoneNumber]]:
    numbers = list(selectors.thread_numbers(wa_id=wa_id))
    wanted = request.GET.get("number") or request.POST.get("number")
    if wanted:
        phone = get_object_or_404(SandboxPhoneNumber.objects.select_related("account"), phone_number_id=wanted)
    elif numbers:
        phone = numbers[0]
    else:
        raise Http404("No chat with this customer yet.")
    return phone, numbers


@_page
@require_http_methods(["GET", "POST"])
def phone_thread(request: HttpRequest, wa_id: str) -> HttpResponse:
    phone, numbers = _thread_phone(request, wa_id)
    contact = selectors.contact_get(wa_id=wa_id)
    form = ReplyForm(
        request.POST or None, request.FILES or None, initial={"name": contact.profile_name if contact else ""}
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("file")
        attachment = None
        if upload is not None:
            attachment = services.Attachment(
                name=upload.name or "file",
                content=upload.read(),
                mime_type=upload.content_type or "application/octet-stream",
            )
        try:
            services.inbound_message_create(
                phone=phone,
                wa_id=wa_id,
                profile_name=form.cleaned_data.get("name") or "",
                text=form.cleaned_data.get("text") or "",
                attachment=attachment,
                media_url=lambda media: media_download_url(request, media),
            )
        except (ValueError, GraphError) as exc:
            form.add_error(None, str(exc.details if isinstance(exc, GraphError) else exc) or str(exc))
        else:
            return redirect(_thread_url(wa_id, phone))
    context = {
        "nav": "sandbox",
        "wa_id": wa_id,
        "contact": contact,
        "phone": phone,
        "numbers": numbers,
        "bubbles": [_bubble(message) for message in selectors.thread_messages(wa_id=wa_id, phone=phone)],
        "form": form,
    }
    return render(request, "whatsapp_sandbox/phone_thread.html", context)


@_page
@require_POST
def phone_button(request: HttpRequest, wa_id: str) -> HttpResponse:
    """The customer taps a quick-reply button of a template message."""
    message = selectors.message_outbound_get(wamid=request.POST.get("wamid", ""))
    if message is None or message.recipient != wa_id:
        raise Http404("No such message in this chat.")
    try:
        index = int(request.POST.get("index", ""))
        button = message.rendered.get("buttons", [])[index]
    except (ValueError, IndexError, TypeError) as exc:
        raise Http404("No such button.") from exc
    if button.get("type") != "QUICK_REPLY":
        raise Http404("Only quick replies send a message.")
    contact = selectors.contact_get(wa_id=wa_id)
    services.inbound_message_create(
        phone=message.phone_number,
        wa_id=wa_id,
        profile_name=contact.profile_name if contact else "",
        button={"text": button.get("text", ""), "payload": button.get("payload", ""), "context_wamid": message.wamid},
    )
    return redirect(_thread_url(wa_id, message.phone_number))


@_page
@require_GET
def phone_media(request: HttpRequest, media_id: str) -> HttpResponse:
    """A media file opened from the phone simulator (the page's own login, not the Graph token)."""
    media = get_object_or_404(SandboxMedia, media_id=media_id)
    response = HttpResponse(bytes(media.content), content_type=media.mime_type)
    disposition = "inline" if media.mime_type.startswith("image/") else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{(media.filename or media_id).replace(chr(34), "")}"'
    return response


def _safe_href(url: str) -> str:
    """Only http(s) links become hrefs: a business-supplied ``javascript:`` URL stays inert text."""
    return url if url.startswith(("http://", "https://")) else ""


def _attachment(rendered: dict[str, Any], fallback_kind: str) -> dict[str, Any] | None:
    media_id, link = rendered.get("media_id") or "", rendered.get("link") or ""
    if not (media_id or link):
        return None
    kind = rendered.get("type") or fallback_kind
    href = reverse("whatsapp_sandbox:phone_media", args=[media_id]) if media_id else _safe_href(link)
    name = rendered.get("filename") or (link.rsplit("/", 1)[-1] if link else "") or kind.capitalize()
    return {"kind": kind, "name": name, "href": href, "is_image": kind == "image" and bool(media_id)}


def _bubble(message: SandboxMessage) -> dict[str, Any]:
    """One chat bubble as the customer's phone shows it."""
    rendered = message.rendered or {}
    kind = rendered.get("kind")
    bubble: dict[str, Any] = {
        "wamid": message.wamid,
        "mine": message.direction == Direction.INBOUND,
        "time": message.created_at,
        "status": message.status,
        "error_code": message.error_code,
        "failed": message.status == MessageStatus.FAILED,
        "template": message.template_name,
        "header_text": "",
        "attachment": None,
        "body": "",
        "footer": "",
        "buttons": [],
    }
    if kind == "template":
        header = rendered.get("header") or {}
        if header.get("type") == "text":
            bubble["header_text"] = header.get("text", "")
        else:
            bubble["attachment"] = _attachment(header, "document")
        bubble["body"] = rendered.get("body", "")
        bubble["footer"] = rendered.get("footer", "")
        bubble["buttons"] = [
            {**button, "href": _safe_href(button.get("url", ""))} for button in rendered.get("buttons", [])
        ]
    elif kind == "media":
        bubble["attachment"] = _attachment(rendered, "document")
        bubble["body"] = rendered.get("caption", "")
    elif kind == "text":
        bubble["body"] = rendered.get("body", "")
    else:
        bubble["body"] = _("[%(type)s message]") % {"type": rendered.get("type", message.type)}
    if message.context_wamid and message.direction == Direction.INBOUND and message.type == "button":
        bubble["reply_to_button"] = True
    return bubble
