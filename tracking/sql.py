"""SQL building blocks shared by the models' indexes and the search that uses them."""

import json

from django.db.models import Func, Lookup, TextField

# How many leading characters of a param or tag value the search indexes hold: a PostgreSQL
# B-tree entry holds at most about 2.7 kB, and a value may be 6,000 characters or more.
SEARCH_PREFIX = 200  # changing it changes the search indexes: it needs a migration


class CodePoints(Func):
    """Text compared code point by code point: PostgreSQL's "C" collation, SQLite's default.

    Param and tag values order this way on both databases (the order a database's locale
    would give differs between servers), and only this order lets an index on a value's
    prefix serve an order by the whole value: prefixes compare as the values do.
    """

    arity = 1
    template = "%(expressions)s"

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template='(%(expressions)s) COLLATE "C"', **extra_context)


class Prefix(Func):
    """The first SEARCH_PREFIX characters of a text. The length is written into the SQL, not
    bound as a parameter: SQLite uses an index on an expression only for the same expression
    with the same literals."""

    arity = 1
    output_field = TextField()
    template = f"SUBSTR(%(expressions)s, 1, {SEARCH_PREFIX})"


def value_prefix(field: str = "value") -> CodePoints:
    """The indexed prefix of a param or tag value (see the search indexes in tracking.models)."""
    return CodePoints(Prefix(field))


class InIds(Lookup):
    """`column IN (ids)` for a long list of ids, as one parameter: an array on PostgreSQL,
    a JSON list on SQLite (json_each). Django's `__in` prepares and binds each value (a page of
    1,000 runs read six ways spent 80 ms building those lists) and SQLite refuses more than
    32,766 bound values, fewer than a page of 50,000 runs. Use it directly:
    `Param.objects.filter(InIds(F("run_id"), ids))`."""

    lookup_name = "in_ids"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        ids = list(self.rhs)
        if not ids:
            return "1 = 0", ()
        if connection.vendor == "postgresql":
            return f"{lhs_sql} = ANY(%s)", (*lhs_params, ids)
        return f"{lhs_sql} IN (SELECT value FROM json_each(%s))", (*lhs_params, json.dumps(ids))
