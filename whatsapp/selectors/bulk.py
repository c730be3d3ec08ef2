"""Reads of bulk sends for pages that show many at once (the recent bulk sends).

A single bulk send's progress is :func:`whatsapp.services.bulk.bulk_progress`; this is the same
:class:`~whatsapp.services.bulk.BulkProgress` for a page of them, counted in one query.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count

from whatsapp.models import BulkSend, Message
from whatsapp.services.bulk import BulkProgress


def bulk_progress_list(*, bulks: Sequence[BulkSend]) -> dict[int, BulkProgress]:
    """Each bulk send's messages counted by status, by bulk send id: one aggregate query for all
    of them. The bulk sends are taken as loaded (not refreshed), so a page reads what it listed."""
    counts: dict[int, dict[str, int]] = {bulk.pk: {} for bulk in bulks}
    rows = (
        Message.objects.filter(bulk_id__in=list(counts))
        .values_list("bulk_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for bulk_id, status, n in rows:
        counts[bulk_id][status] = n
    return {bulk.pk: BulkProgress(bulk=bulk, counts=counts[bulk.pk]) for bulk in bulks}
