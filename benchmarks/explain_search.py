"""The search workload's queries in-process, with the plan of every statement they run.

    DATABASE_URL=... SECRET_KEY=... .venv/bin/python benchmarks/explain_search.py --experiment-id 1 [--user bench]
    PORTAL_VAR_DIR=var-bench .venv/bin/python benchmarks/explain_search.py --experiment-id 1 --only ANDed

Point it at a portal database seeded by the benchmark (direct.py, or a kept --workdir of
explain_permissions.py). For each query of workloads.SEARCH_QUERIES it calls the run search
as the user, `--reps` times, prints the median time, then each SQL statement the search ran
with its plan: EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN on SQLite.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

QUERIES = (
    ("metrics.m0 > 0.5", "metrics.m0 > 0.5", []),
    ("params.p3 = 'v3'", "params.p3 = 'v3'", []),
    ("tags.t1 LIKE '%x%'", "tags.t1 LIKE '%x%'", []),
    ("the three ANDed, order by metrics.m1", "metrics.m0 > 0.5 and params.p3 = 'v3' and tags.t1 LIKE '%x%'", ["metrics.m1 DESC"]),
    ("status, order by a param", "attributes.status = 'FINISHED'", ["params.p5 ASC"]),
    ("run_name LIKE, order by start_time", "attributes.run_name LIKE 'bench-run-1%'", ["attributes.start_time ASC"]),
    ("start_time, order by a metric", "attributes.start_time > 1700000000000", ["metrics.m2 ASC"]),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--user", default="bench", help="whose search (a superuser, or a user with grants)")
    parser.add_argument("--only", help="only queries whose label contains this")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sql", action="store_true", help="print the statements in full")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from tracking import selectors

    user = get_user_model().objects.get(username=args.user)
    for label, filter_string, order_by in QUERIES:
        if args.only and args.only not in label:
            continue

        def search():
            return selectors.run_search_for_user(
                user, experiment_ids=[args.experiment_id], filter_string=filter_string, order_by=order_by, max_results=100
            )

        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            page = search()
            times.append((time.perf_counter() - start) * 1000)
        statements = []

        def capture(execute, sql, params, many, context):
            statements.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            search()
        print(f"\n=== {label}: median {statistics.median(times):.1f} ms over {args.reps}, {len(page.runs)} runs, "
              f"{len(statements)} statements")  # fmt: skip
        for sql, params in statements:
            print(f"\n--- {sql if args.sql else sql[:160] + ('...' if len(sql) > 160 else '')}")
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                else:
                    cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                for row in cursor.fetchall():
                    print("    " + " ".join(str(part) for part in row))


if __name__ == "__main__":
    main()
