"""Run search pages by position (tracking.run_pages) against the one-statement order
(tracking.search.apply_run_order): the same runs in the same order, every run exactly once
whatever the page size, on SQLite and PostgreSQL alike. The data is built to hit every
edge of the order: ties on every key, NaN and ±infinity, missing metrics, params and tags,
values longer than the indexed prefix that share it, non-ASCII and mixed-case text."""

import math
import random

import pytest

from portal.errors import InvalidParameter
from tests.tracking.test_search_queries import make_experiment, make_run
from tracking import run_pages, search
from tracking.models import Run, RunStatus
from tracking.sql import SEARCH_PREFIX

pytestmark = pytest.mark.django_db

LONG = "a" * SEARCH_PREFIX
TEXTS = ["a", "B", "b", "é", "Z", "", "a b", LONG, LONG + "x", LONG + "b", LONG + "é", "a" * (SEARCH_PREFIX - 1), None]
NUMBERS = [0.5, 1.0, -2.0, 0.0, math.inf, -math.inf, math.nan, None, None]

ORDERS = [
    None,
    ["metrics.m DESC"],
    ["metrics.m ASC"],
    ["params.p ASC"],
    ["params.p DESC"],
    ["tags.t DESC", "metrics.m ASC"],
    ["metrics.m DESC", "params.p ASC", "attributes.run_id DESC"],
    ["metrics.m ASC", "metrics.n DESC"],
    ["attributes.start_time ASC"],
    ["attributes.end_time DESC"],
    ["params.p ASC", "attributes.end_time ASC"],
    ["run_name ASC", "metrics.m DESC"],
    ["tags.mlflow.runName DESC"],
    ["status", "start_time ASC"],
    ["metrics.absent DESC"],
]
FILTERS = [
    "",
    "metrics.m > 0",
    "metrics.m != 1",
    "params.p LIKE 'a%'",
    "tags.t != 'a'",
    "params.p = 'é'",
    f"params.p = '{LONG}x'",
    f"tags.t = '{LONG}'",
    "tags.t ILIKE '%A B%'",
]


def seed(experiment, count=45, seed_value=9):
    rng = random.Random(seed_value)
    for _ in range(count):
        metrics = {}
        for key in ("m", "n"):
            value = rng.choice(NUMBERS)
            if value is not None:
                metrics[key] = value
        params = {"p": v} if (v := rng.choice(TEXTS)) is not None else {}
        tags = {"t": v} if (v := rng.choice(TEXTS)) is not None else {}
        make_run(
            experiment,
            rng.choice(["alpha", "Beta", "gamma", ""]),
            start_time=rng.choice([1000, 2000, 3000]),
            end_time=rng.choice([None, 5, 7]),
            status=rng.choice([RunStatus.FINISHED, RunStatus.FAILED]),
            metrics=metrics,
            params=params,
            tags=tags,
        )


def reference(queryset, order_by):
    return [run.pk for run in search.apply_run_order(queryset, order_by)]


def paged(queryset, order_by, size, key="k"):
    ids, token, pages = [], None, 0
    while True:
        runs, token = run_pages.run_page(queryset, order_by, token, size, key)
        pages += 1
        assert len(runs) <= size
        ids += [run.pk for run in runs]
        if token is None:
            return ids
        assert len(runs) == size
        assert pages <= len(ids) + 1


@pytest.fixture
def runs():
    experiment = make_experiment()
    seed(experiment)
    other = make_experiment("other")
    seed(other, count=10, seed_value=3)
    return Run.objects.filter(experiment=experiment)


@pytest.mark.parametrize("order_by", ORDERS, ids=lambda o: ",".join(o or ["default"]))
def test_pages_visit_every_run_once_in_the_reference_order(runs, order_by):
    expected = reference(runs, order_by)
    assert len(expected) == 45
    for size in (1, 4, 45, 1000):
        assert paged(runs, order_by, size) == expected, size


@pytest.mark.parametrize("filter_string", FILTERS)
@pytest.mark.parametrize("order_by", [None, ["metrics.m DESC"], ["params.p ASC"], ["tags.t DESC", "start_time ASC"]])
def test_filtered_pages_follow_the_reference_order(runs, filter_string, order_by):
    queryset = search.apply_run_filter(runs, filter_string)
    expected = reference(queryset, order_by)
    assert paged(queryset, order_by, 3) == expected


def test_values_order_by_code_point_on_every_database(runs):
    values = [run.params.get(key="p").value for run in runs.order_by() if run.params.filter(key="p").exists()]
    pages = paged(runs, ["params.p ASC"], 5)
    ordered = [Run.objects.get(pk=pk).params.filter(key="p").first() for pk in pages]
    present = [param.value for param in ordered if param is not None]
    assert present == sorted(values)  # Python compares str by code point, as "C" and SQLite do
    assert ordered[-1] is None  # runs without the param come last


def test_a_token_continues_only_its_own_search(runs):
    _, token = run_pages.run_page(runs, ["metrics.m DESC"], None, 2, "search-1")
    assert token
    with pytest.raises(InvalidParameter, match="another search"):
        run_pages.run_page(runs, ["metrics.m DESC"], token, 2, "search-2")


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "bm90IGpzb24=",  # "not json"
        "eyJvZmZzZXQiOiAxMDB9",  # an offset token: {"offset": 100}
        # the right search, but values that do not fit the order's terms
        "eyJzZWFyY2giOiAiayIsICJzZWdtZW50IjogMCwgImFmdGVyIjogWyJ4IiwgMSwgImlkIl19",
        "eyJzZWFyY2giOiAiayIsICJzZWdtZW50IjogOSwgImFmdGVyIjogW119",  # a segment that does not exist
        "eyJzZWFyY2giOiAiayIsICJzZWdtZW50IjogMCwgImFmdGVyIjogW05hTiwgMSwgImlkIl19",  # NaN
        "eyJzZWFyY2giOiAiayIsICJzZWdtZW50IjogMCwgImFmdGVyIjogWzAuNSwgMSwgImFcdTAwMDBiIl19",  # a NUL in a run id
        "eyJzZWFyY2giOiAiayIsICJzZWdtZW50IjogMCwgImFmdGVyIjogWzAuNSwgMSwgIlx1ZDgwMCJdfQ==",  # a lone surrogate
        "x" * 1_000_001,
    ],
)
def test_malformed_tokens_are_invalid_parameters(runs, token):
    with pytest.raises(InvalidParameter, match="Invalid page token"):
        run_pages.run_page(runs, ["metrics.m DESC"], token, 2, "k")


def test_infinite_values_survive_the_token(runs):
    queryset = runs.filter(latest_metrics__key="m", latest_metrics__value=math.inf)
    assert queryset.exists()
    assert paged(runs, ["metrics.m DESC"], 1) == reference(runs, ["metrics.m DESC"])


def test_a_run_logged_after_a_page_is_not_repeated_or_skipped(runs):
    experiment = runs.first().experiment
    first, token = run_pages.run_page(runs, ["metrics.m DESC"], None, 10, "k")
    # A run that sorts before the page already read, and one after it.
    make_run(experiment, "early", start_time=9999, metrics={"m": 1e9})
    make_run(experiment, "late", start_time=1, metrics={"m": -1e9})
    rest = paged_from(runs.model.objects.filter(experiment=experiment), ["metrics.m DESC"], token)
    names = [Run.objects.get(pk=pk).name for pk in rest]
    assert "late" in names and "early" not in names
    assert not {run.pk for run in first} & set(rest)


def paged_from(queryset, order_by, token, size=7):
    ids = []
    while token is not None:
        runs, token = run_pages.run_page(queryset, order_by, token, size, "k")
        ids += [run.pk for run in runs]
    return ids


@pytest.mark.parametrize("kind", ["params", "tags"])
def test_equality_is_exact_around_the_indexed_prefix(runs, kind):
    rows = {run.pk: {row.key: row.value for row in getattr(run, kind).all()} for run in runs}
    for value in (LONG, LONG + "x", LONG + "é", "a" * (SEARCH_PREFIX - 1), "a", "é", ""):
        key = "p" if kind == "params" else "t"
        found = {run.pk for run in search.apply_run_filter(runs, f"{kind}.{key} = '{value}'")}
        assert found == {pk for pk, values in rows.items() if values.get(key) == value}, value[-3:]


def test_pages_ordered_by_values_of_thousands_of_characters():
    experiment = make_experiment("long")
    for i in range(12):
        make_run(experiment, f"r{i}", start_time=i, tags={"t": "é" * 7990 + f"{i % 4:010d}"}, params={"p": "x" * 5999 + "ab"[i % 2]})
    runs = Run.objects.filter(experiment=experiment)
    for order_by in (["tags.t DESC"], ["params.p ASC", "tags.t ASC"]):
        assert paged(runs, order_by, 1) == reference(runs, order_by)


def test_a_page_loads_its_values_for_more_ids_than_sqlite_binds(runs):
    from django.db.models import F

    from tracking.models import Param
    from tracking.sql import InIds

    some = list(runs.values_list("pk", flat=True)[:3])
    ids = [f"{n:032x}" for n in range(40_000)] + some
    assert Param.objects.filter(InIds(F("run_id"), ids)).count() == Param.objects.filter(run_id__in=some).count()
    assert not Param.objects.filter(InIds(F("run_id"), [])).exists()
