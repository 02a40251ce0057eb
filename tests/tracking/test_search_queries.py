"""Run and experiment searches against the database: which rows match, in which order.

Data is written with the ORM directly: the search module reads tables, and this keeps each
case down to the rows it is about. Run on SQLite (default) and on PostgreSQL (DATABASE_URL).
"""

import math
import random
import uuid

import pytest
from django.db import connection

from portal.errors import InvalidParameter
from tests.tracking.helpers import regex_shape
from tracking import search
from tracking.models import (
    Dataset,
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)

pytestmark = pytest.mark.django_db


def make_experiment(name="exp", *, creation_time=0, last_update_time=0, tags=None):
    experiment = Experiment.objects.create(
        name=name, artifact_location="x", creation_time=creation_time, last_update_time=last_update_time
    )
    for key, value in (tags or {}).items():
        ExperimentTag.objects.create(experiment=experiment, key=key, value=value)
    return experiment


def make_run(experiment, name="", *, start_time=0, metrics=None, params=None, tags=None, **fields):
    fields.setdefault("artifact_uri", "x")
    run = Run.objects.create(id=uuid.uuid4().hex, experiment=experiment, name=name, start_time=start_time, **fields)
    for key, value in (metrics or {}).items():
        nan = math.isnan(value)
        LatestMetric.objects.create(
            run=run, experiment=experiment, key=key, value=0 if nan else value, is_nan=nan, timestamp=0, step=0
        )
    for key, value in (params or {}).items():
        Param.objects.create(run=run, experiment=experiment, key=key, value=value)
    for key, value in (tags or {}).items():
        RunTag.objects.create(run=run, experiment=experiment, key=key, value=value)
    return run


def add_input(run, name, digest="d1", context=None):
    dataset, _ = Dataset.objects.get_or_create(
        experiment=run.experiment, name=name, digest=digest, defaults={"source_type": "local", "source": "x"}
    )
    run_input = RunInput.objects.create(run=run, dataset=dataset)
    if context is not None:
        InputTag.objects.create(run_input=run_input, key="mlflow.data.context", value=context)


@pytest.fixture
def experiment():
    return make_experiment()


def names(filter_string=None, order_by=None):
    queryset = search.apply_run_order(search.apply_run_filter(Run.objects.all(), filter_string), order_by)
    return [run.name for run in queryset]


def matching(filter_string):
    return sorted(names(filter_string))


# ---------------------------------------------------------------- metrics


@pytest.fixture
def scored(experiment):
    make_run(experiment, "low", metrics={"acc": 0.1})
    make_run(experiment, "mid", metrics={"acc": 0.5})
    make_run(experiment, "high", metrics={"acc": 0.9})
    make_run(experiment, "nan", metrics={"acc": float("nan")})
    make_run(experiment, "other", metrics={"loss": 0.5})


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("metrics.acc = 0.5", ["mid"]),
        ("metrics.acc != 0.5", ["high", "low", "nan"]),
        ("metrics.acc < 0.5", ["low"]),
        ("metrics.acc <= 0.5", ["low", "mid"]),
        ("metrics.acc > 0.5", ["high"]),
        ("metrics.acc >= 0.5", ["high", "mid"]),
        ("metrics.acc > -1e3", ["high", "low", "mid"]),
        ("metrics.acc < 5E-1", ["low"]),
        ("metric.`acc` >= .9", ["high"]),
        ("metrics.acc = 0", []),
    ],
)
def test_metric_comparisons(scored, filter_string, expected):
    assert matching(filter_string) == expected


def test_nan_metrics_match_only_not_equal(scored):
    # The NaN placeholder value 0 must not satisfy `<= 0.5` nor `= 0`.
    assert "nan" not in matching("metrics.acc <= 0.5")
    assert "nan" in matching("metrics.acc != 0")


def test_runs_without_the_metric_never_match(scored):
    assert "other" not in matching("metrics.acc != 0.5")


def test_metric_filters_read_the_latest_value_not_the_history(experiment):
    run = make_run(experiment, "r", metrics={"acc": 0.9})
    Metric.objects.create(run=run, key="acc", value=0.1, timestamp=0, step=0)
    assert matching("metrics.acc < 0.5") == []
    assert matching("metrics.acc > 0.5") == ["r"]


def test_negative_metric_values_compare_as_numbers(experiment):
    make_run(experiment, "neg", metrics={"delta": -2.5})
    make_run(experiment, "pos", metrics={"delta": 3})
    assert matching("metrics.delta < -1") == ["neg"]
    assert matching("metrics.delta >= -2.5") == ["neg", "pos"]


def test_infinite_metric_values_compare_as_numbers(experiment):
    make_run(experiment, "inf", metrics={"m": float("inf")})
    make_run(experiment, "-inf", metrics={"m": float("-inf")})
    make_run(experiment, "big", metrics={"m": 1e300})
    assert matching("metrics.m > 1e308") == ["inf"]
    assert matching("metrics.m < -1e308") == ["-inf"]
    assert matching("metrics.m >= 1e999") == ["inf"]


# ---------------------------------------------------------------- params and tags


@pytest.fixture
def configured(experiment):
    make_run(experiment, "adam", params={"optimizer": "adam", "lr": "0.01"}, tags={"team": "vision"})
    make_run(experiment, "sgd", params={"optimizer": "sgd"}, tags={"team": "Vision"})
    make_run(experiment, "bare")


def test_param_equality(configured):
    assert matching("params.optimizer = 'adam'") == ["adam"]


def test_not_equal_requires_the_key_as_in_mlflow(configured):
    assert matching("params.optimizer != 'adam'") == ["sgd"]
    assert matching("tags.team != 'vision'") == ["sgd"]


def test_string_equality_is_case_sensitive(configured):
    assert matching("tags.team = 'vision'") == ["adam"]


def test_is_null_matches_runs_without_the_key(configured):
    assert matching("params.lr IS NULL") == ["bare", "sgd"]
    assert matching("tags.team is null") == ["bare"]


def test_is_not_null_matches_runs_with_the_key(configured):
    assert matching("params.lr IS NOT NULL") == ["adam"]
    assert matching("tags.team IS NOT NULL") == ["adam", "sgd"]


def test_clauses_are_combined_with_and(configured):
    assert matching("params.optimizer != 'x' AND tags.team = 'Vision'") == ["sgd"]
    assert matching("params.optimizer = 'adam' AND tags.team = 'Vision'") == []


def test_quoted_keys_find_keys_with_spaces_and_dots(experiment):
    make_run(experiment, "r", params={"my key": "1", "a.b": "2"}, metrics={"val/loss": 0.5})
    assert matching("params.`my key` = '1'") == ["r"]
    assert matching('params."my key" = "1"') == ["r"]
    assert matching("params.a.b = '2'") == ["r"]
    assert matching("metrics.`val/loss` < 1") == ["r"]
    assert matching("metrics.val/loss < 1") == ["r"]


def test_values_with_quotes_and_backslashes_match_literally(experiment):
    make_run(experiment, "quote", params={"p": "it's"})
    make_run(experiment, "path", params={"p": "C:\\data\\"})
    assert matching("params.p = 'it''s'") == ["quote"]
    assert matching('params.p = "it\'s"') == ["quote"]
    assert matching("params.p = 'C:\\data\\'") == ["path"]


def test_filter_values_cannot_inject_sql(configured):
    assert matching("params.optimizer = 'adam'' OR ''1''=''1'") == []
    assert matching("params.optimizer = 'x''; DROP TABLE tracking_run; --'") == []
    assert matching("params.optimizer LIKE '%'' OR 1=1 --'") == []
    assert Run.objects.count() == 3


# ---------------------------------------------------------------- LIKE and ILIKE


@pytest.fixture
def words(experiment):
    for value in ["abc", "ABC", "aXc", "ac", "a.c", "a%c", "a_c", "a\\c", "ab\nc", "Ärger", "ärger", "[a]c", "(a|b)"]:
        make_run(experiment, value, params={"w": value})


def test_like_is_case_sensitive(words):
    assert matching("params.w LIKE 'abc'") == ["abc"]
    assert matching("params.w LIKE 'A%'") == ["ABC"]


def test_ilike_ignores_case(words):
    assert matching("params.w ILIKE 'abc'") == ["ABC", "abc"]
    assert matching("params.w ILIKE 'a_C'") == sorted(["ABC", "abc", "aXc", "a.c", "a%c", "a_c", "a\\c"])


def test_ilike_ignores_case_of_non_ascii_letters(words):
    assert matching("params.w ILIKE 'ärger'") == ["Ärger", "ärger"]
    assert matching("params.w LIKE 'ärger'") == ["ärger"]


def test_underscore_matches_exactly_one_character(words):
    assert matching("params.w LIKE 'a_c'") == sorted(["a%c", "a.c", "aXc", "a\\c", "a_c", "abc"])


def test_percent_matches_any_run_of_characters_including_newlines(words):
    assert matching("params.w LIKE 'a%c'") == sorted(["a%c", "a.c", "aXc", "a\\c", "a_c", "ab\nc", "abc", "ac"])
    assert matching("params.w LIKE '%'") == sorted(["(a|b)", "ABC", "[a]c", "a%c", "a.c", "aXc", "a\\c", "a_c",
                                                    "ab\nc", "abc", "ac", "Ärger", "ärger"])


def test_like_has_no_escape_character_and_treats_regex_characters_literally(words):
    assert matching("params.w LIKE 'a\\c'") == ["a\\c"]
    assert matching("params.w LIKE 'a.c'") == ["a.c"]
    assert matching("params.w LIKE '[a]c'") == ["[a]c"]
    assert matching("params.w LIKE '(a|b)'") == ["(a|b)"]
    assert matching("params.w LIKE 'a\\%'") == ["a\\c"]


def test_like_matches_whole_values(words):
    assert matching("params.w LIKE 'b'") == []
    assert matching("params.w LIKE '%b%'") == ["(a|b)", "ab\nc", "abc"]


def test_like_with_many_wildcards_cannot_backtrack_on_long_values(experiment):
    make_run(experiment, "long", params={"p": "a" * 6000})
    many_wildcards = ["params.p LIKE '" + "%a" * 20 + "%b'", "params.p ILIKE '" + "%A" * 20 + "%'"]
    if connection.vendor == "sqlite":
        # Checked on the SQL before running it: a regex that can backtrack would not fail on
        # this value but run for ever. (PostgreSQL runs its own LIKE, which does not backtrack.)
        for filter_string in many_wildcards:
            _, params = search.apply_run_filter(Run.objects.all(), filter_string).query.sql_with_params()
            regexes = [p for p in params if isinstance(p, str) and p.startswith("(?s")]
            assert regexes
            assert all(regex_shape(regex).free_wildcards <= 1 for regex in regexes)
    assert matching(many_wildcards[0]) == []
    assert matching(many_wildcards[1]) == ["long"]


# ---------------------------------------------------------------- attributes


def test_run_name_filters_compare_the_run_name(experiment):
    make_run(experiment, "alpha-1")
    make_run(experiment, "beta-2")
    assert matching("attributes.run_name = 'alpha-1'") == ["alpha-1"]
    assert matching("run_name LIKE '%-2'") == ["beta-2"]
    assert matching("`Run name` != 'alpha-1'") == ["beta-2"]


def test_run_name_tag_filters_compare_the_run_name(experiment):
    make_run(experiment, "alpha-1")
    make_run(experiment, "beta-2")
    assert matching("tags.mlflow.runName = 'alpha-1'") == ["alpha-1"]
    assert matching("tags.`mlflow.runName` ILIKE 'BETA%'") == ["beta-2"]
    assert matching("tags.mlflow.runName != 'alpha-1'") == ["beta-2"]


def test_run_name_tag_is_null_means_no_name(experiment):
    make_run(experiment, "")
    make_run(experiment, "named")
    assert matching("tags.mlflow.runName IS NULL") == [""]
    assert matching("tags.mlflow.runName IS NOT NULL") == ["named"]


def test_run_id_filters(experiment):
    a, b, c = make_run(experiment, "a"), make_run(experiment, "b"), make_run(experiment, "c")
    assert matching(f"attributes.run_id = '{a.pk}'") == ["a"]
    assert matching(f"run_id IN ('{a.pk}', '{c.pk}', 'nope')") == ["a", "c"]
    assert matching(f"run_id NOT IN ('{a.pk}', '{c.pk}')") == ["b"]
    assert matching(f"run_id LIKE '{b.pk[:6]}%'") == ["b"]


def test_string_attribute_filters(experiment):
    make_run(experiment, "done", status="FINISHED", user_id="alice", artifact_uri="s3://bucket/a")
    make_run(experiment, "failed", status="FAILED", user_id="bob", artifact_uri="file:///tmp/b")
    assert matching("attributes.status = 'FINISHED'") == ["done"]
    assert matching("status != 'FINISHED'") == ["failed"]
    assert matching("attributes.status LIKE 'F%ED'") == ["done", "failed"]
    assert matching("user_id ILIKE 'ALI%'") == ["done"]
    assert matching("artifact_uri LIKE 's3://%'") == ["done"]


@pytest.fixture
def timed(experiment):
    make_run(experiment, "t10", start_time=10, end_time=20)
    make_run(experiment, "t20", start_time=20, end_time=None)
    make_run(experiment, "t30", start_time=30, end_time=40)


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("start_time = 20", ["t20"]),
        ("start_time != 20", ["t10", "t30"]),
        ("start_time < 20", ["t10"]),
        ("start_time <= 20", ["t10", "t20"]),
        ("start_time > 20", ["t30"]),
        ("start_time >= 20", ["t20", "t30"]),
        ("start_time > 19.5", ["t20", "t30"]),
        ("start_time >= 19.5", ["t20", "t30"]),
        ("start_time < 20.5", ["t10", "t20"]),
        ("start_time <= 20.5", ["t10", "t20"]),
        ("start_time < 20.0", ["t10"]),
        ("start_time = 20.0", ["t20"]),
        ("start_time = 20.5", []),
        ("start_time != 20.5", ["t10", "t20", "t30"]),
        ("start_time >= 2e1", ["t20", "t30"]),
        ("created > 15", ["t20", "t30"]),
        ("attributes.start_time > -5", ["t10", "t20", "t30"]),
    ],
)
def test_start_time_comparisons_are_exact(timed, filter_string, expected):
    assert matching(filter_string) == expected


def test_null_end_time_matches_nothing_not_even_not_equal(timed):
    assert matching("end_time != 20") == ["t30"]
    assert matching("end_time < 100") == ["t10", "t30"]


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("start_time > 1e30", []),
        ("start_time < 1e30", ["t10", "t20", "t30"]),
        ("start_time > -99999999999999999999999", ["t10", "t20", "t30"]),
        ("start_time = 99999999999999999999999", []),
        ("start_time != 99999999999999999999999", ["t10", "t20", "t30"]),
        ("start_time <= -1e999", []),
        ("start_time < 1e999", ["t10", "t20", "t30"]),
        (f"start_time > {'9' * 400}", []),
        ("start_time >= 9223372036854775807", []),
        ("start_time <= 9223372036854775807", ["t10", "t20", "t30"]),
    ],
)
def test_numbers_beyond_64_bits_do_not_break_queries(timed, filter_string, expected):
    assert matching(filter_string) == expected


# ---------------------------------------------------------------- datasets


@pytest.fixture
def fed(experiment):
    train = make_run(experiment, "train-only")
    add_input(train, "iris", digest="aaa", context="training")
    both = make_run(experiment, "both")
    add_input(both, "iris", digest="aaa", context="training")
    add_input(both, "wine", digest="bbb", context="eval")
    make_run(experiment, "none")


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("datasets.name = 'wine'", ["both"]),
        ("datasets.name != 'iris'", ["both"]),
        ("datasets.name IN ('iris', 'x')", ["both", "train-only"]),
        ("datasets.name NOT IN ('iris')", ["both"]),
        ("datasets.name LIKE 'w%'", ["both"]),
        ("dataset.digest = 'aaa'", ["both", "train-only"]),
        ("datasets.digest ILIKE 'BB%'", ["both"]),
        ("datasets.context = 'training'", ["both", "train-only"]),
        ("datasets.context = 'eval'", ["both"]),
        ("datasets.context IN ('eval', 'test')", ["both"]),
        ("datasets.context LIKE 'train%' AND datasets.name = 'wine'", ["both"]),
    ],
)
def test_dataset_filters_match_runs_with_a_matching_input(fed, filter_string, expected):
    assert matching(filter_string) == expected


def test_a_run_matching_through_several_inputs_is_listed_once(fed):
    assert names("datasets.digest LIKE '%'") .count("both") == 1


# ---------------------------------------------------------------- shape of the query


def test_empty_filters_keep_every_run(configured):
    for filter_string in (None, "", "  "):
        assert matching(filter_string) == ["adam", "bare", "sgd"]


def test_search_is_a_single_query(configured, django_assert_num_queries):
    queryset = search.apply_run_order(
        search.apply_run_filter(
            Run.objects.all(),
            "params.optimizer LIKE '%' AND tags.team IS NOT NULL AND metrics.m != 1 AND datasets.name != 'x' "
            "AND start_time >= 0 AND run_name != 'z'",
        ),
        ["metrics.m DESC", "params.lr", "tags.team DESC", "end_time"],
    )
    with django_assert_num_queries(1):
        list(queryset[:10])


def test_filters_never_repeat_a_run(experiment):
    run = make_run(experiment, "r", metrics={"a": 1, "b": 2}, params={"p": "x", "q": "x"}, tags={"t": "x", "u": "y"})
    for name in ("d1", "d2", "d3"):
        add_input(run, name)
    filter_string = "metrics.a > 0 AND params.p LIKE '%' AND tags.t != 'z' AND datasets.name != 'zz'"
    order_by = ["metrics.a", "params.p", "tags.u DESC"]
    assert names(filter_string, order_by) == ["r"]


# ---------------------------------------------------------------- order


def test_default_order_is_newest_start_time_then_run_id(experiment):
    make_run(experiment, "old", start_time=1)
    tied = sorted([make_run(experiment, f"tie-{i}", start_time=5) for i in range(3)], key=lambda r: r.pk)
    make_run(experiment, "new", start_time=9)
    assert names() == ["new", *[r.name for r in tied], "old"]


def test_order_by_start_time_ascending(experiment):
    make_run(experiment, "b", start_time=2)
    make_run(experiment, "a", start_time=1)
    assert names(order_by=["attributes.start_time ASC"]) == ["a", "b"]
    assert names(order_by=["start_time DESC"]) == ["b", "a"]


@pytest.fixture
def ranked(experiment):
    make_run(experiment, "missing", start_time=5)
    make_run(experiment, "nan", start_time=4, metrics={"acc": float("nan")})
    make_run(experiment, "low", start_time=3, metrics={"acc": -1.5})
    make_run(experiment, "high", start_time=2, metrics={"acc": 0.9})
    make_run(experiment, "inf", start_time=1, metrics={"acc": float("inf")})


def test_order_by_metric_descending_puts_nan_then_missing_last(ranked):
    assert names(order_by=["metrics.acc DESC"]) == ["inf", "high", "low", "nan", "missing"]


def test_order_by_metric_ascending_puts_nan_then_missing_last(ranked):
    assert names(order_by=["metrics.acc"]) == ["low", "high", "inf", "nan", "missing"]


def test_order_by_metric_keeps_filters(ranked):
    assert names("metrics.acc > 0", ["metrics.acc ASC"]) == ["high", "inf"]


def test_order_by_param_and_tag_put_missing_values_last_both_ways(experiment):
    make_run(experiment, "none", start_time=9)
    make_run(experiment, "a", start_time=1, params={"p": "a"}, tags={"t": "y"})
    make_run(experiment, "b", start_time=2, params={"p": "b"}, tags={"t": "x"})
    assert names(order_by=["params.p"]) == ["a", "b", "none"]
    assert names(order_by=["params.p DESC"]) == ["b", "a", "none"]
    assert names(order_by=["tags.t ASC"]) == ["b", "a", "none"]
    assert names(order_by=["tags.t DESC"]) == ["a", "b", "none"]


def test_order_by_attributes(experiment):
    make_run(experiment, "b", start_time=1, status="FINISHED", end_time=5)
    make_run(experiment, "a", start_time=2, status="RUNNING", end_time=None)
    make_run(experiment, "c", start_time=3, status="FAILED", end_time=7)
    assert names(order_by=["run_name"]) == ["a", "b", "c"]
    assert names(order_by=["attributes.run_name DESC"]) == ["c", "b", "a"]
    assert names(order_by=["tags.mlflow.runName DESC"]) == ["c", "b", "a"]
    assert names(order_by=["status"]) == ["c", "b", "a"]
    assert names(order_by=["end_time"]) == ["b", "c", "a"]
    assert names(order_by=["end_time DESC"]) == ["c", "b", "a"]


def test_order_by_run_id(experiment):
    runs = [make_run(experiment, str(i)) for i in range(4)]
    assert names(order_by=["run_id"]) == [r.name for r in sorted(runs, key=lambda r: r.pk)]
    assert names(order_by=["run_id DESC"]) == [r.name for r in sorted(runs, key=lambda r: r.pk, reverse=True)]


def test_order_by_several_keys(experiment):
    make_run(experiment, "a2", params={"g": "a"}, metrics={"m": 2})
    make_run(experiment, "a1", params={"g": "a"}, metrics={"m": 1})
    make_run(experiment, "b3", params={"g": "b"}, metrics={"m": 3})
    assert names(order_by=["params.g DESC", "metrics.m ASC"]) == ["b3", "a1", "a2"]
    assert names(order_by=["params.g", "metrics.m DESC"]) == ["a2", "a1", "b3"]


def test_offset_pages_visit_every_run_exactly_once(experiment):
    rng = random.Random(3)
    for i in range(40):
        value = rng.choice([0.1, 0.2, float("nan")]) if i % 5 else None
        make_run(experiment, f"r{i}", start_time=rng.choice([1, 2]), metrics={} if value is None else {"m": value})
    queryset = search.apply_run_order(Run.objects.all(), ["metrics.m DESC"])
    seen, token = [], None
    while True:
        offset = search.decode_page_token(token)
        rows = list(queryset[offset : offset + 7 + 1])
        seen.extend(run.name for run in rows[:7])
        if len(rows) <= 7:
            break
        token = search.encode_page_token(offset + 7)
    assert len(seen) == 40
    assert set(seen) == {f"r{i}" for i in range(40)}


# ---------------------------------------------------------------- experiments


def experiment_names(filter_string=None, order_by=None):
    # The migrations create the Default experiment; these tests are about their own.
    mine = Experiment.objects.exclude(pk=Experiment.DEFAULT_ID)
    queryset = search.apply_experiment_order(search.apply_experiment_filter(mine, filter_string), order_by)
    return [e.name for e in queryset]


@pytest.fixture
def projects():
    return [
        make_experiment("Vision", creation_time=10, last_update_time=50, tags={"team": "cv", "prod": "yes"}),
        make_experiment("vision-2", creation_time=20, last_update_time=40, tags={"team": "CV"}),
        make_experiment("nlp", creation_time=30, last_update_time=30),
    ]


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("name = 'nlp'", ["nlp"]),
        ("attributes.name != 'nlp'", ["Vision", "vision-2"]),
        ("name LIKE 'vision%'", ["vision-2"]),
        ("attribute.name ILIKE 'vision%'", ["Vision", "vision-2"]),
        ("creation_time > 10", ["nlp", "vision-2"]),
        ("creation_time <= 20 AND last_update_time < 50", ["vision-2"]),
        ("last_update_time = 30", ["nlp"]),
        ("tags.team = 'cv'", ["Vision"]),
        ("tags.team != 'cv'", ["vision-2"]),
        ("tags.team ILIKE 'cv'", ["Vision", "vision-2"]),
        ("tags.team LIKE 'C%'", ["vision-2"]),
        ("tags.prod IS NULL", ["nlp", "vision-2"]),
        ("tag.prod IS NOT NULL", ["Vision"]),
        ("tags.`team` = 'CV' AND name LIKE '%2'", ["vision-2"]),
        ("", ["Vision", "nlp", "vision-2"]),
    ],
)
def test_experiment_filters(projects, filter_string, expected):
    assert sorted(experiment_names(filter_string)) == sorted(expected)


def test_experiment_id_filters(projects):
    vision, vision2, nlp = projects
    assert experiment_names(f"experiment_id = '{nlp.pk}'") == ["nlp"]
    assert sorted(experiment_names(f"experiment_id != '{nlp.pk}'")) == ["Vision", "vision-2"]
    assert sorted(experiment_names(f"experiment_id IN ('{vision.pk}', '{nlp.pk}', '99999999999999999999')")) == [
        "Vision",
        "nlp",
    ]
    assert experiment_names(f"experiment_id NOT IN ('{vision.pk}', '{nlp.pk}')") == ["vision-2"]


def test_experiment_ids_must_be_integers(projects):
    with pytest.raises(InvalidParameter) as excinfo:
        experiment_names("name = 'x' AND experiment_id IN ('1', 'abc')")
    assert excinfo.value.message.endswith("invalid experiment id 'abc' at position 15")


def test_experiment_default_order_is_newest_first(projects):
    assert experiment_names() == ["nlp", "vision-2", "Vision"]


def test_experiment_order_by_each_key(projects):
    assert experiment_names(order_by=["name"]) == ["Vision", "nlp", "vision-2"]
    assert experiment_names(order_by=["last_update_time ASC"]) == ["nlp", "vision-2", "Vision"]
    assert experiment_names(order_by=["creation_time"]) == ["Vision", "vision-2", "nlp"]
    assert experiment_names(order_by=["experiment_id DESC"]) == ["nlp", "vision-2", "Vision"]


def test_experiment_ties_break_on_newest_id_as_in_mlflow():
    first = make_experiment("a", creation_time=5)
    second = make_experiment("b", creation_time=5)
    assert experiment_names(order_by=["creation_time"]) == [second.name, first.name]
    assert experiment_names() == [first.name, second.name]


# ---------------------------------------------------------------- fuzzing against the database

RUN_FIELDS = [
    "metrics.m", "params.p", "tags.t", "attributes.status", "run_id", "start_time", "end_time", "datasets.name",
    "datasets.context", "datasets.digest", "tags.mlflow.runName", "run_name", "user_id", "`Run name`", "created",
]
EXPERIMENT_FIELDS = ["name", "experiment_id", "creation_time", "last_update_time", "tags.team", "attribute.name"]
COMPARATORS = ["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
VALUES = [
    "'x'", "'%'", "'_%\\'", "'ä%'", "'a''b'", "1", "-2.5", "1e999", "-1e999", "99999999999999999999999", "0.5",
    "('a', 'b')", "(1)", "('1')", "('1', '99999999999999999999')", "''", "'%%__'",
]


def random_filter(rng: random.Random, fields: list[str]) -> str:
    clauses = []
    for _ in range(rng.randrange(1, 4)):
        comparator = rng.choice(COMPARATORS)
        value = "" if "NULL" in comparator else rng.choice(VALUES)
        clauses.append(f"{rng.choice(fields)} {comparator} {value}")
    return " AND ".join(clauses)


def test_random_filters_either_run_or_raise_invalid_parameter(configured, fed, timed):
    rng = random.Random(11)
    executed = 0
    for _ in range(1500):
        for apply, model, fields in (
            (search.apply_run_filter, Run, RUN_FIELDS),
            (search.apply_experiment_filter, Experiment, EXPERIMENT_FIELDS),
        ):
            try:
                queryset = apply(model.objects.all(), random_filter(rng, fields))
            except InvalidParameter:
                continue
            list(queryset)
            executed += 1
    assert executed > 100  # about 1 in 20 random filters is well-typed


def test_random_orderings_either_run_or_raise_invalid_parameter(configured, ranked):
    rng = random.Random(12)
    for _ in range(200):
        for apply, model, fields in (
            (search.apply_run_order, Run, RUN_FIELDS),
            (search.apply_experiment_order, Experiment, EXPERIMENT_FIELDS),
        ):
            directions = ["", "ASC", "DESC", "desc"]
            order_by = [f"{rng.choice(fields)} {rng.choice(directions)}" for _ in range(rng.randrange(1, 4))]
            try:
                queryset = apply(model.objects.all(), order_by)
            except InvalidParameter:
                continue
            list(queryset)


def test_database_vendor_is_supported():
    assert connection.vendor in ("sqlite", "postgresql")
