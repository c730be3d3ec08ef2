"""REST API v1 of WhatsApp: ``/api/v1/whatsapp/{account,phonenumbers,channels,messages}``."""

from books.api.urls import OptionalSlashRouter

app_name = "whatsapp-api"

router = OptionalSlashRouter()
# --- account, phone numbers, channels (whatsapp.api.accounts) ---
# --- messages (whatsapp.api.messages) ---

urlpatterns = router.urls
