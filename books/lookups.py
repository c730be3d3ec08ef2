"""``field__any=ids``: the ids as one array parameter (``field = ANY(%s)``) on PostgreSQL.

``field__in=ids`` writes one placeholder per id, ``IN (%s, %s, …)``: for the 1,000 ids of a bulk
send's chunk, the statement is parsed again for each of its shapes (psycopg splits it at every
placeholder in Python, PostgreSQL plans 500 parameters). One array is one parameter, whatever the
number of ids. Other databases (SQLite in ``make run``) get ``IN``.

Registered on integer fields and foreign keys when this module is imported (``books.apps``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models.lookups import In, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[Any]:
        if not isinstance(self.rhs, Iterable) or isinstance(self.rhs, str | bytes):
            raise TypeError("__any takes a list of values.")
        return [self.lhs.output_field.get_prep_value(value) for value in self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if connection.vendor != "postgresql":
            return In(self.lhs, self.rhs).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


models.IntegerField.register_lookup(AnyOf)
models.ForeignKey.register_lookup(AnyOf)
