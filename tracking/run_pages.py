"""Pages of a run search by position: a page token holds where the last page ended.

With an offset token the database produces and throws away every earlier run: page 500 at
100 per page sorts 50,000 runs to return 100. Here a token holds the last run's values in
the search's order, and the next page asks for the runs after them, which the index on the
order finds directly; page 500 costs what page 1 costs. Tokens stay opaque to clients
(base64 of JSON, as MLflow's) and name the search they belong to: a token used with
another filter, order or set of experiments is INVALID_PARAMETER_VALUE, not a wrong page.

The order is exactly tracking.search.apply_run_order's (tests pin the two against each
other). When the first order_by key is a metric, a param or a tag, the order is read as
segments, each one statement an index can serve:

    metric:  runs with a number, by the number  |  runs whose value is NaN  |  runs without it
    param/tag: runs with the key, by the value  |  runs without it

then within a segment the remaining keys, `start_time DESC` and `run_id ASC` (unless
named), so no two runs tie. The first segment joins the key's row (experiment, key, ...
value) and walks its index in order; a page that ends a segment continues in the next one
in the same request. Other orders are one segment.

Public API::

    run_page(queryset, order_by, page_token, max_results, search_key) -> (list[Run], next_token | None)
    search_key(*parts) -> str
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from portal.errors import InvalidParameter
from tracking.models import LatestMetric, Param, RunTag
from tracking.search import (
    KEY_VALUE_RELATIONS,
    RUN_COLUMNS,
    OrderKey,
    decode_token_document,
    metric_rank,
    run_order_with_ties,
)
from tracking.sql import CodePoints, value_prefix

_KEY_VALUE_MODELS = {"metric": LatestMetric, "param": Param, "tag": RunTag}
_MAX_TOKEN_LENGTH = 1_000_000


@dataclass
class _Term:
    """One ORDER BY expression, selected under `alias` so the last row's value can go into a token."""

    alias: str
    expression: Any
    ascending: bool
    value_type: type  # what the token must hold for it: float, int or str


@dataclass
class _Segment:
    where: Q
    terms: list[_Term]
    # The joins the segment needs: alias -> (kind, key) of the run's row it joins. Each
    # queryset gets its own FilteredRelation (Django binds one to the query it joins).
    joins: dict = field(default_factory=dict)

    def queryset(self, queryset: QuerySet, after: list | None) -> QuerySet:
        joins = {alias: _join(kind, key) for alias, (kind, key) in self.joins.items()}
        queryset = queryset.alias(**joins).filter(self.where)
        queryset = queryset.annotate(**{t.alias: t.expression for t in self.terms})
        if after is not None:
            queryset = queryset.filter(_after(self.terms, after))
        return queryset.order_by(*(F(t.alias).asc() if t.ascending else F(t.alias).desc() for t in self.terms))


def _after(terms: list[_Term], values: list) -> Q:
    """The rows after `values` in the order of `terms`: (t1, t2, ...) > (v1, v2, ...) with
    each term's direction, plus `t1 >= v1` alone so the database can start its index range there."""
    after = Q(pk__in=[])
    equal_so_far = Q()
    for term, value in zip(terms, values, strict=True):
        beyond = "gt" if term.ascending else "lt"
        after |= equal_so_far & Q(**{f"{term.alias}__{beyond}": value})
        equal_so_far &= Q(**{term.alias: value})
    first = terms[0]
    return Q(**{f"{first.alias}__{'gte' if first.ascending else 'lte'}": values[0]}) & after


def _join(kind: str, key: str) -> FilteredRelation:
    relation = KEY_VALUE_RELATIONS[kind]
    return FilteredRelation(relation, condition=Q(**{f"{relation}__key": key}))


def _later_terms(order_keys: list[OrderKey], first_index: int) -> tuple[list[_Term], dict]:
    """Terms for order keys after the first: a missing metric, param or tag (and a NULL
    end_time) sorts last through a rank term before its value, as in apply_run_order."""
    terms: list[_Term] = []
    joins: dict = {}
    for index, order_key in enumerate(order_keys, start=first_index):
        kind, key, ascending = order_key.kind, order_key.key, order_key.ascending
        alias = f"_k{index}"
        if kind in KEY_VALUE_RELATIONS:
            join = f"_j{index}"
            joins[join] = (kind, key)
            if kind == "metric":
                rank = metric_rank(join)
                value, value_type = Coalesce(F(f"{join}__value"), Value(0.0)), float
            else:
                rank = Case(When(**{f"{join}__id__isnull": True}, then=Value(1)), default=Value(0), output_field=IntegerField())
                value = CodePoints(Coalesce(F(f"{join}__value"), Value(""), output_field=TextField()))
                value_type = str
            terms += [_Term(f"{alias}_rank", rank, True, int), _Term(alias, value, ascending, value_type)]
        elif key == "end_time":
            rank = Case(When(end_time__isnull=True, then=Value(1)), default=Value(0), output_field=IntegerField())
            terms += [_Term(f"{alias}_rank", rank, True, int), _Term(alias, Coalesce(F("end_time"), Value(0)), ascending, int)]
        else:
            column = RUN_COLUMNS[key]
            terms.append(_Term(alias, F(column), ascending, int if key == "start_time" else str))
    return terms, joins


def _segments(order_by: list[str] | None) -> list[_Segment]:
    keys = run_order_with_ties(order_by)
    first = keys[0]
    if first.kind not in KEY_VALUE_RELATIONS:
        terms, joins = _later_terms(keys, 0)
        return [_Segment(Q(), terms, joins)]
    later, later_joins = _later_terms(keys[1:], 1)
    joins = {"_j0": (first.kind, first.key), **later_joins}
    # The key's own row, in the run's experiment: PostgreSQL then starts from the
    # (experiment, key, ... value) index and stops after a page.
    present = Q(_j0__experiment=F("experiment"))
    missing = Q(~Exists(_KEY_VALUE_MODELS[first.kind].objects.filter(run=OuterRef("pk"), key=first.key)))
    if first.kind == "metric":
        number = _Term("_k0", F("_j0__value"), first.ascending, float)
        return [
            _Segment(present & Q(_j0__is_nan__in=[False]), [number, *later], joins),
            _Segment(present & Q(_j0__is_nan=True), later, joins),
            _Segment(missing, later, later_joins),
        ]
    by_prefix = _Term("_k0_prefix", value_prefix("_j0__value"), first.ascending, str)
    by_value = _Term("_k0", CodePoints(F("_j0__value")), first.ascending, str)
    return [
        _Segment(present & Q(_j0__id__isnull=False), [by_prefix, by_value, *later], joins),
        _Segment(missing, later, later_joins),
    ]


def search_key(*parts: Any) -> str:
    """A short digest of what a search was (experiments, filter, order, view): its tokens carry it."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode(key: str, segment: int, values: list) -> str:
    document = {"search": key, "segment": segment, "after": values}
    text = json.dumps(document, ensure_ascii=False)  # a metric may be ±Infinity, which JSON spells out
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _decode(token: str | None, key: str, segments: list[_Segment]) -> tuple[int, list | None]:
    """(segment, values after which the page starts); (0, None) for the first page."""
    if token is None or token == "":
        return 0, None
    document = decode_token_document(token, _MAX_TOKEN_LENGTH)
    if not isinstance(document, dict) or document.get("search") is None:
        raise InvalidParameter("Invalid page token: it was not issued by this server.")
    if document.get("search") != key:
        raise InvalidParameter(
            "Invalid page token: it belongs to another search (a different filter, order, view or set of experiments)."
        )
    segment, values = document.get("segment"), document.get("after")
    if type(segment) is not int or not 0 <= segment < len(segments) or not isinstance(values, list):
        raise InvalidParameter("Invalid page token: it was not issued by this server.")
    terms = segments[segment].terms
    if len(values) != len(terms) or not all(_fits(v, t.value_type) for v, t in zip(values, terms, strict=True)):
        raise InvalidParameter("Invalid page token: it was not issued by this server.")
    return segment, values


def _fits(value: Any, value_type: type) -> bool:
    if value_type is float:
        return type(value) is int or (type(value) is float and value == value)  # not NaN
    if value_type is int:
        return type(value) is int and -(2**63) <= value < 2**63
    return type(value) is str and "\x00" not in value and _is_unicode(value)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")  # a lone surrogate ("\ud800" in the JSON) is not
    except UnicodeEncodeError:
        return False
    return True


def run_page(
    queryset: QuerySet, order_by: list[str] | None, page_token: str | None, max_results: int, key: str
) -> tuple[list, str | None]:
    """One page of `queryset` (runs, already filtered and narrowed to what the user may
    see) in the order `order_by`, and the token of the next page (None on the last page).
    `key` names the search (search_key): a token only continues the search it came from."""
    segments = _segments(order_by)
    start, after = _decode(page_token, key, segments)
    rows: list[tuple[int, Any]] = []
    for index in range(start, len(segments)):
        wanted = max_results + 1 - len(rows)
        found = list(segments[index].queryset(queryset, after if index == start else None)[:wanted])
        rows += [(index, run) for run in found]
        if len(rows) > max_results:
            break
    page = rows[:max_results]
    next_token = None
    if len(rows) > max_results:
        segment, last = page[-1]
        values = [getattr(last, term.alias) for term in segments[segment].terms]
        next_token = _encode(key, segment, values)
    return [run for _, run in page], next_token
