"""`pasa-mcp models serve|smoke-test` from the package: the commands it runs, and the smoke test on the world."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from pasa_mcp.cli import app
from tools.world import World

runner = CliRunner()


def test_serve_builds_each_engines_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PASA_WEIGHTS_DIR", str(tmp_path))
    result = runner.invoke(app, ["models", "serve", "both", "--dry-run", "--", "--tensor-parallel-size", "2"])
    assert result.exit_code == 0, result.output
    crawler, selector = result.output.strip().splitlines()
    assert crawler.startswith(f"vllm serve {tmp_path}/pasa-7b-crawler --served-model-name pasa-7b-crawler")
    assert "--port 8001 --gpu-memory-utilization 0.45" in crawler and crawler.endswith("--tensor-parallel-size 2")
    assert "--port 8002" in selector and "--max-logprobs 20" in selector

    result = runner.invoke(
        app, ["models", "serve", "selector", "--engine", "llama.cpp", "--quant", "Q4_K_M", "--dry-run"]
    )
    assert result.output.strip() == (
        f"llama-server -m {tmp_path}/pasa-7b-selector-Q4_K_M.gguf --alias pasa-7b-selector --jinja "
        "--host 127.0.0.1 --port 8002 -c 8192"
    )


def test_serve_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PASA_WEIGHTS_DIR", str(tmp_path))
    result = runner.invoke(app, ["models", "serve", "crawler", "--engine", "llama.cpp"])
    assert result.exit_code == 1
    assert "pasa-7b-crawler-Q8_0.gguf not found: convert the checkpoint first" in " ".join(result.output.split())


@pytest.mark.anyio
async def test_the_smoke_test_runs_from_the_package_and_reports_the_open_questions(tmp_path: Path) -> None:
    weights = tmp_path / "weights" / "sim-pasa-7b-crawler"
    weights.mkdir(parents=True)
    (weights / "generation_config.json").write_text('{"temperature": 0.7, "top_k": 20}')
    async with World.start(seed=5, papers=300, time_scale=0.01) as world:
        config = tmp_path / "world.toml"
        config.write_text(world.settings_toml() + f'store_path = "{tmp_path / "store.sqlite3"}"\n')
        env = {**os.environ, "PASA_CONFIG": str(config), "PASA_WEIGHTS_DIR": str(tmp_path / "weights")}
        with anyio.fail_after(120):
            done = await anyio.run_process(
                [sys.executable, "-m", "pasa_mcp", "models", "smoke-test"], env=env, check=False
            )
    text = done.stdout.decode()
    # The world's scripted selector judges only papers of its own corpus: the two checks that need a
    # real checkpoint's judgement of real papers fail there, and only they.
    failures = [line for line in text.splitlines() if line.startswith("FAIL")]
    assert done.returncode == 1 and len(failures) == 2, text + done.stderr.decode()
    assert "relevant paper scores" in failures[0] and "explains" in failures[1]
    assert "crawler generation_config.json: " in text and '{"temperature": 0.7, "top_k": 20}' in text
    assert "selector generation_config.json: not found at" in text
    assert "offered only ['References'] the crawler answered" in text
    assert "explicit vs checkpoint sampling" in text and text.count("for 'Which papers") >= 5
    assert "2 check(s) failed" in text
