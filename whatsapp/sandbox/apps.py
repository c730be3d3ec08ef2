from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SandboxConfig(AppConfig):
    """The Cloud API sandbox: a local stand-in for Meta's Graph API (see ``whatsapp/sandbox/__init__.py``)."""

    name = "whatsapp.sandbox"
    label = "whatsapp_sandbox"
    verbose_name = _("WhatsApp Cloud API sandbox")
    default_auto_field = "django.db.models.BigAutoField"
