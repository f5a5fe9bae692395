"""Everything one process shares, wired from settings: the store, the HTTP client, the models, the
sources. The CLI, the MCP server and the evaluation all open one `Pasa` and call into it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from .agent import DeepSearch, Event, RunResult, SearchParams
from .config import Settings
from .crawler import CachedCrawler, Crawler, build_crawler
from .fulltext import FullText
from .index.db import LocalIndex
from .index.resolve import LocalResolver
from .llm import ModelUnavailable
from .net import Net
from .paper_text import PaperText
from .resolve import Resolver
from .selector import build_selector
from .sources import SearchSource
from .sources.arxiv import ArxivAPI
from .sources.crossref import Crossref
from .sources.google import GoogleSearch
from .sources.local import LocalSearch
from .sources.openalex import OpenAlex
from .sources.semantic_scholar import SemanticScholar
from .store import Store, index_fault

__all__ = ["ModelUnavailable", "Pasa", "open_app"]

SOURCE_NAMES = ("google", "arxiv", "semantic_scholar", "openalex", "local")


class Pasa:
    """The wired-up agent parts of one process."""

    def __init__(self, settings: Settings, store: Store, net: Net) -> None:
        self.settings, self.store, self.net = settings, store, net
        self.crawler_model = build_crawler(settings, net)
        self.crawler: Crawler = CachedCrawler(self.crawler_model, store)
        self.selector = build_selector(settings, net)
        # The local paper index, when one was built (`pasa-mcp index`): asked before any network request.
        self.index = _open_index(settings.index_path)
        self.semantic_scholar = SemanticScholar(net, settings)
        self.openalex = OpenAlex(net, settings)
        # While arXiv's search is down, the local index searches instead (offline, instant), else OpenAlex
        # (10 requests/s; the works arXiv lists, with their ids); Semantic Scholar only with a key: its
        # shared anonymous pool answers 429 to bursts of searches.
        search_stand_ins: list[SearchSource] = [LocalSearch(self.index)] if self.index is not None else []
        search_stand_ins += [OpenAlex(net, settings, indexed_in="arxiv")]
        search_stand_ins += [self.semantic_scholar] if settings.s2_api_key else []
        self.arxiv = ArxivAPI(
            net, settings, local=self.index, stand_in=self.semantic_scholar, search_stand_ins=search_stand_ins
        )
        if settings.offline and self.index is None:
            raise ValueError(
                f"offline mode needs the local paper index, and there is none at {settings.index_path}:"
                " build it with `pasa-mcp index import-arxiv` or `pasa-mcp index harvest` (or set index_path)"
            )
        local = LocalResolver(self.index) if self.index is not None else None
        # Papers without HTML full text are expanded through their reference lists (offline: only
        # stored section maps and the PaSa database's; the others are reported as not available).
        lists = [] if settings.offline else [self.semantic_scholar, self.openalex]
        self.fulltext = FullText(net, settings, store, reference_lists=lists, local=self.index)
        self.paper_text = PaperText(net, settings, store)
        # Titles arXiv cannot match go to OpenAlex (its free key: 1,000 title searches a day), and to
        # Semantic Scholar only with a key: its shared anonymous pool is too small for thousands of titles.
        matchers = [self.openalex] + ([self.semantic_scholar] if settings.s2_api_key else [])
        if settings.offline:
            self.resolver = Resolver(store, None, local=local)
        else:
            # Entries without a title of their own are searched for by their whole text.
            references = [self.openalex, Crossref(net, settings)]
            self.resolver = Resolver(
                store,
                self.arxiv,
                matchers,
                dois=[self.openalex, self.semantic_scholar],
                local=local,
                references=references,
            )

    def sources(self, names: Sequence[str] | None = None) -> list[SearchSource]:
        """The search sources by name (default: the settings'); a bad name is a clear error."""
        chosen = list(names or self.settings.sources)
        unknown = [n for n in chosen if n not in SOURCE_NAMES]
        if unknown:
            raise ValueError(f"unknown search source {unknown[0]!r}; choose from {', '.join(SOURCE_NAMES)}")
        if not chosen:
            raise ValueError("no search sources chosen")
        found: list[SearchSource] = []
        for name in dict.fromkeys(chosen):
            if self.settings.offline and name != "local":
                raise ValueError(f"the {name} source needs the network: offline searches use the source 'local'")
            if name == "local":
                if self.index is None:
                    raise ValueError(
                        f"the local source needs the local paper index, and there is none at"
                        f" {self.settings.index_path}: build it with `pasa-mcp index import-arxiv`"
                    )
                found.append(LocalSearch(self.index))
            elif name == "google":
                if not self.settings.serper_api_key:
                    raise ValueError("the google source needs a serper.dev key: set SERPER_API_KEY")
                found.append(GoogleSearch(self.net, self.settings, self.arxiv))
            else:
                found.append(
                    {"arxiv": self.arxiv, "semantic_scholar": self.semantic_scholar, "openalex": self.openalex}[name]
                )
        return found

    def deep_search_run(
        self,
        question: str,
        params: SearchParams,
        *,
        sources: Sequence[str] | None = None,
        on_event: Callable[[Event], Awaitable[None]] | None = None,
    ) -> DeepSearch:
        """A deep search ready to `run()`; jobs keep the object to read partial results."""
        return DeepSearch(
            question,
            params,
            crawler=self.crawler,
            selector=self.selector,
            sources=self.sources(sources),
            fulltext=self.fulltext,
            resolver=self.resolver,
            store=self.store,
            cache_ttl=self.settings.search_cache_days * 86400,
            on_event=on_event,
            notices=self.net.notices,
        )

    async def deep_search(
        self,
        question: str,
        params: SearchParams,
        *,
        sources: Sequence[str] | None = None,
        on_event: Callable[[Event], Awaitable[None]] | None = None,
    ) -> RunResult:
        return await self.deep_search_run(question, params, sources=sources, on_event=on_event).run()

    def usage(self) -> dict[str, Any]:
        """Model calls and tokens, and HTTP requests per host, since the process started."""
        return {
            "crawler": asdict(self.crawler_model.client.usage),
            "selector": asdict(self.selector.client.usage),
            "requests": self.net.request_counts(),
        }


def _open_index(path: Path) -> LocalIndex | None:
    """The local paper index when one was built; one that cannot be opened is a StoreError naming it."""
    if not path.exists():
        return None
    try:
        return LocalIndex(path)
    except (sqlite3.Error, OSError) as exc:
        raise index_fault(path, exc) from None


def check_files(settings: Settings) -> None:
    """Open and close the store and the local index: a file that cannot be used raises StoreError now
    (before a server starts answering, when a client would see only its connection closing)."""
    Store(settings.store_path).close()
    index = _open_index(settings.index_path)
    if index is not None:
        index.close()


@asynccontextmanager
async def open_app(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Pasa]:
    """Open the store and the HTTP client for the life of the process (or a test)."""
    store = Store(settings.store_path)
    net = Net(settings, transport)
    pasa = None
    try:
        pasa = Pasa(settings, store, net)
        yield pasa
    finally:
        if pasa is not None and pasa.index is not None:
            pasa.index.close()
        await net.aclose()
        store.close()
