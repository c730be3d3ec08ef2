"""Django admin for the books: every model, scoped to the organizations a staff user administers.

Superusers see every row. Any other staff user sees and edits only the rows of organizations in
which they hold an active membership whose role grants ``settings.manage``; another
organization's row does not exist for them (its change page redirects to the admin index with
Django's "doesn't exist" message). The scoping lives in ``OrganizationScopedMixin`` and is used by
every ModelAdmin and inline below.

Documents are written by ``books.services.documents`` only: their admin is read-only except for
the free-text fields, and "Mark as sent" and "Void" are admin actions that call the services.
Other apps add document actions with ``document_admin_action_register``.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from books.choices import DocumentStatus
from books.formatting import money_format
from books.models import (
    Allocation,
    Contact,
    ContactPerson,
    Document,
    LineItem,
    Membership,
    Notification,
    NotificationRead,
    NumberSeries,
    Organization,
    Role,
)
from books.permissions import Perm
from books.phone import phone_display, phone_normalize
from books.services.documents import document_issue, document_update, document_void
from books.services.organizations import organization_create, organization_update

# --- Scoping -----------------------------------------------------------------------------------

# How each model reaches its organization, as a queryset lookup.
ORGANIZATION_LOOKUPS: dict[type[models.Model], str] = {
    Organization: "pk",
    Role: "organization",
    Membership: "organization",
    Contact: "organization",
    ContactPerson: "contact__organization",
    NumberSeries: "organization",
    Document: "organization",
    LineItem: "document__organization",
    Allocation: "organization",
    Notification: "organization",
    NotificationRead: "notification__organization",
}


def admin_organization_ids(request: HttpRequest) -> frozenset[int] | None:
    """Organizations the user may administer here; ``None`` means all of them (a superuser)."""
    user = request.user
    if user.is_superuser:
        return None
    cached = getattr(request, "_books_admin_organization_ids", None)
    if cached is None:
        # Checked in Python, not with a JSON lookup, so that SQLite (``make run``) works too.
        memberships = Membership.objects.filter(user_id=user.pk, is_active=True).select_related("role")
        cached = frozenset(m.organization_id for m in memberships if m.has_perm(Perm.SETTINGS_MANAGE))
        request._books_admin_organization_ids = cached
    return cached


def organization_scope(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    """``queryset`` reduced to the rows of the organizations the user administers."""
    organization_ids = admin_organization_ids(request)
    if organization_ids is None:
        return queryset
    if queryset.model is get_user_model():
        return queryset.filter(memberships__organization__in=organization_ids).distinct()
    lookup = ORGANIZATION_LOOKUPS.get(queryset.model)
    if lookup is None:  # a model nobody said how to scope: show nothing rather than everything
        return queryset.none()
    return queryset.filter(**{f"{lookup}__in": organization_ids})


def organization_id_of(obj: models.Model) -> int | None:
    """The id of the organization ``obj`` belongs to, following ``ORGANIZATION_LOOKUPS``."""
    *path, last = ORGANIZATION_LOOKUPS[type(obj)].split("__")
    for name in path:
        obj = getattr(obj, name)
    return obj.pk if last == "pk" else getattr(obj, f"{last}_id")


class OrganizationScopedMixin:
    """Rows, choices and permissions limited to the organizations the user administers.

    For ModelAdmins and inlines alike. Non-superusers are allowed by their memberships (a role
    with ``settings.manage``), not by Django's model permissions.
    """

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return organization_scope(super().get_queryset(request), request)

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if "queryset" not in kwargs and admin_organization_ids(request) is not None:
            kwargs["queryset"] = organization_scope(db_field.remote_field.model._default_manager.all(), request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if "queryset" not in kwargs and admin_organization_ids(request) is not None:
            kwargs["queryset"] = organization_scope(db_field.remote_field.model._default_manager.all(), request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def may_administer(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        organization_ids = admin_organization_ids(request)
        if organization_ids is None:
            return True
        if not organization_ids:
            return False
        # Inlines are asked about their parent object, which the parent's admin has checked.
        if obj is None or not isinstance(obj, self.model):
            return True
        return organization_id_of(obj) in organization_ids

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.may_administer(request)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.may_administer(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.may_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.may_administer(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.may_administer(request, obj)


class ScopedAdmin(OrganizationScopedMixin, admin.ModelAdmin):
    pass


class ReadOnlyScopedAdmin(ScopedAdmin):
    """Rows written by the services only: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class ReadOnlyScopedTabularInline(OrganizationScopedMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


ORGANIZATION_FILTER = ("organization", admin.RelatedOnlyFieldListFilter)


def _money(document: Document, amount: Any) -> str:
    return money_format(amount, document.currency, organization=document.organization)


# --- Organizations, roles, memberships, number series ------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(ScopedAdmin):
    list_display = ("name", "country", "currency", "time_zone", "language", "tax_id", "created_at")
    list_filter = ("country", "currency", "language")
    search_fields = ("name", "tax_id", "email")
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("name", "country", "currency", "time_zone", "phone_region", "language", "date_format")}),
        (_("Contact details"), {"fields": ("email", "phone", "address", "tax_id")}),
        (None, {"fields": ("created_at",)}),
    )

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Organization, form: forms.ModelForm, change: bool) -> None:
        if change:
            # Through the service, so what is scheduled in the organization's time zone follows it.
            organization_update(organization=obj)
            return
        # Through the service, so the new organization gets its built-in roles.
        fields = {f.name: getattr(obj, f.name) for f in Organization._meta.concrete_fields if f.name != "id"}
        fields.pop("created_at")
        created = organization_create(**fields)
        obj.pk, obj.created_at = created.pk, created.created_at


class RoleAdminForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        label=_("permissions"), choices=Perm.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Role
        fields = ("organization", "name", "permissions")


@admin.register(Role)
class RoleAdmin(ScopedAdmin):
    form = RoleAdminForm
    list_display = ("name", "organization", "is_builtin", "permission_count")
    list_filter = ("is_builtin", ORGANIZATION_FILTER)
    search_fields = ("name", "organization__name")
    list_select_related = ("organization",)

    @admin.display(description=_("permissions"))
    def permission_count(self, obj: Role) -> int:
        return len(obj.permissions)

    def get_readonly_fields(self, request: HttpRequest, obj: Role | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # Built-in roles are fixed: editing Admin could lock every administrator out.
        return ("organization", "name", "permissions") if obj.is_builtin else ("organization",)

    def has_delete_permission(self, request: HttpRequest, obj: Role | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_builtin)


class MembershipAdminForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "organization", "role", "is_active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        role = cleaned.get("role")
        if organization is not None and role is not None and role.organization_id != organization.pk:
            self.add_error("role", _("Choose a role of %(organization)s.") % {"organization": organization})
        return cleaned


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    form = MembershipAdminForm
    list_display = ("user", "organization", "role", "is_active", "created_at")
    list_filter = ("is_active", ORGANIZATION_FILTER, "role__name")
    search_fields = ("user__username", "user__email", "organization__name", "role__name")
    list_select_related = ("user", "organization", "role")
    readonly_fields = ("created_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        return ("user", "organization", "created_at") if obj is not None else ("created_at",)


@admin.register(NumberSeries)
class NumberSeriesAdmin(ScopedAdmin):
    list_display = ("organization", "kind", "prefix", "next_number", "padding", "next_value")
    list_filter = ("kind", ORGANIZATION_FILTER)
    search_fields = ("prefix", "organization__name")
    list_select_related = ("organization",)

    @admin.display(description=_("next number"))
    def next_value(self, obj: NumberSeries) -> str:
        return str(obj)

    def get_readonly_fields(self, request: HttpRequest, obj: NumberSeries | None = None) -> tuple[str, ...]:
        return ("organization", "kind") if obj is not None else ()


# --- Contacts and their persons ----------------------------------------------------------------


class ContactPersonAdminForm(forms.ModelForm):
    """Phones typed here are stored in E.164, read with the organization's default region."""

    class Meta:
        model = ContactPerson
        fields = (
            "contact",
            "salutation",
            "first_name",
            "last_name",
            "email",
            "mobile",
            "phone",
            "whatsapp_enabled",
            "is_primary",
            "language",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        contact = cleaned.get("contact")
        if contact is None and self.instance.contact_id is not None:
            contact = self.instance.contact
        # A new contact whose own form is invalid has no organization yet; its errors show first.
        if contact is None or contact.organization_id is None:
            return cleaned
        region = contact.organization.phone_region
        for name in ("phone", "mobile"):
            # Only what was typed: a number imported from elsewhere stays until someone fixes it.
            if name in cleaned and name in self.changed_data:
                try:
                    cleaned[name] = phone_normalize(cleaned[name], region=region)
                except ValidationError as exc:
                    self.add_error(name, exc)
        return cleaned

    def _get_validation_exclusions(self) -> set[str]:
        # "One primary person per contact" is kept by saving (the previous primary is unset
        # first), not refused by validation, so that the primary can move in one submit.
        return {*super()._get_validation_exclusions(), "contact"}


class ContactPersonInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        primaries = [
            form
            for form in self.forms
            if form.cleaned_data.get("is_primary") and not form.cleaned_data.get("DELETE", False)
        ]
        if len(primaries) > 1:
            raise ValidationError(_("Mark only one person as the primary contact."))


def _persons_save(persons: Iterable[ContactPerson], *, contact: Contact) -> None:
    """Save persons keeping exactly one primary per contact (as the contact services do)."""
    with transaction.atomic():
        for person in sorted(persons, key=lambda p: p.is_primary):  # the new primary last
            if person.is_primary:
                contact.persons.filter(is_primary=True).exclude(pk=person.pk).update(is_primary=False)
            person.save()
        if not contact.persons.filter(is_primary=True).exists():
            first = contact.persons.order_by("id").first()
            if first is not None:
                first.is_primary = True
                first.save(update_fields=["is_primary"])


class ContactPersonInline(OrganizationScopedMixin, admin.TabularInline):
    model = ContactPerson
    form = ContactPersonAdminForm
    formset = ContactPersonInlineFormSet
    extra = 0
    fields = (
        "salutation",
        "first_name",
        "last_name",
        "email",
        "mobile",
        "phone",
        "whatsapp_enabled",
        "is_primary",
        "language",
    )


@admin.register(Contact)
class ContactAdmin(ScopedAdmin):
    inlines = (ContactPersonInline,)
    list_display = (
        "display_name",
        "contact_type",
        "organization",
        "company_name",
        "primary_mobile",
        "whatsapp_enabled",
        "is_active",
    )
    list_filter = ("contact_type", "whatsapp_enabled", "is_active", ORGANIZATION_FILTER)
    search_fields = ("display_name", "company_name", "email", "tax_id", "persons__mobile", "persons__first_name")
    list_select_related = ("organization",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("organization", "contact_type", "display_name", "company_name", "email")}),
        (
            _("Billing"),
            {"fields": ("currency", "payment_terms_days", "billing_address", "tax_id", "language")},
        ),
        (_("Communication"), {"fields": ("whatsapp_enabled", "notes", "is_active")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("persons")

    def get_readonly_fields(self, request: HttpRequest, obj: Contact | None = None) -> tuple[str, ...]:
        if obj is None:
            return self.readonly_fields
        # Documents are addressed to a party of one organization: neither may change under them.
        fixed = ("organization", "contact_type") if obj.documents.exists() else ("organization",)
        return (*fixed, *self.readonly_fields)

    @admin.display(description=_("mobile"))
    def primary_mobile(self, obj: Contact) -> str:
        person = obj.primary_person
        if person is None or not person.mobile:
            return ""
        if not person.mobile_is_valid:
            return gettext("%(mobile)s (invalid number)") % {"mobile": person.mobile}
        return phone_display(person.mobile)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is not ContactPerson:
            super().save_formset(request, form, formset, change)
            return
        persons = formset.save(commit=False)
        for person in formset.deleted_objects:
            person.delete()
        _persons_save(persons, contact=form.instance)
        formset.save_m2m()


@admin.register(ContactPerson)
class ContactPersonAdmin(ScopedAdmin):
    form = ContactPersonAdminForm
    list_display = ("name", "contact", "mobile_display", "mobile_is_valid", "email", "whatsapp_enabled", "is_primary")
    list_filter = ("whatsapp_enabled", "is_primary", ("contact__organization", admin.RelatedOnlyFieldListFilter))
    search_fields = ("first_name", "last_name", "email", "mobile", "phone", "contact__display_name")
    list_select_related = ("contact", "contact__organization")
    readonly_fields = ("created_at",)

    @admin.display(description=_("mobile"))
    def mobile_display(self, obj: ContactPerson) -> str:
        return phone_display(obj.mobile)

    @admin.display(description=_("valid mobile"), boolean=True)
    def mobile_is_valid(self, obj: ContactPerson) -> bool:
        return obj.mobile_is_valid

    def get_readonly_fields(self, request: HttpRequest, obj: ContactPerson | None = None) -> tuple[str, ...]:
        return ("contact", "created_at") if obj is not None else ("created_at",)

    def save_model(self, request: HttpRequest, obj: ContactPerson, form: forms.ModelForm, change: bool) -> None:
        _persons_save([obj], contact=obj.contact)


# --- Documents ---------------------------------------------------------------------------------


class LineItemInline(ReadOnlyScopedTabularInline):
    model = LineItem
    fields = ("position", "item", "description", "quantity", "rate", "tax_percent", "amount", "tax_amount")
    readonly_fields = fields


class AllocationOutInline(ReadOnlyScopedTabularInline):
    model = Allocation
    fk_name = "source"
    verbose_name = _("applied to")
    verbose_name_plural = _("applied to")
    fields = ("target", "amount", "date")
    readonly_fields = fields


class AllocationInInline(ReadOnlyScopedTabularInline):
    model = Allocation
    fk_name = "target"
    verbose_name = _("payment or credit applied")
    verbose_name_plural = _("payments and credits applied")
    fields = ("source", "amount", "date")
    readonly_fields = fields


# What the admin may change on a document; everything else follows from the services.
DOCUMENT_EDITABLE_FIELDS = ("reference_number", "notes", "terms")


@admin.register(Document)
class DocumentAdmin(ScopedAdmin):
    list_display = (
        "number",
        "kind",
        "contact",
        "organization",
        "date",
        "due_date",
        "status_display",
        "total_display",
        "balance_display",
    )
    list_filter = ("kind", "status", ORGANIZATION_FILTER)
    search_fields = ("number", "reference_number", "contact__display_name")
    list_select_related = ("organization", "contact")
    date_hierarchy = "date"
    actions = ("mark_as_sent", "void")
    inlines = (LineItemInline, AllocationOutInline, AllocationInInline)
    fieldsets = (
        (None, {"fields": ("organization", "kind", "number", "contact", "status_display")}),
        (_("Dates"), {"fields": ("date", "due_date")}),
        (_("Amounts"), {"fields": ("currency", "subtotal", "tax_total", "total", "balance")}),
        (_("Details"), {"fields": ("reference_number", "payment_mode", "notes", "terms", "share_with")}),
        (None, {"fields": ("created_by", "created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> tuple[str, ...]:
        names = [f.name for f in Document._meta.get_fields() if (f.concrete or f.many_to_many) and f.name != "id"]
        return (*(n for n in names if n not in DOCUMENT_EDITABLE_FIELDS), "status_display")

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False  # documents are created in the app or the API, numbered and totalled there

    def has_change_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return super().has_change_permission(request, obj) and not (
            obj is not None and obj.status == DocumentStatus.VOID
        )

    def has_delete_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False  # void instead: deleting would leave payments and balances behind

    def save_model(self, request: HttpRequest, obj: Document, form: forms.ModelForm, change: bool) -> None:
        document_update(document=obj, **{name: form.cleaned_data[name] for name in form.changed_data})

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj: Document) -> str:
        return obj.effective_status_label

    @admin.display(description=_("total"), ordering="total")
    def total_display(self, obj: Document) -> str:
        return _money(obj, obj.total)

    @admin.display(description=_("balance"), ordering="balance")
    def balance_display(self, obj: Document) -> str:
        return _money(obj, obj.balance)

    @admin.action(description=_("Mark as sent"), permissions=["change"])
    def mark_as_sent(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        issued = 0
        for document in queryset.order_by("id"):
            if document.status != DocumentStatus.DRAFT:
                self.message_user(
                    request, gettext("%(number)s is not a draft.") % {"number": document.number}, messages.WARNING
                )
                continue
            try:
                document_issue(document=document)
            except ValidationError as exc:
                self.message_user(request, f"{document.number}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                issued += 1
        if issued:
            self.message_user(
                request,
                ngettext("%(count)d document marked as sent.", "%(count)d documents marked as sent.", issued)
                % {"count": issued},
                messages.SUCCESS,
            )

    @admin.action(description=pgettext_lazy("action", "Void"), permissions=["change"])
    def void(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        voided = 0
        for document in queryset.order_by("id"):
            if document.status == DocumentStatus.VOID:
                continue
            try:
                document_void(document=document)
            except ValidationError as exc:
                self.message_user(request, f"{document.number}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                voided += 1
        if voided:
            self.message_user(
                request,
                ngettext("%(count)d document voided.", "%(count)d documents voided.", voided) % {"count": voided},
                messages.SUCCESS,
            )


def document_admin_action_register(action: Callable[..., Any]) -> Callable[..., Any]:
    """Add an admin action to the Document list without ``books`` importing the app that provides
    it (e.g. "Send by WhatsApp" from ``whatsapp/admin.py``). Usable as a decorator; registering
    the same function twice adds it once."""
    if action not in DocumentAdmin.actions:
        DocumentAdmin.actions = (*DocumentAdmin.actions, action)
    return action


@admin.register(LineItem)
class LineItemAdmin(ReadOnlyScopedAdmin):
    list_display = ("item", "document", "quantity", "rate", "tax_percent", "amount", "tax_amount")
    list_filter = (("document__organization", admin.RelatedOnlyFieldListFilter), "document__kind")
    search_fields = ("item", "description", "document__number")
    list_select_related = ("document", "document__organization")


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyScopedAdmin):
    list_display = ("source", "target", "amount", "date", "organization")
    list_filter = (ORGANIZATION_FILTER, "source__kind")
    search_fields = ("source__number", "target__number", "source__contact__display_name")
    list_select_related = ("source", "target", "organization")
    date_hierarchy = "date"


# --- Notifications (the bell) ------------------------------------------------------------------


class NotificationReadInline(ReadOnlyScopedTabularInline):
    model = NotificationRead
    fields = ("user", "read_at")
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(ReadOnlyScopedAdmin):
    """Raised by the apps' services (low credits, a new chat…); read-only here."""

    list_display = ("title", "kind", "organization", "user", "created_at")
    list_filter = ("kind", ORGANIZATION_FILTER)
    search_fields = ("title", "body", "kind")
    list_select_related = ("organization", "user")
    date_hierarchy = "created_at"
    inlines = (NotificationReadInline,)


@admin.register(NotificationRead)
class NotificationReadAdmin(ReadOnlyScopedAdmin):
    list_display = ("notification", "user", "read_at")
    list_filter = (("notification__organization", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("notification__title", "user__username")
    list_select_related = ("notification", "user")
