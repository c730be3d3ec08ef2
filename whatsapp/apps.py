from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WhatsappConfig(AppConfig):
    name = "whatsapp"
    verbose_name = _("WhatsApp")

    def ready(self) -> None:
        from books.integrations import integration_register

        integration_register(
            key="whatsapp",
            label=_("WhatsApp"),
            description=_(
                "Connect your WhatsApp Business account, its numbers and channels, to send notifications "
                "to customers and vendors."
            ),
            url_name="whatsapp:integration",
            icon="chat",
        )

        # Messages linked to a document appear in its Comments & History (whatsapp.history).
        from books.history import history_provider_register
        from whatsapp.history import message_history

        history_provider_register(message_history)
