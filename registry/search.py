"""Registry search: MLflow filter strings and order_by for registered models and versions.

tracking.search parses (its lower layer: parse_filter / parse_order_by with a resolver,
string_condition, integer_condition, page tokens); this module says which fields the
registry has and what a clause on each one means.

Registered models
- `name` (also `attribute.name`): = != LIKE ILIKE IN NOT IN.
- `creation_timestamp`, `last_updated_timestamp`: numeric comparisons with integers.
- `tags.<key>` / `tag.<key>` (quote keys with dots: `` tag.`mlflow.prompt.is_prompt` ``):
  = != LIKE ILIKE, IS NULL, IS NOT NULL.
- order_by: name, creation_timestamp, last_updated_timestamp (alias timestamp); then name.

Model versions
- `name` (the registered model's), `source_path`: = != LIKE ILIKE IN NOT IN.
- `run_id`: = != LIKE ILIKE IN NOT IN.
- `version_number`: numeric comparisons, IN, NOT IN (integers).
- `current_stage`: = != IN NOT IN, stage names in any case.
- `creation_timestamp`, `last_updated_timestamp`: numeric comparisons; tags as above.
- order_by: name, version_number, creation_timestamp, last_updated_timestamp (alias
  timestamp), current_stage. Default: last_updated_timestamp DESC. Ties: name ASC, then
  version_number DESC (MLflow's tie-breakers).

Decisions:
- `tags.k != 'v'` matches objects whose tag k is absent or has another value (unlike runs,
  where the tag must be there). The client appends `` tag.`mlflow.prompt.is_prompt` != 'true' ``
  to every model search and expects ordinary models, which have no such tag, to match.
- LIKE is case-sensitive, ILIKE is not, on SQLite and PostgreSQL alike (tracking.search).
- Every ordering ends in a unique key (a model's name; a version's model name and number),
  so offset page tokens visit each row once while nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from portal.errors import InvalidParameter
from registry.models import ModelVersionTag, RegisteredModel, RegisteredModelTag
from tracking.search import (
    LIST_COMPARATORS,
    NULL_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Comparison,
    OrderKey,
    Target,
    integer_condition,
    parse_filter,
    parse_order_by,
    string_condition,
)

_TAG_ENTITIES = {"tag", "tags"}
_ATTRIBUTE_ENTITIES = {"attribute", "attributes", "attr"}
_TAG_COMPARATORS = STRING_COMPARATORS | NULL_COMPARATORS
_TIMESTAMPS = ("creation_timestamp", "last_updated_timestamp")


# ---------------------------------------------------------------- resolvers


def _attribute_key(entity: str | None, key: str, what: str) -> str:
    kind = entity.lower() if entity is not None else None
    if kind is not None and kind not in _ATTRIBUTE_ENTITIES:
        raise LookupError(f"unknown entity '{entity}' in a {what} search (expected tags.<key> or a field name)")
    return key


def registered_model_target(entity: str | None, key: str) -> Target:
    if entity is not None and entity.lower() in _TAG_ENTITIES:
        return Target("tag", key, _TAG_COMPARATORS)
    key = _attribute_key(entity, key, "registered model")
    if key == "name":
        return Target("attribute", key, STRING_COMPARATORS | LIST_COMPARATORS)
    if key in _TIMESTAMPS:
        return Target("attribute", key, NUMERIC_COMPARATORS, "integer")
    raise LookupError(
        f"unknown registered model field '{key}' (expected name, creation_timestamp, last_updated_timestamp "
        "or tags.<key>)"
    )


_VERSION_STRING_FIELDS = {"name": "registered_model__name", "source_path": "source", "run_id": "run_id"}


def model_version_target(entity: str | None, key: str) -> Target:
    if entity is not None and entity.lower() in _TAG_ENTITIES:
        return Target("tag", key, _TAG_COMPARATORS)
    key = _attribute_key(entity, key, "model version")
    if key in _VERSION_STRING_FIELDS:
        return Target("attribute", key, STRING_COMPARATORS | LIST_COMPARATORS)
    if key == "current_stage":
        return Target("attribute", key, frozenset({"=", "!="}) | LIST_COMPARATORS)
    if key == "version_number":
        return Target("attribute", key, NUMERIC_COMPARATORS | LIST_COMPARATORS, "integer")
    if key in _TIMESTAMPS:
        return Target("attribute", key, NUMERIC_COMPARATORS, "integer")
    raise LookupError(
        f"unknown model version field '{key}' (expected name, run_id, source_path, version_number, "
        "current_stage, creation_timestamp, last_updated_timestamp or tags.<key>)"
    )


# ---------------------------------------------------------------- conditions


def _tag_condition(rows: QuerySet, comparison: Comparison) -> Q:
    """A clause on the object's tag `comparison.key`; `rows` are the object's rows with that key."""
    comparator, value = comparison.comparator, comparison.value
    if comparator == "IS NULL":
        return Q(~Exists(rows))
    if comparator == "IS NOT NULL":
        return Q(Exists(rows))
    if comparator == "!=":
        return Q(~Exists(rows.filter(value=value)))
    return Q(Exists(rows.filter(string_condition("value", comparator, value))))


def _registered_model_condition(comparison: Comparison) -> Q:
    if comparison.kind == "tag":
        rows = RegisteredModelTag.objects.filter(registered_model=OuterRef("pk"), key=comparison.key)
        return _tag_condition(rows, comparison)
    if comparison.key == "name":
        return string_condition("name", comparison.comparator, comparison.value)
    return integer_condition(comparison.key, comparison.comparator, comparison.value)


def _stages(filter_string: str, comparison: Comparison) -> list[str]:
    from registry.validation import stage_parse

    values = comparison.value if isinstance(comparison.value, tuple) else (comparison.value,)
    try:
        return [stage_parse(value).value for value in values]
    except InvalidParameter as exc:
        raise InvalidParameter(
            f"Invalid filter '{filter_string}': {exc.message} (at position {comparison.position})"
        ) from None


def _model_version_condition(filter_string: str, comparison: Comparison, models_first: bool) -> Q:
    kind, key, comparator, value = comparison.kind, comparison.key, comparison.comparator, comparison.value
    if kind == "tag":
        return _tag_condition(ModelVersionTag.objects.filter(model_version=OuterRef("pk"), key=key), comparison)
    if key == "name" and not models_first:
        # The models whose name matches, as a subquery: each model's name is tested once,
        # not once per version read (on SQLite LIKE is a Python regular expression per row).
        models = RegisteredModel.objects.filter(string_condition("name", comparator, value))
        return Q(registered_model__in=models.values("pk"))
    if key in _VERSION_STRING_FIELDS:
        return string_condition(_VERSION_STRING_FIELDS[key], comparator, value)
    if key == "current_stage":
        matching = Q(current_stage__in=_stages(filter_string, comparison))
        return matching if comparator in ("=", "IN") else ~matching
    if key == "version_number":
        if comparator in LIST_COMPARATORS:
            matching = Q(version__in=list(value))
            return matching if comparator == "IN" else ~matching
        return integer_condition("version", comparator, value)
    return integer_condition(key, comparator, value)


def registered_model_filter(queryset: QuerySet, filter_string: str | None) -> QuerySet:
    """`queryset` (of RegisteredModel) narrowed by an MLflow SearchRegisteredModels filter."""
    for comparison in parse_filter(filter_string, registered_model_target):
        queryset = queryset.filter(_registered_model_condition(comparison))
    return queryset


def model_version_filter(queryset: QuerySet, filter_string: str | None, *, models_first: bool = False) -> QuerySet:
    """`queryset` (of ModelVersion) narrowed by an MLflow SearchModelVersions filter.

    `models_first`: the search reads the registered models first, in the order of their
    names (model_version_order_leads_with_name), so a condition on the name is tested on
    them as they are read; PostgreSQL then walks only the matching range of the name index.
    Otherwise the search reads versions, and the name condition is a subquery of models.
    """
    for comparison in parse_filter(filter_string, model_version_target):
        queryset = queryset.filter(_model_version_condition(filter_string or "", comparison, models_first))
    return queryset


# ---------------------------------------------------------------- order_by

_REGISTERED_MODEL_ORDER = {
    "name": "name",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "timestamp": "last_updated_timestamp",
}
_MODEL_VERSION_ORDER = {
    "name": "registered_model__name",
    "version_number": "version",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "timestamp": "last_updated_timestamp",
    "current_stage": "current_stage",
}


def _order_resolver(fields: dict[str, str], what: str):
    def resolve(entity: str | None, key: str) -> Target:
        key = _attribute_key(entity, key, what)
        if key not in fields:
            raise LookupError(f"{what}s cannot be ordered by '{key}' (expected one of {', '.join(fields)})")
        return Target("attribute", key, frozenset())

    return resolve


def _ordering(order_by: Any, fields: dict[str, str], what: str) -> list:
    if order_by is None:
        return []
    if isinstance(order_by, str) or not isinstance(order_by, (list, tuple)):
        raise InvalidParameter(f"Invalid order_by {order_by!r}: expected a list of clauses")
    keys: list[OrderKey] = [parse_order_by(clause, _order_resolver(fields, what)) for clause in order_by]
    columns = [fields[k.key] for k in keys]
    if len(set(columns)) != len(columns):
        raise InvalidParameter(f"Invalid order_by {order_by!r}: `order_by` contains duplicate fields")
    return [F(column).asc() if k.ascending else F(column).desc() for column, k in zip(columns, keys, strict=True)]


def registered_model_order(queryset: QuerySet, order_by: list[str] | None) -> QuerySet:
    ordering = _ordering(order_by, _REGISTERED_MODEL_ORDER, "registered model")
    return queryset.order_by(*ordering, "name", "pk")


def model_version_order(queryset: QuerySet, order_by: list[str] | None) -> QuerySet:
    ordering = _ordering(order_by, _MODEL_VERSION_ORDER, "model version") or [F("last_updated_timestamp").desc()]
    # (name, version) is unique, so it ends the ordering. A trailing primary key would change
    # nothing but SQLite's plan: it then sorts every version rather than walking the index
    # of the leading column (0.4 ms against 20 ms for the newest 100 of 100,000).
    return queryset.order_by(*ordering, "registered_model__name", "-version")


def model_version_order_leads_with_name(order_by: list[str] | None) -> bool:
    """Whether the order starts with the model's name: such a search reads the registered
    models first (by name) and their versions from each, rather than the versions in order.
    A bad order_by is InvalidParameter, as in model_version_order."""
    ordering = _ordering(order_by, _MODEL_VERSION_ORDER, "model version")
    return bool(ordering) and ordering[0].expression.name == "registered_model__name"
