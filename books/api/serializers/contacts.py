"""Contacts (customers and vendors) and their contact persons, in Zoho Books' field names."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from books.api.fields import ActiveStatusField, CurrencyCodeField
from books.choices import ContactType, Language
from books.models import Contact, ContactPerson
from books.phone import phone_normalize

MAX_PERSONS_PER_REQUEST = 50


class ContactPersonSerializer(serializers.ModelSerializer):
    """A person at a customer or vendor. ``phone`` and ``mobile`` are stored in E.164; a number
    typed without a country code is read in the organization's default region."""

    contact_person_id = serializers.IntegerField(source="id", read_only=True)
    is_primary_contact = serializers.BooleanField(source="is_primary", required=False)
    language_code = serializers.ChoiceField(source="language", choices=Language.choices, required=False)

    class Meta:
        model = ContactPerson
        fields = [
            "contact_person_id",
            "salutation",
            "first_name",
            "last_name",
            "email",
            "phone",
            "mobile",
            "is_primary_contact",
            "whatsapp_enabled",
            "language_code",
        ]

    def validate_phone(self, value: str) -> str:
        return self._e164(value)

    def validate_mobile(self, value: str) -> str:
        return self._e164(value)

    def _e164(self, value: str) -> str:
        try:
            return phone_normalize(value, region=self.context["organization"].phone_region)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class ContactSerializer(serializers.ModelSerializer):
    """A customer or vendor, read and updated. ``contact_type`` cannot change after creation;
    contact persons are changed through ``/contacts/{contact_id}/contactpersons``."""

    contact_id = serializers.IntegerField(source="id", read_only=True)
    contact_name = serializers.CharField(source="display_name", max_length=200)
    contact_type = serializers.ChoiceField(choices=ContactType.choices, read_only=True)
    currency_code = CurrencyCodeField(
        source="currency", required=False, allow_blank=True, help_text=_("Blank: the organization's base currency.")
    )
    payment_terms = serializers.IntegerField(
        source="payment_terms_days",
        required=False,
        min_value=0,
        max_value=32767,
        help_text=_("Days from the document date to its due date."),
    )
    language_code = serializers.ChoiceField(source="language", choices=Language.choices, required=False)
    status = ActiveStatusField(source="is_active", required=False)
    contact_persons = ContactPersonSerializer(source="persons", many=True, read_only=True)
    balance = serializers.DecimalField(
        source="open_balance",
        max_digits=None,
        decimal_places=2,
        read_only=True,
        help_text=_(
            "Outstanding receivables (customers) or payables (vendors): the unpaid balance of issued "
            "invoices, retainer invoices and bills."
        ),
    )
    created_time = serializers.DateTimeField(source="created_at", read_only=True)
    last_modified_time = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Contact
        fields = [
            "contact_id",
            "contact_name",
            "company_name",
            "contact_type",
            "email",
            "currency_code",
            "payment_terms",
            "billing_address",
            "tax_id",
            "language_code",
            "whatsapp_enabled",
            "notes",
            "status",
            "contact_persons",
            "balance",
            "created_time",
            "last_modified_time",
        ]

    def to_representation(self, instance: Contact) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not data.get("currency_code"):
            data["currency_code"] = self.context["organization"].currency
        return data


class ContactCreateSerializer(ContactSerializer):
    """A new customer or vendor, with its contact persons (the first is primary unless one says so)."""

    contact_type = serializers.ChoiceField(choices=ContactType.choices)
    contact_persons = ContactPersonSerializer(
        source="persons", many=True, required=False, max_length=MAX_PERSONS_PER_REQUEST
    )

    class Meta(ContactSerializer.Meta):
        pass


class ContactFilterSerializer(serializers.Serializer):
    """Query parameters of ``GET /contacts``."""

    contact_type = serializers.ChoiceField(choices=ContactType.choices, required=False)
    search_text = serializers.CharField(
        required=False, max_length=100, help_text=_("Part of the name, company, email or a person's name or mobile.")
    )
    status = ActiveStatusField(source="is_active", required=False)
