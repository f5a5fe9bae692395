"""A real HTTP server on a loopback port for tests: an ASGI app served by uvicorn, and a server
that records what it saw."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tools.world.gate import ARRIVED


@asynccontextmanager
async def serve(app: Starlette, http: Any = "h11") -> AsyncIterator[str]:
    """`app` on a loopback port; the socket listens before uvicorn starts, so no start-up wait.
    `http`: uvicorn's HTTP protocol (a class of it, such as the world's stamping one)."""
    sock = socket.socket()
    # Without it every response waits ~40 ms (Nagle's algorithm meets the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", ws="none", http=http))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield f"http://127.0.0.1:{sock.getsockname()[1]}"
            finally:
                # uvicorn's own shutdown sleeps 0.1-0.2 s; the client has gone already, so just stop.
                for listener in server.servers:
                    listener.close()
                tg.cancel_scope.cancel()
    finally:
        sock.close()


@dataclass
class Server:
    """What the loopback server saw; `reply(n)` answers the n-th request (0-based). A request's
    arrival is when its bytes reached the socket where the protocol stamps it (the world's
    ResettableH11Protocol), else when the endpoint ran."""

    reply: Callable[[int], Response] = lambda n: PlainTextResponse("ok")
    latency: float = 0.0
    arrivals: list[float] = field(default_factory=list)
    answered: list[tuple[int, float]] = field(default_factory=list)  # (status, when sent)
    clients: set[tuple[str, int]] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0

    async def endpoint(self, request: Request) -> Response:
        n = len(self.arrivals)
        self.arrivals.append(request.scope.get(ARRIVED, time.monotonic()))
        self.clients.add(tuple(request.client))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await anyio.sleep(self.latency)  # the server's own processing time, not a test wait
            response = self.reply(n)
        finally:
            self.in_flight -= 1
        self.answered.append((response.status_code, time.monotonic()))
        return response


def loopback(server: Server, http: Any = "h11") -> AbstractAsyncContextManager[str]:
    """`server` on a loopback port (`http` as for serve())."""
    return serve(Starlette(routes=[Route("/{path:path}", server.endpoint, methods=["GET", "POST"])]), http=http)
