from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BooksConfig(AppConfig):
    name = "books"
    verbose_name = _("Books")

    def ready(self) -> None:
        from django.urls import register_converter
        from django.urls.converters import get_converters

        import books.lookups  # noqa: F401 (registers ``__any``)
        from books.converters import KindConverter

        # Before any URLconf is loaded (Django compiles a route when path() is called):
        # ``<kind:spec>`` in document URLs. ready() can run again in tests that reload apps.
        if "kind" not in get_converters():
            register_converter(KindConverter, "kind")
