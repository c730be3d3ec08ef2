"""Settings → Integrations → WhatsApp: connect the business account, its numbers and channels.

URL names (namespace ``whatsapp``, mounted at ``settings/integrations/whatsapp/``):
``integration`` (the overview, which is also the connect page while no account is live or a
change of account is pending), ``connect``, ``test_connection``, ``numbers_refresh``,
``default_number``, ``default_number_remove``, ``channels``, ``verify``, ``verify_send``,
``verify_number``, ``mark_inactive``, ``mark_active``, ``change``, ``change_progress``,
``change_template_delete``, ``change_check`` and ``change_cancel``.

Every page needs SETTINGS_MANAGE. Views validate, call one service of
:mod:`whatsapp.services.accounts` and redirect; a service's ``ValidationError`` (Meta refused, or
the input is wrong) goes back on the form or into a message, never a 500. A phone number is
looked up within the organization: another organization's id is a 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from books.permissions import Perm
from books.views.access import member_required
from whatsapp.choices import AccountStatus, Audience, Category
from whatsapp.fix_hints import fix_hint
from whatsapp.forms import (
    ChangeAccountForm,
    ChannelsForm,
    ConnectForm,
    DefaultNumberForm,
    RequestCodeForm,
    TemplateDeleteForm,
    TokenForm,
    VerifyCodeForm,
    errors_to_form,
)
from whatsapp.models import PhoneNumber, WhatsAppAccount
from whatsapp.selectors import accounts as selectors
from whatsapp.services import accounts as services
from whatsapp.views.messages import recent_context

View = Callable[..., HttpResponse]

OVERVIEW = "whatsapp:integration"
# Where "Back" goes after verifying a number: the page that sent the administrator to verify it.
BACK_TARGETS = {"channels": "whatsapp:channels", "default": "whatsapp:default_number"}
# Session key: when a verification code was last requested for a number, and how.
CODE_SENT_KEY = "whatsapp_code_sent"
# How often the overview asks whether the old account's templates are gone (seconds).
PROGRESS_POLL_SECONDS = 4

USABLE = (AccountStatus.CONNECTED, AccountStatus.INACTIVE)
CHANGEABLE = (AccountStatus.CONNECTED, AccountStatus.INACTIVE, AccountStatus.DELETING_TEMPLATES)


# --- Access -------------------------------------------------------------------------------------


def _not_available_message(account: WhatsAppAccount | None) -> str:
    if account is None:
        return _("Connect a WhatsApp Business account first.")
    if account.status == AccountStatus.SETUP_PENDING:
        return _("Connect the new WhatsApp Business account first.")
    if account.status == AccountStatus.DELETING_TEMPLATES:
        return _("The WhatsApp Business account is being changed: finish or cancel the change first.")
    return _("This is not available while WhatsApp is %(status)s.") % {"status": account.get_status_display()}


def account_required(*states: str) -> Callable[[View], View]:
    """SETTINGS_MANAGE, and the organization's live account in one of ``states``, passed as ``account``.

    Without such an account the administrator is sent back to the overview, which says why.
    """

    def decorator(view: View) -> View:
        @member_required(Perm.SETTINGS_MANAGE)
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            account = selectors.account_get_live(organization=request.organization)
            if account is None or account.status not in states:
                messages.info(request, _not_available_message(account))
                return redirect(OVERVIEW)
            return view(request, account, *args, **kwargs)

        return wrapper

    return decorator


def _phone_number_or_404(request: HttpRequest, account: WhatsAppAccount, pk: int) -> PhoneNumber:
    try:
        number = selectors.phone_number_get(organization=request.organization, pk=pk)
    except PhoneNumber.DoesNotExist:
        raise Http404(_("No such WhatsApp number.")) from None
    if number.account_id != account.pk:  # a number of an account this organization replaced
        raise Http404(_("No such WhatsApp number."))
    return number


def _error_text(error: ValidationError) -> str:
    return " ".join(str(message) for message in error.messages)


# --- How numbers read -----------------------------------------------------------------------------

# Meta's quality rating as its own tools word it.
QUALITY = {
    "GREEN": ("green", gettext_lazy("High")),
    "YELLOW": ("yellow", gettext_lazy("Medium")),
    "RED": ("red", gettext_lazy("Low")),
}
_TIER = re.compile(r"^TIER_(\d+)(K?)$")


def _quality(rating: str) -> tuple[str, Any]:
    return QUALITY.get(rating.upper(), ("unknown", gettext_lazy("Unknown")))


def _messaging_limit(tier: str) -> str:
    """``TIER_1K`` → "1,000 customers / 24 h": how many customers the number may start conversations with."""
    if not tier:
        return ""
    if tier.upper() == "TIER_UNLIMITED":
        return _("Unlimited")
    match = _TIER.match(tier.upper())
    if not match:
        return tier
    count = int(match.group(1)) * (1000 if match.group(2) else 1)
    return _("%(count)s customers / 24 h") % {"count": number_format(count, force_grouping=True)}


def _throughput(number: PhoneNumber) -> str:
    if not number.throughput_level or number.throughput_level == "NOT_APPLICABLE":
        return ""
    level = _("High") if number.throughput_level == "HIGH" else _("Standard")
    return _("%(level)s · %(rate)s msg/s") % {
        "level": level,
        "rate": number_format(number.messages_per_second, force_grouping=True),
    }


def _number_row(number: PhoneNumber, account: WhatsAppAccount) -> dict[str, Any]:
    quality_key, quality_label = _quality(number.quality_rating)
    return {
        "number": number,
        "is_default": number.pk == account.default_phone_number_id,
        "quality_key": quality_key,
        "quality_label": quality_label,
        "throughput": _throughput(number),
        "messaging_limit": _messaging_limit(number.messaging_limit_tier),
        "blocked": number.can_send_message in ("LIMITED", "BLOCKED"),
    }


def _channel_rows(account: WhatsAppAccount) -> list[dict[str, Any]]:
    rows = []
    for audience, category in (
        (Audience.CUSTOMER, Category.UTILITY),
        (Audience.CUSTOMER, Category.MARKETING),
        (Audience.VENDOR, Category.UTILITY),
    ):
        rows.append(
            {
                "audience": audience.label,
                "category": category.label,
                "number": selectors.channel_number(account=account, audience=audience, category=category),
                "same_as_utility": audience == Audience.CUSTOMER
                and category == Category.MARKETING
                and account.customer_same_number,
            }
        )
    return rows


# --- Overview and connecting --------------------------------------------------------------------


def _progress_context(account: WhatsAppAccount) -> dict[str, Any]:
    """How many of the old account's templates are still at Meta (asked of Meta, so it may fail)."""
    try:
        remaining: int | None = len(selectors.account_remote_templates(account=account))
        error = ""
    except ValidationError as exc:
        remaining, error = None, _error_text(exc)
    return {"remaining": remaining, "progress_error": error, "poll_seconds": PROGRESS_POLL_SECONDS}


def _overview(
    request: HttpRequest,
    account: WhatsAppAccount | None,
    connect_form: ConnectForm | None,
    *,
    token_form: TokenForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {"nav": "settings", "account": account, "sandbox": settings.WHATSAPP_SANDBOX_ENABLED}
    if account is not None and account.status in CHANGEABLE:
        context["token_form"] = token_form or TokenForm()
        if account.token_refused_at is not None:
            context["waiting_messages"] = selectors.account_queued_count(account=account)
    if account is None or account.status == AccountStatus.SETUP_PENDING:
        context["connect_form"] = connect_form or ConnectForm()
    if account is not None:
        if account.check_error and account.check_error_code is not None:
            # The services record Meta's fix hint as the error; add it only when they kept Meta's words.
            hint = fix_hint(account.check_error_code)
            context["check_hint"] = hint if hint not in account.check_error else ""
        if account.status in USABLE:
            numbers = list(selectors.phone_number_list(account=account))
            context["number_rows"] = [_number_row(number, account) for number in numbers]
            context["has_unverified"] = any(not number.is_verified for number in numbers)
            context["has_verified"] = any(number.is_verified for number in numbers)
            context["channel_rows"] = _channel_rows(account)
            context["channels_missing"] = any(
                row["number"] is None for row in context["channel_rows"] if not row["same_as_utility"]
            )
            context.update(recent_context(account))
        elif account.status == AccountStatus.DELETING_TEMPLATES:
            context.update(_progress_context(account))
    return render(request, "whatsapp/settings/overview.html", context, status=status)


@member_required(Perm.SETTINGS_MANAGE)
@require_GET
def integration(request: HttpRequest) -> HttpResponse:
    return _overview(request, selectors.account_get_live(organization=request.organization), None)


@member_required(Perm.SETTINGS_MANAGE)
@require_POST
def connect(request: HttpRequest) -> HttpResponse:
    account = selectors.account_get_live(organization=request.organization)
    if account is not None and account.status != AccountStatus.SETUP_PENDING:
        messages.info(request, _("A WhatsApp Business account is already connected. Use Configure → Change account."))
        return redirect(OVERVIEW)
    form = ConnectForm(request.POST)
    if form.is_valid():
        try:
            connected = services.account_connect(
                organization=request.organization, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            errors_to_form(form, exc)
        else:
            messages.success(
                request,
                _("WhatsApp Business account “%(name)s” is connected. Check the default number and the channels.")
                % {"name": connected},
            )
            return redirect(OVERVIEW)
    messages.error(request, _("The account was not connected. Check the highlighted fields."))
    return _overview(request, account, form)


@account_required(*CHANGEABLE)
@require_POST
def test_connection(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    try:
        account = services.account_test_connection(account=account)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect(OVERVIEW)
    if account.check_error:
        messages.error(request, _("The connection test failed: %(error)s") % {"error": account.check_error})
    else:
        messages.success(request, _("The connection works: Meta accepted the access token."))
    return redirect(OVERVIEW)


@account_required(*CHANGEABLE)
@require_POST
def token_replace(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    form = TokenForm(request.POST)
    if form.is_valid():
        paused = account.token_refused_at is not None
        try:
            services.account_token_replace(account=account, access_token=form.cleaned_data["access_token"])
        except ValidationError as exc:
            errors_to_form(form, exc)
        else:
            messages.success(
                request,
                _("Meta accepted the new access token. The waiting messages are going out.")
                if paused
                else _("Meta accepted the new access token."),
            )
            return redirect(OVERVIEW)
    messages.error(request, _("The access token was not replaced. Check the highlighted field."))
    return _overview(request, account, None, token_form=form, status=400)


@account_required(*USABLE)
@require_POST
def numbers_refresh(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    try:
        numbers = services.phone_numbers_sync(account=account)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        count = len(numbers)
        messages.success(
            request,
            ngettext(
                "%(count)d phone number refreshed from Meta.", "%(count)d phone numbers refreshed from Meta.", count
            )
            % {"count": count},
        )
    return redirect(OVERVIEW)


# --- Default number -----------------------------------------------------------------------------


@account_required(*USABLE)
def default_number(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    verified = list(selectors.phone_number_list(account=account, verified=True))
    initial = {"phone_number": str(account.default_phone_number_id or "")}
    form = DefaultNumberForm(request.POST or None, numbers=verified, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            number = form.cleaned_data["phone_number"]
            try:
                services.default_number_set(account=account, phone_number=number)
            except ValidationError as exc:
                errors_to_form(form, exc)
            else:
                messages.success(request, _("%(number)s is the default WhatsApp number.") % {"number": number})
                return redirect(OVERVIEW)
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
    return render(
        request,
        "whatsapp/settings/default_number.html",
        {
            "nav": "settings",
            "account": account,
            "form": form,
            "unverified": list(selectors.phone_number_list(account=account, verified=False)),
        },
    )


@account_required(*USABLE)
def default_number_remove(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    if account.default_phone_number_id is None:
        return redirect(OVERVIEW)
    if request.method == "POST":
        try:
            services.default_number_clear(account=account)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, _("The default number was removed. Set a new one to keep sending."))
        return redirect(OVERVIEW)
    return render(
        request,
        "whatsapp/settings/confirm.html",
        {
            "nav": "settings",
            "title": _("Remove the default number"),
            "question": _("Remove %(number)s as the default WhatsApp Business number?")
            % {"number": account.default_phone_number},
            "explanation": _(
                "Notifications that have no channel of their own go out from the default number. Until you set "
                "a new one, they cannot be sent."
            ),
            "confirm_label": _("Remove"),
            "danger": True,
        },
    )


# --- Channels -----------------------------------------------------------------------------------


@account_required(*USABLE)
def channels(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    verified = list(selectors.phone_number_list(account=account, verified=True))
    current = {
        name: selectors.channel_number(account=account, audience=audience, category=category)
        for name, audience, category in (
            ("customer_utility", Audience.CUSTOMER, Category.UTILITY),
            ("customer_marketing", Audience.CUSTOMER, Category.MARKETING),
            ("vendor_utility", Audience.VENDOR, Category.UTILITY),
        )
    }
    initial = {name: str(number.pk) for name, number in current.items() if number is not None}
    initial["customer_same_number"] = "yes" if account.customer_same_number else "no"
    form = ChannelsForm(request.POST or None, numbers=verified, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.channels_save(account=account, **form.cleaned_data)
            except ValidationError as exc:
                errors_to_form(form, exc)
            else:
                messages.success(request, _("The WhatsApp channels were saved."))
                return redirect(OVERVIEW)
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
    return render(
        request,
        "whatsapp/settings/channels.html",
        {
            "nav": "settings",
            "account": account,
            "form": form,
            "has_verified": bool(verified),
            "unverified_count": selectors.phone_number_list(account=account, verified=False).count(),
        },
    )


# --- Verifying numbers --------------------------------------------------------------------------


def _back(request: HttpRequest) -> tuple[str, str]:
    """The ``back`` parameter (kept to a known page) and the URL it names."""
    back = request.GET.get("back") or request.POST.get("back") or "channels"
    if back not in BACK_TARGETS:
        back = "channels"
    return back, reverse(BACK_TARGETS[back])


def _code_language() -> str:
    # The language of the SMS or call: the administrator's, in Meta's locale codes.
    return {"es": "es_ES"}.get((get_language() or "en")[:2], "en_US")


def _verify_context(account: WhatsAppAccount, back: str, back_url: str) -> dict[str, Any]:
    return {
        "nav": "settings",
        "account": account,
        "back": back,
        "back_url": back_url,
        "sandbox": settings.WHATSAPP_SANDBOX_ENABLED,
    }


@account_required(*USABLE)
@require_GET
def verify(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    back, back_url = _back(request)
    context = _verify_context(account, back, back_url)
    context["unverified"] = list(selectors.phone_number_list(account=account, verified=False))
    context["method_form"] = RequestCodeForm()
    return render(request, "whatsapp/settings/verify.html", context)


@account_required(*USABLE)
@require_POST
def verify_send(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    number = _phone_number_or_404(request, account, pk)
    back, _back_url = _back(request)
    number_url = f"{reverse('whatsapp:verify_number', args=[number.pk])}?back={back}"
    form = RequestCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose SMS or voice call."))
        return redirect(number_url)
    method = form.cleaned_data["code_method"]
    try:
        services.phone_request_code(phone_number=number, code_method=method, language=_code_language())
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect(number_url)
    sent = dict(request.session.get(CODE_SENT_KEY, {}))
    sent[str(number.pk)] = method
    request.session[CODE_SENT_KEY] = sent
    if method == "VOICE":
        messages.success(request, _("WhatsApp is calling %(number)s with the code.") % {"number": number})
    else:
        messages.success(request, _("A code was sent by SMS to %(number)s.") % {"number": number})
    return redirect(number_url)


@account_required(*USABLE)
def verify_number(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    number = _phone_number_or_404(request, account, pk)
    back, back_url = _back(request)
    form = VerifyCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.phone_verify_code(
                phone_number=number, code=form.cleaned_data["code"], pin=form.cleaned_data["pin"]
            )
        except ValidationError as exc:
            errors_to_form(form, exc)
        else:
            sent = dict(request.session.get(CODE_SENT_KEY, {}))
            sent.pop(str(number.pk), None)
            request.session[CODE_SENT_KEY] = sent
            messages.success(request, _("%(number)s is verified: you can choose it now.") % {"number": number})
            return redirect(back_url)
    context = _verify_context(account, back, back_url)
    context.update(
        {
            "number": number,
            "form": form,
            "method_form": RequestCodeForm(),
            "code_sent": request.session.get(CODE_SENT_KEY, {}).get(str(number.pk), ""),
        }
    )
    return render(request, "whatsapp/settings/verify_number.html", context)


# --- Inactive / active --------------------------------------------------------------------------


@account_required(AccountStatus.CONNECTED)
def mark_inactive(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    if request.method == "POST":
        try:
            services.account_mark_inactive(account=account)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, _("WhatsApp is inactive: no notification is sent until you mark it as active."))
        return redirect(OVERVIEW)
    return render(
        request,
        "whatsapp/settings/confirm.html",
        {
            "nav": "settings",
            "title": _("Mark WhatsApp as inactive"),
            "question": _("Stop sending WhatsApp notifications for now?"),
            "explanation": _(
                "While WhatsApp is inactive nothing is sent: not from the documents, not from reminders, "
                "workflows or the API. Replies and delivery updates from WhatsApp are still recorded. Your "
                "numbers, channels, templates and credits stay as they are, and you can mark WhatsApp as "
                "active again at any time."
            ),
            "confirm_label": _("Mark as inactive"),
            "danger": True,
        },
    )


@account_required(AccountStatus.INACTIVE)
@require_POST
def mark_active(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    try:
        services.account_mark_active(account=account)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("WhatsApp is active again: notifications are sent."))
    return redirect(OVERVIEW)


# --- Changing the business account --------------------------------------------------------------


@account_required(*CHANGEABLE)
def change(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    """Before: what changing accounts means, and the two ways to delete the templates. During: what is left."""
    if request.method == "POST":
        # While deleting, posting again switches the mode (e.g. from manual to automatic).
        form = ChangeAccountForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose how to delete the templates."))
            return redirect("whatsapp:change")
        mode = form.cleaned_data["mode"]
        try:
            services.account_change_start(account=account, mode=mode)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
            return redirect("whatsapp:change")
        if mode == "automatic":
            messages.success(
                request,
                _("The templates are being deleted. When they are gone you can connect the new account here."),
            )
            return redirect(OVERVIEW)
        messages.info(request, _("Delete each template below. When none is left you can connect the new account."))
        return redirect("whatsapp:change")

    context: dict[str, Any] = {"nav": "settings", "account": account}
    if account.status == AccountStatus.DELETING_TEMPLATES:
        try:
            context["templates"] = selectors.account_remote_templates(account=account)
        except ValidationError as exc:
            context["templates_error"] = _error_text(exc)
        return render(request, "whatsapp/settings/change_templates.html", context)
    return render(request, "whatsapp/settings/change.html", context)


@member_required(Perm.SETTINGS_MANAGE)
@require_GET
def change_progress(request: HttpRequest) -> HttpResponse:
    """The overview's progress card, polled by htmx; once the deletion is over the page reloads."""
    account = selectors.account_get_live(organization=request.organization)
    if account is None or account.status != AccountStatus.DELETING_TEMPLATES:
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return redirect(OVERVIEW)
    context = {"account": account, **_progress_context(account)}
    return render(request, "whatsapp/settings/_progress.html", context)


def _deletion_done(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    """Where to go after a deletion step: the connect form once the account is SETUP PENDING, else the list."""
    if account.status == AccountStatus.SETUP_PENDING:
        messages.success(request, _("Every template was deleted. Connect the new WhatsApp Business account."))
        return redirect(OVERVIEW)
    return redirect("whatsapp:change")


@account_required(AccountStatus.DELETING_TEMPLATES)
@require_POST
def change_template_delete(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    form = TemplateDeleteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a template to delete."))
        return redirect("whatsapp:change")
    name = form.cleaned_data["name"]
    try:
        # Also checks whether any template is left, and moves the account to SETUP PENDING if none is.
        services.account_template_delete(account=account, name=name)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("whatsapp:change")
    messages.success(request, _("The template “%(name)s” was deleted.") % {"name": name})
    account.refresh_from_db(fields=["status"])
    return _deletion_done(request, account)


@account_required(AccountStatus.DELETING_TEMPLATES)
@require_POST
def change_check(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    try:
        account = services.account_change_check(account=account)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("whatsapp:change")
    if account.status == AccountStatus.DELETING_TEMPLATES:
        messages.info(request, _("Some templates are still at Meta."))
    return _deletion_done(request, account)


@account_required(AccountStatus.DELETING_TEMPLATES)
@require_POST
def change_cancel(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    try:
        services.account_change_cancel(account=account)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("whatsapp:change")
    messages.success(
        request,
        _("The change was cancelled: the current account stays. Templates already deleted must be created again."),
    )
    return redirect(OVERVIEW)
