from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WhatsappConfig(AppConfig):
    name = "whatsapp"
    verbose_name = _("WhatsApp")

    def ready(self) -> None:
        from books.integrations import integration_register

        integration_register(
            key="whatsapp",
            label=_("WhatsApp"),
            description=_(
                "Connect your WhatsApp Business account, its numbers and channels, to send notifications "
                "to customers and vendors."
            ),
            url_name="whatsapp:integration",
            icon="chat",
        )

        # Messages linked to a document appear in its Comments & History (whatsapp.history).
        from books.history import history_provider_register
        from whatsapp.history import message_history

        history_provider_register(message_history)

        # The ways into the Send page (whatsapp.views.send) and the contact's "Mails & messages" tab.
        _register_books_actions()
        # The lists' bulk-action bar leads to bulk sends (whatsapp.views.bulk).
        _register_list_actions()

        # The daily payment reminders run at a time of the organization's day: they move with its zone.
        from books.signals import organization_time_zone_changed

        organization_time_zone_changed.connect(_reminders_follow_time_zone, dispatch_uid="whatsapp-reminders-time-zone")


def _reminders_follow_time_zone(sender: object, *, organization: object, **kwargs: object) -> None:
    from whatsapp.services.reminders import reminder_schedule_time_zone_sync

    reminder_schedule_time_zone_sync(organization=organization)


def _register_books_actions() -> None:
    """Menus of the books pages that lead to WhatsApp, through ``books.actions`` (books never
    imports whatsapp): "Send → WhatsApp message" on every kind a module sends (also the target of
    the form's "Save and send"), "Reminders → Send WhatsApp message" on unpaid invoices, "Send →
    WhatsApp message" on customers and vendors, "Share via → WhatsApp" on their statement tab."""
    from collections.abc import Mapping
    from urllib.parse import urlencode

    from django.urls import reverse

    from books.actions import (
        MENU_REMINDERS,
        MENU_SEND,
        MENU_SHARE_VIA,
        contact_action_register,
        contact_tab_register,
        document_action_register,
    )
    from books.choices import ContactType, DocumentKind, DocumentStatus
    from books.models import Contact, Document
    from books.permissions import Perm
    from templates_mgmt.choices import Module
    from templates_mgmt.modules import MODULES
    from whatsapp.history import contact_messages_tab

    both = (ContactType.CUSTOMER, ContactType.VENDOR)
    sent_kinds = sorted({spec.document_kind for spec in MODULES.values() if spec.document_kind})

    def document_url(document: Document) -> str:
        return reverse("whatsapp_send:document", args=[document.pk])

    def reminder_url(document: Document) -> str:
        return f"{document_url(document)}?{urlencode({'module': Module.PAYMENT_REMINDERS})}"

    def contact_url(contact: Contact, params: Mapping[str, str]) -> str:
        return reverse("whatsapp_send:contact", args=[contact.pk])

    def statement_url(contact: Contact, params: Mapping[str, str]) -> str:
        period = {key: params[key] for key in ("from", "to") if params.get(key)}
        url = reverse("whatsapp_send:statement", args=[contact.pk])
        return f"{url}?{urlencode(period)}" if period else url

    document_action_register(
        key="whatsapp",
        menu=MENU_SEND,
        label=_("WhatsApp message"),
        kinds=sent_kinds,
        url=document_url,
        perm=Perm.NOTIFICATIONS_SEND,
        when=lambda document: document.status != DocumentStatus.VOID,
        sends=True,
    )
    document_action_register(
        key="whatsapp_reminder",
        menu=MENU_REMINDERS,
        label=_("Send WhatsApp message"),
        kinds=(DocumentKind.INVOICE,),
        url=reminder_url,
        perm=Perm.NOTIFICATIONS_SEND,
        when=lambda document: not document.is_draft_or_void and document.balance > 0,
    )
    contact_action_register(
        key="whatsapp",
        menu=MENU_SEND,
        label=_("WhatsApp message"),
        contact_types=both,
        url=contact_url,
        perm=Perm.NOTIFICATIONS_SEND,
    )
    contact_action_register(
        key="whatsapp_statement",
        menu=MENU_SHARE_VIA,
        label=_("WhatsApp"),
        contact_types=both,
        url=statement_url,
        perm=Perm.NOTIFICATIONS_SEND,
    )
    contact_tab_register(key="messages", label=_("Mails & messages"), contact_types=both, render=contact_messages_tab)


def _register_list_actions() -> None:
    """The bulk-action bar of the books lists, through ``books.actions``: "Send → WhatsApp message"
    on every document list a module sends (its default module), "Reminders → Send WhatsApp
    message" on invoices (the payment reminders module), "Send → WhatsApp message" (a notice) and
    "Send → WhatsApp statement" (this month's) on customers and vendors, and a link to the
    recent bulk sends. Each is what :mod:`whatsapp.services.bulk` sends: documents of the module's
    kind, or contacts of its party."""
    from django.urls import reverse

    from books.actions import MENU_REMINDERS, MENU_SEND, list_action_register
    from books.choices import ContactType, DocumentKind
    from books.permissions import Perm
    from templates_mgmt.choices import Module
    from whatsapp.services.notifications import KIND_MODULES

    both = (ContactType.CUSTOMER, ContactType.VENDOR)
    notices = {ContactType.CUSTOMER: Module.CUSTOMERS, ContactType.VENDOR: Module.VENDORS}
    statements = {ContactType.CUSTOMER: Module.CUSTOMER_STATEMENTS, ContactType.VENDOR: Module.VENDOR_STATEMENTS}

    def summary_url(module: str) -> str:
        return reverse("whatsapp_send:bulk_new", args=[module])

    list_action_register(
        key="whatsapp_bulk",
        menu=MENU_SEND,
        label=_("WhatsApp message"),
        kinds=sorted(KIND_MODULES),
        url=lambda kind: summary_url(KIND_MODULES[kind]),
        perm=Perm.NOTIFICATIONS_SEND,
    )
    list_action_register(
        key="whatsapp_bulk_reminder",
        menu=MENU_REMINDERS,
        label=_("Send WhatsApp message"),
        kinds=(DocumentKind.INVOICE,),
        url=lambda kind: summary_url(Module.PAYMENT_REMINDERS),
        perm=Perm.NOTIFICATIONS_SEND,
    )
    list_action_register(
        key="whatsapp_bulk_notice",
        menu=MENU_SEND,
        label=_("WhatsApp message"),
        contact_types=both,
        url=lambda contact_type: summary_url(notices[contact_type]),
        perm=Perm.NOTIFICATIONS_SEND,
    )
    list_action_register(
        key="whatsapp_bulk_statement",
        menu=MENU_SEND,
        label=_("WhatsApp statement (this month)"),
        contact_types=both,
        url=lambda contact_type: summary_url(statements[contact_type]),
        perm=Perm.NOTIFICATIONS_SEND,
    )
    list_action_register(
        key="whatsapp_bulk_sends",
        menu=MENU_SEND,
        label=_("Earlier WhatsApp bulk sends"),
        kinds=sorted(KIND_MODULES),
        contact_types=both,
        url=lambda _list: reverse("whatsapp_send:bulk_list"),
        perm=Perm.NOTIFICATIONS_SEND,
        submits=False,
    )
