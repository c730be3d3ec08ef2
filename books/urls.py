from django.urls import register_converter

from books.converters import KindConverter
from books.views import contacts, dashboard, documents

register_converter(KindConverter, "kind")

app_name = "books"

urlpatterns = dashboard.urlpatterns + contacts.urlpatterns + documents.urlpatterns
