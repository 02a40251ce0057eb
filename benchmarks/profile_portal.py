"""Where the portal's time goes, per MLflow request: in-process, Django's test client, cProfile.

    .venv/bin/python benchmarks/profile_portal.py --backend sqlite [--runs 2000] [--history 100000]

A fresh database (temporary SQLite file, or bench_profile_<pid> on PostgreSQL), the
benchmark's data (runs bulk-inserted by direct.py, one long metric history, a few model
versions), then for each request of the benchmark: its median time, the time and number
of SQL queries inside it, and cProfile's heaviest functions. No HTTP server is involved,
so the numbers are the portal's own (middleware, view, ORM, database, JSON), not the
network's or gunicorn's.
"""

import argparse
import cProfile
import io
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import data  # noqa: E402
import servers  # noqa: E402


class QueryTimer:
    """connection.execute_wrapper: time and count every SQL statement."""

    def __init__(self):
        self.seconds = 0.0
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=2000, help="runs to search over")
    parser.add_argument("--history", type=int, default=100_000, help="points in the long metric history")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--top", type=int, default=12, help="functions shown per request")
    parser.add_argument("--only", help="profile only requests whose name contains this")
    args = parser.parse_args()

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-profile-")))
        database_url = None
        if args.backend == "postgres":
            name = f"bench_profile_{os.getpid()}"
            servers.pg_create_database(stack, name)
            database_url = f"postgres://{servers.PG_USER}@{servers.PG_HOST}:{servers.PG_PORT}/{name}"
        os.environ.update(servers.portal_env(tmp, database_url))
        if not database_url:
            os.environ.pop("DATABASE_URL", None)
        sys.path.insert(0, str(servers.REPO))
        import django

        django.setup()
        profile(args, tmp)
        from django.db import connections

        connections.close_all()


def profile(args, tmp: Path) -> None:
    from direct import portal_insert
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from portal.services import api_token_create

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser(data.USER, "bench@example.com", secrets.token_urlsafe(16))
    token = api_token_create(user=user, name="profile").raw
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    api = "/api/2.0/mlflow"

    def post(path, body):
        response = client.post(path, data=body if isinstance(body, (bytes, str)) else __import__("json").dumps(body),
                               content_type="application/json")  # fmt: skip
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        return response.json() if response.content else {}

    def get(path, params):
        response = client.get(path, params)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        return response

    print(f"setting up: {args.runs:,} runs, a {args.history:,}-point history", file=sys.stderr)
    search_exp = post(f"{api}/experiments/create", {"name": "search"})["experiment_id"]
    portal_insert(search_exp, 0, args.runs, 1, 1000)
    ingest_exp = post(f"{api}/experiments/create", {"name": "ingest"})["experiment_id"]
    history_run = post(f"{api}/runs/create", data.create_run_body(ingest_exp, 0))["run"]["info"]["run_id"]
    for start in range(0, args.history, 1000):
        points = [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": data.BASE_TIME_MS + s, "step": s}
                  for s in range(start, min(start + 1000, args.history))]  # fmt: skip
        post(f"{api}/runs/log-batch", {"run_id": history_run, "metrics": points})
    read_run = post(f"{api}/runs/create", data.create_run_body(ingest_exp, 1))["run"]["info"]
    for body in data.log_batch_requests(1):
        post(f"{api}/runs/log-batch", data.with_run_id(data.encode(body), read_run["run_id"]))
    post(f"{api}/registered-models/create", {"name": "profiled"})
    source = read_run["artifact_uri"].rstrip("/") + "/model"
    artifact_dir = tmp / "artifacts" / read_run["artifact_uri"].removeprefix("mlflow-artifacts:").lstrip("/") / "model"
    artifact_dir.mkdir(parents=True, exist_ok=True)
    (artifact_dir / "MLmodel").write_text("flavors: {}\n")

    counter = [10_000]

    def ingest_one_run():
        counter[0] += 1
        i = counter[0]
        run_id = post(f"{api}/runs/create", data.create_run_body(ingest_exp, i))["run"]["info"]["run_id"]
        for body in encoded_batches:
            post(f"{api}/runs/log-batch", data.with_run_id(body, run_id))
        post(f"{api}/runs/update", data.finish_run_body(run_id, i))

    encoded_batches = [data.encode(b) for b in data.log_batch_requests(2)]
    and_query = {"experiment_ids": [search_exp], "filter": "metrics.m0 > 0.5 and params.p3 = 'v3' and tags.t1 LIKE '%x%'",
                 "run_view_type": "ACTIVE_ONLY", "max_results": 100, "order_by": ["metrics.m1 DESC"]}  # fmt: skip
    requests_ = [
        ("ingest one run (create, 2 log-batch, update)", ingest_one_run),
        ("runs/get", lambda: get(f"{api}/runs/get", {"run_id": read_run["run_id"]})),
        ("experiments/get", lambda: get(f"{api}/experiments/get", {"experiment_id": ingest_exp})),
        (f"runs/search, three ANDed, {args.runs:,} runs", lambda: post(f"{api}/runs/search", and_query)),
        (f"runs/search metrics.m0 > 0.5, {args.runs:,} runs",
         lambda: post(f"{api}/runs/search", {**and_query, "filter": "metrics.m0 > 0.5", "order_by": []})),
        (f"get-history {args.history:,} points",
         lambda: get(f"{api}/metrics/get-history", {"run_id": history_run, "metric_key": "loss", "max_results": 25000})),
        ("get-history-bulk-interval 320",
         lambda: get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                     {"run_ids": history_run, "metric_key": "loss", "max_results": 320})),
        ("model-versions/create",
         lambda: post(f"{api}/model-versions/create", {"name": "profiled", "source": source, "run_id": read_run["run_id"]})),
        ("model-versions/get", lambda: get(f"{api}/model-versions/get", {"name": "profiled", "version": "1"})),
        ("registered-models/get", lambda: get(f"{api}/registered-models/get", {"name": "profiled"})),
    ]  # fmt: skip
    for name, call in requests_:
        if args.only and args.only not in name:
            continue
        try:
            call()  # warm-up
        except AssertionError as exc:
            print(f"\n## {name}: fails: {exc}")
            continue
        timer = QueryTimer()
        walls = []
        with connection.execute_wrapper(timer):
            for _ in range(args.reps):
                start = time.perf_counter()
                call()
                walls.append(time.perf_counter() - start)
        wall = statistics.median(walls)
        sql = timer.seconds / args.reps
        print(f"\n## {name}: {wall * 1000:.1f} ms median; SQL {sql * 1000:.1f} ms in {timer.count / args.reps:.0f} "
              f"queries ({sql / wall:.0%}), Python {max(wall - sql, 0) * 1000:.1f} ms")  # fmt: skip
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.reps):
            call()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
        stats.print_stats(args.top)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        start = next((n for n, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        print("\n".join(lines[start:]))


if __name__ == "__main__":
    main()
