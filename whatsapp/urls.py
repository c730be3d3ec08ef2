"""Settings → Integrations → WhatsApp, mounted at ``settings/integrations/whatsapp/``."""

from django.urls import path

from whatsapp.views import integration
from whatsapp.views import messages as messages_views
from whatsapp.views import reminders as reminders_views
from whatsapp.views import templates as templates_views

app_name = "whatsapp"

urlpatterns = [
    path("", integration.integration, name="integration"),
    path("connect/", integration.connect, name="connect"),
    path("test/", integration.test_connection, name="test_connection"),
    path("token/", integration.token_replace, name="token_replace"),
    path("numbers/refresh/", integration.numbers_refresh, name="numbers_refresh"),
    path("default-number/", integration.default_number, name="default_number"),
    path("default-number/remove/", integration.default_number_remove, name="default_number_remove"),
    path("channels/", integration.channels, name="channels"),
    path("verify/", integration.verify, name="verify"),
    path("verify/<int:pk>/", integration.verify_number, name="verify_number"),
    path("verify/<int:pk>/send/", integration.verify_send, name="verify_send"),
    path("inactive/", integration.mark_inactive, name="mark_inactive"),
    path("active/", integration.mark_active, name="mark_active"),
    path("change/", integration.change, name="change"),
    path("change/progress/", integration.change_progress, name="change_progress"),
    path("change/templates/delete/", integration.change_template_delete, name="change_template_delete"),
    path("change/check/", integration.change_check, name="change_check"),
    path("change/cancel/", integration.change_cancel, name="change_cancel"),
    path("test-message/", messages_views.test_message, name="test_message"),
    path("recent/", messages_views.recent_messages, name="recent_messages"),
    # --- Message templates (whatsapp.views.templates) ---
    path("templates/", templates_views.template_list_view, name="template_list"),
    path("templates/sync/", templates_views.template_sync, name="template_sync"),
    path("templates/new/", templates_views.template_new, name="template_new"),
    path("templates/preview/", templates_views.template_preview_view, name="template_preview"),
    path("templates/modules/", templates_views.template_modules, name="template_modules"),
    path("templates/<int:pk>/", templates_views.template_detail, name="template_detail"),
    path("templates/<int:pk>/edit/", templates_views.template_edit, name="template_edit"),
    path("templates/<int:pk>/submit/", templates_views.template_submit, name="template_submit"),
    path("templates/<int:pk>/clone/", templates_views.template_clone, name="template_clone"),
    path("templates/<int:pk>/default/", templates_views.template_default, name="template_default"),
    path("templates/<int:pk>/delete/", templates_views.template_delete, name="template_delete"),
    # --- Payment reminders by due date (whatsapp.views.reminders) ---
    path("reminders/", reminders_views.reminders, name="reminders"),
    path("reminders/new/", reminders_views.reminder_rule_new, name="reminder_rule_new"),
    path("reminders/<int:pk>/", reminders_views.reminder_rule_edit, name="reminder_rule_edit"),
    path("reminders/<int:pk>/toggle/", reminders_views.reminder_rule_toggle, name="reminder_rule_toggle"),
    path("reminders/<int:pk>/delete/", reminders_views.reminder_rule_delete, name="reminder_rule_delete"),
]
