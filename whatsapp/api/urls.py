"""REST API v1 of WhatsApp: ``/api/v1/whatsapp/{account,phonenumbers,channels,messages}``."""

from books.api.urls import OptionalSlashRouter

app_name = "whatsapp-api"

router = OptionalSlashRouter()
# --- account, phone numbers, channels (whatsapp.api.accounts) ---
from whatsapp.api.accounts import AccountViewSet, ChannelViewSet, PhoneNumberViewSet  # noqa: E402

router.register("account", AccountViewSet, basename="account")
router.register("phonenumbers", PhoneNumberViewSet, basename="phonenumber")
router.register("channels", ChannelViewSet, basename="channel")

# --- messages (whatsapp.api.messages) ---
from whatsapp.api.messages import MessageViewSet  # noqa: E402  (each section imports its own views)

router.register("messages", MessageViewSet, basename="message")

# --- message templates, module toggles (whatsapp.api.templates) ---
from whatsapp.api.templates import ModuleViewSet, TemplateViewSet  # noqa: E402

router.register("templates", TemplateViewSet, basename="template")
router.register("modules", ModuleViewSet, basename="module")

# --- payment reminders by due date (whatsapp.api.reminders) ---
from whatsapp.api.reminders import ReminderRuleViewSet  # noqa: E402

router.register("reminders", ReminderRuleViewSet, basename="reminder")

urlpatterns = router.urls
