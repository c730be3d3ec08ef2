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


# --- Sending notifications: an approved template per module, the module enabled ------------------

#: A body per module, with text around the fields as Meta wants (named placeholders = catalogue keys).
MODULE_BODIES: dict[str, str] = {
    "invoices": "Dear {{customer_name}}, your invoice {{invoice_number}} for {{invoice_total}} is attached and is "
    "due on {{due_date}}. Thank you for your business with us.",
    "payment_reminders": "Dear {{customer_name}}, this is a friendly reminder that {{invoice_number}} has "
    "{{balance_due}} due since {{due_date}}. Please pay it soon, thank you.",
    "sales_orders": "Dear {{customer_name}}, your sales order {{salesorder_number}} for {{order_total}} is "
    "confirmed and attached here. Thank you for your business.",
    "quotes": "Dear {{customer_name}}, your quote {{quote_number}} for {{quote_total}} is attached here for "
    "your review. Thank you for asking us.",
    "retainer_invoices": "Dear {{customer_name}}, your retainer invoice {{retainer_number}} for "
    "{{retainer_total}} is attached here for you. Thank you for your business.",
    "credit_notes": "Dear {{customer_name}}, your credit note {{creditnote_number}} for {{creditnote_total}} "
    "is attached here for you. Thank you for your business.",
    "sales_receipts": "Dear {{customer_name}}, your sales receipt {{receipt_number}} for {{receipt_total}} is "
    "attached here for you. Thank you for your business.",
    "payments_received": "Dear {{customer_name}}, we have received your payment of {{amount_received}} with "
    "reference {{payment_number}}. Thank you for your business.",
    "customer_statements": "Dear {{customer_name}}, your statement for {{statement_period}} is attached and "
    "shows {{closing_balance}} due at the end. Thank you.",
    "vendor_statements": "Dear {{vendor_name}}, our statement for {{statement_period}} is attached and shows "
    "{{closing_balance}} at the end of it. Thank you.",
    "customers": "Dear {{customer_name}}, everyone at {{organization_name}} wishes you a happy and prosperous "
    "new year. Thank you for your business.",
    "vendors": "Dear {{vendor_name}}, please note that {{organization_name}} has updated its billing address "
    "for all future invoices. Thank you.",
}


def module_template_fields(module: str, **overrides):
    """Builder fields of a utility template for ``module``: the PDF as header where the module has one."""
    from templates_mgmt.choices import AttachmentMode, HeaderType, TemplateCategory
    from templates_mgmt.modules import MODULES

    fields = {
        "name": f"{module}_notice",
        "language": "en",
        "category": TemplateCategory.UTILITY,
        "module": module,
        "header_type": HeaderType.DOCUMENT if MODULES[module].has_pdf else HeaderType.NONE,
        "attachment_mode": AttachmentMode.DYNAMIC if MODULES[module].has_pdf else "",
        "body": MODULE_BODIES[module],
        "footer": "",
        "buttons": [],
    }
    fields.update(overrides)
    return fields


def make_approved_template(account: WhatsAppAccount, module: str = "invoices", *, default: bool = True, **overrides):
    """An approved template of ``module`` (approved by hand, no Meta), set as the module's default,
    with the module enabled."""
    from templates_mgmt.models import ModuleSetting
    from templates_mgmt.services import template_create, template_set_default
    from tests.templates_mgmt.factories import approve

    template = template_create(
        organization=account.organization, waba_id=account.waba_id, **module_template_fields(module, **overrides)
    )
    approve(template)
    if default:
        template = template_set_default(template=template)
    ModuleSetting.objects.update_or_create(organization=account.organization, module=module, defaults={"enabled": True})
    return template
