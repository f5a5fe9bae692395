"""A real HTTP server on a loopback port for tests: an ASGI app served by uvicorn."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette


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
