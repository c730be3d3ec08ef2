"""The filters of the document lists and of the customer and vendor lists, read from the list's
query string, and the rows they select.

One code path for the list pages and for whoever acts on "all matching" rows of a list (a bulk
send's "Select all N matching" posts the list's filter, never its thousands of ids): both parse the
same parameters with :meth:`DocumentListFilter.from_params` / :meth:`ContactListFilter.from_params`
and select with their ``queryset``, so the page and the action cannot disagree. Every queryset is
scoped to the organization passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from books.kinds import KindSpec
from books.models import Contact, Document, Organization
from books.selectors import contact_list, document_list

#: The contact lists' filter tabs (``?filter=``): label and condition.
CONTACT_FILTERS: dict[str, tuple[Promise, Q]] = {
    "all": (gettext_lazy("All"), Q()),
    "active": (gettext_lazy("Active"), Q(is_active=True)),
    "inactive": (gettext_lazy("Inactive"), Q(is_active=False)),
    "whatsapp": (gettext_lazy("WhatsApp enabled"), Q(whatsapp_enabled=True)),
}


@dataclass(frozen=True)
class DocumentListFilter:
    """A document list's status tab (stored statuses and the derived "overdue") and search box."""

    spec: KindSpec
    status: str = ""
    search: str = ""

    @classmethod
    def from_params(cls, spec: KindSpec, params: Mapping[str, str]) -> DocumentListFilter:
        """The filter of ``?status=…&q=…``; a status the kind does not offer is no filter."""
        status = params.get("status", "")
        return cls(
            spec=spec,
            status=status if status in spec.filter_statuses else "",
            search=params.get("q", "").strip(),
        )

    def queryset(self, *, organization: Organization) -> QuerySet[Document]:
        return document_list(organization=organization, kind=self.spec.kind, status=self.status, search=self.search)

    def querystring(self) -> str:
        """The filter as the list's URL carries it (no page): ``status=overdue&q=acme``."""
        return urlencode({key: value for key, value in (("status", self.status), ("q", self.search)) if value})


@dataclass(frozen=True)
class ContactListFilter:
    """A customer or vendor list's filter tab (``CONTACT_FILTERS``) and search box."""

    contact_type: str
    filter: str = "all"
    search: str = ""

    @classmethod
    def from_params(cls, contact_type: str, params: Mapping[str, str]) -> ContactListFilter:
        """The filter of ``?filter=…&q=…``; an unknown filter is "all"."""
        name = params.get("filter", "all")
        return cls(
            contact_type=contact_type,
            filter=name if name in CONTACT_FILTERS else "all",
            search=params.get("q", "").strip(),
        )

    def queryset(self, *, organization: Organization) -> QuerySet[Contact]:
        return contact_list(organization=organization, contact_type=self.contact_type, search=self.search).filter(
            CONTACT_FILTERS[self.filter][1]
        )

    def querystring(self) -> str:
        """The filter as the list's URL carries it (no page): ``filter=whatsapp&q=acme``."""
        pairs = (("filter", self.filter if self.filter != "all" else ""), ("q", self.search))
        return urlencode({key: value for key, value in pairs if value})


class ListFilter(Protocol):
    def queryset(self, *, organization: Organization) -> QuerySet[Document] | QuerySet[Contact]: ...


def list_filter_ids(*, list_filter: ListFilter, organization: Organization, limit: int) -> tuple[list[int], int]:
    """The ids the list shows under ``list_filter``, in its order, and how many match. At most
    ``limit`` ids are read: past it the ids are empty and only the count is known (one query more)."""
    rows = list_filter.queryset(organization=organization).prefetch_related(None)
    ids = list(rows.values_list("pk", flat=True)[: limit + 1])
    if len(ids) <= limit:
        return ids, len(ids)
    return [], rows.count()
