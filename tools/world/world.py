"""Starting and stopping a world: one loopback uvicorn server per service, and the settings for pasa-mcp.

Each server runs its own event loop in its own thread, so no service's work (a search over the
corpus, a page to render) and none of the caller's (pasa-mcp in the same process, in tests and the
bench) delays another service reading its requests: a 429 from the world means the client came early.

Typical use: `async with World.start(seed=7, papers=2000, time_scale=0.01) as world:`, then
`Settings(**world.settings())` for the system under test, and `world.log.counts()` afterwards.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Literal

import anyio
import uvicorn

from . import models, services
from .config import SERVICES, Context, WorldConfig
from .corpus import Corpus
from .gate import Gate, RequestLog, ResettableH11Protocol, ServiceState
from .limit import PhysicalLimit, physical_limit
from .reach import Limits, Reach, reachable


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner and says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class World:
    """A running simulated scholarly web: the corpus, the services' base URLs, and the request log."""

    def __init__(
        self,
        config: WorldConfig,
        corpus: Corpus,
        log: RequestLog,
        urls: dict[str, str],
        oai_url: str,
        threads: list[threading.Thread],
    ) -> None:
        self.config, self.corpus, self.log, self.urls = config, corpus, log, urls
        self.oai_url = oai_url  # OAI-PMH's own location, served by arxiv_api (its requests count there)
        self._threads = threads

    @classmethod
    @asynccontextmanager
    async def start(cls, config: WorldConfig | None = None, **overrides: Any) -> AsyncIterator[World]:
        """Generate the corpus, start every service on loopback, and stop them all on exit."""
        config = replace(config or WorldConfig(), **overrides)

        def generate() -> Corpus:
            corpus = Corpus(config.seed, config.papers, config.corpus)
            _ = corpus.index
            return corpus

        corpus = await anyio.to_thread.run_sync(generate)
        log = RequestLog()
        closing = threading.Event()
        states = {
            name: ServiceState(
                name,
                seed=config.seed,
                scale=config.time_scale,
                latency=config.latencies.get(name) if config.latency else None,
                limit=config.limits.get(name),
                faults=config.faults.get(name),
                slack=config.limit_slack,
                jitter=config.limit_jitter,
            )
            for name in SERVICES
        }
        sockets = [_listen(config.host, config.port + i if config.port else 0) for i in range(len(SERVICES))]
        urls = {name: f"http://{config.host}:{s.getsockname()[1]}" for name, s in zip(SERVICES, sockets, strict=True)}
        # OAI-PMH has a host of its own at arXiv (oaipmh.arxiv.org) but the API's limit (arXiv's terms
        # give the legacy APIs one): the arxiv_api service, behind its one gate, listens there too.
        oai_socket = _listen(config.host, config.port + len(SERVICES) if config.port else 0)
        ctx = Context(corpus, config, states, log, oai_url=f"http://{config.host}:{oai_socket.getsockname()[1]}")
        servers: list[_Server] = []
        threads: list[threading.Thread] = []
        log_file = None if config.log_path is None else _LogFile(log, anyio.Path(config.log_path))
        try:
            async with anyio.create_task_group() as group:
                if log_file is not None:
                    await log_file.start()
                    group.start_soon(log_file.run, closing)
                for name, sock in zip(SERVICES, sockets, strict=True):
                    limited = services.LIMITED.get(name, services.DEFAULT_LIMITED)
                    app = Gate(
                        services.build(name, ctx),
                        states[name],
                        log,
                        closing,
                        hang_seconds=config.hang_seconds,
                        limited=limited,
                    )
                    server = _Server(
                        uvicorn.Config(
                            app,
                            log_level="warning",
                            access_log=False,
                            lifespan="off",
                            ws="none",
                            http=ResettableH11Protocol,
                            timeout_graceful_shutdown=5,
                        )
                    )
                    servers.append(server)
                    listening = [sock, oai_socket] if name == "arxiv_api" else [sock]
                    threads.append(threading.Thread(target=server.run, args=(listening,), name=f"world-{name}"))
                    threads[-1].start()
                for server, thread in zip(servers, threads, strict=True):
                    while not server.ready.is_set():  # noqa: ASYNC110 (set by the server's own thread)
                        if not thread.is_alive():
                            raise RuntimeError(f"the world's {thread.name} server did not start")
                        await anyio.sleep(0.01)
                world = cls(config, corpus, log, urls, ctx.oai_url, threads)
                try:
                    yield world
                finally:
                    closing.set()
                    for server in servers:
                        server.should_exit = True
                    for thread in threads:
                        await anyio.to_thread.run_sync(thread.join)
        finally:
            for sock in [*sockets, oai_socket]:
                sock.close()
            if log_file is not None:
                await log_file.flush()  # the requests that finished while the servers stopped

    @property
    def queries(self) -> list[dict[str, Any]]:
        """The planted questions in the PaSa dataset format (question, answer, answer_arxiv_id, ...)."""
        return self.corpus.queries

    def reachable(
        self, row: dict[str, Any], limits: Limits | None = None, resolution: Literal["perfect", "services"] = "perfect"
    ) -> Reach:
        """The crawler-recall bound for one question (see reach.py). CPU work: about 30 ms."""
        return reachable(self.corpus, row, limits, resolution=resolution)

    def physical_limit(
        self, row: dict[str, Any], limits: Limits | None = None, *, blind: bool = False
    ) -> PhysicalLimit:
        """The least time a default deep search for `row` can take here (see limit.py). CPU work: about 50 ms."""
        return physical_limit(self.corpus, self.config, row, limits, blind=blind)

    def cpu_seconds(self) -> float:
        """CPU seconds the world's service threads have used (so a benchmark can leave them out)."""
        return sum(
            time.clock_gettime(time.pthread_getcpuclockid(t.ident)) for t in self._threads if t.ident and t.is_alive()
        )

    def settings(self) -> dict[str, Any]:
        """pasa_mcp.config.Settings fields pointing every source and model at this world."""
        u, scale, limits = self.urls, self.config.time_scale, self.config.limits

        def interval(name: str) -> float:
            limit = limits.get(name)
            return round(limit.interval * scale, 6) if limit else 0.0

        return {
            "crawler_urls": [f"{u['crawler']}/v1"],
            "crawler_model": models.CRAWLER_MODEL,
            "crawler_backend": "pasa",
            "selector_urls": [f"{u['selector']}/v1"],
            "selector_model": models.SELECTOR_MODEL,
            "selector_backend": "pasa",
            "serper_api_key": self.config.serper_key,
            "serper_url": u["serper"],
            "arxiv_api_url": f"{u['arxiv_api']}/api/query",
            "arxiv_oai_url": f"{self.oai_url}/oai",
            "arxiv_html_url": f"{u['arxiv_html']}/html",
            "ar5iv_url": f"{u['ar5iv']}/html",
            "s2_url": f"{u['s2']}/graph/v1",
            "openalex_url": u["openalex"],
            "openalex_api_key": self.config.openalex_key,
            "crossref_url": u["crossref"],
            "arxiv_interval": interval("arxiv_api"),
            "arxiv_html_interval": interval("arxiv_html"),
            "arxiv_html_burst": limits["arxiv_html"].burst if "arxiv_html" in limits else 1,
            "ar5iv_interval": interval("ar5iv"),
            "s2_interval": interval("s2"),
            "openalex_interval": interval("openalex"),
            "crossref_interval": interval("crossref"),
            # A client's own waits, in the world's time too: backoff before a retry, a failing host's rest.
            "http_backoff": round(1.0 * scale, 6),
            "http_rest": round(60.0 * scale, 6),
        }

    def settings_toml(self) -> str:
        """The settings as a TOML file for `PASA_CONFIG` (JSON strings and lists are valid TOML values)."""
        c = self.config
        lines = [
            "# pasa-mcp settings for a SIMULATED scholarly web (tools/world): every source and model below",
            f"# is a loopback simulation (seed {c.seed}, {c.papers} papers, time scale {c.time_scale}).",
        ]
        lines += [f"{key} = {json.dumps(value)}" for key, value in self.settings().items()]
        return "\n".join(lines) + "\n"


class _LogFile:
    """The request log as JSON lines on disk, appended every second while the world runs."""

    def __init__(self, log: RequestLog, path: anyio.Path) -> None:
        self.log, self.path, self.written = log, path, 0

    async def start(self) -> None:
        await self.path.write_text("", encoding="utf-8")

    async def flush(self) -> None:
        end = len(self.log.records)
        if end > self.written:
            async with await self.path.open("a", encoding="utf-8") as f:
                await f.write(self.log.lines(self.written, end))
            self.written = end

    async def run(self, closing: threading.Event) -> None:
        while not closing.is_set():
            await anyio.sleep(0.25)
            await self.flush()


def _listen(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (else small answers wait 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
