"""End to end with the local paper index, over real sockets against tools/world (a simulation):
an offline deep search reaches the same crawler recall as an online one and asks nothing but the
models; an online search with the index asks the arXiv API nothing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from test_e2e import SCALE, pick_question

from pasa_mcp.eval import EvalQuery, metrics
from pasa_mcp.index.db import LocalIndex
from pasa_mcp.index.pasa_db import import_pasa
from pasa_mcp.index.snapshot import import_snapshot
from tools.world import World
from tools.world.exports import write_pasa_db, write_snapshot

pytestmark = pytest.mark.anyio


def build_index(world: World, tmp_path: Path, *, pasa_db: bool) -> Path:
    path = tmp_path / "index.sqlite3"
    index = LocalIndex(path)
    write_snapshot(world.corpus, tmp_path / "snapshot.jsonl")
    import_snapshot(index, tmp_path / "snapshot.jsonl")
    if pasa_db:
        write_pasa_db(world.corpus, tmp_path / "db.zip", tmp_path / "id2paper.json")
        import_pasa(index, tmp_path / "db.zip", tmp_path / "id2paper.json")
    index.close()
    return path


async def run_search(
    world: World, tmp_path: Path, row: dict, index: Path, *extra: str, code: int = 0
) -> tuple[dict, str]:
    config = tmp_path / "world.toml"
    config.write_text(world.settings_toml() + f'store_path = "{tmp_path / "store.sqlite3"}"\nindex_path = "{index}"\n')
    out = tmp_path / "result.json"
    end = EvalQuery.model_validate(row).end_date.isoformat()
    env = {**os.environ, "PASA_CONFIG": str(config), "COLUMNS": "250"}
    env.pop("PASA_INDEX_PATH", None)
    command = [sys.executable, "-m", "pasa_mcp", "search", row["question"], "--end-date", end, "--json", str(out)]
    with anyio.fail_after(180):
        done = await anyio.run_process([*command, *extra], env=env, check=False)
    assert done.returncode == code, done.stderr.decode()
    return json.loads(out.read_text()), done.stderr.decode()


async def test_offline_search_reaches_the_online_recall_asking_only_the_models(tmp_path: Path) -> None:
    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        row, bound = pick_question(world)
        index = await anyio.to_thread.run_sync(lambda: build_index(world, tmp_path, pasa_db=True))
        result, stderr = await run_search(world, tmp_path, row, index, "--offline")
        counts = world.log.counts()
    # The online search reaches `bound` (tests/test_e2e.py); offline reaches the same.
    assert metrics(result["tree"], row["answer"])["crawler_recall"] == pytest.approx(bound)
    assert result["status"] == "finished" and result["failures"] == []
    assert set(counts) == {"crawler", "selector"}, counts  # not one request to any other service


async def test_offline_search_reports_what_it_cannot_do(tmp_path: Path) -> None:
    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        row, _ = pick_question(world)
        index = await anyio.to_thread.run_sync(lambda: build_index(world, tmp_path, pasa_db=False))
        result, stderr = await run_search(world, tmp_path, row, index, "--offline", code=3)  # 3: partial
        counts = world.log.counts()
    assert set(counts) == {"crawler", "selector"}, counts
    # Without the PaSa database no full text is stored: each expansion is reported, none silently dropped.
    assert result["status"] == "partial" and result["steps"]["expand"]["failed"] > 0
    assert result["failures"] and all("offline mode" in f for f in result["failures"])
    assert "offline mode" in stderr


async def test_online_search_with_the_index_asks_the_arxiv_api_nothing(tmp_path: Path) -> None:
    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        row, bound = pick_question(world)
        index = await anyio.to_thread.run_sync(lambda: build_index(world, tmp_path, pasa_db=False))
        result, _ = await run_search(world, tmp_path, row, index)
        counts = world.log.counts()
    assert metrics(result["tree"], row["answer"])["crawler_recall"] == pytest.approx(bound)
    assert result["failures"] == []
    assert "arxiv_api" not in counts, counts
    assert counts["serper"]["requests"] > 0 and counts["arxiv_html"]["requests"] > 0
