from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BooksConfig(AppConfig):
    name = "books"
    verbose_name = _("Books")

    def ready(self) -> None:
        from django.urls import register_converter

        from books.converters import KindConverter

        # Once per process, before any URLconf is loaded: ``<kind:spec>`` in document URLs.
        register_converter(KindConverter, "kind")
