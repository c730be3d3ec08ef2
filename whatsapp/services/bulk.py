"""Bulk sends: "Send → WhatsApp message" on many documents (or contacts) at once.

The request is answered at once: :func:`bulk_send_start` checks what concerns the whole
organization (integration, module, template), records the selection as a :class:`BulkSend` and
enqueues :func:`bulk_send_run`. The task cuts the selection into parts (:class:`BulkSendPart`) that
every free worker helps to write, and each part in chunks; for each document it applies
the same rules as a single send (:func:`~whatsapp.services.notifications.subject_check`) and either
skips it with the reason — draft or void, WhatsApp not enabled for the contact, an invalid number, …
— or renders its messages. Each chunk's messages and their credit reservations are written in one
transaction; when the credits run out, the documents that no longer fit are skipped as such (a
document's recipients are never split). Dispatch is enqueued as each chunk commits, so the first
messages go out while later chunks are still being written.

A bulk send of statements covers one period, fixed when it starts (:func:`bulk_statement_period`):
every message carries it and its PDF is made for it, however late the task runs.

:func:`bulk_plan` runs the same checks without writing, for the summary shown before sending:
how many will go, how many are skipped and why, and the credits it will reserve.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from books.models import Contact, ContactPerson, Document, Organization
from config.gc_tuning import collector_paused
from credits.selectors import PriceTable, credit_balance_get, price_table_get
from credits.services import InsufficientCredits, credits_reserve
from templates_mgmt.models import MessageTemplate
from templates_mgmt.modules import MODULES
from templates_mgmt.selectors import template_default_get
from whatsapp.choices import MessageStatus
from whatsapp.models import BulkSend, BulkSendPart, Message
from whatsapp.services.dispatch import messages_queue
from whatsapp.services.notifications import (
    IdempotencyConflict,
    NotificationRefused,
    SendContext,
    Subject,
    _Checked,
    _message_build,
    message_price,
    recipient_checks_or_why_not,
    reservation_requests,
    send_context,
    subject_for_contact,
    subject_for_document,
    subject_recipients_check,
)

logger = logging.getLogger(__name__)

#: Documents checked, rendered and written per transaction: a part's worth. Each chunk reads its
#: rows, locks the credits and commits once; at 500 that was a twentieth of writing a bulk send.
CHUNK_SIZE = 1000
#: Selected ids per part: the parts of one bulk send are written by as many workers as are free.
PART_SIZE = 1000
#: Helper tasks a bulk send wakes at most (besides its own), so one large bulk send does not fill
#: the queue ahead of everything else.
MAX_HELPERS = 7
#: The most a single bulk request may select.
MAX_SELECTION = 10_000

#: A statement period: the first and the last day (both None for a module that sends no statements).
Period = tuple[datetime.date | None, datetime.date | None]
NO_PERIOD: Period = (None, None)


@dataclass(frozen=True)
class Skipped:
    """One selected document (or contact) that will not be sent, and why.

    ``reason`` is in the language active when it was checked. The task runs with none (the
    default language) and its reasons are read later by people who may use another, so it also
    keeps ``reasons``: the reason in each other language of the interface, by language code
    (:func:`bulk_progress` shows the viewer's). A summary is read at once: it has none.
    """

    id: int
    label: str
    code: str
    reason: str
    reasons: dict[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "label": self.label, "code": self.code, "reason": self.reason}
        if self.reasons:
            data["reasons"] = self.reasons
        return data


def _translations(refusal: NotificationRefused, again: Callable[[], object]) -> dict[str, str]:
    """``refusal``'s message in each other language of the interface (where it reads differently):
    ``again`` refuses the same way anew (raises or returns the refusal) while that language is active.
    The messages carry their parameters already formatted, so the rule is checked again rather
    than its message translated afterwards."""
    current = translation.get_language()
    translated: dict[str, str] = {}
    for language, _name in settings.LANGUAGES:
        if language == current:
            continue
        with translation.override(language):
            try:
                result = again()
                message = result.message if isinstance(result, NotificationRefused) else None
            except NotificationRefused as raised:  # its message, not itself: its traceback holds this frame
                message = raised.message
        if message is not None and message != refusal.message:
            translated[language] = message
    return translated


def _skipped(pk: int, label: str, refusal: NotificationRefused, again: Callable[[], object]) -> Skipped:
    """A skipped one as the task records it: with its reason in every language (``again``: see
    :func:`_translations`)."""
    return Skipped(pk, label, refusal.code, refusal.message, _translations(refusal, again))


def _reason_shown(item: dict[str, Any], language: str | None) -> str:
    """A stored skipped one's reason in ``language``. Rows recorded before the translations were
    kept have their English reason alone: a reason without parameters is still a message of the
    catalog ("Not found in this organization."), the others are shown as recorded."""
    reason = item.get("reason") or ""
    translated = item.get("reasons") or {}
    if language in translated:
        return translated[language]
    return _(reason) if reason and language else reason


@dataclass
class BulkPlan:
    """The summary before a bulk send: what goes, what is skipped and why, what it costs."""

    module: str
    template: MessageTemplate | None
    total: int
    sendable: int = 0
    messages: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    credits_needed: Decimal = Decimal("0")
    credits_available: Decimal = Decimal("0")
    refusal: NotificationRefused | None = None
    #: The period every statement covers (statement modules; None otherwise).
    statement_from: datetime.date | None = None
    statement_to: datetime.date | None = None

    @property
    def can_send(self) -> bool:
        return self.refusal is None and self.sendable > 0


# --- Reading the selection ----------------------------------------------------------------------


#: Columns a bulk send never reads (no template field, rule or message is made of them): left
#: unloaded. The timestamps above all: Django's time-zone-aware loader read five per document.
_UNREAD = {
    Document: ("notes", "terms", "created_at", "updated_at"),
    Contact: ("billing_address", "notes", "created_at", "updated_at"),
    ContactPerson: ("created_at",),
}


def _documents(organization: Organization, module: str, ids: Sequence[int]) -> list[Document]:
    return list(
        Document.objects.filter(organization=organization, kind=MODULES[module].document_kind, pk__any=ids)
        .select_related("contact")
        .defer(*_UNREAD[Document], *(f"contact__{name}" for name in _UNREAD[Contact]))
        .order_by()
    )


def _contacts(organization: Organization, module: str, ids: Sequence[int]) -> list[Contact]:
    return list(
        Contact.objects.filter(organization=organization, contact_type=MODULES[module].party, pk__any=ids)
        .defer(*_UNREAD[Contact])
        .order_by()
    )


_DOCUMENT_ORGANIZATION = Document._meta.get_field("organization")
_CONTACT_ORGANIZATION = Contact._meta.get_field("organization")


@dataclass
class _People:
    """A chunk's contact people (primary first) by contact, and its documents' "Share with" ids:
    two queries for the chunk, where prefetching them built a manager and a queryset per row."""

    persons: dict[int, list[ContactPerson]]
    shared: dict[int, set[int]]

    @classmethod
    def load(cls, rows: Sequence[Document | Contact]) -> _People:
        documents = [row for row in rows if isinstance(row, Document)]
        contact_ids = {row.contact_id if isinstance(row, Document) else row.pk for row in rows}
        persons: dict[int, list[ContactPerson]] = {}
        people = ContactPerson.objects.filter(contact_id__any=list(contact_ids)).defer(*_UNREAD[ContactPerson])
        for person in people.order_by("-is_primary", "pk"):
            persons.setdefault(person.contact_id, []).append(person)
        shared: dict[int, set[int]] = {}
        if documents:
            through = Document.share_with.through
            pairs = through.objects.filter(document_id__any=[row.pk for row in documents]).values_list(
                "document_id", "contactperson_id"
            )
            for document_id, person_id in pairs:
                shared.setdefault(document_id, set()).add(person_id)
        return cls(persons, shared)

    def subject(self, row: Document | Contact, module: str, period: Period) -> Subject:
        if isinstance(row, Document):
            return subject_for_document(
                document=row,
                module=module,
                persons=self.persons.get(row.contact_id, []),
                share_with=self.shared.get(row.pk, ()),
            )
        statement_from, statement_to = period
        return subject_for_contact(
            contact=row,
            module=module,
            statement_from=statement_from,
            statement_to=statement_to,
            persons=self.persons.get(row.pk, []),
        )


def _subjects(
    organization: Organization, target: str, module: str, ids: Sequence[int], period: Period
) -> Iterator[tuple[int, str, Callable[[], Subject]]]:
    """``(id, label, subject)`` for each id, in the order selected: ``subject()`` makes the id's
    :class:`Subject` (a statement's for ``period``) or raises :class:`NotificationRefused` (from
    the rows in hand: no query). Ids that are not the organization's (or not of the module's kind)
    are "not found", as any other."""
    loader = _documents if target == BulkSend.Target.DOCUMENTS else _contacts
    for start in range(0, len(ids), CHUNK_SIZE):
        chunk = ids[start : start + CHUNK_SIZE]
        rows = {row.pk: row for row in loader(organization, module, chunk)}
        people = _People.load(list(rows.values()))
        for pk in chunk:
            row = rows.get(pk)
            if row is None:
                yield pk, str(pk), _not_found
                continue
            _organization_set(row, organization)
            label = row.number if isinstance(row, Document) else row.display_name
            yield pk, label, partial(people.subject, row, module, period)


def _not_found() -> Subject:
    raise NotificationRefused("not_found", _("Not found in this organization."))


def _organization_set(row: Document | Contact, organization: Organization) -> None:
    """Give the loaded rows the organization already in hand (every row is of it) instead of
    loading one copy of it per document and per contact: put in their caches, as select_related
    does (the rows were filtered by it, so the descriptor's checks have nothing to check)."""
    if isinstance(row, Document):
        _DOCUMENT_ORGANIZATION.set_cached_value(row, organization)
        row = row.contact
    _CONTACT_ORGANIZATION.set_cached_value(row, organization)


def _checked(context: SendContext, subject: Subject) -> _Checked:
    return subject_recipients_check(context, subject, recipient_checks_or_why_not(subject))


def _check_again(context: SendContext, subject: Callable[[], Subject]) -> _Checked:
    return _checked(context, subject())


def _clean_ids(ids: Sequence[Any]) -> list[int]:
    return list(dict.fromkeys(int(pk) for pk in ids))


# --- The statement period -------------------------------------------------------------------------


def bulk_statement_period(
    *,
    organization: Organization,
    module: str,
    statement_from: datetime.date | None = None,
    statement_to: datetime.date | None = None,
) -> Period:
    """The period every statement of a bulk send of ``module`` covers: a single statement's rules
    (:func:`~whatsapp.services.notifications.subject_for_contact`: this month up to today by
    default, refused when it ends before it starts), and it may not end after today in the
    organization's time zone. A module that sends no statements ignores the dates, as a single
    notice does: ``(None, None)``.

    Raises :class:`NotificationRefused` (``period_in_future``, ``invalid_period``) naming the
    request's field, ``to_date`` or ``from_date``.
    """
    spec = MODULES[module]
    if not spec.uses_statement:
        return NO_PERIOD
    if statement_to is not None and statement_to > organization.today():
        raise NotificationRefused("period_in_future", _("The statement period can't end after today."), field="to_date")
    # The period is the whole send's, not one contact's: an unsaved contact of the module's party
    # stands in for every selected one, so the defaults and the check are the single statement's.
    stand_in = Contact(organization=organization, contact_type=spec.party)
    try:
        subject = subject_for_contact(
            contact=stand_in, module=module, statement_from=statement_from, statement_to=statement_to
        )
    except NotificationRefused as refusal:
        refusal.field = "from_date"
        raise
    return subject.statement_from, subject.statement_to


# --- The summary ----------------------------------------------------------------------------------


def bulk_plan(
    *,
    organization: Organization,
    target: str,
    module: str,
    ids: Sequence[int],
    template: MessageTemplate | None = None,
    statement_from: datetime.date | None = None,
    statement_to: datetime.date | None = None,
) -> BulkPlan:
    """What sending ``module``'s template to the selection would do; writes nothing. For a
    statement module, each statement covers the period :func:`bulk_statement_period` makes of
    ``statement_from`` and ``statement_to`` (a bad period is the plan's refusal)."""
    ids = _clean_ids(ids)
    template = template or template_default_get(organization=organization, module=module)
    plan = BulkPlan(module=module, template=template, total=len(ids))
    plan.credits_available = credit_balance_get(organization=organization).available
    prices = price_table_get(organization=organization)
    try:
        period = bulk_statement_period(
            organization=organization, module=module, statement_from=statement_from, statement_to=statement_to
        )
        plan.statement_from, plan.statement_to = period
        context = send_context(organization=organization, module=module, template=template)
    except NotificationRefused as refusal:
        plan.refusal = refusal
        return plan
    for pk, label, subject in _subjects(organization, target, module, ids, period):
        try:
            checked = _checked(context, subject())
        except NotificationRefused as refusal:
            plan.skipped.append(Skipped(pk, label, refusal.code, refusal.message))
            continue
        plan.sendable += 1
        plan.messages += len(checked.recipients)
        plan.credits_needed += checked.credits_needed(prices)
    return plan


# --- Starting and running -----------------------------------------------------------------------


def bulk_send_start(
    *,
    organization: Organization,
    target: str,
    module: str,
    ids: Sequence[int],
    template: MessageTemplate | None = None,
    statement_from: datetime.date | None = None,
    statement_to: datetime.date | None = None,
    user: Any = None,
    idempotency_key: str = "",
) -> tuple[BulkSend, bool]:
    """Record a bulk send and enqueue it; ``(bulk, created)``. ``created`` is False when the same
    idempotency key already started this request (its bulk send is returned, nothing more happens).

    A statement module's period (:func:`bulk_statement_period`) is fixed here, defaults included,
    so every statement covers the same one whenever the task runs.

    Raises :class:`NotificationRefused` for a rule of the whole organization (the integration, the
    module, the template), an empty or oversized selection or a bad period;
    :class:`IdempotencyConflict` for a key used for another request (another period included).
    """
    ids = _clean_ids(ids)
    request = [target, module, template.pk if template else None, ids]
    if MODULES[module].uses_statement:
        # The period as asked for (None: the default): a retry after midnight is the same request.
        request.append([day.isoformat() if day else None for day in (statement_from, statement_to)])
    fingerprint = hashlib.sha256(json.dumps(request).encode()).hexdigest()
    if idempotency_key:
        existing = BulkSend.objects.filter(organization=organization, idempotency_key=idempotency_key[:255]).first()
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise IdempotencyConflict(_("This Idempotency-Key was already used for a different request."))
            return existing, False
    if not ids:
        raise NotificationRefused("no_selection", _("Select at least one to send."), field="ids")
    if len(ids) > MAX_SELECTION:
        raise NotificationRefused(
            "selection_too_large",
            _("Select at most %(max)d at a time.") % {"max": MAX_SELECTION},
            field="ids",
        )
    period_from, period_to = bulk_statement_period(
        organization=organization, module=module, statement_from=statement_from, statement_to=statement_to
    )
    template = template or template_default_get(organization=organization, module=module)
    send_context(organization=organization, module=module, template=template)
    fields = {
        "target": target,
        "module": module,
        "template": template,
        "statement_from": period_from,
        "statement_to": period_to,
        "target_ids": ids,
        "total": len(ids),
        "fingerprint": fingerprint,
        "created_by": user if getattr(user, "is_authenticated", False) else None,
    }
    with transaction.atomic():
        if idempotency_key:
            bulk, created = BulkSend.objects.get_or_create(
                organization=organization, idempotency_key=idempotency_key[:255], defaults=fields
            )
            if not created:  # a concurrent request with the same key won the insert
                if bulk.fingerprint != fingerprint:
                    raise IdempotencyConflict(_("This Idempotency-Key was already used for a different request."))
                return bulk, False
        else:
            bulk = BulkSend.objects.create(organization=organization, **fields)
        transaction.on_commit(lambda: _enqueue(bulk.pk))
    return bulk, True


def _enqueue(bulk_id: int) -> None:
    from whatsapp.tasks import bulk_send_run_task

    try:
        bulk_send_run_task.delay(bulk_id)
    except Exception:  # the broker is down: the sweeper starts it later
        logger.exception("Could not enqueue WhatsApp bulk send %s; the sweeper will.", bulk_id)


def bulk_send_run(*, bulk_id: int) -> BulkSend | None:
    """Check, render and queue every selected document, part by part. None when another worker
    has it (or it is finished): the claim is a conditional UPDATE, so a redelivered task does nothing.

    The selection is cut into parts of :data:`PART_SIZE`. This task creates them, wakes up to
    :data:`MAX_HELPERS` helper tasks (:func:`bulk_send_parts_run`) so that free workers write parts
    at the same time, and writes parts itself until none is pending; whoever finishes the last one
    marks the bulk send done. A chunk that was written stays written if the worker dies later: its
    documents are recorded by their messages (``bulk``), and whoever takes the part over (the
    sweeper puts a stuck part back to pending) skips the documents that already have messages in
    this bulk send.
    """
    claimed = BulkSend.objects.filter(pk=bulk_id, state=BulkSend.State.PENDING).update(
        state=BulkSend.State.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    bulk = _bulk_get(bulk_id)
    try:
        context = send_context(organization=bulk.organization, module=bulk.module, template=bulk.template)
    except NotificationRefused as refusal:
        again = partial(send_context, organization=bulk.organization, module=bulk.module, template=bulk.template)
        skipped = [item.as_dict() for item in _all_refused(bulk.target_ids, refusal, _translations(refusal, again))]
        BulkSend.objects.filter(pk=bulk.pk).update(
            state=BulkSend.State.FAILED, error=refusal.message, skipped=skipped, finished_at=timezone.now()
        )
        return BulkSend.objects.get(pk=bulk.pk)
    parts = math.ceil(len(bulk.target_ids) / PART_SIZE)
    BulkSendPart.objects.bulk_create(
        [BulkSendPart(bulk=bulk, index=index) for index in range(parts)], ignore_conflicts=True
    )
    pending = BulkSendPart.objects.filter(bulk=bulk, state=BulkSendPart.State.PENDING).count()
    for _helper in range(min(pending - 1, MAX_HELPERS)):
        _enqueue_helper(bulk.pk)
    _parts_write(bulk, context)
    _finish_if_complete(bulk)
    return BulkSend.objects.get(pk=bulk.pk)


def bulk_send_parts_run(*, bulk_id: int) -> int:
    """A helper of :func:`bulk_send_run`: write pending parts of the running bulk send until none
    is left; how many it wrote (0 when there was nothing to take)."""
    bulk = _bulk_get(bulk_id)
    if bulk is None or bulk.state != BulkSend.State.RUNNING:
        return 0
    try:
        context: SendContext | NotificationRefused = send_context(
            organization=bulk.organization, module=bulk.module, template=bulk.template
        )
    except NotificationRefused as refusal:  # e.g. the template was deleted since the bulk started
        context = refusal
    return _parts_write(bulk, context)


def _all_refused(ids: Sequence[int], refusal: NotificationRefused, reasons: dict[str, str]) -> list[Skipped]:
    return [Skipped(pk, str(pk), refusal.code, refusal.message, reasons) for pk in ids]


def _bulk_get(bulk_id: int) -> BulkSend | None:
    return BulkSend.objects.select_related("organization", "template", "created_by").filter(pk=bulk_id).first()


def _enqueue_helper(bulk_id: int) -> None:
    from whatsapp.tasks import bulk_send_parts_run_task

    try:
        bulk_send_parts_run_task.delay(bulk_id)
    except Exception:  # the broker is down: the first task writes every part itself
        logger.exception("Could not enqueue a helper for WhatsApp bulk send %s.", bulk_id)


class _PartLost(Exception):
    """The sweeper took the part back (its worker looked dead) and another worker has it now."""


def _parts_write(bulk: BulkSend, context: SendContext | NotificationRefused) -> int:
    written = 0
    while (part := _part_claim(bulk)) is not None:
        try:
            with collector_paused():  # a part's objects leave no cycles (tested): refcounting frees them
                skipped = _part_write(bulk, context, part)
        except _PartLost:
            continue
        _part_finish(bulk, part, skipped)
        written += 1
    return written


def _part_claim(bulk: BulkSend) -> BulkSendPart | None:
    """The first pending part, now running and this worker's (None when none is pending)."""
    while True:
        with transaction.atomic():
            part = (
                BulkSendPart.objects.select_for_update(skip_locked=True)
                .filter(bulk=bulk, state=BulkSendPart.State.PENDING)
                .order_by("index")
                .first()
            )
            if part is None:
                return None
            # Started before: the sweeper took it back from a worker that may have written chunks.
            part.retaken = part.started_at is not None
            part.started_at = timezone.now()
            taken = BulkSendPart.objects.filter(pk=part.pk, state=BulkSendPart.State.PENDING).update(
                state=BulkSendPart.State.RUNNING, started_at=part.started_at
            )
        if taken:  # (without row locks, as on SQLite, another worker may have been first)
            part.state = BulkSendPart.State.RUNNING
            return part


def _part_ids(bulk: BulkSend, part: BulkSendPart) -> list[int]:
    return bulk.target_ids[part.index * PART_SIZE : (part.index + 1) * PART_SIZE]


def _part_write(bulk: BulkSend, context: SendContext | NotificationRefused, part: BulkSendPart) -> list[Skipped]:
    ids = _part_ids(bulk, part)
    if isinstance(context, NotificationRefused):
        again = partial(send_context, organization=bulk.organization, module=bulk.module, template=bulk.template)
        return _all_refused(ids, context, _translations(context, again))
    done = _written(bulk, ids) if part.retaken else set()
    pending: list[tuple[int, str, _Checked]] = []
    skipped: list[Skipped] = []
    period = (bulk.statement_from, bulk.statement_to)
    for pk, label, subject in _subjects(bulk.organization, bulk.target, bulk.module, ids, period):
        if pk in done:
            continue
        try:
            pending.append((pk, label, _checked(context, subject())))
        except NotificationRefused as refusal:
            skipped.append(_skipped(pk, label, refusal, partial(_check_again, context, subject)))
        if len(pending) >= CHUNK_SIZE:
            skipped += _write_chunk(bulk, part, pending)
            pending = []
    if pending:
        skipped += _write_chunk(bulk, part, pending)
    return skipped


def _written(bulk: BulkSend, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` already have their messages in this bulk send."""
    written_field = "document_id" if bulk.target == BulkSend.Target.DOCUMENTS else "contact_id"
    return set(Message.objects.filter(bulk=bulk, **{f"{written_field}__in": ids}).values_list(written_field, flat=True))


def _part_hold(part: BulkSendPart) -> None:
    """Inside a chunk's transaction: lock the part, or raise :class:`_PartLost` when it is not
    this worker's any more. The sweeper's reset waits for the lock, so the worker taking the part
    over sees every chunk this one committed."""
    ours = BulkSendPart.objects.select_for_update().filter(
        pk=part.pk, state=BulkSendPart.State.RUNNING, started_at=part.started_at
    )
    if not ours.exists():
        raise _PartLost


def _part_finish(bulk: BulkSend, part: BulkSendPart, skipped: list[Skipped]) -> None:
    """The part is done: its skipped documents join the bulk send's (in the selection's order)."""
    with transaction.atomic():
        locked = BulkSend.objects.select_for_update().only("pk", "skipped").get(pk=bulk.pk)
        finished = BulkSendPart.objects.filter(
            pk=part.pk, state=BulkSendPart.State.RUNNING, started_at=part.started_at
        ).update(state=BulkSendPart.State.DONE, finished_at=timezone.now())
        if finished and skipped:
            order = {pk: position for position, pk in enumerate(bulk.target_ids)}
            merged = [*locked.skipped, *(item.as_dict() for item in skipped)]
            merged.sort(key=lambda item: order.get(item["id"], len(order)))
            BulkSend.objects.filter(pk=bulk.pk).update(skipped=merged)
    _finish_if_complete(bulk)


def _finish_if_complete(bulk: BulkSend) -> None:
    """Mark the bulk send done once every part is (once: a conditional UPDATE)."""
    if BulkSendPart.objects.filter(bulk=bulk).exclude(state=BulkSendPart.State.DONE).exists():
        return
    BulkSend.objects.filter(pk=bulk.pk, state__in=[BulkSend.State.PENDING, BulkSend.State.RUNNING]).update(
        state=BulkSend.State.DONE, finished_at=timezone.now()
    )


def _write_chunk(bulk: BulkSend, part: BulkSendPart, pending: list[tuple[int, str, _Checked]]) -> list[Skipped]:
    """Write the chunk's messages and reservations in one transaction. When the credits don't
    cover it, the longest run of documents that fits is written and the rest is returned as
    skipped (a few tries: another send may be taking credits at the same moment)."""
    organization = bulk.organization
    prices = price_table_get(organization=organization)
    built = [
        (pk, label, [_message_build(checked, recipient, bulk.created_by) for recipient in checked.recipients])
        for pk, label, checked in pending
    ]
    for _pk, _label, group in built:
        for message in group:
            message.bulk = bulk
    skipped: list[Skipped] = []
    for _attempt in range(4):
        if not built:
            return skipped
        try:
            with transaction.atomic():
                _part_hold(part)
                messages = messages_queue([message for _pk, _label, group in built for message in group])
                credits_reserve(
                    organization=organization,
                    requests=reservation_requests(organization, messages, prices),
                    new_references=True,  # the messages were inserted just now
                )
                BulkSend.objects.filter(pk=bulk.pk).update(
                    sent=F("sent") + len(built), messages_queued=F("messages_queued") + len(messages)
                )
            return skipped
        except InsufficientCredits as exc:
            for _pk, _label, group in built:
                for message in group:  # the rolled-back INSERT's ids are gone: insert afresh
                    message.pk = None
                    message._state.adding = True
            fitting = _fitting(prices, built, exc.available)
            skipped += [_no_credits(pk, label) for pk, label, _group in built[len(fitting) :]]
            if len(fitting) == len(built):
                break
            built = fitting
    return skipped + [_no_credits(pk, label) for pk, label, _group in built]


def _fitting(
    prices: PriceTable, built: list[tuple[int, str, list[Message]]], available: Decimal
) -> list[tuple[int, str, list[Message]]]:
    """The longest prefix of documents whose messages fit in ``available`` credits."""
    fitting, total = [], Decimal("0")
    for item in built:
        cost = sum((message_price(prices, m.category, m.phone) for m in item[2]), Decimal("0"))
        if total + cost > available:
            break
        total += cost
        fitting.append(item)
    return fitting


def _no_credits(pk: int, label: str) -> Skipped:
    return _skipped(pk, label, _no_credits_refusal(), _no_credits_refusal)


def _no_credits_refusal() -> NotificationRefused:
    return NotificationRefused(
        "insufficient_credits", _("Not enough IM credits left for this one. Buy IM credits and send it again.")
    )


# --- Progress -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkProgress:
    bulk: BulkSend
    counts: dict[str, int]

    @property
    def messages(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        """Messages that reached a status nothing but a read receipt changes: sent, delivered, read, failed."""
        final = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED)
        return sum(count for status, count in self.counts.items() if status in final)

    @property
    def percent(self) -> int:
        if self.is_complete:
            return 100
        if self.bulk.state in (BulkSend.State.PENDING, BulkSend.State.RUNNING) or not self.messages:
            written = self.bulk.sent + len(self.bulk.skipped)
            return int(50 * written / self.bulk.total) if self.bulk.total else 0
        return 50 + int(50 * self.finished / self.messages)

    @property
    def is_complete(self) -> bool:
        return self.bulk.state in (BulkSend.State.DONE, BulkSend.State.FAILED) and self.finished == self.messages


def bulk_progress(*, bulk: BulkSend) -> BulkProgress:
    """The bulk send's messages counted by status (one query), for a page or an API answer.

    ``bulk`` is read afresh, its skipped ones' reasons and its error in the active language
    (:class:`Skipped`): what is shown, not what to save.
    """
    bulk.refresh_from_db()
    _shown_in_active_language(bulk)
    rows = Message.objects.filter(bulk=bulk).values("status").annotate(n=Count("pk")).order_by()
    return BulkProgress(bulk=bulk, counts={row["status"]: row["n"] for row in rows})


def _shown_in_active_language(bulk: BulkSend) -> None:
    language = translation.get_language()
    stored = bulk.skipped
    bulk.skipped = [
        {"id": item["id"], "label": item["label"], "code": item["code"], "reason": _reason_shown(item, language)}
        for item in stored
    ]
    # A failed bulk send's error is the refusal every selected one was skipped with (bulk_send_run).
    if bulk.error and stored and stored[0].get("reason") == bulk.error:
        bulk.error = bulk.skipped[0]["reason"]


def bulk_sends_sweep(*, older_than_minutes: int = 10) -> int:
    """Beat: restart what a dead worker or a lost task left behind; how many bulk sends.

    A part still running after ``older_than_minutes`` goes back to pending (its worker died; what
    it committed stays, and is skipped by the next one). A bulk send running that long goes back to
    pending and is enqueued again: the rerun helps with its pending parts, or marks it done when it
    has none left. A pending one whose task was lost is enqueued again.
    """
    cutoff = timezone.now() - timezone.timedelta(minutes=older_than_minutes)
    BulkSendPart.objects.filter(state=BulkSendPart.State.RUNNING, started_at__lt=cutoff).update(
        state=BulkSendPart.State.PENDING
    )
    stuck = list(
        BulkSend.objects.filter(state=BulkSend.State.RUNNING, started_at__lt=cutoff).values_list("pk", flat=True)
    )
    BulkSend.objects.filter(pk__in=stuck, state=BulkSend.State.RUNNING).update(state=BulkSend.State.PENDING)
    lost = list(
        BulkSend.objects.filter(state=BulkSend.State.PENDING, created_at__lt=cutoff).values_list("pk", flat=True)
    )
    for bulk_id in set(stuck) | set(lost):
        _enqueue(bulk_id)
    return len(set(stuck) | set(lost))


# --- Reading bulk sends (the pages of whatsapp.views.bulk) ----------------------------------------


def bulk_send_get(*, organization: Organization, pk: int) -> BulkSend | None:
    """The organization's bulk send ``pk``; None for anyone else's (the page answers 404)."""
    return BulkSend.objects.filter(organization=organization, pk=pk).select_related("template", "created_by").first()


def bulk_send_list(*, organization: Organization) -> QuerySet[BulkSend]:
    """The organization's bulk sends, newest first, without the (up to 10,000-long) selections."""
    return (
        BulkSend.objects.filter(organization=organization)
        .select_related("template", "created_by")
        .defer("target_ids", "skipped")
        .order_by("-created_at", "-pk")
    )


@dataclass(frozen=True)
class BulkOutcome:
    """What became of one selected document (or contact): its messages, or why it was skipped.
    Neither yet: the task has not reached it."""

    id: int
    label: str
    found: bool
    messages: list[Message]
    skipped: Skipped | None


def bulk_outcome_list(*, bulk: BulkSend, offset: int = 0, limit: int = 50) -> list[BulkOutcome]:
    """One page of the selection, in the order selected, each with its messages (recipient
    loaded) or its skip reason; two queries however large the selection."""
    ids = [int(pk) for pk in bulk.target_ids[offset : offset + limit]]
    skipped = {int(item["id"]): item for item in bulk.skipped}
    if bulk.target == BulkSend.Target.DOCUMENTS:
        rows = Document.objects.filter(organization_id=bulk.organization_id, pk__in=ids).values_list("pk", "number")
        by = "document_id"
    else:
        rows = Contact.objects.filter(organization_id=bulk.organization_id, pk__in=ids).values_list(
            "pk", "display_name"
        )
        by = "contact_id"
    labels = dict(rows)
    messages: dict[int, list[Message]] = {}
    for message in (
        Message.objects.filter(bulk=bulk, **{f"{by}__in": ids}).select_related("contact_person").order_by("pk")
    ):
        messages.setdefault(getattr(message, by), []).append(message)
    language = translation.get_language()
    outcomes = []
    for pk in ids:
        item = skipped.get(pk)
        outcomes.append(
            BulkOutcome(
                id=pk,
                label=labels.get(pk, str(pk)),
                found=pk in labels,
                messages=messages.get(pk, []),
                skipped=Skipped(pk, item["label"], item["code"], _reason_shown(item, language)) if item else None,
            )
        )
    return outcomes
