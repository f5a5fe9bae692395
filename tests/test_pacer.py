"""Pacing shared across processes (pacer.py), at the moment requests reach the wire.

A loopback server stamps each request when its bytes reach the socket (the world's h11 protocol);
worker processes pace one host through a state directory under tmp_path. On a loaded machine a
process may be late, never early: the tests assert lower bounds on gaps only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
import httpcore
import httpx
import pytest
from anyio.streams.text import TextReceiveStream
from loopback import Server, loopback
from starlette.responses import PlainTextResponse, Response

from pasa_mcp.config import Settings
from pasa_mcp.net import Net
from pasa_mcp.pacer import HostClock, Rate
from tools.world.gate import ResettableH11Protocol

pytestmark = pytest.mark.anyio

INTERVAL = 0.3
JITTER = 0.02  # timer slack; far below the interval

# A worker process: builds its Net (the state directory comes from PASA_STATE_DIR), says "ready",
# waits for a line on stdin, then sends `requests` concurrent requests to `host` at `url`.
WORKER = """
import sys, anyio
from pasa_mcp.config import Settings
from pasa_mcp.net import Net
from pasa_mcp.pacer import HostClock, Rate

async def main(url, host, requests, interval):
    net = Net(Settings(arxiv_interval=interval, s2_interval=interval, http_retries=3))
    print("ready", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(requests):
                tg.start_soon(net.request, host, "GET", url)
    finally:
        await net.aclose()
    print("done", net.hosts[host].requests, flush=True)

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
"""


def stamping(server: Server) -> AbstractAsyncContextManager[str]:
    """A loopback server that stamps each request when its bytes reach the connection."""
    return loopback(server, http=ResettableH11Protocol)


class Worker:
    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.lines = TextReceiveStream(process.stdout)
        self.buffer = ""

    async def line(self) -> str:
        while "\n" not in self.buffer:
            self.buffer += await self.lines.receive()
        line, self.buffer = self.buffer.split("\n", 1)
        return line

    async def go(self) -> None:
        await self.process.stdin.send(b"go\n")


@asynccontextmanager
async def workers(count: int, url: str, host: str, requests: int, state: Path) -> AsyncIterator[list[Worker]]:
    env = {**os.environ, "PASA_STATE_DIR": str(state)}
    started: list[Worker] = []
    try:
        for _ in range(count):
            process = await anyio.open_process(
                [sys.executable, "-c", WORKER, f"{url}/x", host, str(requests), str(INTERVAL)],
                env=env,
                stderr=subprocess.STDOUT,
            )
            started.append(Worker(process))
        for worker in started:
            assert await worker.line() == "ready"
        yield started
        for worker in started:
            assert (await worker.line()).startswith("done")
            assert await worker.process.wait() == 0
    finally:
        for worker in started:
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.aclose()


def gaps(times: list[float]) -> list[float]:
    times = sorted(times)
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def test_processes_share_one_pacer_and_one_connection_per_host(tmp_path: Path) -> None:
    server = Server(latency=0.05)
    async with stamping(server) as url:
        with anyio.fail_after(60):
            async with workers(3, url, "arxiv", 3, tmp_path / "state") as started:
                for worker in started:
                    await worker.go()
    assert len(server.arrivals) == 9
    assert min(gaps(server.arrivals)) >= INTERVAL - JITTER
    assert server.max_in_flight == 1  # arXiv's one connection, across processes
    # arXiv's legacy APIs (query API, OAI-PMH) are one clock wherever they are asked
    assert [p.name for p in (tmp_path / "state" / "pacing").glob("arxiv@*.json")] == ["arxiv@arxiv-legacy-apis.json"]


async def test_a_retry_after_seen_by_one_process_holds_the_others(tmp_path: Path) -> None:
    pause = 1.5

    def reply(n: int) -> Response:
        if n == 0:
            return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": str(pause)})
        return PlainTextResponse("ok")

    server = Server(reply=reply, latency=0.0)
    state = tmp_path / "state"
    async with stamping(server) as url:
        with anyio.fail_after(60):
            async with workers(2, url, "semantic_scholar", 1, state) as (first, second):
                await first.go()
                while not any("paused" in json.loads(p.read_text()) for p in (state / "pacing").glob("*.json")):  # noqa: ASYNC110
                    await anyio.sleep(0.01)  # until the first process has recorded the pause
                await second.go()
    (status, throttled_at), *_ = server.answered
    assert status == 429
    assert len(server.arrivals) == 3  # the throttled request again, and the second process's
    assert min(server.arrivals[1:]) >= throttled_at + pause - JITTER


class SlowConnect(httpcore.AsyncNetworkBackend):
    """Loopback with a handshake as slow as a far TLS server's."""

    def __init__(self, delay: float) -> None:
        self.inner, self.delay, self.connections = httpcore.AnyIOBackend(), delay, 0

    async def connect_tcp(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:  # noqa: ANN002, ANN003
        self.connections += 1
        await anyio.sleep(self.delay)
        return await self.inner.connect_tcp(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def test_a_slow_handshake_does_not_shorten_the_gap_the_server_sees() -> None:
    server = Server(latency=0.0)
    backend = SlowConnect(delay=0.2)
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(network_backend=backend)  # noqa: SLF001 (no public hook)
    async with stamping(server) as url:
        net = Net(Settings(arxiv_interval=INTERVAL), transport)
        try:
            with anyio.fail_after(20):
                for _ in range(3):  # the first opens the connection (slowly), the others reuse it
                    await net.request("arxiv", "GET", f"{url}/api/query")
        finally:
            await net.aclose()
    assert backend.connections == 1
    assert min(gaps(server.arrivals)) >= INTERVAL - JITTER


def test_the_state_file_is_rewritten_in_place_and_a_torn_one_reads_as_no_state(tmp_path: Path) -> None:
    clock = HostClock(tmp_path, "arxiv@export.arxiv.org_443", Rate(3.0, 1), exclusive=False)
    state = tmp_path / "arxiv@export.arxiv.org_443.json"
    state.write_bytes(b'{"booked": 17000')  # a crash in the middle of a write
    assert clock._update(clock._book) == 0.0  # no state: the first booking goes at once
    booked = json.loads(state.read_bytes())["booked"]
    state.write_bytes(json.dumps({"booked": booked, "note": "x" * 200}).encode())  # a longer file ...
    assert clock._update(clock._book) == pytest.approx(booked - time.time(), abs=0.5)  # ... read under the lock
    assert json.loads(state.read_bytes()) == {"booked": pytest.approx(booked + 3.0)}  # ... and cut to the new state


async def test_an_unpaced_host_reads_its_pause_at_most_once_a_check_period(tmp_path: Path, monkeypatch) -> None:
    from pasa_mcp import pacer

    monkeypatch.setattr(pacer, "PAUSE_CHECK", 0.3)
    mine = HostClock(tmp_path, "google@google.serper.dev_443", Rate(), exclusive=False)
    other = HostClock(tmp_path, "google@google.serper.dev_443", Rate(), exclusive=False)  # another process's
    updates = []
    original = mine._update
    monkeypatch.setattr(mine, "_update", lambda change: updates.append(change) or original(change))

    assert await mine.book() == 0.0 and await mine.book() == 0.0
    assert len(updates) == 1  # the second booking trusted the pause as read
    await other.pause(5.0)
    assert await mine.book() == 0.0  # not read again yet
    await anyio.sleep(0.35)
    assert await mine.book() == pytest.approx(4.65, abs=0.2)  # read again: the other's pause holds it
    await mine.pause(10.0)
    assert await mine.book() == pytest.approx(10.0, abs=0.2)  # its own pause at once


@pytest.mark.parametrize(("slack", "updated"), [(-1.0, True), (3600.0, False)])
async def test_a_write_after_its_slot_counts_the_gap_from_the_write(monkeypatch, slack: float, updated: bool) -> None:
    from pasa_mcp import net as net_module

    monkeypatch.setattr(net_module, "WRITE_SLACK", slack)  # -1: every write late; 3600: every one on time
    written = []
    original = HostClock.written
    monkeypatch.setattr(HostClock, "written", lambda self, *a: written.append(a) or original(self, *a))
    server = Server(latency=0.0)
    async with stamping(server) as url:
        net = Net(Settings(arxiv_interval=INTERVAL))
        try:
            with anyio.fail_after(20):
                for _ in range(3):
                    await net.request("arxiv", "GET", f"{url}/api/query")
        finally:
            await net.aclose()
    assert len(written) == (3 if updated else 0)
    assert min(gaps(server.arrivals)) >= INTERVAL - JITTER


def test_the_state_lock_excludes_filelock_holders_and_falls_back_to_filelock(tmp_path: Path, monkeypatch) -> None:
    from filelock import FileLock

    from pasa_mcp import pacer

    clock = HostClock(tmp_path, "ar5iv@ar5iv.labs.arxiv.org_443", Rate(1.0, 1), exclusive=False)
    monkeypatch.setattr(pacer, "LOCK_TIMEOUT", 0.2)
    with FileLock(tmp_path / "ar5iv@ar5iv.labs.arxiv.org_443.lock"):  # as a process of an earlier version holds it
        with pytest.raises(pacer.PacingStateError, match="unusable"):
            clock._update(clock._book)
    assert clock._update(clock._book) == 0.0  # released: taken at once
    monkeypatch.setattr(pacer, "fcntl", None)  # where there is no flock (Windows): filelock takes it
    assert clock._update(clock._book) == pytest.approx(1.0, abs=0.2)
    assert json.loads((tmp_path / "ar5iv@ar5iv.labs.arxiv.org_443.json").read_bytes())["booked"] > time.time() + 1.5
