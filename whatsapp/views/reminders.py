"""Settings → Integrations → WhatsApp → Reminders, mounted at ``…/whatsapp/reminders/``.

URL names (namespace ``whatsapp``): ``reminders`` (the "Reminders based on due date" switch, the
time of day, the rules, and what they sent or skipped: ``?outcome=sent|skipped``, ``?rule=<id>``,
``?page=``), ``reminder_rule_new``, ``reminder_rule_edit``, ``reminder_rule_toggle`` and
``reminder_rule_delete``.

Every page needs SETTINGS_MANAGE and a connected (or inactive) account, as the rest of the
WhatsApp settings do. Views validate, call one service of :mod:`whatsapp.services.reminders` and
redirect; a service's ``ValidationError`` goes back on the form (never a 500). A rule is looked
up within the organization: another organization's id is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy
from django.views.decorators.http import require_POST

from templates_mgmt.choices import Module
from templates_mgmt.selectors import module_is_enabled
from whatsapp.forms import errors_to_form
from whatsapp.forms_reminders import ReminderRuleForm, ReminderScheduleForm, RuleToggleForm
from whatsapp.models import ReminderRule, ReminderSchedule, ReminderSent, WhatsAppAccount
from whatsapp.services import reminders as services
from whatsapp.services.templates import TEMPLATE_STATES
from whatsapp.views.integration import account_required

PAGE = "whatsapp:reminders"
#: Rows per page of the reminders the rules sent or skipped.
SENT_PER_PAGE = 50
#: The outcome tabs of that list: "" is all of them.
OUTCOME_TABS: tuple[tuple[str, Promise], ...] = (
    ("", gettext_lazy("All")),
    (ReminderSent.Outcome.SENT, ReminderSent.Outcome.SENT.label),
    (ReminderSent.Outcome.SKIPPED, ReminderSent.Outcome.SKIPPED.label),
)
#: Reminders skipped for a refusal a later run retries (``RETRIED_CODES``): what they wait for, and
#: where it is fixed (the URLs ``notification_send``'s refusals carry), in the order to fix them.
WAITING: dict[str, tuple[Promise, str]] = {
    "integration_inactive": (
        ngettext_lazy(
            "%(count)d payment reminder waits for WhatsApp to be active again: once it is, "
            "it goes out with the next daily run.",
            "%(count)d payment reminders wait for WhatsApp to be active again: once it is, "
            "they go out with the next daily run.",
            "count",
        ),
        "whatsapp:integration",
    ),
    "module_disabled": (
        ngettext_lazy(
            "%(count)d payment reminder waits for WhatsApp to be turned on for Payment reminders: "
            "turn it on in Enable modules and it goes out with the next daily run.",
            "%(count)d payment reminders wait for WhatsApp to be turned on for Payment reminders: "
            "turn it on in Enable modules and they go out with the next daily run.",
            "count",
        ),
        "whatsapp:template_modules",
    ),
    "template_missing": (
        ngettext_lazy(
            "%(count)d payment reminder waits for an approved payment reminder template: "
            "once WhatsApp approves one, it goes out with the next daily run.",
            "%(count)d payment reminders wait for an approved payment reminder template: "
            "once WhatsApp approves one, they go out with the next daily run.",
            "count",
        ),
        "whatsapp:template_list",
    ),
    "template_not_approved": (
        ngettext_lazy(
            "%(count)d payment reminder waits for its template to be approved by WhatsApp: "
            "once it is, or the reminder uses an approved one, it goes out with the next daily run.",
            "%(count)d payment reminders wait for their template to be approved by WhatsApp: "
            "once it is, or the reminder uses an approved one, they go out with the next daily run.",
            "count",
        ),
        "whatsapp:template_list",
    ),
    "no_channel_number": (
        ngettext_lazy(
            "%(count)d payment reminder waits for a WhatsApp number for payment reminders: "
            "assign one and it goes out with the next daily run.",
            "%(count)d payment reminders wait for a WhatsApp number for payment reminders: "
            "assign one and they go out with the next daily run.",
            "count",
        ),
        "whatsapp:integration",
    ),
    "insufficient_credits": (
        ngettext_lazy(
            "%(count)d payment reminder waits for IM credits: buy IM credits and it goes out with the next daily run.",
            "%(count)d payment reminders wait for IM credits: buy IM credits and they go out with the next daily run.",
            "count",
        ),
        "credits:buy",
    ),
}


def _rule_or_404(request: HttpRequest, pk: int) -> ReminderRule:
    try:
        return services.reminder_rule_get(organization=request.organization, pk=pk)
    except ReminderRule.DoesNotExist:
        raise Http404(_("No such reminder.")) from None


def _notices(request: HttpRequest, schedule: ReminderSchedule, rules: list[ReminderRule]) -> list[str]:
    """What would keep the reminders from going out, in the order to fix it."""
    organization = request.organization
    notices: list[str] = []
    if not services.reminder_templates(organization=organization).exists():
        notices.append(_("Payment reminders has no approved WhatsApp template yet: create one and wait for approval."))
    elif not module_is_enabled(organization=organization, module=Module.PAYMENT_REMINDERS):
        notices.append(_("WhatsApp is turned off for Payment reminders: turn it on in Enable modules."))
    if schedule.enabled and not any(rule.enabled for rule in rules):
        notices.append(_("No reminder is set to be sent by WhatsApp: add one, or turn one on."))
    task = schedule.periodic_task if schedule.pk else None
    if schedule.enabled and task is not None:
        if not task.enabled:
            notices.append(_("The daily run is paused in Django admin (Periodic tasks): no reminder goes out."))
        elif task.crontab is not None and str(task.crontab.timezone) != organization.time_zone:
            # A change of the organization's zone moves the task (organization_update, Django admin
            # too); this shows the way around it — the crontab edited in Django admin — after which
            # saving this page moves it back to the organization's zone.
            notices.append(
                _("The daily run is set in %(old)s but the organization is in %(new)s: save to move it.")
                % {"old": task.crontab.timezone, "new": organization.time_zone}
            )
    return notices


def _waiting(request: HttpRequest, schedule: ReminderSchedule) -> list[dict[str, Any]]:
    """The skipped reminders the next daily run sends once an administrator fixes their refusal,
    one notice per refusal, with where to fix it. None while reminders are off: no run is coming."""
    if not schedule.enabled:
        return []
    organization = request.organization
    day = services.reminder_next_run_on(schedule=schedule, today=organization.today())
    counts = services.reminder_waiting_counts(organization=organization, day=day)
    notices = []
    for code, (message, url_name) in WAITING.items():
        count = counts.get(code, 0)
        if not count:
            continue
        url = reverse(url_name)
        if url_name == "whatsapp:template_list":
            url += "?" + urlencode({"module": Module.PAYMENT_REMINDERS})
        notices.append({"code": code, "count": count, "message": message % {"count": count}, "url": url})
    return notices


def _sent_filters(request: HttpRequest, rules: list[ReminderRule]) -> tuple[str, ReminderRule | None]:
    """The list's ``?outcome=`` and ``?rule=``; anything else (another organization's rule, a
    typo) is no filter."""
    outcome = request.GET.get("outcome", "")
    if outcome not in ReminderSent.Outcome.values:
        outcome = ""
    rule = next((rule for rule in rules if str(rule.pk) == request.GET.get("rule")), None)
    return outcome, rule


def _query(request: HttpRequest, **changes: str) -> str:
    """The page's query string with ``changes`` (an empty value drops the key), on the first page."""
    params = request.GET.copy()
    params.pop("page", None)
    for key, value in changes.items():
        params.pop(key, None)
        if value:
            params[key] = value
    return params.urlencode()


def _sent_page(request: HttpRequest, rules: list[ReminderRule]) -> dict[str, Any]:
    outcome, rule = _sent_filters(request, rules)
    sent = services.reminder_sent_list(
        organization=request.organization, outcome=outcome, rule_id=rule.pk if rule is not None else None
    )
    page: Page = Paginator(sent, SENT_PER_PAGE).get_page(request.GET.get("page"))
    return {
        "recent": page,
        "sent_outcome": outcome,
        "sent_rule": rule,
        "sent_filtered": bool(outcome or rule),
        "outcome_tabs": [
            {"label": label, "query": _query(request, outcome=key), "active": key == outcome}
            for key, label in OUTCOME_TABS
        ],
    }


def _page(request: HttpRequest, account: WhatsAppAccount, form: ReminderScheduleForm | None = None) -> HttpResponse:
    organization = request.organization
    schedule = services.reminder_schedule_get(organization=organization)
    rules = services.reminder_rule_list(organization=organization)
    if form is None:
        form = ReminderScheduleForm(initial={"enabled": schedule.enabled, "send_at": schedule.send_at})
    context: dict[str, Any] = {
        "nav": "settings",
        "account": account,
        "form": form,
        "schedule": schedule,
        "rules": rules,
        "notices": _notices(request, schedule, rules),
        "waiting": _waiting(request, schedule),
        **_sent_page(request, rules),
    }
    return render(request, "whatsapp/reminders/page.html", context)


@account_required(*TEMPLATE_STATES)
def reminders(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    if request.method != "POST":
        return _page(request, account)
    form = ReminderScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
        return _page(request, account, form)
    try:
        schedule = services.reminder_schedule_update(
            organization=request.organization,
            enabled=form.cleaned_data["enabled"],
            send_at=form.cleaned_data["send_at"],
        )
    except ValidationError as exc:
        errors_to_form(form, exc)
        return _page(request, account, form)
    if schedule.enabled:
        messages.success(
            request,
            _("Reminders based on due date are on: every day at %(time)s (%(zone)s).")
            % {"time": schedule.send_at.strftime("%H:%M"), "zone": request.organization.time_zone},
        )
    else:
        messages.success(request, _("Reminders based on due date are off."))
    return redirect(PAGE)


def _rule_page(request: HttpRequest, account: WhatsAppAccount, rule: ReminderRule | None) -> HttpResponse:
    organization = request.organization
    form = ReminderRuleForm(request.POST or None, organization=organization, rule=rule)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if rule is None:
                saved = services.reminder_rule_create(organization=organization, **data)
            else:
                saved = services.reminder_rule_update(rule=rule, **data)
        except ValidationError as exc:
            errors_to_form(form, exc)
        else:
            messages.success(request, _("The reminder “%(name)s” was saved.") % {"name": saved.name})
            return redirect(PAGE)
    if request.method == "POST":
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
    return render(
        request,
        "whatsapp/reminders/rule_form.html",
        {"nav": "settings", "account": account, "form": form, "rule": rule},
    )


@account_required(*TEMPLATE_STATES)
def reminder_rule_new(request: HttpRequest, account: WhatsAppAccount) -> HttpResponse:
    return _rule_page(request, account, None)


@account_required(*TEMPLATE_STATES)
def reminder_rule_edit(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    return _rule_page(request, account, _rule_or_404(request, pk))


@require_POST
@account_required(*TEMPLATE_STATES)
def reminder_rule_toggle(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    rule = _rule_or_404(request, pk)
    form = RuleToggleForm(request.POST)
    form.is_valid()  # a checkbox: absent is off
    enabled = form.cleaned_data.get("enabled", False)
    try:
        services.reminder_rule_update(rule=rule, enabled=enabled)
    except ValidationError as exc:
        messages.error(
            request,
            _("“%(name)s” can't be changed: %(reason)s") % {"name": rule.name, "reason": " ".join(exc.messages)},
        )
    else:
        if enabled:
            messages.success(request, _("“%(name)s” is sent by WhatsApp.") % {"name": rule.name})
        else:
            messages.success(request, _("“%(name)s” is no longer sent by WhatsApp.") % {"name": rule.name})
    return redirect(PAGE)


@account_required(*TEMPLATE_STATES)
def reminder_rule_delete(request: HttpRequest, account: WhatsAppAccount, pk: int) -> HttpResponse:
    rule = _rule_or_404(request, pk)
    if request.method == "POST":
        services.reminder_rule_delete(rule=rule)
        messages.success(request, _("The reminder “%(name)s” was deleted.") % {"name": rule.name})
        return redirect(PAGE)
    return render(
        request,
        "whatsapp/templates/confirm.html",
        {
            "nav": "settings",
            "title": _("Delete reminder"),
            "question": _("Delete the reminder “%(name)s”?") % {"name": rule.name},
            "explanation": _(
                "No invoice will get this reminder any more. "
                "The messages it already sent stay in each invoice's history."
            ),
            "confirm_label": _("Delete"),
            "danger": True,
            "cancel_url": reverse(PAGE),
        },
    )
