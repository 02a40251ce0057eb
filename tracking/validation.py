"""Validation rules for what is logged to runs and experiments (MLflow's limits)."""

import posixpath
import re
import time
import unicodedata
from typing import Any

from portal.errors import InvalidParameter, NotFound
from portal.numbers import parse_double

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_RUN_NAME_LENGTH = 250
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_LOGGED_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")


def now_ms() -> int:
    return int(time.time() * 1000)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def validate_key(key: Any, kind: str) -> str:
    """A metric, param or tag key: MLflow's character set, at most 250 characters, path-safe."""
    if key is None or key == "":
        raise InvalidParameter(f"Missing value for required parameter 'key' of a {kind}.")
    if not isinstance(key, str):
        raise InvalidParameter(f"Invalid {kind} key {_shown(key)}: expected a string.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameter(
            f"{kind.capitalize()} key '{key[:50]}...' had length {len(key)}, which exceeded length limit of {MAX_ENTITY_KEY_LENGTH}."
        )
    if not _KEY_RE.match(key):
        raise InvalidParameter(
            f"Invalid {kind} key {_shown(key)}. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    normalized = posixpath.normpath(key)
    if normalized != key or normalized == "." or normalized.startswith("..") or normalized.startswith("/"):
        raise InvalidParameter(
            f"Invalid {kind} key {_shown(key)}. Names may be treated as files in certain cases, and must not "
            f"resolve to other names when treated as such. This name would resolve to {normalized!r}."
        )
    return key


def validate_text(value: Any, kind: str, key: str, limit: int, *, allow_none: bool = False) -> str:
    if value is None:
        if allow_none:
            return ""
        raise InvalidParameter(f"Missing value for {kind} '{key}'.")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidParameter(f"Invalid value {_shown(value)} for {kind} '{key}': expected a string.")
    value = str(value)
    if len(value) > limit:
        raise InvalidParameter(
            f"{kind.capitalize()} '{key}' had a value of length {len(value)}, which exceeded length limit of {limit}."
        )
    return value


def validate_int64(value: Any, name: str, *, allow_none: bool = True, minimum: int | None = None) -> int | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise InvalidParameter(f"Missing value for required parameter '{name}'.")
    if isinstance(value, bool):
        raise InvalidParameter(f"Invalid value {_shown(value)} for parameter '{name}': expected a 64-bit integer.")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            number = int(value)
        else:
            number = int(str(value).strip())
    except (ValueError, OverflowError):
        raise InvalidParameter(f"Invalid value {_shown(value)} for parameter '{name}': expected a 64-bit integer.") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidParameter(f"Invalid value {_shown(value)} for parameter '{name}': out of 64-bit range.")
    if minimum is not None and number < minimum:
        raise InvalidParameter(f"Invalid value {number} for parameter '{name}': must be at least {minimum}.")
    return number


def validate_metric_value(value: Any, key: str) -> float:
    if value is None or value == "":
        raise InvalidParameter(f"Missing value for required parameter 'value' of metric '{key}'.")
    number = parse_double(value)
    if number is None:
        raise InvalidParameter(f"Invalid value {_shown(value)} for metric '{key}': expected a double.")
    return number


def normalize_name(name: str, *, kind: str, max_length: int) -> str:
    """The one rule for names that are unique and looked up by users (experiments,
    registered models): compared after Unicode NFKC normalization and trimming, with no
    control or format characters, so that names which only look different ('ｃｈｕｒｎ',
    'churn ', 'ch\u200burn') cannot shadow each other (the class of CVE-2024-3099)."""
    normalized = unicodedata.normalize("NFKC", name).strip()
    if not normalized:
        raise InvalidParameter(f"Invalid {kind} name: {_shown(name)}. The name must not be empty.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in normalized):
        raise InvalidParameter(f"Invalid {kind} name: control and format characters are not allowed.")
    if len(normalized) > max_length:
        raise InvalidParameter(
            f"{kind.capitalize()} name had length {len(normalized)}, which exceeded length limit of {max_length}."
        )
    return normalized


def normalize_experiment_name(name: Any) -> str:
    """An experiment name under the shared name rule (normalize_name)."""
    if name is None or (isinstance(name, str) and not name.strip()):
        raise InvalidParameter(f"Invalid experiment name: '{name or ''}'. The name must not be empty.")
    if not isinstance(name, str):
        raise InvalidParameter(f"Invalid experiment name: {_shown(name)}. Expects a string.")
    return normalize_name(name, kind="experiment", max_length=MAX_EXPERIMENT_NAME_LENGTH)


def validate_run_id_format(run_id: str) -> bool:
    return bool(_RUN_ID_RE.match(run_id or ""))


def validate_logged_model_id(model_id: Any, where: str) -> str:
    """A logged model id a request refers to: the portal makes them `m-<32 hex>`, so any other
    string names a model that does not exist (RESOURCE_DOES_NOT_EXIST, as an unknown id)."""
    if not isinstance(model_id, str) or not model_id:
        raise InvalidParameter(f"Invalid model_id {_shown(model_id)} {where}: expected a logged model id.")
    if not _LOGGED_MODEL_ID_RE.match(model_id):
        raise NotFound(f"Logged model with ID {_shown(model_id)} not found.")
    return model_id


def validate_params(items: Any, *, limit: int | None = None) -> dict[str, str]:
    """A list of {key, value} params as a dict. A key repeated with another value is an error."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidParameter("Invalid value for parameter 'params': expected a list.")
    if limit is not None and len(items) > limit:
        raise InvalidParameter(
            f"A batch logging request can contain at most {limit} params. Got {len(items)} params. "
            "Please split up the request into multiple requests."
        )
    values: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidParameter(f"Invalid param {_shown(item)}: expected an object.")
        key = validate_key(item.get("key"), "param")
        value = validate_text(item.get("value"), "param", key, MAX_PARAM_VAL_LENGTH, allow_none=True)
        if key in values and values[key] != value:
            raise InvalidParameter(
                f"Duplicate parameter keys have been submitted: '{key}' with values '{values[key]}' and '{value}'."
            )
        values[key] = value
    return values


def validate_tag(
    key: Any,
    value: Any,
    *,
    max_value_length: int = MAX_TAG_VAL_LENGTH,
    kind: str = "tag",
    max_key_length: int | None = None,
) -> tuple[str, str]:
    """One tag as (key, value). The key follows MLflow's key rule (validate_key), or, given
    `max_key_length`, may be any text up to that length (MLflow's rule for input tags)."""
    if max_key_length is None:
        key = validate_key(key, kind)
    else:
        key = validate_text(key, kind, "key", max_key_length)
    return key, validate_text(value, kind, key, max_value_length, allow_none=True)


def validate_tags(
    items: Any,
    *,
    limit: int | None = None,
    max_value_length: int = MAX_TAG_VAL_LENGTH,
    kind: str = "tag",
    max_key_length: int | None = None,
) -> dict[str, str]:
    """A list of {key, value} tags as a dict; the last value of a repeated key wins.

    The one parser of tag lists: runs, experiments, logged models, registered models and
    versions, dataset inputs differ only in their limits and the `kind` their messages name.
    """
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidParameter("Invalid value for parameter 'tags': expected a list.")
    if limit is not None and len(items) > limit:
        raise InvalidParameter(
            f"A batch logging request can contain at most {limit} {kind}s. Got {len(items)} {kind}s. "
            "Please split up the request into multiple requests."
        )
    values: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidParameter(f"Invalid {kind} {_shown(item)}: expected an object.")
        key, value = validate_tag(
            item.get("key"), item.get("value"), max_value_length=max_value_length, kind=kind, max_key_length=max_key_length
        )
        values[key] = value
    return values
