from books.views import contacts, dashboard, documents, settings

app_name = "books"

urlpatterns = dashboard.urlpatterns + contacts.urlpatterns + settings.urlpatterns + documents.urlpatterns
