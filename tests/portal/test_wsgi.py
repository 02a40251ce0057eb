"""The WSGI entry point that gunicorn loads."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wsgi_module_loads_every_view_and_freezes_start_up_objects():
    script = (
        "import gc, sys; import portal.wsgi; "
        "assert 'registry.mlflow_api' in sys.modules and 'tracking.mlflow_api' in sys.modules; "
        "print(gc.get_freeze_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 10_000
