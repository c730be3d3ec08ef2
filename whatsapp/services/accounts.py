"""Writes of an organization's WhatsApp Business connection: connect, numbers, channels, change account.

The flows are Zoho Books' (Settings → Integrations → WhatsApp): connect a WhatsApp Business
Account (WABA) with its system-user token, verify numbers with a code, choose the default number
and the channels (customer utility, customer marketing, vendor utility), mark WhatsApp inactive,
and change the business account, which first deletes the old account's templates and leaves the
integration SETUP PENDING until the new account is connected.

Why it is shaped this way:

- **Meta first, then one short transaction.** Every call to Meta happens before ``atomic`` (a slow
  Graph API must not hold row locks), and nothing is saved when Meta refuses.
- **Meta's refusals are ValidationErrors.** A :class:`~whatsapp.selectors.accounts.MetaError`
  carries the plain-language fix hint (and the original error, so a task can tell whether a
  retry can help): the settings pages and the REST API show it, never a 500.
- **Status moves by conditional UPDATE** (``WHERE status IN (…)``), so two administrators, or a
  redelivered task, can't move an account through the same step twice.
- **The access token is never repeated**: not in a message, a log line or a repr. Messages name
  the field, never its value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from books.models import Organization
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate
from whatsapp.choices import AccountStatus, Audience, Category
from whatsapp.client import CloudAPI, CloudAPIError, PhoneNumberInfo
from whatsapp.cloud import cloud_api
from whatsapp.models import LIVE_ACCOUNT_STATES, Channel, PhoneNumber, WhatsAppAccount
from whatsapp.selectors.accounts import (
    REMOVED,
    TEMPLATE_GONE_STATUSES,
    MetaError,
    account_remote_templates,
    meta_api,
    meta_error,
    number_is_usable,
)

__all__ = [
    "CHANGE_MODES",
    "CODE_METHODS",
    "DEFAULT_CHANNELS",
    "MetaError",
    "account_change_cancel",
    "account_change_check",
    "account_change_start",
    "account_connect",
    "account_mark_active",
    "account_mark_inactive",
    "account_remote_templates",
    "account_template_delete",
    "account_templates_delete_all",
    "account_test_connection",
    "account_token_refused",
    "account_token_replace",
    "channels_save",
    "default_number_clear",
    "default_number_set",
    "phone_numbers_sync",
    "phone_request_code",
    "phone_verify_code",
]

logger = logging.getLogger(__name__)

CODE_METHODS = ("SMS", "VOICE")
CHANGE_MODES = ("automatic", "manual")
#: The channels an account starts with, all on the default number (seed: "Gestionar múltiples canales").
DEFAULT_CHANNELS: tuple[tuple[str, str], ...] = (
    (Audience.CUSTOMER, Category.UTILITY),
    (Audience.CUSTOMER, Category.MARKETING),
    (Audience.VENDOR, Category.UTILITY),
)
#: Where numbers, the default number and channels can be changed.
USABLE_STATES = (AccountStatus.CONNECTED, AccountStatus.INACTIVE)

_META_ID = re.compile(r"[0-9]{1,32}")
#: What an HTTP header can carry (the client refuses anything else): printable ASCII, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_CODE = re.compile(r"[0-9]{4,10}")
#: The in-app notice that sending stopped because Meta refused the access token.
REFUSED_NOTICE_KIND = "whatsapp.token_refused"
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
#: Graph's "object does not exist, or this token can't see it".
_UNKNOWN_OBJECT = (100, 33)
#: Meta's answer to a wrong or expired verification code.

_NUMBER_FIELDS = (
    "display_phone_number",
    "verified_name",
    "name_status",
    "code_verification_status",
    "quality_rating",
    "status",
    "throughput_level",
    "messaging_limit_tier",
    "can_send_message",
)


# --- Small guards ---------------------------------------------------------------------------------


def _require_state(account: WhatsAppAccount, states: Sequence[str]) -> None:
    if account.status in states:
        return
    if account.status == AccountStatus.DELETING_TEMPLATES:
        message = _("The WhatsApp Business account is being changed: finish or cancel the change first.")
    elif account.status == AccountStatus.SETUP_PENDING:
        message = _("Connect the new WhatsApp Business account first.")
    else:
        message = _("This is not possible while the WhatsApp Business account is %(status)s.") % {
            "status": account.get_status_display()
        }
    raise ValidationError(message)


def _number_problem(account: WhatsAppAccount, number: PhoneNumber | None) -> str:
    """Why ``number`` can't send for ``account`` ("" when it can)."""
    if number is None:
        return _("Choose a number.")
    if number.account_id != account.pk:
        return _("This number does not belong to the connected WhatsApp Business account.")
    if number.status == REMOVED:
        return _("WhatsApp no longer lists %(number)s for this account: sync the numbers.") % {"number": number}
    if not number.is_verified:
        return _("Only verified numbers can be chosen: verify %(number)s first.") % {"number": number}
    return ""


def _fit(value: str | None, field: str) -> str:
    max_length = PhoneNumber._meta.get_field(field).max_length
    return (value or "")[:max_length]


def _transition(account: WhatsAppAccount, *, from_states: Iterable[str], to: str, **values: object) -> bool:
    """Move ``account`` to ``to`` only if it is still in ``from_states``; refresh it either way."""
    moved = WhatsAppAccount.objects.filter(pk=account.pk, status__in=list(from_states)).update(
        status=to, updated_at=timezone.now(), **values
    )
    account.refresh_from_db()
    return moved == 1


def _record_check(account: WhatsAppAccount, *, code: int | None, error: str) -> None:
    """Keep the latest result of talking to Meta for the settings page ("last checked")."""
    account.checked_at = timezone.now()
    account.check_error_code = code
    account.check_error = error
    account.save(update_fields=["checked_at", "check_error_code", "check_error", "updated_at"])


def _numbers_upsert(*, account: WhatsAppAccount, infos: Iterable[PhoneNumberInfo], now: datetime) -> list[PhoneNumber]:
    """Store what Meta said about each number; numbers it no longer lists are kept but marked REMOVED.

    They are kept because messages point at them. Returns the listed numbers in Meta's order.
    Caller holds a transaction.
    """
    existing = {number.phone_number_id: number for number in PhoneNumber.objects.filter(account=account)}
    listed: list[PhoneNumber] = []
    for info in infos:
        if not info.id or info.id in {number.phone_number_id for number in listed}:
            continue
        values = {field: _fit(getattr(info, field), field) for field in _NUMBER_FIELDS}
        number = existing.pop(info.id, None)
        if number is None:
            number = PhoneNumber.objects.create(
                organization_id=account.organization_id,
                account=account,
                phone_number_id=info.id,
                synced_at=now,
                **values,
            )
        else:
            for field, value in values.items():
                setattr(number, field, value)
            number.synced_at = now
            number.save(update_fields=[*_NUMBER_FIELDS, "synced_at"])
        listed.append(number)
    if existing:
        PhoneNumber.objects.filter(pk__in=[number.pk for number in existing.values()]).update(
            status=REMOVED, synced_at=now
        )
    return listed


# --- Connecting -----------------------------------------------------------------------------------


def _connect_input(waba_id: str, app_id: str, access_token: str) -> None:
    errors: dict[str, list[str]] = {}
    if not _META_ID.fullmatch(waba_id):
        errors["waba_id"] = [_("Enter the WhatsApp Business Account ID: digits only, as WhatsApp Manager shows it.")]
    if not _META_ID.fullmatch(app_id):
        errors["app_id"] = [_("Enter the Meta app ID: digits only, as the Meta app dashboard shows it.")]
    if not access_token:
        errors["access_token"] = [_("Enter the system user's access token.")]
    elif not _TOKEN.fullmatch(access_token):
        errors["access_token"] = [
            _("The access token can only contain letters, digits and punctuation, without spaces: copy it again.")
        ]
    if errors:
        raise ValidationError(errors)


def _connect_allowed(*, organization: Organization, waba_id: str) -> WhatsAppAccount | None:
    """Refuse a second live account or a WABA live elsewhere; return the SETUP_PENDING row it replaces."""
    current = WhatsAppAccount.objects.filter(organization=organization, status__in=LIVE_ACCOUNT_STATES).first()
    if current is not None and current.status != AccountStatus.SETUP_PENDING:
        raise ValidationError(
            _(
                "This organization is already connected to WhatsApp Business account %(waba_id)s. To use "
                "another one, change the account first (Configure → Change account)."
            )
            % {"waba_id": current.waba_id}
        )
    taken = (
        WhatsAppAccount.objects.filter(waba_id=waba_id, status__in=LIVE_ACCOUNT_STATES)
        .exclude(organization=organization)
        .exists()
    )
    if taken:
        # Which organization is not said: it is another tenant's business.
        raise ValidationError(
            {
                "waba_id": [
                    _(
                        "This WhatsApp Business Account is already connected to another organization in the hub. "
                        "Disconnect it there first, or use another account."
                    )
                ]
            }
        )
    return current


def _connect_error(error: CloudAPIError) -> MetaError:
    """Put Meta's refusal on the field the administrator has to correct."""
    if error.is_auth_error or error.code in (0, 3, 10) or (error.code is not None and 200 <= error.code <= 299):
        return meta_error(
            error,
            field="access_token",
            lead=_("WhatsApp refused the access token, or it lacks a permission."),
        )
    if (error.code, error.subcode) == _UNKNOWN_OBJECT:
        return meta_error(
            error,
            field="waba_id",
            lead=_("This WhatsApp Business Account doesn't exist, or the access token has no access to it."),
        )
    return meta_error(error)


def _token_api(access_token: str) -> CloudAPI:
    try:
        return cloud_api(access_token)
    except ValueError:
        raise ValidationError(
            {"access_token": [_("The access token can't be used: copy it again from Meta Business Manager.")]}
        ) from None


def account_connect(
    *,
    organization: Organization,
    waba_id: str,
    app_id: str,
    access_token: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> WhatsAppAccount:
    """Connect the organization to a WhatsApp Business Account, with its numbers and channels.

    Meta is asked first, with nothing saved yet: listing the numbers proves the token and the WABA,
    and subscribing the app makes Meta send this WABA's webhooks to the hub. Refused while the
    organization has a live account that is not SETUP PENDING, and when the WABA is live in another
    organization (a webhook's WABA id must name one tenant). Then, in one transaction: the
    SETUP PENDING account being replaced is DISCONNECTED (its numbers and messages stay), the new
    account is stored with its numbers, the first verified number becomes the default, and the
    three channels start on it.
    """
    waba_id, app_id, access_token = (str(value or "").strip() for value in (waba_id, app_id, access_token))
    _connect_input(waba_id, app_id, access_token)
    _connect_allowed(organization=organization, waba_id=waba_id)

    api = _token_api(access_token)
    try:
        infos = api.list_phone_numbers(waba_id)
        api.subscribe_app(waba_id)
        apps = api.list_subscribed_apps(waba_id)
    except CloudAPIError as exc:
        raise _connect_error(exc) from exc
    if apps and app_id not in {app.id for app in apps}:
        raise ValidationError(
            {
                "app_id": [
                    _(
                        "This app isn't subscribed to the WhatsApp Business Account: check the app ID of the app "
                        "the access token was created for."
                    )
                ]
            }
        )

    now = timezone.now()
    try:
        with transaction.atomic():
            # Two administrators connecting at once: the second waits here, then is refused below.
            list(Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk"))
            replaced = _connect_allowed(organization=organization, waba_id=waba_id)
            if replaced is not None:
                replaced.status = AccountStatus.DISCONNECTED
                replaced.disconnected_at = now
                replaced.save(update_fields=["status", "disconnected_at", "updated_at"])
            account = WhatsAppAccount.objects.create(
                organization=organization,
                waba_id=waba_id,
                app_id=app_id,
                access_token=access_token,
                status=AccountStatus.CONNECTED,
                connected_by=user if user is not None and user.is_authenticated else None,
                checked_at=now,
            )
            numbers = _numbers_upsert(account=account, infos=infos, now=now)
            default = next((number for number in numbers if number_is_usable(number)), None)
            names = [
                number.verified_name for number in ([default] if default else []) + numbers if number.verified_name
            ]
            account.name = (names[0] if names else "")[: WhatsAppAccount._meta.get_field("name").max_length]
            account.default_phone_number = default
            account.save(update_fields=["name", "default_phone_number", "updated_at"])
            if default is not None:
                Channel.objects.bulk_create(
                    Channel(
                        organization=organization,
                        account=account,
                        audience=audience,
                        category=category,
                        phone_number=default,
                    )
                    for audience, category in DEFAULT_CHANNELS
                )
    except IntegrityError:
        # The partial unique constraints caught a connect that raced ours (another organization, same WABA).
        raise ValidationError(
            _("Another WhatsApp connection was being made at the same time: reload the page and try again.")
        ) from None
    logger.info(
        "WhatsApp account %s (WABA %s) connected to organization %s with %d numbers%s",
        account.pk,
        waba_id,
        organization.pk,
        len(numbers),
        f", replacing account {replaced.pk}" if replaced is not None else "",
    )
    return account


def account_test_connection(*, account: WhatsAppAccount) -> WhatsAppAccount:
    """Ask Meta for the numbers again and record the outcome ("last checked", error and fix hint).

    Never raises for Meta's refusal: the settings page shows the recorded result. Success clears a
    previous error and refreshes the numbers.
    """
    try:
        infos = meta_api(account).list_phone_numbers(account.waba_id)
    except CloudAPIError as exc:
        _record_check(account, code=exc.code, error=exc.fix_hint)
        logger.info("WhatsApp account %s: test connection failed with code %s", account.pk, exc.code)
        return account
    except ValidationError as exc:  # the stored token can't even be sent
        _record_check(account, code=None, error=" ".join(exc.messages))
        return account
    with transaction.atomic():
        _numbers_upsert(account=account, infos=infos, now=timezone.now())
        _record_check(account, code=None, error="")
        _sending_resume(account)
    return account


# --- The access token -----------------------------------------------------------------------------


def account_token_refused(*, account: WhatsAppAccount, error: CloudAPIError) -> bool:
    """Meta refused the account's access token while sending (190): pause the account's sending.

    Its queued messages wait — none is failed for a token, which an administrator can replace in
    a minute — and dispatch claims nothing of the account until :func:`account_token_replace` (or a
    connection test that passes) resumes it. The refusal is recorded as a connection test's, and
    the organization is told once per pause. True when this call paused it (a conditional UPDATE:
    a hundred sends refused at once pause and notify once).
    """
    from books.services.notifications import notification_create

    now = timezone.now()
    paused = WhatsAppAccount.objects.filter(pk=account.pk, token_refused_at__isnull=True).update(
        token_refused_at=now, checked_at=now, check_error_code=error.code, check_error=error.fix_hint, updated_at=now
    )
    if account.token_refused_at is None:
        account.token_refused_at = now
    if not paused:
        return False
    logger.warning("WhatsApp account %s: Meta refused the access token (%s); sending paused.", account.pk, error.code)
    organization = account.organization
    with translation.override(organization.language or settings.LANGUAGE_CODE):
        notification_create(
            organization=organization,
            kind=REFUSED_NOTICE_KIND,
            title=_("WhatsApp sending paused: Meta refused the access token"),
            body=_(
                "The access token of the WhatsApp Business account expired or was revoked. Messages wait in the "
                "queue and none is lost: an administrator replaces the token in Settings → Integrations → WhatsApp, "
                "and sending resumes."
            ),
            url="/settings/integrations/whatsapp/",
        )
    return True


def account_token_replace(*, account: WhatsAppAccount, access_token: str) -> WhatsAppAccount:
    """Store a new system-user access token for the account, once Meta accepts it for the account's
    WABA (listing its numbers), and resume sending if a refused token had paused it.

    Meta is asked first; nothing is saved when it refuses (the error names the field). The token
    is stored encrypted and never repeated.
    """
    access_token = str(access_token or "").strip()
    if not access_token or not _TOKEN.fullmatch(access_token):
        raise ValidationError({"access_token": [_("Paste the access token exactly as Meta shows it.")]})
    api = _token_api(access_token)
    try:
        infos = api.list_phone_numbers(account.waba_id)
    except CloudAPIError as exc:
        raise _connect_error(exc) from exc
    with transaction.atomic():
        account.access_token = access_token
        account.save(update_fields=["access_token", "updated_at"])
        _numbers_upsert(account=account, infos=infos, now=timezone.now())
        _record_check(account, code=None, error="")
        _sending_resume(account)
    logger.info("WhatsApp account %s: access token replaced", account.pk)
    return account


def _sending_resume(account: WhatsAppAccount) -> None:
    """Lift a token pause (in the caller's transaction) and wake dispatch once it commits."""
    account.token_refused_at = None
    resumed = WhatsAppAccount.objects.filter(pk=account.pk, token_refused_at__isnull=False).update(
        token_refused_at=None, updated_at=timezone.now()
    )
    if not resumed:
        return
    logger.info("WhatsApp account %s: sending resumed", account.pk)
    from whatsapp.services.pump import dispatch_wake

    transaction.on_commit(dispatch_wake)


# --- Numbers --------------------------------------------------------------------------------------


def phone_numbers_sync(*, account: WhatsAppAccount) -> list[PhoneNumber]:
    """Store every number Meta lists for the account now (status, quality, limits) and return them.

    A number Meta no longer lists is kept, because messages reference it, with status REMOVED.
    """
    try:
        infos = meta_api(account).list_phone_numbers(account.waba_id)
    except CloudAPIError as exc:
        raise meta_error(exc) from exc
    with transaction.atomic():
        return _numbers_upsert(account=account, infos=infos, now=timezone.now())


def _number_api(phone_number: PhoneNumber) -> CloudAPI:
    account = phone_number.account
    if account.status not in LIVE_ACCOUNT_STATES:
        raise ValidationError(_("This number belongs to a WhatsApp Business account that was replaced."))
    if phone_number.status == REMOVED:
        raise ValidationError(_("WhatsApp no longer lists this number for the account: sync the numbers."))
    return meta_api(account)


def phone_request_code(*, phone_number: PhoneNumber, code_method: str = "SMS", language: str = "en_US") -> None:
    """Ask Meta to send the number's owner a verification code by SMS or voice call."""
    method = str(code_method or "").strip().upper()
    if method not in CODE_METHODS:
        raise ValidationError({"code_method": [_("Choose how to receive the code: SMS or VOICE (a call).")]})
    language = str(language or "").strip() or "en_US"
    if not _LANGUAGE.fullmatch(language):
        raise ValidationError({"language": [_("Enter a language code such as en_US or es_ES.")]})
    api = _number_api(phone_number)
    try:
        api.request_code(phone_number.phone_number_id, method, language)
    except CloudAPIError as exc:
        raise meta_error(exc) from exc
    logger.info("WhatsApp number %s: verification code requested by %s", phone_number.pk, method)


def phone_verify_code(*, phone_number: PhoneNumber, code: str, pin: str | None = None) -> PhoneNumber:
    """Confirm the code the owner received; the number is then read again from Meta (now VERIFIED).

    Hyphens and spaces are ignored ("123-456", as the SMS shows it). A wrong or expired code is an
    error on ``code`` with the fix hint. With ``pin`` (six digits), the verified number is then
    registered on the Cloud API (``POST /{id}/register``): the first registration sets that
    two-step verification PIN, later ones must repeat it. A number that is verified but not
    registered cannot send (133010), so the settings page always asks for it.
    """
    digits = re.sub(r"[\s-]", "", str(code or ""))
    if not _CODE.fullmatch(digits):
        raise ValidationError({"code": [_("Enter the code you received: digits only.")]})
    if pin is not None and not re.fullmatch(r"\d{6}", pin):
        raise ValidationError({"pin": [_("The two-step verification PIN is 6 digits.")]})
    api = _number_api(phone_number)
    try:
        api.verify_code(phone_number.phone_number_id, digits)
    except CloudAPIError as exc:
        if exc.is_auth_error:
            raise meta_error(exc) from exc
        raise meta_error(exc, field="code") from exc
    try:
        info = api.get_phone_number(phone_number.phone_number_id)
    except CloudAPIError as exc:
        # Meta accepted the code, so the number is verified; the rest is refreshed by the next sync.
        logger.warning("WhatsApp number %s verified, but reading it back failed (code %s)", phone_number.pk, exc.code)
        info = None
    if info is not None and info.id == phone_number.phone_number_id:
        for field in _NUMBER_FIELDS:
            setattr(phone_number, field, _fit(getattr(info, field), field))
    if not phone_number.is_verified:
        phone_number.code_verification_status = "VERIFIED"
    phone_number.synced_at = timezone.now()
    phone_number.save(update_fields=[*_NUMBER_FIELDS, "synced_at"])
    logger.info("WhatsApp number %s verified", phone_number.pk)
    if pin is not None:
        phone_register(phone_number=phone_number, pin=pin)
    return phone_number


def phone_register(*, phone_number: PhoneNumber, pin: str) -> PhoneNumber:
    """Register a verified number on the Cloud API with its two-step verification PIN, then re-read it."""
    api = _number_api(phone_number)
    try:
        api.register(phone_number.phone_number_id, pin)
    except CloudAPIError as exc:
        if exc.is_auth_error:
            raise meta_error(exc) from exc
        lead = _("The number is verified, but WhatsApp did not register it.")
        raise meta_error(exc, field="pin", lead=lead) from exc
    try:
        info = api.get_phone_number(phone_number.phone_number_id)
    except CloudAPIError:
        info = None
    if info is not None and info.id == phone_number.phone_number_id:
        for field in _NUMBER_FIELDS:
            setattr(phone_number, field, _fit(getattr(info, field), field))
        phone_number.synced_at = timezone.now()
        phone_number.save(update_fields=[*_NUMBER_FIELDS, "synced_at"])
    logger.info("WhatsApp number %s registered", phone_number.pk)
    return phone_number


# --- Default number and channels ------------------------------------------------------------------


def default_number_set(*, account: WhatsAppAccount, phone_number: PhoneNumber) -> None:
    """Make a verified number of the account its default.

    Channels that went out from the previous default follow it to the new one (channels set to
    another number stay), and channels that don't exist yet start on it.
    """
    _require_state(account, USABLE_STATES)
    problem = _number_problem(account, phone_number)
    if problem:
        raise ValidationError({"phone_number": [problem]})
    now = timezone.now()
    with transaction.atomic():
        previous_id = account.default_phone_number_id
        if previous_id is not None and previous_id != phone_number.pk:
            Channel.objects.filter(account=account, phone_number_id=previous_id).update(
                phone_number=phone_number, updated_at=now
            )
        for audience, category in DEFAULT_CHANNELS:
            Channel.objects.get_or_create(
                account=account,
                audience=audience,
                category=category,
                defaults={"organization_id": account.organization_id, "phone_number": phone_number},
            )
        account.default_phone_number = phone_number
        account.save(update_fields=["default_phone_number", "updated_at"])


def default_number_clear(*, account: WhatsAppAccount) -> None:
    """Remove the default number (the first step of Zoho's "change the default number").

    The channels that went out from it are removed too: until a new default is set they have no
    number, and :func:`default_number_set` recreates them on the new one.
    """
    _require_state(account, USABLE_STATES)
    with transaction.atomic():
        if account.default_phone_number_id is not None:
            Channel.objects.filter(account=account, phone_number_id=account.default_phone_number_id).delete()
        account.default_phone_number = None
        account.save(update_fields=["default_phone_number", "updated_at"])


def channels_save(
    *,
    account: WhatsAppAccount,
    customer_same_number: bool,
    customer_utility: PhoneNumber | None,
    customer_marketing: PhoneNumber | None = None,
    vendor_utility: PhoneNumber | None,
) -> list[Channel]:
    """Choose the numbers of customer utility, customer marketing and vendor utility messages.

    Each must be a verified number of this account (errors are keyed by the argument's name).
    With ``customer_same_number`` marketing goes out from the utility number (``customer_marketing``
    is ignored); separate numbers keep marketing complaints from blocking invoices.
    """
    _require_state(account, USABLE_STATES)
    chosen = {"customer_utility": customer_utility, "vendor_utility": vendor_utility}
    if not customer_same_number:
        chosen["customer_marketing"] = customer_marketing
    errors = {name: [problem] for name, number in chosen.items() if (problem := _number_problem(account, number))}
    if errors:
        raise ValidationError(errors)
    marketing = customer_utility if customer_same_number else customer_marketing
    numbers = {
        (Audience.CUSTOMER, Category.UTILITY): customer_utility,
        (Audience.CUSTOMER, Category.MARKETING): marketing,
        (Audience.VENDOR, Category.UTILITY): vendor_utility,
    }
    with transaction.atomic():
        account.customer_same_number = bool(customer_same_number)
        account.save(update_fields=["customer_same_number", "updated_at"])
        channels = [
            Channel.objects.update_or_create(
                account=account,
                audience=audience,
                category=category,
                defaults={"organization_id": account.organization_id, "phone_number": number},
            )[0]
            for (audience, category), number in numbers.items()
        ]
    return channels


# --- Inactive / active ----------------------------------------------------------------------------


def account_mark_inactive(*, account: WhatsAppAccount) -> WhatsAppAccount:
    """Pause WhatsApp: nothing is sent until it is marked active again; webhooks are still applied."""
    if not _transition(account, from_states=[AccountStatus.CONNECTED], to=AccountStatus.INACTIVE):
        raise ValidationError(
            _("Only a connected account can be marked inactive; this one is %(status)s.")
            % {"status": account.get_status_display()}
        )
    return account


def account_mark_active(*, account: WhatsAppAccount) -> WhatsAppAccount:
    if not _transition(account, from_states=[AccountStatus.INACTIVE], to=AccountStatus.CONNECTED):
        raise ValidationError(
            _("Only an inactive account can be marked active; this one is %(status)s.")
            % {"status": account.get_status_display()}
        )
    return account


# --- Changing the business account ----------------------------------------------------------------


def _templates_delete_enqueue(account_id: int) -> None:
    # Imported here: tasks import this module when they run.
    from whatsapp.tasks import account_templates_delete

    account_templates_delete.delay(account_id)


def account_change_start(*, account: WhatsAppAccount, mode: str) -> WhatsAppAccount:
    """Start changing the business account: its templates must go first (status DELETING TEMPLATES).

    ``automatic`` schedules a task that deletes every template at Meta; ``manual`` lets the
    administrator delete them one by one (:func:`account_template_delete`). Starting again while
    deleting switches the mode (e.g. from manual to automatic).
    """
    if mode not in CHANGE_MODES:
        raise ValidationError({"mode": [_("Choose how to delete the templates: automatic or manual.")]})
    with transaction.atomic():
        started = _transition(
            account,
            from_states=[*USABLE_STATES, AccountStatus.DELETING_TEMPLATES],
            to=AccountStatus.DELETING_TEMPLATES,
        )
        if not started:
            _require_state(account, [*USABLE_STATES, AccountStatus.DELETING_TEMPLATES])
        if mode == "automatic":
            transaction.on_commit(partial(_templates_delete_enqueue, account.pk))
    logger.info("WhatsApp account %s: change of account started (%s deletion)", account.pk, mode)
    return account


def _local_templates_mark(
    account: WhatsAppAccount, *, names: Iterable[str] | None = None, exclude: Iterable[str] = (), status: str
) -> int:
    """Mark the organization's templates of this WABA (only ``names``, if given) as ``status``.

    ``status_updated_at`` moves to now, so a late webhook about an older status changes nothing.
    """
    now = timezone.now()
    rows = MessageTemplate.objects.filter(organization_id=account.organization_id, waba_id=account.waba_id)
    if names is not None:
        rows = rows.filter(name__in=list(names))
    return (
        rows.exclude(name__in=list(exclude))
        .exclude(status=status)
        .exclude(status=TemplateStatus.DELETED)
        .update(status=status, status_updated_at=now, updated_at=now)
    )


def account_templates_delete_all(*, account: WhatsAppAccount) -> WhatsAppAccount:
    """The automatic deletion: delete every template of the WABA at Meta, then check whether it's done.

    Lists the templates at Meta (every page) and deletes each name (all its languages); the hub's
    rows for this WABA become DELETED (DELETION_FAILED for a name Meta refused to delete). Does
    nothing unless the account is DELETING TEMPLATES, so a redelivered or late task (after a cancel,
    or after it already finished) changes nothing. A temporary Meta error stops it with a
    retryable :class:`MetaError` (the task retries; done names are not deleted twice); a permanent
    one is recorded on the account for the settings page and raised.
    """
    if account.status != AccountStatus.DELETING_TEMPLATES:
        return account
    api = meta_api(account)
    try:
        remote = list(api.list_templates(account.waba_id))
    except CloudAPIError as exc:
        if not exc.retryable:
            _record_check(account, code=exc.code, error=exc.fix_hint)
        raise meta_error(exc) from exc
    names = sorted(
        {template.name for template in remote if template.name and template.status not in TEMPLATE_GONE_STATUSES}
    )
    failed: dict[str, CloudAPIError] = {}
    for name in names:
        try:
            api.delete_template(account.waba_id, name)
        except CloudAPIError as exc:
            if exc.retryable:
                raise meta_error(exc) from exc
            failed[name] = exc
            continue
        _local_templates_mark(account, names=[name], status=TemplateStatus.DELETED)
    _local_templates_mark(account, exclude=failed, status=TemplateStatus.DELETED)
    if failed:
        _local_templates_mark(account, names=failed, status=TemplateStatus.DELETION_FAILED)
        first = failed[min(failed)]
        _record_check(account, code=first.code, error=first.fix_hint)
        logger.warning("WhatsApp account %s: %d templates could not be deleted", account.pk, len(failed))
        raise meta_error(
            first,
            lead=_("%(count)s templates could not be deleted (%(names)s).")
            % {"count": len(failed), "names": ", ".join(sorted(failed))},
        )
    logger.info("WhatsApp account %s: %d templates deleted at Meta", account.pk, len(names))
    return account_change_check(account=account)


def account_template_delete(*, account: WhatsAppAccount, name: str) -> None:
    """The manual deletion: delete one template (every language of ``name``) at Meta and in the hub.

    Then checks whether any is left; when none is, the account is SETUP PENDING.
    """
    name = str(name or "").strip()
    if not name:
        raise ValidationError({"name": [_("Choose a template to delete.")]})
    _require_state(account, [AccountStatus.DELETING_TEMPLATES])
    try:
        meta_api(account).delete_template(account.waba_id, name)
    except CloudAPIError as exc:
        raise meta_error(exc, field="name") from exc
    _local_templates_mark(account, names=[name], status=TemplateStatus.DELETED)
    logger.info("WhatsApp account %s: template deleted by hand", account.pk)
    try:
        account_change_check(account=account)
    except ValidationError as exc:  # the deletion stands; the next check will tell
        logger.info("WhatsApp account %s: checking for templates left failed: %s", account.pk, exc.messages)


def account_change_check(*, account: WhatsAppAccount) -> WhatsAppAccount:
    """While DELETING TEMPLATES: when Meta lists none (deleted or being deleted aside), SETUP PENDING."""
    if account.status != AccountStatus.DELETING_TEMPLATES:
        return account
    remaining = account_remote_templates(account=account)
    if not remaining and _transition(
        account, from_states=[AccountStatus.DELETING_TEMPLATES], to=AccountStatus.SETUP_PENDING
    ):
        logger.info("WhatsApp account %s: templates gone, setup pending", account.pk)
    return account


def account_change_cancel(*, account: WhatsAppAccount) -> WhatsAppAccount:
    """Stop changing the account: it is CONNECTED again (templates already deleted stay deleted)."""
    if not _transition(account, from_states=[AccountStatus.DELETING_TEMPLATES], to=AccountStatus.CONNECTED):
        raise ValidationError(_("The WhatsApp Business account is not being changed."))
    return account
