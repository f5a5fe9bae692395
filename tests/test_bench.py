"""The benchmarks' own computations: the critical-path and rate-limit bounds, and the trace they come from."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pasa_mcp.agent import SearchParams
from pasa_mcp.app import open_app
from pasa_mcp.config import Settings
from pasa_mcp.papers import Reference
from pasa_mcp.sources.arxiv import title_batches, title_phrase
from tools.bench import Call, Pace, Request, Step, Trace, Tracer, Use, bound, ends, paced, run_graph, union_seconds
from tools.bench.runs import paces, service_of
from tools.bench.trace import reference_keys, request_keys
from tools.world import World


def test_union_seconds_counts_overlapping_spans_once() -> None:
    assert union_seconds([]) == 0
    assert union_seconds([(0, 1), (2, 3)]) == 2
    assert union_seconds([(0, 2), (1, 3), (1.5, 1.7)]) == 3
    assert union_seconds([(5, 6), (0, 10)]) == 10


def test_paced_requests_need_an_interval_between_each_and_keep_their_tails() -> None:
    # Four requests that may all start at 0, one per second: the last starts at 3 and has 0.1 s to go.
    assert paced([(0, 0.1)] * 4, Pace(1.0)) == (3.1, 3.0)
    # A late request with a long tail sets the bound on its own; the three early ones still need 2 s.
    assert paced([(0, 0.1), (0, 0.1), (5, 0.5)], Pace(1.0)) == (5.5, 5.0)
    # A burst of two lets two go at once.
    assert paced([(0, 0.1)] * 4, Pace(1.0, burst=2)) == (2.1, 2.0)
    # Nothing starts before the host is free again.
    assert paced([(0, 0.1)], Pace(1.0), free=4.0) == (4.1, 4.0)


def test_ends_is_the_longest_chain_and_a_barrier_waits_for_every_step_before_it() -> None:
    steps = [
        Step("a", 1),
        Step("b", 2, ("a",)),
        Step("c", 5, ("a",)),
        Step("d", 1, ("b",)),
        Step("layer", barrier=True),
        Step("e", 1, ("layer",)),
        Step("end", barrier=True),
    ]
    found = ends(steps)
    assert found["d"] == 4
    assert found["layer"] == 6  # c ends last
    assert found["end"] == 7


def test_ends_rejects_steps_out_of_dependency_order() -> None:
    with pytest.raises(ValueError, match="comes before"):
        ends([Step("b", 1, ("a",)), Step("a", 1)])


def test_a_paced_host_bounds_each_layer_and_carries_its_pace_into_the_next() -> None:
    steps = [
        Step("fetch", 1),
        Step("after", 2, ("fetch",)),
        Step("layer", barrier=True),
        Step("fetch2", 1, ("layer",)),
        Step("end", barrier=True),
    ]
    # Three requests for "fetch" (1 s each), one for "fetch2", on a host allowing one every 5 s.
    uses = [Use("html", 1, ("fetch",))] * 3 + [Use("html", 1, ("fetch2",))]
    found = ends(steps, uses, {"html": Pace(5)})
    # Layer 1: the third request starts at 10 at the earliest, then 1 s of its own and 2 s after it.
    assert found["layer"] == 13
    # Layer 2: its request comes an interval after the third one (15), not at the barrier (13).
    assert found["end"] == 16
    assert ends(steps, uses)["end"] == 4  # the chain alone
    result = bound(steps, uses, {"html": Pace(5), "unused": Pace(100)})
    assert (result.chain, result.total, result.by_service) == (4, 16, {"html": 16, "unused": 4})
    assert result.barriers == {"layer": 13, "end": 16}


def _request(service: str, start: float, end: float, call: int | None, keys: frozenset[str] = frozenset()) -> Request:
    return Request(service, "GET", f"http://{service}/", start, end, 200, call, keys)


def test_a_coalesced_lookup_counts_for_every_running_call_that_wanted_its_keys() -> None:
    trace = Trace(
        calls=[
            Call(0, "resolve", 0, 10, subject="arxiv:A", keys=frozenset({"id:X"})),
            Call(1, "resolve", 1, 10, subject="arxiv:B", keys=frozenset({"id:Y"})),
            Call(2, "resolve", 20, 30, subject="arxiv:C", keys=frozenset({"id:X"})),
        ],
        requests=[
            # Sent from call 0's task, carrying both calls' ids: both waited for it; call 2 was not running.
            _request("arxiv_api", 2, 3, 0, frozenset({"id:X", "id:Y"})),
            # A request without keys counts for its sender only.
            _request("openalex", 4, 6, 1),
            _request("openalex", 5, 7, 1),
        ],
    )
    waiting = trace.waiting()
    assert [[c.id for c in calls] for calls in waiting.values()] == [[0, 1], [1], [1]]
    assert trace.seconds() == {0: 1, 1: 4, 2: 0}  # call 1: 2..3 and 4..7
    assert trace.unattributed() == []
    stray = _request("s2", 0, 1, None)
    assert Trace(requests=[stray]).unattributed() == [stray]


def test_lookup_keys_of_requests_match_those_of_the_references_they_resolve() -> None:
    refs = [
        Reference(title="Sparse Attention for Long Documents", arxiv_id="arXiv:2101.00001v2"),
        Reference(title="A Book Nobody Indexed: Second Edition"),
    ]
    keys = reference_keys(refs)
    ids = httpx.URL("http://arxiv/api/query", params={"id_list": "2101.00001,cs/0609010v1"})
    assert request_keys(ids) == {"id:2101.00001", "id:cs/0609010"}
    # A title search as pasa-mcp's arXiv client writes it carries the same phrases.
    query = " OR ".join(title_batches([p for ref in refs if (p := title_phrase(ref.title))])[0])
    titles = httpx.URL("http://arxiv/api/query", params={"search_query": query, "max_results": 8})
    assert request_keys(titles) == {title_phrase(ref.title) for ref in refs}
    assert keys == request_keys(ids) - {"id:cs/0609010"} | request_keys(titles)
    assert request_keys(httpx.URL("http://arxiv/api/query", params={"search_query": "all:attention"})) == set()


def _node(key: str, depth: int, child: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    return {"title": key, "depth": depth, "child": child or {}, "extra": {"key": key}}


def test_run_graph_follows_the_agent_from_queries_through_two_layers() -> None:
    tree = {"child": {"q1": [_node("arxiv:A", 0, {"2 Related Work": [_node("arxiv:C", 1)]})]}}
    calls = [
        Call(0, "queries", 0, 1, subject="question"),
        Call(1, "search", 1, 3, subject="q1", keys=frozenset({"id:A"})),
        Call(2, "score", 3, 4, papers=("arxiv:A",)),
        Call(3, "fulltext", 4, 6, subject="arxiv:A"),
        Call(4, "sections", 6, 7, subject="arxiv:A"),
        Call(5, "resolve", 7, 9, subject="arxiv:A", keys=frozenset({"id:C"})),
        Call(6, "score", 9, 10, subject="arxiv:A", papers=("arxiv:C",)),
        Call(7, "fulltext", 10, 11, subject="arxiv:C"),
        Call(8, "sections", 11, 11.5, subject="arxiv:C"),
    ]
    requests = [
        _request("crawler", 0, 1, 0),
        _request("serper", 1, 2, 1),
        _request("arxiv_api", 2, 3, None, frozenset({"id:A", "id:Z"})),  # another task sent the lookup
        _request("selector", 3, 4, 2),
        _request("arxiv_html", 4, 5, 3),
        _request("arxiv_html", 5, 6, 3),
        _request("crawler", 6, 7, 4),
        _request("arxiv_api", 7.5, 8.5, 5, frozenset({"id:C"})),
        _request("selector", 9, 10, 6),
        _request("arxiv_html", 10, 11, 7),
        _request("crawler", 11, 11.5, 8),
    ]
    steps, uses = run_graph(Trace(calls, requests), tree)
    assert [s.name for s in steps if s.barrier] == ["depth 0 expanded", "depth 1 expanded", "end"]
    after = {s.name: s.after for s in steps}
    assert after["fulltext#3"] == ("score#2",) and after["fulltext#7"] == ("depth 0 expanded",)
    assert after["score#6"] == ("resolve#5",)
    # Queries 1 + search 2 + score 1 + full text 2 + sections 1 + resolve 1 + score 1, then 1 + 0.5.
    assert bound(steps, uses, {}).chain == 10.5
    # arxiv.org/html at one request per 5 s: A's second page at 4 + 5 and 3 s of A's work after it;
    # C's page an interval after that one (14), then 1 + 0.5.
    assert bound(steps, uses, {"arxiv_html": Pace(5)}).total == 15.5
    assert sorted(u.service for u in uses) == sorted(r.service for r in requests)


@pytest.mark.anyio
async def test_tracing_a_real_search_accounts_for_every_request_and_bounds_below_its_wall_time(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with World.start(seed=3, papers=400, time_scale=0.005) as world:
            row = world.queries[0]
            settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
            async with open_app(settings) as pasa:
                tracer = Tracer(pasa.net.client, service_of(world))
                run = tracer.instrument(pasa.deep_search_run(row["question"], SearchParams.from_settings(settings)))
                result = await run.run()
            trace = tracer.finish()
    assert result.status == "finished" and result.counts.expanded > 0
    assert trace.unattributed() == [] and trace.unanswered == 0
    assert {r.service for r in trace.requests} >= {"crawler", "selector", "serper", "arxiv_api", "arxiv_html"}
    assert len(trace.requests) == sum(c["requests"] for c in world.log.counts().values())
    assert sum(c.kind == "fulltext" for c in trace.calls) == result.counts.expanded
    steps, uses = run_graph(trace, result.tree)
    found = bound(steps, uses, paces(world))
    arxiv = paces(world)["arxiv_api"]
    assert (sum(u.service == "arxiv_api" for u in uses) - 1) * arxiv.interval <= found.by_service["arxiv_api"]
    assert 0 < found.chain <= found.total <= result.seconds + 1e-3
    assert not math.isnan(max(c.end for c in trace.calls))


def test_the_index_benchs_snapshot_reads_as_arxivs_and_imports_whole(tmp_path: Path) -> None:
    import json

    from pasa_mcp.index.db import STOPWORDS, LocalIndex
    from pasa_mcp.index.snapshot import import_snapshot
    from tools.bench.index import generate

    path = tmp_path / "snapshot.jsonl"
    generated = generate(path, 300)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert any("\n  " in line["title"] for line in lines) and all(line["abstract"].startswith("  ") for line in lines)
    words = [w for line in lines for w in line["abstract"].split()]
    assert 0.3 < sum(w.strip(".") in STOPWORDS for w in words) / len(words) < 0.4  # as real abstracts (34%)
    index = LocalIndex(tmp_path / "index.sqlite3")
    counts = import_snapshot(index, path)
    assert (counts["added"], counts["bad"]) == (300, 0)
    first = index.papers_by_arxiv([lines[0]["id"]])[lines[0]["id"]]
    assert first.title == generated["titles"][0] and len(first.authors) == len(lines[0]["authors_parsed"])
    papers = index.papers_by_arxiv([line["id"] for line in lines]).values()
    assert sum(len(p.title.encode()) + len(p.abstract.encode()) for p in papers) == generated["raw_bytes"]
    index.close()
