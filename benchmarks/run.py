"""The portal against a real `mlflow server`, side by side (issue 4).

    .venv/bin/python benchmarks/run.py --scale small --backend sqlite --report bench.md

For each backend: fresh databases and directories in a temporary folder, the portal under
gunicorn and `mlflow server` with its defaults, both on 127.0.0.1; the workloads of
workloads.py against both; one table printed (and written as Markdown with --report).
`mlflow server` is not started when every chosen workload is the portal's alone
(`--workloads permissions`: a user with team grants against a superuser; `catalog`:
experiments, registered models and versions searched by a superuser and a team-granted user).
Everything started is stopped and every database dropped at exit, also on errors and
Ctrl-C. Exit status: 0 when the run completed (whatever the targets say), 1 on error,
130 when interrupted; --strict makes a missed target exit 2.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import servers  # noqa: E402
import workloads  # noqa: E402
from client import Target  # noqa: E402
from report import Sheet  # noqa: E402
from servers import log  # noqa: E402

# Measured on the 2-core benchmark machine (see README.md): 4 gthread workers of 4 threads.
DEFAULT_WORKERS = 4
DEFAULT_THREADS = 4

WORKLOADS = {
    "ingest": workloads.workload_ingest,
    "search": workloads.workload_search,
    "history": workloads.workload_history,
    "registry": workloads.workload_registry,
    "artifacts": workloads.workload_artifacts,
    "load": workloads.workload_load,
    "keepalive": workloads.workload_keepalive,
    "permissions": workloads.workload_permissions,
    "catalog": workloads.workload_catalog,
}
# Workloads that compare the portal with itself: MLflow is not started for them alone.
PORTAL_ONLY = {"permissions", "catalog"}


def basic_header(username: str, password: str) -> dict:
    import requests

    return {"Authorization": requests.auth._basic_auth_str(username, password)}


def mlflow_pg_scheme() -> str:
    """psycopg2 (benchmarks/requirements.txt), else psycopg 3. Named explicitly: SQLAlchemy
    2.1, which mlflow 3.17 installs, maps a bare postgresql:// to psycopg 3."""
    try:
        import psycopg2  # noqa: F401

        return "postgresql+psycopg2"
    except ImportError:
        log("psycopg2 is not installed (pip install -r benchmarks/requirements.txt): MLflow uses psycopg 3, "
            "under which its transition-stage with archive_existing_versions fails")
        return "postgresql+psycopg"


def keep_logs(tmp: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for log_file in tmp.glob("*/*.log"):
        shutil.copy(log_file, destination / f"{log_file.parent.name}-{log_file.name}")


def measure_mlflow_auth(bench: workloads.Bench, tmp: Path, mlflow_uri: str) -> str:
    """The reduced workloads against MLflow's basic-auth app on the same store; its config
    line for the report. A failure is noted and the run goes on."""
    try:
        with ExitStack() as stack:
            log("mlflow server with the basic-auth app, same store")
            auth = servers.start_mlflow(stack, tmp / "mlflow-auth", mlflow_uri, tmp / "mlflow" / "artifacts", basic_auth=True)
            servers.wait_mlflow(auth)
            tree = bench.sampler.watch("mlflow_auth", auth.process.pid)
            target = Target("mlflow_auth", "MLflow basic-auth", auth.url, basic_header(auth.username, auth.password), "mlflow_auth")
            workloads.workload_mlflow_auth(bench, target)
            tree.hwm = tree.max_hwm()
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - the main results stand without it
        bench.notes.append(f"MLflow basic-auth app: {traceback.format_exc(limit=1).strip().splitlines()[-1][:300]}")
        log(traceback.format_exc())
        return "failed (see notes)"
    plain = bench.sheet.get(workloads.W_LOAD, "idle: runs/get [keep-alive] p50", "mlflow")
    with_auth = bench.sheet.get(workloads.W_LOAD, "idle: runs/get [keep-alive] p50", "mlflow_auth")
    if isinstance(plain, float) and isinstance(with_auth, float):
        bench.notes.append(f"MLflow's basic-auth app adds {with_auth - plain:.0f} ms to a runs/get (p50, keep-alive)")
    return auth.config + " (packaged basic_auth.ini; admin password from MLFLOW_AUTH_ADMIN_PASSWORD)"


def run_backend(backend: str, args, stop: threading.Event) -> dict:
    scale = workloads.SCALES[args.scale]
    with_mlflow = any(name not in PORTAL_ONLY for name in args.workloads)
    started = time.monotonic()
    load_before = servers.load_average()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{backend}-")))
        log(f"{backend}: working in {tmp}")
        if args.keep_logs:
            stack.callback(keep_logs, tmp, args.keep_logs / backend)
        if backend == "postgres":
            portal_db, mlflow_db = f"bench_portal_{os.getpid()}", f"bench_mlflow_{os.getpid()}"
            servers.pg_create_database(stack, portal_db)
            base = f"{servers.PG_USER}@{servers.PG_HOST}:{servers.PG_PORT}"
            portal_url = f"postgres://{base}/{portal_db}"
            mlflow_uri = ""
            if with_mlflow:
                servers.pg_create_database(stack, mlflow_db)
                mlflow_uri = f"{mlflow_pg_scheme()}://{base}/{mlflow_db}"
        else:
            portal_url = None
            mlflow_uri = f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}"
        (tmp / "mlflow").mkdir()
        mlflow = None
        if with_mlflow:
            mlflow = servers.start_mlflow(stack, tmp / "mlflow", mlflow_uri, tmp / "mlflow" / "artifacts")
        log("portal: migrate, superuser, token, gunicorn")
        portal = servers.start_portal(stack, tmp / "portal", portal_url, workers=args.workers, threads=args.threads)
        if mlflow is not None:
            log("waiting for mlflow server")
            servers.wait_mlflow(mlflow)
            log("both servers are up")

        sampler = servers.MemorySampler()
        stack.callback(sampler.stop)
        sampler.watch("portal", portal.process.pid)
        if mlflow is not None:
            sampler.watch("mlflow", mlflow.process.pid)
        sampler.start()
        time.sleep(0.3)
        baseline = {name: tree.current for name, tree in sampler.trees.items()}

        targets = [
            Target("portal_token", "portal (token)", portal.url, {"Authorization": f"Bearer {portal.token}"}, "portal"),
            Target("portal_basic", "portal (basic)", portal.url, basic_header(portal.username, portal.password), "portal"),
        ]
        if mlflow is not None:
            targets.append(Target("mlflow", "MLflow", mlflow.url, {}, "mlflow"))
        sheet = Sheet()

        def serve_portal(server_stack: ExitStack, extra_env: dict, name: str) -> str:
            env = {**portal.env, **extra_env}
            return servers.serve_portal(server_stack, tmp / "portal", env, workers=args.workers, threads=args.threads, name=name)[0]

        bench = workloads.Bench(backend, scale, sheet, targets, sampler, tmp, portal.env, mlflow_uri, stop,
                                serve_portal=serve_portal)  # fmt: skip
        failed_workloads = []
        for name in args.workloads:
            began = time.monotonic()
            try:
                WORKLOADS[name](bench)
                log(f"workload {name}: {time.monotonic() - began:.0f} s")
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - one broken workload must not hide the others
                failed_workloads.append(name)
                bench.notes.append(f"workload {name} stopped with an error: {traceback.format_exc(limit=3).strip().splitlines()[-1]}")
                log(f"workload {name} failed:\n{traceback.format_exc()}")

        auth_config = "not measured at this scale"
        if mlflow is not None and scale.auth_mlflow and not args.no_mlflow_auth and "load" in args.workloads and "search" in args.workloads:
            auth_config = measure_mlflow_auth(bench, tmp, mlflow_uri)

        memory_lines = []
        for name, tree in sampler.trees.items():
            memory_lines.append(
                [name, str(len(tree.pids)), report.fmt(baseline.get(name, tree.current)), report.fmt(tree.peak),
                 report.fmt(tree.hwm or tree.max_hwm())]  # fmt: skip
            )
        sheet.sections["Server memory (MB; RSS summed over the process tree, sampled every 50 ms)"] = (
            ["server", "processes", "RSS after start", "peak RSS", "largest single-process VmHWM"],
            memory_lines,
        )
        sampler.stop()
        settings = {
            "portal": portal.config,
            "MLflow": mlflow.config + " (defaults: uvicorn, 4 workers)" if mlflow else "not started: no chosen workload needs it",
            "MLflow basic-auth": auth_config,
            "sizes": (
                f"ingest {scale.ingest_runs} runs (1 writer) and 8×{scale.ingest_runs_per_writer} runs (8 writers), "
                f"each 20 params, 10 tags, 10 metrics × 100 steps; search {scale.search_main:,} runs "
                f"(growth {', '.join(f'{n:,}' for n in sorted(set(scale.search_sizes) | {scale.search_main}))}; "
                f"issue 9's suite at {scale.issue_size:,}; MLflow up to {scale.mlflow_max_runs:,}); "
                f"history {scale.history_steps:,} points; registry {scale.registry_versions} versions; "
                f"artifacts {scale.artifact_files} × 1 MB + 1 × {scale.artifact_big_mb} MB; "
                f"reads under load {scale.load_seconds:g} s; ≤ {scale.reps} repetitions / ≤ {scale.rep_seconds:g} s per latency; "
                f"permissions {scale.perm_experiments:,} experiments, {scale.perm_runs:,} runs, {scale.perm_models:,} registered "
                f"models, ≤ {scale.perm_reps} request pairs / ≤ {scale.perm_seconds:g} s per query; "
                f"catalog {scale.catalog_experiments:,} experiments, {scale.catalog_models:,} registered models, "
                f"{scale.catalog_versions:,} versions"
            ),
            "load average (1/5/15 min) before → after": f"{load_before} → {servers.load_average()}",
            "duration": f"{time.monotonic() - started:.0f} s",
        }
        # The report names no path of this machine: the temporary directory becomes <tmp>.
        settings = {key: value.replace(str(tmp), "<tmp>") for key, value in settings.items()}
        notes = list(bench.notes)
        if mlflow is not None:
            notes += [
                "The ratio column is portal (token) / MLflow; a target passes only if every portal column measured "
                "(token, Basic, the team-granted user) meets it.",
                "Search runs are seeded straight into each database (same rows for both, one metric point per key); "
                "ingest, history, registry and artifacts go through HTTP.",
            ]
        log("stopping servers, dropping databases")
    return {
        "title": f"Backend: {'PostgreSQL' if backend == 'postgres' else 'SQLite'}, scale {scale.name}",
        "settings": settings,
        "sheet": sheet,
        "notes": notes,
        "failed_workloads": failed_workloads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=list(workloads.SCALES), default="small")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--report", type=Path, help="also write the report as Markdown to this file")
    parser.add_argument("--json", type=Path, help="also write every measured value as JSON to this file")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers for the portal")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="threads per gunicorn worker")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated subset of {','.join(WORKLOADS)} (MLflow is not started for permissions alone)")  # fmt: skip
    parser.add_argument("--keep-logs", type=Path, help="copy the servers' logs into this directory")
    parser.add_argument("--no-mlflow-auth", action="store_true", help="skip MLflow's basic-auth app")
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = parser.parse_args()
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)}")

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()  # worker threads stop at their next request
        raise KeyboardInterrupt

    # Also SIGINT: a shell without job control starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    try:
        for backend in backends:
            results.append(run_backend(backend, args, stop))
    except KeyboardInterrupt:
        stop.set()
        log("interrupted: servers stopped, temporary files and databases removed")
        return 130
    finally:
        stop.set()

    machine = servers.machine_info()
    text = "\n".join(report.render(r, markdown=False) for r in results) + "\n" + report.render_machine(machine, False)
    print(text)
    if args.report:
        what = f"portal vs MLflow {machine['mlflow']}"
        if args.workloads == ["permissions"]:
            what = "the portal's permission filter"
        elif all(name in PORTAL_ONLY for name in args.workloads):
            what = f"the portal alone ({', '.join(args.workloads)})"
        title = f"## Benchmark: {what}, scale {args.scale}, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        markdown = title + "\n".join(report.render(r, markdown=True) for r in results) + "\n" + report.render_machine(machine, True)
        args.report.write_text(markdown)
        log(f"report written to {args.report}")
    if args.json:
        document = {"scale": args.scale, "machine": machine, "backends": [report.as_json(r) for r in results]}
        args.json.write_text(json.dumps(document, indent=1, allow_nan=False))
        log(f"values written to {args.json}")
    if args.strict and any(r["sheet"].failures() for r in results):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
