"""The benchmark's data: deterministic runs, shaped like what the mlflow client sends.

A run has 20 params, 10 tags (plus the tags the client adds itself) and 10 metrics, each
logged at STEPS steps. Run number i always gets the same values, so the portal and MLflow
hold identical data whichever way it got there (HTTP or the direct seeders in direct.py),
and the same search filters select the same runs on both:

- metrics.m0 (its latest value) is uniform in [0, 1): `metrics.m0 > 0.5` keeps about half;
- params.p3 is 'v0' ... 'v9': `params.p3 = 'v3'` keeps a tenth;
- tags.t1 contains an 'x' for odd i: `tags.t1 LIKE '%x%'` keeps half;
- the status is FAILED for i % 10 == 9 and FINISHED otherwise: `attributes.status =
  'FINISHED'` keeps nine tenths;
- the run name is bench-run-<i> and the start time BASE_TIME_MS + 1000 i.
"""

import json

N_PARAMS = 20
N_TAGS = 10
N_METRICS = 10
STEPS = 100
BASE_TIME_MS = 1_700_000_000_000
USER = "bench"

# What mlflow.log_batch sends at most per request (mlflow.utils.validation).
MAX_ENTITIES_PER_BATCH = 1000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100

# Bodies are encoded once, before the clock starts, with this stand-in for the run id.
RUN_ID_PLACEHOLDER = "R" * 32


def unit(i: int, k: int) -> float:
    """A fixed pseudo-random number in [0, 1) for run i, metric k."""
    return ((i * 2654435761 + k * 40503 + 12345) % 1_000_003) / 1_000_003


def run_name(i: int) -> str:
    return f"bench-run-{i}"


def run_status(i: int) -> str:
    """Most runs finish; one in ten failed."""
    return "FAILED" if i % 10 == 9 else "FINISHED"


def client_tags(i: int) -> list[dict]:
    """The tags mlflow.start_run() sends with runs/create."""
    return [
        {"key": "mlflow.user", "value": USER},
        {"key": "mlflow.source.name", "value": "train.py"},
        {"key": "mlflow.source.type", "value": "LOCAL"},
        {"key": "mlflow.runName", "value": run_name(i)},
    ]


def params(i: int) -> list[dict]:
    result = []
    for k in range(N_PARAMS):
        value = f"v{i % 10}" if k == 3 else f"value-{k}-{i % 100}"
        result.append({"key": f"p{k}", "value": value})
    return result


def tags(i: int) -> list[dict]:
    result = []
    for k in range(N_TAGS):
        value = f"{'x' if i % 2 else 'y'}-tag-{i % 13}" if k == 1 else f"tag-{k}-{i % 7}"
        result.append({"key": f"t{k}", "value": value})
    return result


def metric_value(i: int, k: int, step: int, steps: int) -> float:
    """Climbs to unit(i, k) at the last step, so the latest value is unit(i, k)."""
    return unit(i, k) * (step + 1) / steps


def metrics(i: int, steps: int = STEPS) -> list[dict]:
    """Every metric point of run i, step by step, as log_metrics() per step would collect them."""
    points = []
    for step in range(steps):
        timestamp = BASE_TIME_MS + i * 1000 + step
        for k in range(N_METRICS):
            points.append({"key": f"m{k}", "value": metric_value(i, k, step, steps), "timestamp": timestamp, "step": step})
    return points


def log_batch_requests(i: int, steps: int = STEPS) -> list[dict]:
    """Run i's params, tags and metrics split into log-batch bodies exactly as
    MlflowClient.log_batch splits them (mlflow/tracking/_tracking_service/client.py)."""
    all_metrics = metrics(i, steps)
    all_params = params(i)
    all_tags = tags(i)
    param_batches = [all_params[n : n + MAX_PARAMS_TAGS_PER_BATCH] for n in range(0, len(all_params), MAX_PARAMS_TAGS_PER_BATCH)]
    tag_batches = [all_tags[n : n + MAX_PARAMS_TAGS_PER_BATCH] for n in range(0, len(all_tags), MAX_PARAMS_TAGS_PER_BATCH)]
    bodies = []
    for n in range(max(len(param_batches), len(tag_batches))):
        p = param_batches[n] if n < len(param_batches) else []
        t = tag_batches[n] if n < len(tag_batches) else []
        size = max(min(MAX_ENTITIES_PER_BATCH - len(p) - len(t), MAX_METRICS_PER_BATCH), 0)
        chunk, all_metrics = all_metrics[:size], all_metrics[size:]
        bodies.append({"run_id": RUN_ID_PLACEHOLDER, "metrics": chunk, "params": p, "tags": t})
    for n in range(0, len(all_metrics), MAX_METRICS_PER_BATCH):
        bodies.append({"run_id": RUN_ID_PLACEHOLDER, "metrics": all_metrics[n : n + MAX_METRICS_PER_BATCH], "params": [], "tags": []})
    return bodies


def encode(body: dict) -> bytes:
    return json.dumps(body).encode()


def with_run_id(encoded: bytes, run_id: str) -> bytes:
    return encoded.replace(RUN_ID_PLACEHOLDER.encode(), run_id.encode())


def create_run_body(experiment_id: str, i: int) -> dict:
    """What mlflow.start_run() posts to runs/create."""
    return {
        "experiment_id": experiment_id,
        "user_id": USER,
        "start_time": BASE_TIME_MS + i * 1000,
        "tags": client_tags(i),
        "run_name": run_name(i),
    }


def finish_run_body(run_id: str, i: int) -> dict:
    """What mlflow.end_run() posts to runs/update."""
    return {"run_id": run_id, "run_uuid": run_id, "status": run_status(i), "end_time": BASE_TIME_MS + i * 1000 + 999}


def points_per_run(steps: int = STEPS) -> int:
    return N_METRICS * steps
