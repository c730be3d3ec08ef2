from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from books.models import Membership, Organization, Role
from books.permissions import BUILTIN_ROLES


@transaction.atomic
def organization_create(
    *,
    name: str,
    country: str,
    currency: str,
    time_zone: str,
    phone_region: str = "",
    date_format: str | None = None,
    owner: AbstractBaseUser | None = None,
    **extra: object,
) -> Organization:
    """Create an organization with its built-in roles; the owner (if any) becomes its Admin."""
    organization = Organization(
        name=name,
        country=country.upper(),
        currency=currency.upper(),
        time_zone=time_zone,
        phone_region=(phone_region or country).upper(),
        **extra,
    )
    if date_format:
        organization.date_format = date_format
    organization.full_clean()
    organization.save()
    roles = {
        role_name: Role.objects.create(
            organization=organization, name=role_name, is_builtin=True, permissions=list(perms)
        )
        for role_name, perms in BUILTIN_ROLES.items()
    }
    if owner is not None:
        Membership.objects.create(user=owner, organization=organization, role=roles["Admin"])
    return organization


def membership_add(*, organization: Organization, user: AbstractBaseUser, role_name: str = "Accountant") -> Membership:
    """Give ``user`` access to ``organization`` with the named role (idempotent)."""
    role = Role.objects.get(organization=organization, name=role_name)
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role, "is_active": True}
    )
    return membership
