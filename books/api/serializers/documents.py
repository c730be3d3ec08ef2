"""Documents of every kind, in Zoho Books' field names.

One serializer class per kind, built from its ``KindSpec`` by ``document_serializer``: the kind
decides the id and number field names (``invoice_id``, ``invoice_number``), the party
(``customer_id`` or ``vendor_id``), whether there are line items or an amount applied to
invoices or bills, and what the due date is called (``expiry_date`` on estimates,
``shipment_date`` on sales orders).
"""

from decimal import Decimal
from typing import Any, ClassVar

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from books.api.exceptions import api_field_names
from books.api.fields import BoundedDateField, CurrencyCodeField, OrganizationRelatedField, single_line_validator
from books.choices import ContactType, DocumentKind, DocumentStatus, PaymentMode
from books.kinds import KINDS, KindSpec
from books.models import ZERO, Contact, ContactPerson, Document
from books.services.documents import AllocationInput, LineInput

# books.models.MONEY: 18 digits, 2 of them decimals.
MAX_AMOUNT = Decimal("9999999999999999.99")
MAX_LINES = 500
MAX_ALLOCATIONS = 500

DUE_DATE_FIELDS: dict[str, str] = {DocumentKind.ESTIMATE: "expiry_date", DocumentKind.SALES_ORDER: "shipment_date"}
PARTY_NOUNS = {ContactType.CUSTOMER: _("Customer"), ContactType.VENDOR: _("Vendor")}


def id_field_name(spec: KindSpec) -> str:
    """``invoice_id``, ``estimate_id``…; both payment kinds use ``payment_id``, as Zoho Books does."""
    return "payment_id" if spec.is_payment else f"{spec.kind}_id"


def due_date_field_name(spec: KindSpec) -> str | None:
    return DUE_DATE_FIELDS.get(spec.kind, "due_date") if spec.has_due_date else None


def allocation_target(spec: KindSpec) -> KindSpec:
    """The kind whose name the applied-to list takes: ``invoices`` (also for retainer invoices) or ``bills``."""
    return KINDS[spec.applies_to[0]]


def component_name(spec: KindSpec) -> str:
    """``SalesOrder`` for ``salesorder``: the prefix of the kind's schema components."""
    return "".join(part.title() for part in DocumentKind(spec.kind).name.split("_"))


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=2, **kwargs)


def _missing(attrs: dict[str, Any], required: dict[str, str]) -> None:
    # Inside a PATCH, DRF neither requires fields nor applies defaults in nested items: do it here.
    errors = {name: [_("This field is required.")] for source, name in required.items() if source not in attrs}
    if errors:
        raise serializers.ValidationError(errors)


class LineItemSerializer(serializers.Serializer):
    """A line of a document. Lines sent on update replace all the document's lines."""

    line_item_id = serializers.IntegerField(source="id", read_only=True)
    name = serializers.CharField(source="item", max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    quantity = serializers.DecimalField(
        max_digits=14, decimal_places=3, min_value=Decimal("0.001"), required=False, help_text=_("Default: 1.")
    )
    rate = _money(min_value=ZERO)
    tax_percentage = serializers.DecimalField(
        source="tax_percent",
        max_digits=5,
        decimal_places=2,
        min_value=ZERO,
        max_value=Decimal("100"),
        required=False,
        help_text=_("Default: 0."),
    )
    item_total = _money(source="amount", read_only=True, help_text=_("Quantity × rate, before tax."))
    tax_amount = _money(read_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _missing(attrs, {"item": "name", "rate": "rate"})
        attrs.setdefault("quantity", Decimal("1"))
        attrs.setdefault("tax_percent", ZERO)
        attrs.setdefault("description", "")
        if line_total(attrs) > MAX_AMOUNT:
            raise serializers.ValidationError({"rate": [_("The amount of this line is too large.")]})
        return attrs


def line_total(attrs: dict[str, Any]) -> Decimal:
    return attrs["quantity"] * attrs["rate"] * (1 + attrs["tax_percent"] / 100)


class DocumentSerializer(serializers.Serializer):
    """What every kind's serializer shares; the fields come from ``document_serializer``."""

    spec: ClassVar[KindSpec]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        spec, organization = self.spec, self.context["organization"]
        errors: dict[str, list[str]] = {}
        if attrs.get("number"):
            taken = Document.objects.filter(organization=organization, kind=spec.kind, number=attrs["number"])
            if self.instance is not None:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                errors[spec.number_field] = [_("%(number)s is already used.") % {"number": attrs["number"]}]
        if "lines" in attrs and sum((line_total(line) for line in attrs["lines"]), ZERO) > MAX_AMOUNT:
            errors["line_items"] = [_("The total of the document is too large.")]
        if "allocations_out" in attrs:
            targets = [allocation["target"].pk for allocation in attrs["allocations_out"]]
            if len(targets) != len(set(targets)):
                errors[allocation_target(spec).api_resource] = [_("Apply to each document once.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def service_kwargs(self) -> dict[str, Any]:
        """The validated data as keyword arguments of ``document_create`` / ``document_update``."""
        data = dict(self.validated_data)
        if "lines" in data:
            data["lines"] = [
                LineInput(
                    item=line["item"],
                    quantity=line["quantity"],
                    rate=line["rate"],
                    tax_percent=line["tax_percent"],
                    description=line["description"],
                )
                for line in data["lines"]
            ]
        if "allocations_out" in data:
            data["allocations"] = [AllocationInput(a["target"], a["amount"]) for a in data.pop("allocations_out")]
        if "total" in data:
            data["amount"] = data.pop("total")
        is_draft = data.pop("is_draft", False)
        if self.instance is not None and data.get("contact", self.instance.contact) != self.instance.contact:
            data.setdefault("share_with", [])  # the old contact's persons cannot receive it any more
        if self.instance is None:
            data["issue"] = not is_draft
            data.setdefault("date", self.context["organization"].today())
        return data

    def error_field_names(self) -> dict[str, str]:
        """Service error keys → this kind's field names."""
        names = api_field_names(self)
        if self.spec.is_payment:
            names["allocations"] = allocation_target(self.spec).api_resource
        return names


def allocation_serializer(spec: KindSpec) -> type[serializers.Serializer]:
    """``{invoice_id, invoice_number, amount_applied}`` (customer payments, which also take
    retainer invoice ids) or ``{bill_id, bill_number, amount_applied}`` (vendor payments)."""
    target = allocation_target(spec)
    fields: dict[str, Any] = {
        f"{target.kind}_id": OrganizationRelatedField(
            source="target",
            queryset=Document.objects.filter(kind__in=spec.applies_to),
            noun=target.label,
            help_text=format_lazy(
                "{} ({})", _("Id of the document the payment is applied to"), ", ".join(spec.applies_to)
            ),
        ),
        f"{target.kind}_number": serializers.CharField(source="target.number", read_only=True),
        "amount_applied": _money(source="amount", min_value=Decimal("0.01")),
    }

    def validate(self: serializers.Serializer, attrs: dict[str, Any]) -> dict[str, Any]:
        _missing(attrs, {"target": f"{target.kind}_id", "amount": "amount_applied"})
        return attrs

    return type(f"{component_name(spec)}Application", (serializers.Serializer,), {**fields, "validate": validate})


def document_serializer(spec: KindSpec) -> type[DocumentSerializer]:
    party = spec.party
    fields: dict[str, Any] = {
        id_field_name(spec): serializers.IntegerField(source="id", read_only=True),
        spec.number_field: serializers.CharField(
            source="number",
            max_length=32,
            required=False,
            validators=[single_line_validator],
            help_text=_("Leave out to take the next number of the series."),
        ),
        f"{party}_id": OrganizationRelatedField(
            source="contact",
            queryset=Contact.objects.filter(contact_type=party),
            noun=PARTY_NOUNS[party],
        ),
        f"{party}_name": serializers.CharField(source="contact.display_name", read_only=True),
        "date": BoundedDateField(required=False, help_text=_("Default: today, in the organization's time zone.")),
    }
    if due_date_field := due_date_field_name(spec):
        fields[due_date_field] = BoundedDateField(
            **({"source": "due_date"} if due_date_field != "due_date" else {}),
            required=False,
            allow_null=not spec.carries_balance,
            help_text=_("Default: the date plus the contact's payment terms.") if spec.carries_balance else None,
        )
    fields["currency_code"] = CurrencyCodeField(
        source="currency", required=False, allow_blank=True, help_text=_("Default: the contact's currency.")
    )
    fields["status"] = serializers.CharField(
        source="effective_status",
        read_only=True,
        help_text=format_lazy("One of: {}.", ", ".join(spec.filter_statuses)),
    )
    fields["reference_number"] = serializers.CharField(max_length=64, required=False, allow_blank=True)
    if spec.is_payment:
        fields["amount"] = _money(source="total", min_value=Decimal("0.01"), max_value=MAX_AMOUNT)
    if spec.issued_status == DocumentStatus.PAID:  # payments and sales receipts say how they were paid
        fields["payment_mode"] = serializers.ChoiceField(choices=PaymentMode.choices, required=False, allow_blank=True)
    if spec.is_payment:
        fields[allocation_target(spec).api_resource] = allocation_serializer(spec)(
            source="allocations_out", many=True, required=False, max_length=MAX_ALLOCATIONS
        )
        fields["unused_amount"] = _money(source="balance", read_only=True)
    if spec.has_lines:
        fields["line_items"] = LineItemSerializer(source="lines", many=True, allow_empty=False, max_length=MAX_LINES)
        fields["sub_total"] = _money(source="subtotal", read_only=True)
        fields["tax_total"] = _money(read_only=True)
        fields["total"] = _money(read_only=True)
    if spec.carries_balance or (spec.applies_to and not spec.is_payment):
        fields["balance"] = _money(
            read_only=True,
            help_text=_("Amount still due.") if spec.carries_balance else _("Credits not yet applied."),
        )
    if not spec.is_payment:
        fields["is_draft"] = serializers.BooleanField(
            write_only=True, required=False, help_text=_("Create as a draft instead of issuing it. Only on create.")
        )
    fields["notes"] = serializers.CharField(required=False, allow_blank=True)
    if spec.has_lines:
        fields["terms"] = serializers.CharField(required=False, allow_blank=True)
    fields["contact_persons"] = OrganizationRelatedField(
        source="share_with",
        many=True,
        required=False,
        queryset=ContactPerson.objects.all(),
        organization_path="contact__organization",
        noun=_("Contact person"),
        help_text=_("Ids of the contact's persons who receive this document."),
    )
    fields["created_time"] = serializers.DateTimeField(source="created_at", read_only=True)
    fields["last_modified_time"] = serializers.DateTimeField(source="updated_at", read_only=True)
    return type(
        f"{component_name(spec)}Serializer",
        (DocumentSerializer,),
        {"spec": spec, "__doc__": f"A document of kind ``{spec.kind}`` (``/{spec.api_resource}``).", **fields},
    )


def document_filter_serializer(spec: KindSpec) -> type[serializers.Serializer]:
    """Query parameters of ``GET /<resource>``."""
    fields = {
        "status": serializers.ChoiceField(
            choices=[(status, DocumentStatus(status).label) for status in spec.filter_statuses],
            required=False,
            help_text=_("The status shown: 'overdue' is derived from the due date and the balance."),
        ),
        f"{spec.party}_id": serializers.IntegerField(
            source="contact_id", required=False, min_value=1, max_value=2**63 - 1
        ),
        "search_text": serializers.CharField(
            required=False, max_length=100, help_text=_("Part of the number, the reference or the contact's name.")
        ),
        "date_start": BoundedDateField(required=False, help_text=_("Documents dated on or after this day.")),
        "date_end": BoundedDateField(required=False, help_text=_("Documents dated on or before this day.")),
    }
    return type(f"{component_name(spec)}Filter", (serializers.Serializer,), fields)
