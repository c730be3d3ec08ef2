from books.views import contacts, dashboard, documents, notifications, settings

app_name = "books"

urlpatterns = (
    dashboard.urlpatterns
    + contacts.urlpatterns
    + settings.urlpatterns
    + notifications.urlpatterns
    + documents.urlpatterns
)
