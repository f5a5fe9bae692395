"""The tools a researcher uses after a search, over a real MCP client session against the simulated
scholarly web (tools/world): read_paper, find_citing_papers, get_bibtex, list_searches; each with
its error cases. Answers are checked against the world's own corpus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import bibtexparser
import pytest
from mcp import Client

from pasa_mcp.config import Settings
from pasa_mcp.server import build_server
from tools.world import World

pytestmark = pytest.mark.anyio
SCALE = 0.02


@asynccontextmanager
async def session(tmp_path: Path) -> AsyncIterator[tuple[World, Client]]:
    async with World.start(seed=7, papers=300, time_scale=SCALE) as world:
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        with anyio.fail_after(120):
            async with Client(build_server(settings)) as client:
                yield world, client


async def call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content if result.structured_content is not None else result.content[0].text


async def error(client: Client, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result
    return result.content[0].text


async def test_read_paper_pages_through_sections_and_keeps_the_text(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        paper = next(p for p in world.corpus.papers if p.arxiv_id and p.arxiv_html)
        pid = f"arxiv:{paper.arxiv_id}"
        listed = [s["name"] for s in (await call(client, "get_paper", {"paper": pid}))["sections"]]
        whole = await call(client, "read_paper", {"paper": pid, "max_chars": 30_000})
        assert whole["next_offset"] is None and len(whole["text"]) == whole["total"]
        assert set(listed) <= set(whole["available"]) and "Abstract" in whole["available"]
        assert whole["text"].startswith(f"## Abstract\n\n{paper.abstract}")
        # All = the top-level sections; each subsection is read once, under its own heading.
        subsections = [n for n in whole["available"] if n not in whole["sections"]]
        assert subsections
        for name in subsections:
            parent = next(t for t in whole["sections"] if name.startswith(t + " "))
            assert whole["text"].count(f"\n### {name[len(parent) + 1 :]}\n") == 1

        # Pages: consecutive, ending between paragraphs, together the whole text.
        pages, offset = [], 0
        while offset is not None:
            page = await call(client, "read_paper", {"paper": pid, "max_chars": 500, "offset": offset})
            pages.append(page["text"])
            offset = page["next_offset"]
        assert len(pages) >= 2 and all(len(p) <= 500 for p in pages)
        assert "\n\n".join(pages) == whole["text"]

        one = await call(client, "read_paper", {"paper": pid, "sections": [listed[0]], "format": "text"})
        assert one["sections"] == [listed[0]] and one["text"].startswith(listed[0] + "\n\n")
        assert "#" not in one["text"]

        fetched = world.log.counts()["arxiv_html"]["requests"]
        again = await call(client, "read_paper", {"paper": pid, "max_chars": 30_000})
        assert again["text"] == whole["text"] and world.log.counts()["arxiv_html"]["requests"] == fetched

        assert "has no section 'Nope'; its sections: Abstract; " in await error(
            client, "read_paper", {"paper": pid, "sections": ["Nope"]}
        )
        assert "offset 99999 is past the end" in await error(client, "read_paper", {"paper": pid, "offset": 99999})
        assert "max_chars" in await error(client, "read_paper", {"paper": pid, "max_chars": 10})
        assert "paper not found" in await error(client, "read_paper", {"paper": "arxiv:2401.99999"})


async def test_read_paper_without_full_text_gives_abstract_and_references(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        corpus = world.corpus
        paper = next(p for p in corpus.papers if p.arxiv_id and not p.arxiv_html and not p.ar5iv and p.refs)
        read = await call(client, "read_paper", {"paper": f"arxiv:{paper.arxiv_id}"})
        assert read["available"] == ["Abstract", "References"]
        text = read["text"]
        assert text.startswith(f"## Abstract\n\n{paper.abstract}\n\n## References\n\n")
        assert all(corpus.papers[r].title in text for r in paper.refs)


async def test_find_citing_papers_from_openalex_and_semantic_scholar(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        corpus = world.corpus
        cited = max((p for p in corpus.papers if p.arxiv_id), key=lambda p: p.cited_by)
        truth = {p.title for p in corpus.papers if cited.idx in p.refs}
        assert len(truth) > 10
        pid = f"arxiv:{cited.arxiv_id}"

        for source in ("openalex", "semantic_scholar"):
            titles: list[str] = []
            offset: int | None = 0
            while offset is not None:
                args = {"paper": pid, "source": source, "offset": offset, "limit": 7}
                page = await call(client, "find_citing_papers", args)
                assert len(page["papers"]) <= 7 and page["source"] == source
                titles += [p["title"] for p in page["papers"]]
                offset = page["next_offset"]
            assert sorted(titles) == sorted(truth), source
            if source == "openalex":
                assert page["total"] == len(truth)

        question = "equivariant parsing"
        scored = await call(client, "find_citing_papers", {"paper": pid, "question": question, "limit": 5})
        assert all(isinstance(p["score"], float) and 0 <= p["score"] <= 1 for p in scored["papers"])
        ranked = await call(
            client, "score_paper", {"question": question, "papers": [p["id"] for p in scored["papers"]]}
        )
        assert [s["score"] for s in ranked["papers"]] == [p["score"] for p in scored["papers"]]  # same cache

        assert "paper not found" in await error(client, "find_citing_papers", {"paper": "arxiv:2401.99999"})
        assert "limit" in await error(client, "find_citing_papers", {"paper": pid, "limit": 0})
        assert "source" in await error(client, "find_citing_papers", {"paper": pid, "source": "google"})


async def test_get_bibtex_and_ris_for_any_papers(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        papers = [p for p in world.corpus.papers if p.arxiv_id][:3] + [
            next(p for p in world.corpus.papers if p.doi and not p.arxiv_id)
        ]
        ids = [f"arxiv:{p.arxiv_id}" if p.arxiv_id else f"doi:{p.doi}" for p in papers]
        bib = await call(client, "get_bibtex", {"papers": ids})
        library = bibtexparser.parse_string(bib)
        assert not library.failed_blocks and len(library.entries) == 4
        assert [e.fields_dict["title"].value.strip("{}") for e in library.entries] == [p.title for p in papers]
        assert len({e.key for e in library.entries}) == 4

        ris = await call(client, "get_bibtex", {"papers": ids[:2], "format": "ris"})
        assert ris.count("ER  - ") == 2 and f"TI  - {papers[0].title}\r\n" in ris

        assert "paper not found: 'arxiv:2401.99999'" in await error(
            client, "get_bibtex", {"papers": [ids[0], "arxiv:2401.99999"]}
        )
        assert "papers" in await error(client, "get_bibtex", {"papers": []})
        assert "format" in await error(client, "get_bibtex", {"papers": ids, "format": "csl"})


async def test_list_searches_newest_first_with_status_and_counts(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        small = {"search_queries": 1, "search_papers": 3, "expand_layers": 0, "wait_seconds": 60}
        questions = [row["question"] for row in world.queries[:2]]
        reports = [await call(client, "paper_search", {"question": q, **small}) for q in questions]
        assert all(r["status"] == "finished" for r in reports)
        listed = await call(client, "list_searches", {})
        assert [s["search_id"] for s in listed["searches"]] == [r["search_id"] for r in reversed(reports)]
        newest = listed["searches"][0]
        assert newest["question"] == questions[1] and newest["status"] == "finished"
        assert newest["counts"] == reports[1]["counts"] and newest["counts"]["papers"] > 0
        assert listed["next_offset"] is None

        first = await call(client, "list_searches", {"limit": 1})
        assert len(first["searches"]) == 1 and first["next_offset"] == 1
        rest = await call(client, "list_searches", {"offset": 1})
        assert [s["search_id"] for s in rest["searches"]] == [reports[0]["search_id"]]
        assert "limit" in await error(client, "list_searches", {"limit": 0})


async def test_results_are_compact_json_text(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        paper = next(p for p in world.corpus.papers if p.arxiv_id)
        result = await client.call_tool("get_paper", {"paper": f"arxiv:{paper.arxiv_id}", "sections": False})
        text = result.content[0].text
        assert json.loads(text) == result.structured_content
        assert "\n" not in text and ": " not in text.replace(paper.title, "").replace(paper.abstract, "")


async def test_date_ranges_reach_every_source(tmp_path: Path) -> None:
    async with session(tmp_path) as (world, client):
        corpus = world.corpus
        published = {p.arxiv_id or p.doi: p.published.date() for p in corpus.papers}
        years = sorted({p.published.year for p in corpus.papers})
        start, end = f"{years[len(years) // 3]}-01-01", f"{years[2 * len(years) // 3]}-01-01"
        query = " ".join(corpus.papers[0].title.split()[-3:])
        for source in ("google", "arxiv", "semantic_scholar", "openalex"):
            wide = {"queries": [query], "sources": [source], "papers_per_query": 50, "limit": 100}
            found = await call(client, "find_papers", {**wide, "start_date": start, "end_date": end})
            assert not found["failures"] and found["papers"], source
            for paper in found["papers"]:
                when = published[paper["id"].split(":", 1)[1]]
                assert start <= when.isoformat() < end, (source, paper["id"], when)
            unbounded = await call(client, "find_papers", wide)
            assert unbounded["total"] > found["total"], source  # the range was applied, not ignored

        report = await call(
            client,
            "paper_search",
            {"question": world.queries[0]["question"], "start_date": start, "end_date": end, "expand_layers": 0},
        )
        assert report["status"] == "finished"
        assert "must come before end_date" in await error(
            client, "find_papers", {"queries": [query], "start_date": end, "end_date": start}
        )
        assert "must come before end_date" in await error(
            client, "paper_search", {"question": "q", "start_date": end, "end_date": start}
        )
