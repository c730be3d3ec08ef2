from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TemplatesMgmtConfig(AppConfig):
    name = "templates_mgmt"
    verbose_name = _("Message templates")
