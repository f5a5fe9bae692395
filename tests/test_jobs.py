"""Deep searches as jobs: start at once, wait, progress, cancel, and the store as the shared record
(read by other processes, after restarts, and for runs whose process died)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from pasa_mcp.agent import DeepSearch, SearchParams
from pasa_mcp.jobs import INTERRUPTED, SHUTDOWN, Jobs, JobsBusy, OnEvent, Snapshot, UnknownSearch, open_jobs
from pasa_mcp.llm import ModelNotRunning
from pasa_mcp.store import Store
from tests.fakes import Calls, FakeCrawler, FakeFullText, FakeResolver, FakeSelector, FakeSource, title

QUESTION = "value-based methods for non-stationary RL"
SCORES = {title("q1-0"): 0.9, title("q2-1"): 0.8, title("q1-0.r0"): 0.7}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite3"


@asynccontextmanager
async def jobs_on(path: Path, **options: float) -> AsyncIterator[Jobs]:
    """Jobs over their own connection to the store file, as another process would have."""
    store = Store(path)
    try:
        async with open_jobs(store, **options) as jobs:
            yield jobs
    finally:
        store.close()


def maker(jobs: Jobs, calls: Calls, gate: anyio.Event | None = None, crawler=None) -> Callable[[OnEvent], DeepSearch]:
    """A deep search over the fakes; with a closed `gate`, it blocks at its first full-text fetch."""

    def make(on_event: OnEvent) -> DeepSearch:
        return DeepSearch(
            QUESTION,
            SearchParams(search_queries=3, search_papers=4, expand_layers=1),
            crawler=crawler or FakeCrawler(calls),
            selector=FakeSelector(calls, SCORES),
            sources=[FakeSource(calls)],
            fulltext=FakeFullText(calls, gate),
            resolver=FakeResolver(calls),
            store=jobs.store,
            on_event=on_event,
        )

    return make


async def until(jobs: Jobs, search_id: str, done: Callable[[Snapshot], bool]) -> Snapshot:
    with anyio.fail_after(5):
        while not done(snap := await jobs.wait(search_id, 0.01)):
            pass
    return snap


def blocked(snap: Snapshot) -> bool:
    """Every search result scored: a gated run now waits in its expansions."""
    return snap.counts.scored == 12


@pytest.mark.anyio
async def test_start_returns_an_id_at_once_and_wait_returns_the_final_result(store_path: Path) -> None:
    calls, gate = Calls(), anyio.Event()
    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, calls, gate))
        assert (await jobs.snapshot(search_id)).status == "queued"
        assert calls.log == []  # nothing ran yet: the caller got its id first

        gate.set()
        with anyio.fail_after(5):
            snap = await jobs.wait(search_id, 60)
        assert snap.status == "finished"
        assert snap.result is not None and snap.result.status == "finished"
        assert {p.title for p in snap.result.selected} == set(SCORES)
        assert snap.counts == snap.result.counts and snap.counts.papers == len(snap.result.papers) == 48

        row = jobs.store.get_run(search_id)
        assert row["status"] == "finished" and row["params"]["sources"] == ["fake"]
        assert row["result"]["tree"]["title"] == QUESTION
        kinds = [e["kind"] for e in jobs.store.run_events(search_id)]
        assert kinds[:2] == ["started", "queries"] and kinds[-1] == "finished"
        assert "expanded" in kinds and "scored" not in kinds  # scored only moves counts, which the result has


@pytest.mark.anyio
async def test_a_wait_that_ends_first_returns_the_papers_selected_so_far(store_path: Path) -> None:
    calls, gate = Calls(), anyio.Event()
    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, calls, gate))
        await until(jobs, search_id, blocked)
        started = anyio.current_time()
        snap = await jobs.wait(search_id, 0.2)
        assert 0.2 <= anyio.current_time() - started < 2
        assert snap.status == "running"
        assert snap.result is not None
        assert {p.title for p in snap.result.selected} == {title("q1-0"), title("q2-1")}
        gate.set()


@pytest.mark.anyio
async def test_progress_reports_growing_counts_until_the_end(store_path: Path) -> None:
    calls = Calls()
    seen: list[Snapshot] = []

    async def on_progress(snap: Snapshot) -> None:
        seen.append(snap)

    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, calls))
        with anyio.fail_after(5):
            final = await jobs.wait(search_id, 60, on_progress)
    assert final.status == "finished"
    scored = [s.counts.scored for s in seen]
    assert len(seen) >= 3 and scored == sorted(scored) and scored[0] < scored[-1]
    assert seen[-1].status == "finished" and seen[-1].counts.scored == final.counts.scored


@pytest.mark.anyio
async def test_cancel_stops_promptly_and_keeps_what_was_found(store_path: Path) -> None:
    calls, gate = Calls(), anyio.Event()
    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, calls, gate))
        await until(jobs, search_id, blocked)
        with anyio.fail_after(1):
            snap = await jobs.cancel(search_id)
        assert snap.status == "cancelled" and snap.error == "cancelled on request"
        assert snap.result is not None and len(snap.result.papers) == 12
        assert {p.title for p in snap.result.selected} == {title("q1-0"), title("q2-1")}
        fetched = len(calls.of("fulltext"))
        gate.set()
        await anyio.wait_all_tasks_blocked()
        assert len(calls.of("fulltext")) == fetched  # nothing ran after the cancel
        row = jobs.store.get_run(search_id)
        assert row["status"] == "cancelled" and len(row["result"]["papers"]) == 12


@pytest.mark.anyio
async def test_another_process_reads_progress_events_and_results_from_the_store(store_path: Path) -> None:
    calls, gate = Calls(), anyio.Event()
    async with jobs_on(store_path, save_every=0.02) as owner, jobs_on(store_path, poll_every=0.02) as reader:
        search_id = await owner.start(maker(owner, calls, gate))
        snap = await until(reader, search_id, blocked)  # from the saved partial result
        assert snap.status == "running" and snap.result is not None
        assert {p.title for p in snap.result.selected} == {title("q1-0"), title("q2-1")}
        assert [e["kind"] for e in reader.store.run_events(search_id)][:2] == ["started", "queries"]

        gate.set()
        with anyio.fail_after(5):
            final = await reader.wait(search_id, 60)
        assert final.status == "finished" and final.counts.papers == 48


@pytest.mark.anyio
async def test_finished_runs_stay_readable_after_a_restart(store_path: Path) -> None:
    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, Calls()))
        with anyio.fail_after(5):
            before = await jobs.wait(search_id, 60)
    async with jobs_on(store_path) as restarted:
        after = await restarted.snapshot(search_id)
    assert after.status == "finished"
    assert after.result == before.result


@pytest.mark.anyio
async def test_a_search_stopped_by_its_budget_reads_back_as_budget_after_a_restart(store_path: Path) -> None:
    async with jobs_on(store_path) as jobs:

        def make(on_event: OnEvent) -> DeepSearch:
            search = maker(jobs, Calls())(on_event)
            search.params = search.params.model_copy(update={"max_papers": 3})
            return search

        search_id = await jobs.start(make)
        with anyio.fail_after(5):
            before = await jobs.wait(search_id, 60)
    async with jobs_on(store_path) as restarted:
        after = await restarted.snapshot(search_id)
    assert before.status == after.status == "budget"
    assert after.result is not None and after.result.counts.papers == 3


@pytest.mark.anyio
async def test_a_running_row_without_heartbeat_is_interrupted_and_a_fresh_one_running(store_path: Path) -> None:
    store = Store(store_path)
    run_id = store.create_run(QUESTION, {})  # as a process that then died (or is alive) left it
    store.close()
    async with jobs_on(store_path, stale_after=0) as jobs:
        snap = await jobs.snapshot(run_id)
        assert (snap.status, snap.error) == ("interrupted", INTERRUPTED)
        assert snap.done
    async with jobs_on(store_path) as jobs:
        assert (await jobs.snapshot(run_id)).status == "running"


@pytest.mark.anyio
async def test_cancelling_another_process_run_stops_it_at_its_next_heartbeat(store_path: Path) -> None:
    calls, gate = Calls(), anyio.Event()
    async with jobs_on(store_path, save_every=0.02) as owner, jobs_on(store_path) as other:
        search_id = await owner.start(maker(owner, calls, gate))
        await until(owner, search_id, blocked)
        assert (await other.cancel(search_id)).status == "cancelled"
        with anyio.fail_after(5):
            snap = await owner.wait(search_id, 60)
        assert (snap.status, snap.error) == ("cancelled", "cancelled on request")
        assert snap.result is not None and len(snap.result.papers) == 12  # the owner's final record


@pytest.mark.anyio
async def test_searches_beyond_the_running_bound_queue_and_beyond_the_queue_are_refused(store_path: Path) -> None:
    gate = anyio.Event()
    async with jobs_on(store_path, max_running=1, max_waiting=1) as jobs:
        first = await jobs.start(maker(jobs, Calls(), gate))
        await until(jobs, first, blocked)
        second = await jobs.start(maker(jobs, Calls(), gate))
        assert (await jobs.wait(second, 0.05)).status == "queued"
        with pytest.raises(JobsBusy, match=f"2 deep searches are running or queued.*{first}, {second}"):
            await jobs.start(maker(jobs, Calls(), gate))
        await jobs.cancel(first)
        await until(jobs, second, blocked)  # the freed slot went to the queued search
        assert (await jobs.snapshot(second)).status == "running"
        gate.set()


@pytest.mark.anyio
async def test_shutting_down_records_running_searches_as_cancelled(store_path: Path) -> None:
    gate = anyio.Event()
    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, Calls(), gate))
        await until(jobs, search_id, blocked)
    store = Store(store_path)
    row = store.get_run(search_id)
    store.close()
    assert (row["status"], row["error"]) == ("cancelled", SHUTDOWN)
    assert len(row["result"]["papers"]) == 12 and row["result"]["status"] == "cancelled"


class DownCrawler(FakeCrawler):
    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        raise ModelNotRunning("crawler", [("http://127.0.0.1:8001/v1", "ConnectError after 5 retries")])


@pytest.mark.anyio
async def test_a_search_that_fails_is_recorded_with_its_message_and_jobs_keep_working(store_path: Path) -> None:
    calls = Calls()
    async with jobs_on(store_path) as jobs:
        failed = await jobs.start(maker(jobs, calls, crawler=DownCrawler(calls)))
        with anyio.fail_after(5):
            snap = await jobs.wait(failed, 60)
        assert snap.status == "failed"
        assert snap.error is not None and "crawler model not running at http://127.0.0.1:8001/v1" in snap.error
        assert jobs.store.get_run(failed)["status"] == "failed"

        fine = await jobs.start(maker(jobs, calls))
        with anyio.fail_after(5):
            assert (await jobs.wait(fine, 60)).status == "finished"


@pytest.mark.anyio
async def test_unknown_ids_are_an_error_naming_the_id_and_the_latest_ones(store_path: Path) -> None:
    async with jobs_on(store_path) as jobs:
        with pytest.raises(UnknownSearch, match=r"^no deep search with id 'nope'$"):
            await jobs.snapshot("nope")
        known = await jobs.start(maker(jobs, Calls()))
        for call in (jobs.snapshot("nope"), jobs.wait("nope", 1), jobs.cancel("nope")):
            with pytest.raises(UnknownSearch, match=f"no deep search with id 'nope' \\(the latest: {known}\\)"):
                await call


@pytest.mark.anyio
async def test_a_full_disk_ends_the_search_failed_at_once_naming_the_store(store_path: Path) -> None:
    calls, gate = Calls(), anyio.Event()
    async with jobs_on(store_path) as jobs:
        search_id = await jobs.start(maker(jobs, calls, gate))
        await until(jobs, search_id, blocked)
        pages = jobs.store.db.execute("PRAGMA page_count").fetchone()[0]
        jobs.store.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
        gate.set()  # the expansions now store the papers they find
        with anyio.fail_after(5):
            snap = await jobs.wait(search_id, 60)
        assert snap.status == "failed"
        assert snap.error is not None and snap.error.startswith(f"the store {store_path} is full")
        assert snap.result is not None and len(snap.result.papers) >= 12  # what it found stays readable
        # The store still took the small status write: other processes see `failed` too, not `running`.
        assert jobs.store.run_status(search_id) == ("failed", snap.error)
