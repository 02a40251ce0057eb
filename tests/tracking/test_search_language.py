"""The search language itself: parsing filters and order_by, page tokens, max_results, and
the LIKE translation. Queries against a database are in test_search_queries.py."""

import base64
import json
import random
import re

import pytest
from mlflow.utils.search_utils import SearchUtils

from portal.errors import InvalidParameter
from tests.tracking.helpers import regex_shape
from tracking import search
from tracking.models import Experiment, Run
from tracking.search import (
    LIST_COMPARATORS,
    NULL_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Comparison,
    OrderKey,
    Target,
    experiment_target,
    parse_filter,
    parse_order_by,
    run_target,
)


def parse(filter_string):
    return parse_filter(filter_string, run_target)


def one(filter_string):
    [comparison] = parse(filter_string)
    return comparison.kind, comparison.key, comparison.comparator, comparison.value


def error(filter_string, resolve=run_target):
    with pytest.raises(InvalidParameter) as excinfo:
        parse_filter(filter_string, resolve)
    return excinfo.value.message


# ---------------------------------------------------------------- empty filters


@pytest.mark.parametrize("filter_string", [None, "", "   ", "\n\t"])
def test_empty_filter_has_no_clauses(filter_string):
    assert parse(filter_string) == []


# ---------------------------------------------------------------- each entity and comparator


@pytest.mark.parametrize("comparator", ["=", "!=", "<", "<=", ">", ">="])
def test_metric_takes_every_numeric_comparator(comparator):
    assert one(f"metrics.m0 {comparator} 1.5") == ("metric", "m0", comparator, 1.5)


@pytest.mark.parametrize("comparator", ["LIKE", "ILIKE", "IN", "IS NULL"])
def test_metric_rejects_string_comparators(comparator):
    message = error(f"metrics.m0 {comparator} 'x'")
    assert f"comparator '{comparator}' is not supported for 'metrics.m0'" in message
    assert "at position 11" in message


@pytest.mark.parametrize("entity", ["params", "tags"])
@pytest.mark.parametrize("comparator", ["=", "!=", "LIKE", "ILIKE"])
def test_params_and_tags_take_string_comparators(entity, comparator):
    kind = {"params": "param", "tags": "tag"}[entity]
    assert one(f"{entity}.k {comparator} 'v%'") == (kind, "k", comparator, "v%")


@pytest.mark.parametrize("entity", ["params", "tags"])
def test_params_and_tags_take_is_null_and_is_not_null(entity):
    assert one(f"{entity}.k IS NULL")[2:] == ("IS NULL", None)
    assert one(f"{entity}.k is not null")[2:] == ("IS NOT NULL", None)
    assert one(f"{entity}.k  IS\tNOT   NULL")[2:] == ("IS NOT NULL", None)


@pytest.mark.parametrize("entity", ["params", "tags"])
@pytest.mark.parametrize("comparator", ["<", ">=", "IN", "NOT IN"])
def test_params_and_tags_reject_other_comparators(entity, comparator):
    value = "('a')" if "IN" in comparator else "'a'"
    assert "is not supported" in error(f"{entity}.k {comparator} {value}")


@pytest.mark.parametrize("attribute", ["run_id", "run_name", "status", "user_id", "artifact_uri"])
@pytest.mark.parametrize("comparator", ["=", "!=", "LIKE", "ILIKE"])
def test_string_attributes_take_string_comparators(attribute, comparator):
    assert one(f"attributes.{attribute} {comparator} 'x'") == ("attribute", attribute, comparator, "x")


@pytest.mark.parametrize("attribute", ["start_time", "end_time"])
@pytest.mark.parametrize("comparator", ["=", "!=", "<", "<=", ">", ">="])
def test_time_attributes_take_numeric_comparators(attribute, comparator):
    assert one(f"attributes.{attribute} {comparator} 1700000000000") == (
        "attribute",
        attribute,
        comparator,
        1700000000000,
    )


def test_time_attributes_reject_strings_and_like():
    assert "expected a number for 'start_time'" in error("start_time = '5'")
    assert "comparator 'LIKE' is not supported" in error("start_time LIKE 5")


def test_run_id_takes_in_and_not_in_lists():
    assert one("attributes.run_id IN ('a', \"b\")") == ("attribute", "run_id", "IN", ("a", "b"))
    assert one("run_id NOT IN ('a')") == ("attribute", "run_id", "NOT IN", ("a",))
    assert one("run_id in ('a',)") == ("attribute", "run_id", "IN", ("a",))
    assert one("run_id not  in('a','b' , 'c')")[3] == ("a", "b", "c")


@pytest.mark.parametrize("attribute", ["status", "run_name", "user_id", "artifact_uri", "start_time"])
def test_only_run_id_takes_lists(attribute):
    assert "comparator 'IN' is not supported" in error(f"attributes.{attribute} IN ('a')")


def test_lifecycle_stage_is_not_searchable_as_in_mlflow():
    assert "unknown run attribute 'lifecycle_stage'" in error("attributes.lifecycle_stage = 'active'")


@pytest.mark.parametrize("key", ["name", "digest", "context"])
@pytest.mark.parametrize("comparator", ["=", "!=", "LIKE", "ILIKE"])
def test_datasets_take_string_comparators(key, comparator):
    assert one(f"datasets.{key} {comparator} 'x'") == ("dataset", key, comparator, "x")


def test_datasets_take_lists():
    assert one("datasets.name IN ('a', 'b')") == ("dataset", "name", "IN", ("a", "b"))
    assert one("dataset.digest NOT IN ('a')") == ("dataset", "digest", "NOT IN", ("a",))


def test_unknown_dataset_field_is_rejected():
    assert "unknown dataset field 'source'" in error("datasets.source = 'x'")


# ---------------------------------------------------------------- names and aliases


@pytest.mark.parametrize(
    "entity, kind",
    [
        ("metric", "metric"),
        ("metrics", "metric"),
        ("param", "param"),
        ("params", "param"),
        ("parameter", "param"),
        ("parameters", "param"),
        ("tag", "tag"),
        ("tags", "tag"),
        ("dataset", "dataset"),
        ("datasets", "dataset"),
    ],
)
def test_entity_aliases_are_those_mlflow_accepts(entity, kind):
    key, value = ("name", "'x'") if kind == "dataset" else ("k", "1" if kind == "metric" else "'x'")
    assert one(f"{entity}.{key} = {value}")[:2] == (kind, key)


@pytest.mark.parametrize("entity", ["attribute", "attributes", "attr", "run", "`attributes`", '"attr"'])
def test_attribute_aliases_are_those_mlflow_accepts(entity):
    assert one(f"{entity}.status = 'FINISHED'") == ("attribute", "status", "=", "FINISHED")


def test_bare_names_are_attributes():
    assert one("status = 'FINISHED'") == ("attribute", "status", "=", "FINISHED")


@pytest.mark.parametrize("alias", ["created", "Created"])
def test_created_is_start_time(alias):
    assert one(f"{alias} > 5")[:2] == ("attribute", "start_time")


@pytest.mark.parametrize("alias", ["`run name`", '"Run name"', "attributes.`Run Name`"])
def test_run_name_aliases(alias):
    assert one(f"{alias} = 'x'")[:2] == ("attribute", "run_name")


def test_unknown_entity_is_rejected_with_its_position():
    message = error("metrics.m0 > 1 AND metricz.m1 > 1")
    assert message.startswith("Invalid filter 'metrics.m0 > 1 AND metricz.m1 > 1': unknown entity 'metricz'")
    assert message.endswith("at position 19")


def test_unknown_attribute_is_rejected():
    assert "unknown run attribute 'colour'" in error("colour = 'red'")


# ---------------------------------------------------------------- quoting


def test_backtick_quoted_keys_may_hold_any_character():
    assert one("metrics.`my key/with-odd.chars` > 0")[1] == "my key/with-odd.chars"


def test_double_and_single_quoted_keys_work_as_in_mlflow():
    assert one('params."my key" = \'x\'')[1] == "my key"
    assert one("tags.'my key' = 'x'")[1] == "my key"


def test_bare_keys_keep_their_dots():
    assert one("tags.mlflow.runName = 'x'")[:2] == ("tag", "mlflow.runName")
    assert one("metrics.a.b = 1")[1] == "a.b"


def test_bare_keys_may_hold_dashes_slashes_and_colons():
    assert one("metrics.train/loss-v2:avg < 1")[1] == "train/loss-v2:avg"


def test_unicode_keys_need_no_quotes():
    assert one("metrics.précision >= 0.9")[1] == "précision"


def test_values_take_single_or_double_quotes():
    assert one("params.p = 'x'")[3] == "x"
    assert one('params.p = "x"')[3] == "x"


def test_a_doubled_quote_stands_for_one_quote():
    assert one("params.p = 'it''s'")[3] == "it's"
    assert one('params.p = "say ""hi"""')[3] == 'say "hi"'
    assert one("params.`a``b` = 'x'")[1] == "a`b"


def test_the_other_quote_needs_no_escaping():
    assert one("params.p = \"it's\"")[3] == "it's"
    assert one("params.p = 'say \"hi\"'")[3] == 'say "hi"'


def test_backslashes_are_ordinary_characters():
    assert one(r"params.dir = 'C:\data\'")[3] == "C:\\data\\"
    assert one(r"params.p = 'a\\b'")[3] == "a\\\\b"


def test_empty_strings_are_values():
    assert one("params.p = ''")[3] == ""


def test_an_empty_quoted_key_is_rejected():
    assert "empty key" in error("params.`` = 'x'")


def test_unterminated_quotes_are_reported_where_they_start():
    assert error("params.p = 'abc").endswith("unterminated ' quote at position 11")
    assert error("params.`p = 'abc'").endswith("unterminated ` quote at position 7")


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "literal, value",
    [
        ("1", 1),
        ("-1", -1),
        ("+3", 3),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("-1.5E-3", -0.0015),
        ("0", 0),
        ("12345678901234567890", 12345678901234567890),
    ],
)
def test_number_literals(literal, value):
    parsed = one(f"start_time > {literal}")[3]
    assert parsed == value
    assert type(parsed) is type(value)


def test_very_long_integers_are_read_as_floats():
    assert one(f"start_time > {'9' * 5000}")[3] == float("inf")


@pytest.mark.parametrize("literal", ["1_000", "0x10", "1e", "1.2.3", "1abc", "3e+"])
def test_malformed_numbers_are_rejected(literal):
    assert f"invalid number '{literal}'" in error(f"metrics.m = {literal}")


@pytest.mark.parametrize("literal", ["inf", "nan", "- 1", "x", "`1`", "true", "NULL"])
def test_things_that_are_not_values_are_rejected(literal):
    assert "expected a quoted string or a number" in error(f"metrics.m = {literal}")


def test_non_ascii_digits_are_not_numbers():
    assert "expected a quoted string or a number" in error("metrics.m = ٣")


def test_metric_values_must_be_numbers():
    assert error("metrics.m = '1'").endswith("expected a number for 'metrics.m', found '1' at position 12")


def test_param_values_must_be_quoted():
    assert error("params.p = 1").endswith("expected a quoted string for 'params.p', found 1 at position 11")


def test_run_id_lists_must_hold_strings():
    assert "expected a quoted string for 'run_id'" in error("run_id IN ('a', 1)")


# ---------------------------------------------------------------- conjunctions and keywords


def test_and_is_case_insensitive():
    comparisons = parse("metrics.a = 1 and metrics.b = 2 AnD metrics.c = 3 AND metrics.d=4")
    assert [c.key for c in comparisons] == ["a", "b", "c", "d"]


def test_keywords_are_case_insensitive():
    assert one("params.p like 'a%'")[2] == "LIKE"
    assert one("params.p iLike 'a%'")[2] == "ILIKE"
    assert one("run_id Not In ('a')")[2] == "NOT IN"


def test_whitespace_is_optional_around_symbols():
    assert one("metrics.m>=-1")[2:] == (">=", -1)
    assert one("params.p!='x'")[2:] == ("!=", "x")


def test_comparison_records_where_the_clause_starts():
    assert [c.position for c in parse("  metrics.a = 1 AND params.b = 'x'")] == [2, 20]


def test_or_is_rejected_with_a_clear_message():
    message = error("metrics.m0 > 1 OR metrics.m1 > 1")
    assert "OR is not supported" in message
    assert message.endswith("at position 15")


def test_doubled_comparator_points_at_the_second_symbol():
    message = error("metrics.m0 >> 1")
    assert message.startswith("Invalid filter 'metrics.m0 >> 1': ")
    assert "'>' at position 12" in message


@pytest.mark.parametrize(
    "filter_string, problem",
    [
        ("metrics.m = 1 AND", "expected a clause after AND, found end of filter at position 17"),
        ("metrics.m = 1 AND AND metrics.n = 2", "expected a field name, found 'AND' at position 18"),
        ("metrics.m = 1 metrics.n = 2", "expected AND or the end of the filter, found 'metrics' at position 14"),
        ("metrics.m = 1;", "expected AND or the end of the filter, found ';' at position 13"),
        ("metrics.m = 1 -- comment", "found '-' at position 14"),
        ("(metrics.m = 1)", "expected a field name, found '(' at position 0"),
        ("NOT metrics.m = 1", "expected a field name, found 'NOT' at position 0"),
        ("1 = metrics.m", "expected a field name, found '1' at position 0"),
        ("'x' = params.p", "expected a field name, found ''x'' at position 0"),
        ("metrics.m", "expected a comparator after 'metrics.m', found end of filter at position 9"),
        ("metrics.m 1", "expected a comparator after 'metrics.m', found '1' at position 10"),
        ("metrics.m == 1", "found '=' at position 11"),
        ("metrics.m <> 1", "found '>' at position 11"),
        ("metrics.m =", "expected a quoted string or a number, found end of filter at position 11"),
        ("params.p NOT LIKE 'x'", "expected IN after NOT"),
        ("params.p IS 'x'", "expected NULL, found ''x''"),
        ("params.p IS NOT", "expected NULL, found end of filter"),
        ("params.p = 'a' 'b'", "expected AND or the end of the filter, found ''b'' at position 15"),
        ("metrics. m = 1", "expected a key after 'metrics.', found ' ' at position 8"),
        ("metrics .m = 1", "unknown run attribute 'metrics'"),
        ("metrics.`m.x`.y > 1", "expected a comparator after 'metrics.`m.x`', found '.' at position 13"),
        ("run_id IN 'a'", "expected '(' to open a list of values, found ''a'' at position 10"),
        ("run_id IN ()", "empty list of values at position 10"),
        ("run_id IN ('a' 'b')", "expected ',' or ')' in the list of values, found ''b'' at position 15"),
        ("run_id IN ('a',", "expected a quoted string or a number, found end of filter"),
        ("run_id IN (,)", "expected a quoted string or a number, found ',' at position 11"),
        ("metric.m0 = 1 && metric.m1 = 2", "found '&' at position 14"),
    ],
)
def test_malformed_filters_name_the_problem_and_its_position(filter_string, problem):
    message = error(filter_string)
    assert message.startswith(f"Invalid filter '{filter_string}': ")
    assert problem in message


def test_long_filters_are_shortened_in_messages():
    message = error("params.p = '" + "x" * 1000)
    assert len(message) < 400


def test_nul_characters_are_rejected():
    assert "NUL" in error("params.p = 'a\x00b'")


def test_text_that_is_not_unicode_is_rejected():
    assert "not valid Unicode" in error("params.p = '\ud800'")


@pytest.mark.parametrize("value", [1, b"metrics.m = 1", ["metrics.m = 1"]])
def test_filters_must_be_strings(value):
    assert "expected a string" in error(value)


def test_too_many_clauses_are_rejected():
    clauses = " AND ".join(f"metrics.m{i} > 0" for i in range(search.MAX_CLAUSES))
    assert len(parse(clauses)) == search.MAX_CLAUSES
    assert f"too many clauses (at most {search.MAX_CLAUSES})" in error(clauses + " AND metrics.x > 0")


def test_too_many_list_values_are_rejected():
    ids = ", ".join(f"'{i}'" for i in range(search.MAX_LIST_VALUES + 1))
    assert "too many list values" in error(f"run_id IN ({ids})")


# ---------------------------------------------------------------- agreement with mlflow's own parser


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.m0 > -1e3",
        "metrics.`m 0` <= 2.5 AND params.p = 'x'",
        "params.\"my key\" != \"x\" and tags.t LIKE 'a%'",
        "tags.t ILIKE '%A_' AND tags.u IS NULL AND params.v IS NOT NULL",
        "attributes.run_id IN ('a', 'b') AND attribute.status != 'FAILED'",
        "run_name = 'x' AND start_time >= 5 AND end_time < 1.5",
        "datasets.name IN ('a') AND dataset.context = 'train' AND datasets.digest LIKE 'ab%'",
        "tags.mlflow.runName = 'x' AND metrics.a.b = 1",
    ],
)
def test_parses_what_mlflow_parses_the_same_way(filter_string):
    ours = [(c.kind, c.key, c.comparator, c.value) for c in parse(filter_string)]
    kinds = {"parameter": "param"}
    theirs = []
    for clause in SearchUtils.parse_search_filter(filter_string):
        value = clause["value"]
        if clause["type"] == "metric":
            value = float(value)
        theirs.append((kinds.get(clause["type"], clause["type"]), clause["key"], clause["comparator"].upper(), value))
    normalized = [(k, key, op, float(v) if k == "metric" else v) for k, key, op, v in ours]
    assert normalized == theirs


# ---------------------------------------------------------------- experiments


def test_experiment_filters_take_name_id_times_and_tags():
    comparisons = parse_filter(
        "name LIKE 'a%' AND attributes.name != 'b' AND experiment_id IN ('1', '2') AND creation_time > 5 "
        "AND last_update_time <= 9 AND tags.team = 'x' AND tag.t IS NULL",
        experiment_target,
    )
    assert [(c.kind, c.key, c.comparator) for c in comparisons] == [
        ("attribute", "name", "LIKE"),
        ("attribute", "name", "!="),
        ("attribute", "experiment_id", "IN"),
        ("attribute", "creation_time", ">"),
        ("attribute", "last_update_time", "<="),
        ("tag", "team", "="),
        ("tag", "t", "IS NULL"),
    ]


def test_experiment_times_must_be_integers_as_in_mlflow():
    assert "expected an integer for 'creation_time', found 1.5" in error("creation_time > 1.5", experiment_target)


def test_experiment_ids_must_be_quoted_as_in_mlflow():
    assert "expected a quoted string for 'experiment_id'" in error("experiment_id = 1", experiment_target)


def test_experiment_names_take_no_lists_or_ranges():
    assert "comparator 'IN' is not supported for 'name'" in error("name IN ('a')", experiment_target)
    assert "comparator '>' is not supported for 'name'" in error("name > 'a'", experiment_target)


def test_experiment_filters_know_no_metrics_or_params():
    assert "unknown entity 'params'" in error("params.p = 'x'", experiment_target)


# ---------------------------------------------------------------- reuse by other searches


def registry_target(entity, key):
    """What a model-version search would pass (the registry's own resolver)."""
    if entity is None and key == "name":
        return Target("attribute", "name", STRING_COMPARATORS)
    if entity is None and key == "run_id":
        return Target("attribute", "run_id", frozenset({"=", "!="}) | LIST_COMPARATORS)
    if entity is None and key == "version_number":
        return Target("attribute", "version_number", NUMERIC_COMPARATORS | LIST_COMPARATORS, "integer")
    if entity in ("tag", "tags"):
        return Target("tag", key, STRING_COMPARATORS | NULL_COMPARATORS)
    raise LookupError(f"unknown model version field '{key}'")


def test_a_custom_resolver_parses_registry_filters():
    assert parse_filter("name LIKE 'x%' AND tags.`mlflow.prompt.is_prompt` != 'true'", registry_target) == [
        Comparison("attribute", "name", "LIKE", "x%", 0),
        Comparison("tag", "mlflow.prompt.is_prompt", "!=", "true", 19),
    ]
    assert parse_filter("run_id = 'abc'", registry_target)[0].value == "abc"
    assert parse_filter("version_number > 3", registry_target)[0].value == 3
    assert parse_filter("version_number IN (1, 2)", registry_target)[0].value == (1, 2)


def test_a_custom_resolvers_lookup_error_becomes_the_message():
    assert error("stage = 'x'", registry_target).endswith("unknown model version field 'stage' at position 0")
    assert "expected an integer for 'version_number'" in error("version_number = 1.5", registry_target)


# ---------------------------------------------------------------- order_by


@pytest.mark.parametrize(
    "clause, expected",
    [
        ("metrics.m0 DESC", OrderKey("metric", "m0", False)),
        ("metrics.m0 desc", OrderKey("metric", "m0", False)),
        ("metrics.`my key` ASC", OrderKey("metric", "my key", True)),
        ("params.p", OrderKey("param", "p", True)),
        ("  tags.t   Asc  ", OrderKey("tag", "t", True)),
        ("attributes.start_time DESC", OrderKey("attribute", "start_time", False)),
        ("start_time", OrderKey("attribute", "start_time", True)),
        ("created DESC", OrderKey("attribute", "start_time", False)),
        ("run_name", OrderKey("attribute", "run_name", True)),
        ("attribute.run_id", OrderKey("attribute", "run_id", True)),
    ],
)
def test_order_by_clauses_parse(clause, expected):
    assert parse_order_by(clause, run_target) == expected


@pytest.mark.parametrize(
    "clause, problem",
    [
        ("", "expected a field name, found end of order_by at position 0"),
        ("metrics.m0 UP", "expected ASC, DESC or the end of the clause, found 'UP' at position 11"),
        ("metrics.m0 DESC LIMIT", "unexpected 'LIMIT' at position 16"),
        ("metrics.m0, params.p", "expected ASC, DESC or the end of the clause, found ',' at position 10"),
        ("colour", "unknown run attribute 'colour'"),
        ("metricz.m", "unknown entity 'metricz'"),
    ],
)
def test_malformed_order_by_clauses_are_rejected(clause, problem):
    with pytest.raises(InvalidParameter) as excinfo:
        parse_order_by(clause, run_target)
    assert excinfo.value.message.startswith(f"Invalid order_by clause '{clause}': ")
    assert problem in excinfo.value.message


def test_order_by_must_be_a_list_of_strings():
    with pytest.raises(InvalidParameter):
        search.apply_run_order(Run.objects.all(), "metrics.m0")
    with pytest.raises(InvalidParameter):
        search.apply_run_order(Run.objects.all(), [1])


def test_order_by_the_same_field_twice_is_rejected():
    with pytest.raises(InvalidParameter, match="duplicate fields"):
        search.apply_run_order(Run.objects.all(), ["metrics.m0", "metric.`m0` DESC"])
    with pytest.raises(InvalidParameter, match="duplicate fields"):
        search.apply_run_order(Run.objects.all(), ["run_name", "tags.mlflow.runName"])


def test_runs_cannot_be_ordered_by_datasets():
    with pytest.raises(InvalidParameter, match="cannot be ordered by datasets"):
        search.apply_run_order(Run.objects.all(), ["datasets.name"])


def test_experiments_cannot_be_ordered_by_tags():
    with pytest.raises(InvalidParameter, match="experiments can only be ordered by"):
        search.apply_experiment_order(Experiment.objects.all(), ["tags.team"])


def test_experiments_cannot_be_ordered_by_unknown_attributes():
    with pytest.raises(InvalidParameter, match="unknown experiment attribute 'colour'"):
        search.apply_experiment_order(Experiment.objects.all(), ["colour DESC"])


# ---------------------------------------------------------------- LIKE as a regular expression


@pytest.mark.parametrize(
    "pattern, value, like, ilike",
    [
        ("abc", "abc", True, True),
        ("abc", "ABC", False, True),
        ("a%", "abc", True, True),
        ("a%", "ba", False, False),
        ("%c", "abc", True, True),
        ("%b%", "abc", True, True),
        ("a_c", "abc", True, True),
        ("a_c", "ac", False, False),
        ("a_c", "abbc", False, False),
        ("%", "", True, True),
        ("", "", True, True),
        ("", "x", False, False),
        ("a%", "a\nb", True, True),
        ("a_b", "a\nb", True, True),
        ("abc", "abc\n", False, False),
        ("a.c", "abc", False, False),
        ("a.c", "a.c", True, True),
        ("a*", "aaa", False, False),
        ("[ab]", "[ab]", True, True),
        ("(x|y)", "(x|y)", True, True),
        ("$^\\d+?", "$^\\d+?", True, True),
        ("a\\%", "a\\bc", True, True),
        ("%a%a%a%b", "aaab", True, True),
        ("%a%a%a%b", "aab", False, False),
        ("%a%a", "a", False, False),
        ("ÄB%", "äbc", False, True),
    ],
)
def test_like_regex_means_what_like_means(pattern, value, like, ilike):
    assert bool(re.search(search.like_regex(pattern), value)) is like
    assert bool(re.search(search.like_regex(pattern, case_sensitive=False), value)) is ilike


@pytest.mark.parametrize("case_sensitive", [True, False])
@pytest.mark.parametrize("pattern", ["%a" * 25 + "%b", "%%%a%%%b%%%", "_%_%_%_", "a%b%c", "%", "abc"])
def test_like_regex_leaves_at_most_one_wildcard_free_to_backtrack(pattern, case_sensitive):
    # Checked on the regex's structure, not by timing a match: a plain `.*a.*a...b` takes
    # time exponential in the number of `%` on a long value, on any machine.
    shape = regex_shape(search.like_regex(pattern, case_sensitive=case_sensitive))
    assert shape.free_wildcards <= 1
    assert shape.depth <= 1


def test_a_plain_translation_of_like_would_have_a_free_wildcard_per_percent():
    # What the test above guards against, so that its check is known to see it.
    assert regex_shape(r"(?s)\A" + ".*a" * 25 + r".*b\Z").free_wildcards == 26
    assert regex_shape(r"(?s)\A(?:.*?a)*\Z").depth == 2


def test_like_regex_collapses_runs_of_percent():
    assert search.like_regex("%" * 1000 + "a" + "%" * 1000 + "b" + "%" * 1000) == search.like_regex("%a%b%")


# ---------------------------------------------------------------- page tokens


def test_page_tokens_round_trip():
    for offset in (0, 1, 1000, 10**12):
        assert search.decode_page_token(search.encode_page_token(offset)) == offset


def test_page_tokens_are_mlflows_format():
    assert search.decode_page_token(SearchUtils.create_page_token(250).decode()) == 250
    assert SearchUtils.parse_start_offset_from_page_token(search.encode_page_token(250)) == 250


@pytest.mark.parametrize("token", [None, ""])
def test_no_page_token_is_the_first_page(token):
    assert search.decode_page_token(token) == 0


def b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "abc",
        "é",
        b64(b"not json"),
        b64(b"\xff\xfe"),
        b64([1, 2]),
        b64({}),
        b64({"offset": -1}),
        b64({"offset": True}),
        b64({"offset": 1.5}),
        b64({"offset": "10"}),
        b64({"offset": None}),
        b64({"offset": 2**70}),
        b64(b"[" * 100_000),
        "A" * 5000,
        12,
    ],
)
def test_malformed_page_tokens_are_invalid_parameters(token):
    with pytest.raises(InvalidParameter, match="Invalid page token"):
        search.decode_page_token(token)


# ---------------------------------------------------------------- max_results


def test_max_results_defaults_when_missing():
    assert search.validate_max_results(None, default=1000, maximum=50000) == 1000


@pytest.mark.parametrize("value, expected", [(1, 1), (50000, 50000), ("25", 25)])
def test_max_results_accepts_positive_integers_up_to_the_maximum(value, expected):
    assert search.validate_max_results(value, default=1000, maximum=50000) == expected


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "x", "", [10]])
def test_max_results_rejects_non_positive_or_non_integers(value):
    with pytest.raises(InvalidParameter, match="It must be a positive integer"):
        search.validate_max_results(value, default=1000, maximum=50000)


def test_max_results_rejects_more_than_the_maximum():
    with pytest.raises(InvalidParameter, match="It must be at most 50000"):
        search.validate_max_results(50001, default=1000, maximum=50000)


# ---------------------------------------------------------------- fuzzing

FRAGMENTS = [
    "metrics.", "params.", "tags.", "attributes.", "datasets.", "attr.", "run.", "tag.", "m0", "p", "t",
    "name", "digest", "context", "status", "run_id", "start_time", "end_time", "run_name", "created",
    "experiment_id", "creation_time", "mlflow.runName", "`", "'", '"', "(", ")", ",", ".", " ", "  ",
    "=", "!=", "<", "<=", ">", ">=", "==", "<>", "!", "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL", "AND",
    "OR", "and", "1", "-1", "1.5", "1e3", "1e999", "9" * 40, "-", "+", "e", "%", "_", "\\", "'x'", '"y"',
    "'a%'", "`k k`", "\n", "\t", "é", "\u200b", ";", "--", "/*", "\x00", "\ud800", "SELECT", "1=1",
]
VALID = [
    "metrics.m0 > 1 AND params.p = 'x'",
    "tags.t LIKE 'a%' and attributes.run_id IN ('a', 'b')",
    "datasets.context ILIKE '%tr%' AND start_time >= 1.5 AND tags.u IS NOT NULL",
    "name LIKE 'e%' AND experiment_id NOT IN ('1') AND tags.team != 'x' AND creation_time > 0",
]


def garbage(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 12)))
    text = list(rng.choice(VALID))
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(text) + 1)
        action = rng.random()
        if action < 0.4 and text:
            del text[min(position, len(text) - 1)]
        elif action < 0.8:
            text.insert(position, rng.choice(FRAGMENTS))
        else:
            text.insert(position, chr(rng.randrange(0x20, 0x3000)))
    return "".join(text)


def test_garbage_filters_raise_only_invalid_parameter():
    rng = random.Random(20240601)
    for _ in range(3000):
        text = garbage(rng)
        for apply in (search.apply_run_filter, search.apply_experiment_filter):
            try:
                apply(Run.objects.all() if apply is search.apply_run_filter else Experiment.objects.all(), text)
            except InvalidParameter:
                pass
        for apply, model in ((search.apply_run_order, Run), (search.apply_experiment_order, Experiment)):
            try:
                apply(model.objects.all(), [text])
            except InvalidParameter:
                pass


def test_random_bytes_raise_only_invalid_parameter():
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(chr(rng.randrange(0, 0x11000)) for _ in range(rng.randrange(0, 30)))
        try:
            search.apply_run_filter(Run.objects.all(), text)
        except InvalidParameter:
            pass
        try:
            search.decode_page_token(text)
        except InvalidParameter:
            pass


def test_keywords_are_ascii_words():
    # 'ın'.upper() is 'IN' in Python; it must not read as the keyword.
    assert "expected a comparator" in error("run_id ın ('a')")
