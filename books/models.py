import datetime
import zoneinfo
from decimal import Decimal
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from .choices import ContactType, DateFormat, DocumentKind, DocumentStatus, Language, PaymentMode
from .kinds import KINDS, KindSpec
from .permissions import Perm

# One project-wide precision for money (see STYLE.md): amounts to the cent, rates to the cent,
# quantities to a thousandth, tax rates to a hundredth of a percent.
MONEY = {"max_digits": 18, "decimal_places": 2}
QUANTITY = {"max_digits": 14, "decimal_places": 3}
PERCENT = {"max_digits": 5, "decimal_places": 2}
ZERO = Decimal("0.00")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone (e.g. Asia/Kolkata)."), params={"value": value})


class Organization(models.Model):
    """A business that keeps its books in the hub: the tenant boundary.

    Every other row belongs to exactly one organization, and every read made for a user is
    scoped to the organizations that user is a member of. Country, currency, time zone and
    date format decide how amounts, dates and phone numbers are read and shown.
    """

    name = models.CharField(_("name"), max_length=200)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166-1 alpha-2 code, e.g. IN."))
    currency = models.CharField(_("base currency"), max_length=3, help_text=_("ISO 4217 code, e.g. INR."))
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_time_zone])
    phone_region = models.CharField(
        _("default phone region"),
        max_length=2,
        help_text=_("Region used to read phone numbers typed without a country code (ISO 3166-1 alpha-2)."),
    )
    date_format = models.CharField(_("date format"), max_length=16, choices=DateFormat, default=DateFormat.DMY_SLASH)
    language = models.CharField(_("language"), max_length=8, choices=Language, default=Language.ENGLISH)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    address = models.TextField(_("address"), blank=True)
    tax_id = models.CharField(_("tax id"), max_length=32, blank=True, help_text=_("GSTIN, VAT or tax number."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def locale(self) -> str:
        """Babel locale for amounts and dates, e.g. ``en_IN`` (lakh digit grouping)."""
        return f"{self.language.split('_')[0]}_{self.country}"

    def today(self) -> datetime.date:
        """Today's date in the organization's time zone (due dates are calendar dates there)."""
        return timezone.localdate(timezone=self.tzinfo)


class Role(models.Model):
    """A named set of permissions within one organization.

    Admin, Accountant and Staff are created with every organization and cannot be deleted;
    administrators add custom roles. The Communication permissions for customers and vendors
    decide who may chat with them over WhatsApp.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(_("name"), max_length=100)
    is_builtin = models.BooleanField(_("built-in"), default=False, editable=False)
    permissions = models.JSONField(_("permissions"), default=list, blank=True, help_text=_("Permission codes."))

    class Meta:
        ordering = ["organization", "-is_builtin", "name"]
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="role_unique_name_per_org")]

    def __str__(self) -> str:
        return self.name

    def grants(self, perm: str) -> bool:
        return perm in self.permissions


class Membership(models.Model):
    """A user's access to one organization, through one role."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["organization", "user"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"

    def has_perm(self, perm: Perm | str) -> bool:
        return self.is_active and self.role.grants(str(perm))


class ReadInBulk(models.Model):
    """A model whose rows are read by the thousand (a bulk send's documents, contacts and people).

    ``from_db`` puts the loaded values in the instance's ``__dict__`` at once, as Django's
    positional constructor would one ``setattr`` at a time (the rows' fields have no descriptor
    that does more than store the value): a tenth of writing a bulk send went to that. With any
    ``pre_init``/``post_init`` receiver, Django's own ``from_db`` runs, so they are still called.
    """

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db: str | None, field_names: list[str], values: tuple[Any, ...]) -> Self:
        if pre_init.receivers or post_init.receivers:
            return super().from_db(db, field_names, values)
        instance = cls.__new__(cls)
        instance.__dict__.update(zip(field_names, values, strict=True))  # the attnames, in the values' order
        state = ModelState()
        state.adding, state.db = False, db
        instance._state = state
        return instance


class Contact(ReadInBulk):
    """A customer or a vendor of the organization.

    Phone numbers live on the contact's persons (one of them primary, as in Zoho Books). The
    WhatsApp flag here is the contact-level communication channel: with it off, no person of
    this contact receives WhatsApp messages, whatever their own flag says.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts")
    contact_type = models.CharField(_("type"), max_length=10, choices=ContactType)
    display_name = models.CharField(_("display name"), max_length=200)
    company_name = models.CharField(_("company name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True, help_text=_("Defaults to the base currency."))
    payment_terms_days = models.PositiveSmallIntegerField(
        _("payment terms (days)"), default=15, help_text=_("Days from the document date to its due date.")
    )
    billing_address = models.TextField(_("billing address"), blank=True)
    tax_id = models.CharField(_("tax id"), max_length=32, blank=True)
    language = models.CharField(_("preferred language"), max_length=8, choices=Language, default=Language.ENGLISH)
    whatsapp_enabled = models.BooleanField(_("WhatsApp"), default=False, help_text=_("Communication channel."))
    notes = models.TextField(_("notes"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [models.Index(fields=["organization", "contact_type", "display_name"], name="contact_org_type_name")]

    def __str__(self) -> str:
        return self.display_name

    @cached_property
    def primary_person(self) -> "ContactPerson | None":
        persons = list(self.persons.all())  # uses prefetch_related("persons") when present
        return next((p for p in persons if p.is_primary), persons[0] if persons else None)

    @property
    def effective_currency(self) -> str:
        return self.currency or self.organization.currency


class ContactPerson(ReadInBulk):
    """A person at a customer or vendor who can receive documents and messages.

    ``mobile`` and ``phone`` hold E.164 numbers (``+919820012345``) normalised with the
    organization's default region when they are entered. Rows imported from elsewhere may
    carry a number that does not parse; ``mobile_is_valid`` says so and sending refuses it.
    """

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="persons")
    salutation = models.CharField(_("salutation"), max_length=16, blank=True)
    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("work phone"), max_length=32, blank=True)
    mobile = models.CharField(_("mobile"), max_length=32, blank=True)
    is_primary = models.BooleanField(_("primary contact"), default=False)
    whatsapp_enabled = models.BooleanField(_("WhatsApp"), default=False, help_text=_("Communication channel."))
    language = models.CharField(_("preferred language"), max_length=8, choices=Language, default=Language.ENGLISH)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "first_name", "last_name"]
        verbose_name = _("contact person")
        verbose_name_plural = _("contact persons")
        constraints = [
            models.UniqueConstraint(
                fields=["contact"], condition=Q(is_primary=True), name="contactperson_one_primary_per_contact"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def mobile_is_valid(self) -> bool:
        from .phone import is_valid_e164

        return is_valid_e164(self.mobile)

    @property
    def whatsapp_number(self) -> str:
        """The number WhatsApp messages go to: the mobile, else the work phone."""
        return self.mobile or self.phone


class NumberSeries(models.Model):
    """The next number for one kind of document in one organization (INV-000001, INV-000002…).

    Numbers are taken under a row lock, so two documents created at once never share one.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="number_series")
    kind = models.CharField(_("document kind"), max_length=20, choices=DocumentKind)
    prefix = models.CharField(_("prefix"), max_length=16)
    next_number = models.PositiveIntegerField(_("next number"), default=1)
    padding = models.PositiveSmallIntegerField(_("digits"), default=6)

    class Meta:
        ordering = ["organization", "kind"]
        verbose_name = _("number series")
        verbose_name_plural = _("number series")
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="numberseries_unique_kind_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.prefix}{self.next_number:0{self.padding}d}"


class DocumentQuerySet(models.QuerySet):
    def overdue(self, today: datetime.date) -> "DocumentQuerySet":
        """Documents past their due date with money still owed (the derived 'overdue' status)."""
        return self.filter(
            status__in=[DocumentStatus.SENT, DocumentStatus.OPEN, DocumentStatus.PARTIALLY_PAID],
            due_date__lt=today,
            balance__gt=0,
            kind__in=[k for k, spec in KINDS.items() if spec.can_be_overdue],
        )

    def with_status(self, status: str, today: datetime.date) -> "DocumentQuerySet":
        """Filter by the status the user sees: 'overdue' is derived, 'sent' excludes overdue ones."""
        if status == DocumentStatus.OVERDUE:
            return self.overdue(today)
        qs = self.filter(status=status)
        if status in (DocumentStatus.SENT, DocumentStatus.OPEN, DocumentStatus.PARTIALLY_PAID):
            qs = qs.exclude(pk__in=self.overdue(today).values("pk"))
        return qs


class Document(ReadInBulk):
    """A sales or purchase document: invoice, sales order, quote, retainer invoice, credit note,
    sales receipt, payment received, bill or payment made.

    One table for every kind (``kind`` says which; ``books.kinds`` says what differs), so that a
    WhatsApp message, a history entry or a statement line links to any document the same way.
    Totals and balance are Decimal and recomputed by the services, never edited by hand.
    ``status`` is what is stored; "overdue" is derived from the due date (``effective_status``).
    Payments carry their amount in ``total`` and their unused amount in ``balance``.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(_("kind"), max_length=20, choices=DocumentKind)
    number = models.CharField(_("number"), max_length=32)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="documents")
    date = models.DateField(_("date"))
    due_date = models.DateField(_("due date"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=20, choices=DocumentStatus, default=DocumentStatus.DRAFT)
    reference_number = models.CharField(_("reference #"), max_length=64, blank=True)
    subtotal = models.DecimalField(_("sub total"), **MONEY, default=ZERO)
    tax_total = models.DecimalField(_("tax"), **MONEY, default=ZERO)
    total = models.DecimalField(_("total"), **MONEY, default=ZERO)
    balance = models.DecimalField(_("balance"), **MONEY, default=ZERO)
    payment_mode = models.CharField(_("payment mode"), max_length=20, choices=PaymentMode, blank=True)
    notes = models.TextField(_("customer notes"), blank=True)
    terms = models.TextField(_("terms and conditions"), blank=True)
    share_with = models.ManyToManyField(
        ContactPerson,
        blank=True,
        related_name="shared_documents",
        verbose_name=_("share with"),
        help_text=_("Contact persons who receive this document."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "number"], name="document_unique_number"),
            models.CheckConstraint(condition=Q(total__gte=0), name="document_total_not_negative"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="document_balance_not_negative"),
        ]
        indexes = [
            models.Index(fields=["organization", "kind", "status", "due_date"], name="document_org_kind_status"),
            models.Index(fields=["contact", "kind", "date"], name="document_contact_kind_date"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def effective_status(self) -> str:
        """The status to show: 'overdue' when past due with a balance, else the stored one."""
        if (
            self.spec.can_be_overdue
            and self.status in (DocumentStatus.SENT, DocumentStatus.OPEN, DocumentStatus.PARTIALLY_PAID)
            and self.due_date is not None
            and self.balance > 0
            and self.due_date < self.organization.today()
        ):
            return DocumentStatus.OVERDUE
        return self.status

    @property
    def effective_status_label(self) -> str:
        return DocumentStatus(self.effective_status).label

    @property
    def days_overdue(self) -> int:
        if self.effective_status != DocumentStatus.OVERDUE:
            return 0
        return (self.organization.today() - self.due_date).days

    @property
    def amount_paid(self) -> Decimal:
        return self.total - self.balance if self.spec.carries_balance else ZERO

    @property
    def is_draft_or_void(self) -> bool:
        return self.status in (DocumentStatus.DRAFT, DocumentStatus.VOID)


class LineItem(models.Model):
    """One line of a document: an item, a quantity, a rate and a tax rate."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    item = models.CharField(_("item"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    quantity = models.DecimalField(_("quantity"), **QUANTITY, validators=[MinValueValidator(Decimal("0.001"))])
    rate = models.DecimalField(_("rate"), **MONEY, validators=[MinValueValidator(ZERO)])
    tax_percent = models.DecimalField(_("tax %"), **PERCENT, default=ZERO, validators=[MinValueValidator(ZERO)])
    amount = models.DecimalField(_("amount"), **MONEY, default=ZERO, help_text=_("Quantity × rate, before tax."))
    tax_amount = models.DecimalField(_("tax amount"), **MONEY, default=ZERO)

    class Meta:
        ordering = ["document", "position", "id"]
        verbose_name = _("line item")
        verbose_name_plural = _("line items")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="lineitem_quantity_positive"),
            models.CheckConstraint(condition=Q(rate__gte=0), name="lineitem_rate_not_negative"),
            models.CheckConstraint(
                condition=Q(tax_percent__gte=0) & Q(tax_percent__lte=100), name="lineitem_tax_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return self.item


class Allocation(models.Model):
    """Part of a payment (or credit note) applied to an invoice, retainer invoice or bill.

    The target's balance is its total less every allocation to it; the source's unused amount
    is its total less every allocation from it. Both are recomputed by
    ``books.services.documents.allocations_apply``.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="allocations_out")
    target = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="allocations_in")
    amount = models.DecimalField(_("amount"), **MONEY)
    date = models.DateField(_("date"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["date", "id"]
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_positive"),
            models.UniqueConstraint(fields=["source", "target"], name="allocation_unique_source_target"),
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target}: {self.amount}"


class Notification(models.Model):
    """An in-app notification for the members of an organization, shown under the bell in the header.

    ``user`` narrows it to one member; without a user every member of the organization sees it.
    Reading is recorded per member in :class:`NotificationRead`, so a notification for everyone
    is one row however many members read it. ``kind`` is a dotted code of the app that raised it
    (``credits.low_balance``) so that apps can find their own; ``url`` is a path inside the hub
    where the member can act on it. Title and body are stored already translated into the
    organization's language.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("organization")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("user"),
        help_text=_("Empty: every member of the organization."),
    )
    kind = models.CharField(_("kind"), max_length=64, help_text=_("e.g. credits.low_balance"))
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True, help_text=_("A path in the hub, e.g. /settings/."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["organization", "-created_at"], name="notification_org_created")]

    def __str__(self) -> str:
        return self.title


class NotificationRead(models.Model):
    """That one member has read one notification, and when."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="reads", verbose_name=_("notification")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    read_at = models.DateTimeField(_("read at"), default=timezone.now)

    class Meta:
        ordering = ["-read_at"]
        verbose_name = _("notification read")
        verbose_name_plural = _("notification reads")
        constraints = [
            models.UniqueConstraint(fields=["notification", "user"], name="notificationread_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.notification} · {self.user}"
