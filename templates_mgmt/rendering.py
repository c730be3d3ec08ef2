"""A template filled with one document's values: the send ``components`` and the preview bubble.

:func:`template_components_render` produces exactly the ``components`` array of Meta's template
send (outside-contracts §1). It works from ``components`` — Meta's copy of the template, which
is what Meta checks a send against — and from ``field_mapping``, and it refuses, before anything
is sent or charged, a template Meta would refuse: not approved (132001), or whose variables no
longer match the mapping (132000) or whose header changed kind (132012).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final, TypeVar
from urllib.parse import quote

from django.utils.translation import gettext as _

from books.models import Contact, ContactPerson, Document
from books.pdf import document_pdf_filename
from books.selectors import Statement

from .choices import HeaderType, TemplateStatus
from .fields import EMPTY_VALUE, CatalogueField, FieldSource, catalogue_field
from .models import MessageTemplate
from .modules import MODULES
from .placeholders import (
    ANY_PLACEHOLDER,
    PARAMETER_FORMAT_NAMED,
    PARAMETER_FORMAT_POSITIONAL,
    substitute,
    variables,
)

#: Meta refuses text parameters with line breaks, tabs or more than 4 consecutive spaces.
_BAD_WHITESPACE: Final = re.compile(r"[\r\n\t]+| {5,}")

_HEADER_FORMATS: Final = {
    HeaderType.TEXT: "TEXT",
    HeaderType.DOCUMENT: "DOCUMENT",
    HeaderType.IMAGE: "IMAGE",
}


class TemplateNotSendable(Exception):
    """The template can't be sent as it stands; ``code`` says why, the message says it to the user.

    Codes: ``not_approved``, ``no_module``, ``wrong_source`` (the document does not fit the
    module), ``structure_mismatch`` (Meta's copy and the mapping disagree), ``missing_media``.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


T = TypeVar("T")


#: The template's fields the memo depends on.
_MEMO_STATE = ("components", "field_mapping", "body", "header_text", "parameter_format", "module", "buttons")
_memo_state = operator.itemgetter(*_MEMO_STATE)


def _memo(template: MessageTemplate, key: tuple[str, ...], build: Callable[[], T]) -> T:
    """What depends on the template alone — its parsed components, variables, mapped fields —
    worked out once per template instance, not once per document: a bulk send renders thousands
    of documents with one instance. The memo is dropped when the instance's Meta copy, mapping,
    texts or buttons are replaced (a builder editing the instance)."""
    attributes = template.__dict__  # as the fields' descriptors would read them, several times a render
    try:
        state = _memo_state(attributes)
    except KeyError:  # a deferred field
        state = tuple(map(attributes.get, _MEMO_STATE))
    memo = attributes.get("_rendering_memo")
    # Equal tuples: identical members compare at once, and a member replaced by an equal copy
    # leaves what was worked out from it right.
    if memo is None or memo[0] != state:
        memo = (state, {})
        attributes["_rendering_memo"] = memo
    values: dict[tuple[str, ...], Any] = memo[1]
    try:
        return values[key]
    except KeyError:
        value = values[key] = build()
        return value


# --- What the message is about ------------------------------------------------------------------


def _field_source(
    template: MessageTemplate,
    *,
    document: Document | None,
    contact: Contact | None,
    statement: Statement | None,
    person: ContactPerson | None,
) -> FieldSource:
    spec = MODULES.get(template.module)
    if spec is None:
        raise TemplateNotSendable(
            _("“%(name)s” isn't assigned to a module yet; assign it and map its fields first.")
            % {"name": template.name},
            code="no_module",
        )
    if spec.document_kind is not None and (document is None or document.kind != spec.document_kind):
        raise TemplateNotSendable(
            _("“%(name)s” belongs to %(module)s and can't be sent for this document.")
            % {"name": template.name, "module": template.get_module_display()},
            code="wrong_source",
        )
    if spec.uses_statement and statement is None:
        raise TemplateNotSendable(
            _("“%(name)s” belongs to %(module)s and is sent with a statement of accounts.")
            % {"name": template.name, "module": template.get_module_display()},
            code="wrong_source",
        )
    for owned in (document, contact, statement.contact if statement is not None else None):
        if owned is not None and owned.organization_id != template.organization_id:
            raise TemplateNotSendable(_("The template belongs to another organization."), code="wrong_source")
    source = FieldSource(
        organization=template.organization, contact=contact, person=person, document=document, statement=statement
    )
    party = source.party
    if party is None or party.contact_type != spec.party:
        raise TemplateNotSendable(
            _("“%(name)s” belongs to %(module)s and can't be sent to this contact.")
            % {"name": template.name, "module": template.get_module_display()},
            code="wrong_source",
        )
    return source


def _parameter_text(value: str) -> str:
    """A value as Meta accepts it in a text parameter: one line, no runs of spaces, never empty."""
    text = _BAD_WHITESPACE.sub(" ", value).strip()
    return text or EMPTY_VALUE


# --- The send components ------------------------------------------------------------------------


def _dict_components(template: MessageTemplate) -> list[dict[str, Any]]:
    return [item for item in template.components or [] if isinstance(item, dict)]


def _component(components: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((item for item in components if str(item.get("type", "")).upper() == kind), None)


def _mismatch(template: MessageTemplate, detail: str) -> TemplateNotSendable:
    return TemplateNotSendable(
        _("“%(name)s” no longer matches what WhatsApp approved (%(detail)s). Sync the templates and check its fields.")
        % {"name": template.name, "detail": detail},
        code="structure_mismatch",
    )


def _mapped_fields(
    template: MessageTemplate, part: str, names: list[str], label: str
) -> list[tuple[str, CatalogueField]]:
    """The catalogue field of each variable of ``part``, refusing any drift between text and mapping."""
    given = (template.field_mapping or {}).get(part) or {}
    if sorted(names) != sorted(map(str, given)):
        raise _mismatch(
            template,
            _("the %(part)s has %(count)d variables and %(mapped)d are mapped")
            % {"part": label, "count": len(names), "mapped": len(given)},
        )
    fields = []
    for name in names:
        catalogue = catalogue_field(template.module, str(given[name]))
        if catalogue is None:
            raise _mismatch(template, _("“%(field)s” is not a field of this module") % {"field": given[name]})
        fields.append((name, catalogue))
    return fields


def _text_parameter(name: str, value: str, parameter_format: str) -> dict[str, str]:
    parameter = {"type": "text", "text": _parameter_text(value)}
    if parameter_format == PARAMETER_FORMAT_NAMED:
        parameter = {"type": "text", "parameter_name": name, "text": parameter["text"]}
    return parameter


def _default_filename(template: MessageTemplate, source: FieldSource) -> str:
    if source.document is not None:
        return document_pdf_filename(source.document)
    if source.statement is not None:
        statement = source.statement
        return f"statement_{statement.from_date:%Y-%m-%d}_{statement.to_date:%Y-%m-%d}.pdf"
    return template.attachment_filename or "attachment.pdf"


def template_components_render(
    *,
    template: MessageTemplate,
    document: Document | None = None,
    contact: Contact | None = None,
    statement: Statement | None = None,
    person: ContactPerson | None = None,
    media_id: str | None = None,
    filename: str | None = None,
) -> list[dict[str, Any]]:
    """The ``components`` of a template send for one document (or contact, or statement).

    ``media_id`` is the uploaded PDF or image of a media header (the document's own PDF for a
    dynamic attachment, the template's file for a static one); ``filename`` defaults to the
    document number (``INV-000001.pdf``), because without one the customer sees "Untitled".
    ``person`` is the contact person the message goes to (``{{contact_person_name}}``).
    Static buttons are not sent; only a URL button's dynamic suffix is.

    Raises :class:`TemplateNotSendable` for a template Meta would refuse.
    """
    _approved_check(template)
    source = _field_source(template, document=document, contact=contact, statement=statement, person=person)
    return _components_render(template, source, media_id, filename)


def _approved_check(template: MessageTemplate) -> None:
    if template.status != TemplateStatus.APPROVED:
        raise TemplateNotSendable(
            _("“%(name)s” isn't approved (status: %(status)s); only templates WhatsApp approved can be sent.")
            % {"name": template.name, "status": template.get_status_display()},
            code="not_approved",
        )


def _components_render(
    template: MessageTemplate, source: FieldSource, media_id: str | None, filename: str | None
) -> list[dict[str, Any]]:
    components = _memo(template, ("components",), lambda: _dict_components(template))
    body = _memo(template, ("component", "BODY"), lambda: _component(components, "BODY"))
    if body is None:
        raise _mismatch(template, _("WhatsApp's copy of the template has no message"))
    parameter_format = (template.parameter_format or PARAMETER_FORMAT_POSITIONAL).upper()
    rendered: list[dict[str, Any]] = []

    header = _header_component(template, components, source, parameter_format, media_id, filename)
    if header is not None:
        rendered.append(header)

    fields = _memo(
        template,
        ("mapped", "body"),
        lambda: _mapped_fields(template, "body", variables(str(body.get("text", "")), parameter_format), _("message")),
    )
    if fields:
        rendered.append(
            {
                "type": "body",
                "parameters": [_text_parameter(name, field.value(source), parameter_format) for name, field in fields],
            }
        )
    rendered.extend(_button_components(template, components, source))
    return rendered


def _header_component(
    template: MessageTemplate,
    components: list[dict[str, Any]],
    source: FieldSource,
    parameter_format: str,
    media_id: str | None,
    filename: str | None,
) -> dict[str, Any] | None:
    header = _memo(template, ("component", "HEADER"), lambda: _component(components, "HEADER"))
    meta_format = str(header.get("format", "TEXT")).upper() if header is not None else None
    if meta_format != _HEADER_FORMATS.get(template.header_type):
        raise _mismatch(
            template,
            _("its header is %(meta)s at WhatsApp and %(hub)s here")
            % {"meta": (meta_format or _("none")).lower(), "hub": template.get_header_type_display().lower()},
        )
    if header is None:
        return None
    if meta_format == "TEXT":
        fields = _memo(
            template,
            ("mapped", "header"),
            lambda: _mapped_fields(
                template, "header", variables(str(header.get("text", "")), parameter_format), _("header")
            ),
        )
        if not fields:
            return None
        return {
            "type": "header",
            "parameters": [_text_parameter(name, field.value(source), parameter_format) for name, field in fields],
        }
    if not media_id:
        raise TemplateNotSendable(
            _("“%(name)s” has an attachment header: upload the file and give its media id.") % {"name": template.name},
            code="missing_media",
        )
    if meta_format == "DOCUMENT":
        document = {"id": media_id, "filename": filename or _default_filename(template, source)}
        return {"type": "header", "parameters": [{"type": "document", "document": document}]}
    return {"type": "header", "parameters": [{"type": "image", "image": {"id": media_id}}]}


def _button_components(
    template: MessageTemplate, components: list[dict[str, Any]], source: FieldSource
) -> list[dict[str, Any]]:
    rendered = []
    for index, field in _memo(template, ("mapped", "buttons"), lambda: _button_fields(template, components)):
        suffix = quote(_parameter_text(field.value(source)), safe="")
        rendered.append(
            {"type": "button", "sub_type": "url", "index": index, "parameters": [{"type": "text", "text": suffix}]}
        )
    return rendered


def _button_fields(template: MessageTemplate, components: list[dict[str, Any]]) -> list[tuple[str, CatalogueField]]:
    """The field of each URL button with a dynamic suffix, by the button's index."""
    container = _component(components, "BUTTONS")
    buttons = [b for b in (container or {}).get("buttons", []) if isinstance(b, dict)]
    dynamic = [
        str(index)
        for index, button in enumerate(buttons)
        if str(button.get("type", "")).upper() == "URL" and ANY_PLACEHOLDER.search(str(button.get("url", "")))
    ]
    return _mapped_fields(template, "buttons", dynamic, _("buttons"))


# --- The preview bubble ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplatePreview:
    """A template as the customer would see it, for the builder's WhatsApp-like bubble."""

    header_type: str
    header_text: str
    attachment_name: str
    body: str
    footer: str
    buttons: list[dict[str, str]] = dataclass_field(default_factory=list)


def _preview_value(template: MessageTemplate, key: str, source: FieldSource | None) -> str | None:
    """A field's value for the preview: the document's when there is one, else the catalogue's example."""
    catalogue = catalogue_field(template.module, key)
    if catalogue is None:
        return None
    if source is not None:
        try:
            return _parameter_text(catalogue.value(source))
        except ValueError:  # the field reads a document the preview wasn't given
            pass
    return catalogue.example(template.organization)


def _preview_values(template: MessageTemplate, part: str, text: str, source: FieldSource | None) -> dict[str, str]:
    """Placeholder → preview value; placeholders that are no field stay as typed (the builder flags them)."""
    values = {}
    for placeholder, key in _memo(
        template, ("placeholders", part, text), lambda: _placeholder_keys(template, part, text)
    ):
        value = _preview_value(template, key, source)
        if value is not None:
            values[placeholder] = value
    return values


def _placeholder_keys(template: MessageTemplate, part: str, text: str) -> list[tuple[str, str]]:
    """Each placeholder of ``text`` once, with the field it is mapped to (or its own name)."""
    mapping = (template.field_mapping or {}).get(part) or {}
    return [
        (placeholder, str(mapping.get(placeholder, placeholder)))
        for placeholder in dict.fromkeys(match.group(1) for match in ANY_PLACEHOLDER.finditer(text))
    ]


def template_preview(
    *,
    template: MessageTemplate,
    document: Document | None = None,
    contact: Contact | None = None,
    statement: Statement | None = None,
    person: ContactPerson | None = None,
) -> TemplatePreview:
    """Header, body, footer and buttons with values substituted; works for drafts too.

    Without a document (or contact, or statement) the catalogue's examples fill the fields.
    """
    source = None
    if document is not None or contact is not None or statement is not None:
        source = _field_source(template, document=document, contact=contact, statement=statement, person=person)
    return _preview(template, source)


def _preview(template: MessageTemplate, source: FieldSource | None) -> TemplatePreview:
    header_text = substitute(template.header_text, _preview_values(template, "header", template.header_text, source))
    body = substitute(template.body, _preview_values(template, "body", template.body, source))
    attachment_name = ""
    if template.header_type in (HeaderType.DOCUMENT, HeaderType.IMAGE):
        attachment_name = (
            _default_filename(template, source) if source is not None else template.attachment_filename or ""
        )
    buttons = []
    for index, button in enumerate(template.buttons or []):
        item = {key: str(value) for key, value in button.items() if key != "url_suffix_field"}
        suffix_field = ((template.field_mapping or {}).get("buttons") or {}).get(str(index)) or button.get(
            "url_suffix_field"
        )
        if suffix_field and "{{1}}" in item.get("url", ""):
            suffix = _preview_value(template, str(suffix_field), source) or ""
            item["url"] = item["url"].replace("{{1}}", quote(suffix, safe=""))
        buttons.append(item)
    return TemplatePreview(
        header_type=template.header_type,
        header_text=header_text,
        attachment_name=attachment_name,
        body=body,
        footer=template.footer,
        buttons=buttons,
    )


@dataclass(frozen=True)
class RenderedSend:
    """One recipient's template send: Meta's ``components`` and the text the customer reads."""

    components: list[dict[str, Any]]
    body: str


def template_send_render(
    *,
    template: MessageTemplate,
    document: Document | None = None,
    contact: Contact | None = None,
    statement: Statement | None = None,
    person: ContactPerson | None = None,
    media_id: str | None = None,
    filename: str | None = None,
) -> RenderedSend:
    """:func:`template_components_render` and the preview's body text together, each field read and
    formatted once for both (a bulk send renders thousands). Raises :class:`TemplateNotSendable`."""
    _approved_check(template)
    source = _field_source(template, document=document, contact=contact, statement=statement, person=person)
    components = _components_render(template, source, media_id, filename)
    return RenderedSend(components=components, body=_preview(template, source).body)


def template_preview_render(
    *,
    template: MessageTemplate,
    document: Document | None = None,
    contact: Contact | None = None,
    statement: Statement | None = None,
) -> str:
    """The message body with the document's values in place (the preview bubble's text)."""
    return template_preview(template=template, document=document, contact=contact, statement=statement).body
