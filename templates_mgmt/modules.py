"""What each template module speaks about, in one table.

A template of the invoices module is rendered from an invoice, one of the customer statements
module from a statement, one of the customers module from the customer alone. Validation (which
headers a module may use), the field catalogue and rendering all read this table, so a module's
rules live in one place.
"""

from dataclasses import dataclass

from books.choices import ContactType, DocumentKind

from .choices import Module


@dataclass(frozen=True)
class ModuleSpec:
    module: str
    party: str  # ContactType: who receives the message
    #: The document kind a template of this module is rendered from; None for contact-only and statement modules.
    document_kind: str | None = None
    #: Rendered from a statement of account (opening/closing balance, period).
    uses_statement: bool = False

    @property
    def has_pdf(self) -> bool:
        """A dynamic attachment needs a PDF of its own to send: a document's or a statement's."""
        return self.document_kind is not None or self.uses_statement

    @property
    def allows_static_attachment(self) -> bool:
        """Meta's static attachments are offered only for customer notifications (as in Zoho Books)."""
        return self.module == Module.CUSTOMERS


MODULES: dict[str, ModuleSpec] = {
    spec.module: spec
    for spec in (
        ModuleSpec(Module.CUSTOMERS, ContactType.CUSTOMER),
        ModuleSpec(Module.INVOICES, ContactType.CUSTOMER, DocumentKind.INVOICE),
        ModuleSpec(Module.PAYMENT_REMINDERS, ContactType.CUSTOMER, DocumentKind.INVOICE),
        ModuleSpec(Module.SALES_ORDERS, ContactType.CUSTOMER, DocumentKind.SALES_ORDER),
        ModuleSpec(Module.QUOTES, ContactType.CUSTOMER, DocumentKind.ESTIMATE),
        ModuleSpec(Module.RETAINER_INVOICES, ContactType.CUSTOMER, DocumentKind.RETAINER_INVOICE),
        ModuleSpec(Module.CREDIT_NOTES, ContactType.CUSTOMER, DocumentKind.CREDIT_NOTE),
        ModuleSpec(Module.SALES_RECEIPTS, ContactType.CUSTOMER, DocumentKind.SALES_RECEIPT),
        ModuleSpec(Module.PAYMENTS_RECEIVED, ContactType.CUSTOMER, DocumentKind.CUSTOMER_PAYMENT),
        ModuleSpec(Module.CUSTOMER_STATEMENTS, ContactType.CUSTOMER, uses_statement=True),
        ModuleSpec(Module.VENDORS, ContactType.VENDOR),
        ModuleSpec(Module.VENDOR_STATEMENTS, ContactType.VENDOR, uses_statement=True),
    )
}
