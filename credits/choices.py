from django.db import models
from django.utils.translation import gettext_lazy as _


class EntryKind(models.TextChoices):
    """What moved an organization's credits (one ledger entry per change).

    ``purchase`` adds to the balance; ``reservation`` holds credits for a message about to be sent
    (the balance is unchanged, ``reserved`` grows); ``settlement`` charges what WhatsApp reported
    and lets the hold go; ``release`` lets a hold go without charging (the message failed or was
    never sent); ``refund`` takes a refunded purchase's credits back; ``adjustment`` is a
    correction made by an administrator.
    """

    PURCHASE = "purchase", _("Purchase")
    RESERVATION = "reservation", _("Reservation")
    SETTLEMENT = "settlement", _("Settlement")
    RELEASE = "release", _("Release")
    REFUND = "refund", _("Refund")
    ADJUSTMENT = "adjustment", _("Adjustment")


class ReservationStatus(models.TextChoices):
    RESERVED = "reserved", _("Reserved")
    SETTLED = "settled", _("Settled")
    RELEASED = "released", _("Released")


class PriceCategory(models.TextChoices):
    """Meta's pricing categories, in the words of the status webhook's ``pricing.category``."""

    MARKETING = "marketing", _("Marketing")
    UTILITY = "utility", _("Utility")
    AUTHENTICATION = "authentication", _("Authentication")
    SERVICE = "service", _("Service")


class PurchaseStatus(models.TextChoices):
    """``pending``: waiting for the payment gateway. ``paid``: the credits were added. ``failed``: the
    gateway could not start the payment. ``cancelled``: the buyer left the checkout. ``refunded``:
    the credits were taken back after the payment was refunded."""

    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class Gateway(models.TextChoices):
    STRIPE = "stripe", _("Stripe")
    SANDBOX = "sandbox", _("Sandbox (no real payment)")
