"""Sending a document (or a statement, or a general notice) to a contact's people over WhatsApp.

Every notification takes this path, whatever pressed the button (the document page, the REST
API, a bulk selection, a reminder rule):

1. :func:`notification_plan` says what would happen — the module's approved templates, the
   chosen one rendered for this document, each contact person and whether they can receive it,
   the credits it needs — and the first rule that stops it, so the page can show it before Send.
2. :func:`notification_send` checks the rules in a fixed order and says which one failed:
   integration active, module enabled, template approved and of this module, recipients opted in
   with a valid mobile number, document neither draft nor void, a number assigned to the
   audience × category, the template renderable, credits available. Then, in one transaction, it
   writes one ``queued`` message per recipient and reserves their credits; dispatch is enqueued
   when the transaction commits. With an idempotency key, a repeated request returns the first
   request's messages and sends nothing; the same key for a different request is refused.
3. Dispatch (:mod:`whatsapp.services.dispatch`) uploads the PDF and sends; webhooks settle the
   credits from Meta's ``pricing`` or release them when the message fails.

Template components are rendered here, when the accountant presses Send, so what goes out is what
the preview showed. The header's media id is left empty: the PDF is made and uploaded when the
message is dispatched, outside any transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

from books.choices import ContactType
from books.models import Contact, ContactPerson, Document, Organization
from books.phone import is_valid_e164
from books.selectors import Statement, statement_build
from credits.formatting import credits_format
from credits.selectors import PriceTable, credit_balance_get, price_table_get
from credits.services import InsufficientCredits, ReservationRequest, credits_reserve, phone_calling_code
from templates_mgmt.choices import AttachmentMode, HeaderType, Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.modules import MODULES
from templates_mgmt.rendering import (
    RenderedSend,
    TemplateNotSendable,
    TemplatePreview,
    template_preview,
    template_send_render,
)
from templates_mgmt.selectors import module_is_enabled, template_default_get
from whatsapp.choices import Audience, Category
from whatsapp.models import Message, NotificationRequest, PhoneNumber, WhatsAppAccount
from whatsapp.selectors.accounts import account_get_live, channel_number
from whatsapp.services.charges import credits_reference
from whatsapp.services.dispatch import message_template_build, messages_queue


def _kind_modules() -> dict[str, str]:
    """The first module of a kind is its default (invoices, not payment reminders, for an invoice)."""
    modules: dict[str, str] = {}
    for module, spec in MODULES.items():
        if spec.document_kind:
            modules.setdefault(spec.document_kind, module)
    return modules


#: The module a document is sent from by default ("Send → WhatsApp message").
KIND_MODULES: dict[str, str] = _kind_modules()

#: Placeholder given to the renderer for a media header; dispatch puts the uploaded id in its place.
_PENDING_MEDIA = "pending-upload"


# --- What is sent, and why it can't be -------------------------------------------------------------


class NotificationRefused(Exception):
    """A rule stopped the notification. ``code`` says which (stable, for the API), ``message`` says
    it to the accountant, ``field`` names the request field at fault, ``url`` where to fix it.

    Codes: ``integration_inactive``, ``module_disabled``, ``template_missing``,
    ``template_not_approved``, ``template_wrong_module``, ``template_not_sendable``,
    ``no_recipients``, ``recipient_not_opted_in``, ``recipient_invalid_number``,
    ``recipient_not_of_contact``, ``document_not_sendable``, ``nothing_due`` (a payment reminder
    for a paid invoice), ``no_channel_number``, ``insufficient_credits``.
    """

    def __init__(self, code: str, message: str, *, field: str = "", url: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.url = url
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        if self.url:
            data["url"] = self.url
        data.update({key: str(value) for key, value in self.extra.items()})
        return data


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


@dataclass(frozen=True)
class Subject:
    """What a notification is about: one document, or a contact alone (a general or marketing
    notice), or a contact's statement for a period."""

    organization: Organization
    module: str
    contact: Contact
    document: Document | None = None
    statement_from: datetime.date | None = None
    statement_to: datetime.date | None = None
    #: The contact's people (primary first) and the document's "Share with" ids when the caller
    #: loaded them for many subjects at once (bulk sends); None: read through the relations.
    persons: tuple[ContactPerson, ...] | None = field(default=None, compare=False, repr=False)
    share_with: frozenset[int] | None = field(default=None, compare=False, repr=False)

    @property
    def audience(self) -> str:
        return Audience.VENDOR if self.contact.contact_type == ContactType.VENDOR else Audience.CUSTOMER

    @cached_property
    def statement(self) -> Statement | None:
        if self.statement_from is None or self.statement_to is None:
            return None
        return statement_build(contact=self.contact, from_date=self.statement_from, to_date=self.statement_to)

    def render_sources(self) -> dict[str, Any]:
        """The keyword arguments the template renderer reads this subject from."""
        if self.document is not None:
            return {"document": self.document}
        if self.statement is not None:
            return {"statement": self.statement}
        return {"contact": self.contact}

    @property
    def fingerprint_parts(self) -> list[Any]:
        return [
            self.module,
            self.contact.pk,
            self.document.pk if self.document else None,
            self.statement_from.isoformat() if self.statement_from else None,
            self.statement_to.isoformat() if self.statement_to else None,
        ]


def subject_for_document(
    *,
    document: Document,
    module: str | None = None,
    persons: Sequence[ContactPerson] | None = None,
    share_with: Iterable[int] | None = None,
) -> Subject:
    """A document's notification; ``module`` picks another module of the same kind
    (``payment_reminders`` for an invoice). ``persons`` (the contact's people, primary first) and
    ``share_with`` (person ids) save their queries when already loaded. Raises
    :class:`NotificationRefused` for a kind no module sends (bills, payments made)."""
    module = module or KIND_MODULES.get(document.kind)
    spec = MODULES.get(module or "")
    if spec is None or spec.document_kind != document.kind:
        raise NotificationRefused(
            "template_wrong_module",
            _("%(kind)s can't be sent over WhatsApp from this module.") % {"kind": document.spec.label_plural},
            field="module",
        )
    return Subject(
        organization=document.organization,
        module=module,
        contact=document.contact,
        document=document,
        persons=tuple(persons) if persons is not None else None,
        share_with=frozenset(share_with) if share_with is not None else None,
    )


def subject_for_contact(
    *,
    contact: Contact,
    module: str | None = None,
    statement_from: datetime.date | None = None,
    statement_to: datetime.date | None = None,
    persons: Sequence[ContactPerson] | None = None,
) -> Subject:
    """A notice to a customer or vendor (Customers / Vendors module), or their statement for a
    period (the statement modules; the period defaults to this month up to today). ``persons``
    (the contact's people, primary first) saves their query when already loaded."""
    vendor = contact.contact_type == ContactType.VENDOR
    module = module or (Module.VENDORS if vendor else Module.CUSTOMERS)
    spec = MODULES.get(module)
    if spec is None or spec.document_kind is not None or spec.party != contact.contact_type:
        raise NotificationRefused(
            "template_wrong_module",
            _("This module can't send notices to %(contact)s.") % {"contact": contact.display_name},
            field="module",
        )
    if spec.uses_statement:
        today = contact.organization.today()
        statement_to = statement_to or today
        statement_from = statement_from or statement_to.replace(day=1)
        if statement_from > statement_to:
            raise NotificationRefused(
                "invalid_period", _("The statement period ends before it starts."), field="statement_from"
            )
    else:
        statement_from = statement_to = None
    return Subject(
        organization=contact.organization,
        module=module,
        contact=contact,
        statement_from=statement_from,
        statement_to=statement_to,
        persons=tuple(persons) if persons is not None else None,
    )


# --- Recipients ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientCheck:
    """A contact person and whether WhatsApp can reach them (``problem`` is empty when it can)."""

    person: ContactPerson
    phone: str
    code: str = ""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.code


def recipient_check(person: ContactPerson, *, contact: Contact) -> RecipientCheck:
    phone = person.whatsapp_number
    if person.contact_id != contact.pk:
        return RecipientCheck(
            person,
            phone,
            "recipient_not_of_contact",
            _("%(person)s is not a contact person of %(contact)s.")
            % {"person": person.name, "contact": contact.display_name},
        )
    if not contact.whatsapp_enabled:
        return RecipientCheck(
            person,
            phone,
            "recipient_not_opted_in",
            _("WhatsApp is not enabled as a communication channel for %(contact)s.")
            % {"contact": contact.display_name},
        )
    if not person.whatsapp_enabled:
        return RecipientCheck(
            person,
            phone,
            "recipient_not_opted_in",
            _("WhatsApp is not enabled as a communication channel for %(person)s.") % {"person": person.name},
        )
    if not is_valid_e164(phone):
        return RecipientCheck(
            person,
            phone,
            "recipient_invalid_number",
            _("%(person)s has no valid mobile number with its country code (%(phone)s).")
            % {"person": person.name, "phone": phone or _("none")},
        )
    return RecipientCheck(person, phone)


def recipient_checks(subject: Subject) -> list[RecipientCheck]:
    """Every person of the subject's contact with whether WhatsApp can reach them, primary first."""
    persons = subject.persons if subject.persons is not None else subject.contact.persons.all()
    return [recipient_check(person, contact=subject.contact) for person in persons]


def recipients_or_why_not(subject: Subject) -> list[ContactPerson]:
    """The preselected people (:func:`default_recipients`); when nobody can receive the message,
    the reason of the first person (or that the contact has nobody) is raised."""
    return [check.person for check in recipient_checks_or_why_not(subject)]


def recipient_checks_or_why_not(subject: Subject) -> list[RecipientCheck]:
    """:func:`recipients_or_why_not` with each person's check, for :func:`subject_recipients_check`
    (a bulk send checks each person once)."""
    checks = recipient_checks(subject)
    chosen = _default_checks(subject, checks)
    if not chosen and checks:
        raise NotificationRefused(checks[0].code, checks[0].problem, field="contact_persons")
    return chosen


def default_recipients(subject: Subject, checks: Sequence[RecipientCheck]) -> list[ContactPerson]:
    """Who is preselected: the document's "Share with" people who can receive WhatsApp, else
    everyone of the contact who can."""
    return [check.person for check in _default_checks(subject, checks)]


def _default_checks(subject: Subject, checks: Sequence[RecipientCheck]) -> list[RecipientCheck]:
    reachable = [check for check in checks if check.ok]
    if subject.document is not None:
        shared = subject.share_with
        if shared is None:
            shared = frozenset(person.pk for person in subject.document.share_with.all())
        chosen = [check for check in reachable if check.person.pk in shared]
        if chosen:
            return chosen
    return reachable


# --- The plan: what Send would do ------------------------------------------------------------------


@dataclass
class NotificationPlan:
    """What the Send page shows before anything is sent."""

    subject: Subject
    account: WhatsAppAccount | None
    templates: list[MessageTemplate]
    template: MessageTemplate | None
    recipients: list[RecipientCheck]
    selected: list[ContactPerson]
    preview: TemplatePreview | None
    credits_needed: Decimal
    credits_available: Decimal
    refusal: NotificationRefused | None = None
    phone_number: PhoneNumber | None = None
    selected_ids: set[int] = field(default_factory=set)


def module_templates(*, organization: Organization, module: str) -> list[MessageTemplate]:
    """The approved templates of ``module``, the default first."""
    return list(
        MessageTemplate.objects.filter(
            organization=organization, module=module, status=TemplateStatus.APPROVED
        ).order_by("-is_default", "name", "language")
    )


def template_chosen(*, organization: Organization, raw: str) -> MessageTemplate | NotificationRefused | None:
    """The template a page's form asked for by id (``raw``, as typed): any of the organization's, so
    the checks say why it can't be used (another module's, not approved); None when none was asked
    for — the module's default.

    An id that names none of the organization's templates (unknown, another organization's,
    deleted) is a refusal, never the default in its place: the template chosen on a page may be
    deleted before Send, and another one must not go out instead.
    """
    raw = raw.strip()
    if not raw:
        return None
    template = None
    if raw.isdigit() and len(raw) < 19:  # a bigint
        template = (
            MessageTemplate.objects.filter(organization=organization, pk=int(raw))
            .exclude(status=TemplateStatus.DELETED)
            .first()
        )
    if template is None:
        return NotificationRefused(
            "template_not_found",
            _("The chosen message template no longer exists. Choose another one."),
            field="template",
        )
    return template


def notification_plan(
    *,
    subject: Subject,
    template: MessageTemplate | None = None,
    contact_persons: Sequence[ContactPerson] | None = None,
) -> NotificationPlan:
    """Everything the Send page shows, and the first rule that would refuse the send (if any)."""
    organization = subject.organization
    templates = module_templates(organization=organization, module=subject.module)
    template = template or template_default_get(organization=organization, module=subject.module)
    template = template or (templates[0] if templates else None)
    checks = recipient_checks(subject)
    selected = list(contact_persons) if contact_persons is not None else default_recipients(subject, checks)
    preview = None
    if template is not None:
        try:
            person = selected[0] if selected else None
            preview = template_preview(template=template, person=person, **subject.render_sources())
        except TemplateNotSendable:
            preview = None
    account = account_get_live(organization=organization)
    plan = NotificationPlan(
        subject=subject,
        account=account,
        templates=templates,
        template=template,
        recipients=checks,
        selected=selected,
        preview=preview,
        credits_needed=Decimal("0"),
        credits_available=credit_balance_get(organization=organization).available,
        selected_ids={person.pk for person in selected},
    )
    try:
        checked = _check(subject, template, selected)
    except NotificationRefused as refusal:
        plan.refusal = refusal
    else:
        plan.phone_number = checked.phone_number
        plan.credits_needed = checked.credits_needed()
        if plan.credits_needed > plan.credits_available:
            plan.refusal = _insufficient(organization, plan.credits_needed, plan.credits_available)
    return plan


# --- Sending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationResult:
    messages: list[Message]
    #: True when an earlier request with the same idempotency key answered and nothing was sent now.
    replayed: bool = False


@dataclass
class _Checked:
    """A notification that passed every rule: what to write for each recipient."""

    subject: Subject
    account: WhatsAppAccount
    phone_number: PhoneNumber
    template: MessageTemplate
    category: str
    recipients: list[RecipientCheck]
    #: The first recipient's send, rendered by the check; reused when that message is built.
    first_rendered: RenderedSend | None = None

    def credits_needed(self, prices: PriceTable | None = None) -> Decimal:
        """What the recipients' messages reserve; ``prices`` saves the price query when pricing many."""
        prices = prices or price_table_get(organization=self.subject.organization)
        return sum((message_price(prices, self.category, r.phone) for r in self.recipients), Decimal("0"))


def notification_send(
    *,
    subject: Subject,
    template: MessageTemplate | None = None,
    contact_persons: Sequence[ContactPerson] | None = None,
    user: Any = None,
    idempotency_key: str = "",
) -> NotificationResult:
    """Queue one message per recipient and reserve their credits, or say which rule refused.

    ``template`` defaults to the module's default; ``contact_persons`` to the document's "Share
    with" people who can receive WhatsApp. Raises :class:`NotificationRefused` (nothing written)
    or :class:`IdempotencyConflict`.
    """
    organization = subject.organization
    # The request as it was asked (before defaults are filled in) is what a retry must repeat.
    fingerprint = _fingerprint(subject, template, contact_persons)
    template = template or template_default_get(organization=organization, module=subject.module)
    with transaction.atomic():
        request = None
        if idempotency_key:
            request, created = NotificationRequest.objects.get_or_create(
                organization=organization,
                key=idempotency_key[:255],
                defaults={"fingerprint": fingerprint, "created_by": _user(user)},
            )
            if not created:
                if request.fingerprint != fingerprint:
                    raise IdempotencyConflict(_("This Idempotency-Key was already used for a different request."))
                messages = list(Message.objects.filter(pk__in=request.message_ids).order_by("pk"))
                return NotificationResult(messages=messages, replayed=True)
        context = send_context(organization=organization, module=subject.module, template=template)
        persons = list(contact_persons) if contact_persons is not None else recipients_or_why_not(subject)
        checked = subject_check(context, subject, persons)
        messages = messages_queue([_message_build(checked, recipient, user) for recipient in checked.recipients])
        try:
            credits_reserve(
                organization=organization, requests=reservation_requests(organization, messages), user=_user(user)
            )
        except InsufficientCredits as exc:
            transaction.set_rollback(True)
            raise _insufficient(organization, exc.needed, exc.available) from exc
        if request is not None:
            request.message_ids = [message.pk for message in messages]
            request.save(update_fields=["message_ids"])
    return NotificationResult(messages=messages)


@dataclass
class SendContext:
    """What is the same for every notification of one module with one template: the rules that
    concern the organization (checked once for a bulk send) and the numbers that send."""

    organization: Organization
    module: str
    template: MessageTemplate
    account: WhatsAppAccount
    category: str
    numbers: dict[str, PhoneNumber | None] = field(default_factory=dict)

    def phone_number(self, audience: str) -> PhoneNumber | None:
        if audience not in self.numbers:
            self.numbers[audience] = channel_number(account=self.account, audience=audience, category=self.category)
        return self.numbers[audience]


def send_context(*, organization: Organization, module: str, template: MessageTemplate | None) -> SendContext:
    """The organization's rules, in order: integration active, module enabled, template approved
    and of this module. Raises :class:`NotificationRefused` for the first that fails."""
    account = account_get_live(organization=organization)
    if account is None or not account.can_send:
        status = account.get_status_display() if account is not None else _("not connected")
        raise NotificationRefused(
            "integration_inactive",
            _("WhatsApp is not active for this organization (status: %(status)s).") % {"status": status},
            url=reverse("whatsapp:integration"),
        )
    module_label = Module(module).label
    if not module_is_enabled(organization=organization, module=module):
        raise NotificationRefused(
            "module_disabled",
            _("WhatsApp notifications are turned off for %(module)s. Turn them on in Settings → WhatsApp.")
            % {"module": module_label},
            url=reverse("whatsapp:template_modules"),
        )
    if template is None:
        raise NotificationRefused(
            "template_missing",
            _("%(module)s has no approved WhatsApp template. Create one and wait for WhatsApp's approval.")
            % {"module": module_label},
            field="template",
            url=reverse("whatsapp:template_list"),
        )
    if template.organization_id != organization.pk or template.module != module:
        raise NotificationRefused(
            "template_wrong_module",
            _("“%(name)s” is not a template of %(module)s.") % {"name": template.name, "module": module_label},
            field="template",
        )
    if template.status != TemplateStatus.APPROVED:
        raise NotificationRefused(
            "template_not_approved",
            _("“%(name)s” isn't approved by WhatsApp (status: %(status)s).")
            % {"name": template.name, "status": template.get_status_display()},
            field="template",
        )
    category = (template.category or Category.UTILITY).lower()
    return SendContext(organization, module, template, account, category)


def subject_check(context: SendContext, subject: Subject, persons: Sequence[ContactPerson]) -> _Checked:
    """The rules of one notification, after the organization's: recipients opted in with a valid
    number, a number for the audience × category, the document issued, the template renderable."""
    return subject_recipients_check(context, subject, [recipient_check(p, contact=subject.contact) for p in persons])


def subject_recipients_check(context: SendContext, subject: Subject, recipients: Sequence[RecipientCheck]) -> _Checked:
    """:func:`subject_check` of recipients already checked (:func:`recipient_check`)."""
    if not recipients:
        raise NotificationRefused(
            "no_recipients",
            _("Choose at least one contact person of %(contact)s with WhatsApp enabled and a valid mobile number.")
            % {"contact": subject.contact.display_name},
            field="contact_persons",
        )
    for recipient in recipients:
        if not recipient.ok:
            raise NotificationRefused(recipient.code, recipient.problem, field="contact_persons")
    phone_number = context.phone_number(subject.audience)
    if phone_number is None:
        raise NotificationRefused(
            "no_channel_number",
            _("No verified WhatsApp number is assigned to %(audience)s · %(category)s: assign one in the settings.")
            % {"audience": Audience(subject.audience).label, "category": Category(context.category).label},
            url=reverse("whatsapp:integration"),
        )
    document = subject.document
    if document is not None and document.is_draft_or_void:
        raise NotificationRefused(
            "document_not_sendable",
            _("%(number)s is %(status)s: only issued documents can be sent.")
            % {"number": document.number, "status": document.get_status_display().lower()},
        )
    if document is not None and subject.module == Module.PAYMENT_REMINDERS and document.balance <= 0:
        raise NotificationRefused(
            "nothing_due",
            _("%(number)s is paid: there is nothing to remind the customer of.") % {"number": document.number},
        )
    try:
        rendered = template_send_render(
            template=context.template, person=recipients[0].person, media_id=_PENDING_MEDIA, **subject.render_sources()
        )
    except TemplateNotSendable as exc:
        raise NotificationRefused("template_not_sendable", exc.message, field="template") from exc
    return _Checked(
        subject, context.account, phone_number, context.template, context.category, list(recipients), rendered
    )


def _check(subject: Subject, template: MessageTemplate | None, persons: Sequence[ContactPerson]) -> _Checked:
    """Every rule, in the order the accountant reads them; the first that fails is raised."""
    context = send_context(organization=subject.organization, module=subject.module, template=template)
    return subject_check(context, subject, persons)


def _message_build(checked: _Checked, recipient: RecipientCheck, user: Any) -> Message:
    """One recipient's message, rendered now (what the preview showed is what goes), not saved."""
    subject, template = checked.subject, checked.template
    if recipient is checked.recipients[0] and checked.first_rendered is not None:
        rendered = checked.first_rendered
    else:
        rendered = template_send_render(
            template=template, person=recipient.person, media_id=_PENDING_MEDIA, **subject.render_sources()
        )
    components = rendered.components
    media = _media_plan(template, subject, components)
    return message_template_build(
        account=checked.account,
        to=recipient.phone,
        name=template.name,
        language=template.language,
        components=components,
        content=rendered.body,
        category=checked.category,
        phone_number=checked.phone_number,
        contact=subject.contact,
        contact_person=recipient.person,
        document=subject.document,
        template=template,
        module=subject.module,
        statement_from=subject.statement_from,
        statement_to=subject.statement_to,
        media=media,
        user=user,
    )


def message_price(prices: PriceTable, category: str, phone: str) -> Decimal:
    """Credits one message of ``category`` to ``phone`` reserves."""
    return prices.price(category, phone_calling_code(phone=phone))


def reservation_requests(
    organization: Organization, messages: Sequence[Message], prices: PriceTable | None = None
) -> list[ReservationRequest]:
    """One credits reservation per message, at the price of its category and recipient's country
    (one price query for all of them)."""
    prices = prices or price_table_get(organization=organization)
    return [
        ReservationRequest(
            reference=credits_reference(message.pk),
            amount=message_price(prices, message.category, message.phone),
            category=message.category,
            country_code=phone_calling_code(phone=message.phone),
        )
        for message in messages
    ]


def _media_plan(template: MessageTemplate, subject: Subject, components: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the header's file comes from at dispatch, and the pending id taken out of the components."""
    if template.header_type not in (HeaderType.DOCUMENT, HeaderType.IMAGE):
        return {}
    header = next((item for item in components if item.get("type") == "header"), None)
    parameter = (header or {}).get("parameters", [{}])[0]
    kind = parameter.get("type", "document")
    media_object = parameter.get(kind, {})
    media_object["id"] = ""
    if template.attachment_mode == AttachmentMode.STATIC or (subject.document is None and subject.statement is None):
        source = "static"
        mime = template.attachment_mime or ("application/pdf" if kind == "document" else "image/jpeg")
    else:
        source = "document" if subject.document is not None else "statement"
        mime = "application/pdf"
    return {"source": source, "kind": kind, "filename": media_object.get("filename", ""), "mime_type": mime}


def _insufficient(organization: Organization, needed: Decimal, available: Decimal) -> NotificationRefused:
    return NotificationRefused(
        "insufficient_credits",
        _("Not enough IM credits: this needs %(needed)s and %(available)s are available. Buy IM credits to send it.")
        % {
            "needed": credits_format(needed, organization=organization),
            "available": credits_format(available, organization=organization),
        },
        url=reverse("credits:buy"),
        needed=needed,
        available=available,
    )


def _fingerprint(
    subject: Subject, template: MessageTemplate | None, contact_persons: Sequence[ContactPerson] | None
) -> str:
    persons = sorted(person.pk for person in contact_persons) if contact_persons is not None else None
    parts = [*subject.fingerprint_parts, template.pk if template else None, persons]
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None
