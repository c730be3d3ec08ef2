from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler


def _detail(exc: DjangoValidationError, field_names: Mapping[str, str]) -> dict[str, Any]:
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    detail: dict[str, list[str]] = {}
    for field, messages in exc.message_dict.items():
        key = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field_names.get(field, field)
        detail.setdefault(key, []).extend(messages)
    return detail


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: a Django ValidationError raised by a service becomes a 400 with
    field errors instead of a 500."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_detail(exc, {}))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)


def api_field_names(serializer: serializers.Serializer) -> dict[str, str]:
    """Model field name → API field name, from the serializer's ``source`` attributes
    (``display_name`` → ``contact_name``, ``lines`` → ``line_items``)."""
    return {
        field.source: name
        for name, field in serializer.fields.items()
        if field.source not in (name, "*") and "." not in field.source
    }


@contextmanager
def service_errors(field_names: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a service's ValidationError, keyed by model field names, as a 400 keyed by the
    API's field names, so integrators see ``contact_name`` where the service said ``display_name``."""
    try:
        yield
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(_detail(exc, field_names)) from exc
