"""Template tags of IM credits.

{% load credits_tags %}
{{ balance.available|credits:organization }}   1,234.5 (the organization's digit grouping)
{% credits_card %}                             the "IM credits" card of Settings → WhatsApp
"""

from decimal import Decimal
from typing import Any

from django import template

from books.formatting import money_format
from books.models import Organization
from books.permissions import Perm
from credits.formatting import credits_format
from credits.selectors import credit_balance_get

register = template.Library()


@register.filter
def credits(value: Decimal | None, organization: Organization | None) -> str:
    """An amount of credits as the organization's locale writes numbers (``1,00,000.5`` in India)."""
    if value is None:
        return ""
    return credits_format(value, organization=organization)


@register.inclusion_tag("credits/_whatsapp_card.html", takes_context=True)
def credits_card(context: template.Context) -> dict[str, Any]:
    """The organization's available credits and the way to buy more, for other apps' pages."""
    request = context["request"]
    organization = request.organization
    membership = request.membership
    return {
        "organization": organization,
        "balance": credit_balance_get(organization=organization),
        "can_buy": bool(membership) and membership.has_perm(Perm.CREDITS_MANAGE),
        "can_read": bool(membership)
        and any(membership.has_perm(perm) for perm in (Perm.CREDITS_MANAGE, Perm.REPORTS_VIEW)),
    }


@register.filter
def purchase_money(amount: Decimal | None, purchase: Any) -> str:
    """An amount in the purchase's currency (which was the organization's when it was bought)."""
    if amount is None:
        return ""
    return money_format(amount, purchase.currency, organization=purchase.organization)
