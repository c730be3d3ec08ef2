"""A template as Meta's ``POST /{waba_id}/message_templates`` wants it, examples included.

Meta reviews a template with sample values: every variable needs an example, and a media header
needs a sample file uploaded through the Resumable Upload API (its handle goes in
``example.header_handle``). Examples come from the field catalogue, formatted for the
organization, so the reviewer sees ``₹1,18,000.00`` where the customer will.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from whatsapp.client import CloudAPI

from .attachments import SAMPLE_DOCUMENT_NAME, file_bytes, sample_document
from .choices import AttachmentMode, ButtonType, HeaderType
from .fields import catalogue_field
from .models import MessageTemplate
from .placeholders import PARAMETER_FORMAT_NAMED, variables


def _example(template: MessageTemplate, key: str) -> str:
    field = catalogue_field(template.module, key)
    return field.example(template.organization) if field is not None else key


def header_sample(template: MessageTemplate) -> tuple[bytes, str, str]:
    """The file Meta's reviewers see in a media header: ``(content, file name, MIME type)``.

    Static: the uploaded file itself. Dynamic: a sample invoice PDF shipped with the hub, because
    each send attaches a different document and a real one would expose a customer's data.
    """
    if template.attachment_mode == AttachmentMode.STATIC and template.attachment:
        return (
            file_bytes(template.attachment),
            template.attachment_filename or "attachment",
            template.attachment_mime or "application/pdf",
        )
    return sample_document(), SAMPLE_DOCUMENT_NAME, "application/pdf"


def header_handle_upload(*, template: MessageTemplate, api: CloudAPI, app_id: str) -> str | None:
    """Upload the header sample (Resumable Upload API) and return its handle; None without a media header."""
    if template.header_type not in (HeaderType.DOCUMENT, HeaderType.IMAGE):
        return None
    content, file_name, mime_type = header_sample(template)
    return api.resumable_upload(app_id, content, file_name, mime_type)


def template_components_build(template: MessageTemplate, *, header_handle: str | None = None) -> list[dict[str, Any]]:
    """The ``components`` of the create (and edit) request, from the builder fields (NAMED format)."""
    components: list[dict[str, Any]] = []
    if template.header_type == HeaderType.TEXT:
        header: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": template.header_text}
        names = variables(template.header_text, PARAMETER_FORMAT_NAMED)
        if names:
            header["example"] = {
                "header_text_named_params": [
                    {"param_name": name, "example": _example(template, name)} for name in names
                ]
            }
        components.append(header)
    elif template.header_type in (HeaderType.DOCUMENT, HeaderType.IMAGE):
        if not header_handle:
            raise ValueError("A media header needs the handle of an uploaded sample (header_handle_upload).")
        components.append(
            {"type": "HEADER", "format": template.header_type.upper(), "example": {"header_handle": [header_handle]}}
        )
    body: dict[str, Any] = {"type": "BODY", "text": template.body}
    names = variables(template.body, PARAMETER_FORMAT_NAMED)
    if names:
        body["example"] = {
            "body_text_named_params": [{"param_name": name, "example": _example(template, name)} for name in names]
        }
    components.append(body)
    if template.footer:
        components.append({"type": "FOOTER", "text": template.footer})
    buttons = [_button(template, button) for button in template.buttons or []]
    if buttons:
        components.append({"type": "BUTTONS", "buttons": buttons})
    return components


def _button(template: MessageTemplate, button: dict[str, Any]) -> dict[str, Any]:
    if button.get("type") == ButtonType.PHONE_NUMBER:
        return {"type": "PHONE_NUMBER", "text": button["text"], "phone_number": button["phone_number"]}
    url = str(button.get("url") or "")
    item: dict[str, Any] = {"type": "URL", "text": button["text"], "url": url}
    suffix_field = button.get("url_suffix_field")
    if suffix_field:
        # Meta's URL buttons take one positional variable at the end, whatever the body's format;
        # the example is the whole URL as a customer would open it.
        item["example"] = [url.replace("{{1}}", quote(_example(template, suffix_field), safe=""))]
    return item


def template_payload_build(template: MessageTemplate, *, header_handle: str | None = None) -> dict[str, Any]:
    """The whole create request: name, language, category, NAMED format and components."""
    return {
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "parameter_format": PARAMETER_FORMAT_NAMED,
        "components": template_components_build(template, header_handle=header_handle),
    }
