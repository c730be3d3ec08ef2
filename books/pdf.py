"""PDFs of documents and statements (WeasyPrint). Interface used by the UI, the API and, later,
the WhatsApp dynamic attachment: ``document_pdf(document) -> bytes``, ``statement_pdf(statement) -> bytes``."""

from django.template.loader import render_to_string
from weasyprint import HTML

from books.models import Document
from books.selectors import Statement


def document_pdf(document: Document) -> bytes:
    html = render_to_string("books/pdf/document.html", {"document": document})
    return HTML(string=html).write_pdf()


def statement_pdf(statement: Statement) -> bytes:
    html = render_to_string("books/pdf/statement.html", {"statement": statement})
    return HTML(string=html).write_pdf()


def document_pdf_filename(document: Document) -> str:
    return f"{document.number}.pdf"
