"""REST API v1 of the books: contacts and documents under Zoho Books' resource names."""

from rest_framework.routers import SimpleRouter

from books.api.views.contacts import ContactPersonViewSet, ContactViewSet
from books.api.views.documents import DOCUMENT_VIEWSETS

app_name = "api"


class OptionalSlashRouter(SimpleRouter):
    """Serves Zoho Books' paths (``/api/v1/invoices``) and Django's (``/api/v1/invoices/``).

    The slash is a non-capturing group, which the schema generator drops: the documented
    paths are Zoho's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "(?:/)?"


router = OptionalSlashRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register(r"contacts/(?P<contact_id>[0-9]+)/contactpersons", ContactPersonViewSet, basename="contactperson")
for resource, viewset in DOCUMENT_VIEWSETS.items():
    router.register(resource, viewset, basename=viewset.spec.kind)

urlpatterns = router.urls
