"""What every simulated service does around its answers: rate limits, faults, latency, and the log.

`Gate` is ASGI middleware in front of each service. In order: it checks the service's rate limit
(GCRA: a sustained interval between requests plus a burst, and optionally a concurrency cap) and
answers 429 with Retry-After when a request comes too early; it draws a fault (5xx, a time-out that
holds the request open, a TCP reset, a 200 with a cut-off body, or one of arXiv's throttling forms:
a 200 saying "Rate exceeded.", a 406); it waits the service's latency;
and it logs the request. Every response carries `X-Simulation`.

A request's time for the rate limit is when its bytes reached the service's connection (stamped
by `ResettableH11Protocol`), not when the handler got to run: each service runs its own event loop
(see world.py), and even there a busy loop must not make a client that paced correctly look early.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from random import Random
from typing import Any

import anyio
from uvicorn.protocols.http.h11_impl import H11Protocol

SIMULATION_HEADER = (b"x-simulation", b"pasa-mcp tools/world")
FAULT_KINDS = ("error", "timeout", "reset", "malformed", "rate_exceeded", "status_406")
RATE_EXCEEDED = b"Rate exceeded."  # what arXiv says when it throttles, in a 429 and in a 200


@dataclass(frozen=True)
class Latency:
    """Seconds per request (median, log-normal spread) plus per-token costs for model endpoints."""

    base: float = 0.0
    jitter: float = 0.25
    per_prompt_token: float = 0.0
    per_output_token: float = 0.0


@dataclass(frozen=True)
class Limit:
    """At most one request per `interval` seconds on average, `burst` at once, `concurrency` in flight.

    Checked with GCRA: a request may arrive early by (burst - 1) intervals plus a small tolerance for
    network jitter (the world's `limit_slack` and `limit_jitter`); sustained faster traffic is refused.
    """

    interval: float
    burst: int = 1
    concurrency: int | None = None


@dataclass(frozen=True)
class Faults:
    """Probability per request of each fault."""

    error: float = 0.0  # HTTP 500/502/503
    timeout: float = 0.0  # no answer until the client gives up (or `hang_seconds`, then 504)
    reset: float = 0.0  # the TCP connection is reset before any answer
    malformed: float = 0.0  # HTTP 200 with the body cut off part-way
    # arXiv's other ways of throttling, without Retry-After: a 200 whose whole body is "Rate exceeded.",
    # and a 406 from its edge.
    rate_exceeded: float = 0.0
    status_406: float = 0.0

    def __post_init__(self) -> None:
        rates = [getattr(self, k) for k in FAULT_KINDS]
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {self}")


class RequestLog:
    """Every request any service received, as dicts (also written as JSON lines when a path is set)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per service: requests, exceeded (answered 429 by a limit), faults, and `status_NNN` counts."""
        out: dict[str, Counter[str]] = {}
        for r in self.records:
            c = out.setdefault(r["service"], Counter())
            c["requests"] += 1
            c["exceeded"] += r["exceeded"]
            c["faults"] += r["fault"] is not None
            c[f"status_{r['status']}"] += 1
        return {name: {"requests": 0, "exceeded": 0, "faults": 0, **c} for name, c in out.items()}

    def lines(self, start: int = 0, end: int | None = None) -> str:
        """Records `start:end` as JSON lines."""
        return "".join(json.dumps(r) + "\n" for r in self.records[start:end])


class ServiceState:
    """One service's limit clock, fault and latency random streams, and in-flight count."""

    def __init__(
        self,
        name: str,
        *,
        seed: int,
        scale: float,
        latency: Latency | None,
        limit: Limit | None,
        faults: Faults | None,
        slack: float,
        jitter: float,
    ) -> None:
        self.name, self.scale, self.slack, self.jitter = name, scale, slack, jitter
        self.latency, self.limit, self.faults = latency, limit, faults or Faults()
        self._rng = Random(f"gate:{seed}:{name}")
        self._tat = 0.0  # GCRA theoretical arrival time
        self.in_flight = 0

    def admit(self, now: float) -> float | None:
        """None if the request conforms (and is counted in flight), else seconds until it would."""
        limit = self.limit
        if limit is None:
            self.in_flight += 1
            return None
        interval = limit.interval * self.scale
        if limit.concurrency is not None and self.in_flight >= limit.concurrency:
            return max(interval, 0.001)
        if interval > 0:
            tolerance = (limit.burst - 1) * interval + max(self.slack * interval, self.jitter)
            if now < self._tat - tolerance:
                return self._tat - tolerance - now
            self._tat = max(now, self._tat) + interval
        self.in_flight += 1
        return None

    def draw_fault(self) -> str | None:
        roll = self._rng.random()
        for kind in FAULT_KINDS:
            rate = getattr(self.faults, kind)
            if roll < rate:
                return kind
            roll -= rate
        return None

    def delay(self) -> float:
        if self.latency is None or self.latency.base <= 0:
            return 0.0
        return self.latency.base * math.exp(self.latency.jitter * self._rng.gauss()) * self.scale

    async def token_delay(self, prompt_tokens: int, output_tokens: int) -> None:
        if self.latency is not None:
            lat = self.latency
            await anyio.sleep(
                (lat.per_prompt_token * prompt_tokens + lat.per_output_token * output_tokens) * self.scale
            )

    def error_status(self) -> int:
        return self._rng.choice((500, 502, 503))

    def cut(self, size: int) -> int:
        return int(size * (0.2 + 0.6 * self._rng.random()))


ARRIVED = "world.arrived"  # scope key: time.monotonic() when the request's first bytes were read


class ResettableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, remembering each connection's transport so a fault can reset it, and
    stamping each request's scope with the time its bytes arrived (`ARRIVED`)."""

    transports: dict[tuple[str, int], asyncio.BaseTransport] = {}

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        super().data_received(data)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the request these bytes began (a later chunk of it keeps the first stamp)
            scope.setdefault(ARRIVED, arrived)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        peer = transport.get_extra_info("peername")
        if peer:
            self._peer = (peer[0], peer[1])
            self.transports[self._peer] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transports.pop(getattr(self, "_peer", ("", 0)), None)
        super().connection_lost(exc)


class Gate:
    """ASGI middleware applying a service's limits, faults and latency, and logging each request."""

    def __init__(
        self,
        app: Any,
        state: ServiceState,
        log: RequestLog,
        closing: threading.Event,
        *,
        hang_seconds: float,
        limited: tuple[int, str, bytes],  # status, content type, body of the answer over the limit
    ) -> None:
        self.app, self.state, self.log, self.closing = app, state, log, closing
        self.hang_seconds, self.limited = hang_seconds, limited

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_world/"):
            await self.app(scope, receive, _labelled(send, {}))
            return
        started, wall = scope.get(ARRIVED, time.monotonic()), time.time()
        seen: dict[str, int] = {}
        send = _labelled(send, seen)
        record = {
            "time": round(wall, 6),
            "service": self.state.name,
            "method": scope["method"],
            "path": scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else ""),
            "status": None,
            "latency": 0.0,
            "exceeded": False,
            "fault": None,
        }
        wait = self.state.admit(started)
        try:
            if wait is not None:
                record["exceeded"] = True
                await _respond(send, *self.limited, extra=[(b"retry-after", _retry_after(wait))])
                return
            try:
                await self._serve(scope, receive, send, record)
            finally:
                self.state.in_flight -= record["fault"] != "timeout"
        finally:
            record["status"] = seen.get("status")
            record["latency"] = round(time.monotonic() - started, 6)
            self.log.add(record)

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any, record: dict[str, Any]) -> None:
        fault = record["fault"] = self.state.draw_fault()
        if fault == "timeout":
            self.state.in_flight -= 1  # a held request no longer counts against the concurrency cap
            await self._hang(receive, send)
            return
        if fault == "reset":
            await self._reset(scope, receive)
            return
        await anyio.sleep(self.state.delay())
        if fault == "rate_exceeded":
            await _respond(send, 200, "text/plain; charset=utf-8", RATE_EXCEEDED)
        elif fault == "status_406":
            await _respond(
                send, 406, "text/html; charset=utf-8", b"<html><body><h1>406 Not Acceptable</h1></body></html>"
            )
        elif fault == "error":
            body = b"Simulated server error (pasa-mcp tools/world)"
            await _respond(send, self.state.error_status(), "text/plain; charset=utf-8", body)
        elif fault == "malformed":
            await self.app(scope, receive, _cutting(send, self.state))
        else:
            await self.app(scope, receive, send)

    async def _hang(self, receive: Any, send: Any) -> None:
        gone = False

        async def until_disconnect() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            group.cancel_scope.cancel()

        async def until_closing() -> None:
            while not self.closing.is_set():  # noqa: ASYNC110 (the world's owner sets it from another thread)
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()

        with anyio.move_on_after(self.hang_seconds):
            async with anyio.create_task_group() as group:
                group.start_soon(until_disconnect)
                group.start_soon(until_closing)
        if not gone:
            await _respond(send, 504, "text/plain; charset=utf-8", b"Simulated gateway time-out")

    async def _reset(self, scope: dict[str, Any], receive: Any) -> None:
        client = scope.get("client")
        transport = ResettableH11Protocol.transports.get((client[0], client[1])) if client else None
        if transport is None:
            raise RuntimeError("cannot reset: the connection's transport is unknown (is the world's protocol in use?)")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        with anyio.move_on_after(5):
            while (await receive())["type"] != "http.disconnect":
                pass


def _retry_after(seconds: float) -> bytes:
    """Integer seconds as HTTP wants them; fractions only when a scaled world needs sub-second waits."""
    if seconds >= 1:
        return str(math.ceil(seconds)).encode()
    return f"{max(seconds, 0.001):.3f}".encode()


def _labelled(send: Any, seen: dict[str, int]) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            message = {**message, "headers": [*message.get("headers", []), SIMULATION_HEADER]}
        await send(message)

    return wrapped


def _cutting(send: Any, state: ServiceState) -> Any:
    """A `send` that cuts a 200 response's body part-way (fixing Content-Length so HTTP stays valid)."""
    start: dict[str, Any] = {}

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            if message["status"] != 200:
                await send(message)
            return
        if message["type"] == "http.response.body" and start.get("status") == 200:
            body = message.get("body", b"")
            body = body[: state.cut(len(body))]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            start["status"] = 0  # sent
            return
        await send(message)

    return wrapped


async def _respond(
    send: Any, status: int, content_type: str, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
