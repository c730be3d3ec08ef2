"""The receipt of a paid IM credits purchase as a PDF, rendered by WeasyPrint (as ``books/pdf.py``
renders documents): in the organization's language, amounts and dates its way, and without
touching the network (every URL is refused)."""

from django.template.loader import render_to_string
from django.utils import translation

from books.formatting import date_format, money_format

from .models import Purchase


def receipt_context(purchase: Purchase) -> dict[str, object]:
    """What a receipt shows, formatted for the purchase's organization."""
    organization = purchase.organization
    paid_on = purchase.paid_at.astimezone(organization.tzinfo).date() if purchase.paid_at else None
    return {
        "purchase": purchase,
        "organization": organization,
        "paid_on": date_format(paid_on, organization=organization),
        "unit_price_display": money_format(purchase.unit_price, purchase.currency, organization=organization),
        "total_display": money_format(purchase.total, purchase.currency, organization=organization),
    }


def receipt_pdf(purchase: Purchase) -> bytes:
    with translation.override(purchase.organization.language):
        html = render_to_string("credits/pdf/receipt.html", receipt_context(purchase))
    from weasyprint import HTML  # on first use (see books.pdf)

    from books.pdf import offline_url_fetcher

    # Refuses every URL: the receipt is built from its HTML (with its styles inline) alone.
    return HTML(string=html, url_fetcher=offline_url_fetcher()).write_pdf()


def receipt_filename(purchase: Purchase) -> str:
    return f"{purchase.receipt_number or purchase.pk}.pdf"
