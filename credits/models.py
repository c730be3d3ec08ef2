"""IM credits: each organization's account, the append-only ledger behind it, the holds on
credits for messages in flight, the price table, and purchases through a payment gateway.

Credits are Decimal to the hundredth (``CREDITS``), never floats. Balances change only in
:mod:`credits.services`, under a row lock on the organization's :class:`CreditAccount`, and every
change writes exactly one :class:`LedgerEntry`, so the account can always be re-derived from its
ledger.
"""

from decimal import Decimal
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from books.models import MONEY, Organization

from .choices import EntryKind, Gateway, PriceCategory, PurchaseStatus, ReservationStatus
from .currency import to_minor_units

#: One precision for every amount of credits (a utility message may cost half a credit).
CREDITS = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")
DEFAULT_LOW_BALANCE_THRESHOLD = Decimal("50.00")

calling_code_validator = RegexValidator(r"^[1-9][0-9]{0,3}$", _("Enter a country calling code, e.g. 91 or 1."))
currency_validator = RegexValidator(r"^[A-Z]{3}$", _("Enter an ISO 4217 currency code (three capital letters)."))


class CreditAccount(models.Model):
    """An organization's IM credits: what it owns (``balance``) and how much of that is held for
    messages on their way (``reserved``).

    ``available`` = balance − reserved is what new messages can use. The database refuses a
    reserved amount below zero or above the balance, so ``available`` is never negative whatever
    the code does. The row is also the organization's credit lock: every change takes it with
    ``SELECT … FOR UPDATE`` first. ``low_balance_notified`` remembers that members were told
    ``available`` fell below ``low_balance_threshold``, so they are told once per crossing.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="credit_account", verbose_name=_("organization")
    )
    balance = models.DecimalField(_("balance"), **CREDITS, default=ZERO, help_text=_("Credits owned."))
    reserved = models.DecimalField(
        _("reserved"), **CREDITS, default=ZERO, help_text=_("Credits held for messages not yet charged.")
    )
    low_balance_threshold = models.DecimalField(
        _("low balance threshold"),
        **CREDITS,
        default=DEFAULT_LOW_BALANCE_THRESHOLD,
        validators=[MinValueValidator(ZERO)],
        help_text=_("Members are notified when the available credits fall below this."),
    )
    low_balance_notified = models.BooleanField(
        _("low balance notified"),
        default=False,
        help_text=_("Set when members were told of a low balance; cleared once it is back above the threshold."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("credit account")
        verbose_name_plural = _("credit accounts")
        constraints = [
            models.CheckConstraint(condition=Q(reserved__gte=0), name="creditaccount_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(balance__gte=F("reserved")), name="creditaccount_balance_covers_reserved"
            ),
            models.CheckConstraint(
                condition=Q(low_balance_threshold__gte=0), name="creditaccount_threshold_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return str(self.organization)

    @property
    def available(self) -> Decimal:
        """Credits new messages can reserve."""
        return self.balance - self.reserved


class AppendOnlyError(Exception):
    """A ledger entry was to be changed or deleted: the ledger only grows."""


class LedgerEntryQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Ledger entries cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Ledger entries cannot be deleted.")


class LedgerEntry(models.Model):
    """One change of an organization's credits, append-only.

    ``amount`` is the signed change of the balance and ``reserved_change`` the signed change of
    the reserved credits; ``balance_after`` and ``reserved_after`` are the account right after it,
    so the history reads as a bank statement. Entries are never updated or deleted: a mistake is
    corrected with an adjustment. ``reference`` names what the credits were for
    (``whatsapp.message:123``); ``category`` and ``country_code`` are what WhatsApp reported when
    the message was charged.
    """

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="credit_entries",
        verbose_name=_("organization"),
        db_index=False,  # ledgerentry_org_created leads with it
    )
    kind = models.CharField(_("kind"), max_length=20, choices=EntryKind)
    amount = models.DecimalField(_("amount"), **CREDITS, help_text=_("Change of the balance (signed)."))
    reserved_change = models.DecimalField(
        _("reserved change"), **CREDITS, default=ZERO, help_text=_("Change of the reserved credits (signed).")
    )
    balance_after = models.DecimalField(_("balance after"), **CREDITS)
    reserved_after = models.DecimalField(_("reserved after"), **CREDITS)
    # RESTRICT, not PROTECT: an organization's deletion removes its entries and their
    # reservations and purchases together; nothing else may remove what an entry points at.
    reservation = models.ForeignKey(
        "Reservation",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("reservation"),
    )
    purchase = models.ForeignKey(
        "Purchase",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("purchase"),
    )
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    category = models.CharField(_("category"), max_length=40, blank=True)
    country_code = models.CharField(_("country calling code"), max_length=4, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="ledgerentry_org_created"),
            models.Index(fields=["organization", "kind", "-created_at"], name="ledgerentry_org_kind_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(reserved_after__gte=0), name="ledgerentry_reserved_after_not_negative"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=F("reserved_after")), name="ledgerentry_balance_after_covers_reserved"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+} ({self.reference or self.pk})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Ledger entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Ledger entries cannot be deleted.")


class Reservation(models.Model):
    """Credits held for one message from the moment it is queued until WhatsApp says what it cost.

    ``reference`` (unique in the organization, e.g. ``whatsapp.message:123``) makes reserving
    idempotent: asking again for the same reference returns this row. The hold ends once, either
    settled (``charged`` = the price of the category WhatsApp reported, 0 when not billable) or
    released (nothing charged).
    """

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="credit_reservations",
        verbose_name=_("organization"),
        db_index=False,  # reservation_unique_reference and reservation_org_status lead with it
    )
    reference = models.CharField(_("reference"), max_length=100)
    amount = models.DecimalField(
        _("amount"), **CREDITS, validators=[MinValueValidator(ZERO)], help_text=_("Credits held.")
    )
    category = models.CharField(_("category"), max_length=40, blank=True, help_text=_("The category estimated."))
    country_code = models.CharField(_("country calling code"), max_length=4, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ReservationStatus, default=ReservationStatus.RESERVED)
    charged = models.DecimalField(
        _("charged"), **CREDITS, default=ZERO, help_text=_("Credits charged when it was settled.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        constraints = [
            models.UniqueConstraint(fields=["organization", "reference"], name="reservation_unique_reference"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="reservation_amount_not_negative"),
            models.CheckConstraint(condition=Q(charged__gte=0), name="reservation_charged_not_negative"),
        ]
        indexes = [models.Index(fields=["organization", "status"], name="reservation_org_status")]

    def __str__(self) -> str:
        return self.reference


class Price(models.Model):
    """How many credits one message of a pricing category costs, optionally for one country.

    A row without an organization is the default for every organization; a row with one
    overrides it. A row without a country calling code applies to every country. The most
    specific row wins: organization and country, then organization, then default and country,
    then default. With no row at all, a service message costs 0 credits and any other 1.
    """

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="credit_prices",
        verbose_name=_("organization"),
        help_text=_("Empty: the default for every organization."),
    )
    category = models.CharField(_("category"), max_length=20, choices=PriceCategory)
    country_code = models.CharField(
        _("country calling code"),
        max_length=4,
        blank=True,
        validators=[calling_code_validator],
        help_text=_("The recipient's calling code, e.g. 91 for India. Empty: any country."),
    )
    credits = models.DecimalField(_("credits per message"), **CREDITS, validators=[MinValueValidator(ZERO)])
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["organization_id", "category", "country_code"]
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        # Two partial constraints rather than one with NULLS NOT DISTINCT, which SQLite lacks.
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "category", "country_code"],
                condition=Q(organization__isnull=False),
                name="price_unique_per_organization",
            ),
            models.UniqueConstraint(
                fields=["category", "country_code"],
                condition=Q(organization__isnull=True),
                name="price_unique_default",
            ),
            models.CheckConstraint(condition=Q(credits__gte=0), name="price_credits_not_negative"),
        ]

    def __str__(self) -> str:
        where = f"+{self.country_code}" if self.country_code else _("any country")
        return f"{self.get_category_display()} · {where}: {self.credits}"


class CreditPackPrice(models.Model):
    """What one credit costs in a currency; an organization pays in its base currency.

    An organization whose currency has no row cannot buy credits until an administrator adds
    one. The unit price must be a whole number of the currency's smallest unit (a gateway charges
    cents, not fractions of them).
    """

    currency = models.CharField(
        _("currency"), max_length=3, unique=True, validators=[currency_validator], help_text=_("ISO 4217, e.g. INR.")
    )
    unit_price = models.DecimalField(_("price of one credit"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["currency"]
        verbose_name = _("credit pack price")
        verbose_name_plural = _("credit pack prices")
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="creditpackprice_unit_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.unit_price}"

    def clean(self) -> None:
        super().clean()
        if self.currency and self.unit_price is not None:
            try:
                to_minor_units(self.unit_price, self.currency)
            except ValueError:
                message = _("%(currency)s cannot be charged in fractions of its smallest unit.")
                raise ValidationError({"unit_price": message % {"currency": self.currency}}) from None


class Purchase(models.Model):
    """An order of credits paid through a payment gateway.

    Created pending with the price of the day (``unit_price`` × ``quantity`` = ``total``, in the
    organization's currency); ``gateway_reference`` is the gateway's checkout session. When the
    gateway confirms the payment the credits are added exactly once, the purchase becomes paid and
    gets its receipt number (CR-000001, per organization).
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="credit_purchases", verbose_name=_("organization")
    )
    quantity = models.PositiveIntegerField(_("credits"), validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(_("price of one credit"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    total = models.DecimalField(_("total"), **MONEY)
    gateway = models.CharField(_("payment gateway"), max_length=10, choices=Gateway)
    status = models.CharField(_("status"), max_length=10, choices=PurchaseStatus, default=PurchaseStatus.PENDING)
    gateway_reference = models.CharField(
        _("gateway reference"), max_length=255, blank=True, help_text=_("The gateway's checkout session id.")
    )
    checkout_url = models.CharField(
        _("checkout URL"),
        max_length=2048,
        blank=True,
        help_text=_("Where the buyer pays (a URL or a path in the hub)."),
    )
    failure_reason = models.TextField(_("failure reason"), blank=True)
    receipt_number = models.CharField(_("receipt number"), max_length=20, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="purchase_quantity_positive"),
            models.CheckConstraint(condition=Q(total__gte=0), name="purchase_total_not_negative"),
            models.UniqueConstraint(
                fields=["gateway", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="purchase_unique_gateway_reference",
            ),
            models.UniqueConstraint(
                fields=["organization", "receipt_number"],
                condition=~Q(receipt_number=""),
                name="purchase_unique_receipt_number",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="purchase_org_created")]

    def __str__(self) -> str:
        return self.receipt_number or _("Purchase %(id)s") % {"id": self.pk}
