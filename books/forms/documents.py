"""Forms of the document pages: the header, the line items formset and the amounts a payment applies.

``DocumentEditor`` binds the three together for one page, turns them into the keyword arguments of
``books.services.documents.document_create`` / ``document_update``, and puts the service's own
``ValidationError`` back on the field it names, so the page never has to know which form owns what.
"""

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from books.choices import ContactType, PaymentMode
from books.kinds import KindSpec
from books.models import ZERO, Contact, ContactPerson, Document, Organization
from books.selectors import payment_target_list
from books.services.documents import AllocationInput, LineInput

# Largest amount a line or a document can reach: Document.total holds 18 digits, 2 of them decimals.
MAX_AMOUNT = Decimal("1e16")
CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")


def _plain(value: Decimal) -> str:
    """``2.000`` as ``2`` and ``1.500`` as ``1.5``, never in exponent notation."""
    return format(value.normalize(), "f")


class ContactSelect(forms.Select):
    """A select whose options carry the contact's currency, for the page's live totals."""

    def create_option(
        self,
        name: str,
        value: Any,
        label: str,
        selected: bool,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if isinstance(instance, Contact):
            option["attrs"]["data-currency"] = instance.currency or instance.organization.currency
        return option


class ContactChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Contact) -> str:
        if not obj.is_active:
            return _("%(name)s (inactive)") % {"name": obj.display_name}
        return obj.display_name


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _decimal_input(**attrs: Any) -> forms.TextInput:
    # Text, not type=number: browsers reject "1,500.00" silently and the server says why instead.
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", **attrs})


class DocumentHeaderForm(forms.Form):
    """Everything above the line items (and, for payments, the payment itself)."""

    contact = ContactChoiceField(queryset=Contact.objects.none(), widget=ContactSelect)
    date = forms.DateField(label=_("Date"), widget=DateInput)
    due_date = forms.DateField(label=_("Due date"), required=False, widget=DateInput)
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=18,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=_decimal_input(**{"data-payment-amount": ""}),
        error_messages={"min_value": _("Enter an amount greater than zero.")},
    )
    payment_mode = forms.ChoiceField(label=_("Payment mode"), choices=PaymentMode.choices, initial=PaymentMode.CASH)
    reference_number = forms.CharField(label=_("Reference #"), max_length=64, required=False)
    currency = forms.CharField(
        label=_("Currency"),
        max_length=3,
        required=False,
        help_text=_("Leave empty to use the contact's currency."),
        widget=forms.TextInput(attrs={"size": 4, "data-currency-input": "", "autocomplete": "off"}),
    )
    notes = forms.CharField(label=_("Customer notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    terms = forms.CharField(label=_("Terms & conditions"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    share_with = forms.ModelMultipleChoiceField(
        label=_("Share with"), queryset=ContactPerson.objects.none(), required=False
    )

    def __init__(
        self,
        *args: Any,
        spec: KindSpec,
        organization: Organization,
        document: Document | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.organization = organization
        self.document = document
        party = ContactType(spec.party).label
        contact = self.fields["contact"]
        contact.label = party
        contact.queryset = (
            Contact.objects.filter(organization=organization, contact_type=spec.party)
            .select_related("organization")
            .order_by("-is_active", "display_name")
        )
        contact.empty_label = _("Choose a %(party)s") % {"party": party.lower()}
        contact.error_messages["invalid_choice"] = _("Choose a %(party)s of this organization.") % {
            "party": party.lower()
        }
        contact.widget.attrs["data-contact-select"] = ""
        self.fields["share_with"].queryset = ContactPerson.objects.filter(contact__organization=organization)
        if spec.has_due_date:
            due = self.fields["due_date"]
            due.label = spec.due_date_label or _("Due date")
            if spec.can_be_overdue:
                if document is None:
                    due.help_text = _("Leave empty to use the contact's payment terms.")
                else:
                    due.required = True
        else:
            del self.fields["due_date"]
        if spec.is_payment:
            del self.fields["terms"]
            self.fields["notes"].label = _("Notes")
        else:
            del self.fields["amount"]
            del self.fields["payment_mode"]
        if document is not None and document.allocations_in.exists():
            # Payments from this contact are applied to it: they cannot follow it to another one.
            for name in ("contact", "currency"):
                self.fields[name].disabled = True
                self.fields[name].help_text = _("Payments are applied to this document.")

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip()
        if currency and not CURRENCY_RE.match(currency):
            raise ValidationError(_("Enter a three-letter ISO 4217 code, e.g. INR."), code="invalid")
        return currency.upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        contact = cleaned.get("contact")
        if contact is not None and not cleaned.get("currency"):
            cleaned["currency"] = contact.effective_currency
        return cleaned

    def selected_contact(self) -> Contact | None:
        """The contact chosen in the (bound or initial) form, if it is one this form offers."""
        value = self["contact"].value()
        if isinstance(value, Contact):
            return value
        try:
            return self.fields["contact"].to_python(value)
        except ValidationError:
            return None

    def selected_person_ids(self) -> set[int] | None:
        """Ids ticked under "Share with"; None when nothing was submitted or set yet."""
        if self.is_bound:
            return {int(v) for v in self.data.getlist("share_with") if str(v).isdigit()}
        initial = self.initial.get("share_with")
        if initial is None:
            return None
        return {p.pk if isinstance(p, ContactPerson) else int(p) for p in initial}


def share_with_choices(contact: Contact | None, selected: set[int] | None) -> list[tuple[ContactPerson, bool]]:
    """The contact's persons with whether each is ticked; by default the primary person is."""
    if contact is None:
        return []
    persons = list(contact.persons.all())
    if selected is None:
        primary = contact.primary_person
        selected = {primary.pk} if primary else set()
    return [(person, person.pk in selected) for person in persons]


class LineForm(forms.Form):
    item = forms.CharField(label=_("Item"), max_length=200, widget=forms.TextInput(attrs={"data-line-item": ""}))
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 1, "data-line-description": ""})
    )
    quantity = forms.DecimalField(
        label=_("Quantity"),
        max_digits=14,
        decimal_places=3,
        min_value=Decimal("0.001"),
        initial=Decimal("1"),
        widget=_decimal_input(**{"data-line-quantity": "", "size": 6}),
        error_messages={"min_value": _("Quantity must be greater than zero.")},
    )
    rate = forms.DecimalField(
        label=_("Rate"),
        max_digits=18,
        decimal_places=2,
        min_value=ZERO,
        widget=_decimal_input(**{"data-line-rate": "", "size": 10}),
        error_messages={"min_value": _("Rate cannot be negative.")},
    )
    tax_percent = forms.DecimalField(
        label=_("Tax %"),
        max_digits=5,
        decimal_places=2,
        min_value=ZERO,
        max_value=Decimal("100"),
        required=False,
        initial=ZERO,
        widget=_decimal_input(**{"data-line-tax": "", "size": 5}),
        error_messages={
            "min_value": _("Tax %% must be between 0 and 100."),
            "max_value": _("Tax %% must be between 0 and 100."),
        },
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.gross() >= MAX_AMOUNT:
            raise ValidationError(_("This line's amount is too large."), code="too_large")
        return cleaned

    def gross(self) -> Decimal:
        """Quantity × rate plus tax, or zero while a figure is missing (bounds the stored total)."""
        data = getattr(self, "cleaned_data", {})
        quantity, rate = data.get("quantity"), data.get("rate")
        if quantity is None or rate is None:
            return ZERO
        return quantity * rate * (1 + (data.get("tax_percent") or ZERO) / 100)

    def line_input(self) -> LineInput:
        data = self.cleaned_data
        return LineInput(
            item=data["item"],
            quantity=data["quantity"],
            rate=data["rate"],
            tax_percent=data.get("tax_percent") or ZERO,
            description=data.get("description", ""),
        )


class BaseLineFormSet(forms.BaseFormSet):
    def kept_forms(self) -> list[LineForm]:
        """Filled-in lines, in order, leaving out blank rows and rows marked for removal."""
        return [
            form
            for form in self.forms
            if form.has_changed() and not self._should_delete_form(form) and getattr(form, "cleaned_data", None)
        ]

    def clean(self) -> None:
        if any(self.errors):
            return
        kept = self.kept_forms()
        if not kept:
            raise ValidationError(_("Add at least one line item."), code="no_lines")
        if sum((form.gross() for form in kept), ZERO) >= MAX_AMOUNT:
            raise ValidationError(_("The total is too large."), code="too_large")

    def line_inputs(self) -> list[LineInput]:
        return [form.line_input() for form in self.kept_forms()]


def line_formset_class(*, extra: int) -> type[BaseLineFormSet]:
    return forms.formset_factory(LineForm, formset=BaseLineFormSet, extra=extra, can_delete=True)


class PaymentApplyForm(forms.Form):
    """One "amount to apply" per open document of the paying contact (fields ``apply_<id>``)."""

    def __init__(self, *args: Any, targets: Sequence[Document], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets = list(targets)
        for target in self.targets:
            self.fields[self.field_name(target)] = forms.DecimalField(
                label=_("Amount to apply to %(number)s") % {"number": target.number},
                required=False,
                max_digits=18,
                decimal_places=2,
                min_value=ZERO,
                initial=target.applied_here,
                widget=_decimal_input(**{"data-apply": "", "size": 10, "data-balance": str(target.open_balance)}),
                error_messages={"min_value": _("Enter a positive amount.")},
            )

    @staticmethod
    def field_name(target: Document) -> str:
        return f"apply_{target.pk}"

    def rows(self) -> list[tuple[Document, forms.BoundField]]:
        return [(target, self[self.field_name(target)]) for target in self.targets]

    def allocations(self) -> list[AllocationInput]:
        allocations = []
        for target in self.targets:
            amount = self.cleaned_data.get(self.field_name(target))
            if amount:  # empty and zero mean "do not apply"
                allocations.append(AllocationInput(target=target, amount=amount))
        return allocations


class DocumentEditor:
    """The forms of one create/edit page, validated together and handed to the service together."""

    def __init__(
        self,
        *,
        spec: KindSpec,
        organization: Organization,
        data: Mapping[str, Any] | None = None,
        document: Document | None = None,
        initial: Mapping[str, Any] | None = None,
        apply_initial: Mapping[int, Decimal] | None = None,
    ) -> None:
        self.spec = spec
        self.organization = organization
        self.document = document
        self.service_errors: list[str] = []
        if document is not None and initial is None:
            initial = self._initial_from(document)
        self.header = DocumentHeaderForm(
            data, spec=spec, organization=organization, document=document, initial=dict(initial or {})
        )
        self.lines: BaseLineFormSet | None = None
        if spec.has_lines:
            line_initial = [
                {
                    "item": line.item,
                    "description": line.description,
                    "quantity": _plain(line.quantity),
                    "rate": line.rate,
                    "tax_percent": line.tax_percent,
                }
                for line in (document.lines.all() if document is not None else ())
            ]
            formset_class = line_formset_class(extra=0 if line_initial else 1)
            self.lines = formset_class(data, prefix="lines", initial=line_initial or None)
        self.apply: PaymentApplyForm | None = None
        self.contact = self.header.selected_contact()
        if spec.is_payment:
            targets = payment_target_list(spec=spec, contact=self.contact, payment=document) if self.contact else []
            for target in targets:
                if apply_initial and target.pk in apply_initial:
                    target.applied_here = apply_initial[target.pk]
            self.apply = PaymentApplyForm(data, targets=targets)

    @staticmethod
    def _initial_from(document: Document) -> dict[str, Any]:
        return {
            "contact": document.contact,
            "date": document.date,
            "due_date": document.due_date,
            "amount": document.total,
            "payment_mode": document.payment_mode,
            "reference_number": document.reference_number,
            "currency": document.currency,
            "notes": document.notes,
            "terms": document.terms,
            "share_with": list(document.share_with.all()),
        }

    @property
    def share_with(self) -> list[tuple[ContactPerson, bool]]:
        return share_with_choices(self.contact, self.header.selected_person_ids())

    @property
    def line_errors(self) -> list[str]:
        errors = list(self.lines.non_form_errors()) if self.lines is not None and self.lines.is_bound else []
        return errors + self.service_errors

    def is_valid(self) -> bool:
        forms_ = [f for f in (self.header, self.lines, self.apply) if f is not None]
        return all([f.is_valid() for f in forms_])  # a list, so every form is validated and shows its errors

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for document_create / document_update. Call after is_valid()."""
        data = self.header.cleaned_data
        kwargs: dict[str, Any] = {
            "contact": data["contact"],
            "date": data["date"],
            "reference_number": data["reference_number"],
            "currency": data["currency"],
            "notes": data["notes"],
            "share_with": list(data["share_with"]),
        }
        if self.spec.has_due_date:
            kwargs["due_date"] = data["due_date"]
        if self.lines is not None:
            kwargs["terms"] = data["terms"]
            kwargs["lines"] = self.lines.line_inputs()
        if self.apply is not None:
            kwargs["amount"] = data["amount"]
            kwargs["payment_mode"] = data["payment_mode"]
            kwargs["allocations"] = self.apply.allocations()
        return kwargs

    def add_service_error(self, error: ValidationError) -> None:
        """Show a ValidationError raised by the service on the field it names, else on the form."""
        if not hasattr(error, "error_dict"):
            self.header.add_error(None, error.messages)
            return
        for field, errors in error.error_dict.items():
            messages = ValidationError(errors).messages
            if field == "lines" and self.lines is not None:
                self.service_errors.extend(messages)
            elif field == "allocations" and self.apply is not None:
                self.apply.add_error(None, messages)
            elif field in self.header.fields:
                self.header.add_error(field, messages)
            else:
                self.header.add_error(None, messages)

    @property
    def has_errors(self) -> bool:
        return bool(
            self.header.errors
            or (self.lines is not None and self.lines.is_bound and self.lines.total_error_count())
            or (self.apply is not None and self.apply.errors)
            or self.service_errors
        )
