from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from books.models import Membership, Organization, Role
from books.permissions import ALL_PERMS, BUILTIN_ROLES
from books.signals import organization_time_zone_changed


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


@transaction.atomic
def organization_update(*, organization: Organization, **fields: object) -> Organization:
    """Change the organization's profile (name, country, currency, time zone, formats …).

    A new time zone moves what is scheduled in the old one, in this transaction
    (:data:`~books.signals.organization_time_zone_changed`): the daily WhatsApp payment reminders
    would otherwise go out at 09:00 of the old zone until someone saved their schedule again. The
    zone is compared with the row, not with ``organization``, which a ModelForm has already changed
    by the time it calls this."""
    saved_zone = Organization.objects.select_for_update().values_list("time_zone", flat=True).get(pk=organization.pk)
    for name, value in fields.items():
        setattr(organization, name, value)
    organization.full_clean()
    organization.save()
    if organization.time_zone != saved_zone:
        organization_time_zone_changed.send(Organization, organization=organization, old_time_zone=saved_zone)
    return organization


def role_save(*, organization: Organization, name: str, permissions: list[str], role: Role | None = None) -> Role:
    """Create a custom role, or change one; built-in roles cannot be changed."""
    if role is not None and role.is_builtin:
        raise ValidationError(_("Built-in roles cannot be changed."))
    known = set(ALL_PERMS)
    role = role or Role(organization=organization)
    role.name = name.strip()
    role.permissions = [code for code in ALL_PERMS if code in set(permissions) & known]
    role.full_clean()
    role.save()
    return role
