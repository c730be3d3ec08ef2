"""Permission codes a role can hold, and the built-in roles every organization starts with."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Perm(models.TextChoices):
    CUSTOMERS_VIEW = "customers.view", _("Customers: view")
    CUSTOMERS_MANAGE = "customers.manage", _("Customers: create and edit")
    CUSTOMERS_COMMUNICATION = "customers.communication", _("Customers: communication (WhatsApp chat)")
    VENDORS_VIEW = "vendors.view", _("Vendors: view")
    VENDORS_MANAGE = "vendors.manage", _("Vendors: create and edit")
    VENDORS_COMMUNICATION = "vendors.communication", _("Vendors: communication (WhatsApp chat)")
    SALES_VIEW = "sales.view", _("Sales documents: view")
    SALES_MANAGE = "sales.manage", _("Sales documents: create and edit")
    PURCHASES_VIEW = "purchases.view", _("Purchases: view")
    PURCHASES_MANAGE = "purchases.manage", _("Purchases: create and edit")
    NOTIFICATIONS_SEND = "notifications.send", _("Send WhatsApp notifications")
    REPORTS_VIEW = "reports.view", _("Reports: view")
    SETTINGS_MANAGE = "settings.manage", _("Settings, integrations and templates")
    CREDITS_MANAGE = "credits.manage", _("Buy IM credits")
    USERS_MANAGE = "users.manage", _("Users and roles")


ALL_PERMS: tuple[str, ...] = tuple(Perm.values)

BUILTIN_ROLES: dict[str, tuple[str, ...]] = {
    "Admin": ALL_PERMS,
    "Accountant": tuple(
        p for p in ALL_PERMS if p not in {Perm.SETTINGS_MANAGE, Perm.USERS_MANAGE, Perm.CREDITS_MANAGE}
    ),
    "Staff": (
        Perm.CUSTOMERS_VIEW,
        Perm.VENDORS_VIEW,
        Perm.SALES_VIEW,
        Perm.SALES_MANAGE,
        Perm.PURCHASES_VIEW,
        Perm.NOTIFICATIONS_SEND,
    ),
}
