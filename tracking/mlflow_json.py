"""Tracking objects in MLflow's JSON shapes (field names from MLflow's protobuf messages)."""

import math
from typing import Any

from portal.mlflow_http import double_json
from tracking.models import Experiment, ExperimentTag, LatestMetric, LoggedModel, Metric, Run
from tracking.selectors import LoggedModelData, RunData


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


def metric_rows_json(rows: list[tuple]) -> list[dict[str, Any]]:
    """(key, value, is_nan, timestamp, step) rows as Metric messages; the hot loop of a
    100,000-point history, so finite values skip double_json."""
    isfinite = math.isfinite
    return [
        {
            "key": key,
            "value": value if isfinite(value) and not is_nan else ("NaN" if is_nan else double_json(value)),
            "timestamp": timestamp,
            "step": step,
        }
        for key, value, is_nan, timestamp, step in rows
    ]


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


def logged_model_metric_json(metric) -> dict[str, Any]:
    """A metric linked to a logged model (a tracking.models.LoggedModelMetric)."""
    data = metric_row_json(metric.key, metric.value, metric.is_nan, metric.timestamp, metric.step)
    data["model_id"] = metric.model_id
    if metric.run_id:
        data["run_id"] = metric.run_id
    if metric.dataset_name:
        data["dataset_name"] = metric.dataset_name
    if metric.dataset_digest:
        data["dataset_digest"] = metric.dataset_digest
    return data


def logged_model_json(data: LoggedModelData) -> dict[str, Any]:
    """A LoggedModel message: `info` (attributes and tags) and `data` (params and metrics).

    `status` is the enum's name; `creator_id` is an int64 (the creating user's id).
    `registrations` is left out: the registry records them as the model's
    `mlflow.modelVersions` tag, which the client reads.
    """
    model: LoggedModel = data.model
    info: dict[str, Any] = {
        "model_id": model.pk,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp_ms,
        "last_updated_timestamp_ms": model.last_updated_timestamp_ms,
        "artifact_uri": model.artifact_location,
        "status": model.status,
        "tags": [{"key": t.key, "value": t.value} for t in data.tags],
    }
    if model.owner_id is not None:
        info["creator_id"] = model.owner_id
    if model.model_type:
        info["model_type"] = model.model_type
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    if model.status_message:
        info["status_message"] = model.status_message
    return {
        "info": info,
        "data": {
            "params": [{"key": p.key, "value": p.value} for p in data.params],
            "metrics": [logged_model_metric_json(m) for m in data.metrics],
        },
    }
