"""Logged-model services and selectors, called directly."""

import pytest

from portal.errors import InvalidParameter, NotFound, PermissionDenied
from tests.factories import make_experiment, make_run
from tracking import mlflow_json, selectors
from tracking.models import LifecycleStage, LoggedModel, LoggedModelStatus
from tracking.services import logged_models as services
from tracking.services import runs as run_services


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="models")


@pytest.fixture
def run(alice, experiment):
    return make_run(owner=alice, experiment=experiment)


@pytest.fixture
def model(alice, experiment, run):
    return services.logged_model_create(
        actor=alice,
        experiment_id=str(experiment.pk),
        name="model",
        source_run_id=run.pk,
        params=[{"key": "alpha", "value": "0.5"}],
        tags=[{"key": "team", "value": "growth"}],
    )


def kv(items) -> dict[str, str]:
    return {item.key: item.value for item in items}


def load(user, model_id):
    return selectors.logged_model_data_load([selectors.logged_model_get_for_user(user, model_id)])[0]


# ---------------------------------------------------------------- create


def test_create_makes_a_pending_model_under_the_experiments_models_folder(alice, experiment, run, model):
    assert model.pk.startswith("m-") and len(model.pk) == 34
    assert model.status == LoggedModelStatus.PENDING
    assert model.artifact_location == f"mlflow-artifacts:/{experiment.pk}/models/{model.pk}/artifacts"
    assert model.source_run_id == run.pk and model.owner == alice
    data = load(alice, model.pk)
    assert kv(data.params) == {"alpha": "0.5"} and kv(data.tags) == {"team": "growth"}


def test_create_generates_a_name_when_none_is_given(alice, experiment):
    model = services.logged_model_create(actor=alice, experiment_id=str(experiment.pk))
    assert model.name


@pytest.mark.parametrize("name", ["a/b", "a.b", "a:b", "50%", "it's", '"q"', "   "])
def test_create_refuses_names_the_client_could_not_use(alice, experiment, name):
    with pytest.raises(InvalidParameter):
        services.logged_model_create(actor=alice, experiment_id=str(experiment.pk), name=name)


def test_create_refuses_a_source_run_of_another_experiment(alice, experiment):
    other_run = make_run(owner=alice, experiment=make_experiment(owner=alice, name="other"))
    with pytest.raises(InvalidParameter, match="belongs to experiment"):
        services.logged_model_create(actor=alice, experiment_id=str(experiment.pk), source_run_id=other_run.pk)


def test_create_refuses_a_missing_source_run(alice, experiment):
    with pytest.raises(NotFound):
        services.logged_model_create(actor=alice, experiment_id=str(experiment.pk), source_run_id="0" * 32)


def test_create_in_a_missing_experiment_is_not_found(alice):
    with pytest.raises(NotFound):
        services.logged_model_create(actor=alice, experiment_id="987654")


def test_create_in_a_deleted_experiment_is_refused(alice, experiment):
    from tracking.services import experiments as experiment_services

    experiment_services.experiment_delete(actor=alice, experiment_id=str(experiment.pk))
    with pytest.raises(InvalidParameter, match="active"):
        services.logged_model_create(actor=alice, experiment_id=str(experiment.pk))


def test_create_validates_param_and_tag_keys_and_values(alice, experiment):
    for bad in (
        {"params": [{"key": "../x", "value": "1"}]},
        {"params": [{"key": "k", "value": "x" * 6001}]},
        {"params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]},
        {"params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
        {"tags": [{"key": "", "value": "1"}]},
        {"tags": [{"key": "t", "value": "x" * 8001}]},
        {"tags": ["not an object"]},
    ):
        with pytest.raises(InvalidParameter):
            services.logged_model_create(actor=alice, experiment_id=str(experiment.pk), **bad)


def test_charlie_cannot_create_a_model_in_alices_experiment(charlie, experiment):
    with pytest.raises(PermissionDenied):
        services.logged_model_create(actor=charlie, experiment_id=str(experiment.pk))


def test_anyone_signed_in_can_create_a_model_in_the_default_experiment(charlie, default_experiment):
    model = services.logged_model_create(actor=charlie, experiment_id="0", name="mine")
    assert model.experiment_id == 0 and model.owner == charlie


# ---------------------------------------------------------------- finalize, delete


def test_finalize_sets_the_status_and_is_idempotent(alice, model):
    ready = services.logged_model_finalize(actor=alice, model_id=model.pk, status="LOGGED_MODEL_READY")
    assert ready.status == LoggedModelStatus.READY
    again = services.logged_model_finalize(actor=alice, model_id=model.pk, status="LOGGED_MODEL_READY")
    assert again.status == LoggedModelStatus.READY
    assert again.last_updated_timestamp_ms == ready.last_updated_timestamp_ms


@pytest.mark.parametrize("status", [2, "READY", "LOGGED_MODEL_READY"])
def test_finalize_accepts_the_enum_name_or_number(alice, model, status):
    finalized = services.logged_model_finalize(actor=alice, model_id=model.pk, status=status)
    assert finalized.status == LoggedModelStatus.READY


def test_finalize_can_record_a_failed_upload(alice, model):
    failed = services.logged_model_finalize(actor=alice, model_id=model.pk, status="LOGGED_MODEL_UPLOAD_FAILED")
    assert failed.status == LoggedModelStatus.UPLOAD_FAILED


@pytest.mark.parametrize("status", ["LOGGED_MODEL_PENDING", "LOGGED_MODEL_STATUS_UNSPECIFIED", "DONE", 7, None])
def test_finalize_refuses_anything_but_a_final_status(alice, model, status):
    with pytest.raises(InvalidParameter):
        services.logged_model_finalize(actor=alice, model_id=model.pk, status=status)


def test_charlie_cannot_finalize_alices_model(charlie, model):
    with pytest.raises(PermissionDenied):
        services.logged_model_finalize(actor=charlie, model_id=model.pk, status="LOGGED_MODEL_READY")


def test_bob_can_read_alices_model(bob, model):
    assert selectors.logged_model_get_for_user(bob, model.pk).pk == model.pk


def test_an_anonymous_user_cannot_read_a_model(model):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(NotFound):
        selectors.logged_model_get_for_user(AnonymousUser(), model.pk)


def test_getting_a_missing_model_is_not_found(alice):
    with pytest.raises(NotFound, match="m-missing"):
        selectors.logged_model_get_for_user(alice, "m-missing")


def test_a_deleted_model_is_missing_unless_deleted_ones_are_asked_for(alice, model):
    services.logged_model_delete(actor=alice, model_id=model.pk)
    with pytest.raises(NotFound):
        selectors.logged_model_get_for_user(alice, model.pk)
    deleted = selectors.logged_model_get_for_user(alice, model.pk, allow_deleted=True)
    assert deleted.lifecycle_stage == LifecycleStage.DELETED


def test_delete_is_idempotent(alice, model):
    services.logged_model_delete(actor=alice, model_id=model.pk)
    assert services.logged_model_delete(actor=alice, model_id=model.pk).lifecycle_stage == LifecycleStage.DELETED


def test_a_deleted_model_takes_no_tags(alice, model):
    services.logged_model_delete(actor=alice, model_id=model.pk)
    with pytest.raises(NotFound):
        services.logged_model_tags_set(actor=alice, model_id=model.pk, tags=[{"key": "a", "value": "b"}])


def test_charlie_cannot_delete_alices_model(charlie, model):
    with pytest.raises(PermissionDenied):
        services.logged_model_delete(actor=charlie, model_id=model.pk)


# ---------------------------------------------------------------- tags and params


def test_setting_tags_inserts_and_overwrites(alice, model):
    services.logged_model_tags_set(
        actor=alice, model_id=model.pk, tags=[{"key": "team", "value": "search"}, {"key": "stage", "value": "dev"}]
    )
    assert kv(load(alice, model.pk).tags) == {"team": "search", "stage": "dev"}


def test_setting_tags_moves_the_last_updated_time(alice, model):
    before = model.last_updated_timestamp_ms
    updated = services.logged_model_tags_set(actor=alice, model_id=model.pk, tags=[{"key": "a", "value": "b"}])
    assert updated.last_updated_timestamp_ms >= before


def test_charlie_cannot_tag_alices_model(charlie, model):
    with pytest.raises(PermissionDenied):
        services.logged_model_tags_set(actor=charlie, model_id=model.pk, tags=[{"key": "a", "value": "b"}])


def test_deleting_a_tag_removes_it(alice, model):
    services.logged_model_tag_delete(actor=alice, model_id=model.pk, key="team")
    assert kv(load(alice, model.pk).tags) == {}


def test_deleting_a_missing_tag_is_not_found(alice, model):
    with pytest.raises(NotFound, match="nope"):
        services.logged_model_tag_delete(actor=alice, model_id=model.pk, key="nope")


def test_charlie_cannot_delete_a_tag_of_alices_model(charlie, model):
    with pytest.raises(PermissionDenied):
        services.logged_model_tag_delete(actor=charlie, model_id=model.pk, key="team")


def test_params_are_added_and_the_same_value_again_is_fine(alice, model):
    services.logged_model_params_log(
        actor=alice, model_id=model.pk, params=[{"key": "alpha", "value": "0.5"}, {"key": "beta", "value": "2"}]
    )
    assert kv(load(alice, model.pk).params) == {"alpha": "0.5", "beta": "2"}


def test_a_param_with_another_value_fails_and_keeps_the_first(alice, model):
    with pytest.raises(InvalidParameter, match="Changing param values is not allowed"):
        services.logged_model_params_log(actor=alice, model_id=model.pk, params=[{"key": "alpha", "value": "9"}])
    assert kv(load(alice, model.pk).params) == {"alpha": "0.5"}


def test_charlie_cannot_log_params_to_alices_model(charlie, model):
    with pytest.raises(PermissionDenied):
        services.logged_model_params_log(actor=charlie, model_id=model.pk, params=[{"key": "x", "value": "1"}])


# ---------------------------------------------------------------- metrics and JSON


def test_metrics_logged_with_the_model_id_show_on_the_model(alice, run, model):
    run_services.run_log_batch(
        actor=alice,
        run_id=run.pk,
        metrics=[{"key": "acc", "value": 0.9, "timestamp": 5, "step": 0, "model_id": model.pk, "dataset_name": "iris"}],
    )
    json = mlflow_json.logged_model_json(load(alice, model.pk))
    assert json["data"]["metrics"] == [
        {
            "key": "acc",
            "value": 0.9,
            "timestamp": 5,
            "step": 0,
            "model_id": model.pk,
            "run_id": run.pk,
            "dataset_name": "iris",
        }
    ]


def test_model_json_has_mlflows_field_names(alice, run, model):
    info = mlflow_json.logged_model_json(load(alice, model.pk))["info"]
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["experiment_id"] == str(model.experiment_id) and isinstance(info["creator_id"], int)
    assert info["source_run_id"] == run.pk and info["artifact_uri"] == model.artifact_location
    assert info["tags"] == [{"key": "team", "value": "growth"}]


# ---------------------------------------------------------------- search


def search(user, experiment, **kwargs):
    page = selectors.logged_model_search_for_user(user, experiment_ids=[str(experiment.pk)], **kwargs)
    return [data.model.name for data in page.models]


@pytest.fixture
def three(alice, experiment, run):
    """a (from the run, type Agent, READY), b (no run, tag team=y), c (from the run, metrics on two datasets)."""
    a = services.logged_model_create(
        actor=alice, experiment_id=str(experiment.pk), name="a", source_run_id=run.pk, model_type="Agent",
        params=[{"key": "lr", "value": "0.1"}],
    )
    services.logged_model_finalize(actor=alice, model_id=a.pk, status="READY")
    b = services.logged_model_create(
        actor=alice, experiment_id=str(experiment.pk), name="b", tags=[{"key": "team", "value": "y"}]
    )
    c = services.logged_model_create(actor=alice, experiment_id=str(experiment.pk), name="c", source_run_id=run.pk)
    run_services.run_log_batch(
        actor=alice,
        run_id=run.pk,
        metrics=[
            {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0, "model_id": c.pk, "dataset_name": "train"},
            {"key": "acc", "value": 0.6, "timestamp": 1, "step": 0, "model_id": c.pk, "dataset_name": "test"},
            {"key": "acc", "value": 0.7, "timestamp": 1, "step": 0, "model_id": a.pk, "dataset_name": "test"},
        ],
    )
    # Creation times a millisecond apart at least, so "newest first" has one answer.
    for offset, model in enumerate((a, b, c)):
        LoggedModel.objects.filter(pk=model.pk).update(creation_timestamp_ms=1_000 + offset)
    return a, b, c


def test_search_lists_newest_first_by_default(alice, experiment, three):
    assert search(alice, experiment) == ["c", "b", "a"]


def test_a_source_run_clause_leaves_out_models_without_a_run(alice, experiment, run, three):
    assert search(alice, experiment, filter_string=f"source_run_id = '{run.pk}'") == ["c", "a"]
    assert search(alice, experiment, filter_string="source_run_id != 'x'") == ["c", "a"]


def test_status_accepts_the_clients_short_names(alice, experiment, three):
    assert search(alice, experiment, filter_string="status = 'READY'") == ["a"]
    assert search(alice, experiment, filter_string="status IN ('PENDING')") == ["c", "b"]


def test_tag_and_param_clauses_need_the_key(alice, experiment, three):
    assert search(alice, experiment, filter_string="tags.team != 'x'") == ["b"]
    assert search(alice, experiment, filter_string="params.lr IS NULL") == ["c", "b"]
    assert search(alice, experiment, filter_string="params.lr LIKE '0.%'") == ["a"]


def test_metric_clauses_count_only_the_requested_datasets(alice, experiment, three):
    assert search(alice, experiment, filter_string="metrics.acc > 0.8") == ["c"]
    on_test = [{"dataset_name": "test"}]
    assert search(alice, experiment, filter_string="metrics.acc > 0.8", datasets=on_test) == []
    assert search(alice, experiment, filter_string="metrics.acc >= 0.6", datasets=on_test) == ["c", "a"]


def test_datasets_without_a_metric_clause_keep_models_with_metrics_on_them(alice, experiment, three):
    assert search(alice, experiment, datasets=[{"dataset_name": "train"}]) == ["c"]


def test_ordering_by_a_metric_puts_models_without_it_last(alice, experiment, three):
    order = [{"field_name": "metrics.acc", "ascending": True, "dataset_name": "test"}]
    assert search(alice, experiment, order_by=order) == ["c", "a", "b"]


def test_ordering_by_an_attribute_descending(alice, experiment, three):
    assert search(alice, experiment, order_by=[{"field_name": "name", "ascending": False}]) == ["c", "b", "a"]


@pytest.mark.parametrize(
    "order_by",
    [
        [{"field_name": "colour"}],
        [{"field_name": "params.lr"}],
        [{"field_name": "name", "dataset_name": "test"}],
        [{"field_name": "metrics.acc", "dataset_digest": "d"}],
        [{}],
    ],
)
def test_bad_order_by_is_invalid(alice, experiment, order_by):
    with pytest.raises(InvalidParameter):
        search(alice, experiment, order_by=order_by)


@pytest.mark.parametrize(
    "filter_string",
    [
        "name = = 'x'",
        "colour = 'red'",
        "name > 'a'",
        "creation_timestamp = 'x'",
        "name = 'a' OR name = 'b'",
        "runs.x = '1'",
    ],
)
def test_bad_filters_are_invalid(alice, experiment, filter_string):
    with pytest.raises(InvalidParameter):
        search(alice, experiment, filter_string=filter_string)


def test_search_pages_with_a_token(alice, experiment, three):
    first = selectors.logged_model_search_for_user(alice, experiment_ids=[str(experiment.pk)], max_results=2)
    assert [d.model.name for d in first.models] == ["c", "b"] and first.next_page_token
    second = selectors.logged_model_search_for_user(
        alice, experiment_ids=[str(experiment.pk)], max_results=2, page_token=first.next_page_token
    )
    assert [d.model.name for d in second.models] == ["a"] and second.next_page_token is None


def test_search_leaves_out_deleted_models(alice, experiment, three):
    services.logged_model_delete(actor=alice, model_id=three[1].pk)
    assert search(alice, experiment) == ["c", "a"]


def test_search_needs_experiment_ids(alice):
    with pytest.raises(InvalidParameter):
        selectors.logged_model_search_for_user(alice, experiment_ids=[])
