"""Small helpers for the tracking tests: the shape of a regular expression (read by `re`'s
own parser), and a service's existence check made to miss."""

from dataclasses import dataclass
from re import _constants as sre
from re import _parser

from django.db.models import QuerySet

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


@dataclass
class RegexShape:
    """`free_wildcards`: unbounded repeats (`*`, `+`, `{n,}`) that the matcher may come back
    to and retry with another length, i.e. neither possessive nor inside an atomic group.
    Each one more multiplies the ways a failing match is retried: `.*a.*a.*b` on a long run
    of `a`s takes time exponential in their number. `depth`: how deep repeats nest
    (`(a*)*` is 2), the other way to make a matcher retry without end."""

    free_wildcards: int = 0
    depth: int = 0


def regex_shape(regex: str) -> RegexShape:
    shape = RegexShape()
    _walk(_parser.parse(regex), atomic=False, depth=0, shape=shape)
    return shape


def _walk(items, *, atomic: bool, depth: int, shape: RegexShape) -> None:
    for op, av in items:
        if op in _REPEATS:
            _low, high, body = av
            if high == sre.MAXREPEAT and op is not sre.POSSESSIVE_REPEAT and not atomic:
                shape.free_wildcards += 1
            shape.depth = max(shape.depth, depth + 1)
            _walk(body, atomic=atomic, depth=depth + 1, shape=shape)
        elif op is sre.ATOMIC_GROUP:
            _walk(av, atomic=True, depth=depth, shape=shape)
        elif op is sre.SUBPATTERN:
            _walk(av[-1], atomic=atomic, depth=depth, shape=shape)
        elif op is sre.BRANCH:
            for branch in av[1]:
                _walk(branch, atomic=atomic, depth=depth, shape=shape)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            _walk(av[1], atomic=atomic, depth=depth, shape=shape)


def exists_check_misses(monkeypatch, model) -> list:
    """Make every `exists()` query on `model` answer False, as when another request creates
    the same row just after a service checked: only the database's unique constraint is
    left to refuse the duplicate. Returns the list of the queries that missed."""
    exists = QuerySet.exists
    missed: list = []

    def miss(queryset):
        if queryset.model is not model:
            return exists(queryset)
        missed.append(queryset)
        return False

    monkeypatch.setattr(QuerySet, "exists", miss)
    return missed
