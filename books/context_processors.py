from django.http import HttpRequest

from .kinds import PURCHASE_KINDS, SALES_KINDS
from .selectors import membership_list


def organization(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "current_membership": request.membership,
        "current_organization": request.organization,
        "memberships": membership_list(user=request.user),
        "sales_kinds": SALES_KINDS,
        "purchase_kinds": PURCHASE_KINDS,
    }
