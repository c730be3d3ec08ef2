"""Message templates as the hub and Meta know them, and which modules may send them.

A template is one name × language in one WhatsApp Business Account. Its approval status moves by
Meta's ``message_template_status_update`` webhook and by sync; the builder, module mapping and
defaults build on this record.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from books.models import Organization

from .choices import AttachmentMode, HeaderType, Module, TemplateCategory, TemplateStatus


class MessageTemplate(models.Model):
    """A WhatsApp message template: what the builder holds and what Meta approved.

    The builder fields (module, header, body, footer, buttons) are the accountant's version; on
    submission they become ``components``, Meta's JSON, which sync keeps equal to what Meta has.
    Rendering reads ``components`` (what Meta checks a send against) and ``field_mapping`` (which
    catalogue field fills each variable), and refuses the template when the two disagree.
    Placeholders are NAMED (``{{customer_name}}``): the text says what it shows, and a parameter
    carries its name, so an edited body cannot silently shift values into the wrong slots.
    """

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
    # --- The builder -------------------------------------------------------------------------
    module = models.CharField(
        _("module"),
        max_length=32,
        choices=Module,
        blank=True,
        help_text=_("Empty for a template created in WhatsApp Manager until it is assigned to a module."),
    )
    header_type = models.CharField(_("header"), max_length=16, choices=HeaderType, default=HeaderType.NONE)
    header_text = models.CharField(_("header text"), max_length=255, blank=True)
    attachment_mode = models.CharField(
        _("attachment"),
        max_length=16,
        choices=AttachmentMode,
        blank=True,
        help_text=_("Dynamic: the transaction's own PDF is attached. Static: the uploaded file (customers only)."),
    )
    attachment = models.FileField(_("attachment file"), upload_to="whatsapp/template-attachments/%Y/%m/", blank=True)
    attachment_mime = models.CharField(_("attachment type"), max_length=100, blank=True)
    attachment_filename = models.CharField(_("attachment file name"), max_length=255, blank=True)
    body = models.TextField(_("message"), blank=True, help_text=_("Dynamic fields are written {{field_name}}."))
    footer = models.CharField(_("footer"), max_length=255, blank=True)
    buttons = models.JSONField(
        _("buttons"),
        default=list,
        blank=True,
        help_text=_(
            'Call-to-action buttons: {"type": "url"|"phone_number", "text", "url"|"phone_number", "url_suffix_field"}.'
        ),
    )
    field_mapping = models.JSONField(
        _("field mapping"),
        default=dict,
        blank=True,
        help_text=_(
            'Which catalogue field fills each variable: {"header": {var: field}, "body": {var: field}, '
            '"buttons": {index: field}}.'
        ),
    )
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("Preselected when sending from this module.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
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
            models.UniqueConstraint(
                fields=["organization", "module"],
                condition=Q(is_default=True),
                name="template_one_default_per_module",
            ),
        ]
        indexes = [models.Index(fields=["organization", "module", "status"], name="template_org_module_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def is_usable(self) -> bool:
        return self.status == TemplateStatus.APPROVED


class ModuleSetting(models.Model):
    """Whether an organization sends WhatsApp notifications from one module (the Settings toggle).

    A module can be switched on only while it has an approved template (``module_setting_update``);
    a module without a row is off.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="whatsapp_modules")
    module = models.CharField(_("module"), max_length=32, choices=Module)
    enabled = models.BooleanField(_("enabled"), default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["organization", "module"]
        verbose_name = _("WhatsApp module setting")
        verbose_name_plural = _("WhatsApp module settings")
        constraints = [
            models.UniqueConstraint(fields=["organization", "module"], name="modulesetting_unique_org_module"),
        ]

    def __str__(self) -> str:
        return f"{self.get_module_display()}: {'on' if self.enabled else 'off'}"
