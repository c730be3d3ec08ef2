"""The accountant's WhatsApp pages outside Settings, mounted at ``whatsapp/`` (namespace ``whatsapp_send``):
the Send page for a document, a contact or a statement, and the read-only chat with a contact."""

from django.urls import path

from whatsapp.views import chat, send

app_name = "whatsapp_send"

urlpatterns = [
    path("send/document/<int:pk>/", send.send_document, name="document"),
    path("send/contact/<int:pk>/", send.send_contact, name="contact"),
    path("send/contact/<int:pk>/statement/", send.send_statement, name="statement"),
    path("chat/contact/<int:pk>/", chat.contact_chat, name="chat_contact"),
]
