"""Message templates of an organization's WhatsApp Business account: the WhatsApp side of
:mod:`templates_mgmt`.

``templates_mgmt`` never reads the business account (DESIGN.md's import direction); these
services do, and pass it the Cloud API client, the WABA and the app id. A Meta error that
``templates_mgmt`` lets through (a listing or an upload that failed) becomes a
:class:`~whatsapp.selectors.accounts.MetaError` here, so pages and the REST API show the fix hint
instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from books.models import Organization
from templates_mgmt.choices import TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.services import (
    SyncResult,
    template_clone,
    template_delete,
    template_submit,
    templates_sync,
)
from whatsapp.choices import AccountStatus
from whatsapp.client import CloudAPIError
from whatsapp.models import WhatsAppAccount
from whatsapp.selectors.accounts import account_get_live, meta_api, meta_error

#: Account states in which templates can be submitted, synced and deleted. While the account is
#: being changed its templates are being deleted wholesale (``whatsapp.services.accounts``).
TEMPLATE_STATES = (AccountStatus.CONNECTED, AccountStatus.INACTIVE)
#: Templates per page of Meta's listing when syncing (sync follows ``paging.next`` to the end).
SYNC_PAGE_SIZE = 100


@contextmanager
def _meta_errors() -> Iterator[None]:
    try:
        yield
    except CloudAPIError as exc:
        raise meta_error(exc) from exc


def template_account_get(*, organization: Organization) -> WhatsAppAccount:
    """The live account whose templates the organization manages; a ValidationError saying why not."""
    account = account_get_live(organization=organization)
    if account is None:
        raise ValidationError(_("Connect a WhatsApp Business account first."))
    if account.status not in TEMPLATE_STATES:
        raise ValidationError(
            _("Templates can't be changed while the WhatsApp Business account is %(status)s.")
            % {"status": account.get_status_display()}
        )
    return account


def account_templates_sync(*, account: WhatsAppAccount) -> SyncResult:
    """Bring the account's templates in line with Meta's list (every page)."""
    api = meta_api(account)
    with _meta_errors():
        return templates_sync(organization=account.organization, waba_id=account.waba_id, api=api, limit=SYNC_PAGE_SIZE)


def account_template_submit(*, account: WhatsAppAccount, template: MessageTemplate) -> MessageTemplate:
    """Send a draft (or a rejected, edited template) to Meta for approval."""
    api = meta_api(account)
    with _meta_errors():
        return template_submit(template=template, api=api, app_id=account.app_id)


def account_template_delete(*, account: WhatsAppAccount, template: MessageTemplate) -> MessageTemplate:
    """Delete at Meta (a draft Meta never saw is just removed); DELETION FAILED keeps Meta's reason."""
    api = meta_api(account)
    with _meta_errors():
        return template_delete(template=template, api=api)


def account_template_clone(
    *,
    account: WhatsAppAccount,
    template: MessageTemplate,
    name: str,
    submit: bool = True,
    created_by: AbstractBaseUser | None = None,
) -> tuple[MessageTemplate, ValidationError | None]:
    """A copy under ``name``, submitted for approval when ``submit``.

    The copy is saved before it is submitted, so a refusal by Meta leaves it as a draft to fix:
    the error is returned with it rather than raised.
    """
    clone = template_clone(template=template, name=name, created_by=created_by)
    if not submit:
        return clone, None
    try:
        return account_template_submit(account=account, template=clone), None
    except ValidationError as exc:
        clone.refresh_from_db()
        return clone, exc


def templates_deletion_retry() -> dict[str, int]:
    """Beat: ask Meta again to delete every template whose deletion failed (usable accounts only)."""
    counts = {"deleted": 0, "failed": 0}
    failed = (
        MessageTemplate.objects.filter(status=TemplateStatus.DELETION_FAILED)
        .select_related("organization")
        .order_by("pk")
    )
    accounts: dict[int, WhatsAppAccount | None] = {}
    for template in failed:
        if template.organization_id not in accounts:
            account = account_get_live(organization=template.organization)
            accounts[template.organization_id] = account if account and account.status in TEMPLATE_STATES else None
        account = accounts[template.organization_id]
        if account is None or account.waba_id != template.waba_id:
            continue
        try:
            account_template_delete(account=account, template=template)
        except ValidationError:
            counts["failed"] += 1
        else:
            counts["deleted"] += 1
    return counts
