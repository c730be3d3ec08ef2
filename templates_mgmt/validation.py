"""Meta's rules for a template, checked before it is submitted, in words an accountant understands.

Meta reports a broken template either synchronously (error 100 with a 2388xxx subcode) or, worse,
a day later as a rejection. Every rule we know of is checked here first, and each failure is a
:class:`~django.core.exceptions.ValidationError` keyed by the builder field it concerns, so the
form puts the message next to the field.

Rules that Meta documents only through its errors, and how they are read here:

- **Variables at the start or end (2388299).** Meta treats a variable followed only by
  punctuation as "at the end" ("… due on {{due_date}}." is refused), so leading and trailing
  punctuation, symbols and spaces are ignored when looking for the first and last word.
- **Adjacent variables (INVALID_FORMAT).** Two variables with nothing but spaces or punctuation
  between them count as adjacent: at least one letter or digit must separate them.
- **Too many variables for the length (2388293).** Meta does not publish the formula. The rule
  observed by several providers (Syniverse, Mercuri, Maqsam) and implemented here: the body needs
  at least ``2 × variables + 1`` words that are not variables, a word being a run of non-space
  characters with at least one letter or digit (every occurrence of a variable counts).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files import File
from django.utils.translation import gettext as _

from books.models import Organization
from whatsapp.client import CloudAPIError

from .attachments import JPEG, MAX_BYTES, PDF, PNG, file_head, format_size, mime_sniff
from .choices import AttachmentMode, ButtonType, HeaderType, Module, TemplateCategory, TemplateStatus
from .fields import catalogue_field
from .languages import META_LANGUAGES
from .modules import MODULES
from .placeholders import ANY_PLACEHOLDER, POSITIONAL, placeholder_names

NAME_PATTERN: Final = re.compile(r"^[a-z0-9_]+$")
MAX_NAME: Final = 512
MAX_HEADER_TEXT: Final = 60
MAX_BODY: Final = 1024
MAX_FOOTER: Final = 60
MAX_BUTTONS: Final = 2
MAX_URL_BUTTONS: Final = 2
MAX_PHONE_BUTTONS: Final = 1
MAX_BUTTON_LABEL: Final = 25
MAX_BUTTON_PHONE: Final = 20
MAX_URL: Final = 2000
CATEGORIES: Final = (TemplateCategory.UTILITY, TemplateCategory.MARKETING)

#: Emoji live mostly in these blocks; U+FE0F turns a plain symbol (©, ❤) into its emoji form.
_EMOJI_RANGES: Final = (
    (0x1F000, 0x1FAFF),  # mahjong … symbols and pictographs extended-A (faces, flags, objects)
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2300, 0x23FF),  # technical: ⌚ ⌛ ⏰ …
    (0x2B00, 0x2BFF),  # arrows and stars: ⭐ ⬆ …
    (0x1F1E6, 0x1F1FF),  # regional indicators (flags)
    (0xFE0F, 0xFE0F),  # emoji presentation selector
    (0x200D, 0x200D),  # zero-width joiner of emoji sequences
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
)


def has_emoji(text: str) -> bool:
    """True when ``text`` holds an emoji (a pictograph or a symbol in emoji form)."""
    return any(any(low <= ord(char) <= high for low, high in _EMOJI_RANGES) for char in text)


# --- Input and output ---------------------------------------------------------------------------


@dataclass
class TemplateDraft:
    """What the builder submits (form, REST API or clone), before any rule is applied.

    ``attachment`` is a newly uploaded file, or the stored one when an edit keeps it.
    ``buttons`` items: ``{"type": "url"|"phone_number", "text", "url" | "phone_number",
    "url_suffix_field"?}``; a URL may carry its dynamic field inline (``…/pay/{{invoice_number}}``).
    """

    name: str
    language: str
    category: str
    module: str
    body: str
    header_type: str = HeaderType.NONE
    header_text: str = ""
    attachment_mode: str = ""
    attachment: File | None = None
    footer: str = ""
    buttons: Sequence[Mapping[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CleanTemplate:
    """A draft that passed every rule, normalised the way it is stored and sent to Meta."""

    name: str
    language: str
    category: str
    module: str
    header_type: str
    header_text: str
    attachment_mode: str
    attachment_mime: str
    body: str
    footer: str
    buttons: list[dict[str, str]]
    field_mapping: dict[str, dict[str, str]]


class _Errors:
    """Collects messages per field, so the form shows every problem at once, not one per submit."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.by_field.setdefault(key, []).append(message)

    def has(self, key: str) -> bool:
        return key in self.by_field

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


# --- The whole template -------------------------------------------------------------------------


def template_clean(
    *,
    organization: Organization,
    waba_id: str,
    draft: TemplateDraft,
    exclude_pk: int | None = None,
) -> CleanTemplate:
    """Apply every rule to ``draft``; raise one ValidationError listing all failures by field.

    ``exclude_pk`` is the template being edited (its own name does not count as taken).
    """
    errors = _Errors()
    name = (draft.name or "").strip()
    language = (draft.language or "").strip()
    module = (draft.module or "").strip()
    _check_name(errors, name)
    if language not in META_LANGUAGES:
        errors.add("language", _("Choose a language WhatsApp supports for templates."))
    category = (draft.category or "").strip().upper()
    if category not in CATEGORIES:
        errors.add("category", _("Choose Utility or Marketing as the category."))
    if module not in MODULES:
        errors.add("module", _("Choose the module this template belongs to."))
    if not errors.has("name") and not errors.has("language"):
        _check_name_free(errors, waba_id=waba_id, name=name, language=language, exclude_pk=exclude_pk)

    mapping: dict[str, dict[str, str]] = {"header": {}, "body": {}, "buttons": {}}
    header_type, header_text, attachment_mode, attachment_mime = _check_header(errors, draft, module, mapping)
    body = _check_body(errors, draft.body or "", module, mapping)
    footer = _check_footer(errors, draft.footer or "")
    buttons = _check_buttons(errors, draft.buttons or [], module, organization, mapping)
    errors.raise_if_any()
    return CleanTemplate(
        name=name,
        language=language,
        category=category,
        module=module,
        header_type=header_type,
        header_text=header_text,
        attachment_mode=attachment_mode,
        attachment_mime=attachment_mime,
        body=body,
        footer=footer,
        buttons=buttons,
        field_mapping=mapping,
    )


# --- Name ---------------------------------------------------------------------------------------


def _check_name(errors: _Errors, name: str) -> None:
    if not name:
        errors.add("name", _("Enter a name for the template."))
    elif len(name) > MAX_NAME:
        errors.add("name", _("The name can be at most %(max)d characters long.") % {"max": MAX_NAME})
    elif not NAME_PATTERN.match(name):
        errors.add(
            "name",
            _("Use only lowercase letters, digits and underscores in the name, for example invoice_reminder."),
        )


def _check_name_free(errors: _Errors, *, waba_id: str, name: str, language: str, exclude_pk: int | None) -> None:
    """One template per name × language in a WABA, and Meta keeps a deleted one's name for 4 weeks."""
    from .models import MessageTemplate  # models import this module's neighbours; keep the cycle out

    taken = MessageTemplate.objects.filter(waba_id=waba_id, name=name, language=language)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    statuses = set(taken.values_list("status", flat=True))
    params = {"name": name, "language": META_LANGUAGES.get(language, language)}
    if statuses - {TemplateStatus.DELETED}:
        errors.add(
            "name",
            _(
                "A template named “%(name)s” already exists in %(language)s. Choose another name, or another "
                "language for the same name."
            )
            % params,
        )
    elif statuses:
        errors.add(
            "name",
            _(
                "A deleted template used the name “%(name)s” in %(language)s, and WhatsApp keeps that name "
                "blocked for 4 weeks after a deletion. Choose another name."
            )
            % params,
        )


# --- Dynamic fields -----------------------------------------------------------------------------


def _module_label(module: str) -> str:
    return str(Module(module).label) if module in Module.values else module


def _check_fields(errors: _Errors, key: str, text: str, module: str, where: str) -> list[str]:
    """The text's placeholders must all be catalogue fields of the module; returns them in order."""
    names = placeholder_names(text)
    stripped = ANY_PLACEHOLDER.sub("", text)
    if "{{" in stripped or "}}" in stripped:
        errors.add(
            key,
            _("Check the braces in the %(where)s: a dynamic field is written {{field_name}}.") % {"where": where},
        )
    if module not in MODULES:
        return names  # the module error is reported already
    unknown = [name for name in dict.fromkeys(names) if catalogue_field(module, name) is None]
    for name in unknown:
        errors.add(
            key,
            _("“{{%(name)s}}” is not a dynamic field of %(module)s. Insert fields from the list.")
            % {"name": name, "module": _module_label(module)},
        )
    return names


# --- Header -------------------------------------------------------------------------------------


def _check_header(
    errors: _Errors, draft: TemplateDraft, module: str, mapping: dict[str, dict[str, str]]
) -> tuple[str, str, str, str]:
    header_type = (draft.header_type or HeaderType.NONE).strip()
    if header_type not in HeaderType.values:
        errors.add("header_type", _("Choose a header: none, text, document or image."))
        return HeaderType.NONE, "", "", ""
    if header_type == HeaderType.NONE:
        return header_type, "", "", ""
    if header_type == HeaderType.TEXT:
        text = (draft.header_text or "").strip()
        if not text:
            errors.add("header_text", _("Enter the header text, or choose no header."))
            return header_type, "", "", ""
        if len(text) > MAX_HEADER_TEXT:
            errors.add(
                "header_text",
                _("The header can be at most %(max)d characters long (it has %(count)d).")
                % {"max": MAX_HEADER_TEXT, "count": len(text)},
            )
        if "\n" in text or has_emoji(text):
            errors.add("header_text", _("The header can't contain emoji or line breaks."))
        names = _check_fields(errors, "header_text", text, module, _("header"))
        if len(names) > 1:
            errors.add("header_text", _("The header can contain at most one dynamic field."))
        elif names:
            mapping["header"] = {names[0]: names[0]}
        return header_type, text, "", ""
    return (header_type, "", *_check_attachment(errors, draft, header_type, module))


def _check_attachment(errors: _Errors, draft: TemplateDraft, header_type: str, module: str) -> tuple[str, str]:
    mode = (draft.attachment_mode or "").strip()
    spec = MODULES.get(module)
    if mode not in AttachmentMode.values:
        errors.add(
            "attachment_mode",
            _("Choose whether the attachment is dynamic (the transaction's own PDF) or static (a file you upload)."),
        )
        return "", ""
    if mode == AttachmentMode.DYNAMIC:
        if header_type == HeaderType.IMAGE:
            errors.add(
                "attachment_mode",
                _("A dynamic attachment is the transaction's PDF, so the header must be a document, not an image."),
            )
        elif spec is not None and not spec.has_pdf:
            message = (
                _("%(module)s templates have no transaction PDF to attach; upload a static file instead.")
                if spec.allows_static_attachment
                else _("%(module)s templates can't carry an attachment; choose a text header or none.")
            )
            errors.add("attachment_mode", message % {"module": _module_label(module)})
        return mode, PDF
    if spec is not None and not spec.allows_static_attachment:
        errors.add(
            "attachment_mode",
            _("Static attachments can be used only in Customers templates; choose a dynamic attachment."),
        )
        return mode, ""
    if draft.attachment is None or not getattr(draft.attachment, "name", None):
        errors.add("attachment", _("Upload the file to attach."))
        return mode, ""
    mime = mime_sniff(file_head(draft.attachment))
    allowed = (PDF,) if header_type == HeaderType.DOCUMENT else (JPEG, PNG)
    if mime not in allowed:
        message = (
            _("The attachment must be a PDF file.")
            if header_type == HeaderType.DOCUMENT
            else _("The image must be a JPEG or PNG file.")
        )
        errors.add("attachment", message)
        return mode, ""
    size = draft.attachment.size or 0
    if size > MAX_BYTES[mime]:
        errors.add(
            "attachment",
            _("The file is %(size)s; WhatsApp accepts %(kind)s of up to %(max)s.")
            % {
                "size": format_size(size),
                "kind": _("documents") if mime == PDF else _("images"),
                "max": format_size(MAX_BYTES[mime]),
            },
        )
    return mode, mime


# --- Body ---------------------------------------------------------------------------------------


def _trim_to_words(text: str) -> str:
    """Drop leading and trailing spaces, punctuation and symbols, keeping placeholder braces."""
    start, end = 0, len(text)
    while start < end and not (text[start].isalnum() or text[start] == "{"):
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] == "}"):
        end -= 1
    return text[start:end]


def _word_count(text: str) -> int:
    """Words that are not variables: runs of non-space characters holding a letter or a digit."""
    plain = ANY_PLACEHOLDER.sub(" ", text)
    return sum(1 for token in plain.split() if any(char.isalnum() for char in token))


def variables_too_many(text: str) -> tuple[int, int] | None:
    """``(needed, actual)`` words when the 2388293 ratio rule fails (see the module docstring), else None."""
    count = len(ANY_PLACEHOLDER.findall(text))
    if not count:
        return None
    needed, actual = 2 * count + 1, _word_count(text)
    return (needed, actual) if actual < needed else None


def _check_body(errors: _Errors, raw: str, module: str, mapping: dict[str, dict[str, str]]) -> str:
    body = raw.strip()
    if not body:
        errors.add("body", _("Enter the message."))
        return ""
    if len(body) > MAX_BODY:
        errors.add(
            "body",
            _("The message can be at most %(max)s characters long (it has %(count)s).")
            % {"max": "1,024", "count": f"{len(body):,}"},
        )
    names = _check_fields(errors, "body", body, module, _("message"))
    if not names:
        return body
    core = _trim_to_words(body)
    if core.startswith("{{") or core.endswith("}}"):
        errors.add(
            "body", _("The message can't start or end with a dynamic field; add some words before and after it.")
        )
    spans = list(ANY_PLACEHOLDER.finditer(body))
    for first, second in itertools.pairwise(spans):
        between = body[first.end() : second.start()]
        if not any(char.isalnum() for char in between):
            errors.add(
                "body",
                _("Dynamic fields can't be next to each other: add words between {{%(first)s}} and {{%(second)s}}.")
                % {"first": first.group(1), "second": second.group(1)},
            )
            break
    too_many = variables_too_many(body)
    if too_many is not None:
        needed, actual = too_many
        errors.add(
            "body",
            _(
                "The message has too many dynamic fields for its length: with %(fields)d fields it needs at least "
                "%(needed)d other words, and it has %(actual)d. Add text or remove fields."
            )
            % {"fields": len(names), "needed": needed, "actual": actual},
        )
    mapping["body"] = {name: name for name in dict.fromkeys(names)}
    return body


# --- Footer -------------------------------------------------------------------------------------


def _check_footer(errors: _Errors, raw: str) -> str:
    footer = raw.strip()
    if not footer:
        return ""
    if len(footer) > MAX_FOOTER:
        errors.add(
            "footer",
            _("The footer can be at most %(max)d characters long (it has %(count)d).")
            % {"max": MAX_FOOTER, "count": len(footer)},
        )
    if "\n" in footer or "\r" in footer:
        errors.add("footer", _("The footer must be a single line."))
    if has_emoji(footer):
        errors.add("footer", _("The footer can't contain emoji."))
    if "{{" in footer or "}}" in footer:
        errors.add("footer", _("The footer can't contain dynamic fields."))
    return footer


# --- Buttons ------------------------------------------------------------------------------------


def _check_buttons(
    errors: _Errors,
    raw: Sequence[Mapping[str, Any]],
    module: str,
    organization: Organization,
    mapping: dict[str, dict[str, str]],
) -> list[dict[str, str]]:
    buttons = [button for button in raw if any(str(value or "").strip() for value in button.values())]
    if len(buttons) > MAX_BUTTONS:
        errors.add("buttons", _("Add at most %(max)d call-to-action buttons.") % {"max": MAX_BUTTONS})
        return []
    types = [str(button.get("type") or "").strip() for button in buttons]
    if types.count(ButtonType.URL) > MAX_URL_BUTTONS:
        errors.add("buttons", _("Add at most %(max)d website buttons.") % {"max": MAX_URL_BUTTONS})
    if types.count(ButtonType.PHONE_NUMBER) > MAX_PHONE_BUTTONS:
        errors.add("buttons", _("Only one button can call a phone number."))
    cleaned = []
    for index, (button, kind) in enumerate(zip(buttons, types, strict=True)):
        number = index + 1
        label = str(button.get("text") or "").strip()
        if kind not in ButtonType.values:
            errors.add(
                "buttons",
                _("Button %(n)d: choose whether it opens a website or calls a phone number.") % {"n": number},
            )
            continue
        if not label:
            errors.add("buttons", _("Button %(n)d: enter the text shown on the button.") % {"n": number})
        elif len(label) > MAX_BUTTON_LABEL:
            errors.add(
                "buttons",
                _("Button %(n)d: the button text can be at most %(max)d characters long (it has %(count)d).")
                % {"n": number, "max": MAX_BUTTON_LABEL, "count": len(label)},
            )
        if kind == ButtonType.PHONE_NUMBER:
            phone = _check_button_phone(errors, number, str(button.get("phone_number") or ""), organization)
            cleaned.append({"type": kind, "text": label, "phone_number": phone})
        else:
            url, suffix_field = _check_button_url(errors, number, button, module)
            if suffix_field:
                mapping["buttons"][str(index)] = suffix_field
            cleaned.append({"type": kind, "text": label, "url": url, "url_suffix_field": suffix_field})
    return cleaned


def _check_button_phone(errors: _Errors, number: int, raw: str, organization: Organization) -> str:
    phone = raw.strip()
    if not phone:
        errors.add("buttons", _("Button %(n)d: enter the phone number to call.") % {"n": number})
        return ""
    if len(phone) > MAX_BUTTON_PHONE:
        errors.add(
            "buttons",
            _("Button %(n)d: the phone number can be at most %(max)d characters long.")
            % {"n": number, "max": MAX_BUTTON_PHONE},
        )
        return phone
    try:
        parsed = phonenumbers.parse(phone, (organization.phone_region or organization.country or "").upper() or None)
        valid = phonenumbers.is_valid_number(parsed)
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        errors.add(
            "buttons",
            _("Button %(n)d: “%(phone)s” is not a valid phone number; include the country code, e.g. +91 98200 12345.")
            % {"n": number, "phone": phone},
        )
        return phone
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _check_button_url(errors: _Errors, number: int, button: Mapping[str, Any], module: str) -> tuple[str, str]:
    """Return Meta's URL (``…/{{1}}`` for a dynamic suffix) and the catalogue field of the suffix."""
    url = str(button.get("url") or "").strip()
    suffix_field = str(button.get("url_suffix_field") or "").strip()
    if not url:
        errors.add("buttons", _("Button %(n)d: enter the website address.") % {"n": number})
        return "", ""
    if len(url) > MAX_URL:
        errors.add(
            "buttons",
            _("Button %(n)d: the website address can be at most %(max)s characters long.")
            % {"n": number, "max": "2,000"},
        )
    spans = list(ANY_PLACEHOLDER.finditer(url))
    if len(spans) > 1:
        errors.add("buttons", _("Button %(n)d: a website address can contain only one dynamic field.") % {"n": number})
        return url, ""
    if spans:
        span = spans[0]
        if url[span.end() :].strip():
            errors.add(
                "buttons",
                _("Button %(n)d: a dynamic field can only be at the end of the website address.") % {"n": number},
            )
            return url, ""
        # "{{1}}" (Meta's own form) takes its field from url_suffix_field; a named one is the field.
        if not POSITIONAL.fullmatch(span.group(0)):
            suffix_field = span.group(1)
        base = url[: span.start()]
    else:
        base = url
    parts = urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.hostname or " " in base:
        errors.add(
            "buttons",
            _("Button %(n)d: enter a full website address starting with https:// or http://.") % {"n": number},
        )
        return url, ""
    if spans and not suffix_field:
        errors.add(
            "buttons",
            _("Button %(n)d: choose the dynamic field added at the end of the website address.") % {"n": number},
        )
        return url, ""
    if suffix_field:
        if module in MODULES and catalogue_field(module, suffix_field) is None:
            errors.add(
                "buttons",
                _("Button %(n)d: “{{%(name)s}}” is not a dynamic field of %(module)s.")
                % {"n": number, "name": suffix_field, "module": _module_label(module)},
            )
            return url, ""
        return base + "{{1}}", suffix_field
    return url, ""


def error_for_meta(exc: CloudAPIError, *, deleting: bool = False) -> ValidationError:
    """Meta refused a submission (or a deletion): the same ValidationError shape, on the field
    Meta's subcode names. The message joins Meta's own words (they name the exact problem) with
    the fix hint, so nothing the accountant needs is lost between Meta and the form.
    """
    field_by_subcode = {
        2388023: "name",
        2388024: "name",
        2388047: "body",
        2388073: "footer",
        2388293: "body",
        2388299: "body",
    }
    key = field_by_subcode.get(exc.subcode or -1, NON_FIELD_ERRORS)
    parts = [str(exc.title or "").strip()]
    details = str(exc.details or "").strip()
    if details and details != parts[0]:
        parts.append(details)
    text = ": ".join(part for part in parts if part)
    hint = str(exc.fix_hint or "").strip()
    reason = {"reason": text.rstrip(".")}
    message = (
        _("WhatsApp couldn't delete the template — %(reason)s.") % reason
        if deleting
        else _("WhatsApp refused the template — %(reason)s.") % reason
    )
    if hint:
        message = f"{message} {hint}"
    return ValidationError({key: [message]})


# --- Mapping a template created on Meta's side ----------------------------------------------------


def mapping_clean(
    *, module: str, variables: Mapping[str, Sequence[str]], mapping: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """Check a field mapping for a template whose text came from Meta (any parameter format).

    ``variables`` gives the template's variables per part (``header``, ``body``, ``buttons`` by
    index). Every variable needs a catalogue field of ``module``; extra entries are refused.
    """
    errors = _Errors()
    if module not in MODULES:
        errors.add("module", _("Choose the module this template belongs to."))
        errors.raise_if_any()
    cleaned: dict[str, dict[str, str]] = {"header": {}, "body": {}, "buttons": {}}
    for part in ("header", "body", "buttons"):
        given = mapping.get(part) or {}
        if not isinstance(given, Mapping):
            errors.add("field_mapping", _("The field mapping is malformed."))
            continue
        for variable in variables.get(part, ()):
            key = str(given.get(variable) or "").strip()
            if not key:
                errors.add(
                    "field_mapping",
                    _("Choose the field that fills {{%(variable)s}} in the %(part)s.")
                    % {"variable": variable, "part": _part_label(part)},
                )
            elif catalogue_field(module, key) is None:
                errors.add(
                    "field_mapping",
                    _("“%(field)s” is not a dynamic field of %(module)s.")
                    % {"field": key, "module": _module_label(module)},
                )
            else:
                cleaned[part][str(variable)] = key
        extra = set(map(str, given)) - set(map(str, variables.get(part, ())))
        if extra:
            errors.add(
                "field_mapping",
                _("The %(part)s has no variable %(names)s.")
                % {"part": _part_label(part), "names": ", ".join(sorted(extra))},
            )
    errors.raise_if_any()
    return cleaned


def _part_label(part: str) -> str:
    return {"header": _("header"), "body": _("message"), "buttons": _("buttons")}[part]
