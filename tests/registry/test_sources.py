"""A version's source must resolve to files in the portal's store that the registrant may read."""

import pytest

from portal.errors import InvalidParameter, NotFound
from registry import services
from tests.factories import make_experiment, make_run
from tests.registry.conftest import make_logged_model, upload
from tracking.services import logged_models as logged_model_services
from tracking.services import runs as run_services


def register(user, source, **extra):
    return services.model_version_create(actor=user, name="churn", source=source, **extra)


@pytest.fixture
def logged(alice, run):
    return make_logged_model(alice, run)


# ---------------------------------------------------------------- accepted


def test_a_logged_model_uri_with_its_model_id_points_at_the_models_files(alice, churn, run, logged):
    version = register(alice, f"models:/{logged.pk}", model_id=logged.pk)
    assert version.storage_location == logged.artifact_location
    assert version.logged_model == logged and version.run == run  # the model's source run


def test_a_logged_model_uri_with_its_run_id_is_accepted(alice, churn, run, logged):
    version = register(alice, f"models:/{logged.pk}", model_id=logged.pk, run_id=run.pk)
    assert version.run == run


def test_a_run_artifact_directory_points_into_the_run(alice, churn, model_dir_run):
    version = register(alice, f"runs:/{model_dir_run.pk}/model", run_id=model_dir_run.pk)
    assert version.storage_location == f"{model_dir_run.artifact_uri}/model"
    assert version.run == model_dir_run and version.logged_model is None


def test_a_runs_uri_naming_a_logged_model_of_the_run_points_at_the_model(alice, churn, run, logged):
    # MLflow 3 logs models next to the run: nothing is stored under the run's "model" folder.
    version = register(alice, f"runs:/{run.pk}/model", run_id=run.pk)
    assert version.storage_location == logged.artifact_location and version.logged_model == logged


def test_a_run_directory_with_an_mlmodel_wins_over_a_logged_model_of_that_name(alice, churn, model_dir_run):
    make_logged_model(alice, model_dir_run)
    version = register(alice, f"runs:/{model_dir_run.pk}/model")
    assert version.storage_location == f"{model_dir_run.artifact_uri}/model" and version.logged_model is None


def test_an_artifact_proxy_location_of_a_run_is_accepted(alice, churn, model_dir_run):
    source = f"{model_dir_run.artifact_uri}/model"
    version = register(alice, source, run_id=model_dir_run.pk)
    assert version.source == source and version.storage_location == source and version.run == model_dir_run


def test_an_artifact_proxy_location_of_a_logged_model_is_accepted(alice, churn, run, logged):
    version = register(alice, logged.artifact_location)
    assert version.logged_model == logged and version.run == run
    assert version.storage_location == logged.artifact_location


def test_a_registered_version_can_be_copied_by_its_models_uri(alice, churn, run, logged):
    first = register(alice, f"models:/{logged.pk}", model_id=logged.pk)
    services.registered_model_create(actor=alice, name="copy")
    for uri in ("models:/churn/1", "models:/churn/latest", "models:/churn/None"):
        copy = services.model_version_create(actor=alice, name="copy", source=uri, run_id=run.pk)
        assert copy.storage_location == first.storage_location and copy.logged_model == logged


def test_a_copy_by_alias_resolves_the_alias_now(alice, churn, model_dir_run):
    register(alice, f"runs:/{model_dir_run.pk}/model")
    services.alias_set(actor=alice, name="churn", alias="champion", version=1)
    copy = register(alice, "models:/churn@champion")
    assert copy.storage_location == f"{model_dir_run.artifact_uri}/model"


def test_another_users_readable_run_may_be_registered_into_ones_own_model(bob, model_dir_run):
    services.registered_model_create(actor=bob, name="bobs")
    version = services.model_version_create(actor=bob, name="bobs", source=f"runs:/{model_dir_run.pk}/model")
    assert version.run == model_dir_run


# ---------------------------------------------------------------- refused


@pytest.mark.parametrize(
    "source",
    [
        "/tmp/model",
        "model",
        "./model",
        "file:///tmp/model",
        "file:/etc/passwd",
        "http://example.com/model",
        "https://example.com/model",
        "s3://bucket/model",
        "gs://bucket/model",
        "dbfs:/model",
        "C:\\models\\m",
        "mlflow-artifacts://evil.example.com/1/x/artifacts/model",
        "runs:/not-a-run-id/model",
        "runs://host/abc/model",
        "models:/",
        "models:/churn/1/extra",
    ],
)
def test_sources_outside_the_store_are_invalid(alice, churn, model_dir_run, source):
    with pytest.raises(InvalidParameter):
        register(alice, source)


@pytest.mark.parametrize(
    "suffix",
    [
        "model/../../other",
        "../model",
        "model/%2e%2e/%2e%2e/x",
        "model/%252e%252e/%252e%252e/x",
        "model\\..\\x",
        "model/\x00",
        "model/./MLmodel",
        "model%2f..%2f..%2fx",
    ],
)
def test_traversal_in_any_spelling_is_invalid(alice, churn, model_dir_run, suffix):
    with pytest.raises(InvalidParameter):
        register(alice, f"runs:/{model_dir_run.pk}/{suffix}")
    with pytest.raises(InvalidParameter):
        register(alice, f"{model_dir_run.artifact_uri}/{suffix}")


def test_a_logged_model_uri_without_model_id_is_invalid(alice, churn, logged):
    with pytest.raises(InvalidParameter):
        register(alice, f"models:/{logged.pk}")


def test_a_model_id_that_is_not_the_source_is_invalid(alice, churn, run, logged):
    other = make_logged_model(alice, run, name="other")
    with pytest.raises(InvalidParameter):
        register(alice, f"models:/{logged.pk}", model_id=other.pk)
    with pytest.raises(InvalidParameter):
        register(alice, f"runs:/{run.pk}/model", model_id=other.pk)


def test_a_source_outside_the_given_run_is_invalid(alice, churn, experiment, model_dir_run, logged):
    other_run = make_run(owner=alice, experiment=experiment)
    upload(alice, other_run, "model/MLmodel")
    with pytest.raises(InvalidParameter):
        register(alice, f"runs:/{other_run.pk}/model", run_id=model_dir_run.pk)
    with pytest.raises(InvalidParameter):
        register(alice, f"{other_run.artifact_uri}/model", run_id=model_dir_run.pk)
    with pytest.raises(InvalidParameter):
        register(alice, f"models:/{logged.pk}", model_id=logged.pk, run_id=other_run.pk)


def test_a_missing_run_is_invalid_and_says_only_that_nothing_readable_is_there(alice, churn):
    missing = "0" * 32
    with pytest.raises(InvalidParameter) as exc:
        register(alice, f"runs:/{missing}/model")
    assert "does not name" in exc.value.message


def test_a_missing_logged_model_is_invalid(alice, churn):
    missing = "m-" + "0" * 32
    with pytest.raises(InvalidParameter):
        register(alice, f"models:/{missing}", model_id=missing)


def test_a_deleted_run_cannot_be_registered(alice, churn, model_dir_run):
    run_services.run_delete(actor=alice, run_id=model_dir_run.pk)
    with pytest.raises(InvalidParameter):
        register(alice, f"runs:/{model_dir_run.pk}/model")


def test_a_deleted_or_failed_logged_model_cannot_be_registered(alice, churn, run, logged):
    failed = make_logged_model(alice, run, name="failed")
    logged_model_services.logged_model_finalize(actor=alice, model_id=failed.pk, status="UPLOAD_FAILED")
    logged_model_services.logged_model_delete(actor=alice, model_id=logged.pk)
    for model in (logged, failed):
        with pytest.raises(InvalidParameter):
            register(alice, f"models:/{model.pk}", model_id=model.pk)


def test_a_copy_of_a_missing_version_is_invalid(alice, churn):
    with pytest.raises(InvalidParameter):
        register(alice, "models:/churn/9")
    with pytest.raises(InvalidParameter):
        register(alice, "models:/nothing@champion")


def test_a_source_in_another_experiments_location_naming_a_run_elsewhere_is_invalid(alice, churn, model_dir_run):
    # The run id is real, but it does not live under that experiment's location.
    other = make_experiment(owner=alice, name="elsewhere")
    with pytest.raises(InvalidParameter):
        register(alice, f"mlflow-artifacts:/{other.pk}/{model_dir_run.pk}/artifacts/model")


def test_the_registrant_must_be_able_to_edit_the_model_before_the_source_is_even_looked_at(charlie, churn):
    from portal.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        register(charlie, "/etc/passwd")


def test_an_empty_source_is_invalid(alice, churn):
    with pytest.raises(InvalidParameter):
        register(alice, "")


def test_registering_into_a_missing_model_is_not_found_whatever_the_source(alice):
    with pytest.raises(NotFound):
        services.model_version_create(actor=alice, name="nope", source="/etc/passwd")


# ---------------------------------------------------------------- prompts


def test_a_prompt_version_has_no_files_and_no_download_uri(alice):
    from registry import selectors

    services.registered_model_create(
        actor=alice, name="greeting", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    )
    version = services.model_version_create(
        actor=alice, name="greeting", source="prompt-template", tags=[{"key": "mlflow.prompt.text", "value": "Hi"}]
    )
    assert version.storage_location == "" and version.run is None
    with pytest.raises(InvalidParameter):
        selectors.model_version_download_uri_for_user(alice, "greeting", 1)


def test_the_prompt_placeholder_is_refused_for_an_ordinary_model(alice, churn):
    with pytest.raises(InvalidParameter):
        register(alice, "dummy-source", tags=[{"key": "mlflow.prompt.text", "value": "Hi"}])


def test_the_prompt_placeholder_is_refused_without_prompt_text(alice):
    services.registered_model_create(
        actor=alice, name="greeting", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    )
    with pytest.raises(InvalidParameter):
        services.model_version_create(actor=alice, name="greeting", source="prompt-template")


def test_a_source_whose_files_location_would_not_fit_its_column_is_refused(alice, churn, run):
    # A source within its 1000 characters, under a run whose artifact URI makes the location longer.
    relative = "/".join(["d" * 200] * 5)[: 1000 - len(f"runs:/{run.pk}/")]

    with pytest.raises(InvalidParameter, match="longer than 1000"):
        register(alice, f"runs:/{run.pk}/{relative}", run_id=run.pk)
