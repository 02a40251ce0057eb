"""MLflow door for experiments, runs and metrics (/api/2.0/mlflow/...).

Each handler parses parameters, calls one service or selector, and returns MLflow's JSON.
"""

from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal.errors import InvalidParameter
from portal.mlflow_http import Params, mlflow_endpoint, page_json
from tracking import mlflow_json, selectors
from tracking.services import experiments as experiment_services
from tracking.services import runs as run_services

Json = dict[str, Any]


# ---------------------------------------------------------------- experiments


def create_experiment(request: HttpRequest, params: Params) -> Json:
    experiment = experiment_services.experiment_create(
        actor=request.user,
        name=params.str("name", required=True),
        artifact_location=params.str("artifact_location"),
        tags=params.objects("tags"),
    )
    return {"experiment_id": str(experiment.pk)}


def _experiment_response(experiment) -> Json:
    tags = selectors.experiment_tags([experiment.pk])[experiment.pk]
    return {"experiment": mlflow_json.experiment_json(experiment, tags)}


def get_experiment(request: HttpRequest, params: Params) -> Json:
    experiment = selectors.experiment_get_for_user(request.user, params.str("experiment_id", required=True))
    return _experiment_response(experiment)


def get_experiment_by_name(request: HttpRequest, params: Params) -> Json:
    experiment = selectors.experiment_get_by_name_for_user(request.user, params.str("experiment_name", required=True))
    return _experiment_response(experiment)


def search_experiments(request: HttpRequest, params: Params) -> Json:
    page = selectors.experiment_search_for_user(
        request.user,
        view_type=params.str("view_type"),
        filter_string=params.str("filter"),
        order_by=params.str_list("order_by"),
        max_results=params.int("max_results"),
        page_token=params.str("page_token"),
    )
    experiments = [mlflow_json.experiment_json(e, page.tags[e.pk]) for e in page.experiments]
    return page_json("experiments", experiments, page.next_page_token)


def update_experiment(request: HttpRequest, params: Params) -> Json:
    experiment_services.experiment_rename(
        actor=request.user,
        experiment_id=params.str("experiment_id", required=True),
        new_name=params.str("new_name", required=True),
    )
    return {}


def delete_experiment(request: HttpRequest, params: Params) -> Json:
    experiment_services.experiment_delete(actor=request.user, experiment_id=params.str("experiment_id", required=True))
    return {}


def restore_experiment(request: HttpRequest, params: Params) -> Json:
    experiment_services.experiment_restore(actor=request.user, experiment_id=params.str("experiment_id", required=True))
    return {}


def set_experiment_tag(request: HttpRequest, params: Params) -> Json:
    experiment_services.experiment_tag_set(
        actor=request.user,
        experiment_id=params.str("experiment_id", required=True),
        key=params.str("key", required=True),
        value=params.str("value", default=""),
    )
    return {}


def delete_experiment_tag(request: HttpRequest, params: Params) -> Json:
    experiment_services.experiment_tag_delete(
        actor=request.user, experiment_id=params.str("experiment_id", required=True), key=params.str("key", required=True)
    )
    return {}


# ---------------------------------------------------------------- runs


def _run_response(run) -> Json:
    return {"run": mlflow_json.run_json(selectors.run_data_load([run])[0])}


def create_run(request: HttpRequest, params: Params) -> Json:
    run = run_services.run_create(
        actor=request.user,
        experiment_id=params.str("experiment_id"),
        run_name=params.str("run_name"),
        start_time=params.int("start_time"),
        tags=params.objects("tags"),
        user_id=params.str("user_id"),
    )
    return _run_response(run)


def get_run(request: HttpRequest, params: Params) -> Json:
    return _run_response(selectors.run_get_for_user(request.user, params.run_id()))


def update_run(request: HttpRequest, params: Params) -> Json:
    run = run_services.run_update(
        actor=request.user,
        run_id=params.run_id(),
        status=params.str("status"),
        end_time=params.int("end_time"),
        run_name=params.str("run_name"),
    )
    return {"run_info": mlflow_json.run_info_json(run)}


def delete_run(request: HttpRequest, params: Params) -> Json:
    run_services.run_delete(actor=request.user, run_id=params.run_id())
    return {}


def restore_run(request: HttpRequest, params: Params) -> Json:
    run_services.run_restore(actor=request.user, run_id=params.run_id())
    return {}


def log_metric(request: HttpRequest, params: Params) -> Json:
    if not params.has("value"):
        raise InvalidParameter("Missing value for required parameter 'value'.")
    metric = {k: params.data.get(k) for k in ("key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest")}
    if metric["key"] is None:
        raise InvalidParameter("Missing value for required parameter 'key'.")
    run_services.run_log_metric(actor=request.user, run_id=params.run_id(), metric=metric)
    return {}


def log_param(request: HttpRequest, params: Params) -> Json:
    run_services.run_log_param(
        actor=request.user, run_id=params.run_id(), key=params.str("key", required=True), value=params.data.get("value")
    )
    return {}


def set_tag(request: HttpRequest, params: Params) -> Json:
    run_services.run_set_tag(
        actor=request.user, run_id=params.run_id(), key=params.str("key", required=True), value=params.data.get("value")
    )
    return {}


def delete_tag(request: HttpRequest, params: Params) -> Json:
    run_services.run_delete_tag(actor=request.user, run_id=params.run_id(), key=params.str("key", required=True))
    return {}


def log_batch(request: HttpRequest, params: Params) -> Json:
    run_services.run_log_batch(
        actor=request.user,
        run_id=params.run_id(),
        metrics=params.objects("metrics"),
        params=params.objects("params"),
        tags=params.objects("tags"),
    )
    return {}


def log_inputs(request: HttpRequest, params: Params) -> Json:
    run_services.run_log_inputs(
        actor=request.user, run_id=params.run_id(), datasets=params.objects("datasets"), models=params.objects("models")
    )
    return {}


def log_outputs(request: HttpRequest, params: Params) -> Json:
    run_services.run_log_outputs(actor=request.user, run_id=params.run_id(), models=params.objects("models"))
    return {}


def search_runs(request: HttpRequest, params: Params) -> Json:
    page = selectors.run_search_for_user(
        request.user,
        experiment_ids=[str(e) for e in params.list("experiment_ids")],
        filter_string=params.str("filter"),
        view_type=params.str("run_view_type"),
        order_by=params.str_list("order_by"),
        max_results=params.int("max_results"),
        page_token=params.str("page_token"),
    )
    return page_json("runs", [mlflow_json.run_json(data) for data in page.runs], page.next_page_token)


# ---------------------------------------------------------------- metrics


def get_metric_history(request: HttpRequest, params: Params) -> Json:
    run_id = params.run_id()
    metrics, next_token = selectors.metric_history_for_user(
        request.user,
        run_id=run_id,
        key=params.str("metric_key", required=True),
        max_results=params.int("max_results"),
        page_token=params.str("page_token"),
    )
    return page_json("metrics", mlflow_json.metric_rows_json(metrics), next_token)


def get_metric_history_bulk_interval(request: HttpRequest, params: Params) -> Json:
    metrics = selectors.metric_history_bulk_interval_for_user(
        request.user,
        run_ids=params.str_list("run_ids"),
        key=params.str("metric_key", required=True),
        start_step=params.int("start_step"),
        end_step=params.int("end_step"),
        max_results=params.int("max_results"),
    )
    return {"metrics": [mlflow_json.metric_json(m, run_id=m.run_id) for m in metrics]}


urlpatterns = [
    path("experiments/create", mlflow_endpoint({"POST": create_experiment})),
    path("experiments/get", mlflow_endpoint({"GET": get_experiment})),
    path("experiments/get-by-name", mlflow_endpoint({"GET": get_experiment_by_name})),
    path("experiments/search", mlflow_endpoint({"POST": search_experiments, "GET": search_experiments})),
    path("experiments/list", mlflow_endpoint({"GET": search_experiments})),
    path("experiments/update", mlflow_endpoint({"POST": update_experiment})),
    path("experiments/delete", mlflow_endpoint({"POST": delete_experiment})),
    path("experiments/restore", mlflow_endpoint({"POST": restore_experiment})),
    path("experiments/set-experiment-tag", mlflow_endpoint({"POST": set_experiment_tag})),
    path("experiments/delete-experiment-tag", mlflow_endpoint({"POST": delete_experiment_tag})),
    path("runs/create", mlflow_endpoint({"POST": create_run})),
    path("runs/get", mlflow_endpoint({"GET": get_run})),
    path("runs/update", mlflow_endpoint({"POST": update_run})),
    path("runs/delete", mlflow_endpoint({"POST": delete_run})),
    path("runs/restore", mlflow_endpoint({"POST": restore_run})),
    path("runs/search", mlflow_endpoint({"POST": search_runs, "GET": search_runs})),
    path("runs/log-metric", mlflow_endpoint({"POST": log_metric})),
    path("runs/log-parameter", mlflow_endpoint({"POST": log_param})),
    path("runs/set-tag", mlflow_endpoint({"POST": set_tag})),
    path("runs/delete-tag", mlflow_endpoint({"POST": delete_tag})),
    path("runs/log-batch", mlflow_endpoint({"POST": log_batch})),
    path("runs/log-inputs", mlflow_endpoint({"POST": log_inputs})),
    path("runs/outputs", mlflow_endpoint({"POST": log_outputs})),
    path("metrics/get-history", mlflow_endpoint({"GET": get_metric_history})),
    path("metrics/get-history-bulk-interval", mlflow_endpoint({"GET": get_metric_history_bulk_interval})),
]
