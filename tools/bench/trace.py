"""A trace of one deep search: every call the agent makes into its collaborators, and every HTTP request.

The agent takes its collaborators as arguments, so `Tracer.instrument` wraps a `DeepSearch`'s
crawler, selector, sources, full-text module and resolver in recorders of each call (kind, subject,
start, end), and httpx event hooks on the process's one client record each request (service, URL,
start, end) with the call it was sent from: a context variable, which anyio copies into the tasks a
call starts. The bound (bound.py) needs one more thing: arXiv lookups are coalesced, so a request
sent from one call may be the one that another call waits for. Calls and requests therefore carry
lookup keys (`id:<arXiv id>`, `ti:"<title phrase>"`) and a request counts for every call whose keys it
carried while that call was running.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import httpx

from pasa_mcp.papers import Paper, Reference, SectionMap, normalize_arxiv_id
from pasa_mcp.sources.arxiv import title_phrase

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pasa_mcp.agent import DeepSearch, FullTextSource, ReferenceResolver
    from pasa_mcp.crawler import Crawler
    from pasa_mcp.layers import Member
    from pasa_mcp.selector import Selector
    from pasa_mcp.sources import SearchSource

Kind = Literal["queries", "search", "score", "fulltext", "sections", "resolve"]

_CALL: ContextVar[int | None] = ContextVar("bench_call", default=None)
# The paper an expansion task is expanding: set by the full-text call that starts every expansion and
# left set, so the resolve call later in the same task knows whose citations it resolves.
_EXPANDING: ContextVar[str] = ContextVar("bench_expanding", default="")
_PHRASE = re.compile(r'ti:"[^"]*"')


@dataclass
class Call:
    """One call from the agent into a collaborator."""

    id: int
    kind: Kind
    start: float
    end: float = math.nan
    subject: str = ""  # the question (queries), the search query (search), the paper key (the rest)
    papers: tuple[str, ...] = ()  # score: the keys of the papers scored
    keys: frozenset[str] = frozenset()  # the arXiv lookup keys the call waited for


@dataclass(frozen=True, eq=False)  # identity: two requests are never the same one
class Request:
    """One HTTP request as the client saw it: from handing it to the transport to the response headers."""

    service: str
    method: str
    url: str
    start: float
    end: float
    status: int
    call: int | None  # the call whose task sent it
    keys: frozenset[str] = frozenset()  # the arXiv lookup keys it carried


def request_keys(url: httpx.URL) -> frozenset[str]:
    """The lookup keys of an arXiv API request: the ids of an `id_list`, the `ti:` phrases of a title search."""
    ids = url.params.get("id_list")
    keys = {f"id:{arxiv_id}" for raw in ids.split(",") if (arxiv_id := normalize_arxiv_id(raw))} if ids else set()
    return frozenset(keys | set(_PHRASE.findall(url.params.get("search_query") or "")))


def reference_keys(refs: Iterable[Reference]) -> frozenset[str]:
    """The lookup keys a resolve call may wait for: its references' arXiv ids and title phrases."""
    keys = set()
    for ref in refs:
        if arxiv_id := normalize_arxiv_id(ref.arxiv_id):
            keys.add(f"id:{arxiv_id}")
        if phrase := title_phrase(ref.title):
            keys.add(phrase)
    return frozenset(keys)


def union_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the (start, end) spans."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


@dataclass
class Trace:
    calls: list[Call] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    unanswered: int = 0  # requests that got no response (transport errors)

    def waiting(self) -> dict[Request, list[Call]]:
        """Request -> the calls that waited for it.

        A request carrying lookup keys counts for every call that wanted one of them and was running
        from the request's start to its end; any other request counts for the call that sent it.
        """
        found: dict[Request, list[Call]] = {}
        for request in self.requests:
            if request.keys:
                found[request] = [
                    c for c in self.calls if c.keys & request.keys and c.start <= request.start and request.end <= c.end
                ]
            else:
                found[request] = [self.calls[request.call]] if request.call is not None else []
        return found

    def seconds(self) -> dict[int, float]:
        """Call id -> its service time: the seconds during which a request it waited for was in flight."""
        spans: dict[int, list[tuple[float, float]]] = {call.id: [] for call in self.calls}
        for request, calls in self.waiting().items():
            for call in calls:
                spans[call.id].append((request.start, request.end))
        return {i: union_seconds(s) for i, s in spans.items()}

    def unattributed(self) -> list[Request]:
        """Requests no call waited for (a tracer that missed part of the agent would leave some)."""
        return [request for request, calls in self.waiting().items() if not calls]


class Tracer:
    """Records a trace from one `Pasa` (its HTTP client) and the deep searches it instruments."""

    def __init__(self, client: httpx.AsyncClient, service_of: Callable[[httpx.URL], str]) -> None:
        self.trace = Trace()
        self._service_of = service_of
        self._sent: dict[int, tuple[float, int | None]] = {}
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [*hooks["request"], self._on_request],
            "response": [*hooks["response"], self._on_response],
        }

    async def _on_request(self, request: httpx.Request) -> None:
        self._sent[id(request)] = (time.monotonic(), _CALL.get())

    async def _on_response(self, response: httpx.Response) -> None:
        request = response.request
        start, call = self._sent.pop(id(request))
        self.trace.requests.append(
            Request(
                service=self._service_of(request.url),
                method=request.method,
                url=str(request.url),
                start=start,
                end=time.monotonic(),
                status=response.status_code,
                call=call,
                keys=request_keys(request.url),
            )
        )

    def finish(self) -> Trace:
        """The trace so far; requests still without an answer are counted as unanswered."""
        self.trace.unanswered += len(self._sent)
        self._sent.clear()
        return self.trace

    @contextmanager
    def call(self, kind: Kind, subject: str = "", papers: Sequence[str] = ()) -> Iterator[Call]:
        call = Call(len(self.trace.calls), kind, time.monotonic(), subject=subject, papers=tuple(papers))
        self.trace.calls.append(call)
        token = _CALL.set(call.id)
        try:
            yield call
        finally:
            _CALL.reset(token)
            call.end = time.monotonic()

    def instrument(self, run: DeepSearch) -> DeepSearch:
        """Wrap the run's collaborators in recorders (before `run.run()`); returns the run."""
        run.crawler = _Crawler(run.crawler, self)
        run.selector = _Selector(run.selector, self)
        run.sources = [_Source(source, self) for source in run.sources]
        run.fulltext = _FullText(run.fulltext, self)
        run.resolver = _Resolver(run.resolver, self)
        return run


class _Crawler:
    def __init__(self, inner: Crawler, tracer: Tracer) -> None:
        self.inner, self.tracer, self.name = inner, tracer, inner.name

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        with self.tracer.call("queries", user_query):
            return await self.inner.queries(user_query, limit=limit, sample=sample)

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]:
        with self.tracer.call("sections", paper.key):
            return await self.inner.sections(user_query, paper, names, sample=sample)


class _Selector:
    def __init__(self, inner: Selector, tracer: Tracer) -> None:
        self.inner, self.tracer, self.name = inner, tracer, inner.name  # the name keys cached scores

    async def score(self, user_query: str, papers: Sequence[Paper]) -> list[float]:
        with self.tracer.call("score", _EXPANDING.get(), [p.key for p in papers]):
            return await self.inner.score(user_query, papers)

    async def explain(self, user_query: str, paper: Paper) -> tuple[float, str]:
        return await self.inner.explain(user_query, paper)


class _Source:
    def __init__(self, inner: SearchSource, tracer: Tracer) -> None:
        self.inner, self.tracer, self.name = inner, tracer, inner.name  # the name keys cached searches
        self.filters_categories = inner.filters_categories

    async def search(
        self, query: str, *, limit: int, before: date | None, after: date | None = None, **categories: Any
    ) -> list[Paper]:
        with self.tracer.call("search", query) as call:
            papers = await self.inner.search(query, limit=limit, before=before, after=after, **categories)
            # The ids of the results are the ones its arXiv metadata lookup carried (Google's case).
            call.keys = frozenset(f"id:{p.arxiv_id}" for p in papers if p.arxiv_id)
            return papers


class _FullText:
    def __init__(self, inner: FullTextSource, tracer: Tracer) -> None:
        self.inner, self.tracer = inner, tracer

    async def section_map(self, paper: Paper) -> SectionMap | None:
        _EXPANDING.set(paper.key)
        with self.tracer.call("fulltext", paper.key):
            return await self.inner.section_map(paper)


class _Resolver:
    def __init__(self, inner: ReferenceResolver, tracer: Tracer) -> None:
        self.inner, self.tracer = inner, tracer

    async def resolve(self, refs: list[Reference], member: Member | None = None) -> list[Paper | None]:
        with self.tracer.call("resolve", _EXPANDING.get()) as call:
            call.keys = reference_keys(refs)
            return await self.inner.resolve(refs, member)
