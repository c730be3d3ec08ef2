"""Rows of the WhatsApp app for tests that do not need Meta (or the sandbox) to create them."""

import itertools

from django.utils import timezone

from books.models import Organization
from whatsapp.choices import AccountStatus, Audience, Category, Direction, MessageStatus, MessageType
from whatsapp.models import Channel, Message, PhoneNumber, WhatsAppAccount

TOKEN = "EAATestAccessToken0000000000000000000000"
_ids = itertools.count(1)


def make_account(
    organization: Organization,
    *,
    waba_id: str | None = None,
    token: str = TOKEN,
    status: str = AccountStatus.CONNECTED,
    numbers: int = 2,
    channels: bool = True,
) -> WhatsAppAccount:
    """A connected account with ``numbers`` verified numbers; the first is the default and serves every channel."""
    n = next(_ids)
    account = WhatsAppAccount.objects.create(
        organization=organization,
        waba_id=waba_id or f"1{n:014d}",
        app_id=f"2{n:014d}",
        name=f"{organization.name} WhatsApp",
        access_token=token,
        status=status,
    )
    for index in range(1, numbers + 1):
        PhoneNumber.objects.create(
            organization=organization,
            account=account,
            phone_number_id=f"3{n:011d}{index:03d}",
            display_phone_number=f"+91 22 4000 {n % 1000:03d}{index}",
            verified_name=organization.name,
            code_verification_status="VERIFIED",
            quality_rating="GREEN",
            status="CONNECTED",
            throughput_level="STANDARD",
            messaging_limit_tier="TIER_1K",
            synced_at=timezone.now(),
        )
    first = account.phone_numbers.order_by("phone_number_id").first()
    if first is not None:
        account.default_phone_number = first
        account.save(update_fields=["default_phone_number"])
        if channels:
            for audience, category in (
                (Audience.CUSTOMER, Category.UTILITY),
                (Audience.CUSTOMER, Category.MARKETING),
                (Audience.VENDOR, Category.UTILITY),
            ):
                Channel.objects.create(
                    organization=organization, account=account, audience=audience, category=category, phone_number=first
                )
    return account


def make_message(
    account: WhatsAppAccount,
    *,
    phone: str = "+919820012345",
    status: str = MessageStatus.SENT,
    wamid: str | None = None,
    direction: str = Direction.OUTBOUND,
    message_type: str = MessageType.TEMPLATE,
    **fields,
) -> Message:
    """An outbound template message that reached ``status`` (sent by default, with a wamid)."""
    now = timezone.now()
    stamps = {"queued_at": now} if direction == Direction.OUTBOUND else {"received_at": now}
    if status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ):
        stamps["sent_at"] = now
    if status in (MessageStatus.DELIVERED, MessageStatus.READ):
        stamps["delivered_at"] = now
    if status == MessageStatus.READ:
        stamps["read_at"] = now
    if wamid is None and status not in (MessageStatus.QUEUED, MessageStatus.SENDING):
        wamid = f"wamid.TEST{next(_ids):020d}"
    return Message.objects.create(
        organization=account.organization,
        account=account,
        phone_number=account.default_phone_number,
        direction=direction,
        message_type=message_type,
        phone=phone,
        status=status,
        wamid=wamid,
        **{**stamps, **fields},
    )


def make_sandbox_account(
    organization: Organization, *, waba_id: str, app_id: str, token: str, name: str = "Acme Books"
) -> WhatsAppAccount:
    """A WABA at "Meta" (the sandbox: numbers from ``sandbox_setup``, app subscribed, so its
    webhooks come) and the hub's side of it, connected with the first verified number as default.

    Needs the sandbox enabled (the ``sandbox_live`` fixture)."""
    from whatsapp.sandbox import services as sandbox
    from whatsapp.sandbox.management.commands.sandbox_setup import number_specs

    meta = sandbox.business_account_setup(
        waba_id=waba_id, app_id=app_id, access_token=token, name=name, verified_name=name, numbers=number_specs(waba_id)
    )
    sandbox.account_subscribe(account=meta)
    hub = WhatsAppAccount.objects.create(
        organization=organization, waba_id=waba_id, app_id=app_id, name=name, access_token=token
    )
    phone = meta.phone_numbers.filter(registered=True).order_by("phone_number_id").first()
    hub.default_phone_number = PhoneNumber.objects.create(
        organization=organization,
        account=hub,
        phone_number_id=phone.phone_number_id,
        display_phone_number=phone.display_phone_number,
        code_verification_status="VERIFIED",
    )
    hub.save(update_fields=["default_phone_number"])
    return hub
