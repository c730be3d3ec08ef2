"""The accountant's WhatsApp pages outside Settings, mounted at ``whatsapp/`` (namespace ``whatsapp_send``):
the Send page for a document, a contact or a statement, bulk sends from the lists (summary,
progress, the recent ones), and the read-only chat with a contact."""

from django.urls import path

from whatsapp.views import bulk, chat, send

app_name = "whatsapp_send"

urlpatterns = [
    path("send/document/<int:pk>/", send.send_document, name="document"),
    path("send/contact/<int:pk>/", send.send_contact, name="contact"),
    path("send/contact/<int:pk>/statement/", send.send_statement, name="statement"),
    path("bulk/", bulk.bulk_list, name="bulk_list"),
    path("bulk/new/<str:module>/", bulk.bulk_new, name="bulk_new"),
    path("bulk/new/<str:module>/send/", bulk.bulk_start, name="bulk_start"),
    path("bulk/<int:pk>/", bulk.bulk_detail, name="bulk"),
    path("bulk/<int:pk>/progress/", bulk.bulk_progress_fragment, name="bulk_progress"),
    path("bulk/<int:pk>/resume/", bulk.bulk_resume, name="bulk_resume"),
    path("chat/contact/<int:pk>/", chat.contact_chat, name="chat_contact"),
]
