"""End to end over real sockets: the CLI deep search against the simulated scholarly web
(tools/world), as a user would run it. Time is scaled (x0.02) so arXiv's 3 s pacing takes 60 ms."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pasa_mcp.eval import EvalQuery, metrics
from tools.world import World

pytestmark = pytest.mark.anyio
SCALE = 0.02


def pick_question(world: World) -> tuple[dict, float]:
    """A planted question some of whose answers only citation expansion can reach."""
    for row in world.queries:
        reach = world.reachable(row)
        if reach.bound > len(reach.by_search) / len(row["answer"]) and reach.bound > 0:
            return row, reach.bound
    raise AssertionError("the world planted no question that needs expansion")


async def test_cli_deep_search_finds_the_planted_answers_politely(tmp_path: Path) -> None:
    import anyio

    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        row, bound = pick_question(world)
        config = tmp_path / "world.toml"
        config.write_text(world.settings_toml() + f'store_path = "{tmp_path / "store.sqlite3"}"\n')
        end = EvalQuery.model_validate(row).end_date
        out = tmp_path / "result.json"
        env = {**os.environ, "PASA_CONFIG": str(config), "COLUMNS": "250"}
        with anyio.fail_after(120):
            done = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "pasa_mcp",
                    "search",
                    row["question"],
                    "--end-date",
                    end.isoformat(),
                    "--json",
                    str(out),
                ],
                env=env,
                check=False,
            )
        counts = world.log.counts()
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, stderr
    result = json.loads(out.read_text())
    assert result["status"] == "finished" and result["failures"] == []
    m = metrics(result["tree"], row["answer"])
    # A faithful agent reaches exactly what the citation graph makes reachable within the limits,
    # and the noise-free simulated selector then keeps exactly the answers.
    assert m["crawler_recall"] == pytest.approx(bound)
    assert m["recall"] == pytest.approx(bound) and m["precision"] == 1.0
    first = next(p for p in result["papers"] if p["selected"])
    assert first["title"] in stdout
    assert all(c.get("exceeded", 0) == 0 and c.get("status_429", 0) == 0 for c in counts.values()), counts
    assert counts["arxiv_html"]["requests"] > 0 and counts["selector"]["requests"] > 0


async def test_cli_evaluation_reports_the_papers_metrics_and_rescores_saved_runs(tmp_path: Path) -> None:
    import anyio

    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        rows = world.queries[:3]
        bounds = {str(row["qid"]): world.reachable(row).bound for row in rows}
        dataset = tmp_path / "questions.jsonl"
        dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
        config = tmp_path / "world.toml"
        config.write_text(world.settings_toml() + f'store_path = "{tmp_path / "store.sqlite3"}"\n')
        env = {**os.environ, "PASA_CONFIG": str(config), "COLUMNS": "250"}
        out = tmp_path / "runs"
        command = [sys.executable, "-m", "pasa_mcp", "eval", str(dataset), "--out", str(out), "--concurrency", "2"]
        with anyio.fail_after(180):
            done = await anyio.run_process(command, env=env, check=False)
        counts = world.log.counts()
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads((out / "metrics.json").read_text())
    assert sorted(summary["per_query"]) == sorted(bounds)
    for qid, bound in bounds.items():
        assert summary["per_query"][qid]["crawler_recall"] == pytest.approx(bound)
        assert (out / f"{qid}.json").exists()
    assert "mean" in done.stdout.decode()
    assert all(c.get("exceeded", 0) == 0 for c in counts.values()), counts

    # Rescoring the saved trees needs no service at all (the world is gone) and gives the same numbers.
    again = await anyio.run_process([*command, "--score-only"], env=env, check=False)
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads((out / "metrics.json").read_text())["per_query"] == summary["per_query"]


async def test_mcp_paper_search_finds_the_planted_answers_politely(tmp_path: Path) -> None:
    import anyio
    from mcp import Client

    from pasa_mcp.config import Settings
    from pasa_mcp.server import build_server

    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        row, bound = pick_question(world)
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        end = EvalQuery.model_validate(row).end_date.isoformat()
        progress: list[str] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        with anyio.fail_after(120):
            async with Client(build_server(settings)) as client:
                args = {"question": row["question"], "end_date": end, "wait_seconds": 0}
                report = (await client.call_tool("paper_search", args)).structured_content
                while report["status"] in ("queued", "running"):
                    status = {"search_id": report["search_id"], "wait_seconds": 5}
                    report = await client.call_tool("paper_search_status", status, progress_callback=on_progress)
                    report = report.structured_content
                (contents,) = (await client.read_resource(f"pasa://search/{report['search_id']}")).contents
        counts = world.log.counts()
    assert report["status"] == "finished"
    full = json.loads(contents.text)
    m = metrics(full["result"]["tree"], row["answer"])
    assert m["crawler_recall"] == pytest.approx(bound)
    assert m["recall"] == pytest.approx(bound) and m["precision"] == 1.0
    assert progress, "no progress notifications while waiting"
    assert all(c.get("exceeded", 0) == 0 and c.get("status_429", 0) == 0 for c in counts.values()), counts


async def test_a_deep_search_survives_a_faulty_web(tmp_path: Path) -> None:
    """5xx answers, connection resets and cut-off bodies at 15% on several sources and 5% on the
    models: every request is retried (with backoff), so the run still reaches every reachable answer.
    The models get fewer retries (3, so that a model that is down is reported within seconds): at 15%
    one of a search's ~65 model calls would exhaust them in about 3% of runs (0.15**4 per call)."""
    import anyio

    from pasa_mcp.agent import SearchParams
    from pasa_mcp.app import open_app
    from pasa_mcp.config import Settings
    from tools.world import Faults

    faults = {
        "serper": Faults(reset=0.15),
        "arxiv_html": Faults(error=0.15),
        "openalex": Faults(malformed=0.15),
        "selector": Faults(error=0.05),
        "crawler": Faults(malformed=0.05),
    }
    async with World.start(seed=7, papers=2000, time_scale=SCALE, faults=faults) as world:
        row, bound = pick_question(world)
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        params = SearchParams.from_settings(settings, end_date=EvalQuery.model_validate(row).end_date)
        with anyio.fail_after(120):
            async with open_app(settings) as pasa:
                result = await pasa.deep_search(row["question"], params)
        counts = world.log.counts()
    assert sum(c.get("faults", 0) for c in counts.values()) > 5, counts  # the faults did happen
    assert result.status == "finished" and result.failures == [], result.failures
    assert metrics(result.tree, row["answer"])["crawler_recall"] == pytest.approx(bound)
