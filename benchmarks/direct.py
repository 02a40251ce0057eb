"""Runs written straight into a server's database, without HTTP. Run as a subprocess:

    direct.py portal --experiment-id 3 --first 0 --runs 50 --steps 100 --runs-per-transaction 1
    direct.py mlflow --uri sqlite:///... --experiment-id 1 --first 0 --runs 2000 --steps 1

`portal` uses the portal's settings from the environment (DATABASE_URL, PORTAL_VAR_DIR)
and writes the rows the portal's own write path writes (run, tags, params, metric history,
latest metrics), one transaction per --runs-per-transaction runs: on PostgreSQL with COPY
(the fastest bulk load it has), on SQLite with multi-row INSERTs built from the models'
table and column names. With one run per transaction this is the
limit the issue asks for: the same ingest rows as the HTTP workload, bulk-inserted.
`mlflow` writes the same rows into MLflow's schema with SQLAlchemy Core executemany (one
transaction per 10,000 runs); it seeds MLflow for the search growth curve. Both build the
rows of 10,000 runs at a time (outside the clock), so a million runs fit in memory. --analyze then runs ANALYZE on PostgreSQL, as
autovacuum would shortly after a bulk load, so that both servers' queries are planned on
current statistics.

Prints one JSON line: {"seconds": ..., "runs": ..., "points": ..., "rows": ...}.
"""

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data  # noqa: E402

ROWS_PER_STATEMENT = 500
PREPARE_RUNS = 10_000  # runs whose rows are built in memory at a time


def run_rows(i: int, steps: int):
    """Run i's tags, params, metric history and latest metrics as plain tuples of values."""
    tags = [(t["key"], t["value"]) for t in data.client_tags(i) + data.tags(i)]
    params = [(p["key"], p["value"]) for p in data.params(i)]
    history = [(m["key"], m["value"], m["timestamp"], m["step"]) for m in data.metrics(i, steps)]
    latest = {}
    for key, value, timestamp, step in history:
        latest[key] = (key, value, timestamp, step)  # steps ascend: the last one wins
    return tags, params, history, list(latest.values())


# ---------------------------------------------------------------- the portal


def portal(args) -> dict:
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    result = portal_insert(args.experiment_id, args.first, args.runs, args.steps, args.runs_per_transaction)
    if args.analyze:
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
    return result


def inserter(model, given: list[str]):
    """A function writing rows of `given` attribute values (in that order) into model's
    table. Values of attributes the model does not have are dropped (a denormalised column
    such as a child row's experiment_id is written where the schema has it, skipped where
    it does not); other columns get their field defaults, so a new column with a default
    does not break it. COPY on PostgreSQL, multi-row INSERTs elsewhere (Django set up)."""
    from django.db import connection

    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    keep = [n for n, name in enumerate(given) if name in by_attname]
    present = [given[n] for n in keep]
    missing = [f for f in model._meta.concrete_fields if f.attname not in present and not f.primary_key]
    defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in missing)
    columns = [by_attname[name].column for name in present] + [f.column for f in missing]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    table = connection.ops.quote_name(model._meta.db_table)
    if len(keep) == len(given):
        shaped = lambda row: row  # noqa: E731
    else:
        shaped = lambda row: tuple(row[n] for n in keep)  # noqa: E731

    def insert(cursor, rows: list[tuple]) -> int:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*shaped(row), *defaults))
            return len(rows)
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            values = [v for row in chunk for v in (*shaped(row), *defaults)]
            cursor.execute(f"INSERT INTO {table} ({quoted}) VALUES {', '.join([one] * len(chunk))}", values)
        return len(rows)

    return insert


def child_inserters(RunTag, Param, Metric, LatestMetric) -> tuple:
    """Inserters for a run's tags and params (run_id, experiment_id, key, value) and its
    metric history and latest metrics (run_id, experiment_id, key, value, is_nan, timestamp,
    step); experiment_id is written into the tables that have the column."""
    key_value = ["run_id", "experiment_id", "key", "value"]
    point = ["run_id", "experiment_id", "key", "value", "is_nan", "timestamp", "step"]
    return inserter(RunTag, key_value), inserter(Param, key_value), inserter(Metric, point), inserter(LatestMetric, point)


def portal_insert(experiment_id, first: int, runs: int, steps: int, runs_per_transaction: int) -> dict:
    """Bulk-insert runs first..first+runs-1 into the portal's database (Django set up)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from tracking.models import Experiment, LatestMetric, Metric, Param, Run, RunTag

    insert_run = inserter(
        Run, ["id", "experiment_id", "name", "owner_id", "user_id", "status", "start_time", "end_time", "lifecycle_stage", "artifact_uri"]
    )
    insert_tag, insert_param, insert_metric, insert_latest = child_inserters(RunTag, Param, Metric, LatestMetric)

    experiment = Experiment.objects.get(pk=experiment_id)
    owner = get_user_model().objects.get(username=data.USER)
    location = experiment.artifact_location.rstrip("/")

    def prepare(low: int, high: int) -> list:
        prepared = []
        for i in range(low, high):
            run_id = uuid.uuid4().hex
            tags, params, history, latest = run_rows(i, steps)
            run = (run_id, experiment.pk, data.run_name(i), owner.pk, data.USER, data.run_status(i),
                   data.BASE_TIME_MS + i * 1000, data.BASE_TIME_MS + i * 1000 + 999, "active", f"{location}/{run_id}/artifacts")  # fmt: skip
            prepared.append(
                (
                    run,
                    [(run_id, experiment.pk, k, v) for k, v in tags],
                    [(run_id, experiment.pk, k, v) for k, v in params],
                    [(run_id, experiment.pk, k, v, False, ts, step) for k, v, ts, step in history],
                    [(run_id, experiment.pk, k, v, False, ts, step) for k, v, ts, step in latest],
                )
            )
        return prepared

    connection.ensure_connection()
    rows = 0
    seconds = 0.0
    # Prepared a block at a time, outside the clock: a million runs' rows do not fit in memory at once.
    block = max(PREPARE_RUNS // runs_per_transaction, 1) * runs_per_transaction
    for low in range(first, first + runs, block):
        prepared = prepare(low, min(low + block, first + runs))
        start = time.perf_counter()
        for n in range(0, len(prepared), runs_per_transaction):
            with transaction.atomic(), connection.cursor() as cursor:
                group = prepared[n : n + runs_per_transaction]
                rows += insert_run(cursor, [p[0] for p in group])
                rows += insert_tag(cursor, [r for p in group for r in p[1]])
                rows += insert_param(cursor, [r for p in group for r in p[2]])
                rows += insert_metric(cursor, [r for p in group for r in p[3]])
                rows += insert_latest(cursor, [r for p in group for r in p[4]])
        seconds += time.perf_counter() - start
    return {"seconds": seconds, "runs": runs, "points": runs * data.points_per_run(steps), "rows": rows}


# ---------------------------------------------------------------- MLflow


def mlflow(args) -> dict:
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment,
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from sqlalchemy import create_engine, insert, select

    engine = create_engine(args.uri)
    with engine.connect() as conn:
        location = conn.execute(
            select(SqlExperiment.artifact_location).where(SqlExperiment.experiment_id == int(args.experiment_id))
        ).scalar_one()
    location = location.rstrip("/")
    seconds, total, points = 0.0, 0, 0
    # A block of runs at a time (one transaction each): a million runs' rows do not fit in memory at once.
    for low in range(args.first, args.first + args.runs, PREPARE_RUNS):
        runs, tags, params, metrics, latest_rows = [], [], [], [], []
        for i in range(low, min(low + PREPARE_RUNS, args.first + args.runs)):
            run_id = uuid.uuid4().hex
            t, p, history, latest = run_rows(i, args.steps)
            runs.append({
                "run_uuid": run_id, "name": data.run_name(i), "source_type": "LOCAL", "source_name": "", "entry_point_name": "",
                "user_id": data.USER, "status": data.run_status(i), "start_time": data.BASE_TIME_MS + i * 1000,
                "end_time": data.BASE_TIME_MS + i * 1000 + 999, "source_version": "", "lifecycle_stage": "active",
                "artifact_uri": f"{location}/{run_id}/artifacts", "experiment_id": int(args.experiment_id),
            })  # fmt: skip
            tags += [{"run_uuid": run_id, "key": k, "value": v} for k, v in t]
            params += [{"run_uuid": run_id, "key": k, "value": v} for k, v in p]
            metrics += [{"run_uuid": run_id, "key": k, "value": v, "timestamp": ts, "step": s, "is_nan": False} for k, v, ts, s in history]
            latest_rows += [{"run_uuid": run_id, "key": k, "value": v, "timestamp": ts, "step": s, "is_nan": False} for k, v, ts, s in latest]
        start = time.perf_counter()
        with engine.begin() as conn:
            for model, rows in ((SqlRun, runs), (SqlTag, tags), (SqlParam, params), (SqlMetric, metrics), (SqlLatestMetric, latest_rows)):
                for n in range(0, len(rows), 10_000):
                    conn.execute(insert(model.__table__), rows[n : n + 10_000])
        seconds += time.perf_counter() - start
        total += len(runs) + len(tags) + len(params) + len(metrics) + len(latest_rows)
        points += len(metrics)
    if args.analyze and engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"seconds": seconds, "runs": args.runs, "points": points, "rows": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=["portal", "mlflow"])
    parser.add_argument("--uri", help="MLflow's backend store URI")
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--steps", type=int, default=data.STEPS)
    parser.add_argument("--runs-per-transaction", type=int, default=1)
    parser.add_argument("--analyze", action="store_true", help="ANALYZE afterwards (PostgreSQL)")
    args = parser.parse_args()
    result = portal(args) if args.target == "portal" else mlflow(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
