"""A smoke run of the benchmark (benchmarks/run.py, issue 4) so that it keeps working.

Tiny sizes and a subset of the workloads: the portal under gunicorn and a real
`mlflow server` on loopback, both driven over HTTP. Only the structure is checked (both
servers answered every request, numbers were printed), never speed: benchmarks are not
timed tests. The script uses its own fresh SQLite databases, whatever the suite's
backend, so it runs on the embedded leg only. A second, quicker run covers the
permissions workload, which starts no `mlflow server`.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "run.py"
WORKLOADS = {
    "search": "2 search",
    "history": "3 history",
    "registry": "4 registry",
    "load": "6 reads under write load",  # also runs the writer processes
    "keepalive": "7 keep-alive",
}

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="the benchmark starts its own SQLite servers: embedded leg only"
)


def test_benchmark_runs_against_both_servers(tmp_path):
    values = tmp_path / "bench.json"
    command = [
        sys.executable, str(SCRIPT),
        "--scale", "tiny",
        "--backend", "sqlite",
        "--workloads", ",".join(WORKLOADS),
        "--json", str(values),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"benchmark exited {done.returncode}:\n{done.stderr[-4000:]}"

    # The printed table: a header naming both servers and one line per measured value.
    assert "== Backend: SQLite, scale tiny" in done.stdout
    header = next(line for line in done.stdout.splitlines() if line.startswith("workload "))
    assert "portal (token)" in header and "portal (basic)" in header and "MLflow" in header
    for workload in WORKLOADS.values():
        assert f"\n{workload} " in done.stdout

    document = json.loads(values.read_text())
    (backend,) = document["backends"]
    assert backend["failed_workloads"] == []
    rows = backend["rows"]
    assert {row["workload"] for row in rows} == set(WORKLOADS.values())
    failed = [
        (row["metric"], variant, value["failed"])
        for row in rows
        for variant, value in row["values"].items()
        if isinstance(value, dict)
    ]
    assert failed == [], failed
    for workload in WORKLOADS.values():
        answered = [row for row in rows if row["workload"] == workload]
        for variant in ("portal_token", "portal_basic", "mlflow"):
            numbers = [row["values"].get(variant) for row in answered]
            assert any(isinstance(n, (int, float)) and math.isfinite(n) and n > 0 for n in numbers), (workload, variant)
    # Both servers paged through the same seeded runs and returned the same first page.
    assert not [note for note in backend["notes"] if note.startswith(("search:", "history:"))], backend["notes"]


def test_permissions_workload_runs_without_mlflow(tmp_path):
    """`--workloads permissions` alone: the portal only (no `mlflow server`), a user in two
    teams against a superuser, both servers' defaults (NONE and READ), every value measured
    and the visibility checks clean."""
    values = tmp_path / "bench.json"
    command = [
        sys.executable, str(SCRIPT),
        "--scale", "tiny",
        "--backend", "sqlite",
        "--workloads", "permissions",
        "--json", str(values),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"benchmark exited {done.returncode}:\n{done.stderr[-4000:]}"
    assert "MLflow: not started" in done.stdout
    header = next(line for line in done.stdout.splitlines() if line.startswith("workload "))
    assert "superuser" in header and "user in 2 teams" in header and "MLflow" not in header

    (backend,) = json.loads(values.read_text())["backends"]
    assert backend["failed_workloads"] == []
    rows = backend["rows"]
    assert rows and {row["workload"] for row in rows} == {"8 permissions"}
    for default in ("NONE", "READ"):
        assert any(f"[default {default}]" in row["metric"] for row in rows), default
    for row in rows:
        assert row["compare"] == ["grantee", "superuser"], row
        for variant in ("superuser", "grantee"):
            value = row["values"].get(variant)
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (
                row["metric"],
                variant,
                value,
            )
        assert row["ratio"] is not None and row["ratio"] > 0
        if row["metric"].endswith(" p95"):
            assert row["target"] == "≤ 1.5× superuser" and row["verdict"] in ("pass", "FAIL"), row
    # The user saw exactly what the grants say (runs/get 404s, page sizes): see _permission_checks.
    assert not [note for note in backend["notes"] if note.startswith("permissions [")], backend["notes"]
