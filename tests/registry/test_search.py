"""Registry search: MLflow filter strings, order_by and page tokens (selectors, called directly)."""

from functools import partial

import pytest

from portal.errors import InvalidParameter
from registry import selectors, services
from registry.services import _common as service_common
from registry.services import apply as service_apply
from registry.services import models as service_models
from registry.services import requests as service_requests
from registry.services import versions as service_versions
from tests.registry.conftest import make_version
from tracking.validation import now_ms


def model_names(user, **kwargs):
    return [d.model.name for d in selectors.registered_model_search_for_user(user, **kwargs).models]


def version_keys(user, **kwargs):
    return [
        (d.version.registered_model.name, d.version.version)
        for d in selectors.model_version_search_for_user(user, **kwargs).versions
    ]


# The services modules that read the clock.
SERVICE_MODULES = [service_apply, service_common, service_models, service_requests, service_versions]


def one_second_apart(monkeypatch, updates):
    """Run each update a second after the one before, on a clock the services read."""
    start = now_ms() + 1000
    for i, update in enumerate(updates):
        for module in SERVICE_MODULES:
            monkeypatch.setattr(module, "now_ms", lambda at=start + 1000 * i: at)
        update()


@pytest.fixture
def catalog(alice, model_dir_run):
    """Models churn (3 versions), churn-eu (1), fraud (1, a prompt-tagged registered model 'prompt')."""
    services.registered_model_create(actor=alice, name="churn", tags=[{"key": "team", "value": "growth"}])
    services.registered_model_create(actor=alice, name="churn-eu", tags=[{"key": "team", "value": "eu"}])
    services.registered_model_create(actor=alice, name="fraud")
    services.registered_model_create(
        actor=alice, name="prompt", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    )
    for name in ("churn", "churn", "churn", "churn-eu", "fraud"):
        make_version(alice, name, model_dir_run)
    services.model_version_tag_set(actor=alice, name="churn", version=2, key="validated", value="yes")
    services.model_version_transition_stage(actor=alice, name="churn", version=3, stage="Production")
    return model_dir_run


# ---------------------------------------------------------------- registered models


def test_no_filter_lists_every_model_by_name(alice, catalog):
    assert model_names(alice) == ["churn", "churn-eu", "fraud", "prompt"]


def test_name_equality_like_and_ilike(alice, catalog):
    services.registered_model_create(actor=alice, name="CHURN-US")
    assert model_names(alice, filter_string="name = 'churn'") == ["churn"]
    assert set(model_names(alice, filter_string="name != 'churn'")) == {"churn-eu", "fraud", "prompt", "CHURN-US"}
    assert model_names(alice, filter_string="name LIKE 'churn%'") == ["churn", "churn-eu"]  # case-sensitive
    assert set(model_names(alice, filter_string="name ILIKE 'churn%'")) == {"churn", "churn-eu", "CHURN-US"}
    assert model_names(alice, filter_string="name LIKE '_raud'") == ["fraud"]



def test_the_clients_prompt_exclusion_keeps_models_without_the_tag(alice, catalog):
    # What MlflowClient.search_registered_models sends for every search.
    f = "name ILIKE '%' AND tag.`mlflow.prompt.is_prompt` != 'true'"
    assert model_names(alice, filter_string=f) == ["churn", "churn-eu", "fraud"]
    assert model_names(alice, filter_string="tag.`mlflow.prompt.is_prompt` != 'true'") == ["churn", "churn-eu", "fraud"]


def test_tag_filters(alice, catalog):
    assert model_names(alice, filter_string="tags.team = 'growth'") == ["churn"]
    assert model_names(alice, filter_string="tags.`team` LIKE '%u'") == ["churn-eu"]
    assert model_names(alice, filter_string="tags.team != 'growth'") == ["churn-eu", "fraud", "prompt"]


def test_models_order_by_last_update_in_both_directions(alice, catalog, monkeypatch):
    # An order that is neither the names' (the tie-break) nor their reverse, nor the creation order.
    touched = ["churn-eu", "prompt", "churn", "fraud"]
    one_second_apart(
        monkeypatch, [partial(services.registered_model_update, actor=alice, name=n, description="x") for n in touched]
    )

    assert model_names(alice, order_by=["last_updated_timestamp ASC"]) == touched
    assert model_names(alice, order_by=["last_updated_timestamp DESC"]) == touched[::-1]
    assert model_names(alice, order_by=["timestamp DESC"]) == touched[::-1]


def test_order_by_and_paging_visit_every_model_once(alice, catalog):
    assert model_names(alice, order_by=["name DESC"]) == ["prompt", "fraud", "churn-eu", "churn"]
    seen, token = [], None
    while True:
        page = selectors.registered_model_search_for_user(alice, max_results=3, page_token=token)
        seen += [d.model.name for d in page.models]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["churn", "churn-eu", "fraud", "prompt"]


def test_search_results_carry_latest_versions_tags_and_aliases(alice, catalog):
    services.alias_set(actor=alice, name="churn", alias="champion", version=3)
    [data] = selectors.registered_model_search_for_user(alice, filter_string="name = 'churn'").models
    assert sorted((v.version.current_stage, v.version.version) for v in data.latest_versions) == [
        ("None", 2),
        ("Production", 3),
    ]
    assert [(a.alias, a.model_version.version) for a in data.aliases] == [("champion", 3)]


@pytest.mark.parametrize(
    "bad",
    ["name = ", "nonsense = 'x'", "name > 'a'", "name = 'a' OR name = 'b'", "tags. = 'x'", "creation_timestamp = 'x'"],
)
def test_a_malformed_model_filter_is_invalid(alice, catalog, bad):
    with pytest.raises(InvalidParameter):
        model_names(alice, filter_string=bad)


@pytest.mark.parametrize("bad", [["colour"], ["name SIDEWAYS"], ["name", "name DESC"]])
def test_a_bad_order_by_is_invalid(alice, catalog, bad):
    with pytest.raises(InvalidParameter):
        model_names(alice, order_by=bad)


@pytest.mark.parametrize("max_results", [0, -1, 1001])
def test_max_results_out_of_range_is_invalid(alice, catalog, max_results):
    with pytest.raises(InvalidParameter):
        model_names(alice, max_results=max_results)


def test_a_bad_page_token_is_invalid(alice, catalog):
    with pytest.raises(InvalidParameter):
        model_names(alice, page_token="not-a-token")


# ---------------------------------------------------------------- versions


def test_version_filters_on_name_and_run_id(alice, catalog):
    run_id = catalog.pk
    assert version_keys(alice, filter_string="name='churn'", order_by=["version_number"]) == [
        ("churn", 1),
        ("churn", 2),
        ("churn", 3),
    ]
    assert len(version_keys(alice, filter_string=f"run_id='{run_id}'")) == 5
    assert len(version_keys(alice, filter_string=f"name='fraud' AND run_id='{run_id}'")) == 1
    assert version_keys(alice, filter_string=f"run_id IN ('{run_id}', 'x') AND name = 'churn-eu'") == [("churn-eu", 1)]
    assert version_keys(alice, filter_string="run_id = 'nothing'") == []


def test_version_filters_on_version_number_tags_source_and_stage(alice, catalog):
    assert version_keys(alice, filter_string="name = 'churn' AND version_number > 1", order_by=["version_number"]) == [
        ("churn", 2),
        ("churn", 3),
    ]
    assert version_keys(alice, filter_string="tags.validated = 'yes'") == [("churn", 2)]
    assert len(version_keys(alice, filter_string="source_path LIKE 'runs:/%/model'")) == 5
    assert version_keys(alice, filter_string="current_stage = 'production'") == [("churn", 3)]


@pytest.fixture
def versions_touched(alice, catalog, monkeypatch):
    """Every version updated once, in an order that is neither the tie-break's (name, then
    newest version) nor its reverse, nor the creation order."""
    touched = [("fraud", 1), ("churn", 1), ("churn-eu", 1), ("churn", 3), ("churn", 2)]
    one_second_apart(
        monkeypatch,
        [partial(services.model_version_update, actor=alice, name=n, version=v, description="x") for n, v in touched],
    )
    return touched


def test_versions_order_by_last_update_in_both_directions(alice, versions_touched):
    assert version_keys(alice, order_by=["last_updated_timestamp ASC"]) == versions_touched
    assert version_keys(alice, order_by=["last_updated_timestamp DESC"]) == versions_touched[::-1]
    assert version_keys(alice, order_by=["timestamp ASC"]) == versions_touched


def test_version_default_order_is_most_recently_updated_first(alice, versions_touched):
    assert version_keys(alice) == versions_touched[::-1]


def test_version_paging(alice, catalog):
    seen, token = [], None
    while True:
        page = selectors.model_version_search_for_user(
            alice, max_results=2, page_token=token, order_by=["name", "version_number"]
        )
        seen += [(d.version.registered_model.name, d.version.version) for d in page.versions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [("churn", 1), ("churn", 2), ("churn", 3), ("churn-eu", 1), ("fraud", 1)]


@pytest.mark.parametrize("bad", ["version_number = 'x'", "run_id > 'a'", "flavor = 'sklearn'", "name LIKE 3"])
def test_a_malformed_version_filter_is_invalid(alice, catalog, bad):
    with pytest.raises(InvalidParameter):
        version_keys(alice, filter_string=bad)
