from books.kinds import KINDS_BY_SLUG, KindSpec


class KindConverter:
    """``<kind:spec>`` in a URL: a document kind's slug (``invoices``, ``quotes`` …) → its KindSpec."""

    regex = "|".join(sorted(KINDS_BY_SLUG, key=len, reverse=True))

    def to_python(self, value: str) -> KindSpec:
        return KINDS_BY_SLUG[value]

    def to_url(self, value: KindSpec | str) -> str:
        return value if isinstance(value, str) else value.slug
