"""Settings: the organization's profile, its users and roles.

URL names (namespace ``books``): ``settings``, ``settings_organization``, ``settings_roles``,
``settings_role_create``, ``settings_role_edit``. The profile needs SETTINGS_MANAGE; users and
roles need USERS_MANAGE; the index needs either and shows what the user may open, including the
integrations other apps registered in :mod:`books.integrations`.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from books.forms.settings import OrganizationForm, RoleForm, permission_groups
from books.integrations import integration_list
from books.models import Membership, Organization, Role
from books.permissions import ALL_PERMS, Perm
from books.services.organizations import organization_update, role_save
from books.views.access import member_required


@member_required()
def settings_index(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    can_settings = bool(membership) and membership.has_perm(Perm.SETTINGS_MANAGE)
    can_users = bool(membership) and membership.has_perm(Perm.USERS_MANAGE)
    if not (can_settings or can_users):
        raise PermissionDenied
    return render(
        request,
        "books/settings/index.html",
        {
            "nav": "settings",
            "can_settings": can_settings,
            "can_users": can_users,
            # Integrations are settings: only SETTINGS_MANAGE may open them.
            "integrations": integration_list() if can_settings else [],
        },
    )


@member_required(Perm.SETTINGS_MANAGE)
def settings_organization(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    # A fresh row: a failed POST must not leave the request's organization half-edited.
    instance = Organization.objects.get(pk=organization.pk)
    form = OrganizationForm(request.POST or None, instance=instance)
    if request.method == "POST":
        if form.is_valid():
            organization_update(organization=instance, **form.cleaned_data)
            messages.success(request, _("The organization profile was saved."))
            return redirect("books:settings_organization")
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
    return render(request, "books/settings/organization.html", {"nav": "settings", "form": form})


@member_required(Perm.USERS_MANAGE)
def settings_roles(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    members = Membership.objects.filter(organization=organization).select_related("user", "role")
    roles = Role.objects.filter(organization=organization).annotate(member_count=Count("memberships"))
    labels = {code: short for _group, perms in permission_groups() for code, short in perms}
    role_rows = [
        {
            "role": role,
            "all": set(ALL_PERMS) <= set(role.permissions),
            "groups": [
                (group, [labels[code] for code, _short in perms if code in role.permissions])
                for group, perms in permission_groups()
                if any(code in role.permissions for code, _short in perms)
            ],
        }
        for role in roles
    ]
    return render(
        request,
        "books/settings/roles.html",
        {"nav": "settings", "members": members, "role_rows": role_rows},
    )


def _role_page(request: HttpRequest, role: Role | None) -> HttpResponse:
    organization = request.organization
    if role is not None and role.is_builtin and request.method == "POST":
        raise PermissionDenied  # built-in roles are read-only
    form = RoleForm(request.POST or None, instance=role or Role(), organization=organization)
    if request.method == "POST":
        if form.is_valid():
            saved = role_save(
                organization=organization,
                role=role,
                name=form.cleaned_data["name"],
                permissions=form.cleaned_data["permissions"],
            )
            messages.success(request, _("The role “%(name)s” was saved.") % {"name": saved.name})
            return redirect("books:settings_roles")
        messages.error(request, _("Nothing was saved. Check the highlighted fields."))
    return render(request, "books/settings/role_form.html", {"nav": "settings", "form": form, "role": role})


@member_required(Perm.USERS_MANAGE)
def settings_role_create(request: HttpRequest) -> HttpResponse:
    return _role_page(request, None)


@member_required(Perm.USERS_MANAGE)
def settings_role_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _role_page(request, get_object_or_404(Role, pk=pk, organization=request.organization))


urlpatterns = [
    path("settings/", settings_index, name="settings"),
    path("settings/organization/", settings_organization, name="settings_organization"),
    path("settings/roles/", settings_roles, name="settings_roles"),
    path("settings/roles/new/", settings_role_create, name="settings_role_create"),
    path("settings/roles/<int:pk>/edit/", settings_role_edit, name="settings_role_edit"),
]
