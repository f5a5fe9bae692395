"""The fault matrix: deep searches against the simulated scholarly web (tools/world) with every fault
kind (5xx, time-outs, resets, cut-off bodies) on every service at once, and heavier on each service
alone. Every search must end (no hang) with a status and its losses reported, and reach every
reachable answer unless a reported loss explains the shortfall: no silent losses."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import anyio
import pytest

from pasa_mcp.agent import RunResult, SearchParams
from pasa_mcp.app import open_app
from pasa_mcp.config import Settings
from pasa_mcp.eval import EvalQuery, metrics
from pasa_mcp.index.db import LocalIndex
from pasa_mcp.index.snapshot import import_snapshot
from tests.test_e2e import SCALE, pick_question
from tools.world import Faults, World
from tools.world.config import SERVICES
from tools.world.corpus import Corpus
from tools.world.exports import write_snapshot

pytestmark = pytest.mark.anyio


def spread(total: float) -> Faults:
    """`total` probability of a fault per request, split evenly over the four kinds."""
    return Faults(error=total / 4, timeout=total / 4, reset=total / 4, malformed=total / 4)


# The services a deep search calls (crossref serves only other tools).
SEARCHED = [name for name in SERVICES if name != "crossref"]
MATRIX = {
    "every kind at 10% on every service": {
        name: Faults(error=0.1, timeout=0.1, reset=0.1, malformed=0.1) for name in SEARCHED
    },
    **{f"30% on {name}": {name: spread(0.3)} for name in SEARCHED},
}


@pytest.mark.parametrize("faults", MATRIX.values(), ids=MATRIX.keys())
async def test_a_deep_search_degrades_under_faults(tmp_path: Path, faults: dict[str, Faults]) -> None:
    async with World.start(seed=7, papers=2000, time_scale=SCALE, faults=faults) as world:
        row, bound = pick_question(world)
        # Time-outs hold a request until the client gives up: a short client time-out keeps the test short.
        settings = Settings(
            **world.settings(),
            store_path=tmp_path / "store.sqlite3",
            http_timeout=1.0,
            model_timeout=1.0,
            http_retries=3,
        )
        params = SearchParams.from_settings(settings, end_date=EvalQuery.model_validate(row).end_date)
        with anyio.fail_after(240):
            async with open_app(settings) as pasa:
                result = await pasa.deep_search(row["question"], params)
        counts = world.log.counts()
    assert sum(c.get("faults", 0) for c in counts.values()) > 0, counts
    assert all(c.get("exceeded", 0) == 0 for c in counts.values()), counts
    assert result.status in ("finished", "partial", "failed")
    # The status and the losses agree, and every failed step is listed.
    failed_steps = sum(step.failed for step in result.steps.values())
    assert (result.status == "finished") == (failed_steps == 0 and result.error is None)
    assert len(result.losses) == sum(step.failed > 0 for step in result.steps.values())
    assert len(result.failures) >= failed_steps
    if result.status == "failed":  # only when nothing useful could be done, and then it says why
        assert result.error and not result.selected
        return
    recall = metrics(result.tree, row["answer"])["crawler_recall"]
    print(f"\n{result.outcome}; crawler recall {recall:.3f} of a reachable {bound:.3f} in {result.seconds:.1f} s")
    assert recall <= bound + 1e-9
    if recall < bound - 1e-9:
        assert result.losses, "recall fell below the reachable bound with no loss reported"


async def test_without_an_openalex_key_a_deep_search_degrades_and_says_what_to_set(tmp_path: Path) -> None:
    # The world's OpenAlex spends a small keyless allowance, as the real one since February 2026.
    async with World.start(seed=7, papers=2000, time_scale=SCALE, openalex_keyless_allowance=40) as world:
        row, bound = pick_question(world)
        keyless = {**world.settings(), "openalex_api_key": None}
        settings = Settings(**keyless, store_path=tmp_path / "store.sqlite3")
        params = SearchParams.from_settings(settings, end_date=EvalQuery.model_validate(row).end_date)
        with anyio.fail_after(120):
            async with open_app(settings) as pasa:
                result = await pasa.deep_search(row["question"], params)
        openalex = sorted((r for r in world.log.records if r["service"] == "openalex"), key=lambda r: r["time"])
    refused = [n for n, r in enumerate(openalex) if r["status"] == 429]
    # Once OpenAlex said no, nothing more was sent: the refused are the last ones, those already in flight.
    assert 1 <= len(refused) <= 4 and refused == list(range(len(openalex) - len(refused), len(openalex)))
    # Semantic Scholar and arXiv stand in for its DOI and title lookups; the run still says what to set.
    assert result.status in ("finished", "partial") and result.selected
    spent = [f for f in result.failures if "OpenAlex" in f and "allowance is spent" in f]
    assert spent and all("https://openalex.org/settings/api" in f for f in spent)


async def search_with_one_down(
    tmp_path: Path, service: str, **overrides: object
) -> tuple[RunResult, float, float, dict]:
    """A default deep search in a world where `service` answers every request with a server error:
    the result, its crawler recall, the reachable bound, and the world's counts per service.
    `overrides` replace the world's settings (`serper_api_key=None`: the keyless default, arXiv search)."""
    async with World.start(seed=7, papers=2000, time_scale=SCALE, faults={service: Faults(error=1.0)}) as world:
        row, bound = pick_question(world)
        config = {**world.settings(), "store_path": tmp_path / "store.sqlite3", "http_retries": 1, **overrides}
        settings = Settings(**config)
        params = SearchParams.from_settings(settings, end_date=EvalQuery.model_validate(row).end_date)
        with anyio.fail_after(240):
            async with open_app(settings) as pasa:
                result = await pasa.deep_search(row["question"], params)
        counts = world.log.counts()
    return result, metrics(result.tree, row["answer"])["crawler_recall"], bound, counts


async def test_with_arxivs_html_down_pages_come_from_ar5iv_and_reference_lists(tmp_path: Path) -> None:
    result, recall, bound, _ = await search_with_one_down(tmp_path, "arxiv_html")
    # Before: every expansion that asked arXiv's HTML first failed with it (19 of 19, recall 0.667 of 1.0).
    assert recall == pytest.approx(bound)
    stood_in = [f for f in result.failures if "arXiv HTML unavailable" in f and "used references instead" in f]
    assert result.status == "partial" and stood_in and len(stood_in) == len(result.failures)


async def test_with_the_arxiv_api_down_semantic_scholar_stands_in_for_its_id_lookups(tmp_path: Path) -> None:
    result, recall, bound, counts = await search_with_one_down(tmp_path, "arxiv_api")
    # Before: "no search answered: arXiv API unavailable", crawler recall 0.
    assert result.status == "finished" and counts["arxiv_api"].get("faults", 0) > 0
    assert recall == pytest.approx(bound)
    assert any(f.startswith("arXiv API unavailable: down") for f in result.failures)  # said, though nothing lost


async def test_with_the_arxiv_api_down_and_no_serper_key_openalex_answers_arxivs_searches(tmp_path: Path) -> None:
    result, recall, bound, counts = await search_with_one_down(tmp_path, "arxiv_api", serper_api_key=None)
    # Before: "no search answered: arXiv API unavailable", nothing found (the keyless default searches arXiv).
    assert result.status == "finished" and result.selected and recall == pytest.approx(bound), result.outcome
    assert "serper" not in counts and counts["arxiv_api"]["faults"] > 0 and counts["openalex"]["requests"] > 0
    assert any(f.startswith("arXiv API unavailable: down") for f in result.failures)  # said, though stood in for


async def test_with_openalex_down_dois_go_to_semantic_scholar_and_titles_to_arxiv(tmp_path: Path) -> None:
    result, recall, bound, _ = await search_with_one_down(tmp_path, "openalex")
    assert result.status == "finished" and recall == pytest.approx(bound)


async def test_with_a_partial_local_index_and_openalex_down_titles_go_to_arxiv(tmp_path: Path) -> None:
    def partial_index() -> None:
        """Half of the world's arXiv papers (an import of some categories, or a harvest not run lately),
        where the settings look for the index (conftest's PASA_INDEX_PATH)."""
        snapshot = tmp_path / "snapshot.jsonl"
        write_snapshot(Corpus(7, 2000), snapshot)  # the corpus of World.start(seed=7, papers=2000)
        snapshot.write_text("".join(snapshot.read_text().splitlines(keepends=True)[::2]))
        index = LocalIndex(tmp_path / "index.sqlite3")
        import_snapshot(index, snapshot)
        index.close()

    await anyio.to_thread.run_sync(partial_index)
    result, recall, bound, counts = await search_with_one_down(tmp_path, "openalex")
    # Before: the titles the index lacked failed with OpenAlex, and each expansion citing one lost all it
    # cited ("7 of 19 expansions failed: OpenAlex unavailable", crawler recall 0.667 of 1.0).
    assert result.status == "finished" and counts["openalex"].get("faults", 0) > 0, (result.outcome, recall, bound)
    assert recall == pytest.approx(bound)


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(120):
        done = await anyio.run_process([sys.executable, "-m", "pasa_mcp", *args], env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_cli_exit_codes_tell_failed_partial_and_complete_apart_and_a_failed_search_resumes(
    tmp_path: Path,
) -> None:
    """A crawler that never answers: exit 1, the JSON written, one line saying why; with healthy
    services, `resume` finishes that search (exit 0). No full text anywhere: exit 3 and what was lost."""

    def configure(world: World, store: str = "store.sqlite3") -> dict[str, str]:
        config = tmp_path / "world.toml"
        config.write_text(world.settings_toml() + "http_timeout = 1.0\nhttp_retries = 1\n")
        return {**os.environ, "PASA_CONFIG": str(config), "PASA_STORE_PATH": str(tmp_path / store), "COLUMNS": "250"}

    async with World.start(seed=7, papers=2000, time_scale=SCALE, faults={"crawler": Faults(error=1.0)}) as world:
        row, bound = pick_question(world)
        end = EvalQuery.model_validate(row).end_date.isoformat()
        env = configure(world)
        out = tmp_path / "failed.json"
        code, stdout, stderr = await cli(env, "search", row["question"], "--end-date", end, "--json", str(out))
    assert code == 1, stderr
    failed = json.loads(out.read_text())
    assert failed["status"] == "failed" and failed["error"].startswith("the crawler wrote no search query: crawler")
    assert "search failed: the crawler wrote no search query" in " ".join(stderr.split())
    search_id = re.search(r"deep search ([0-9a-f]{12})", stderr).group(1)

    async with World.start(seed=7, papers=2000, time_scale=SCALE) as world:
        env = configure(world)
        out = tmp_path / "resumed.json"
        code, stdout, stderr = await cli(env, "resume", search_id, "--json", str(out))
        again, _, again_err = await cli(env, "resume", search_id)
    assert code == 0, stderr
    resumed = json.loads(out.read_text())
    assert resumed["status"] == "finished" and resumed["losses"] == []
    assert metrics(resumed["tree"], row["answer"])["crawler_recall"] == pytest.approx(bound)
    assert again == 2 and f"deep search {search_id} is finished: only a stopped search" in again_err

    no_full_text = {name: Faults(error=1.0) for name in ("arxiv_html", "ar5iv", "s2", "openalex")}
    async with World.start(seed=7, papers=2000, time_scale=SCALE, faults=no_full_text) as world:
        env = configure(world, "other.sqlite3")  # nothing cached
        out = tmp_path / "partial.json"
        code, stdout, stderr = await cli(env, "search", row["question"], "--end-date", end, "--json", str(out))
    assert code == 3, stderr
    partial = json.loads(out.read_text())
    expansions = partial["steps"]["expand"]
    assert partial["status"] == "partial" and expansions["failed"] == expansions["tried"] > 0
    (loss,) = partial["losses"]
    n = expansions["tried"]
    assert re.match(rf"{n} of {n} expansions failed: (arXiv HTML|ar5iv|Semantic Scholar|OpenAlex) unavailable", loss)
    assert partial["counts"]["selected"] > 0  # what the searches found is kept and scored
    assert f"search partial: {n} of {n} expansions failed" in stderr
