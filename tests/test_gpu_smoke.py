"""The GPU smoke test (models/smoke_test.py) against real vLLM servers, only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Read at import: the autouse fixture in conftest.py clears every PASA_* variable before each test,
# and the smoke test must see the user's real model settings.
ENVIRONMENT = dict(os.environ)
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "models" / "smoke_test.py"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        ENVIRONMENT.get("PASA_GPU_SMOKE") != "1",
        reason="GPU smoke test: serve both models (models/README.md), then set PASA_GPU_SMOKE=1",
    ),
]


def test_real_models_pass_the_smoke_test() -> None:
    # The script imports pasa_mcp: make the checkout importable even where it is not pip-installed.
    path = os.pathsep.join(filter(None, [str(ROOT), ENVIRONMENT.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=ENVIRONMENT | {"PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
