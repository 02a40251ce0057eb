"""The permissions workload's requests in-process, statement by statement, with query plans.

    .venv/bin/python benchmarks/explain_permissions.py --backend postgres [--scale medium] [--workdir DIR]

Seeds the permissions workload's data (seed_permissions.py) into a fresh database, or
reuses the one kept in --workdir by an earlier call (SQLite: DIR/portal.sqlite3;
PostgreSQL: the database named in DIR/database), then calls each request of the workload
through Django's test client as the superuser and as the user in two teams, under
PORTAL_DEFAULT_PERMISSION=NONE and READ: the median time of the request and of each SQL
statement in it, and the plans of each user's slowest statements
(EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN on SQLite). --sql prints the
statements in full. Without --workdir everything is removed at exit.
"""

import argparse
import json
import os
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
import workloads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scale", choices=list(workloads.SCALES), default="medium", help="the sizes of the data")
    parser.add_argument("--workdir", type=Path, help="keep the seeded database here and reuse it next time")
    parser.add_argument("--defaults", default="NONE,READ", help="PORTAL_DEFAULT_PERMISSION values to explain")
    parser.add_argument("--only", help="only requests whose label contains this")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--plans", type=int, default=2, help="statements explained per request and user (the slowest)")
    parser.add_argument("--sql", action="store_true", help="print the explained statements in full")
    args = parser.parse_args()

    with ExitStack() as stack:
        if args.workdir:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-explain-")))
        database_url = None
        fresh = not (workdir / "seed.json").exists()
        if args.backend == "postgres":
            name_file = workdir / "database"
            if fresh or not name_file.exists():
                name = f"bench_explain_{os.getpid()}"
                servers.pg_create_database(stack, name)
                if args.workdir:
                    stack.pop_all()  # keep it: dropped by hand (DROP DATABASE) when done
                    name_file.write_text(name)
                fresh = True
            else:
                name = name_file.read_text().strip()
            database_url = f"postgres://{servers.PG_USER}@{servers.PG_HOST}:{servers.PG_PORT}/{name}"
        elif fresh and (workdir / "portal.sqlite3").exists():
            (workdir / "portal.sqlite3").unlink()
        os.environ.update(servers.portal_env(workdir, database_url))
        if not database_url:
            os.environ.pop("DATABASE_URL", None)
        sys.path.insert(0, str(servers.REPO))
        import django

        django.setup()
        seeded = seed(args, workdir) if fresh else json.loads((workdir / "seed.json").read_text())
        explain(args, seeded)
        from django.db import connections

        connections.close_all()


def seed(args, workdir: Path) -> dict:
    import seed_permissions
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    s = workloads.SCALES[args.scale]
    print(
        f"seeding {s.perm_experiments:,} experiments, {s.perm_runs:,} runs, {s.perm_models:,} models", file=sys.stderr
    )
    call_command("migrate", verbosity=0)
    get_user_model().objects.create_superuser(data.USER, "bench@example.com", secrets.token_urlsafe(16))
    seeded = seed_permissions.seed(
        argparse.Namespace(experiments=s.perm_experiments, runs=s.perm_runs, models=s.perm_models, analyze=True)
    )
    seeded["experiments"] = s.perm_experiments
    seeded["models"] = s.perm_models
    (workdir / "seed.json").write_text(json.dumps(seeded))
    return seeded


class Statements:
    """connection.execute_wrapper: each statement's SQL (as sent, parameters inlined) and time."""

    def __init__(self):
        self.rows: list[tuple[str, float]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            connection = context["connection"]
            self.rows.append((connection.ops.last_executed_query(context["cursor"], sql, params), elapsed))


def explain(args, seeded: dict) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client, override_settings

    from portal.services import api_token_create

    scale = workloads.SCALES[args.scale]
    superuser = get_user_model().objects.get(username=data.USER)
    clients = {
        "superuser": Client(
            HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=superuser, name='explain').raw}", HTTP_HOST="127.0.0.1"
        ),
        "user": Client(HTTP_AUTHORIZATION=f"Bearer {seeded['token']}", HTTP_HOST="127.0.0.1"),
    }
    bench = argparse.Namespace(scale=scale)
    queries = workloads._permission_queries(bench, seeded)
    for default in [d.strip().upper() for d in args.defaults.split(",") if d.strip()]:
        with override_settings(PORTAL_DEFAULT_PERMISSION=default):
            for label, method, path, params, body in queries:
                if args.only and args.only not in label:
                    continue
                print(f"\n# [default {default}] {label}")
                runs = {}
                for who, client in clients.items():
                    runs[who] = measure(client, method, path, params, body, args.reps)
                    total, statements = runs[who]
                    print(f"## {who}: {total * 1000:.1f} ms median, {len(statements)} statements, "
                          f"SQL {sum(t for _, t in statements) * 1000:.1f} ms")  # fmt: skip
                    for n, (sql, t) in enumerate(statements):
                        print(f"   {n:2d}. {t * 1000:7.2f} ms  {sql[:150]}")
                for who in ("user", "superuser"):
                    statements = runs[who][1]
                    slowest = sorted(range(len(statements)), key=lambda n: -statements[n][1])[: args.plans]
                    for n in sorted(slowest):
                        sql = statements[n][0]
                        print(f"\n### plan of statement {n} ({who}, {statements[n][1] * 1000:.2f} ms)")
                        if args.sql:
                            print(sql)
                        print(plan(connection, sql))


def measure(client, method: str, path: str, params, body, reps: int) -> tuple[float, list[tuple[str, float]]]:
    """Median request time; each statement of the request with its median time."""
    from django.db import connection

    def call():
        if method == "GET":
            response = client.get(path, params)
        else:
            response = client.post(path, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200, (path, response.status_code, response.content[:300])

    call()  # warm-up
    walls, per_statement = [], []
    for _ in range(reps):
        statements = Statements()
        with connection.execute_wrapper(statements):
            start = time.perf_counter()
            call()
            walls.append(time.perf_counter() - start)
        per_statement.append(statements.rows)
    count = min(len(rows) for rows in per_statement)
    medians = [(per_statement[0][n][0], statistics.median(rows[n][1] for rows in per_statement)) for n in range(count)]
    return statistics.median(walls), medians


def plan(connection, sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        rows = cursor.fetchall()
    depth = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * depth[node] + detail)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
