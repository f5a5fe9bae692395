"""The PaSa loop with fakes that record every call: order, limits, de-duplication, caching,
budgets, failures and cancellation."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date
from pathlib import Path

import anyio
import pytest

from pasa_mcp.agent import DeepSearch, Event, SearchParams
from pasa_mcp.llm import ModelError, ModelNotRunning, ModelOverloaded
from pasa_mcp.net import SourceUnavailable
from pasa_mcp.resolve import ResolutionIncomplete
from pasa_mcp.store import Store, StoreError
from tests.fakes import Calls, FakeCrawler, FakeFullText, FakeResolver, FakeSelector, FakeSource, paper, title

QUESTION = "value-based methods for non-stationary RL, especially with UCB algorithms"

# 25 depth-1 papers score high (distinct scores), so the top 20 of layer 1 are known exactly.
HIGH = {title(f"q{1 + i % 5}-{i // 5}.r0"): 0.99 - i * 0.01 for i in range(25)}
SEARCH_HITS = {title("q1-0"): 0.95, title("q2-3"): 0.7}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "agent.sqlite3")
    yield s
    s.close()


def build(
    store: Store, calls: Calls, params: SearchParams | None = None, question: str = QUESTION, **overrides
) -> DeepSearch:
    parts = {
        "crawler": FakeCrawler(calls),
        "selector": FakeSelector(calls, {**HIGH, **SEARCH_HITS}),
        "sources": [FakeSource(calls)],
        "fulltext": FakeFullText(calls),
        "resolver": FakeResolver(calls),
        "store": store,
    }
    parts.update(overrides)
    return DeepSearch(question, params or SearchParams(end_date=date(2024, 5, 1)), **parts)


@pytest.mark.anyio
async def test_default_run_follows_the_papers_loop_exactly(store: Store) -> None:
    calls = Calls()
    result = await build(store, calls).run()

    assert calls.of("queries") == [("queries", QUESTION, 5, False)]
    searches = calls.of("search")
    assert sorted(s[2] for s in searches) == ["q1", "q2", "q3", "q4", "q5"]
    assert {(s[3], s[4]) for s in searches} == {(10, date(2024, 5, 1))}  # 10 papers each, before end_date

    depth = Counter(p.depth for p in result.papers)
    assert depth == {0: 50, 1: 150, 2: 60}  # 5x10 found; 3 cited in the chosen section each; top 20 expanded

    # Depth 0: every paper expanded whatever its score; depth 1: exactly the 20 best; depth 2: none.
    expanded = [c[1] for c in calls.of("fulltext")]
    assert len(expanded) == len(set(expanded)) == 70
    by_key = {p.key: p for p in result.papers}
    assert Counter(by_key[k].depth for k in expanded) == {0: 50, 1: 20}
    best_depth1 = sorted((p for p in result.papers if p.depth == 1), key=lambda p: -p.score)[:20]
    assert {p.key for p in best_depth1} == {k for k in expanded if by_key[k].depth == 1}

    # The crawler saw each paper's sections; only the chosen section's citations were resolved.
    assert {c[2] for c in calls.of("sections")} == {("1 Introduction", "2 Related Work")}
    assert all(all(".r" in t for t in c[1]) for c in calls.of("resolve"))

    # Every paper scored exactly once, in batches per search result / expansion.
    scored = [t for c in calls.of("score") for t in c[1]]
    assert len(scored) == len(set(scored)) == 260
    assert result.counts.scored == 260

    assert result.status == "finished"
    assert [p.score for p in result.papers] == sorted((p.score for p in result.papers), reverse=True)
    assert {p.title for p in result.selected} == set(HIGH) | set(SEARCH_HITS)
    top = result.papers[0]
    assert (top.title, top.depth, top.found_by) == (title("q1-0.r0"), 1, f"{by_key[top.parent].key} § 2 Related Work")
    assert by_key[top.parent].title == title("q1-0")


@pytest.mark.anyio
async def test_the_tree_has_the_reference_shape(store: Store) -> None:
    result = await build(store, Calls(), SearchParams(expand_layers=1)).run()
    tree = result.tree
    assert tree["source"] == "Root" and tree["title"] == QUESTION
    assert sorted(tree["child"]) == ["q1", "q2", "q3", "q4", "q5"]
    node = next(n for n in tree["child"]["q1"] if n["title"] == title("q1-0"))
    fields = {"title", "arxiv_id", "depth", "abstract", "sections", "source", "select_score", "child", "extra"}
    assert set(node) == fields
    assert node["source"] == "Search q1" and node["depth"] == 0 and node["select_score"] == 0.95
    assert node["sections"] == ["2 Related Work"]
    assert [c["title"] for c in node["child"]["2 Related Work"]] == [title(f"q1-0.r{j}") for j in range(3)]
    assert node["child"]["2 Related Work"][0]["source"] == "Expand 2 Related Work"
    assert len(tree["extra"]["crawler_recall_papers"]) == 50 + 150
    assert set(tree["extra"]["recall_papers"]) == set(HIGH) | set(SEARCH_HITS)


@pytest.mark.anyio
async def test_papers_found_twice_count_once(store: Store) -> None:
    calls = Calls()
    result = await build(store, calls, SearchParams(expand_layers=0), sources=[FakeSource(calls, shared=True)]).run()
    shared = [p for p in result.papers if p.title == title("shared")]
    assert len(shared) == 1
    assert len(result.papers) == 1 + 5 * 9  # the shared paper takes one of each query's 10 places
    scored = [t for c in calls.of("score") for t in c[1]]
    assert scored.count(title("shared")) == 1


@pytest.mark.anyio
async def test_a_second_run_is_served_from_the_store(store: Store) -> None:
    await build(store, Calls()).run()
    calls = Calls()
    again = await build(store, calls).run()
    assert calls.of("search") == []  # cached search results
    assert calls.of("score") == []  # cached selector scores
    assert again.counts.papers == 260


@pytest.mark.anyio
async def test_ensemble_unions_a_deterministic_and_sampled_crawler_run(store: Store) -> None:
    calls = Calls()
    result = await build(store, calls, SearchParams(ensemble=2, expand_layers=1)).run()
    assert sorted(c[3] for c in calls.of("queries")) == [False, True]
    assert result.counts.queries == 10
    assert Counter(c[3] for c in calls.of("sections")) == {False: 100, True: 100}


@pytest.mark.anyio
async def test_a_failing_source_is_reported_and_the_others_carry_on(store: Store) -> None:
    calls = Calls()
    broken = FakeSource(calls, name="broken")
    broken.failing = True
    result = await build(store, calls, SearchParams(expand_layers=0), sources=[broken, FakeSource(calls)]).run()
    assert result.status == "partial"
    assert len(result.papers) == 50
    assert len(result.failures) == 5
    assert "broken unavailable: 5 retries, last HTTP 503" in result.failures[0]
    assert result.losses == ["5 of 10 searches failed: broken unavailable: 5 retries, last HTTP 503"]
    assert result.steps["search"].model_dump() == {"tried": 10, "failed": 5}


@pytest.mark.anyio
async def test_when_every_source_fails_the_run_fails_instead_of_finding_nothing(store: Store) -> None:
    calls = Calls()
    broken = FakeSource(calls, name="broken")
    broken.failing = True
    result = await build(store, calls, sources=[broken]).run()
    assert result.status == "failed"
    assert result.papers == [] and len(result.failures) == 5
    assert result.error == "no search answered: broken unavailable: 5 retries, last HTTP 503"


@pytest.mark.anyio
async def test_the_paper_budget_stops_the_run(store: Store) -> None:
    result = await build(store, Calls(), SearchParams(max_papers=80)).run()
    assert result.status == "budget"
    assert result.counts.papers == 80
    assert "paper budget of 80 reached" in result.failures


@pytest.mark.anyio
async def test_the_time_budget_stops_the_run(store: Store) -> None:
    calls = Calls()
    gate = anyio.Event()  # never set: expansions hang until the deadline
    with anyio.fail_after(5):
        result = await build(store, calls, SearchParams(max_seconds=0.3), fulltext=FakeFullText(calls, gate)).run()
    assert result.status == "budget"
    assert result.counts.papers == 50 and result.counts.expanded == 0


@pytest.mark.anyio
async def test_cancelling_mid_run_keeps_what_was_found_and_a_consistent_store(store: Store) -> None:
    calls = Calls()
    gate = anyio.Event()
    events: list[Event] = []
    search = build(store, calls, fulltext=FakeFullText(calls, gate))

    async def on_event(event: Event) -> None:
        events.append(event)
        if event.counts.scored == 50:  # all searches scored, expansions waiting on full text
            tg.cancel_scope.cancel()

    search.on_event = on_event
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(search.run)

    partial = search.result()
    assert partial.status == "cancelled"
    assert len(partial.papers) == 50 and all(p.score >= 0 for p in partial.papers)
    assert events[-1].kind == "scored"
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.count_papers() == 50

    # The next run reuses everything the cancelled one stored.
    calls2 = Calls()
    result = await build(store, calls2).run()
    assert result.status == "finished" and calls2.of("search") == []
    assert len([t for c in calls2.of("score") for t in c[1]]) == 210


@pytest.mark.anyio
async def test_progress_events_carry_counts(store: Store) -> None:
    events: list[Event] = []

    async def on_event(event: Event) -> None:
        events.append(event)

    search = build(store, Calls(), SearchParams(expand_layers=1))
    search.on_event = on_event
    await search.run()
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["started", "queries"] and kinds[-1] == "finished"
    assert kinds.count("searched") == 5 and kinds.count("expanded") == 50
    assert events[-1].counts.expansions_left == 0 and events[-1].counts.expanded == 50
    assert max(e.counts.expansions_left for e in events) > 0


@pytest.mark.anyio
async def test_a_selector_that_never_answers_fails_the_run_with_a_result(store: Store) -> None:
    class BrokenSelector(FakeSelector):
        async def score(self, user_query, papers):
            raise ModelNotRunning("selector", [("http://127.0.0.1:8002/v1", "ConnectError after 3 retries")])

    result = await build(store, Calls(), SearchParams(expand_layers=1), selector=BrokenSelector(Calls())).run()
    assert result.status == "failed"
    assert result.error.startswith("the selector never answered: selector model not running at http://127.0.0.1")
    assert len(result.papers) == 200 and all(p.score == -1 and not p.selected for p in result.papers)


@pytest.mark.anyio
async def test_a_crawler_that_writes_no_query_fails_the_run(store: Store) -> None:
    class BrokenCrawler(FakeCrawler):
        async def queries(self, user_query, *, limit, sample=False):
            raise ModelError("crawler answered garbage")

    calls = Calls()
    result = await build(store, calls, SearchParams(ensemble=2), crawler=BrokenCrawler(calls)).run()
    assert result.status == "failed" and calls.of("search") == []
    assert result.error == "the crawler wrote no search query: crawler answered garbage"
    assert result.steps["queries"].model_dump() == {"tried": 2, "failed": 2}


@pytest.mark.anyio
async def test_one_failed_ensemble_run_loses_only_its_queries(store: Store) -> None:
    class HalfCrawler(FakeCrawler):
        async def queries(self, user_query, *, limit, sample=False):
            if sample:
                raise ModelOverloaded("crawler", [("http://c/v1", "ReadTimeout after 3 retries")])
            return await super().queries(user_query, limit=limit, sample=sample)

    calls = Calls()
    result = await build(store, calls, SearchParams(ensemble=2, expand_layers=0), crawler=HalfCrawler(calls)).run()
    assert result.status == "partial" and result.counts.queries == 5
    assert result.losses[0].startswith("1 of 2 crawler query runs failed: crawler model overloaded or timed out")


@pytest.mark.anyio
async def test_a_model_failing_at_the_last_expansion_loses_only_that_expansion(store: Store) -> None:
    """The crawler fails for one depth-1 paper (the last layer): the run ends `partial` with all the rest."""
    calls = Calls()
    complete = await build(Store(":memory:"), Calls()).run()
    victim = next(p for p in complete.papers if p.depth == 1 and p.score > 0.5)

    class FlakyCrawler(FakeCrawler):
        async def sections(self, user_query, paper, names, *, sample=False):
            if paper.key == victim.key:
                raise ModelOverloaded("crawler", [("http://127.0.0.1:8001/v1", "ReadTimeout after 3 retries")])
            return await super().sections(user_query, paper, names, sample=sample)

    result = await build(store, calls, crawler=FlakyCrawler(calls)).run()
    assert result.status == "partial" and result.error is None
    assert result.steps["expand"].model_dump() == {"tried": 70, "failed": 1}
    (loss,) = result.losses
    assert loss.startswith("1 of 70 expansions failed: crawler model overloaded or timed out at http://127.0.0.1:8001")
    (failure,) = result.failures
    assert failure.startswith(f"crawler sections of {victim.key}: crawler model overloaded or timed out")
    # Everything else is there: the lost expansion would have added 3 depth-2 papers.
    assert len(result.papers) == len(complete.papers) - 3
    assert {p.key for p in result.selected} == {p.key for p in complete.selected}
    assert result.outcome.startswith("partial: 1 of 70 expansions failed")


@pytest.mark.anyio
async def test_an_incomplete_full_text_is_used_and_reported_as_a_loss(store: Store) -> None:
    class CutFullText(FakeFullText):
        async def section_map(self, p):
            found = await super().section_map(p)
            if p.title == title("q1-0"):
                found.complete = False
                found.warnings.append("the page ends early (no closing </html>): cut off in transit")
            return found

    calls = Calls()
    result = await build(store, calls, SearchParams(expand_layers=1), fulltext=CutFullText(calls)).run()
    assert result.status == "partial" and result.counts.papers == 200  # its citations were still followed
    (loss,) = result.losses
    cut = "the page ends early (no closing </html>): cut off in transit"
    assert loss == f"1 of 50 expansions failed: full text incomplete ({cut})"


@pytest.mark.anyio
async def test_references_a_failing_source_left_unresolved_are_a_loss_and_the_rest_are_kept(store: Store) -> None:
    class PartialResolver(FakeResolver):
        """OpenAlex down for the last reference of q1-0's related work: the others are resolved."""

        async def resolve(self, refs, member=None):
            found = await super().resolve(refs, member)
            if refs[-1].title == title("q1-0.r2"):
                down = SourceUnavailable("OpenAlex", 6, "HTTP 503")
                raise ResolutionIncomplete([*found[:-1], None], 1, down)
            return found

    calls = Calls()
    result = await build(store, calls, SearchParams(expand_layers=1), resolver=PartialResolver(calls)).run()
    assert result.status == "partial" and result.counts.papers == 199  # only the unresolved reference is missing
    by_title = {p.title: p for p in result.papers}
    assert {by_title[title(f"q1-0.r{j}")].parent for j in range(2)} == {paper("q1-0").key}
    assert title("q1-0.r2") not in by_title
    (loss,) = result.losses
    down = "OpenAlex unavailable: 5 retries, last HTTP 503"
    assert loss == f"1 of 50 expansions failed: cited references not resolved ({down})"
    (failure,) = result.failures
    assert failure == f"resolving references of {paper('q1-0').key}: 1 of 3 references not resolved: {down}"


@pytest.mark.anyio
async def test_a_store_fault_ends_the_run_at_once_as_failed(store: Store) -> None:
    class FullStoreSelector(FakeSelector):
        async def score(self, user_query, papers):
            raise StoreError("the store /x/pasa.sqlite3 is full")

    calls = Calls()
    result = await build(store, calls, selector=FullStoreSelector(calls)).run()
    assert result.status == "failed" and result.error == "the store /x/pasa.sqlite3 is full"
    assert calls.of("fulltext") == []  # nothing went on after the fault


def test_empty_questions_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="empty"):
        build(store, Calls(), question="  ")


@pytest.mark.anyio
async def test_concurrency_bounds_the_searches_and_expansions_in_flight(store: Store) -> None:
    calls = Calls()
    in_flight, peak = 0, 0

    class CountingFullText(FakeFullText):
        async def section_map(self, p):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                for _ in range(3):  # let other tasks run, if the agent allows them
                    await anyio.lowlevel.checkpoint()
                return await super().section_map(p)
            finally:
                in_flight -= 1

    unbounded = await build(store, calls, SearchParams(expand_layers=1), fulltext=CountingFullText(calls)).run()
    assert peak > 1
    peak = 0
    bounded = await build(
        store, calls, SearchParams(expand_layers=1, concurrency=1), fulltext=CountingFullText(calls)
    ).run()
    assert peak == 1
    assert {p.key for p in bounded.papers} == {p.key for p in unbounded.papers}  # the same work, one at a time


@pytest.mark.anyio
async def test_a_run_ends_saying_which_sources_were_down_during_it_though_others_stood_in(store: Store) -> None:
    asked: list[float] = []

    def notices(since: float) -> dict[str, str]:
        asked.append(since)
        return {"arXiv API": "arXiv API was unavailable during the run: down (3 requests in a row failed, ...)"}

    before = time.monotonic()
    result = await build(store, Calls(), notices=notices).run()
    assert result.failures == ["arXiv API was unavailable during the run: down (3 requests in a row failed, ...)"]
    assert len(asked) == 1 and before <= asked[0] <= time.monotonic()  # since the run's own start
