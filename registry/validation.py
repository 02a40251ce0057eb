"""Validation rules for registry input: names, aliases, versions, stages, tags (MLflow's rules)."""

import posixpath
import re
from typing import Any

from portal import annotations
from portal.errors import InvalidParameter
from registry.models import Stage
from tracking.validation import normalize_name, validate_tag, validate_tags, validate_text

MAX_MODEL_NAME_LENGTH = 256  # RegisteredModel.name
MAX_ALIAS_LENGTH = 255
MAX_TAG_VALUE_LENGTH = 100_000
# Descriptions are Markdown documents (a model card may be long); the cap only bounds one request.
MAX_DESCRIPTION_LENGTH = 100_000
MAX_COMMENT_LENGTH = annotations.MAX_COMMENT_LENGTH
MAX_RUN_LINK_LENGTH = 1000

_ALIAS_RE = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CANONICAL_STAGES = {stage.value.lower(): stage for stage in Stage}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def model_name_validated(name: Any, param: str = "name") -> str:
    """A registered model name as MLflow accepts it (not blank, no '/' or ':', path-safe),
    normalized by the name rule experiments follow too (tracking.validation.normalize_name)."""
    if name is None or (isinstance(name, str) and not name.strip()):
        raise InvalidParameter(f"Missing value for required parameter '{param}'.")
    if not isinstance(name, str):
        raise InvalidParameter(f"Invalid value {_shown(name)} for parameter '{param}': expected a string.")
    name = normalize_name(name, kind="model", max_length=MAX_MODEL_NAME_LENGTH)
    if "/" in name or ":" in name:
        raise InvalidParameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    normalized = posixpath.normpath(name)
    if normalized != name or normalized == "." or normalized.startswith(".."):
        raise InvalidParameter(
            f"Invalid value {_shown(name)} for parameter '{param}' supplied: Names may be treated as files in "
            f"certain cases, and must not resolve to other names when treated as such. This name would resolve "
            f"to {normalized!r}"
        )
    return name


def model_name_for_lookup(name: Any) -> str | None:
    """The name a lookup compares, normalized as model_name_validated stores it; None for a
    name no model can have (the lookup then finds nothing, as experiments' get-by-name)."""
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return normalize_name(name, kind="model", max_length=MAX_MODEL_NAME_LENGTH)
    except InvalidParameter:
        return None


def alias_validated(alias: Any) -> str:
    """An alias name: letters, digits, '_' and '-'; not 'latest' and not a version ('v3')."""
    if alias is None or alias == "":
        raise InvalidParameter("Registered model alias name cannot be empty.")
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidParameter(
            f"Invalid alias name: {_shown(alias)}. Names may only contain alphanumerics, underscores (_), "
            "and dashes (-)."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameter(
            f"Registered model alias name had length {len(alias)}, which exceeded length limit of {MAX_ALIAS_LENGTH}."
        )
    if alias.lower() == "latest":
        raise InvalidParameter("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.match(alias):
        raise InvalidParameter(f"Version alias name '{alias}' is reserved.")
    return alias


def version_number_parse(version: Any) -> int:
    """A version number from the wire (MLflow sends it as a string)."""
    if isinstance(version, bool):
        raise InvalidParameter(f"Parameter 'version' must be an integer, got {_shown(version)}.")
    if isinstance(version, int):
        number = version
    else:
        text = str(version).strip() if isinstance(version, (str, float)) else ""
        if not text.isdigit():
            if version is None or text == "":
                raise InvalidParameter("Missing value for required parameter 'version'.")
            raise InvalidParameter(f"Parameter 'version' must be an integer, got {_shown(version)}.")
        number = int(text)
    if not 1 <= number < 2**31:
        raise InvalidParameter(f"Invalid version number {number}: versions start at 1.")
    return number


def stage_parse(stage: Any) -> Stage:
    """A stage name, case-insensitively, as MLflow accepts it ('production' is Production)."""
    if not isinstance(stage, str) or stage.strip().lower() not in _CANONICAL_STAGES:
        raise InvalidParameter(
            f"Invalid Model Version stage: {_shown(stage)}. Value must be one of {', '.join(Stage.values)}."
        )
    return _CANONICAL_STAGES[stage.strip().lower()]


def tags_validated(tags: Any) -> dict[str, str]:
    """Tags from the wire ([{key, value}]) as a dict; the last value of a repeated key wins."""
    return validate_tags(tags, max_value_length=MAX_TAG_VALUE_LENGTH)


def tag_validated(key: Any, value: Any) -> tuple[str, str]:
    return validate_tag(key, value, max_value_length=MAX_TAG_VALUE_LENGTH)


def description_validated(description: Any) -> str:
    return validate_text(description, "description", "description", MAX_DESCRIPTION_LENGTH, allow_none=True)


def comment_text_validated(text: Any) -> str:
    return annotations.comment_text_validated(text)  # the rule tracking's comments follow too


def run_link_validated(run_link: Any) -> str:
    """A link shown next to the version: http(s) only, so it can never run script in a page."""
    if run_link is None or run_link == "":
        return ""
    if not isinstance(run_link, str) or len(run_link) > MAX_RUN_LINK_LENGTH:
        raise InvalidParameter(
            f"Invalid run_link {_shown(run_link)}: expected a URL of at most {MAX_RUN_LINK_LENGTH} characters."
        )
    if not run_link.lower().startswith(("http://", "https://")) or _CONTROL.search(run_link):
        raise InvalidParameter(f"Invalid run_link {_shown(run_link)}: only http(s) URLs are allowed.")
    return run_link
