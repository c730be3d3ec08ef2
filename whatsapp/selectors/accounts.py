"""Reads of an organization's WhatsApp Business connection: its live account, numbers and channels.

Everything here reads the hub's own rows, except :func:`account_remote_templates`, which asks Meta
(the manual "delete the templates" step of changing accounts lists what is still there). Meta
refusing is reported as :class:`MetaError`, a ``ValidationError`` carrying the plain-language fix
hint, so the settings pages and the REST API show it instead of failing; it lives here because
reads and writes (:mod:`whatsapp.services.accounts`) both raise it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from books.models import Organization
from templates_mgmt.choices import TemplateStatus
from whatsapp.choices import Audience, Category, Direction, MessageStatus
from whatsapp.client import CloudAPI, CloudAPIError, TemplateInfo
from whatsapp.cloud import account_cloud_api
from whatsapp.models import LIVE_ACCOUNT_STATES, Channel, Message, PhoneNumber, WhatsAppAccount

__all__ = [
    "REMOVED",
    "TEMPLATE_GONE_STATUSES",
    "MetaError",
    "account_get_live",
    "account_remote_templates",
    "channel_list",
    "channel_number",
    "meta_api",
    "meta_error",
    "phone_number_get",
    "phone_number_list",
]

#: ``PhoneNumber.status`` of a number Meta no longer lists for the account. The row stays, because
#: messages point at it, but it can't be chosen or send.
REMOVED = "REMOVED"

#: Template statuses at Meta that count as gone: deleting one takes Meta a while.
TEMPLATE_GONE_STATUSES = frozenset({TemplateStatus.DELETED, TemplateStatus.PENDING_DELETION})


class MetaError(ValidationError):
    """Meta refused (or didn't answer) a call: a ``ValidationError`` whose message is the fix hint.

    ``error`` is the :class:`~whatsapp.client.CloudAPIError` (code, subcode, retryable), so a task
    can decide whether to retry while the UI and the API simply show the message.
    """

    def __init__(self, message: str | dict[str, list[str]], *, error: CloudAPIError) -> None:
        super().__init__(message)
        self.error = error

    @property
    def retryable(self) -> bool:
        return self.error.retryable


def meta_error(error: CloudAPIError, *, field: str | None = None, lead: str = "") -> MetaError:
    """The ValidationError for a Meta error: ``lead`` (if any), the fix hint, then what Meta said.

    Meta's own title is kept (the client has already scrubbed any token from it) because the hint
    is for the accountant and the code is for whoever they ask for help.
    """
    said = error.title
    if error.code is not None:
        said = _("%(title)s (error %(code)s)") % {"title": said, "code": error.code}
    text = _("%(hint)s WhatsApp said: %(said)s") % {"hint": error.fix_hint, "said": said}
    if lead:
        text = f"{lead} {text}"
    return MetaError({field: [text]} if field else text, error=error)


def meta_api(account: WhatsAppAccount) -> CloudAPI:
    """The account's Cloud API client; a stored token a header can't carry is a ValidationError."""
    try:
        return account_cloud_api(account)
    except ValueError:
        # The client's message never quotes the token; ours doesn't either.
        raise ValidationError(
            {"access_token": [_("The stored access token is not valid: connect the account again with a new one.")]}
        ) from None


def account_get_live(*, organization: Organization) -> WhatsAppAccount | None:
    """The organization's current account (connected, inactive, being changed or setup pending), if any."""
    return (
        WhatsAppAccount.objects.filter(organization=organization, status__in=LIVE_ACCOUNT_STATES)
        .select_related("default_phone_number")
        .first()
    )


def account_queued_count(*, account: WhatsAppAccount) -> int:
    """The account's outbound messages waiting in the queue (or claimed, not yet sent)."""
    return Message.objects.filter(
        account=account,
        direction=Direction.OUTBOUND,
        status__in=[MessageStatus.QUEUED, MessageStatus.SENDING],
        wamid__isnull=True,
        sending_at__isnull=True,
    ).count()


def phone_number_list(*, account: WhatsAppAccount, verified: bool | None = None) -> QuerySet[PhoneNumber]:
    """The account's numbers, removed ones included (they say so in ``status``).

    ``verified=True`` keeps the numbers that can be chosen for a channel: verified and still at Meta.
    """
    queryset = PhoneNumber.objects.filter(account=account).order_by("display_phone_number", "pk")
    if verified is True:
        queryset = queryset.filter(code_verification_status="VERIFIED").exclude(status=REMOVED)
    elif verified is False:
        queryset = queryset.exclude(code_verification_status="VERIFIED")
    return queryset


def phone_number_get(*, organization: Organization, pk: int | str) -> PhoneNumber:
    """One of the organization's numbers (of any of its accounts, past ones included).

    Raises ``PhoneNumber.DoesNotExist`` for another organization's number, as for a missing one.
    """
    return PhoneNumber.objects.select_related("account").get(organization=organization, pk=pk)


def channel_list(*, account: WhatsAppAccount) -> QuerySet[Channel]:
    """The account's channel rows (audience × category → number)."""
    return Channel.objects.filter(account=account).select_related("phone_number").order_by("audience", "category")


def number_is_usable(number: PhoneNumber | None) -> bool:
    """Whether a number may send: verified by its owner and still listed by Meta."""
    return number is not None and number.is_verified and number.status != REMOVED


def channel_number(*, account: WhatsAppAccount, audience: str, category: str) -> PhoneNumber | None:
    """The number that sends ``audience`` × ``category`` messages, or None when none can.

    With "same number for every category", customer marketing goes out from the customer utility
    number. Without a channel row (authentication, service, or a channel never set) the default
    number is used. A number that isn't verified, or that Meta no longer lists, sends nothing.
    """
    if audience == Audience.CUSTOMER and category == Category.MARKETING and account.customer_same_number:
        category = Category.UTILITY
    channel = (
        Channel.objects.filter(account=account, audience=audience, category=category)
        .select_related("phone_number")
        .first()
    )
    number = channel.phone_number if channel is not None else account.default_phone_number
    return number if number_is_usable(number) else None


def account_remote_templates(*, account: WhatsAppAccount, include_gone: bool = False) -> list[TemplateInfo]:
    """The account's templates as Meta lists them now (every page), oldest name first.

    Templates already deleted or being deleted are left out unless ``include_gone``: what remains
    is what still has to be deleted before the account can be changed. Raises :class:`MetaError`.
    """
    api = meta_api(account)
    try:
        templates = list(api.list_templates(account.waba_id))
    except CloudAPIError as exc:
        raise meta_error(exc) from exc
    if not include_gone:
        templates = [template for template in templates if template.status not in TEMPLATE_GONE_STATUSES]
    return sorted(templates, key=lambda template: (template.name or "", template.language or ""))
