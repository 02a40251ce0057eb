"""Doubles as JSON carries them: numbers, or the strings proto3 JSON uses for NaN and ±Infinity."""

import math
from typing import Any

_SPECIAL = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}


def parse_double(value: Any) -> float | None:
    """`value` as a float, or None if it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an integer beyond the double range (1 followed by 400 zeros)
            return None
    if isinstance(value, str):
        special = _SPECIAL.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            return None
    return None


def double_json(value: float) -> float | str:
    """A double as proto3 JSON writes it: NaN and infinities as strings, so they round-trip."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
