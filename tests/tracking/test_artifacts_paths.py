"""Artifact path confinement and resolution (tracking/services/artifacts.py), without HTTP.

Paths here are what a view receives: the web server has already percent-decoded the URL
once, so `%2e%2e` in a URL arrives as `..` and `%252e%252e` arrives as `%2e%2e`.
"""

import uuid

import pytest

from portal import permissions
from portal.errors import InvalidParameter, NotFound, PermissionDenied
from tracking.models import Experiment, LifecycleStage, LoggedModel, Run
from tracking.services.artifacts import artifact_path_clean, artifact_resolve

HOSTILE = [
    # plain traversal
    "..",
    "../etc/passwd",
    "a/../../b",
    "a/..",
    "a/b/../../..",
    ".",
    "./a",
    "a/./b",
    # absolute paths
    "/etc/passwd",
    "//etc/passwd",
    "/",
    # Windows separators
    "a\\b",
    "..\\..\\windows\\win.ini",
    "a/..\\..\\b",
    # NUL and other control characters
    "a\x00b",
    "a.txt\x00.png",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x1bb",
    "a\x7fb",
    # characters that end or split a URL or a header parameter
    "a;b",
    "model;type=a",
    "a#b",
    "a?b",
    # encoded once more than the server decodes
    "%2e%2e",
    "%2E%2E/etc",
    "a/%2e%2e/b",
    "..%2fetc",
    "%2e%2e%2f%2e%2e%2fetc",
    "a%2f..%2f..%2fb",
    "%2fetc%2fpasswd",
    "a%5cb",
    "%2e%2e%5c%2e%2e",
    "a%00b",
    "a%0ab",
    "a%3bb",
    "a%23b",
    "a%3fb",
    # double and triple encoding
    "%252e%252e",
    "%252e%252e/etc",
    "a/%252e%252e%252fb",
    "%25252e%25252e",
    "%255c",
    "%2500",
    # more levels than anyone needs
    "%2525252525252e",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_paths_are_refused_as_invalid_parameters(path):
    with pytest.raises(InvalidParameter) as exc_info:
        artifact_path_clean(path)

    assert exc_info.value.mlflow_code == "INVALID_PARAMETER_VALUE"
    assert exc_info.value.http_status == 400


@pytest.mark.parametrize(
    "path, cleaned",
    [
        ("", ""),
        ("model/MLmodel", "model/MLmodel"),
        ("a//b", "a/b"),
        ("a/b/", "a/b"),
        ("a///b//c/", "a/b/c"),
        (".hydra/config.yaml", ".hydra/config.yaml"),
        ("...", "..."),
        ("..a/a..b/b..", "..a/a..b/b.."),
        ("file with spaces.txt", "file with spaces.txt"),
        ("données/résumé.csv", "données/résumé.csv"),
        ("plot 2024-01-01T10:00:00.png", "plot 2024-01-01T10:00:00.png"),
        ("backup~", "backup~"),
        ("a%20b.txt", "a%20b.txt"),
        ("100%.txt", "100%.txt"),
        ("50% done/%zz", "50% done/%zz"),
    ],
)
def test_ordinary_paths_are_kept_literally_and_normalised(path, cleaned):
    assert artifact_path_clean(path) == cleaned


def test_a_segment_longer_than_filesystems_allow_is_refused():
    with pytest.raises(InvalidParameter):
        artifact_path_clean("a/" + "x" * 256)


def test_a_path_longer_than_an_s3_key_is_refused():
    with pytest.raises(InvalidParameter):
        artifact_path_clean("/".join(["abcdefghij"] * 100))


def test_a_path_that_is_not_a_string_is_refused():
    with pytest.raises(InvalidParameter):
        artifact_path_clean(None)


# ---------------------------------------------------------------- resolution


def make_experiment(owner, *, location=None, name=None) -> Experiment:
    experiment = Experiment.objects.create(
        name=name or f"exp-{uuid.uuid4().hex[:8]}",
        owner=owner,
        artifact_location="",
        creation_time=0,
        last_update_time=0,
    )
    experiment.artifact_location = location or f"mlflow-artifacts:/{experiment.pk}"
    experiment.save(update_fields=["artifact_location"])
    permissions.grant_owner(experiment, owner)  # as experiment_create does
    return experiment


def make_run(experiment, owner) -> Run:
    run_id = uuid.uuid4().hex
    return Run.objects.create(
        id=run_id,
        experiment=experiment,
        owner=owner,
        start_time=0,
        artifact_uri=f"{experiment.artifact_location}/{run_id}/artifacts",
    )


def make_logged_model(experiment, owner) -> LoggedModel:
    model_id = f"m-{uuid.uuid4().hex}"
    return LoggedModel.objects.create(
        id=model_id,
        experiment=experiment,
        name="model",
        owner=owner,
        artifact_location=f"{experiment.artifact_location}/models/{model_id}/artifacts",
        creation_timestamp_ms=0,
        last_updated_timestamp_ms=0,
    )


def root_of(uri: str) -> str:
    return uri.removeprefix("mlflow-artifacts:/")


def test_a_run_path_resolves_to_the_run_and_the_path_inside_its_root(alice):
    run = make_run(make_experiment(alice), alice)

    target = artifact_resolve(user=alice, path=f"{root_of(run.artifact_uri)}/model/MLmodel", action=permissions.READ)

    assert target.guard == run
    assert target.root == root_of(run.artifact_uri)
    assert target.relative == "model/MLmodel"


def test_the_run_root_itself_resolves_with_an_empty_relative_path(alice):
    run = make_run(make_experiment(alice), alice)

    target = artifact_resolve(user=alice, path=root_of(run.artifact_uri) + "/", action=permissions.READ)

    assert (target.guard, target.relative) == (run, "")


def test_a_logged_model_path_resolves_to_the_logged_model(alice):
    model = make_logged_model(make_experiment(alice), alice)

    target = artifact_resolve(user=alice, path=f"{root_of(model.artifact_location)}/MLmodel", action=permissions.EDIT)

    assert target.guard == model
    assert target.relative == "MLmodel"


def test_a_custom_experiment_location_resolves_for_runs_and_models(alice):
    # "models" inside the location must not be mistaken for the logged-model marker.
    experiment = make_experiment(alice, location="mlflow-artifacts:/team/models/shared")
    run = make_run(experiment, alice)
    model = make_logged_model(experiment, alice)

    run_target = artifact_resolve(user=alice, path=f"team/models/shared/{run.pk}/artifacts/x", action=permissions.READ)
    model_target = artifact_resolve(
        user=alice, path=f"team/models/shared/models/{model.pk}/artifacts/x", action=permissions.READ
    )

    assert run_target.guard == run and run_target.root == f"team/models/shared/{run.pk}/artifacts"
    assert model_target.guard == model


def test_a_run_id_under_another_location_is_not_found(alice):
    run = make_run(make_experiment(alice), alice)
    other = make_experiment(alice)

    with pytest.raises(NotFound):
        artifact_resolve(user=alice, path=f"{other.pk}/{run.pk}/artifacts/x", action=permissions.READ)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "0",
        "0/somefile",
        "0/0123456789abcdef0123456789abcdef/artifacts/x",  # no such run
        "0/models/m-0123456789abcdef0123456789abcdef/artifacts/x",  # no such model
        "models/m-0123456789abcdef0123456789abcdef/artifacts/x",
    ],
)
def test_a_path_that_names_no_run_or_model_is_not_found(alice, path):
    with pytest.raises(NotFound):
        artifact_resolve(user=alice, path=path, action=permissions.EDIT)


def test_a_run_path_without_its_experiment_prefix_is_not_found(alice):
    run = make_run(make_experiment(alice), alice)

    with pytest.raises(NotFound):
        artifact_resolve(user=alice, path=f"{run.pk}/artifacts/x", action=permissions.READ)


def test_a_root_nested_inside_another_runs_root_is_guarded_by_the_outer_run(alice, charlie):
    victim_run = make_run(make_experiment(alice), alice)
    # charlie places his experiment inside alice's run directory...
    nested = make_experiment(charlie, location=f"mlflow-artifacts:/{root_of(victim_run.artifact_uri)}")
    charlie_run = make_run(nested, charlie)

    # ...but writing there is still writing into alice's run.
    with pytest.raises(PermissionDenied):
        artifact_resolve(user=charlie, path=f"{root_of(charlie_run.artifact_uri)}/x", action=permissions.EDIT)


def test_another_user_may_read_but_not_write(alice, charlie):
    run = make_run(make_experiment(alice), alice)
    path = f"{root_of(run.artifact_uri)}/x"

    assert artifact_resolve(user=charlie, path=path, action=permissions.READ).guard == run
    with pytest.raises(PermissionDenied):
        artifact_resolve(user=charlie, path=path, action=permissions.EDIT)


def test_an_anonymous_user_finds_nothing(alice):
    from django.contrib.auth.models import AnonymousUser

    run = make_run(make_experiment(alice), alice)

    with pytest.raises(NotFound):
        artifact_resolve(user=AnonymousUser(), path=f"{root_of(run.artifact_uri)}/x", action=permissions.READ)


def test_traversal_is_refused_before_anything_is_looked_up(alice, django_assert_num_queries):
    run = make_run(make_experiment(alice), alice)

    with django_assert_num_queries(0), pytest.raises(InvalidParameter):
        artifact_resolve(user=alice, path=f"{root_of(run.artifact_uri)}/../../../etc/passwd", action=permissions.READ)


def test_a_deleted_run_still_resolves_for_reading(alice):
    run = make_run(make_experiment(alice), alice)
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.DELETED)

    assert artifact_resolve(user=alice, path=f"{root_of(run.artifact_uri)}/x", action=permissions.READ).guard == run
