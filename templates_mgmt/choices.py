from django.db import models
from django.utils.translation import gettext_lazy as _


class TemplateStatus(models.TextChoices):
    """A template's approval status, in Meta's words (plus the hub's own deletion states)."""

    DRAFT = "DRAFT", _("Draft")
    PENDING = "PENDING", _("Pending approval")
    APPROVED = "APPROVED", _("Approved")
    REJECTED = "REJECTED", _("Rejected")
    PAUSED = "PAUSED", _("Paused")
    DISABLED = "DISABLED", _("Disabled")
    FLAGGED = "FLAGGED", _("Flagged")
    IN_APPEAL = "IN_APPEAL", _("In appeal")
    REINSTATED = "REINSTATED", _("Reinstated")
    PENDING_DELETION = "PENDING_DELETION", _("Deletion in progress")
    DELETION_FAILED = "DELETION_FAILED", _("Deletion failed")
    DELETED = "DELETED", _("Deleted")
    ARCHIVED = "ARCHIVED", _("Archived")
    UNARCHIVED = "UNARCHIVED", _("Unarchived")
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED", _("Limit exceeded")
    LOCKED = "LOCKED", _("Locked")


class TemplateCategory(models.TextChoices):
    UTILITY = "UTILITY", _("Utility")
    MARKETING = "MARKETING", _("Marketing")
    AUTHENTICATION = "AUTHENTICATION", _("Authentication")
