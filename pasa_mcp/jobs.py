"""Deep searches as jobs: started at once, run in a task group that outlives the tool call, kept in
the store.

Clients give up on a tool call after a minute or so, and a deep search takes several, so a call
only starts or waits for a job and the caller comes back with its search id. Each running job saves
its partial result and its new events every `save_every` seconds; that write is also its heartbeat.

The store is shared with other processes (a second server, the CLI). A run that this process does
not hold is read from the store; one still marked `running` whose heartbeat stopped more than
`stale_after` seconds ago belonged to a process that died, and is reported `interrupted`.
Cancelling another process's run marks it cancelled in the store; its owner reads that at its next
heartbeat and stops the run.

At most `max_running` searches run at once per process; up to `max_waiting` more wait `queued` for a
slot, and beyond that `start` refuses with `JobsBusy`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel

from .agent import Counts, DeepSearch, Event, RunResult, SearchParams
from .scrub import scrub
from .store import Store, StoreError

__all__ = ["RESUMABLE", "Jobs", "JobsBusy", "Snapshot", "UnknownSearch", "open_jobs"]

log = logging.getLogger(__name__)

MAX_RUNNING = 2
MAX_WAITING = 8
SAVE_EVERY = 5.0  # seconds between saves (and heartbeats) of a running job
STALE_AFTER = 60.0  # a `running` row not updated for this long has no live owner
POLL_EVERY = 1.0  # seconds between reads of a run that another process runs
UNSAVED_KINDS = frozenset({"scored"})  # frequent, and only move counts, which the saved result carries

Status = Literal["queued", "running", "finished", "partial", "budget", "cancelled", "failed", "interrupted"]
DONE: frozenset[str] = frozenset({"finished", "partial", "budget", "cancelled", "failed", "interrupted"})
OnEvent = Callable[[Event], Awaitable[None]]
# Builds a resumed search from its stored question, parameters and source names.
Resume = Callable[[str, SearchParams, list[str] | None, OnEvent], DeepSearch]
RESUMABLE: frozenset[str] = frozenset({"partial", "failed", "cancelled", "interrupted"})

SHUTDOWN = "stopped: the server shut down"
INTERRUPTED = "interrupted: the process running this search stopped without finishing it"


class JobsBusy(Exception):
    """Every run slot and waiting place is taken."""


class UnknownSearch(LookupError):
    """No run with that id in the store."""

    def __init__(self, search_id: str, recent: list[str]) -> None:
        known = f" (the latest: {', '.join(recent)})" if recent else ""
        super().__init__(f"no deep search with id {search_id!r}{known}")


class Snapshot(BaseModel):
    """A deep search as seen now: live for this process's jobs, from the store for the rest."""

    search_id: str
    query: str
    status: Status
    counts: Counts
    result: RunResult | None = None  # partial while running; None when only counts were asked for
    error: str | None = None
    created: float
    updated: float

    @property
    def done(self) -> bool:
        return self.status in DONE


class _Job:
    def __init__(self, search_id: str) -> None:
        self.id = search_id
        self.search: DeepSearch | None = None
        self.scope = anyio.CancelScope()
        self.started = False
        self.cancel_reason: str | None = None
        self.store_error: str | None = None  # the store failed under it: the job ends `failed`
        self.unsaved: list[Event] = []
        self.changed = anyio.Event()
        self.done = anyio.Event()
        self.created = self.updated = time.time()

    async def on_event(self, event: Event) -> None:
        if event.kind not in UNSAVED_KINDS:
            self.unsaved.append(event)
        self.updated = time.time()
        self.notify()

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def cancel(self, reason: str) -> None:
        self.cancel_reason = self.cancel_reason or reason
        self.scope.cancel()

    def fail(self, error: str) -> None:
        self.store_error = self.store_error or error
        self.scope.cancel()

    def snapshot(self, with_result: bool) -> Snapshot:
        assert self.search is not None
        search = self.search
        return Snapshot(
            search_id=self.id,
            query=search.query,
            status="running" if self.started else "queued",
            counts=search.counts.model_copy(),
            result=search.result() if with_result else None,
            created=self.created,
            updated=self.updated,
        )


def _event_row(event: Event) -> dict[str, Any]:
    return {"message": event.message, "counts": event.counts.model_dump(), **event.data}


class Jobs:
    """This process's deep searches, and a reader of every other run in the store."""

    def __init__(
        self,
        store: Store,
        task_group: TaskGroup,
        *,
        max_running: int = MAX_RUNNING,
        max_waiting: int = MAX_WAITING,
        save_every: float = SAVE_EVERY,
        stale_after: float = STALE_AFTER,
        poll_every: float = POLL_EVERY,
    ) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError(f"need max_running >= 1 and max_waiting >= 0, got {max_running}, {max_waiting}")
        self.store = store
        self.max_running, self.max_waiting = max_running, max_waiting
        self.save_every, self.stale_after, self.poll_every = save_every, stale_after, poll_every
        self._tg = task_group
        self._slots = anyio.CapacityLimiter(max_running)
        self._jobs: dict[str, _Job] = {}
        self._unrecorded: dict[str, Snapshot] = {}  # ended jobs whose end the store could not take

    # Starting and stopping ------------------------------------------------------------------

    async def start(self, make: Callable[[OnEvent], DeepSearch]) -> str:
        """Start the search `make(on_event)` builds; returns its id at once. Raises JobsBusy when full."""
        self._check_room()
        job = _Job(uuid.uuid4().hex[:12])
        search = job.search = make(job.on_event)
        params = {**search.params.model_dump(mode="json"), "sources": [source.name for source in search.sources]}
        await self.store.call(self.store.create_run, search.query, params, job.id)
        self._launch(job)
        return job.id

    async def resume(self, search_id: str, make: Resume) -> str:
        """Run a stopped search again under its id, with its question, parameters and sources.

        The store keeps every search result, score, crawler answer, full text and resolution the
        stopped run fetched, so the work it had done costs almost nothing; only what it lost or never
        reached is fetched. Raises ValueError for a search that is running or ended complete."""
        if search_id in self._jobs:
            raise ValueError(f"deep search {search_id} is already running in this server")
        row = await self._row(search_id)
        status = self._from_row(row).status
        if status not in RESUMABLE:
            raise ValueError(
                f"deep search {search_id} is {status}: only a stopped search "
                f"({', '.join(sorted(RESUMABLE))}) can be resumed"
            )
        self._check_room()
        stored = dict(row["params"])
        sources = stored.pop("sources", None)
        job = _Job(search_id)
        job.search = make(row["query"], SearchParams.model_validate(stored), sources, job.on_event)
        if not await self.store.call(self.store.restart_run, search_id, time.time() - self.stale_after):
            raise ValueError(f"deep search {search_id} was resumed by another process meanwhile")
        self._unrecorded.pop(search_id, None)
        self._launch(job)
        return job.id

    def _check_room(self) -> None:
        if len(self._jobs) >= self.max_running + self.max_waiting:
            raise JobsBusy(
                f"{len(self._jobs)} deep searches are running or queued, the most this server takes "
                f"({', '.join(self._jobs)}); wait for one to finish or cancel one"
            )

    def _launch(self, job: _Job) -> None:
        self._jobs[job.id] = job
        self._tg.start_soon(self._run, job)

    async def cancel(self, search_id: str) -> Snapshot:
        """Stop a search, keeping what it found. A run of another process stops at its next heartbeat."""
        job = self._jobs.get(search_id)
        if job is not None:
            job.cancel("cancelled on request")
            await job.done.wait()
            return await self.snapshot(search_id)
        row = await self._row(search_id)
        if row["status"] == "running":
            await self.store.call(self.store.finish_run, search_id, "cancelled", row["result"], "cancelled on request")
        return await self.snapshot(search_id)

    async def _run(self, job: _Job) -> None:
        assert job.search is not None
        status, error = "cancelled", None
        try:
            with job.scope:
                async with anyio.create_task_group() as helpers:
                    helpers.start_soon(self._heartbeat, job)
                    try:
                        async with self._slots:
                            job.started = True
                            job.notify()
                            result = await job.search.run()
                        status = result.status
                        if status == "failed":
                            error = result.error
                    except Exception as exc:  # a background job must never take the server down
                        status, error = "failed", scrub(str(exc)) or type(exc).__name__
                        log.warning("deep search %s failed: %s", job.id, error)
                    finally:
                        helpers.cancel_scope.cancel()
        finally:
            if status == "cancelled" and job.store_error:
                status, error = "failed", job.store_error
            elif status == "cancelled":
                error = job.cancel_reason or SHUTDOWN
            with anyio.CancelScope(shield=True):
                await self._finish(job, status, error)

    async def _heartbeat(self, job: _Job) -> None:
        assert job.search is not None
        while True:
            await anyio.sleep(self.save_every)
            # Read the search here, in the event loop's thread: the run changes it between awaits.
            events, job.unsaved = job.unsaved, []
            result = job.search.result().model_dump(mode="json")
            try:
                await self.store.call(self._save, job.id, events, result, None)
                stored = await self.store.call(self.store.run_status, job.id)
            except StoreError as exc:  # a full, read-only or damaged store: the search ends now, saying why
                job.fail(str(exc))
                return
            except Exception as exc:  # a busy disk must not end the search
                log.warning("could not save deep search %s: %s", job.id, exc)
                job.unsaved = events + job.unsaved
                continue
            if stored is not None and stored[0] != "running":
                job.cancel(stored[1] or f"marked {stored[0]} by another process")

    def _save(
        self, run_id: str, events: list[Event], result: dict[str, Any], final: tuple[str, str | None] | None
    ) -> None:
        """Runs in the store's thread: new events, then the result so far, or the final one with its status."""
        for event in events:
            self.store.add_event(run_id, event.kind, _event_row(event))
        if final is None:
            self.store.save_partial(run_id, result)
        else:
            self.store.finish_run(run_id, final[0], result, final[1])

    async def _finish(self, job: _Job, status: str, error: str | None) -> None:
        assert job.search is not None
        final = job.search.result().model_copy(update={"status": status})
        events, job.unsaved = job.unsaved, []
        try:
            await self.store.call(self._save, job.id, events, final.model_dump(mode="json"), (status, error))
        except Exception as exc:
            log.error("could not record the end of deep search %s: %s", job.id, exc)
            # This process keeps telling the truth; the small status-only write often fits where the result did not.
            snap = job.snapshot(True)
            self._unrecorded[job.id] = snap.model_copy(
                update={"status": status, "error": error, "result": final, "updated": time.time()}
            )
            try:
                await self.store.call(self.store.set_run_status, job.id, status, error)
            except Exception as again:
                log.error("could not record the status of deep search %s: %s", job.id, again)
        finally:
            del self._jobs[job.id]
            job.done.set()
            job.notify()

    # Reading --------------------------------------------------------------------------------

    async def snapshot(self, search_id: str, *, with_result: bool = True) -> Snapshot:
        """The search now; raises UnknownSearch for an id the store does not know."""
        job = self._jobs.get(search_id)
        if job is not None:
            return job.snapshot(with_result)
        if search_id in self._unrecorded:
            return self._unrecorded[search_id]
        return self._from_row(await self._row(search_id))

    async def wait(
        self,
        search_id: str,
        seconds: float,
        on_progress: Callable[[Snapshot], Awaitable[None]] | None = None,
    ) -> Snapshot:
        """The search once it is done or `seconds` have passed; `on_progress` sees each change in between."""
        deadline = anyio.current_time() + seconds
        seen: tuple[str, Counts] | None = None
        while True:
            job = self._jobs.get(search_id)
            changed = job.changed if job is not None else None
            snap = await self.snapshot(search_id, with_result=False)
            if on_progress is not None and (snap.status, snap.counts) != seen:
                seen = (snap.status, snap.counts)
                await on_progress(snap)
            remaining = deadline - anyio.current_time()
            if snap.done or remaining <= 0:
                return await self.snapshot(search_id)
            with anyio.move_on_after(remaining):
                if changed is not None:
                    await changed.wait()
                else:
                    await anyio.sleep(min(remaining, self.poll_every))

    async def recent(self, offset: int, limit: int) -> tuple[list[Snapshot], bool]:
        """Searches newest first, without results; and whether older ones follow."""
        rows = await self.store.call(self.store.list_runs, limit + 1, offset)
        snaps = []
        for row in rows[:limit]:
            job = self._jobs.get(row["id"])
            if job is not None and job.search is not None:
                snaps.append(job.snapshot(with_result=False))
                continue
            status, error = self._status(row)
            counts = Counts.model_validate(row["counts"]) if row["counts"] else Counts()
            snaps.append(
                Snapshot(
                    search_id=row["id"],
                    query=row["query"],
                    status=status,
                    counts=counts,
                    error=error,
                    created=row["created"],
                    updated=row["updated"],
                )
            )
        return snaps, len(rows) > limit

    def _status(self, row: dict[str, Any]) -> tuple[str, str | None]:
        """A stored run's status; a `running` row nobody has touched lately belongs to a process that stopped."""
        if row["status"] == "running" and time.time() - row["updated"] > self.stale_after:
            return "interrupted", INTERRUPTED
        return row["status"], row["error"]

    async def _row(self, search_id: str) -> dict[str, Any]:
        row = await self.store.call(self.store.get_run, search_id)
        if row is None:
            recent = await self.store.call(self.store.list_runs, 3)
            raise UnknownSearch(search_id, [run["id"] for run in recent])
        return row

    def _from_row(self, row: dict[str, Any]) -> Snapshot:
        result = RunResult.model_validate(row["result"]) if row["result"] else None
        status, error = self._status(row)
        return Snapshot(
            search_id=row["id"],
            query=row["query"],
            status=status,
            counts=result.counts if result else Counts(),
            result=result,
            error=error,
            created=row["created"],
            updated=row["updated"],
        )


@asynccontextmanager
async def open_jobs(store: Store, **options: Any) -> AsyncIterator[Jobs]:
    """Jobs for the life of a server; leaving stops the running ones and records them as cancelled."""
    async with anyio.create_task_group() as tg:
        jobs = Jobs(store, tg, **options)
        try:
            yield jobs
        finally:
            tg.cancel_scope.cancel()
