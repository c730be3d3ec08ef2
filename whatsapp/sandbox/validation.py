"""Meta's checks on what the business sends: template definitions and template sends.

Pure functions over JSON-shaped data (no ORM): they raise :class:`~.errors.GraphError` with the
code Meta uses (100 and its 2388xxx subcodes for definitions; 132000, 132012, 131008, 131009 for
sends) and otherwise return what the sandbox stores or shows: normalised components, and the
message as the customer sees it, parameters substituted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .errors import GraphError, invalid_parameter, template_creation_error

NAME_PATTERN: Final = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE_PATTERN: Final = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
CATEGORIES: Final = ("UTILITY", "MARKETING", "AUTHENTICATION")
MEDIA_FORMATS: Final = ("IMAGE", "VIDEO", "DOCUMENT", "GIF")
POSITIONAL_VARIABLE: Final = re.compile(r"\{\{\s*(\d+)\s*\}\}")
NAMED_VARIABLE: Final = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
ANY_VARIABLE: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
ADJACENT_VARIABLES: Final = re.compile(r"\}\}\s*\{\{")

MAX_BODY: Final = 1024
MAX_HEADER_TEXT: Final = 60
MAX_FOOTER: Final = 60
MAX_BUTTON_LABEL: Final = 25
MAX_BUTTONS: Final = 10
#: Meta refuses text parameters with line breaks, tabs or more than 4 consecutive spaces.
BAD_PARAMETER_TEXT: Final = re.compile(r"[\n\t]| {5,}")


# --- Reading a stored template ------------------------------------------------------------------


def component(components: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    """The first component of ``kind`` (HEADER, BODY, FOOTER, BUTTONS), whatever its case."""
    for item in components:
        if str(item.get("type", "")).upper() == kind:
            return item
    return None


def variables(text: str, parameter_format: str) -> list[str]:
    """The distinct variables of a text, in order of first appearance ("1", "2" or names)."""
    pattern = NAMED_VARIABLE if parameter_format == "NAMED" else POSITIONAL_VARIABLE
    seen: list[str] = []
    for match in pattern.finditer(text or ""):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def header_format(components: Sequence[Mapping[str, Any]]) -> str | None:
    header = component(components, "HEADER")
    return str(header.get("format", "TEXT")).upper() if header else None


def body_text(components: Sequence[Mapping[str, Any]]) -> str:
    body = component(components, "BODY")
    return str(body.get("text", "")) if body else ""


# --- Template definitions (POST /{waba_id}/message_templates) -----------------------------------


def clean_template_definition(data: Mapping[str, Any], *, require_all: bool = True) -> dict[str, Any]:
    """Check a template as Meta's creation endpoint does; return name, language, category, format, components.

    With ``require_all=False`` (an edit) name and language are not expected.
    """
    cleaned: dict[str, Any] = {}
    if require_all:
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_parameter("The parameter name is required.")
        if not NAME_PATTERN.match(name):
            raise template_creation_error(
                None,
                "Invalid template name",
                "Template names can only contain lowercase letters, numbers and underscores, up to 512 characters.",
            )
        language = data.get("language")
        if not isinstance(language, str) or not LANGUAGE_PATTERN.match(language):
            raise invalid_parameter("The parameter language is required and must be a locale such as en or en_US.")
        cleaned.update(name=name, language=language)
    category = data.get("category")
    if category is not None or require_all:
        if not isinstance(category, str) or category.upper() not in CATEGORIES:
            raise invalid_parameter(f"Param category must be one of {{{', '.join(CATEGORIES)}}}.")
        cleaned["category"] = category.upper()
    parameter_format = str(data.get("parameter_format") or "POSITIONAL").upper()
    if parameter_format not in {"POSITIONAL", "NAMED"}:
        raise invalid_parameter("Param parameter_format must be one of {POSITIONAL, NAMED}.")
    cleaned["parameter_format"] = parameter_format
    components = data.get("components")
    if components is not None or require_all:
        cleaned["components"] = _clean_components(components, parameter_format, cleaned.get("category", ""))
    return cleaned


def _clean_components(components: Any, parameter_format: str, category: str) -> list[dict[str, Any]]:
    if not isinstance(components, list) or not all(isinstance(item, dict) for item in components):
        raise invalid_parameter("The parameter components is required and must be an array of objects.")
    normalised = [{**item, "type": str(item.get("type", "")).upper()} for item in components]
    kinds = [item["type"] for item in normalised]
    for kind in kinds:
        if kind not in {"HEADER", "BODY", "FOOTER", "BUTTONS"}:
            raise invalid_parameter(f"Param components[].type must be one of {{HEADER, BODY, FOOTER, BUTTONS}}: {kind}")
        if kinds.count(kind) > 1:
            raise invalid_parameter(f"A template has at most one {kind} component.")
    if "BODY" not in kinds:
        raise invalid_parameter("Message template components must include a BODY component.")
    for item in normalised:
        {"HEADER": _clean_header, "BODY": _clean_body, "FOOTER": _clean_footer, "BUTTONS": _clean_buttons}[
            item["type"]
        ](item, parameter_format, category)
    return normalised


def _check_variables(text: str, parameter_format: str, where: str) -> list[str]:
    found = [match.group(1) for match in ANY_VARIABLE.finditer(text)]
    if parameter_format == "NAMED":
        if any(not NAMED_VARIABLE.fullmatch("{{" + name + "}}") for name in found):
            raise template_creation_error(
                2388047,
                f"{where} format is incorrect",
                f"The {where.lower()} of a NAMED template uses {{{{name}}}} variables: lowercase letters, digits "
                "and underscores, starting with a letter.",
            )
    else:
        if any(not name.isdigit() for name in found):
            raise template_creation_error(
                2388047,
                f"{where} format is incorrect",
                f"The {where.lower()} of a POSITIONAL template uses numbered variables such as {{{{1}}}}.",
            )
        numbers = sorted({int(name) for name in found})
        if numbers != list(range(1, len(numbers) + 1)):
            raise template_creation_error(
                2388047,
                f"{where} format is incorrect",
                f"The variables of the {where.lower()} must be numbered in sequence, starting at {{{{1}}}}.",
            )
    return variables(text, parameter_format)


def _clean_header(item: dict[str, Any], parameter_format: str, _category: str) -> None:
    fmt = str(item.get("format", "")).upper()
    if fmt not in {"TEXT", "LOCATION", *MEDIA_FORMATS}:
        raise invalid_parameter(
            "Param components[HEADER].format must be one of {TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION}."
        )
    item["format"] = fmt
    example = item.get("example") if isinstance(item.get("example"), dict) else {}
    if fmt == "TEXT":
        text = item.get("text")
        if not isinstance(text, str) or not text:
            raise invalid_parameter("A TEXT header needs text.")
        if len(text) > MAX_HEADER_TEXT:
            raise template_creation_error(
                2388040, "Field is too long", f"The header text is longer than {MAX_HEADER_TEXT} characters."
            )
        found = _check_variables(text, parameter_format, "Header")
        if len(found) > 1:
            raise template_creation_error(
                2388047, "Header format is incorrect", "A text header has at most 1 variable."
            )
        if found and not (example.get("header_text") or example.get("header_text_named_params")):
            raise template_creation_error(
                None, "Missing example", "A header with a variable needs example.header_text."
            )
    elif fmt in MEDIA_FORMATS:
        handles = example.get("header_handle")
        if not isinstance(handles, list) or not handles or not all(isinstance(h, str) and h for h in handles):
            raise template_creation_error(
                None,
                "Missing example",
                f"A {fmt} header needs example.header_handle with a handle from the Resumable Upload API.",
            )


def _clean_body(item: dict[str, Any], parameter_format: str, category: str) -> None:
    text = item.get("text")
    if category == "AUTHENTICATION" and text is None:
        return
    if not isinstance(text, str) or not text.strip():
        raise invalid_parameter("The BODY component needs text.")
    if len(text) > MAX_BODY:
        raise template_creation_error(2388040, "Field is too long", f"The body is longer than {MAX_BODY} characters.")
    found = _check_variables(text, parameter_format, "Body")
    stripped = text.strip()
    if found and (ANY_VARIABLE.match(stripped) or re.search(r"\{\{[^{}]*\}\}$", stripped)):
        raise template_creation_error(
            2388299,
            "Variables can't be at the start or end of the template",
            "Variables can't be at the start or end of the template body.",
        )
    if found:
        example = item.get("example") if isinstance(item.get("example"), dict) else {}
        key = "body_text_named_params" if parameter_format == "NAMED" else "body_text"
        if not example.get(key):
            raise template_creation_error(None, "Missing example", f"A body with variables needs example.{key}.")


def _clean_footer(item: dict[str, Any], _parameter_format: str, _category: str) -> None:
    text = item.get("text")
    if not isinstance(text, str) or not text or len(text) > MAX_FOOTER or ANY_VARIABLE.search(text):
        raise template_creation_error(
            2388073, "Footer format is incorrect", f"A footer is plain text of at most {MAX_FOOTER} characters."
        )


def _clean_buttons(item: dict[str, Any], _parameter_format: str, _category: str) -> None:
    buttons = item.get("buttons")
    if not isinstance(buttons, list) or not buttons or not all(isinstance(b, dict) for b in buttons):
        raise invalid_parameter("The BUTTONS component needs a list of buttons.")
    if len(buttons) > MAX_BUTTONS:
        raise invalid_parameter(f"A template has at most {MAX_BUTTONS} buttons.")
    types = [str(button.get("type", "")).upper() for button in buttons]
    limits = {"URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
    for kind, limit in limits.items():
        if types.count(kind) > limit:
            raise invalid_parameter(f"A template has at most {limit} {kind} button(s).")
    for button, kind in zip(buttons, types, strict=True):
        button["type"] = kind
        label = button.get("text")
        if kind != "COPY_CODE" and (not isinstance(label, str) or not label or len(label) > MAX_BUTTON_LABEL):
            raise template_creation_error(
                2388040, "Field is too long", f"Button labels have 1 to {MAX_BUTTON_LABEL} characters."
            )


def review_verdict(name: str, components: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """The sandbox's review rule: ``("APPROVED", None)`` or ``("REJECTED", reason)``.

    Names starting with ``reject`` and bodies with adjacent variables (``{{1}}{{2}}``) are
    rejected as INVALID_FORMAT; bodies containing ``REJECT_ME`` as PROMOTIONAL.
    """
    text = body_text(components)
    if name.startswith("reject") or ADJACENT_VARIABLES.search(text):
        return "REJECTED", "INVALID_FORMAT"
    if "REJECT_ME" in text:
        return "REJECTED", "PROMOTIONAL"
    return "APPROVED", None


REJECTION_RECOMMENDATIONS: Final = {
    "INVALID_FORMAT": "Check the template's variables and formatting: no adjacent variables, no variables at the "
    "start or end, and a name that describes the message.",
    "PROMOTIONAL": "Utility templates can't contain promotional content. Remove it or submit the template as "
    "MARKETING.",
}


# --- Template sends (POST /{phone_number_id}/messages, type template) ----------------------------


def _parameter_value(parameter: Mapping[str, Any], where: str) -> str:
    kind = parameter.get("type")
    if kind == "text":
        value = parameter.get("text")
        if not isinstance(value, str) or not value:
            raise GraphError(131008, details=f"{where}: Parameter of type text is missing text value")
        if BAD_PARAMETER_TEXT.search(value):
            raise invalid_parameter(
                f"{where}: Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
            )
        return value
    if kind in {"currency", "date_time"}:
        inner = parameter.get(kind)
        value = inner.get("fallback_value") if isinstance(inner, dict) else None
        if not isinstance(value, str) or not value:
            raise GraphError(131008, details=f"{where}: Parameter of type {kind} is missing fallback_value")
        return value
    raise GraphError(131009, details=f"{where}: Parameter type {kind!r} is not supported here")


def _substitute(text: str, values: Mapping[str, str], parameter_format: str) -> str:
    pattern = NAMED_VARIABLE if parameter_format == "NAMED" else POSITIONAL_VARIABLE
    return pattern.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def _text_values(
    parameters: list[Mapping[str, Any]], expected: list[str], parameter_format: str, where: str
) -> dict[str, str]:
    if len(parameters) != len(expected):
        raise GraphError(
            132000,
            details=(
                f"{where}: number of localizable_params ({len(parameters)}) does not match the expected number of "
                f"params ({len(expected)})"
            ),
        )
    named = [isinstance(p.get("parameter_name"), str) and bool(p.get("parameter_name")) for p in parameters]
    if parameter_format == "NAMED":
        if not all(named):
            raise GraphError(132012, details=f"{where}: Format mismatch, expected NAMED, received POSITIONAL")
        values = {str(p["parameter_name"]): _parameter_value(p, where) for p in parameters}
        missing = [name for name in expected if name not in values]
        if missing:
            raise GraphError(132000, details=f"{where}: parameter {missing[0]!r} is missing")
        return values
    if any(named):
        raise GraphError(132012, details=f"{where}: Format mismatch, expected POSITIONAL, received NAMED")
    return {str(index): _parameter_value(p, where) for index, p in enumerate(parameters, start=1)}


def render_template_send(
    components: Sequence[Mapping[str, Any]], parameter_format: str, send_components: Any
) -> dict[str, Any]:
    """Check a template send's parameters against the stored template, as Meta does; return the rendering.

    The rendering is what the customer sees: ``{"kind": "template", "header": {...} | None,
    "body", "footer", "buttons": [...]}``. A media header carries ``media_id`` or ``link``.
    """
    if send_components is None:
        send_components = []
    if not isinstance(send_components, list) or not all(isinstance(c, dict) for c in send_components):
        raise invalid_parameter("template['components'] must be an array of objects.")
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for item in send_components:
        by_type.setdefault(str(item.get("type", "")).lower(), []).append(item)
    unknown = set(by_type) - {"header", "body", "button", "footer"}
    if unknown:
        raise GraphError(131009, details=f"Unsupported component type: {sorted(unknown)[0]}")

    def parameters_of(kind: str) -> list[Mapping[str, Any]]:
        found = by_type.get(kind) or []
        params = found[0].get("parameters", []) if found else []
        if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
            raise invalid_parameter(f"{kind}: parameters must be an array of objects.")
        return params

    rendered: dict[str, Any] = {"kind": "template", "header": None, "body": "", "footer": "", "buttons": []}
    rendered["header"] = _render_header(components, parameter_format, parameters_of("header"))

    body_template = body_text(components)
    values = _text_values(parameters_of("body"), variables(body_template, parameter_format), parameter_format, "body")
    rendered["body"] = _substitute(body_template, values, parameter_format)
    footer = component(components, "FOOTER")
    rendered["footer"] = str(footer.get("text", "")) if footer else ""
    rendered["buttons"] = _render_buttons(components, by_type.get("button", []))
    return rendered


def _render_header(
    components: Sequence[Mapping[str, Any]], parameter_format: str, parameters: list[Mapping[str, Any]]
) -> dict[str, Any] | None:
    header = component(components, "HEADER")
    fmt = header_format(components)
    if header is None:
        if parameters:
            raise GraphError(
                132000,
                details=(
                    f"header: number of localizable_params ({len(parameters)}) does not match the expected number "
                    "of params (0)"
                ),
            )
        return None
    if fmt in MEDIA_FORMATS:
        wanted = "image" if fmt == "GIF" else fmt.lower()
        received = str(parameters[0].get("type", "")).upper() if parameters else "UNKNOWN"
        if len(parameters) != 1 or received.lower() != wanted:
            raise GraphError(
                132012, details=f"header: Format mismatch, expected {fmt}, received {received or 'UNKNOWN'}"
            )
        media = parameters[0].get(wanted)
        if not isinstance(media, dict) or not (media.get("id") or media.get("link")):
            raise GraphError(131008, details=f"header: Parameter of type {wanted} is missing an id or link")
        return {
            "type": wanted,
            "media_id": str(media.get("id") or ""),
            "link": str(media.get("link") or ""),
            "filename": str(media.get("filename") or ""),
        }
    if fmt == "TEXT":
        text = str(header.get("text", ""))
        values = _text_values(parameters, variables(text, parameter_format), parameter_format, "header")
        return {"type": "text", "text": _substitute(text, values, parameter_format)}
    return {"type": fmt.lower() if fmt else "text", "text": ""}


def _render_buttons(
    components: Sequence[Mapping[str, Any]], send_buttons: list[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    container = component(components, "BUTTONS")
    buttons = container.get("buttons", []) if container else []
    given: dict[int, Mapping[str, Any]] = {}
    for item in send_buttons:
        try:
            index = int(item.get("index", -1))
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(buttons):
            raise GraphError(131009, details=f"button: index {item.get('index')!r} is not a button of the template")
        given[index] = item
    rendered = []
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        entry: dict[str, Any] = {"type": kind, "text": str(button.get("text", "")), "index": index}
        sent = given.get(index)
        params = sent.get("parameters", []) if sent else []
        if kind == "URL":
            url = str(button.get("url", ""))
            dynamic = bool(POSITIONAL_VARIABLE.search(url) or NAMED_VARIABLE.search(url))
            if dynamic and not params:
                raise GraphError(131008, details=f"button: button at index {index} of type Url requires a parameter")
            if not dynamic and sent:
                raise GraphError(
                    132000,
                    details=f"button: number of localizable_params ({len(params)}) does not match the expected "
                    "number of params (0)",
                )
            suffix = str(params[0].get("text", "")) if params and isinstance(params[0], dict) else ""
            entry["url"] = ANY_VARIABLE.sub(suffix, url) if dynamic else url
        elif kind == "QUICK_REPLY":
            payload = params[0].get("payload") if params and isinstance(params[0], dict) else None
            entry["payload"] = str(payload) if payload else entry["text"]
        elif kind == "PHONE_NUMBER":
            entry["phone_number"] = str(button.get("phone_number", ""))
        elif kind == "COPY_CODE":
            code = params[0].get("coupon_code") if params and isinstance(params[0], dict) else ""
            entry["text"] = entry["text"] or "Copy code"
            entry["code"] = str(code or "")
        rendered.append(entry)
    return rendered
