"""Message templates as the hub and Meta know them.

A template is one name × language in one WhatsApp Business Account. Its approval status moves by
Meta's ``message_template_status_update`` webhook and by sync; the builder, module mapping and
defaults build on this record.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from books.models import Organization

from .choices import TemplateCategory, TemplateStatus


class MessageTemplate(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="message_templates")
    waba_id = models.CharField(_("WhatsApp Business Account ID"), max_length=32)
    meta_id = models.CharField(_("Meta template ID"), max_length=32, blank=True, db_index=True)
    name = models.CharField(_("name"), max_length=512)
    language = models.CharField(_("language"), max_length=16)
    category = models.CharField(_("category"), max_length=16, choices=TemplateCategory, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=TemplateStatus, default=TemplateStatus.DRAFT)
    status_reason = models.CharField(_("reason"), max_length=64, blank=True)
    rejection_recommendation = models.TextField(_("recommendation"), blank=True)
    status_detail = models.JSONField(_("status detail"), default=dict, blank=True)
    # When Meta's latest status event was issued: an older event arriving late changes nothing.
    status_updated_at = models.DateTimeField(_("status updated at"), null=True, blank=True)
    quality_score = models.CharField(_("quality"), max_length=16, blank=True)
    parameter_format = models.CharField(_("parameter format"), max_length=16, blank=True)
    components = models.JSONField(_("components"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["organization", "name", "language"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "waba_id", "name", "language"], name="template_unique_name_language"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def is_usable(self) -> bool:
        return self.status == TemplateStatus.APPROVED
