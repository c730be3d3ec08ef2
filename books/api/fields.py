"""Serializer fields shared by the books API."""

import datetime
import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from books.models import Organization

# Dates far from today are typos, and date arithmetic (due date = date + terms) must not overflow.
MIN_DATE = datetime.date(1900, 1, 1)
MAX_DATE = datetime.date(2999, 12, 31)
MAX_ID = 2**63 - 1  # BigAutoField
MAX_IDS = 100

currency_code_validator = RegexValidator(
    re.compile(r"^[A-Z]{3}$"), _("Enter an ISO 4217 currency code (three letters, e.g. INR).")
)
single_line_validator = RegexValidator(
    re.compile(r"^[^\x00-\x1f\x7f]*$"), _("Control characters (such as line breaks) are not allowed.")
)


class OrganizationRelatedField(serializers.PrimaryKeyRelatedField):
    """The id of a row of the request's organization.

    ``queryset`` says which rows may be chosen in any organization (``Contact.objects.filter(
    contact_type="customer")``); ``organization_path`` is the lookup from those rows to their
    organization. An id of another organization is "not found", as an id that does not exist.
    """

    def __init__(self, *, noun: Promise | str, organization_path: str = "organization", **kwargs: Any) -> None:
        self.noun = noun
        self.organization_path = organization_path
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        organization = self.context.get("organization")
        if not isinstance(organization, Organization):
            raise ImproperlyConfigured("OrganizationRelatedField needs the organization in the serializer context.")
        return super().get_queryset().filter(**{self.organization_path: organization})

    @classmethod
    def many_init(cls, *args: Any, **kwargs: Any) -> serializers.ManyRelatedField:
        field = super().many_init(*args, **kwargs)
        field.__class__ = BoundedManyRelatedField
        return field

    def to_internal_value(self, data: Any) -> Any:
        # Only whole numbers are ids: 1.5 or "1e3" would otherwise be coerced by the database.
        text = str(data)
        if isinstance(data, bool) or not isinstance(data, int | str) or not text.isdecimal():
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            if len(text) > len(str(MAX_ID)) or int(text) > MAX_ID:
                raise ObjectDoesNotExist
            return self.get_queryset().get(pk=int(text))
        except ObjectDoesNotExist:
            raise serializers.ValidationError(
                _("%(noun)s %(id)s was not found in this organization.") % {"noun": self.noun, "id": text[:20]},
                code="does_not_exist",
            ) from None


class BoundedManyRelatedField(serializers.ManyRelatedField):
    """A list of ids, at most ``MAX_IDS`` of them (each one is looked up)."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and len(data) > MAX_IDS:
            raise serializers.ValidationError(_("Give at most %(max)d ids.") % {"max": MAX_IDS}, code="max_length")
        return super().to_internal_value(data)


class BoundedDateField(serializers.DateField):
    """An ISO date between 1900 and 2999."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(self._check_range)

    @staticmethod
    def _check_range(value: datetime.date) -> None:
        if not MIN_DATE <= value <= MAX_DATE:
            raise serializers.ValidationError(
                _("Enter a date between %(min)s and %(max)s.") % {"min": MIN_DATE, "max": MAX_DATE}
            )


class ActiveStatusField(serializers.ChoiceField):
    """A boolean ``is_active`` shown as Zoho Books' ``status``: ``active`` or ``inactive``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=[("active", _("Active")), ("inactive", _("Inactive"))], **kwargs)

    def to_internal_value(self, data: Any) -> bool:
        return super().to_internal_value(data) == "active"

    def to_representation(self, value: bool) -> str:
        return "active" if value else "inactive"


class CurrencyCodeField(serializers.CharField):
    """An ISO 4217 code, upper-cased (``inr`` → ``INR``); blank means the default currency."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)
        self.validators.append(currency_code_validator)

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data).upper()
