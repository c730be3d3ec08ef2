"""Writing many new rows at once: ``bulk_create``, or PostgreSQL's ``COPY`` when there are many.

A bulk send writes a message, a credit reservation and a ledger entry per document, ten thousand
of each for a large selection. ``bulk_create`` on PostgreSQL sends each column as an array
(``INSERT … SELECT * FROM UNNEST(…)``), and building those arrays in Python — every value quoted
by psycopg, every field prepared by Django — cost more than everything else the bulk send does.
``COPY … FROM STDIN`` streams the rows in psycopg's C code instead. The primary keys come first,
from the table's own sequence (one ``nextval`` per row in one query), so the objects get their ids
exactly as ``bulk_create`` gives them.

The values written are the ones ``bulk_create`` would write: each field's ``pre_save`` and
``get_db_prep_save`` (JSON, encrypted and custom fields), except for Django's own plain fields,
whose Python values psycopg adapts directly (read from each instance in one call), and the
``auto_now``/``auto_now_add`` timestamps, which are the statement's instant for every row. Signals
are not sent, as with ``bulk_create``.

:func:`model_new` builds the instances themselves: ``Model(**values)`` looks up every field's
keyword, default and descriptor one by one, which for a message's fifty fields cost more than
rendering it.
"""

from __future__ import annotations

import datetime
import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models.base import ModelState
from django.db.models.fields.files import FieldFile
from django.db.models.signals import post_init, pre_init
from django.utils import timezone

M = TypeVar("M", bound=models.Model)

#: Below this many rows ``bulk_create``'s single statement costs less than a sequence query and a COPY.
COPY_FROM = 64

#: Django's fields whose attribute value PostgreSQL's adapters take as is (when not subclassed).
_PLAIN = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "DateField",
        "DateTimeField",
        "DecimalField",
        "EmailField",
        "ForeignKey",
        "IntegerField",
        "OneToOneField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SlugField",
        "SmallAutoField",
        "SmallIntegerField",
        "TextField",
        "URLField",
        "UUIDField",
    }
)


def bulk_insert(objs: Sequence[M]) -> list[M]:
    """Insert ``objs`` (new instances of one model) and set their primary keys; returns them.

    Same contract as ``Model.objects.bulk_create(objs)`` for models with an auto-incremented
    primary key, multi-table inheritance excluded.
    """
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    db = router.db_for_write(model)
    connection = connections[db]
    if connection.vendor != "postgresql" or len(objs) < COPY_FROM or model._meta.parents:
        return _files_unwrapped(model.objects.using(db).bulk_create(objs))
    opts = model._meta
    fields = [field for field in opts.concrete_fields if not getattr(field, "generated", False)]
    # The plain fields first, all read in one call; then the ones with a value to work out.
    plain: list[models.Field] = []
    prepared: list[models.Field] = []
    for field in fields:
        (plain if _is_plain(field) else prepared).append(field)
    pick = _picker([field.attname for field in plain])
    stamp = timezone.now()  # one instant for the statement's auto_now and auto_now_add dates
    readers = [_reader(field, connection, stamp) for field in prepared]
    table = connection.ops.quote_name(opts.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in [*plain, *prepared])
    with connection.cursor() as cursor:
        # The sequence looked up once (MATERIALIZED), not once per row: 27 ms for 10,000 ids, against 4.
        cursor.execute(
            "WITH seq AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, %s)::regclass AS id)"
            " SELECT nextval(seq.id) FROM seq, generate_series(1, %s)",
            [opts.db_table, opts.pk.column, len(objs)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        for obj, pk in zip(objs, ids, strict=True):
            obj.pk = pk
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row((*pick(obj), *(read(obj) for read in readers)))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = db
    return _files_unwrapped(objs)


def _files_unwrapped(objs: list[M]) -> list[M]:
    """Each file field's FieldFile (``pre_save``, ours or bulk_create's, wrapped the name in one,
    pointing back at the instance) put back to the name it wraps, which its descriptor wraps again
    when read: a FieldFile per row made a reference cycle per row, so each row (and the rows it
    caches) waited for the cycle collector instead of being freed with its chunk."""
    files = [field.attname for field in type(objs[0])._meta.concrete_fields if isinstance(field, models.FileField)]
    for obj in objs if files else ():
        for attname in files:
            value = obj.__dict__.get(attname)
            if isinstance(value, FieldFile) and value._committed:
                obj.__dict__[attname] = value.name
    return objs


def _is_plain(field: models.Field) -> bool:
    """Whether the attribute's value is what the column gets (Django's own plain fields)."""
    if isinstance(field, models.DateField) and (field.auto_now or field.auto_now_add):
        return False
    return field.get_internal_type() in _PLAIN and type(field).__module__.startswith("django.db.models")


def _picker(attnames: list[str]) -> Callable[[models.Model], tuple[Any, ...]]:
    """The values of ``attnames`` out of an instance, as a tuple: from its ``__dict__`` in one call
    (a new instance holds every field there), through the attributes otherwise."""
    from_dict = operator.itemgetter(*attnames)

    def pick(obj: models.Model) -> tuple[Any, ...]:
        try:
            values = from_dict(obj.__dict__)
        except KeyError:  # a deferred field: let its descriptor load it
            values = tuple(getattr(obj, attname) for attname in attnames)
        return values if len(attnames) > 1 else (values,)

    return pick


def _reader(field: models.Field, connection: Any, stamp: datetime.datetime) -> Callable[[models.Model], Any]:
    """How to get a non-plain ``field``'s value for the COPY out of an instance."""
    attname = field.attname
    if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add):

        def stamped(obj: models.Model) -> datetime.datetime:
            setattr(obj, attname, stamp)  # as pre_save does
            return stamp

        return stamped
    if isinstance(field, models.DateField) and (field.auto_now or field.auto_now_add):
        return lambda obj: field.pre_save(obj, True)
    return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), connection)


class _Blueprint:
    """A model's concrete fields: each one's default by attribute name (in ``Model(*values)``'s
    order), the callable defaults, and the foreign keys by field name."""

    def __init__(self, model: type[models.Model]) -> None:
        fields = model._meta.concrete_fields
        self.fast = not any(getattr(field, "generated", False) for field in fields)
        self.defaults: dict[str, Any] = {}
        self.factories: list[tuple[str, Callable[[], Any]]] = []
        self.relations: dict[str, models.Field] = {}
        for field in fields:
            if field.is_relation:
                self.relations[field.name] = field
            if field.has_default() and callable(field.default):
                self.factories.append((field.attname, field.default))
                self.defaults[field.attname] = None
            else:
                self.defaults[field.attname] = field.get_default()


@functools.cache
def _blueprint(model: type[models.Model]) -> _Blueprint:
    return _Blueprint(model)


def model_new(model: type[M], **values: Any) -> M:
    """``model(**values)`` without its per-field work: the same unsaved instance, with the same
    defaults and the related objects cached. With ``pre_init``/``post_init`` receivers it goes
    through Django's positional constructor (the one ``from_db`` uses), so they are still called.

    ``values`` name concrete fields (a foreign key by its name with an instance, or by its
    ``…_id``); anything else raises TypeError.
    """
    blueprint = _blueprint(model)
    if not blueprint.fast:
        return model(**values)
    data = blueprint.defaults.copy()
    for attname, factory in blueprint.factories:
        if attname not in values:  # not worked out when given
            data[attname] = factory()
    related = []
    for name, value in values.items():
        if name in data:  # an attribute: a plain field, or a foreign key's ``…_id``
            data[name] = value
            continue
        field = blueprint.relations.get(name)
        if field is None:
            raise TypeError(f"{model.__name__}() got an unexpected keyword argument {name!r}")
        if value is not None:
            if not isinstance(value, field.related_model):
                raise ValueError(f"{name} must be a {field.related_model.__name__} instance, not {value!r}.")
            related.append((field, value))
            value = getattr(value, field.target_field.attname)
        data[field.attname] = value
    if pre_init.receivers or post_init.receivers:
        instance = model(*data.values())
    else:  # what Model.__init__ does with positional values, without a descriptor call per field
        instance = model.__new__(model)
        data["_state"] = ModelState()
        instance.__dict__ = data
    for field, value in related:
        field.set_cached_value(instance, value)
    return instance
