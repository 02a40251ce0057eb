"""Registry test data, built through the real services (tracking's and the registry's)."""

import io

import pytest

from registry import services
from tests.factories import make_experiment, make_run
from tests.portal.test_pages_browser import browser_page  # noqa: F401 (a fixture of the approval page tests)
from tests.portal.webhook_receiver import receiver, webhook_settings  # noqa: F401 (fixtures)
from tracking.services import artifacts as artifact_services
from tracking.services import logged_models as logged_model_services


@pytest.fixture(autouse=True)
def _nothing_protected_unless_governed(request, settings):
    """The registry's MLflow behaviour (stages, aliases, archiving) is tested as MLflow has it:
    with nothing protected. Tests of the approval workflow are marked `governed` and keep
    the portal's default (Production protected)."""
    if request.node.get_closest_marker("governed") is None:
        settings.PORTAL_PROTECTED_STAGES = []


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="registry-tests")


@pytest.fixture
def run(alice, experiment):
    return make_run(owner=alice, experiment=experiment)


def upload(user, run, relative: str, content: bytes = b"flavors: {}\n") -> None:
    """Put a file into `run`'s artifacts through the artifact service."""
    root = run.artifact_uri.removeprefix("mlflow-artifacts:/")
    artifact_services.artifact_upload(
        user=user, path=f"{root}/{relative}", content=io.BytesIO(content), expected_size=len(content)
    )


def make_logged_model(user, run, name: str = "model"):
    model = logged_model_services.logged_model_create(
        actor=user, experiment_id=str(run.experiment_id), name=name, source_run_id=run.pk
    )
    return logged_model_services.logged_model_finalize(actor=user, model_id=model.pk, status="READY")


@pytest.fixture
def model_dir_run(alice, run):
    """A run with a classic model directory (`model/MLmodel`) in its artifacts."""
    upload(alice, run, "model/MLmodel")
    return run


def make_version(user, name: str, run, *, path: str = "model", **extra):
    return services.model_version_create(actor=user, name=name, source=f"runs:/{run.pk}/{path}", **extra)


@pytest.fixture
def churn(alice):
    return services.registered_model_create(actor=alice, name="churn")


@pytest.fixture
def versions(alice, churn, model_dir_run):
    """churn versions 1, 2 and 3, all from the same run directory."""
    return [make_version(alice, "churn", model_dir_run) for _ in range(3)]
