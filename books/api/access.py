"""Which organization an API request works in, and whether the caller's role allows it.

Every view of the books API derives from ``OrganizationViewSet``: after authentication it turns
the ``organization_id`` query parameter (as in Zoho Books' API) into the caller's active
membership, then asks the view which permission the request needs. Rows of an organization the
caller does not belong to are never found: querysets start from ``self.organization``.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.viewsets import GenericViewSet

from books.api.parsers import JSONBodyParser
from books.choices import ContactType
from books.models import Membership, Organization
from books.permissions import Perm
from books.selectors import membership_get, membership_list


@dataclass(frozen=True)
class PermPair:
    view: Perm
    manage: Perm

    def for_request(self, request: Request) -> Perm:
        return self.view if request.method in SAFE_METHODS else self.manage


CONTACT_PERMS: dict[str, PermPair] = {
    ContactType.CUSTOMER: PermPair(Perm.CUSTOMERS_VIEW, Perm.CUSTOMERS_MANAGE),
    ContactType.VENDOR: PermPair(Perm.VENDORS_VIEW, Perm.VENDORS_MANAGE),
}
# Documents are guarded by the module of their party: sales for customers, purchases for vendors.
DOCUMENT_PERMS: dict[str, PermPair] = {
    ContactType.CUSTOMER: PermPair(Perm.SALES_VIEW, Perm.SALES_MANAGE),
    ContactType.VENDOR: PermPair(Perm.PURCHASES_VIEW, Perm.PURCHASES_MANAGE),
}

_PATH_VARIABLE = re.compile(r"{(\w+)}")
_RESOURCE = re.compile(r"^/api/v[0-9]+/([^/{]+)")

ORGANIZATION_ID_PARAMETER = OpenApiParameter(
    "organization_id",
    OpenApiTypes.INT,
    OpenApiParameter.QUERY,
    required=False,
    description=gettext_lazy(
        "The organization to work in, as in Zoho Books' API. Optional when you belong to one organization; "
        "an organization you do not belong to answers 404."
    ),
)


def membership_resolve(*, user: AbstractBaseUser, organization_id: str | None) -> Membership:
    """The caller's active membership for ``organization_id``, or their only one when it is absent.

    Raises NotFound for an organization the user is not an active member of (it is invisible),
    ValidationError when the user belongs to several and did not say which, PermissionDenied
    when they belong to none.
    """
    if organization_id not in (None, ""):
        membership = membership_get(user=user, organization_id=organization_id)
        if membership is None:
            raise exceptions.NotFound(_("Organization not found."))
        return membership
    memberships = list(membership_list(user=user)[:2])
    if not memberships:
        raise exceptions.PermissionDenied(_("You are not a member of any organization."))
    if len(memberships) > 1:
        raise exceptions.ValidationError(
            {"organization_id": [_("This parameter is required: you belong to several organizations.")]}
        )
    return memberships[0]


class OrganizationSchema(AutoSchema):
    """Documents ``organization_id`` on every operation of the books API, types the ids in the
    path (``{invoice_id}``) as integers and tags each operation with its resource (``invoices``)."""

    def get_override_parameters(self) -> list[Any]:
        path_ids = [
            OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH)
            for name in _PATH_VARIABLE.findall(self.path)
        ]
        return [ORGANIZATION_ID_PARAMETER, *path_ids, *super().get_override_parameters()]

    def get_tags(self) -> list[str]:
        match = _RESOURCE.match(self.path)
        return [match.group(1)] if match else super().get_tags()


class OrganizationViewSet(GenericViewSet):
    """Base of every books API view.

    ``initial`` (after authentication: no credentials → 401) sets ``self.membership`` and
    ``self.organization`` and calls ``check_role``, which each view implements with the
    permission its request needs. Subclasses build querysets in ``organization_queryset``, which
    only runs once the organization is known.
    """

    schema = OrganizationSchema()
    parser_classes = [JSONBodyParser]
    lookup_value_regex = r"[0-9]+"
    membership: Membership
    organization: Organization

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.membership = membership_resolve(
            user=request.user, organization_id=request.query_params.get("organization_id")
        )
        self.organization = self.membership.organization
        self.check_role(request)

    def check_role(self, request: Request) -> None:
        """Raise PermissionDenied unless the caller's role allows ``request``."""
        raise NotImplementedError

    def require(self, perm: Perm) -> None:
        if not self.membership.has_perm(perm):
            raise exceptions.PermissionDenied(
                _("Your role in %(organization)s does not allow this (%(perm)s).")
                % {"organization": self.organization.name, "perm": perm.label}
            )

    def organization_queryset(self) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no organization
            return self.queryset.none()
        return self.organization_queryset()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "organization": getattr(self, "organization", None)}

    @property
    def writing(self) -> bool:
        return self.request.method not in SAFE_METHODS
