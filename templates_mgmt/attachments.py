"""What an uploaded header file really is, and the sample file Meta reviews a dynamic header with.

The type is read from the file's first bytes, never from its name or the browser's Content-Type:
a ``.pdf`` that is really an HTML page would be accepted here and refused by WhatsApp at send
time, after credits were reserved. Limits are Meta's media limits (image 5 MB, document 100 MB).
"""

from pathlib import Path
from typing import Final

from django.core.files import File

PDF: Final = "application/pdf"
JPEG: Final = "image/jpeg"
PNG: Final = "image/png"

#: Meta's limits per media type (outside-contracts §3).
MAX_BYTES: Final = {PDF: 100 * 1024 * 1024, JPEG: 5 * 1024 * 1024, PNG: 5 * 1024 * 1024}

#: A one-page "Sample invoice" PDF, submitted as the example of every dynamic document header.
#: A real document would show a customer's data to Meta's reviewers.
SAMPLE_DOCUMENT_PATH: Final = Path(__file__).resolve().parent / "samples" / "sample_document.pdf"
SAMPLE_DOCUMENT_NAME: Final = "sample_document.pdf"


def mime_sniff(head: bytes) -> str | None:
    """PDF, JPEG or PNG from the magic bytes; None for anything else."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def _read(file: File, size: int = -1) -> bytes:
    """Read from the start and rewind; a stored file opened here is closed again (no leaked handles)."""
    opened_here = bool(getattr(file, "closed", False))
    if opened_here:
        file.open("rb")
    try:
        file.seek(0)
        content = file.read(size)
        file.seek(0)
    finally:
        if opened_here:
            file.close()
    return content if isinstance(content, bytes) else content.encode()


def file_head(file: File, size: int = 16) -> bytes:
    """The first bytes of an uploaded or stored file: enough to tell PDF, JPEG and PNG apart."""
    return _read(file, size)


def file_bytes(file: File) -> bytes:
    return _read(file)


def sample_document() -> bytes:
    return SAMPLE_DOCUMENT_PATH.read_bytes()


def format_size(size: int) -> str:
    """``4.2 MB`` — sizes in messages the accountant reads."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(size, 1) / 1024:.0f} KB"
