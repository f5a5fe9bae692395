"""The public Python API: `from pasa_mcp import ...` gives what the README documents and nothing
else, and runs the tools in process against the simulated scholarly web (tools/world)."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import bibtexparser
import pytest

import pasa_mcp
from pasa_mcp import Settings, ToolFailed, connect
from tools.world import World

README = Path(__file__).resolve().parents[1] / "README.md"


def documented() -> set[str]:
    """The names in the README's Python API table."""
    section = README.read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


def test_all_is_what_the_readme_documents() -> None:
    assert set(pasa_mcp.__all__) == documented()
    for name in pasa_mcp.__all__:
        assert getattr(pasa_mcp, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pasa_mcp.nope  # noqa: B018


@pytest.mark.anyio
async def test_a_deep_search_and_single_steps_from_python(tmp_path: Path) -> None:
    async with World.start(seed=7, papers=300, time_scale=0.02) as world:
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        question = world.queries[0]["question"]
        with anyio.fail_after(120):
            async with connect(settings) as tools:
                report = await tools.deep_search(question, search_queries=2, expand_layers=1, wait_seconds=1)
                assert report["status"] == "finished" and report["papers"]
                ids = [p["id"] for p in report["papers"][:3]]
                scores = await tools.call("score_paper", question=question, papers=ids)
                assert [s["score"] for s in scores["papers"]] == [p["score"] for p in report["papers"][:3]]
                bib = await tools.call("get_bibtex", papers=ids)
                assert len(bibtexparser.parse_string(bib).entries) == len(ids)
                assert pasa_mcp.bibtex([]) == "" and "TY  - " not in pasa_mcp.ris([])
                with pytest.raises(ToolFailed, match=r"^paper not found: 'arxiv:2401.99999'$"):
                    await tools.call("get_paper", paper="arxiv:2401.99999")
                with pytest.raises(ToolFailed, match="limit"):
                    await tools.call("list_searches", limit=0)
