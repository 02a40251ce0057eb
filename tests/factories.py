"""Test data built through the real services, so grants exist exactly as in production."""

from tracking.services import experiments as experiment_services
from tracking.services import runs as run_services


def make_experiment(*, owner, name: str = "experiment", tags: dict | None = None):
    return experiment_services.experiment_create(
        actor=owner, name=name, tags=[{"key": k, "value": v} for k, v in (tags or {}).items()]
    )


def make_run(*, owner, experiment, name: str | None = None, start_time: int | None = None):
    return run_services.run_create(
        actor=owner, experiment_id=str(experiment.pk), run_name=name, start_time=start_time
    )
