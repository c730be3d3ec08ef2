"""PDF responses of the books API."""

import re
from typing import Any

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from rest_framework.renderers import BaseRenderer, JSONRenderer

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class PDFRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: application/pdf``. The PDF views answer with bytes
    themselves; anything else that reaches this renderer (an error) is written as JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


PDF_RENDERERS = [JSONRenderer, PDFRenderer]


def pdf_response(content: bytes, *, filename: str) -> HttpResponse:
    """An inline PDF download named ``filename`` (document numbers are typed by people: a
    control character in one must not break the header)."""
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=False, filename=_CONTROL_CHARACTERS.sub("", filename) or "document.pdf"
    )
    return response
