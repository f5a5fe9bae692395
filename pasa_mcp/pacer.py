"""Pacing shared by every pasa-mcp process of the user: one clock per remote host in a state file.

CLI searches, evaluations and any number of MCP servers (same store or not) each have their own HTTP
client, so a host's limit holds for all of them only if they share its clock. Each host (a policy
name and the network location asked) has a small JSON file in `state_dir/pacing/`, read and written
under a file lock in short critical sections, in a worker thread (never on the event loop). It holds
moments in wall-clock seconds:

- `booked`: requests book a slot before they are sent and sleep until it, so that processes waiting
  for the same host take turns instead of racing;
- `sent`: requests claim their slot when their connection is open and their headers are about to be
  written (httpx's `trace` extension), so that a TCP or TLS handshake cannot shorten the gap the
  server sees, and count it from the moment the headers were written (net.py: a write within a
  couple of milliseconds of its slot is counted from the slot, with no second update);
- `paused`: a `Retry-After` seen by any process holds the host for every process until then.

Both clocks are GCRA: `burst` requests at once, then one per `interval` on average. A host that allows
one connection at a time (the arXiv API) also has a lock file held by the process whose request is
in flight. A host without pacing (a search API, a model) only reads its pause, at most once every
PAUSE_CHECK seconds: another process's `Retry-After` reaches it that much later.

The state lock is an flock on the host's lock file, taken as filelock takes it on POSIX (so
processes of earlier versions still exclude each other) but without filelock's machinery, which cost
ten times the rest of an update (about 90 of 110 us, on every request); where there is no flock
(Windows), filelock takes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
from filelock import FileLock, Timeout

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
LOCK_TIMEOUT = 30.0  # seconds: the state lock is held for microseconds; longer means a broken file system
LOCK_POLL = 0.001  # seconds between tries for the state lock while another process holds it
PAUSE_CHECK = 1.0  # seconds an unpaced host's pause, as last read, is trusted
CONNECTION_POLL = 0.02  # seconds between tries for a one-connection host held by another process
FUTURE_LIMIT = 3600.0  # seconds: a stored moment further ahead is a clock that went back, and is ignored


class PacingStateError(Exception):
    """The pacing state directory cannot be used; one line naming it and what to do."""


@dataclass(frozen=True)
class Rate:
    interval: float = 0.0  # seconds between requests on average (0: not paced)
    burst: int = 1  # requests that may go at once

    def earliest(self, tat: float) -> float:
        """The first moment a request conforms, given the clock's theoretical arrival time."""
        return tat - (self.burst - 1) * self.interval


class HostClock:
    """One host's shared clock and, for one-connection hosts, its connection lock."""

    def __init__(self, directory: Path, name: str, rate: Rate, exclusive: bool) -> None:
        self.rate = rate
        self._directory = directory
        self._state = directory / f"{name}.json"
        self._lock_path = directory / f"{name}.lock"
        self._lock = FileLock(self._lock_path, thread_local=False)
        self._guard = threading.Lock()  # threads of this process take turns at the file lock
        self._connection = FileLock(directory / f"{name}.connection.lock", thread_local=False) if exclusive else None
        self._paused = self._pause_read_until = 0.0  # an unpaced host's pause as last read (wall, monotonic)

    def _update(self, change: Callable[[dict[str, float], float], T]) -> T:
        """Run `change(state, now)` under the lock; the state is written back if it changed. In a thread.

        The file is rewritten in place (a rename per update cost as much as the lock): only holders of
        the lock read it, and a file cut off by a crash reads as no state."""
        try:
            with self._guard:
                self._directory.mkdir(parents=True, exist_ok=True)
                with (
                    self._held(),
                    os.fdopen(os.open(self._state, os.O_RDWR | os.O_CREAT, 0o644), "r+b") as file,
                ):
                    now = time.time()
                    state = self._parse(file.read(), now)
                    before = dict(state)
                    result = change(state, now)
                    if state != before:
                        file.seek(0)
                        file.write(json.dumps(state).encode())
                        file.truncate()
                    return result
        except (OSError, Timeout) as exc:
            raise self._unusable(exc) from None

    @contextmanager
    def _held(self) -> Iterator[None]:
        """The state lock (see the module's docstring); raises Timeout after LOCK_TIMEOUT."""
        if fcntl is None:
            with self._lock.acquire(timeout=LOCK_TIMEOUT):
                yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Timeout(str(self._lock_path)) from None
                    time.sleep(LOCK_POLL)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _unusable(self, exc: Exception) -> PacingStateError:
        return PacingStateError(
            f"pacing state {self._directory} unusable ({exc}); set PASA_STATE_DIR to a writable directory"
        )

    @staticmethod
    def _parse(data: bytes, now: float) -> dict[str, float]:
        try:
            stored = json.loads(data)
        except ValueError:  # empty (new), or cut off by a crash: start afresh
            return {}
        if not isinstance(stored, dict):
            return {}
        return {
            k: float(v)
            for k, v in stored.items()
            if k in ("booked", "sent", "paused") and isinstance(v, int | float) and v <= now + FUTURE_LIMIT
        }

    def _book(self, state: dict[str, float], now: float) -> float:
        start = max(now, state.get("paused", 0.0))
        if self.rate.interval > 0:
            booked = state.get("booked", 0.0)
            start = max(start, self.rate.earliest(booked))
            state["booked"] = max(start, booked) + self.rate.interval
        return start - now

    def _claim(self, hold: float) -> Callable[[dict[str, float], float], tuple[float, float, float]]:
        def change(state: dict[str, float], now: float) -> tuple[float, float, float]:
            sent = state.get("sent", 0.0)
            at = max(now, self.rate.earliest(sent), state.get("paused", 0.0))
            if at - now <= hold:  # taken, for the moment the caller sleeps until
                state["sent"] = max(at, sent) + self.rate.interval
            return at - now, sent, at

        return change

    def _written(self, before: float, at: float) -> Callable[[dict[str, float], float], None]:
        def change(state: dict[str, float], now: float) -> None:
            state["sent"] = max(state.get("sent", 0.0), max(at, before) + self.rate.interval)

        return change

    def _pause(self, seconds: float) -> Callable[[dict[str, float], float], None]:
        def change(state: dict[str, float], now: float) -> None:
            state["paused"] = max(state.get("paused", 0.0), now + seconds)

        return change

    async def book(self) -> float:
        """Book the next slot; the seconds to sleep before sending. Without pacing, only the pause is
        read, and as last read for PAUSE_CHECK seconds."""
        if self.rate.interval <= 0 and time.monotonic() < self._pause_read_until:
            return max(0.0, self._paused - time.time())
        wait = await anyio.to_thread.run_sync(self._update, self._book)
        if self.rate.interval <= 0:
            self._paused, self._pause_read_until = time.time() + wait, time.monotonic() + PAUSE_CHECK
        return wait

    async def claim(self, hold: float) -> tuple[float, float, float]:
        """Claim the next slot at the wire: (seconds until it, the clock before, the slot's moment). A
        slot at most `hold` seconds away is taken (the caller sleeps until it and sends); a later one
        is left free."""
        return await anyio.to_thread.run_sync(self._update, self._claim(hold))

    async def written(self, before: float, at: float) -> None:
        """The claimed request was written at `at` (wall clock): count the slot from then. A process
        whose event loop was slow between its claim and the write must not let the next request
        follow too closely."""
        await anyio.to_thread.run_sync(self._update, self._written(before, at))

    async def pause(self, seconds: float) -> None:
        """Hold this host for every process for `seconds` (a Retry-After)."""
        await anyio.to_thread.run_sync(self._update, self._pause(seconds))
        self._paused = max(self._paused, time.time() + seconds)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[None]:
        """For a one-connection host, hold its lock (other processes wait); else nothing."""
        lock = self._connection
        if lock is None:
            yield
            return
        while True:
            with anyio.CancelScope(shield=True):  # a lock taken by the thread must not be lost to a cancel
                taken = await anyio.to_thread.run_sync(self._try, lock)
            if taken:
                break
            await anyio.sleep(CONNECTION_POLL)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lock.release)

    def _try(self, lock: FileLock) -> bool:
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=0)
        except Timeout:
            return False
        except OSError as exc:
            raise self._unusable(exc) from None
        return True


class Pacer:
    """Every host clock of this process, in one state directory shared with the user's other processes."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "pacing"
        self._clocks: dict[str, HostClock] = {}

    def clock(self, host: str, address: str, rate: Rate, exclusive: bool = False) -> HostClock:
        """The clock of policy `host` at network location `address` ("export.arxiv.org:443").

        Its files are named by both; a host name that is not a plain word (a model endpoint's URL,
        which may carry a key) is named by its first word and a digest, so that no secret reaches a path."""
        key = f"{host}@{address}"
        if key not in self._clocks:
            word = re.match(r"\w*", host).group()  # type: ignore[union-attr] (\w* always matches)
            name = f"{word or 'host'}{'' if word == host else '-' + hashlib.sha256(host.encode()).hexdigest()[:12]}"
            name += "@" + re.sub(r"[^A-Za-z0-9.-]+", "_", address)
            self._clocks[key] = HostClock(self.directory, name, rate, exclusive)
        return self._clocks[key]
