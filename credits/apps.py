from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = _("IM credits")

    def ready(self) -> None:
        from books.integrations import integration_register

        integration_register(
            key="credits",
            label=_("IM credits"),
            description=_("Buy IM credits for WhatsApp notifications, see the balance, receipts and every charge."),
            url_name="credits:overview",
            icon="star",
        )
