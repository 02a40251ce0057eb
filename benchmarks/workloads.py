"""The issue's workloads, each run against every target in both connection modes.

For each workload and mode the targets are measured one after the other (portal with a
token, portal with HTTP Basic, MLflow), so both servers see the same machine load. Every
loop is bounded by a count and by a time cap; a workload that answers with errors is
recorded as failed and the harness moves on.
"""

import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import data
import seed_catalog
from client import AJAX, API, ARTIFACTS, ApiError, Client, Target, artifact_root, create_experiment, create_run
from report import Failed, Sheet
from report import Target as Goal
from servers import REPO, log

MODES = (("fresh", False), ("keep-alive", True))
BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scale:
    name: str
    ingest_runs: int  # one writer
    ingest_runs_per_writer: int  # eight writers
    ingest_seconds: float  # time cap of one ingest measurement
    limit_runs: int  # direct bulk inserts
    search_main: int  # runs for the full search suite (the issue's 2,000)
    search_sizes: tuple  # growth curve
    history_steps: int
    registry_versions: int
    artifact_files: int  # 1 MB files
    artifact_big_mb: int
    load_seconds: float  # reads under write load
    reps: int  # most repetitions of one latency measurement
    rep_seconds: float  # time cap of one latency measurement (at least MIN_REPS are taken)
    auth_mlflow: bool  # also measure MLflow's basic-auth app
    # The permissions workload: seeded experiments, runs and registered models; the most
    # (superuser, user) request pairs per query and the time cap of one query's pairs.
    perm_experiments: int = 10_000
    perm_runs: int = 100_000
    perm_models: int = 10_000
    perm_reps: int = 60
    perm_seconds: float = 20.0
    # Issue 9: the size at which the search workload also runs the issue's suite (every query
    # for a superuser and a team-granted user, the deep page, full pagination); 0: the
    # largest size of the curve. MLflow is seeded and measured up to mlflow_max_runs runs.
    search_issue: int = 0
    mlflow_max_runs: int = 100_000
    # The catalog workload: experiments, registered models, model versions (seed_catalog.py).
    catalog_experiments: int = 10_000
    catalog_models: int = 10_000
    catalog_versions: int = 100_000

    @property
    def issue_size(self) -> int:
        return self.search_issue or max(set(self.search_sizes) | {self.search_main})


SCALES = {
    "tiny": Scale("tiny", 2, 1, 10, 2, 100, (100,), 2_000, 3, 2, 2, 1.0, 5, 1.0, False,
                  perm_experiments=20, perm_runs=400, perm_models=20, perm_reps=5, perm_seconds=1.0,
                  catalog_experiments=20, catalog_models=20, catalog_versions=100),
    "small": Scale("small", 5, 2, 15, 20, 2_000, (2_000,), 20_000, 20, 20, 100, 3.0, 20, 1.0, True,
                   perm_experiments=1_000, perm_runs=10_000, perm_models=1_000, perm_reps=20, perm_seconds=5.0,
                   catalog_experiments=1_000, catalog_models=1_000, catalog_versions=10_000),
    "medium": Scale("medium", 20, 5, 60, 50, 2_000, (1_000, 2_000, 10_000), 100_000, 100, 50, 100, 10.0, 50, 8.0, True),
    "large": Scale("large", 40, 10, 120, 100, 2_000, (1_000, 2_000, 10_000, 100_000), 100_000, 100, 50, 100, 20.0, 100, 20.0, True,
                   perm_reps=100, perm_seconds=40.0),
}  # fmt: skip
# Opt-in: large plus a point at 1,000,000 runs on the search growth curve (the portal only:
# MLflow stays at 100,000 runs, the issue's suite at 100,000).
SCALES["huge"] = replace(SCALES["large"], name="huge", search_sizes=(1_000, 2_000, 10_000, 100_000, 1_000_000),
                         search_issue=100_000)  # fmt: skip
MIN_REPS = 3

W_INGEST = "1 ingest"
W_SEARCH = "2 search"
W_HISTORY = "3 history"
W_REGISTRY = "4 registry"
W_ARTIFACTS = "5 artifacts"
W_LOAD = "6 reads under write load"
W_KEEPALIVE = "7 keep-alive"
W_PERMISSIONS = "8 permissions"
W_CATALOG = "9 catalog"

# Issue 9's targets, per backend ("PostgreSQL unless said"; SQLite gets its own bound for
# the run queries only). Rows whose target is missing here carry none on that backend.
ISSUE_GOALS = {
    "postgres": {"query_p95": 150, "deep_ratio": 1.5, "pagination_s": 15, "catalog_p95": 50, "million_p95": 300, "exponent": 0.3},
    "sqlite": {"query_p95": 300},
}


@dataclass
class Bench:
    """Everything a workload needs: targets, sizes, the sheet to write into."""

    backend: str
    scale: Scale
    sheet: Sheet
    targets: list  # [Target]: portal_token, portal_basic, mlflow
    sampler: object  # servers.MemorySampler
    workdir: Path
    portal_env: dict
    mlflow_uri: str
    stop: threading.Event
    notes: list = field(default_factory=list)
    state: dict = field(default_factory=dict)  # ids shared between workloads, per server
    # serve_portal(stack, extra_env, name) -> url: another gunicorn on the portal's database,
    # with the run's workers and threads and `extra_env` on top of the portal's environment.
    serve_portal: object = None

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt


# ---------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def repeat(bench: Bench, fn, *, reps: int | None = None, seconds: float | None = None) -> list[float]:
    """Call fn (which returns seconds) up to `reps` times, stopping after `seconds` once
    MIN_REPS samples are in."""
    reps = reps or bench.scale.reps
    seconds = seconds if seconds is not None else bench.scale.rep_seconds
    times: list[float] = []
    start = time.monotonic()
    while len(times) < reps and (len(times) < MIN_REPS or time.monotonic() - start < seconds):
        bench.check_stop()
        times.append(fn())
    return times


def attempt(fn):
    """fn() or a Failed carrying the first error."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the server under test is a result
        return Failed(str(exc)[:300])


def put_latency(bench, workload, label, variant, times, *, p50_goal=None, p95_goal=None, unit_s=False, p95=True):
    """Rows `<label> p50` and `<label> p95` in ms (or s), or failed."""
    unit = "s" if unit_s else "ms"
    scale = 1 if unit_s else 1000
    if isinstance(times, Failed):
        bench.sheet.put(workload, f"{label} p50", variant, times, unit, p50_goal, note=f"{variant}: {times.reason}")
        if p95:
            bench.sheet.put(workload, f"{label} p95", variant, times, unit, p95_goal)
        return
    bench.sheet.put(workload, f"{label} p50", variant, statistics.median(times) * scale, unit, p50_goal)
    if p95:
        bench.sheet.put(workload, f"{label} p95", variant, pct(times, 0.95) * scale, unit, p95_goal)


def issue_goal(bench: "Bench", key: str) -> Goal | None:
    bound = ISSUE_GOALS.get(bench.backend, {}).get(key)
    return None if bound is None else Goal("<=", bound)


def server_of(target: Target) -> str:
    return target.server


def run_script(args: list[str], env: dict, timeout: float) -> dict:
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def direct(bench: Bench, server: str, experiment_id: str, first: int, runs: int, steps: int, per_transaction: int,
           analyze: bool = False):  # fmt: skip
    """Start direct.py for one server; returns the Popen (collect with finish_direct)."""
    args = [sys.executable, str(BENCH_DIR / "direct.py"), server, "--experiment-id", str(experiment_id),
            "--first", str(first), "--runs", str(runs), "--steps", str(steps), "--runs-per-transaction", str(per_transaction)]  # fmt: skip
    if analyze:
        args.append("--analyze")
    env = bench.portal_env
    if server == "mlflow":
        args += ["--uri", bench.mlflow_uri]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_direct(process: subprocess.Popen, timeout: float) -> dict:
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"direct.py failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- 1. ingest


@dataclass
class IngestResult:
    runs: int
    seconds: float
    latencies: list  # log-batch seconds
    errors: list

    @property
    def points_per_s(self) -> float:
        return self.runs * data.points_per_run() / self.seconds if self.seconds else 0.0


# Writers are separate processes, each with its own HTTP session: threads would share one
# GIL with each other and with the reader that times requests under load, so the client's
# own CPU would cap throughput and inflate the reader's latencies, the more so the faster
# the server. 'spawn' rather than 'fork': the parent runs threads (the memory sampler).
SPAWN = multiprocessing.get_context("spawn")
ENCODED_RUNS = 16  # distinct runs each writer encodes; longer writers cycle through them


def _writer(target: Target, keepalive: bool, experiment_id: str, runs: list, seconds: float, barrier, stop, results) -> None:
    """One writer process: creates runs and logs them like mlflow.log_batch + end_run,
    then puts (runs finished, log-batch seconds, errors) on `results`."""
    encoded = [[data.encode(b) for b in data.log_batch_requests(i)] for i in runs[:ENCODED_RUNS]]
    client = Client(target, keepalive)
    done, latencies, errors = 0, [], []
    try:
        barrier.wait()
        deadline = time.monotonic() + seconds
        for n, i in enumerate(runs):
            if stop.is_set() or time.monotonic() > deadline:
                break
            try:
                run_id = client.call("POST", f"{API}/runs/create", body=data.create_run_body(experiment_id, i))["run"]["info"]["run_id"]
                for body in encoded[n % len(encoded)]:
                    latencies.append(client.timed("POST", f"{API}/runs/log-batch", body=data.with_run_id(body, run_id))[0])
                client.call("POST", f"{API}/runs/update", body=data.finish_run_body(run_id, i))
                done += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(str(exc)[:300])
    except (threading.BrokenBarrierError, KeyboardInterrupt):
        pass
    finally:
        client.close()
        results.put((done, latencies, errors))


class Writers:
    """`count` writer processes, released together once each has encoded its bodies; the
    clock runs from their release until the last one is done (finish()). stop.set() ends
    them early, at their next run."""

    def __init__(self, target: Target, keepalive: bool, experiment_id: str, *, count: int, runs_per_writer: int,
                 first: int, seconds: float):  # fmt: skip
        self.seconds = seconds
        self.stop = SPAWN.Event()
        self.results = SPAWN.Queue()
        barrier = SPAWN.Barrier(count + 1, timeout=120)
        self.processes = [
            SPAWN.Process(target=_writer, daemon=True, args=(
                target, keepalive, experiment_id, list(range(first + w * runs_per_writer, first + (w + 1) * runs_per_writer)),
                seconds, barrier, self.stop, self.results))  # fmt: skip
            for w in range(count)
        ]
        for process in self.processes:
            process.start()
        try:
            barrier.wait()
        except BaseException:
            self._end(terminate=True)
            raise
        self.start = time.perf_counter()

    def finish(self) -> IngestResult:
        """Wait for every writer's report (set stop first to end open-ended writers)."""
        terminate = True
        try:
            outcomes = [self.results.get(timeout=self.seconds + 120) for _ in self.processes]
            elapsed = time.perf_counter() - self.start
            terminate = False
        finally:
            self._end(terminate)
        done, latencies, errors = zip(*outcomes, strict=True)
        return IngestResult(sum(done), elapsed, [t for ts in latencies for t in ts], [e for es in errors for e in es])

    def _end(self, terminate: bool) -> None:
        for process in self.processes:
            if terminate:
                process.terminate()
            process.join()


def ingest(target: Target, keepalive: bool, experiment_id: str, *, writers: int, runs_per_writer: int, first: int,
           seconds: float) -> IngestResult:  # fmt: skip
    """`writers` writer processes, each creating and logging `runs_per_writer` runs (or
    until `seconds` have passed). Bodies are encoded before the clock starts."""
    return Writers(target, keepalive, experiment_id, count=writers, runs_per_writer=runs_per_writer, first=first,
                   seconds=seconds).finish()  # fmt: skip


def workload_ingest(bench: Bench) -> None:
    s = bench.scale
    first = 100_000  # run numbers apart from the search runs
    for mode, keepalive in MODES:
        for target in bench.targets:
            bench.check_stop()
            setup = Client(target, True)
            exp1 = create_experiment(setup, f"ingest-1w-{mode}-{target.name}")
            exp8 = create_experiment(setup, f"ingest-8w-{mode}-{target.name}")
            setup.close()
            log(f"ingest [{mode}] {target.label}")
            one = ingest(target, keepalive, exp1, writers=1, runs_per_writer=s.ingest_runs, first=first, seconds=s.ingest_seconds)
            first += s.ingest_runs
            eight = ingest(target, keepalive, exp8, writers=8, runs_per_writer=s.ingest_runs_per_writer, first=first,
                           seconds=s.ingest_seconds)  # fmt: skip
            first += 8 * s.ingest_runs_per_writer
            _put_ingest(bench, target.name, mode, one, eight)
    if "portal_token" in [t.name for t in bench.targets]:
        _limit(bench)


def _put_ingest(bench: Bench, variant: str, mode: str, one: IngestResult, eight: IngestResult) -> None:
    sheet = bench.sheet
    for label, result in (("1 writer", one), ("8 writers", eight)):
        if result.runs == 0:
            failed = Failed(result.errors[0] if result.errors else "no run finished")
            sheet.put(W_INGEST, f"{label}: metric points/s [{mode}]", variant, failed, "pts/s", note=f"{variant}: {failed.reason}")
            continue
        goal = Goal("ratio>=", 10) if label == "1 writer" else None
        sheet.put(W_INGEST, f"{label}: metric points/s [{mode}]", variant, result.points_per_s, "pts/s", goal)
        sheet.put(W_INGEST, f"{label}: runs/s [{mode}]", variant, result.runs / result.seconds, "runs/s")
        if label == "1 writer":
            put_latency(bench, W_INGEST, f"1 writer: log-batch [{mode}]", variant, result.latencies)
        sheet.put(W_INGEST, f"{label}: errors [{mode}]", variant, len(result.errors), "", Goal("<=", 0),
                  note=f"{variant}: {result.errors[0]}" if result.errors else "")  # fmt: skip
    if one.runs and eight.runs:
        sheet.put(W_INGEST, f"8 writers / 1 writer, points/s [{mode}]", variant, eight.points_per_s / one.points_per_s, "×",
                  Goal(">=", 1.5))  # fmt: skip


def _limit(bench: Bench) -> None:
    """The same ingest rows bulk-inserted straight into the portal's database."""
    s = bench.scale
    setup = Client(bench.target("portal_token"), True)
    experiment_id = create_experiment(setup, "ingest-direct-limit")
    setup.close()
    log(f"direct bulk inserts into the portal's database ({s.limit_runs} runs)")
    result = attempt(lambda: finish_direct(direct(bench, "portal", experiment_id, 300_000, s.limit_runs, data.STEPS, 1), 600))
    metric = "direct bulk insert, no HTTP (the limit): points/s"
    if isinstance(result, Failed):
        bench.sheet.put(W_INGEST, metric, "portal_token", result, "pts/s", note=result.reason)
        return
    limit = result["points"] / result["seconds"]
    bench.sheet.put(W_INGEST, metric, "portal_token", limit, "pts/s",
                    note="one transaction per run (run, tags, params, 1,000 history rows, latest values); the portal's "
                    "database (COPY on PostgreSQL, multi-row INSERTs on SQLite), no HTTP, no Django ORM")  # fmt: skip
    for variant in ("portal_token", "portal_basic"):
        for label in ("1 writer", "8 writers"):
            value = bench.sheet.get(W_INGEST, f"{label}: metric points/s [keep-alive]", variant)
            if isinstance(value, (int, float)):
                goal = Goal(">=", 0.5) if label == "1 writer" else None
                bench.sheet.put(W_INGEST, f"{label} keep-alive ingest as a fraction of the limit", variant, value / limit, "ratio", goal)


# ---------------------------------------------------------------- 2. search

QUERIES = (
    ("metrics.m0 > 0.5", "metrics.m0 > 0.5", []),
    ("params.p3 = 'v3'", "params.p3 = 'v3'", []),
    ("tags.t1 LIKE '%x%'", "tags.t1 LIKE '%x%'", []),
    ("the three ANDed, order by metrics.m1", "metrics.m0 > 0.5 and params.p3 = 'v3' and tags.t1 LIKE '%x%'", ["metrics.m1 DESC"]),
)


def search_body(experiment_id: str, filter_string: str, order_by: list, max_results: int, page_token: str | None = None) -> dict:
    """What MlflowClient.search_runs posts (empty fields are left out, as protobuf does)."""
    body = {"experiment_ids": [experiment_id], "filter": filter_string, "run_view_type": "ACTIVE_ONLY", "max_results": max_results}
    if order_by:
        body["order_by"] = order_by
    if page_token:
        body["page_token"] = page_token
    return body


def paginate(client: Client, experiment_id: str, per_page: int, limit_pages: int) -> tuple[float, int]:
    total, token, elapsed = 0, None, 0.0
    for _ in range(limit_pages):
        seconds, page = client.timed("POST", f"{API}/runs/search", body=search_body(experiment_id, "", [], per_page, token))
        elapsed += seconds
        total += len(page.get("runs", []))
        token = page.get("next_page_token")
        if not token:
            break
    return elapsed, total


def workload_search(bench: Bench) -> None:
    s = bench.scale
    experiments = {}
    for target in bench.targets:
        if target.server not in experiments:
            setup = Client(target, True)
            experiments[target.server] = create_experiment(setup, "search")
            setup.close()
    bench.state["search_experiments"] = experiments
    sizes = sorted(set(s.search_sizes) | {s.search_main})
    seeded = {srv: 0 for srv in experiments}
    growth = {}  # size -> variant -> p50 seconds
    seeding = []  # what the notes say about the seeding
    for size in sizes:
        bench.check_stop()
        # MLflow stops at mlflow_max_runs (huge's million is the portal's alone), to bound the run's time.
        stores = [srv for srv in experiments if srv == "portal" or size <= s.mlflow_max_runs]
        log(f"search: seeding {' and '.join(stores)} up to {size:,} runs")
        began = time.monotonic()
        processes = {srv: direct(bench, srv, experiments[srv], seeded[srv], size - seeded[srv], 1, 1000, analyze=True)
                     for srv in stores}  # fmt: skip
        for srv, process in processes.items():
            result = finish_direct(process, 4 * 3600)
            log(f"  {srv}: {result['rows']:,} rows in {result['seconds']:.1f} s")
            seeded[srv] = size
        seeding.append(f"{size:,} runs in {time.monotonic() - began:.0f} s ({', '.join(stores)})")
        if size == s.search_main:
            _search_suite(bench, experiments, size, growth)
        else:
            _search_growth_point(bench, experiments, size, growth)
        if size == s.issue_size:
            _search_issue_suite(bench, experiments, size)
    bench.notes.append(f"search seeding, straight into the databases with ANALYZE, up to: {'; '.join(seeding)}")
    _search_growth_summary(bench, sizes, growth)


def _search_suite(bench: Bench, experiments: dict, size: int, growth: dict) -> None:
    first_pages = {}
    for mode, keepalive in MODES:
        for target in bench.targets:
            log(f"search at {size:,} runs [{mode}] {target.label}")
            client = Client(target, keepalive)
            experiment_id = experiments[target.server]
            for label, filter_string, order_by in QUERIES:
                body = search_body(experiment_id, filter_string, order_by, 100)
                times = attempt(lambda: repeat(bench, lambda: client.timed("POST", f"{API}/runs/search", body=body)[0]))
                put_latency(bench, W_SEARCH, f"{label}, 100/page, {size:,} runs [{mode}]", target.name, times,
                            p95_goal=Goal("ratio<=", 0.1))  # fmt: skip
                if label.startswith("the three") and not isinstance(times, Failed):
                    page = attempt(lambda: client.call("POST", f"{API}/runs/search", body=body))
                    if not isinstance(page, Failed):
                        first_pages[target.name] = [r["data"].get("metrics") for r in page.get("runs", [])]
                    if keepalive:
                        growth.setdefault(size, {})[target.name] = statistics.median(times)
            pages = attempt(lambda: repeat(bench, lambda: paginate(client, experiment_id, 1000, size // 1000 + 2)[0],
                                            reps=MIN_REPS))  # fmt: skip
            put_latency(bench, W_SEARCH, f"full pagination, 1000/page, {size:,} runs [{mode}]", target.name, pages,
                        unit_s=True, p95=False)  # fmt: skip
            if mode == "keep-alive":
                counted = attempt(lambda: paginate(client, experiment_id, 1000, size // 1000 + 2)[1])
                if counted != size:
                    bench.notes.append(f"search: {target.label} paged through {counted} runs, expected {size}")
            client.close()
    lengths = {k: len(v) for k, v in first_pages.items()}
    if len(set(lengths.values())) > 1:
        bench.notes.append(f"search: the ANDed query's first page differs in length between servers: {lengths}")


def _search_growth_point(bench: Bench, experiments: dict, size: int, growth: dict) -> None:
    label, filter_string, order_by = QUERIES[-1]
    for target in bench.targets:
        if target.name == "portal_basic" or (target.server == "mlflow" and size > bench.scale.mlflow_max_runs):
            continue
        log(f"search growth at {size:,} runs {target.label}")
        client = Client(target, True)
        body = search_body(experiments[target.server], filter_string, order_by, 100)
        times = attempt(lambda: repeat(bench, lambda: client.timed("POST", f"{API}/runs/search", body=body)[0]))
        client.close()
        goal = None
        if size >= 1_000_000:
            goal = issue_goal(bench, "million_p95")
        elif size >= 100_000:
            goal = issue_goal(bench, "query_p95")
        put_latency(bench, W_SEARCH, f"growth: ANDed query, {size:,} runs [keep-alive]", target.name, times, p95_goal=goal)
        if not isinstance(times, Failed):
            growth.setdefault(size, {})[target.name] = statistics.median(times)


def _search_growth_summary(bench: Bench, sizes: list, growth: dict) -> None:
    """The growth exponent over the whole curve (< 1: sub-linear), from 10,000 to 100,000
    runs (issue 9: ≤ 0.3) and, with a point beyond 100,000 runs (the portal only), up to
    100,000 and from 100,000 on."""
    if len(sizes) < 2:
        return
    spans = [(sizes[0], sizes[-1], Goal("<", 1.0))]
    if 10_000 in sizes and 100_000 in sizes and (10_000, 100_000) != spans[0][:2]:
        spans.append((10_000, 100_000, issue_goal(bench, "exponent")))
    if 100_000 in sizes and sizes[-1] > 100_000:
        spans.append((sizes[0], 100_000, None))  # the whole curve as far as MLflow is seeded, for comparison
        spans.append((100_000, sizes[-1], None))
    for low, high, goal in spans:
        for variant in ("portal_token", "mlflow"):
            a, b = growth.get(low, {}).get(variant), growth.get(high, {}).get(variant)
            if a and b:
                exponent = math.log(b / a) / math.log(high / low)
                bench.sheet.put(W_SEARCH, f"growth exponent of the ANDed query p50, {low:,} → {high:,} runs", variant, exponent,
                                "", goal, note="latency ∝ runs^exponent; below 1 is sub-linear")  # fmt: skip


# ---------------------------------------------------------------- 2b. search at the issue's size (issue 9)

DEFAULT_NONE = "keep-alive, default NONE"  # the mode of every row below
SUITE_WARMUP = 2  # rounds of every request before timing
EXTRA_MLFLOW_CAP = 5.0  # seconds: MLflow's answer to an extra query slower than this is not repeated
DEEP_PAGE = 500
DEEP_ORDER = ["metrics.m1 DESC"]
DEEP_WALK_SECONDS = 900.0  # cap of one walk to the deep page


def extra_queries(size: int) -> tuple:
    """Issue 9's queries on run attributes, ordered by a param, start_time and a metric.
    Of `size` runs (data.py) the status filter keeps nine tenths, the name filter the runs
    numbered 1, 10-19, 100-199, ... (11,111 of 100,000), the start-time filter the newer half."""
    middle = data.BASE_TIME_MS + (size // 2) * 1000
    return (
        ("attributes.status = 'FINISHED', order by params.p5", "attributes.status = 'FINISHED'", ["params.p5 ASC"]),
        ("attributes.run_name LIKE 'bench-run-1%', order by start_time", "attributes.run_name LIKE 'bench-run-1%'",
         ["attributes.start_time ASC"]),
        ("attributes.start_time >= the middle (newer half), order by metrics.m2", f"attributes.start_time >= {middle}",
         ["metrics.m2 ASC"]),
    )  # fmt: skip


def team_user(bench: Bench, experiment_ids: list | tuple = ()) -> dict:
    """The team-granted user (seed_catalog.py team-user): made on the first call, its team
    given READ on `experiment_ids`; each call hands out a new token."""
    args = [sys.executable, str(BENCH_DIR / "seed_catalog.py"), "team-user"]
    for experiment_id in experiment_ids:
        args += ["--experiment", str(experiment_id)]
    began = time.monotonic()
    made = run_script(args, bench.portal_env, timeout=600)
    log(f"  team-granted user {made['user']} (team {made['team']}) in {time.monotonic() - began:.1f} s")
    if made.get("superuser"):
        bench.notes.append(f"team user: {made['user']} is a superuser: its rows do not measure the permission filter")
    return made


def _none_clients(bench: Bench, stack: ExitStack, name: str, token: str) -> dict:
    """Another gunicorn on the portal's database with PORTAL_DEFAULT_PERMISSION=NONE (the
    team user reads only what its team was granted); keep-alive clients for the superuser
    (its token) and the team user."""
    url = bench.serve_portal(stack, {"PORTAL_DEFAULT_PERMISSION": "NONE"}, name)
    superuser = Target("portal_token", "superuser", url, bench.target("portal_token").headers, "portal")
    member = Target("team_user", "user via team grant", url, {"Authorization": f"Bearer {token}"}, "portal")
    return {t.name: stack.enter_context(closing(Client(t, True))) for t in (superuser, member)}


def _search_issue_suite(bench: Bench, experiments: dict, size: int) -> None:
    """Issue 9 at `size` runs in one experiment, for a superuser and a user whose only access
    is its team's READ grant, on a portal with PORTAL_DEFAULT_PERMISSION=NONE: QUERIES and
    extra_queries (MLflow too), the deep page against page 1, full pagination."""
    if bench.serve_portal is None:
        raise RuntimeError("the issue suite needs bench.serve_portal")
    s = bench.scale
    experiment_id = experiments["portal"]
    log(f"search at {size:,} runs: the team-granted user")
    made = team_user(bench, [experiment_id])
    with ExitStack() as stack:
        log("search: portal with PORTAL_DEFAULT_PERMISSION=NONE")
        users = _none_clients(bench, stack, "gunicorn-search-none", made["token"])
        mlflow = None
        if "mlflow" in experiments and size <= s.mlflow_max_runs:
            mlflow = stack.enter_context(closing(Client(bench.target("mlflow"), True)))
        _team_user_checks(bench, users, experiment_id)
        for original, (label, filter_string, order_by) in [(True, q) for q in QUERIES] + [(False, q) for q in extra_queries(size)]:
            bench.check_stop()
            log(f"search at {size:,} runs [{DEFAULT_NONE}]: {label}")
            _issue_query(bench, users, mlflow, experiments, size, label, filter_string, order_by, original)
        _deep_page(bench, users, experiment_id, size)
        _issue_pagination(bench, users, experiment_id, size)


def _team_user_checks(bench: Bench, users: dict, experiment_id: str) -> None:
    """The team user reads the granted experiment and not one it was not granted."""
    superuser, member = users["portal_token"], users["team_user"]
    other = create_experiment(superuser, "search-not-granted")
    problems = []
    for wanted, eid in ((200, experiment_id), (404, other)):
        try:
            member.call("GET", f"{API}/experiments/get", params={"experiment_id": eid})
            status = 200
        except ApiError as exc:
            status = exc.status
        if (status == 200) != (wanted == 200):
            problems.append(f"experiments/get of {'the granted' if wanted == 200 else 'an ungranted'} experiment answered {status}")
    bench.notes += [f"search: the team user under PORTAL_DEFAULT_PERMISSION=NONE: {p}" for p in problems]


def _names(page: dict) -> list[str]:
    return [r["info"].get("run_name", "") for r in page.get("runs", [])]


def _issue_query(bench, users, mlflow, experiments, size, label, filter_string, order_by, original) -> None:
    s = bench.scale
    row = f"{label}, 100/page, {size:,} runs [{DEFAULT_NONE}]"
    goal = issue_goal(bench, "query_p95")
    body = data.encode(search_body(experiments["portal"], filter_string, order_by, 100))
    calls = {name: (lambda c=client: c.timed("POST", f"{API}/runs/search", body=body)[0]) for name, client in users.items()}
    times = attempt(lambda: _interleaved(bench, calls, reps=s.reps, seconds=s.rep_seconds, warmup=SUITE_WARMUP))
    for variant in users:
        put_latency(bench, W_SEARCH, row, variant, times if isinstance(times, Failed) else times[variant], p95_goal=goal)
    pages = {name: attempt(lambda c=client: c.call("POST", f"{API}/runs/search", body=body)) for name, client in users.items()}
    if any(isinstance(p, Failed) for p in pages.values()):
        return
    ids = {name: [r["info"]["run_id"] for r in page.get("runs", [])] for name, page in pages.items()}
    if ids["portal_token"] != ids["team_user"] or not ids["portal_token"]:
        bench.notes.append(f"search: {label} at {size:,} runs: the superuser and the team user got different first pages "
                           f"({len(ids['portal_token'])} and {len(ids['team_user'])} runs)")  # fmt: skip
    if mlflow is None:
        return
    ml_body = data.encode(search_body(experiments["mlflow"], filter_string, order_by, 100))
    first = attempt(lambda: mlflow.timed("POST", f"{API}/runs/search", body=ml_body))
    if isinstance(first, Failed):
        put_latency(bench, W_SEARCH, row, "mlflow", first)
        return
    if not original and first[0] > EXTRA_MLFLOW_CAP:
        bench.notes.append(f"search (issue 9): MLflow not timed on {label} at {size:,} runs: one answer took {first[0]:.1f} s")
    else:
        times = attempt(lambda: repeat(bench, lambda: mlflow.timed("POST", f"{API}/runs/search", body=ml_body)[0],
                                       reps=None if original else MIN_REPS))  # fmt: skip
        put_latency(bench, W_SEARCH, row, "mlflow", times)
    portal_names, mlflow_names = _names(pages["portal_token"]), _names(first[1])
    if portal_names != mlflow_names:
        at = next((n for n, (a, b) in enumerate(zip(portal_names, mlflow_names, strict=False)) if a != b), min(len(portal_names), len(mlflow_names)))
        bench.notes.append(f"search: {label} at {size:,} runs: the portal's first page differs from MLflow's "
                           f"({len(portal_names)} and {len(mlflow_names)} runs, first difference at position {at})")  # fmt: skip


def _walk(bench: Bench, client: Client, experiment_id: str, per_page: int, deep: int) -> str:
    """Follow next_page_token from page 1 of the deep query to page `deep` (not timed) and
    return the token of page `deep`. Every page must be full, no run may come twice and
    metrics.m1 never increase; page `deep` is checked the same way."""
    token, seen, last = None, set(), math.inf
    started = time.monotonic()
    for page in range(1, deep + 1):
        bench.check_stop()
        if time.monotonic() - started > DEEP_WALK_SECONDS:
            raise RuntimeError(f"the walk to page {deep} took more than {DEEP_WALK_SECONDS:.0f} s (stopped at page {page})")
        answer = client.call("POST", f"{API}/runs/search", body=search_body(experiment_id, "", DEEP_ORDER, per_page, token))
        runs = answer.get("runs", [])
        if len(runs) != per_page:
            raise RuntimeError(f"page {page} held {len(runs)} runs, expected {per_page}")
        for run in runs:
            run_id = run["info"]["run_id"]
            if run_id in seen:
                raise RuntimeError(f"run {run_id} came again on page {page}")
            seen.add(run_id)
            value = next((m["value"] for m in run.get("data", {}).get("metrics", []) if m["key"] == "m1"), None)
            if value is None or value > last:
                raise RuntimeError(f"metrics.m1 out of order on page {page}: {value} after {last}")
            last = value
        if page == deep:
            return token
        token = answer.get("next_page_token")
        if not token:
            raise RuntimeError(f"no next_page_token after page {page} ({len(seen):,} runs)")
    raise AssertionError("unreachable")


def _deep_page(bench: Bench, users: dict, experiment_id: str, size: int) -> None:
    """Page DEEP_PAGE (fewer at small sizes) of every run ordered by metrics.m1 DESC against
    page 1: the token walked to (not timed), then both pages timed alternately per user."""
    s = bench.scale
    per_page = 100 if size >= 2_000 else 10
    deep = min(DEEP_PAGE, size // per_page)
    if deep < 2:
        return
    base = f"no filter, order by metrics.m1 DESC, {per_page}/page, {size:,} runs"
    tokens = {}
    for name, client in users.items():
        log(f"search at {size:,} runs: {client.target.label} walks to page {deep}")
        began = time.monotonic()
        tokens[name] = attempt(lambda c=client: _walk(bench, c, experiment_id, per_page, deep))
        log(f"  {time.monotonic() - began:.1f} s")
    calls = {}
    for name, token in tokens.items():
        if isinstance(token, Failed):
            continue
        for page, page_token in ((1, None), (deep, token)):
            body = data.encode(search_body(experiment_id, "", DEEP_ORDER, per_page, page_token))
            calls[(name, page)] = lambda c=users[name], b=body: c.timed("POST", f"{API}/runs/search", body=b)[0]
    log(f"search at {size:,} runs: page 1 against page {deep}")
    times = attempt(lambda: _interleaved(bench, calls, reps=s.reps, seconds=2 * s.rep_seconds, warmup=SUITE_WARMUP)) if calls else {}
    goal = issue_goal(bench, "deep_ratio")
    for name in users:
        value = tokens[name] if isinstance(tokens[name], Failed) else times
        for page in (1, deep):
            put_latency(bench, W_SEARCH, f"{base}: page {page} [{DEFAULT_NONE}]", name,
                        value if isinstance(value, Failed) else value[(name, page)])  # fmt: skip
        for stat, fn in (("p50", statistics.median), ("p95", lambda v: pct(v, 0.95))):
            ratio = value if isinstance(value, Failed) else fn(value[(name, deep)]) / fn(value[(name, 1)])
            bench.sheet.put(W_SEARCH, f"{base}: page {deep} / page 1, {stat} [{DEFAULT_NONE}]", name, ratio, "×", goal,
                            note=f"{name}: {value.reason}" if isinstance(value, Failed) else "")  # fmt: skip


def _issue_pagination(bench: Bench, users: dict, experiment_id: str, size: int) -> None:
    """Every run at 1000 per page, following next_page_token, for both users in turn."""
    counts = {name: set() for name in users}

    def once(name: str) -> float:
        seconds, total = paginate(users[name], experiment_id, 1000, size // 1000 + 2)
        counts[name].add(total)
        return seconds

    log(f"search at {size:,} runs: full pagination")
    calls = {name: (lambda n=name: once(n)) for name in users}
    times = attempt(lambda: _interleaved(bench, calls, reps=MIN_REPS, seconds=0, warmup=0))
    goal = issue_goal(bench, "pagination_s") if size >= 100_000 else None
    for name in users:
        put_latency(bench, W_SEARCH, f"full pagination, 1000/page, {size:,} runs [{DEFAULT_NONE}]", name,
                    times if isinstance(times, Failed) else times[name], unit_s=True, p50_goal=goal, p95=False)  # fmt: skip
        if counts[name] and counts[name] != {size}:
            bench.notes.append(f"search: {users[name].target.label} paged through {sorted(counts[name])} runs, expected {size}")


# ---------------------------------------------------------------- 3. history

METRIC_KEY = "loss"


def workload_history(bench: Bench) -> None:
    s = bench.scale
    steps = s.history_steps
    runs = {}
    for target in bench.targets:
        if target.server in runs:
            continue
        client = Client(target, True)
        experiment_id = create_experiment(client, "history")
        run_id = create_run(client, experiment_id, 0)["run_id"]
        log(f"history: logging {steps:,} points of one metric to {target.server}")
        elapsed = 0.0
        result = None
        try:
            for start in range(0, steps, data.MAX_METRICS_PER_BATCH):
                bench.check_stop()
                points = [{"key": METRIC_KEY, "value": 1.0 / (step + 1), "timestamp": data.BASE_TIME_MS + step, "step": step}
                          for step in range(start, min(start + data.MAX_METRICS_PER_BATCH, steps))]  # fmt: skip
                elapsed += client.timed("POST", f"{API}/runs/log-batch", body={"run_id": run_id, "metrics": points, "params": [], "tags": []})[0]
            result = steps / elapsed
        except ApiError as exc:
            result = Failed(str(exc))
        client.close()
        runs[target.server] = run_id
        bench.sheet.put(W_HISTORY, f"write {steps:,} points of one metric, log-batch of 1,000 [keep-alive]", target.name,
                        result, "pts/s")  # fmt: skip
    bench.state["history_runs"] = runs
    for mode, keepalive in MODES:
        for target in bench.targets:
            log(f"history reads [{mode}] {target.label}")
            _history_reads(bench, target, mode, keepalive, runs[target.server], steps)


def _full_history(client: Client, run_id: str, limit_pages: int = 1000) -> tuple[float, int]:
    """What MlflowClient.get_metric_history does: pages of 25,000 until no next_page_token."""
    total, token, elapsed = 0, None, 0.0
    for _ in range(limit_pages):
        params = {"run_id": run_id, "run_uuid": run_id, "metric_key": METRIC_KEY, "max_results": 25000}
        if token:
            params["page_token"] = token
        seconds, page = client.timed("GET", f"{API}/metrics/get-history", params=params)
        elapsed += seconds
        total += len(page.get("metrics", []))
        token = page.get("next_page_token")
        if not token:
            break
    return elapsed, total


def _history_reads(bench: Bench, target: Target, mode: str, keepalive: bool, run_id: str, steps: int) -> None:
    client = Client(target, keepalive)
    counts = []

    def once():
        seconds, count = _full_history(client, run_id)
        counts.append(count)
        return seconds

    times = attempt(lambda: repeat(bench, once, reps=max(MIN_REPS, bench.scale.reps // 10)))
    put_latency(bench, W_HISTORY, f"get-history, all {steps:,} points [{mode}]", target.name, times, unit_s=True,
                p50_goal=Goal("ratio<=", 0.1), p95=False)  # fmt: skip
    if counts and any(c != steps for c in counts):
        bench.notes.append(f"history: {target.label} returned {sorted(set(counts))} points, expected {steps}")
    for label, extra in (("whole run", {}), ("zoomed to 40-60%", {"start_step": steps * 2 // 5, "end_step": steps * 3 // 5})):
        params = {"run_ids": run_id, "metric_key": METRIC_KEY, "max_results": 320, **extra}
        times = attempt(lambda: repeat(bench, lambda: client.timed("GET", f"{AJAX}/metrics/get-history-bulk-interval", params=params)[0]))
        put_latency(bench, W_HISTORY, f"get-history-bulk-interval, 320 samples, {label} [{mode}]", target.name, times,
                    p50_goal=Goal("<=", 50))  # fmt: skip
    client.close()


# ---------------------------------------------------------------- 4. registry

MLMODEL = b"artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    python_version: 3.11.7\n"


def _registry_setup(bench: Bench, target: Target) -> dict:
    client = Client(target, True)
    experiment_id = create_experiment(client, "registry")
    info = create_run(client, experiment_id, 0)
    root = artifact_root(info)
    model_file = bench.workdir / "MLmodel"
    model_file.write_bytes(MLMODEL)
    client.upload(f"{ARTIFACTS}/{root}/model/MLmodel", str(model_file))
    client.close()
    return {"run_id": info["run_id"], "source": info["artifact_uri"].rstrip("/") + "/model"}


def workload_registry(bench: Bench) -> None:
    s = bench.scale
    setups = {}
    for target in bench.targets:
        if target.server not in setups:
            setups[target.server] = attempt(lambda: _registry_setup(bench, target))
    bench.state["registry"] = {}
    for mode, keepalive in MODES:
        for target in bench.targets:
            log(f"registry [{mode}] {target.label}")
            setup = setups[target.server]
            name = f"bench-model-{target.name}-{mode}"
            results = _registry_ops(bench, Client(target, keepalive), name, setup, s.registry_versions)
            for op, times in results.items():
                put_latency(bench, W_REGISTRY, f"{op} [{mode}]", target.name, times, p50_goal=Goal("ratio<=", 1 / 3), p95=False)
            if target.server == "mlflow" and keepalive:
                bench.state["registry"]["mlflow"] = name


def _registry_ops(bench: Bench, client: Client, name: str, setup, versions: int) -> dict:
    """Each operation's latencies, or Failed with the first error. Bounded counts."""
    ops = [
        "registered-models/create",
        "model-versions/create",
        "model-versions/get",
        "transition-stage to Staging",
        "transition-stage to Production, archive existing",
        "set alias",
        "get version by alias",
        "get-latest-versions",
        "search model-versions by name",
        "search registered-models",
        "registered-models/get",
    ]
    if isinstance(setup, Failed):
        return {op: setup for op in ops}
    results: dict = {}
    k = min(versions, 20, max(MIN_REPS, bench.scale.reps // 2))

    def timed(op: str, method: str, path: str, **kwargs):
        if isinstance(results.get(op), Failed):
            return None
        try:
            seconds, answer = client.timed(method, path, **kwargs)
        except ApiError as exc:
            results[op] = Failed(str(exc))
            return None
        results.setdefault(op, []).append(seconds)
        return answer

    deadline = time.monotonic() + max(30.0, bench.scale.rep_seconds * 10)
    timed("registered-models/create", "POST", f"{API}/registered-models/create", body={"name": name, "tags": []})
    numbers = []
    for _ in range(versions):
        bench.check_stop()
        if time.monotonic() > deadline:
            break
        answer = timed("model-versions/create", "POST", f"{API}/model-versions/create",
                       body={"name": name, "source": setup["source"], "run_id": setup["run_id"], "tags": []})  # fmt: skip
        if answer is None:
            break
        numbers.append(str(answer["model_version"]["version"]))
    if not numbers:
        failed = results.get("model-versions/create") or results.get("registered-models/create") or Failed("no version")
        client.close()
        return {op: results.get(op, failed) for op in ops}
    pick = [numbers[n % len(numbers)] for n in range(k)]
    for v in pick:
        timed("model-versions/get", "GET", f"{API}/model-versions/get", params={"name": name, "version": v})
    for v in pick:
        timed("transition-stage to Staging", "POST", f"{API}/model-versions/transition-stage",
              body={"name": name, "version": v, "stage": "Staging", "archive_existing_versions": False})  # fmt: skip
    for v in pick[: max(MIN_REPS, k // 4)]:
        timed("transition-stage to Production, archive existing", "POST", f"{API}/model-versions/transition-stage",
              body={"name": name, "version": v, "stage": "Production", "archive_existing_versions": True})  # fmt: skip
    for v in pick:
        timed("set alias", "POST", f"{API}/registered-models/alias", body={"name": name, "alias": "champion", "version": v})
    for _ in pick:
        timed("get version by alias", "GET", f"{API}/registered-models/alias", params={"name": name, "alias": "champion"})
    for _ in pick:
        timed("get-latest-versions", "POST", f"{API}/registered-models/get-latest-versions", body={"name": name})
    for _ in pick:
        timed("search model-versions by name", "GET", f"{API}/model-versions/search",
              params={"filter": f"name='{name}'", "max_results": 10000})  # fmt: skip
    for _ in pick:
        timed("search registered-models", "GET", f"{API}/registered-models/search",
              params={"filter": "name LIKE 'bench-model%' AND tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 100})  # fmt: skip
    for _ in pick:
        timed("registered-models/get", "GET", f"{API}/registered-models/get", params={"name": name})
    client.close()
    return {op: results.get(op, Failed("not reached")) for op in ops}


# ---------------------------------------------------------------- 5. artifacts


def _make_file(path: Path, megabytes: int) -> None:
    if path.exists() and path.stat().st_size == megabytes * 1024 * 1024:
        return
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1024 * 1024))


def workload_artifacts(bench: Bench) -> None:
    s = bench.scale
    small = bench.workdir / "one-mb.bin"
    big = bench.workdir / f"{s.artifact_big_mb}-mb.bin"
    _make_file(small, 1)
    _make_file(big, s.artifact_big_mb)
    roots = {}
    for target in bench.targets:
        if target.server not in roots:
            client = Client(target, True)
            roots[target.server] = artifact_root(create_run(client, create_experiment(client, "artifacts"), 0))
            client.close()
    for mode, keepalive in MODES:
        for target in bench.targets:
            bench.check_stop()
            log(f"artifacts [{mode}] {target.label}")
            client = Client(target, keepalive)
            base = f"{ARTIFACTS}/{roots[target.server]}/{target.name}-{mode}"
            n = s.artifact_files
            up = attempt(lambda: sum(client.upload(f"{base}/small-{i}.bin", str(small)) for i in range(n)))
            down = attempt(lambda: sum(client.download(f"{base}/small-{i}.bin")[0] for i in range(n)))
            label = f"{n} × 1 MB"
            for what, value in (("upload", up), ("download", down)):
                rate = value if isinstance(value, Failed) else n / value
                bench.sheet.put(W_ARTIFACTS, f"{label} {what} [{mode}]", target.name, rate, "MB/s", Goal("ratio>=", 1.0))
            window = bench.sampler.window_start(target.server)
            up = attempt(lambda: client.upload(f"{base}/big.bin", str(big)))
            down = attempt(lambda: client.download(f"{base}/big.bin"))
            growth = bench.sampler.window_end(window)
            label = f"1 × {s.artifact_big_mb} MB"
            for what, value in (("upload", up), ("download", down)):
                seconds = value[0] if isinstance(value, tuple) else value
                rate = seconds if isinstance(seconds, Failed) else s.artifact_big_mb / seconds
                bench.sheet.put(W_ARTIFACTS, f"{label} {what} [{mode}]", target.name, rate, "MB/s", Goal("ratio>=", 1.0))
            if isinstance(down, tuple) and down[1] != s.artifact_big_mb * 1024 * 1024:
                bench.notes.append(f"artifacts: {target.label} returned {down[1]} bytes for the {s.artifact_big_mb} MB file")
            bench.sheet.put(W_ARTIFACTS, f"server RSS growth while moving {label} up and down [{mode}]", target.name,
                            growth, "MB", Goal("<=", 50))  # fmt: skip
            client.close()


# ---------------------------------------------------------------- 6. reads under write load


def workload_load(bench: Bench) -> None:
    prepared = {}
    for target in bench.targets:
        if target.server in prepared:
            continue
        client = Client(target, True)
        experiment_id = create_experiment(client, "load-reads")
        ingest(target, True, experiment_id, writers=1, runs_per_writer=1, first=200_000, seconds=60)
        run_id = client.call("POST", f"{API}/runs/search", body=search_body(experiment_id, "", [], 1))["runs"][0]["info"]["run_id"]
        prepared[target.server] = (experiment_id, run_id)
        client.close()
    bench.state["load"] = prepared
    first = 210_000
    for mode, keepalive in MODES:
        for target in bench.targets:
            bench.check_stop()
            experiment_id, run_id = prepared[target.server]
            log(f"reads, idle and under 8 writers [{mode}] {target.label}")
            reads_idle(bench, target, mode, keepalive, experiment_id, run_id)
            client = Client(target, True)
            write_exp = create_experiment(client, f"load-writes-{target.name}-{mode}")
            client.close()
            _reads_under_load(bench, target, mode, keepalive, experiment_id, run_id, write_exp, first)
            first += 8 * 1000


def _read_calls(experiment_id: str, run_id: str):
    return (
        ("runs/get", f"{API}/runs/get", {"run_id": run_id, "run_uuid": run_id}),
        ("experiments/get", f"{API}/experiments/get", {"experiment_id": experiment_id}),
    )


def reads_idle(bench: Bench, target: Target, mode: str, keepalive: bool, experiment_id: str, run_id: str) -> None:
    client = Client(target, keepalive)
    for name, path, params in _read_calls(experiment_id, run_id):
        times = attempt(lambda: repeat(bench, lambda: client.timed("GET", path, params=params)[0]))
        put_latency(bench, W_LOAD, f"idle: {name} [{mode}]", target.name, times)
    client.close()


def _reads_under_load(bench, target, mode, keepalive, experiment_id, run_id, write_exp, first) -> None:
    s = bench.scale
    writers = Writers(target, True, write_exp, count=8, runs_per_writer=1000, first=first, seconds=s.load_seconds + 30)
    calls = _read_calls(experiment_id, run_id)
    times = {name: [] for name, _, _ in calls}
    errors = []
    try:
        time.sleep(min(1.0, s.load_seconds / 4))  # let the writers get going
        client = Client(target, keepalive)
        deadline = time.monotonic() + s.load_seconds
        n = 0
        while time.monotonic() < deadline and n < 100_000 and not bench.stop.is_set():
            name, path, params = calls[n % len(calls)]
            n += 1
            try:
                times[name].append(client.timed("GET", path, params=params)[0])
            except Exception as exc:  # noqa: BLE001
                errors.append(str(exc)[:300])
        client.close()
    finally:
        writers.stop.set()
        result = writers.finish()
    for name, values in times.items():
        value = values if values else Failed(errors[0] if errors else "no read finished")
        put_latency(bench, W_LOAD, f"under load: {name} [{mode}]", target.name, value, p95_goal=Goal("ratio<=", 1 / 3))
    bench.sheet.put(W_LOAD, f"writers meanwhile: metric points/s [{mode}]", target.name, result.points_per_s, "pts/s")
    bench.sheet.put(W_LOAD, f"writer + reader errors [{mode}]", target.name, len(result.errors) + len(errors), "",
                    Goal("<=", 0), note=f"{target.name}: {(result.errors + errors)[0]}" if (result.errors or errors) else "")  # fmt: skip


# ---------------------------------------------------------------- MLflow's basic-auth app, reduced


def workload_mlflow_auth(bench: Bench, target: Target) -> None:
    """A reduced set of the rows above, for MLflow's basic-auth app on the same store."""
    s = bench.scale
    log(f"reduced workloads {target.label}")
    experiment_id, run_id = bench.state["load"]["mlflow"]
    for mode, keepalive in MODES:
        reads_idle(bench, target, mode, keepalive, experiment_id, run_id)
    client = Client(target, True)
    exp = create_experiment(client, "ingest-1w-keep-alive-auth")
    client.close()
    one = ingest(target, True, exp, writers=1, runs_per_writer=max(2, s.ingest_runs // 2), first=400_000,
                 seconds=s.ingest_seconds)  # fmt: skip
    if one.runs:
        bench.sheet.put(W_INGEST, "1 writer: metric points/s [keep-alive]", target.name, one.points_per_s, "pts/s")
        bench.sheet.put(W_INGEST, "1 writer: runs/s [keep-alive]", target.name, one.runs / one.seconds, "runs/s")
        put_latency(bench, W_INGEST, "1 writer: log-batch [keep-alive]", target.name, one.latencies)
    client = Client(target, True)
    search_exp = bench.state["search_experiments"]["mlflow"]
    label, filter_string, order_by = QUERIES[-1]
    body = search_body(search_exp, filter_string, order_by, 100)
    times = attempt(lambda: repeat(bench, lambda: client.timed("POST", f"{API}/runs/search", body=body)[0], reps=MIN_REPS))
    put_latency(bench, W_SEARCH, f"{label}, 100/page, {s.search_main:,} runs [keep-alive]", target.name, times)
    history_run = bench.state["history_runs"]["mlflow"]
    params = {"run_ids": history_run, "metric_key": METRIC_KEY, "max_results": 320}
    times = attempt(lambda: repeat(bench, lambda: client.timed("GET", f"{AJAX}/metrics/get-history-bulk-interval", params=params)[0]))
    put_latency(bench, W_HISTORY, "get-history-bulk-interval, 320 samples, whole run [keep-alive]", target.name, times)
    model = bench.state.get("registry", {}).get("mlflow")
    if model:
        times = attempt(lambda: repeat(bench, lambda: client.timed("GET", f"{API}/registered-models/get", params={"name": model})[0]))
        put_latency(bench, W_REGISTRY, "registered-models/get [keep-alive]", target.name, times, p95=False)
    client.close()
    workload_keepalive(bench, [target])


# ---------------------------------------------------------------- 7. keep-alive


def workload_keepalive(bench: Bench, targets: list | None = None) -> None:
    """Reused connection against fresh connection for the same request, interleaved
    (fresh, reused, fresh, ...) so that both see the same machine load."""
    s = bench.scale
    setups = bench.state.setdefault("keepalive", {})
    for target in targets or bench.targets:
        if target.server not in setups:
            client = Client(target, True)
            experiment_id = create_experiment(client, f"keep-alive-{target.server}")
            setups[target.server] = (experiment_id, create_run(client, experiment_id, 0)["run_id"])
            client.close()
        experiment_id, run_id = setups[target.server]
        calls = [
            ("runs/get", "GET", f"{API}/runs/get", {"run_id": run_id, "run_uuid": run_id}, None),
            ("experiments/get", "GET", f"{API}/experiments/get", {"experiment_id": experiment_id}, None),
            ("log-batch of 10 metrics", "POST", f"{API}/runs/log-batch", None, "log-batch"),
        ]
        search_experiment = bench.state.get("search_experiments", {}).get(target.server)
        if search_experiment is None and target.server == "mlflow_auth":
            search_experiment = bench.state.get("search_experiments", {}).get("mlflow")
        if search_experiment is not None:
            label, filter_string, order_by = QUERIES[-1]
            calls.append(("search, the three ANDed", "POST", f"{API}/runs/search", None,
                          search_body(search_experiment, filter_string, order_by, 100)))  # fmt: skip
        log(f"keep-alive against fresh connections {target.label}")
        reused, fresh = Client(target, True), Client(target, False)
        step = [0]

        def body_of(body):
            if body != "log-batch":
                return body
            step[0] += 1
            metrics = [{"key": f"k{k}", "value": 0.5, "timestamp": data.BASE_TIME_MS + step[0], "step": step[0]} for k in range(10)]
            return {"run_id": run_id, "metrics": metrics, "params": [], "tags": []}

        for name, method, path, params, body in calls:
            times = {"fresh": [], "keep-alive": []}
            failed = None
            try:
                reused.timed(method, path, params=params, body=body_of(body))  # open the reused connection first
            except ApiError as exc:
                failed = Failed(str(exc))
            started = time.monotonic()
            for n in range(s.reps):
                if failed is not None or (n >= MIN_REPS and time.monotonic() - started > 2 * s.rep_seconds):
                    break
                bench.check_stop()
                try:
                    times["fresh"].append(fresh.timed(method, path, params=params, body=body_of(body))[0])
                    times["keep-alive"].append(reused.timed(method, path, params=params, body=body_of(body))[0])
                except ApiError as exc:
                    failed = Failed(str(exc))
                    break
            for mode in ("fresh", "keep-alive"):
                put_latency(bench, W_KEEPALIVE, f"{name} [{mode}]", target.name, failed or times[mode], p95=False)
            if failed is None:
                ratio = statistics.median(times["keep-alive"]) / statistics.median(times["fresh"])
                bench.sheet.put(W_KEEPALIVE, f"{name}: keep-alive p50 / fresh p50", target.name, ratio, "×", Goal("<=", 1.05))
            else:
                bench.sheet.put(W_KEEPALIVE, f"{name}: keep-alive p50 / fresh p50", target.name, failed, "×", Goal("<=", 1.05))
        reused.close()


# ---------------------------------------------------------------- 8. permissions

PERM_DEFAULTS = ("NONE", "READ")  # PORTAL_DEFAULT_PERMISSION for each measured server
PERM_WARMUP = 4  # request pairs per query before timing: every gunicorn worker has run it once or so
PERM_TARGET = Goal("ratio<=", 1.5, of="superuser")
PERM_COMPARE = ("grantee", "superuser")


def workload_permissions(bench: Bench) -> None:
    """A user whose grants come through two teams against a superuser, on the same data:
    the read requests whose permission filter grows with the data (seed_permissions.py
    describes the data and the grants). The portal only: MLflow has nothing to compare.

    For each PORTAL_DEFAULT_PERMISSION in PERM_DEFAULTS a gunicorn of its own (the run's
    workers and threads) serves the portal's database; each query is sent by both users in
    turn (superuser first in even rounds, the user first in odd ones) over keep-alive
    connections, so both see the same machine load."""
    s = bench.scale
    if bench.serve_portal is None:
        raise RuntimeError("the permissions workload needs bench.serve_portal")
    log(f"permissions: seeding {s.perm_experiments:,} experiments, {s.perm_runs:,} runs, {s.perm_models:,} registered models, "
        "two teams' grants")  # fmt: skip
    args = [sys.executable, str(BENCH_DIR / "seed_permissions.py"), "--experiments", str(s.perm_experiments),
            "--runs", str(s.perm_runs), "--models", str(s.perm_models), "--analyze"]  # fmt: skip
    seeded = run_script(args, bench.portal_env, timeout=7200)
    log(f"  seeded in {seeded['seconds']:.0f} s ({seeded['rows']:,} run rows, {seeded['grants']:,} grant rows)")
    bench.notes.append(
        f"permissions: {s.perm_experiments:,} experiments, {s.perm_runs:,} runs ({seeded['rows']:,} rows with their tags, "
        f"params and metrics), {s.perm_models:,} registered models with a version each, seeded straight into the database "
        f"in {seeded['seconds']:.0f} s; the user reads {seeded['visible_experiments']['NONE']:,} experiments under "
        f"PORTAL_DEFAULT_PERMISSION=NONE and {seeded['visible_experiments']['READ']:,} under READ; keep-alive, "
        "superuser and user interleaved"
    )
    superuser = Target("superuser", "superuser", "", bench.target("portal_token").headers, "portal")
    grantee = Target("grantee", "user in 2 teams", "", {"Authorization": f"Bearer {seeded['token']}"}, "portal")
    for default in PERM_DEFAULTS:
        bench.check_stop()
        with ExitStack() as stack:
            log(f"permissions: portal with PORTAL_DEFAULT_PERMISSION={default}")
            url = bench.serve_portal(stack, {"PORTAL_DEFAULT_PERMISSION": default}, f"gunicorn-default-{default.lower()}")
            clients = {
                name: stack.enter_context(closing(Client(Target(t.name, t.label, url, t.headers, t.server), True)))
                for name, t in (("superuser", superuser), ("grantee", grantee))
            }
            _permission_checks(bench, clients, seeded, default)
            for label, method, path, params, body in _permission_queries(bench, seeded):
                log(f"permissions [default {default}] {label}")
                times = attempt(lambda: _paired(bench, clients, method, path, params, body))
                for variant in ("superuser", "grantee"):
                    value = times if isinstance(times, Failed) else times[variant]
                    failed = isinstance(value, Failed)
                    for name, number, goal in (
                        ("p50", value if failed else statistics.median(value) * 1000, None),
                        ("p95", value if failed else pct(value, 0.95) * 1000, PERM_TARGET),
                    ):
                        bench.sheet.put(W_PERMISSIONS, f"{label} [default {default}] {name}", variant, number, "ms", goal,
                                        note=f"{variant}: {value.reason}" if failed else "", compare=PERM_COMPARE)  # fmt: skip


def _permission_queries(bench: Bench, seeded: dict) -> list[tuple]:
    s = bench.scale
    label, filter_string, order_by = QUERIES[-1]
    several = seeded["several"]
    return [
        (f"runs/search, {label}, 100/page, 1 experiment of {seeded['big_runs']:,} runs", "POST", f"{API}/runs/search", None,
         search_body(seeded["big"], filter_string, order_by, 100)),
        (f"runs/search, the same, {len(several)} experiments of {seeded['several_runs'] // len(several):,} runs", "POST",
         f"{API}/runs/search", None, {**search_body(several[0], filter_string, order_by, 100), "experiment_ids": several}),
        (f"experiments/search, name LIKE 'perm-exp-%', 1000/page ({s.perm_experiments:,} match)", "POST",
         f"{API}/experiments/search", None, {"max_results": 1000, "filter": "name LIKE 'perm-exp-%'", "view_type": "ACTIVE_ONLY"}),
        (f"experiments/search, name LIKE 'perm-exp-%7', 1000/page ({s.perm_experiments // 10:,} match)", "POST",
         f"{API}/experiments/search", None, {"max_results": 1000, "filter": "name LIKE 'perm-exp-%7'", "view_type": "ACTIVE_ONLY"}),
        (f"registered-models/search, name LIKE 'perm-model-%' and not a prompt, 100/page ({s.perm_models:,} models)", "GET",
         f"{API}/registered-models/search",
         {"filter": "name LIKE 'perm-model-%' AND tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 100}, None),
        ("runs/get, a run of a granted experiment", "GET", f"{API}/runs/get", {"run_id": seeded["run"], "run_uuid": seeded["run"]},
         None),
    ]  # fmt: skip


def _paired(bench: Bench, clients: dict, method: str, path: str, params, body) -> dict:
    """Seconds per request for each client, the clients taking turns (and turns at going first)."""
    s = bench.scale
    encoded = None if body is None else data.encode(body)
    calls = {name: (lambda c=client: c.timed(method, path, params=params, body=encoded)[0]) for name, client in clients.items()}
    return _interleaved(bench, calls, reps=s.perm_reps, seconds=s.perm_seconds, warmup=PERM_WARMUP)


def _interleaved(bench: Bench, calls: dict, *, reps: int, seconds: float, warmup: int) -> dict:
    """Rounds of one call of each (name -> fn returning seconds), in turns at going first,
    after `warmup` untimed rounds; at most `reps` rounds, stopping after `seconds` once
    MIN_REPS are in. Seconds per name."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times = {name: [] for name in names}
    started = time.monotonic()
    n = 0
    while n < reps and (n < MIN_REPS or time.monotonic() - started < seconds):
        bench.check_stop()
        for name in names if n % 2 == 0 else reversed(names):
            times[name].append(calls[name]())
        n += 1
    return times


def _permission_checks(bench: Bench, clients: dict, seeded: dict, default: str) -> None:
    """The filter really filters: what each user sees, against what the grants say. A
    mismatch is a note (the smoke test fails on it), not an exception."""
    s = bench.scale
    su, user = clients["superuser"], clients["grantee"]
    problems = []

    def status(client: Client, run_id: str | None) -> int | None:
        if run_id is None:
            return None
        try:
            client.call("GET", f"{API}/runs/get", params={"run_id": run_id, "run_uuid": run_id})
            return 200
        except ApiError as exc:
            return exc.status

    expected = {"run": 200, "hidden_run": 404 if default == "NONE" else 200, "private_run": 404}
    for key, want in expected.items():
        got_su, got_user = status(su, seeded.get(key)), status(user, seeded.get(key))
        if got_su is not None and (got_su, got_user) != (200, want):
            problems.append(f"runs/get of the {key.replace('_', ' ')}: superuser {got_su}, user {got_user} (expected 200, {want})")
    body = {"max_results": 1000, "filter": "name LIKE 'perm-exp-%'", "view_type": "ACTIVE_ONLY"}
    for client, want in ((su, min(1000, s.perm_experiments)), (user, min(1000, seeded["visible_experiments"][default]))):
        got = len(client.call("POST", f"{API}/experiments/search", body=body).get("experiments", []))
        if got != want:
            problems.append(f"experiments/search: {client.target.label} got {got} experiments, expected {want}")
    params = {"filter": "name LIKE 'perm-model-%'", "max_results": 1000}
    for client, want in ((su, min(1000, s.perm_models)), (user, min(1000, seeded["visible_models"][default]))):
        got = len(client.call("GET", f"{API}/registered-models/search", params=params).get("registered_models", []))
        if got != want:
            problems.append(f"registered-models/search: {client.target.label} got {got} models, expected {want}")
    label, filter_string, order_by = QUERIES[-1]
    search = search_body(seeded["big"], filter_string, order_by, 100)
    pages = [[r["info"]["run_id"] for r in c.call("POST", f"{API}/runs/search", body=search).get("runs", [])] for c in (su, user)]
    if pages[0] != pages[1] or not pages[0]:
        problems.append(f"runs/search in a granted experiment: superuser and user got different pages ({len(pages[0])}, {len(pages[1])} runs)")
    bench.notes += [f"permissions [default {default}]: {p}" for p in problems]


# ---------------------------------------------------------------- 9. catalog (issue 9)


def workload_catalog(bench: Bench) -> None:
    """experiments/search, registered-models/search and model-versions/search over a large
    catalog (seed_catalog.py describes the data), for a superuser and a user whose only
    access is its team's READ grant on half of it, on a portal with
    PORTAL_DEFAULT_PERMISSION=NONE. The portal only: MLflow has no grants to compare."""
    s = bench.scale
    if bench.serve_portal is None:
        raise RuntimeError("the catalog workload needs bench.serve_portal")
    E, M, V = s.catalog_experiments, s.catalog_models, s.catalog_versions
    log("catalog: the team-granted user")
    made = team_user(bench)
    log(f"catalog: seeding {E:,} experiments, {M:,} registered models, {V:,} versions with tags and grants")
    args = [sys.executable, str(BENCH_DIR / "seed_catalog.py"), "catalog", "--experiments", str(E), "--models", str(M),
            "--versions", str(V), "--analyze"]  # fmt: skip
    seeded = run_script(args, bench.portal_env, timeout=7200)
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in seeded["steps"].items())
    log(f"  seeded in {seeded['seconds']:.1f} s ({steps})")
    bench.notes.append(
        f"catalog: {E:,} experiments (3 tags each), {M:,} registered models (2 tags each), {seeded['versions']:,} versions "
        f"(2 tags each) seeded straight into the database in {seeded['seconds']:.0f} s ({steps}); the superuser holds "
        "MANAGE on each (as their creator), the team READ on half; PORTAL_DEFAULT_PERMISSION=NONE; keep-alive, superuser "
        "and team user interleaved"
    )
    expected = seed_catalog.expected_counts(E, M, V)
    goal = issue_goal(bench, "catalog_p95")
    with ExitStack() as stack:
        log("catalog: portal with PORTAL_DEFAULT_PERMISSION=NONE")
        users = _none_clients(bench, stack, "gunicorn-catalog-none", made["token"])
        for key, label, method, path, params, body, field_name, order in seed_catalog.catalog_queries(M):
            bench.check_stop()
            log(f"catalog [{DEFAULT_NONE}]: {label}")
            _catalog_checks(bench, users, label, method, path, params, body, field_name, order, expected[key])
            encoded = None if body is None else data.encode(body)
            calls = {name: (lambda c=client: c.timed(method, path, params=params, body=encoded)[0]) for name, client in users.items()}
            times = attempt(lambda: _interleaved(bench, calls, reps=s.reps, seconds=s.rep_seconds, warmup=SUITE_WARMUP))
            counts = expected[key]
            row = f"{label} ({counts['superuser']:,} match, the team user reads {counts['team']:,}) [{DEFAULT_NONE}]"
            for variant in users:
                put_latency(bench, W_CATALOG, row, variant, times if isinstance(times, Failed) else times[variant], p95_goal=goal)


def _catalog_checks(bench, users, label, method, path, params, body, field_name, order, expected) -> None:
    """Each user pages through exactly the rows it may see (1000 per page, following
    next_page_token); the first page of the timed request is in the requested order. A
    mismatch is a note, not an exception."""
    problems = []
    for name, client in users.items():
        want = expected["superuser" if name == "portal_token" else "team"]
        try:
            first = client.call(method, path, params=params, body=body).get(field_name, [])
            if order is not None:
                key, direction = order
                values = [int(v) if key != "name" else v for v in (item.get(key) for item in first)]
                if values != sorted(values, reverse=direction == "desc"):
                    problems.append(f"{client.target.label}: the first page is not ordered by {key} {direction.upper()}")
            bigger = 10000 if "max_results" in (params or body) and (params or body)["max_results"] > 1000 else 1000
            total, token = 0, None
            for _ in range(want // bigger + 3):
                page_params = None if params is None else {**params, "max_results": bigger, **({"page_token": token} if token else {})}
                page_body = None if body is None else {**body, "max_results": bigger, **({"page_token": token} if token else {})}
                answer = client.call(method, path, params=page_params, body=page_body)
                total += len(answer.get(field_name, []))
                token = answer.get("next_page_token")
                if not token:
                    break
            if total != want:
                problems.append(f"{client.target.label} paged through {total:,} rows, expected {want:,}")
        except ApiError as exc:
            problems.append(f"{client.target.label}: {exc}")
    bench.notes += [f"catalog: {label}: {p}" for p in problems]
