"""Tracking objects in MLflow's JSON shapes (field names from MLflow's protobuf messages)."""

from typing import Any

from portal.mlflow_http import double_json
from tracking.models import Experiment, ExperimentTag, LatestMetric, LoggedModel, Metric, Run
from tracking.selectors import RunData


def experiment_json(experiment: Experiment, tags: list[ExperimentTag]) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": experiment.last_update_time,
        "creation_time": experiment.creation_time,
        "tags": [{"key": t.key, "value": t.value} for t in tags],
    }


def run_info_json(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.pk,
        "run_uuid": run.pk,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user_id,
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_json(metric: Metric | LatestMetric, *, run_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": metric.key,
        "value": "NaN" if metric.is_nan else double_json(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    if run_id:
        data["run_id"] = run_id
    return data


def metric_row_json(key: str, value: float, is_nan: bool, timestamp: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": "NaN" if is_nan else double_json(value), "timestamp": timestamp, "step": step}


def run_json(data: RunData) -> dict[str, Any]:
    run = data.run
    inputs: dict[str, Any] = {}
    if data.dataset_inputs:
        inputs["dataset_inputs"] = [
            {
                "tags": [{"key": t.key, "value": t.value} for t in tags],
                "dataset": {
                    "name": run_input.dataset.name,
                    "digest": run_input.dataset.digest,
                    "source_type": run_input.dataset.source_type,
                    "source": run_input.dataset.source,
                    **({"schema": run_input.dataset.schema} if run_input.dataset.schema else {}),
                    **({"profile": run_input.dataset.profile} if run_input.dataset.profile else {}),
                },
            }
            for run_input, tags in data.dataset_inputs
        ]
    if data.model_inputs:
        inputs["model_inputs"] = [{"model_id": m} for m in data.model_inputs]
    result: dict[str, Any] = {
        "info": run_info_json(run),
        "data": {
            "metrics": [metric_json(m) for m in data.metrics],
            "params": [{"key": p.key, "value": p.value} for p in data.params],
            "tags": [{"key": t.key, "value": t.value} for t in data.tags],
        },
        "inputs": inputs,
    }
    if data.model_outputs:
        result["outputs"] = {"model_outputs": [{"model_id": o.model_id, "step": o.step} for o in data.model_outputs]}
    return result


