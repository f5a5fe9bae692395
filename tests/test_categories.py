"""The arXiv categories filter: its syntax, each source (the arXiv API's `cat:` terms, the local index,
the sources that cannot filter), and end to end over a real MCP client session, the Python API and the
CLI against the simulated scholarly web (tools/world), with its error cases."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from conftest import fixture_text
from fakes import Calls, FakeCrawler, FakeFullText, FakeResolver, FakeSelector, FakeSource, name_of
from test_arxiv import TESTING, arxiv_api, atom
from typer.testing import CliRunner

from pasa_mcp import Settings, ToolFailed, connect
from pasa_mcp.agent import DeepSearch, SearchParams
from pasa_mcp.categories import NOT_FILTERED, arxiv_clause, kept, parse_categories, split_categories
from pasa_mcp.cli import app
from pasa_mcp.index.db import LocalIndex, Record
from pasa_mcp.index.snapshot import import_snapshot
from pasa_mcp.layers import Member
from pasa_mcp.papers import Paper, Reference
from pasa_mcp.sources import cached_search
from pasa_mcp.sources.arxiv import parse_feed, search_query
from pasa_mcp.store import Store
from tools.world import World
from tools.world.exports import write_snapshot

SCALE = 0.02


# Syntax -------------------------------------------------------------------------------------------


def test_categories_are_checked_and_spelled_as_arxiv_spells_them() -> None:
    given = ["cs.lg", " stat.ML ", "hep-th", "CS", "cond-mat.Stat-Mech", "physics.comp-ph", "q-bio.QM", "cs.LG"]
    assert parse_categories(given) == [
        "cs.LG",
        "stat.ML",
        "hep-th",
        "cs",
        "cond-mat.stat-mech",
        "physics.comp-ph",
        "q-bio.QM",
    ]
    assert parse_categories(None) == [] and split_categories("cs.LG, math ,") == ["cs.LG", "math"]
    for bad in ["cs LG", "cs.", ".LG", "cs.LG.x", "cat:cs.LG", "cs*", "", "hep--th", "cs.LG OR cs.AI"]:
        with pytest.raises(ValueError, match="not an arXiv category") as caught:
            parse_categories(["cs.AI", bad])
        assert repr(bad) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="at most 20 categories, got 21"):
        parse_categories(f"math.{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(21))


def test_a_filter_keeps_listed_papers_and_papers_of_unknown_category() -> None:
    assert kept(["stat.ML", "cs.LG"], ["cs.LG"])  # a cross-list counts
    assert kept(["cs.CL"], ["cs"]) and kept(["astro-ph.CO"], ["astro-ph"]) and kept(["hep-th"], ["hep-th"])
    assert not kept(["math-ph"], ["math"])  # math-ph is its own archive, not under math
    assert not kept(["cs.CL"], ["cs.LG", "stat"]) and not kept(["hep-th"], ["hep"])
    assert kept([], ["cs.LG"]) and kept(["cs.CL"], [])
    assert kept(["CS.lg"], ["cs.LG"])


def test_arxiv_query_ands_the_categories_with_the_words_and_dates() -> None:
    assert arxiv_clause(["cs.LG"]) == "cat:cs.LG"
    assert arxiv_clause(["cs.LG", "math"]) == "(cat:cs.LG OR cat:math OR cat:math.*)"
    assert search_query("graph networks", None, categories=["cs.LG", "stat.ML"]) == (
        "(all:graph AND all:networks) AND (cat:cs.LG OR cat:stat.ML)"
    )
    assert search_query("graphs", date(2024, 1, 15), date(2020, 1, 1), ["hep-th"]) == (
        "(all:graphs) AND (cat:hep-th OR cat:hep-th.*) AND submittedDate:[202001010000 TO 202401142359]"
    )


# Sources ------------------------------------------------------------------------------------------


def test_atom_entries_carry_their_categories() -> None:
    (legacy,) = parse_feed(fixture_text("arxiv_atom", "legacy_id_list_1111.2011v2.xml"))
    assert legacy.categories == ["cond-mat.str-el", "cond-mat.stat-mech"]
    current = parse_feed(TESTING)
    assert current[0].categories == ["cs.SE", "cs.LG"] and all(p.categories for p in current)


@pytest.mark.anyio
async def test_arxiv_search_sends_cat_terms_url_encoded() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(TESTING)

    async with arxiv_api(handler) as api:
        await api.search("testing models", limit=3, before=None, categories=["cs.SE", "cs"])
    (request,) = sent
    wanted = "(all:testing AND all:models) AND (cat:cs.SE OR cat:cs OR cat:cs.*)"
    assert request.url.params["search_query"] == wanted
    raw = request.url.query.decode()
    assert " " not in raw and "(" not in raw and ":" not in raw.split("search_query=", 1)[1].split("&")[0]
    assert parse_qs(raw)["search_query"] == [wanted]


def test_local_index_filters_by_the_categories_it_stores(tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index.sqlite3")
    records = [
        Record(title="Graph networks for molecules", arxiv_id="2101.00001", categories=["cs.LG", "stat.ML"]),
        Record(title="Graph networks in string theory", arxiv_id="2101.00002", categories=["hep-th"]),
        Record(title="Graph networks for parsing", arxiv_id="2101.00003", categories=["cs.CL"]),
        Record(title="Graph networks and random walks", arxiv_id="2101.00004", categories=["math.PR", "math-ph"]),
    ]
    index.add(records)
    ids = lambda cats: {p.arxiv_id for p in index.search("graph networks", limit=10, categories=cats)}  # noqa: E731
    assert ids([]) == {r.arxiv_id for r in records}
    assert ids(["stat.ML"]) == {"2101.00001"}
    assert ids(["cs"]) == {"2101.00001", "2101.00003"}
    assert ids(["math"]) == {"2101.00004"} and ids(["hep-th", "cs.CL"]) == {"2101.00002", "2101.00003"}
    assert ids(["q-bio"]) == set()
    (paper,) = index.search("string theory", limit=1, categories=["hep-th"])
    assert paper.categories == ["hep-th"]
    assert index.search("graph", limit=1, categories=["cs"], before=date(2000, 1, 1)) == []
    index.close()


class Listed(FakeSource):
    """A source that cannot filter: papers of known categories (`... lg` cs.LG, `... th` hep-th) and unknown."""

    async def search(self, query: str, *, limit: int, before: date | None, after: date | None = None) -> list[Paper]:
        self.calls.log.append(("search", self.name, query, limit, before))
        cats = [["cs.LG"], ["hep-th"], []]
        names = ["lg", "th", "unknown"]
        return [
            Paper(title=f"{'abcdef'[i]} {names[i % 3]}", categories=cats[i % 3], sources=[self.name]) for i in range(6)
        ][:limit]


@pytest.mark.anyio
async def test_sources_that_cannot_filter_lose_only_papers_known_to_be_outside(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    calls = Calls()
    source = Listed(calls, name="listed")
    found = await cached_search(source, store, "q", limit=6, before=None, ttl=60, categories=["cs"])
    assert [p.title for p in found] == ["a lg", "c unknown", "d lg", "f unknown"]
    # The unfiltered search is the one cached: the same answer serves any filter without a request.
    again = await cached_search(source, store, "q", limit=6, before=None, ttl=60, categories=["hep-th"])
    assert [p.title for p in again] == ["b th", "c unknown", "e th", "f unknown"] and len(calls.log) == 1
    store.close()


class Filtering(FakeSource):
    filters_categories = True

    async def search(
        self, query: str, *, limit: int, before: date | None, after: date | None = None, categories: Any = ()
    ) -> list[Paper]:
        self.calls.log.append(("search", self.name, query, tuple(categories)))
        return [Paper(title=f"{query} {c}", categories=[c], sources=[self.name]) for c in categories or ["x.Y"]]


@pytest.mark.anyio
async def test_a_filtered_search_is_cached_apart_from_the_unfiltered_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    calls = Calls()
    source = Filtering(calls, name="arxiv")
    for _ in range(2):
        assert [p.title for p in await cached_search(source, store, "q", limit=5, before=None, ttl=60)] == ["q x.Y"]
        found = await cached_search(source, store, "q", limit=5, before=None, ttl=60, categories=["cs.LG"])
        assert [p.title for p in found] == ["q cs.LG"]
    assert calls.log == [("search", "arxiv", "q", ()), ("search", "arxiv", "q", ("cs.LG",))]
    store.close()


class CitingAcross(FakeResolver):
    """Of the papers each paper cites in its Related Work, `.r0` is hep-th, `.r1` cs.LG, `.r2` of unknown category."""

    async def resolve(self, refs: list[Reference], member: Member | None = None) -> list[Paper | None]:
        found = await super().resolve(refs, member)
        cats = {"r0": ["hep-th"], "r1": ["cs.LG"]}
        return [p.model_copy(update={"categories": cats.get(name_of(p.title)[-2:], [])}) for p in found]


@pytest.mark.anyio
async def test_a_deep_search_drops_cited_papers_known_to_be_outside(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    calls = Calls()
    parts = {
        "crawler": FakeCrawler(calls),
        "selector": FakeSelector(calls, {}),
        "fulltext": FakeFullText(calls),
        "resolver": CitingAcross(calls),
        "store": store,
    }
    params = SearchParams(search_queries=2, search_papers=3, expand_layers=1, categories=["cs.lg"])
    run = await DeepSearch("q", params, sources=[FakeSource(calls)], **parts).run()
    store.close()
    assert run.params.categories == ["cs.LG"] and run.tree["extra"]["categories"] == ["cs.LG"]
    assert run.status == "finished" and run.failures == [f"fake {NOT_FILTERED}"]
    cited = Counter(name_of(p.title).rsplit(".", 1)[1] for p in run.papers if p.depth == 1)
    assert cited == {"r1": 6, "r2": 6}  # of the 6 papers expanded, none of the hep-th papers they cite
    with pytest.raises(ValueError, match="not an arXiv category: 'cs LG'"):
        SearchParams(categories=["cs LG"])


# End to end ---------------------------------------------------------------------------------------


@asynccontextmanager
async def world_session(tmp_path: Path, **extra: Any) -> AsyncIterator[tuple[World, Any]]:
    async with World.start(seed=7, papers=300, time_scale=SCALE) as world:
        index = tmp_path / "index.sqlite3"
        write_snapshot(world.corpus, tmp_path / "snapshot.jsonl")
        built = LocalIndex(index)
        import_snapshot(built, tmp_path / "snapshot.jsonl")
        built.close()
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3", index_path=index, **extra)
        with anyio.fail_after(180):
            async with connect(settings) as tools:
                yield world, tools


def categories_of(world: World) -> dict[str, list[str]]:
    return {f"arxiv:{p.arxiv_id}": p.categories for p in world.corpus.papers if p.arxiv_id}


def a_query_and_category(world: World) -> tuple[str, str]:
    """Words from a title, and a category that some but not all of their arXiv hits are in."""
    corpus = world.corpus
    for paper in corpus.papers:
        words = paper.title.split()[-2:]
        hits = [p for p in corpus.papers if p.arxiv_id and all(w.lower() in p.title.lower() for w in words)]
        counts = Counter(c for p in hits for c in p.categories)
        for category, n in counts.most_common():
            if 2 <= n < len(hits) and len(hits) <= 40:
                return " ".join(words), category
    raise AssertionError("the world has no query with hits across categories")


@pytest.mark.anyio
async def test_find_papers_filters_each_source_over_mcp(tmp_path: Path) -> None:
    async with world_session(tmp_path) as (world, tools):
        cats = categories_of(world)
        query, wanted = a_query_and_category(world)
        wide = {"queries": [query], "papers_per_query": 50, "limit": 100}

        for source in ("arxiv", "local"):
            every = await tools.call("find_papers", **wide, sources=[source])
            inside = {p["id"] for p in every["papers"] if wanted in cats[p["id"]]}
            assert 0 < len(inside) < every["total"], source
            found = await tools.call("find_papers", **wide, sources=[source], categories=[wanted.lower()])
            assert {p["id"] for p in found["papers"]} >= inside and found["failures"] == [], source
            assert all(wanted in cats[p["id"]] for p in found["papers"]), source
            archive = wanted.split(".")[0]
            whole = await tools.call("find_papers", **wide, sources=[source], categories=[archive])
            assert all(any(c.split(".")[0] == archive for c in cats[p["id"]]) for p in whole["papers"])
            assert {p["id"] for p in whole["papers"]} >= {p["id"] for p in found["papers"]}, source
        searched = [r["path"] for r in world.log.records if r["service"] == "arxiv_api" and "search_query" in r["path"]]
        assert any(f"cat%3A{wanted}" in path for path in searched), searched

        # Google's papers come with arXiv's metadata: its results are filtered exactly, and it says so.
        every = await tools.call("find_papers", **wide, sources=["google"])
        found = await tools.call("find_papers", **wide, sources=["google"], categories=[wanted])
        assert found["papers"] and all(wanted in cats[p["id"]] for p in found["papers"])
        assert found["total"] < every["total"]
        assert found["failures"] == [{"source": "google", "query": "*", "error": NOT_FILTERED}]

        # Semantic Scholar knows no arXiv categories: its papers are dropped where the store knows theirs.
        every = await tools.call("find_papers", **wide, sources=["semantic_scholar"])
        found = await tools.call("find_papers", **wide, sources=["semantic_scholar"], categories=[wanted])
        known_outside = {p["id"] for p in every["papers"] if p["id"] in cats and wanted not in cats[p["id"]]}
        assert known_outside and not known_outside & {p["id"] for p in found["papers"]}
        assert found["failures"][0]["error"] == NOT_FILTERED and found["papers"]

        for bad in (["cs LG"], ["cs.LG", "cat:cs.AI"]):
            with pytest.raises(ToolFailed, match=f"not an arXiv category: {bad[-1]!r}"):
                await tools.call("find_papers", queries=[query], categories=bad)
        with pytest.raises(ToolFailed, match="not an arXiv category: 'x y'"):
            await tools.call("paper_search", question="a question", categories=["x y"])


@pytest.mark.anyio
async def test_a_deep_search_keeps_to_its_categories(tmp_path: Path) -> None:
    async with world_session(tmp_path) as (world, tools):
        cats = categories_of(world)
        row = world.queries[0]
        answer = next(p for p in world.corpus.papers if p.arxiv_id == row["answer_arxiv_id"][0])
        wanted = answer.categories[0]
        report = await tools.deep_search(
            row["question"],
            categories=[wanted],
            sources=["arxiv", "openalex"],
            search_queries=3,
            expand_layers=1,
            wait_seconds=60,
        )
        assert report["status"] == "finished", report
        assert report["failures"][0] == f"openalex {NOT_FILTERED}"
        every = await tools.call("paper_search_status", search_id=report["search_id"], include="all", limit=200)
        store = Store(tmp_path / "store.sqlite3")
        records = store.get_papers([p["id"] for p in every["papers"]])
        store.close()
        assert every["papers"]
        for paper in every["papers"]:
            known = records[paper["id"]].categories
            assert not known or wanted in known, paper  # none of a known other category
            if paper["depth"] == 0 and paper["id"] in cats and "arxiv" in records[paper["id"]].sources:
                assert wanted in cats[paper["id"]]


def test_cli_search_with_categories(tmp_path: Path) -> None:
    async def run() -> tuple[dict[str, Any], dict[str, list[str]], str]:
        async with World.start(seed=7, papers=300, time_scale=SCALE) as world:
            config = tmp_path / "world.toml"
            config.write_text(world.settings_toml() + f'store_path = "{tmp_path / "store.sqlite3"}"\n')
            out = tmp_path / "result.json"
            env = {**os.environ, "PASA_CONFIG": str(config), "COLUMNS": "250"}
            question = world.queries[0]["question"]
            command = [sys.executable, "-m", "pasa_mcp", "search", question, "--categories", "cs.LG,STAT.ml"]
            command += ["--sources", "arxiv,google", "--layers", "0", "--json", str(out)]
            with anyio.fail_after(180):
                done = await anyio.run_process(command, env=env, check=False)
            assert done.returncode == 0, done.stderr.decode()
            return json.loads(out.read_text()), categories_of(world), done.stderr.decode()

    result, cats, stderr = anyio.run(run)
    assert result["params"]["categories"] == ["cs.LG", "stat.ML"]
    assert result["tree"]["extra"]["categories"] == ["cs.LG", "stat.ML"]
    assert result["papers"] and all({"cs.LG", "stat.ML"} & set(cats[p["key"]]) for p in result["papers"])
    assert f"google {NOT_FILTERED}" in stderr


def test_cli_refuses_a_bad_category_in_one_line() -> None:
    result = CliRunner().invoke(app, ["search", "a question", "--categories", "cs.LG,machine learning"])
    assert result.exit_code == 2
    assert "Invalid search parameters: not an arXiv category: 'machine learning'" in " ".join(result.output.split())
    assert "Traceback" not in result.output
