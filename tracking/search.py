"""MLflow's search language: filter strings, order_by clauses and page tokens.

Runs and experiments are searched here; the registry and logged-model searches reuse the
lower layer (the parser and the condition builders). Nothing here touches permissions:
callers pass querysets that selectors have already narrowed to what the user may see.

Public API
----------
Runs and experiments (each returns a new, lazy queryset; one SQL statement in the end)::

    apply_run_filter(queryset: QuerySet[Run], filter_string: str | None) -> QuerySet
    apply_run_order(queryset: QuerySet[Run], order_by: list[str] | None) -> QuerySet
    apply_experiment_filter(queryset: QuerySet[Experiment], filter_string: str | None) -> QuerySet
    apply_experiment_order(queryset: QuerySet[Experiment], order_by: list[str] | None) -> QuerySet

Paging::

    encode_page_token(offset: int) -> str          # base64 of {"offset": n}, as MLflow
    decode_page_token(token: str | None) -> int    # None/"" -> 0; malformed -> InvalidParameter
    validate_max_results(value, default, maximum) -> int

Lower layer, for other searches (registry, logged models)::

    parse_filter(filter_string, resolve) -> list[Comparison]
    parse_order_by(clause, resolve) -> OrderKey
    Target, Comparison, OrderKey           # what a resolver returns / what the parser produces
    run_target, experiment_target          # the resolvers for runs and experiments
    string_condition(field, comparator, value) -> Q        # =, !=, LIKE, ILIKE, IN, NOT IN
    integer_condition(field, comparator, value) -> Q       # numeric comparisons on an integer column
    Like(lhs, pattern), ILike(lhs, pattern)                # lookups usable directly in .filter()
    like_regex(pattern, case_sensitive=True) -> str        # LIKE as a linear-time Python regex
    STRING_COMPARATORS, NUMERIC_COMPARATORS, LIST_COMPARATORS, NULL_COMPARATORS

`resolve(entity, key) -> Target` names what a filter may mention: `entity` is the part
before the first dot (None for a bare name such as `status`), `key` the rest with its
quotes removed. It raises LookupError with a short reason for anything unknown; the parser
turns that into InvalidParameter pointing at the identifier. Example for the registry::

    def resolve(entity, key):
        if entity is None and key == "name":
            return Target("attribute", "name", STRING_COMPARATORS)
        if entity in ("tag", "tags"):
            return Target("tag", key, STRING_COMPARATORS | NULL_COMPARATORS)
        raise LookupError(f"unknown field '{key}'")

Grammar
-------
::

    filter      := clause ("AND" clause)*                  AND is case-insensitive; OR is an error
    clause      := identifier comparator value
                 | identifier "IN" list | identifier "NOT" "IN" list
                 | identifier "IS" ["NOT"] "NULL"
    identifier  := name | name "." key                      name: letters, digits, _ (or `quoted`, "quoted")
    key         := bare-key | `quoted` | "quoted" | 'quoted'  bare-key: letters, digits and _ . - / :
    comparator  := = | != | < | <= | > | >= | LIKE | ILIKE
    value       := 'string' | "string" | number              number: -1, 2.5, .5, 1e-3 (digits 0-9)
    list        := "(" value ("," value)* [","] ")"

Inside a quoted string or key a doubled quote stands for one quote (`'it''s'`); a backslash
is an ordinary character, so Windows paths need no escaping. A NUL character or text that is
not valid Unicode is rejected (PostgreSQL cannot hold it). Errors name the offending token
and its 0-based position: "Invalid filter 'metrics.m0 >> 1': unexpected '>' at position 12".

Run filters (MLflow 3 SearchRuns)
---------------------------------
- `metrics.<key>` (also `metric.`): = != < <= > >= against a number. Compared with the
  run's LatestMetric row. A NaN metric matches only `!=`, as in MLflow (NaN is stored as
  is_nan with a placeholder value, which must never match).
- `params.<key>` / `tags.<key>` (also `param.`, `parameter.`, `parameters.`, `tag.`):
  = != LIKE ILIKE, and IS NULL / IS NOT NULL (the key is absent / present). `!=` means the
  run has the key with another value: runs without the key do not match (MLflow's join).
- `attributes.<attr>` (also `attribute.`, `attr.`, `run.`, or the bare name): run_id,
  run_name, status, user_id, artifact_uri take = != LIKE ILIKE; run_id also IN / NOT IN
  (the only attribute MLflow gives lists). start_time and end_time take numeric comparisons
  (integers or decimals, compared exactly). MLflow's aliases `created`/`Created` (start_time)
  and `run name`/`Run name`/`Run Name` (run_name) work. A NULL end_time matches nothing,
  not even `!=` (SQL semantics, as MLflow). lifecycle_stage is not searchable (MLflow's
  view_type selects it).
- `tags.mlflow.runName` is the run name: it compares Run.name, exactly like
  `attributes.run_name` (services keep the tag and the column equal); IS NULL means the run
  has no name.
- `datasets.name`, `datasets.digest`, `datasets.context` (also `dataset.`): = != LIKE ILIKE
  IN NOT IN; the run matches when one of its dataset inputs does (context is the input's
  `mlflow.data.context` tag). So `!=` means "has an input whose name differs".
- LIKE is case-sensitive and ILIKE is not, on SQLite and PostgreSQL alike: `%` is any run of
  characters, `_` exactly one, everything else literal (there is no escape character, as in
  MLflow on SQLite). PostgreSQL evaluates its native LIKE / ILIKE; SQLite, whose LIKE ignores
  ASCII case, evaluates an equivalent regular expression written so that matching stays
  linear (no catastrophic backtracking). Case folding is the same for ASCII; for other
  letters each database follows its own Unicode rules.
- Every key-value clause is an EXISTS subquery: no join can multiply rows, and the whole
  filter stays one statement. At most MAX_CLAUSES clauses and MAX_LIST_VALUES list values.
  Each names the run's experiment too, so PostgreSQL may start from the (experiment, key,
  value) index of that table when the condition is the most selective one; `=` on a param
  or tag compares the indexed value prefix (tracking.sql). Conditions no index serves and no
  statistic estimates (`!=`, a LIKE without three literal characters in a row) are
  PerRunExists: checked on each candidate run. On SQLite a range on start_time/end_time is
  marked likely (LikelyOnSQLite), so the order's index drives the search.

Run order_by
------------
Entries like `metrics.m0 DESC`, `params.p ASC`, `tags.t`, `attributes.start_time DESC`,
`start_time`, `run_name`, `run_id` (ASC when not said). Missing values sort last in both
directions; for metrics a NaN value sorts after every number and before a missing metric,
as in MLflow. Param and tag values sort by code point on every database (CodePoints).
Unless start_time is named, `start_time DESC` follows, and the run id ends the ordering
(run_order_with_ties), so no two runs tie. Naming a field twice is an error (as MLflow).
apply_run_order states this order as one ORDER BY (a LEFT JOIN on the run's row for each
key: (run, key) is unique, so runs never repeat); the search itself pages through the same
order by position, segment by segment (tracking.run_pages), and tests pin the two together.

Experiment filters and order_by (MLflow 3 SearchExperiments)
------------------------------------------------------------
- `name` (also `attribute.name`, `attributes.name`): = != LIKE ILIKE.
- `experiment_id`: = != IN NOT IN with quoted ids (`experiment_id IN ('1', '2')`).
- `creation_time`, `last_update_time`: numeric comparisons with integers.
- `tags.<key>` (also `tag.`): = != LIKE ILIKE IS NULL IS NOT NULL, with the run-tag meanings.
- order_by keys: name, experiment_id, creation_time, last_update_time. Default:
  `creation_time DESC, experiment_id ASC`; otherwise `experiment_id DESC` breaks ties when
  not named (both as MLflow's SQL store).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    FilteredRelation,
    Func,
    IntegerField,
    Lookup,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from portal.errors import InvalidParameter
from tracking.models import ExperimentTag, InputTag, LatestMetric, Param, RunInput, RunTag
from tracking.sql import SEARCH_PREFIX, CodePoints, value_prefix

__all__ = [
    "Comparison",
    "ILike",
    "LIST_COMPARATORS",
    "Like",
    "NULL_COMPARATORS",
    "NUMERIC_COMPARATORS",
    "OrderKey",
    "STRING_COMPARATORS",
    "Target",
    "apply_experiment_filter",
    "apply_experiment_order",
    "apply_run_filter",
    "apply_run_order",
    "decode_page_token",
    "encode_page_token",
    "experiment_target",
    "integer_condition",
    "like_regex",
    "parse_filter",
    "parse_order_by",
    "run_target",
    "string_condition",
    "validate_max_results",
]

STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
NUMERIC_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
LIST_COMPARATORS = frozenset({"IN", "NOT IN"})
NULL_COMPARATORS = frozenset({"IS NULL", "IS NOT NULL"})
_COMPARATOR_ORDER = ["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]

# Each clause becomes a subquery and SQLite nests ANDs one level per clause (its limit is
# 1000 levels); list values become bound parameters (SQLite allows 32766 per statement).
MAX_CLAUSES = 100
MAX_LIST_VALUES = 10_000
# Integers with more digits are read as floats: Python refuses to parse very long integers
# and no column holds anything that large anyway.
_MAX_INT_DIGITS = 30
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1

RUN_NAME_TAG = "mlflow.runName"
DATASET_CONTEXT_TAG = "mlflow.data.context"

Number = int | float
ScalarValue = str | int | float


# ---------------------------------------------------------------- parse results


@dataclass(frozen=True)
class Target:
    """What an identifier in a filter refers to, as a resolver answers it.

    `kind` and `key` are copied into each Comparison (e.g. "metric", "m0"; "attribute",
    "start_time"). `comparators` are the ones allowed; `value_type` says what literal the
    value must be: "string" (quoted), "number" (int or float) or "integer".
    """

    kind: str
    key: str
    comparators: frozenset[str]
    value_type: str = "string"


@dataclass(frozen=True)
class Comparison:
    """One clause of a filter: `metrics.m0 > 1` is Comparison("metric", "m0", ">", 1).

    `comparator` is upper-case (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL,
    IS NOT NULL). `value` is a str, an int or float, a tuple of those for IN / NOT IN, or
    None for IS [NOT] NULL. `position` is where the clause starts in the filter string.
    """

    kind: str
    key: str
    comparator: str
    value: Any
    position: int = 0


@dataclass(frozen=True)
class OrderKey:
    """One order_by clause: `metrics.m0 DESC` is OrderKey("metric", "m0", ascending=False)."""

    kind: str
    key: str
    ascending: bool = True


Resolver = Callable[[str | None, str], Target]


# ---------------------------------------------------------------- scanner

_WS = re.compile(r"\s*")
_NAME = re.compile(r"[^\W\d]\w*")
_BARE_KEY = re.compile(r"[\w.\-/:]+")
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER_LIKE = re.compile(r"[+-]?[\w.]+(?:[+-][\w.]*)*")
_SYMBOL_COMPARATORS = ("!=", "<=", ">=", "=", "<", ">")
_QUOTES = "'\"`"
_SHOWN_LENGTH = 200


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_LENGTH else text[:_SHOWN_LENGTH] + "..."


def _comparators_text(comparators: Iterable[str]) -> str:
    return ", ".join(c for c in _COMPARATOR_ORDER if c in comparators)


class _Scanner:
    """Reads one filter or order_by clause left to right; every error names its position."""

    def __init__(self, text: str, what: str):
        self.text = text
        self.what = what  # "filter" or "order_by clause"
        self.pos = 0

    # -- errors

    def error(self, problem: str, position: int | None = None) -> InvalidParameter:
        position = self.pos if position is None else position
        return InvalidParameter(f"Invalid {self.what} '{_shown(self.text)}': {problem} at position {position}")

    def token_at(self, position: int) -> str:
        """The token starting at `position`, quoted for a message (or 'end of ...')."""
        text = self.text
        if position >= len(text):
            return f"end of {self.what.split()[0]}"
        ch = text[position]
        if ch in _QUOTES:
            end = text.find(ch, position + 1)
            token = text[position : end + 1] if end != -1 else text[position:]
        else:
            match = _WORD.match(text, position)
            token = match.group() if match else ch
        return f"'{_shown(token)}'"

    def unexpected(self, expected: str | None = None) -> InvalidParameter:
        found = self.token_at(self.pos)
        if expected:
            return self.error(f"expected {expected}, found {found}")
        return self.error(f"unexpected {found}")

    # -- primitives

    def skip_ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek_word(self) -> str | None:
        """The word at pos, upper-cased when ASCII (keywords are ASCII; 'ın'.upper() is 'IN')."""
        match = _WORD.match(self.text, self.pos)
        if not match:
            return None
        word = match.group()
        return word.upper() if word.isascii() else word

    def take_word(self, word: str) -> bool:
        match = _WORD.match(self.text, self.pos)
        if match and match.group().isascii() and match.group().upper() == word:
            self.pos = match.end()
            return True
        return False

    def quoted(self) -> str:
        """A quoted string or key at pos; a doubled quote inside stands for one quote."""
        text, quote, start = self.text, self.text[self.pos], self.pos
        parts = []
        i = start + 1
        while True:
            j = text.find(quote, i)
            if j == -1:
                raise self.error(f"unterminated {quote} quote", start)
            parts.append(text[i:j])
            if text.startswith(quote, j + 1):
                parts.append(quote)
                i = j + 2
                continue
            self.pos = j + 1
            return "".join(parts)

    # -- grammar

    def identifier(self) -> tuple[str | None, str]:
        """`name`, `name.key`, with quoted parts; returns (entity or None, key)."""
        text = self.text
        if self.at_end():
            raise self.unexpected("a field name")
        if text[self.pos] in "`\"":
            first = self.quoted()
        else:
            match = _NAME.match(text, self.pos)
            if not match:
                raise self.unexpected("a field name")
            first = match.group()
            self.pos = match.end()
        if not text.startswith(".", self.pos):
            return None, first
        self.pos += 1
        if not self.at_end() and text[self.pos] in _QUOTES:
            key = self.quoted()
        else:
            match = _BARE_KEY.match(text, self.pos)
            if not match:
                raise self.error(f"expected a key after '{first}.', found {self.token_at(self.pos)}")
            key = match.group()
            self.pos = match.end()
        return first, key

    def comparator(self, field: str) -> str:
        text = self.text
        for symbol in _SYMBOL_COMPARATORS:
            if text.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return symbol
        expected = f"a comparator after '{field}'"
        word = self.peek_word()
        if word in ("LIKE", "ILIKE", "IN"):
            self.take_word(word)
            return word
        if word == "NOT":
            self.take_word("NOT")
            self.skip_ws()
            if self.take_word("IN"):
                return "NOT IN"
            raise self.unexpected("IN after NOT (NOT IN is the only negated comparator)")
        if word == "IS":
            self.take_word("IS")
            self.skip_ws()
            negated = self.take_word("NOT")
            self.skip_ws()
            if not self.take_word("NULL"):
                raise self.unexpected("NULL")
            return "IS NOT NULL" if negated else "IS NULL"
        raise self.unexpected(expected)

    def scalar(self) -> ScalarValue:
        text = self.text
        if not self.at_end() and text[self.pos] in "'\"":
            return self.quoted()
        match = _NUMBER.match(text, self.pos)
        if match:
            end = match.end()
            if end < len(text) and (text[end].isalnum() or text[end] in "_."):
                junk = _NUMBER_LIKE.match(text, self.pos).group()
                raise self.error(f"invalid number '{_shown(junk)}'")
            self.pos = end
            literal = match.group()
            if _INTEGER.fullmatch(literal) and len(literal) <= _MAX_INT_DIGITS:
                return int(literal)
            return float(literal)
        raise self.unexpected("a quoted string or a number")

    def value_list(self) -> tuple[ScalarValue, ...]:
        if not self.text.startswith("(", self.pos):
            raise self.unexpected("'(' to open a list of values")
        start = self.pos
        self.pos += 1
        values: list[ScalarValue] = []
        while True:
            self.skip_ws()
            if self.text.startswith(")", self.pos):
                if not values:
                    raise self.error("empty list of values", start)
                self.pos += 1
                return tuple(values)
            values.append(self.scalar())
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif not self.text.startswith(")", self.pos):
                raise self.unexpected("',' or ')' in the list of values")


def _check_text(text: Any, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidParameter(f"Invalid {what} {text!r}: expected a string.")
    if "\x00" in text:
        raise InvalidParameter(f"Invalid {what}: it contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter(f"Invalid {what}: it is not valid Unicode text.") from None
    return text


def _resolve(scanner: _Scanner, resolve: Resolver, entity: str | None, key: str, start: int) -> Target:
    field = scanner.text[start : scanner.pos]
    if entity is not None and key == "":
        raise scanner.error(f"empty key in '{field}'", start)
    try:
        return resolve(entity, key)
    except LookupError as exc:
        reason = exc.args[0] if exc.args else f"unknown field '{field}'"
        raise scanner.error(str(reason), start) from None


def _check_value(scanner: _Scanner, target: Target, field: str, value: Any, position: int) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if target.value_type == "string":
            if not isinstance(item, str):
                raise scanner.error(f"expected a quoted string for '{field}', found {item!r}", position)
        elif isinstance(item, str):
            raise scanner.error(f"expected a number for '{field}', found '{_shown(item)}'", position)
        elif target.value_type == "integer" and not isinstance(item, int):
            raise scanner.error(f"expected an integer for '{field}', found {item!r}", position)


def parse_filter(filter_string: str | None, resolve: Resolver) -> list[Comparison]:
    """The AND-joined clauses of an MLflow filter string; [] for None or blank.

    Raises InvalidParameter naming the offending token and its position for anything
    malformed, unknown (per `resolve`) or ill-typed.
    """
    if filter_string is None:
        return []
    text = _check_text(filter_string, "filter")
    if not text.strip():
        return []
    scanner = _Scanner(text, "filter")
    comparisons: list[Comparison] = []
    list_values = 0
    while True:
        scanner.skip_ws()
        start = scanner.pos
        word = scanner.peek_word()
        if word in ("AND", "OR", "NOT") and not text.startswith(".", start + len(word)):
            raise scanner.unexpected("a field name")
        entity, key = scanner.identifier()
        field = text[start : scanner.pos]
        target = _resolve(scanner, resolve, entity, key, start)
        scanner.skip_ws()
        comparator_at = scanner.pos
        comparator = scanner.comparator(field)
        if comparator not in target.comparators:
            raise scanner.error(
                f"comparator '{comparator}' is not supported for '{field}' "
                f"(expected one of {_comparators_text(target.comparators)})",
                comparator_at,
            )
        scanner.skip_ws()
        value_at = scanner.pos
        value: Any = None
        if comparator in LIST_COMPARATORS:
            value = scanner.value_list()
            list_values += len(value)
            if list_values > MAX_LIST_VALUES:
                raise scanner.error(f"too many list values (at most {MAX_LIST_VALUES})", value_at)
        elif comparator not in NULL_COMPARATORS:
            value = scanner.scalar()
        if value is not None:
            _check_value(scanner, target, field, value, value_at)
        comparisons.append(Comparison(target.kind, target.key, comparator, value, start))
        if len(comparisons) > MAX_CLAUSES:
            raise scanner.error(f"too many clauses (at most {MAX_CLAUSES})", start)
        scanner.skip_ws()
        if scanner.at_end():
            return comparisons
        if scanner.take_word("AND"):
            if _WS.match(text, scanner.pos).end() >= len(text):
                scanner.skip_ws()
                raise scanner.unexpected("a clause after AND")
            continue
        if scanner.peek_word() == "OR":
            raise scanner.error("OR is not supported, clauses can only be combined with AND")
        raise scanner.unexpected("AND or the end of the filter")


def parse_order_by(clause: str, resolve: Resolver) -> OrderKey:
    """One order_by entry: an identifier, optionally followed by ASC or DESC."""
    text = _check_text(clause, "order_by clause")
    scanner = _Scanner(text, "order_by clause")
    scanner.skip_ws()
    start = scanner.pos
    entity, key = scanner.identifier()
    target = _resolve(scanner, resolve, entity, key, start)
    scanner.skip_ws()
    ascending = True
    if scanner.take_word("DESC"):
        ascending = False
    elif not scanner.take_word("ASC") and not scanner.at_end():
        raise scanner.unexpected("ASC, DESC or the end of the clause")
    scanner.skip_ws()
    if not scanner.at_end():
        raise scanner.unexpected()
    return OrderKey(target.kind, target.key, ascending)


# ---------------------------------------------------------------- conditions


class Like(Lookup):
    """`lhs LIKE pattern` with MLflow's meaning on every supported database: `%` is any run
    of characters, `_` exactly one, everything else literal; case-sensitive. Use it directly:
    `Param.objects.filter(Like(F("value"), "lr_%"))`."""

    lookup_name = "mlflow_like"
    prepare_rhs = False
    case_sensitive = True

    def as_postgresql(self, compiler, connection):
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        operator = "LIKE" if self.case_sensitive else "ILIKE"
        # PostgreSQL's default LIKE escape character is the backslash; MLflow has none.
        return f"{lhs_sql} {operator} %s", (*lhs_params, self.rhs.replace("\\", "\\\\"))

    def as_sqlite(self, compiler, connection):
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        # Django registers REGEXP on every SQLite connection (Python's re.search).
        return f"{lhs_sql} REGEXP %s", (*lhs_params, like_regex(self.rhs, case_sensitive=self.case_sensitive))

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"LIKE in search filters is not implemented for {connection.vendor}")


class ILike(Like):
    """Like, ignoring case."""

    lookup_name = "mlflow_ilike"
    case_sensitive = False


def like_regex(pattern: str, *, case_sensitive: bool = True) -> str:
    """A Python regular expression equal to the LIKE `pattern`.

    The middle pieces between `%` are atomic groups that take their earliest match, which is
    always the right choice for `%` and keeps matching linear: a plain `.*a.*a.*b` can take
    time exponential in the number of wildcards on a long value.
    """

    def piece(text: str) -> str:
        return "".join("." if ch == "_" else re.escape(ch) for ch in text)

    flags = "(?s)" if case_sensitive else "(?si)"
    parts = pattern.split("%")
    if len(parts) == 1:
        return rf"{flags}\A{piece(pattern)}\Z"
    middle = "".join(f"(?>.*?{piece(part)})" for part in parts[1:-1] if part)
    return rf"{flags}\A{piece(parts[0])}{middle}.*{piece(parts[-1])}\Z"


def string_condition(field: str, comparator: str, value: Any) -> Q:
    """`field` (a non-null text column) compared as MLflow compares strings; IN/NOT IN take a tuple."""
    if comparator == "=":
        return Q(**{field: value})
    if comparator == "!=":
        return ~Q(**{field: value})
    if comparator == "LIKE":
        return Q(Like(F(field), value))
    if comparator == "ILIKE":
        return Q(ILike(F(field), value))
    if comparator == "IN":
        return Q(**{f"{field}__in": list(value)})
    if comparator == "NOT IN":
        return ~Q(**{f"{field}__in": list(value)})
    raise ValueError(f"not a string comparator: {comparator}")


def _nothing() -> Q:
    return Q(pk__in=[])


def integer_condition(field: str, comparator: str, value: Number) -> Q:
    """`field` (an integer column, maybe NULL) compared exactly with an int or float.

    A float bound is rounded the way that keeps the meaning (`> 1.5` is `>= 2`), bounds
    beyond a 64-bit integer never reach the database, and NULL never matches, not even `!=`
    (SQL's meaning, which MLflow has).
    """
    present = Q(**{f"{field}__isnull": False})
    if isinstance(value, float) and math.isnan(value):
        return present if comparator == "!=" else _nothing()
    exact = not (isinstance(value, float) and (math.isinf(value) or not value.is_integer()))
    if comparator in ("=", "!="):
        if exact and _BIGINT_MIN <= int(value) <= _BIGINT_MAX:
            equal = Q(**{field: int(value)})
            return equal if comparator == "=" else present & ~equal
        return _nothing() if comparator == "=" else present
    if comparator in (">", ">="):
        if isinstance(value, float) and math.isinf(value):
            return _nothing() if value > 0 else present
        # The smallest integer that satisfies the comparison.
        low = math.floor(value) + 1 if comparator == ">" else math.ceil(value)
        if low > _BIGINT_MAX:
            return _nothing()
        return present if low <= _BIGINT_MIN else Q(**{f"{field}__gte": low})
    if comparator in ("<", "<="):
        if isinstance(value, float) and math.isinf(value):
            return present if value > 0 else _nothing()
        high = math.ceil(value) - 1 if comparator == "<" else math.floor(value)
        if high < _BIGINT_MIN:
            return _nothing()
        return present if high >= _BIGINT_MAX else Q(**{f"{field}__lte": high})
    raise ValueError(f"not a numeric comparator: {comparator}")


_FLOAT_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def _key_value_condition(rows: QuerySet, comparison: Comparison) -> Q:
    """A clause on a key-value table (params, tags): `rows` are the owner's rows with the key."""
    if comparison.comparator == "IS NULL":
        return Q(~Exists(rows))
    if comparison.comparator == "IS NOT NULL":
        return Q(Exists(rows))
    return Q(Exists(rows.filter(string_condition("value", comparison.comparator, comparison.value))))


# ---------------------------------------------------------------- runs

_METRIC_ENTITIES = {"metric", "metrics"}
_PARAM_ENTITIES = {"param", "params", "parameter", "parameters"}
_TAG_ENTITIES = {"tag", "tags"}
_ATTRIBUTE_ENTITIES = {"attribute", "attributes", "attr", "run"}
_DATASET_ENTITIES = {"dataset", "datasets"}

RUN_COLUMNS = {
    "run_id": "pk",
    "run_name": "name",
    "status": "status",
    "user_id": "user_id",
    "artifact_uri": "artifact_uri",
    "start_time": "start_time",
    "end_time": "end_time",
}
_RUN_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
_RUN_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
_DATASET_KEYS = ("name", "digest", "context")
_KEY_VALUE_COMPARATORS = STRING_COMPARATORS | NULL_COMPARATORS


def _run_attribute_target(key: str) -> Target:
    key = _RUN_ATTRIBUTE_ALIASES.get(key, key)
    if key in _RUN_NUMERIC_ATTRIBUTES:
        return Target("attribute", key, NUMERIC_COMPARATORS, "number")
    if key == "run_id":
        return Target("attribute", key, STRING_COMPARATORS | LIST_COMPARATORS)
    if key in RUN_COLUMNS:
        return Target("attribute", key, STRING_COMPARATORS)
    raise LookupError(f"unknown run attribute '{key}' (expected one of {', '.join(sorted(RUN_COLUMNS))})")


def run_target(entity: str | None, key: str) -> Target:
    """The resolver for run filters and order_by (see the module docstring)."""
    if entity is None:
        return _run_attribute_target(key)
    kind = entity.lower()
    if kind in _METRIC_ENTITIES:
        return Target("metric", key, NUMERIC_COMPARATORS, "number")
    if kind in _PARAM_ENTITIES:
        return Target("param", key, _KEY_VALUE_COMPARATORS)
    if kind in _TAG_ENTITIES:
        return Target("tag", key, _KEY_VALUE_COMPARATORS)
    if kind in _ATTRIBUTE_ENTITIES:
        return _run_attribute_target(key)
    if kind in _DATASET_ENTITIES:
        if key not in _DATASET_KEYS:
            raise LookupError(f"unknown dataset field '{key}' (expected one of {', '.join(_DATASET_KEYS)})")
        return Target("dataset", key, STRING_COMPARATORS | LIST_COMPARATORS)
    raise LookupError(
        f"unknown entity '{entity}' (expected metrics.<key>, params.<key>, tags.<key>, "
        "attributes.<name> or datasets.<name>)"
    )


def _run_name_condition(comparison: Comparison) -> Q:
    if comparison.comparator == "IS NULL":
        return Q(name="")
    if comparison.comparator == "IS NOT NULL":
        return ~Q(name="")
    return string_condition("name", comparison.comparator, comparison.value)


class PerRunExists(Exists):
    """EXISTS that PostgreSQL checks for each candidate run instead of turning it into a
    join it could start from (`OFFSET 0` keeps its planner from pulling the subquery up).

    For conditions no index serves and no statistic estimates: a LIKE without three literal
    characters in a row (the trigram index needs them), `!=`. Planned as a join, the
    planner guesses how many runs they keep, and guessing too few, it reads every run of
    the experiment and sorts them instead of walking the order's index and stopping at the
    page. Checked per candidate, each costs one probe of the (run, key) unique index.
    """

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="EXISTS(%(subquery)s OFFSET 0)", **extra_context)


class LikelyOnSQLite(Func):
    """A time range SQLite's planner should not start from: `likelihood(condition, 0.9)`.

    SQLite keeps no histogram (PostgreSQL does), so it takes any range on start_time as
    narrow, reads the runs in it through the run index and sorts them, even when the range
    holds half the experiment and the order's own index would find the page in a few
    hundred rows (`start_time >= <middle>` ordered by a metric at 100,000 runs: 174 ms
    against 0.4 ms). Said likely, the range is checked along the order instead. PostgreSQL
    gets the plain condition.
    """

    template = "likelihood(%(expressions)s, 0.9)"
    output_field = BooleanField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return compiler.compile(self.source_expressions[0])


_TRIGRAM_LITERAL = re.compile(r"[^%_]{3}")


def _indexable(comparator: str, value: Any) -> bool:
    """Whether an index can start a search from this condition on a value (see PerRunExists)."""
    if comparator in ("LIKE", "ILIKE"):
        return bool(_TRIGRAM_LITERAL.search(value))
    return comparator != "!="


def _run_rows(model: type, key: str) -> QuerySet:
    """The searched run's rows of `model` (LatestMetric, Param, RunTag) for `key`. Naming the
    experiment lets PostgreSQL start from the (experiment, key, value) index."""
    return model.objects.filter(run=OuterRef("pk"), experiment=OuterRef("experiment"), key=key)


def _value_equals(value: str) -> Q:
    """`value = v` on a param or tag, through the indexed prefix (tracking.sql): a value
    shorter than the prefix is equal exactly when the prefixes are, so the prefix comparison
    alone is the condition, and the planner's statistics on (key, prefix) apply to it."""
    if len(value) < SEARCH_PREFIX:
        return Q(value_prefix=value)
    return Q(value_prefix=value[:SEARCH_PREFIX], value=value)


def _run_key_value_condition(model: type, comparison: Comparison) -> Q:
    rows = _run_rows(model, comparison.key)
    comparator, value = comparison.comparator, comparison.value
    if comparator == "IS NULL":
        return Q(~Exists(rows))
    if comparator == "IS NOT NULL":
        return Q(Exists(rows))
    if comparator == "=":
        return Q(Exists(rows.alias(value_prefix=value_prefix()).filter(_value_equals(value))))
    rows = rows.filter(string_condition("value", comparator, value))
    return Q(Exists(rows) if _indexable(comparator, value) else PerRunExists(rows))


def _run_metric_condition(key: str, comparator: str, value: Number) -> Q:
    rows = _run_rows(LatestMetric, key)
    number = float(value)
    if comparator == "!=":
        # NaN differs from everything; its placeholder value must not decide.
        return Q(PerRunExists(rows.filter(~Q(value=number) | Q(is_nan=True))))
    return Q(Exists(rows.filter(is_nan=False, **{f"value__{_FLOAT_LOOKUPS[comparator]}": number})))


def _run_condition(comparison: Comparison) -> Q:
    kind, key, comparator, value = comparison.kind, comparison.key, comparison.comparator, comparison.value
    if kind == "metric":
        return _run_metric_condition(key, comparator, value)
    if kind == "tag" and key == RUN_NAME_TAG:
        return _run_name_condition(comparison)
    if kind in ("param", "tag"):
        return _run_key_value_condition(Param if kind == "param" else RunTag, comparison)
    if kind == "dataset":
        if key == "context":
            rows = InputTag.objects.filter(run_input__run=OuterRef("pk"), key=DATASET_CONTEXT_TAG)
            return Q(Exists(rows.filter(string_condition("value", comparator, value))))
        rows = RunInput.objects.filter(run=OuterRef("pk"))
        return Q(Exists(rows.filter(string_condition(f"dataset__{key}", comparator, value))))
    if key in _RUN_NUMERIC_ATTRIBUTES:
        condition = integer_condition(key, comparator, value)
        return Q(LikelyOnSQLite(condition)) if comparator in ("<", "<=", ">", ">=") else condition
    if key == "run_name":
        return _run_name_condition(comparison)
    return string_condition(RUN_COLUMNS[key], comparator, value)


def apply_run_filter(queryset: QuerySet, filter_string: str | None) -> QuerySet:
    """`queryset` (of Run) narrowed to the runs matching an MLflow SearchRuns filter."""
    for comparison in parse_filter(filter_string, run_target):
        queryset = queryset.filter(_run_condition(comparison))
    return queryset


def _order_error(order_by: Any, problem: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid order_by {order_by!r}: {problem}")


def _order_keys(order_by: Any, resolve: Resolver) -> list[OrderKey]:
    if order_by is None:
        return []
    if isinstance(order_by, str) or not isinstance(order_by, (list, tuple)):
        raise _order_error(order_by, "expected a list of clauses")
    return [parse_order_by(clause, resolve) for clause in order_by]


def run_order_keys(order_by: list[str] | None) -> list[OrderKey]:
    """The order_by clauses of a run search, checked: `tags.mlflow.runName` is the run name,
    no field twice, no datasets. The implied `start_time DESC, run_id ASC` are not added."""
    keys: list[OrderKey] = []
    seen: set[tuple[str, str]] = set()
    for order_key in _order_keys(order_by, run_target):
        if order_key.kind == "tag" and order_key.key == RUN_NAME_TAG:
            order_key = OrderKey("attribute", "run_name", order_key.ascending)
        if (order_key.kind, order_key.key) in seen:
            raise _order_error(order_by, "`order_by` contains duplicate fields")
        seen.add((order_key.kind, order_key.key))
        if order_key.kind == "dataset":
            raise _order_error(order_by, "runs cannot be ordered by datasets")
        keys.append(order_key)
    return keys


def run_order_with_ties(order_by: list[str] | None) -> list[OrderKey]:
    """run_order_keys, then `start_time DESC` and `run_id ASC` unless named: the full order,
    in which no two runs tie."""
    keys = run_order_keys(order_by)
    named = {(k.kind, k.key) for k in keys}
    if ("attribute", "start_time") not in named:
        keys.append(OrderKey("attribute", "start_time", ascending=False))
    if ("attribute", "run_id") not in named:
        keys.append(OrderKey("attribute", "run_id", ascending=True))
    return keys


KEY_VALUE_RELATIONS = {"metric": "latest_metrics", "param": "params", "tag": "tags"}


def metric_rank(join: str) -> Case:
    """MLflow's order of runs by a metric: 0 for a number, 1 for NaN, 2 without the metric.
    `join` is the alias of the run's LEFT-joined row for the key."""
    return Case(
        When(**{f"{join}__is_nan": True}, then=Value(1)),
        When(**{f"{join}__id__isnull": True}, then=Value(2)),
        default=Value(0),
        output_field=IntegerField(),
    )


def apply_run_order(queryset: QuerySet, order_by: list[str] | None) -> QuerySet:
    """`queryset` (of Run) in MLflow's SearchRuns order (see the module docstring), as one
    ORDER BY. The search itself pages through the same order by position (run_pages)."""
    ordering: list[Any] = []
    for index, order_key in enumerate(run_order_with_ties(order_by)):
        kind, key = order_key.kind, order_key.key
        if kind in KEY_VALUE_RELATIONS:
            # A LEFT JOIN on the run's row for the key: (run, key) is unique, so no run is repeated.
            relation = KEY_VALUE_RELATIONS[kind]
            alias = f"_order_{kind}_{index}"
            queryset = queryset.alias(
                **{alias: FilteredRelation(relation, condition=Q(**{f"{relation}__key": key}))}
            )
            if kind == "metric":
                ordering.append(metric_rank(alias).asc())
                expression = F(f"{alias}__value")
            else:
                expression = CodePoints(F(f"{alias}__value"))
        elif key == "start_time":
            ordering.append(F("start_time").asc() if order_key.ascending else F("start_time").desc())
            continue
        else:
            expression = F(RUN_COLUMNS[key])
        ordering.append(expression.asc(nulls_last=True) if order_key.ascending else expression.desc(nulls_last=True))
    return queryset.order_by(*ordering)


# ---------------------------------------------------------------- experiments

_EXPERIMENT_FIELDS = {
    "name": "name",
    "experiment_id": "pk",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}
_EXPERIMENT_ID = re.compile(r"-?[0-9]{1,30}")


def experiment_target(entity: str | None, key: str) -> Target:
    """The resolver for experiment filters and order_by (see the module docstring)."""
    kind = entity.lower() if entity is not None else None
    if kind in _TAG_ENTITIES:
        return Target("tag", key, _KEY_VALUE_COMPARATORS)
    if kind is not None and kind not in _ATTRIBUTE_ENTITIES:
        raise LookupError(f"unknown entity '{entity}' (expected tags.<key> or attributes.<name>)")
    if key == "name":
        return Target("attribute", key, STRING_COMPARATORS)
    if key == "experiment_id":
        return Target("attribute", key, frozenset({"=", "!="}) | LIST_COMPARATORS)
    if key in ("creation_time", "last_update_time"):
        return Target("attribute", key, NUMERIC_COMPARATORS, "integer")
    raise LookupError(
        f"unknown experiment attribute '{key}' (expected one of {', '.join(sorted(_EXPERIMENT_FIELDS))})"
    )


class _BadValue(Exception):
    pass


def _experiment_ids(values: Iterable[str]) -> list[int]:
    """The ids as integers; ids no row can have (beyond 64 bits) are dropped."""
    ids = []
    for value in values:
        if not _EXPERIMENT_ID.fullmatch(value.strip()):
            raise _BadValue(f"invalid experiment id '{_shown(value)}'")
        number = int(value)
        if _BIGINT_MIN <= number <= _BIGINT_MAX:
            ids.append(number)
    return ids


def _experiment_condition(comparison: Comparison) -> Q:
    kind, key, comparator, value = comparison.kind, comparison.key, comparison.comparator, comparison.value
    if kind == "tag":
        return _key_value_condition(ExperimentTag.objects.filter(experiment=OuterRef("pk"), key=key), comparison)
    if key == "experiment_id":
        ids = _experiment_ids(value if isinstance(value, tuple) else (value,))
        matching = Q(pk__in=ids)
        return matching if comparator in ("=", "IN") else ~matching
    if key == "name":
        return string_condition("name", comparator, value)
    return integer_condition(key, comparator, value)


def apply_experiment_filter(queryset: QuerySet, filter_string: str | None) -> QuerySet:
    """`queryset` (of Experiment) narrowed to those matching an MLflow SearchExperiments filter."""
    for comparison in parse_filter(filter_string, experiment_target):
        try:
            condition = _experiment_condition(comparison)
        except _BadValue as exc:
            raise InvalidParameter(
                f"Invalid filter '{_shown(filter_string or '')}': {exc} at position {comparison.position}"
            ) from None
        queryset = queryset.filter(condition)
    return queryset


def apply_experiment_order(queryset: QuerySet, order_by: list[str] | None) -> QuerySet:
    """`queryset` (of Experiment) in MLflow's SearchExperiments order (see the module docstring)."""
    keys = _order_keys(order_by, experiment_target) or [
        OrderKey("attribute", "creation_time", ascending=False),
        OrderKey("attribute", "experiment_id", ascending=True),
    ]
    ordering = []
    for order_key in keys:
        if order_key.kind != "attribute":
            raise _order_error(order_by, "experiments can only be ordered by " + ", ".join(_EXPERIMENT_FIELDS))
        expression = F(_EXPERIMENT_FIELDS[order_key.key])
        ordering.append(expression.asc() if order_key.ascending else expression.desc())
    if not any(order_key.key == "experiment_id" for order_key in keys):
        ordering.append(F("pk").desc())
    return queryset.order_by(*ordering)


# ---------------------------------------------------------------- paging

_MAX_TOKEN_LENGTH = 1000
_MAX_OFFSET = 2**62


def encode_page_token(offset: int) -> str:
    """An opaque token for the page that starts at `offset`: base64 of {"offset": n}, like MLflow's."""
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8")).decode("ascii")


def decode_token_document(token: Any, max_length: int = _MAX_TOKEN_LENGTH) -> Any:
    """The JSON inside a page token (base64 of JSON), or InvalidParameter. Every search's
    tokens are read through here, offsets (decode_page_token) and positions (run_pages)."""
    if not isinstance(token, str) or len(token) > max_length:
        raise InvalidParameter("Invalid page token: it was not issued by this server.")
    try:
        return json.loads(base64.b64decode(token.encode("ascii"), validate=True))
    except (UnicodeError, binascii.Error, ValueError, RecursionError):
        raise InvalidParameter("Invalid page token: could not decode it.") from None


def decode_page_token(token: str | None) -> int:
    """The offset in a token made by encode_page_token; 0 for no token."""
    if token is None or token == "":
        return 0
    data = decode_token_document(token)
    offset = data.get("offset") if isinstance(data, dict) else None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= _MAX_OFFSET:
        raise InvalidParameter(f"Invalid page token: no valid offset in {_shown(repr(data))}.")
    return offset


def page_of(queryset, page_token: str | None, max_results: int, *, fetch=list) -> tuple[list, str | None]:
    """One page of an ordered `queryset`: the rows after the token's offset, at most
    `max_results` of them, and the next page's token (None on the last page). `fetch`
    turns the sliced queryset into rows (list, or a raw-row reader)."""
    offset = decode_page_token(page_token)
    rows = fetch(queryset[offset : offset + max_results + 1])
    next_token = encode_page_token(offset + max_results) if len(rows) > max_results else None
    return rows[:max_results], next_token


def validate_max_results(value: Any, default: int, maximum: int) -> int:
    """`value` as a page size: `default` when None, else an integer from 1 to `maximum`."""
    if value is None:
        return default
    number = value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,18}\s*", value):
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidParameter(
            f"Invalid value {_shown(str(value))} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if number > maximum:
        raise InvalidParameter(
            f"Invalid value {number} for parameter 'max_results' supplied. It must be at most {maximum}"
        )
    return number
