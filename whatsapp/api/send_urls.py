"""``/api/v1/{resource}/{id}/whatsapp`` beside the books API's own paths (books knows nothing of
WhatsApp, so these are mounted from here, before the books include)."""

from django.urls import re_path

from whatsapp.api.send import BULK_VIEWSETS, SEND_VIEWSETS, BulkSendViewSet, ContactSendViewSet

app_name = "whatsapp-send-api"

_ACTIONS = {"get": "plan", "post": "send"}

urlpatterns = [
    re_path(
        rf"^{resource}/whatsapp/bulk(?:/)?$",
        viewset.as_view({"get": "summary", "post": "start"}),
        name=f"{resource}-whatsapp-bulk",
    )
    for resource, viewset in BULK_VIEWSETS.items()
]
urlpatterns += [
    re_path(
        rf"^{resource}/(?P<{viewset.lookup_url_kwarg}>[0-9]+)/whatsapp(?:/)?$",
        viewset.as_view(_ACTIONS),
        name=f"{resource}-whatsapp",
    )
    for resource, viewset in SEND_VIEWSETS.items()
]
urlpatterns.append(
    re_path(
        r"^contacts/(?P<contact_id>[0-9]+)/whatsapp(?:/)?$",
        ContactSendViewSet.as_view(_ACTIONS),
        name="contacts-whatsapp",
    )
)
urlpatterns.append(
    re_path(
        r"^whatsapp/bulk/(?P<bulk_id>[0-9]+)(?:/)?$", BulkSendViewSet.as_view({"get": "retrieve"}), name="whatsapp-bulk"
    )
)
urlpatterns.append(
    re_path(
        r"^whatsapp/bulk/(?P<bulk_id>[0-9]+)/resume(?:/)?$",
        BulkSendViewSet.as_view({"post": "resume"}),
        name="whatsapp-bulk-resume",
    )
)
