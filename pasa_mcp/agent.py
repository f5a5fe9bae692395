"""The PaSa loop (PROTOCOL section 5), concurrent instead of layer-wide barriers.

Search queries run together; each search result is scored as soon as it arrives, and every depth-0
paper starts its expansion (full text -> crawler picks sections -> cited titles resolved -> new
papers scored) as soon as it is scored, since depth 0 expands all papers whatever their score.
Deeper layers keep the one barrier the algorithm needs: the top `expand_papers` of a layer by score
are known only when the whole layer is scored. Per-host limits live in `Net`, so "all at once" here
still means polite traffic. The expansions of a layer share one arXiv id lookup (`resolve.Layer`):
each resolves its titles at once, and its cited arXiv ids when the whole layer has asked for theirs.

A run emits events (progress for the CLI, MCP and jobs) and can be cancelled at any await; each
store write is its own transaction, so a cancelled run leaves a consistent store, and
`DeepSearch.result()` gives what was found so far.
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import anyio
from pydantic import BaseModel, Field, field_validator, model_validator

from .categories import NOT_FILTERED, kept, parse_categories
from .config import Settings
from .layers import SEARCHES, Layer, Member
from .limits import QUESTION_CHARS, check_text
from .llm import ModelError
from .net import SourceRejected, SourceUnavailable
from .papers import Paper, Reference, SectionMap
from .resolve import ResolutionIncomplete
from .scrub import scrub
from .selector import score_cached
from .sources import SearchSource, cached_search
from .store import Store, StoreError
from .tasks import first_error

if TYPE_CHECKING:
    from .crawler import Crawler
    from .selector import Selector

T = TypeVar("T")
# What one step may fail with after its retries: the step is lost, the search goes on.
STEP_ERRORS = (SourceUnavailable, SourceRejected, ModelError)
Status = Literal["running", "finished", "partial", "cancelled", "budget", "failed"]
Step = Literal["queries", "search", "score", "expand"]
STEP_NAMES: dict[str, str] = {
    "queries": "crawler query runs",
    "search": "searches",
    "score": "selector calls",
    "expand": "expansions",
}
REASON_CHARS = 160


class FullTextSource(Protocol):
    async def section_map(self, paper: Paper) -> SectionMap | None: ...


class ReferenceResolver(Protocol):
    async def resolve(self, refs: list[Reference], member: Member | None = None) -> list[Paper | None]: ...


class SearchParams(BaseModel):
    """One deep search's parameters; defaults are the paper's."""

    search_queries: int = Field(5, ge=1, le=50, description="crawler queries per crawler run")
    search_papers: int = Field(10, ge=1, le=100, description="papers per query and source")
    expand_layers: int = Field(2, ge=0, le=5, description="citation expansion layers")
    expand_papers: int = Field(20, ge=1, le=200, description="papers expanded per deeper layer")
    threshold: float = Field(0.5, ge=0, le=1, description="selector score above which a paper is selected")
    end_date: date | None = Field(None, description="only papers published before this date")
    start_date: date | None = Field(None, description="only papers published on or after this date")
    categories: list[str] = Field(default_factory=list, description="only papers in these arXiv categories")
    ensemble: int = Field(1, ge=1, le=8, description="crawler runs; runs after the first sample")
    max_papers: int | None = Field(None, ge=1, description="stop after scoring this many papers")
    max_seconds: float | None = Field(None, gt=0, description="stop after this many seconds")
    concurrency: int | None = Field(None, ge=1, description="searches and expansions at once (default: no bound)")

    @field_validator("categories")
    @classmethod
    def _arxiv_categories(cls, value: list[str]) -> list[str]:
        return parse_categories(value)

    @model_validator(mode="after")
    def _dates_in_order(self) -> SearchParams:
        if self.start_date and self.end_date and self.start_date >= self.end_date:
            raise ValueError(f"start_date {self.start_date} must come before end_date {self.end_date}")
        return self

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SearchParams:
        """The configured defaults, with the given (non-None) overrides."""
        names = ("search_queries", "search_papers", "expand_layers", "expand_papers", "threshold")
        values = {name: getattr(settings, name) for name in names}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class FoundPaper(BaseModel):
    """A paper the run touched, with how it was found."""

    key: str
    title: str
    arxiv_id: str | None
    score: float
    selected: bool
    depth: int
    found_by: str  # "search: <query>" or "<parent key> § <section>"
    parent: str | None = None


class Counts(BaseModel):
    queries: int = 0
    searches: int = 0
    papers: int = 0
    scored: int = 0
    selected: int = 0
    expanded: int = 0
    expansions_left: int = 0


class Event(BaseModel):
    kind: Literal["started", "queries", "searched", "scored", "expanded", "failure", "finished"]
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
    counts: Counts


class StepCount(BaseModel):
    tried: int = 0
    failed: int = 0


class RunResult(BaseModel):
    query: str
    status: Status  # finished: nothing lost; partial: finished with losses; failed: nothing useful done
    params: SearchParams
    papers: list[FoundPaper]  # every paper touched, best score first
    counts: Counts
    failures: list[str]  # each failed step: which step, which paper or query, why
    losses: list[str] = Field(default_factory=list)  # per step: "3 of 44 expansions failed: <reason>"
    steps: dict[str, StepCount] = Field(default_factory=dict)  # tried and failed, per step
    error: str | None = None  # why a failed search could do nothing useful
    seconds: float
    tree: dict[str, Any]

    @property
    def outcome(self) -> str:
        """One line: why the search failed, what it lost, or that it is complete."""
        if self.status == "failed":
            return f"failed: {self.error}"
        if self.losses:
            return f"{self.status}: " + "; ".join(self.losses)
        return self.status

    @property
    def selected(self) -> list[FoundPaper]:
        return [p for p in self.papers if p.selected]


class _Node:
    __slots__ = ("paper", "depth", "source", "parent", "score", "children", "sections")

    def __init__(self, paper: Paper, depth: int, source: str, parent: _Node | None) -> None:
        self.paper, self.depth, self.source, self.parent = paper, depth, source, parent
        self.score = -1.0  # stays -1 when the selector call for it failed
        self.children: dict[str, list[_Node]] = {}
        self.sections: list[str] = []


class DeepSearch:
    """One run of the PaSa agent. Collaborators come in as arguments; nothing is global."""

    def __init__(
        self,
        query: str,
        params: SearchParams,
        *,
        crawler: Crawler,
        selector: Selector,
        sources: Sequence[SearchSource],
        fulltext: FullTextSource,
        resolver: ReferenceResolver,
        store: Store,
        cache_ttl: float = 30 * 86400,
        on_event: Callable[[Event], Awaitable[None]] | None = None,
        notices: Callable[[float], dict[str, str]] | None = None,
    ) -> None:
        if not query.strip():
            raise ValueError("the research question is empty")
        check_text("the research question", query, QUESTION_CHARS)
        if not sources:
            raise ValueError("no search sources configured")
        self.query = query.strip()
        self.params = params
        self.crawler, self.selector, self.sources = crawler, selector, list(sources)
        self.fulltext, self.resolver, self.store = fulltext, resolver, store
        self.cache_ttl = cache_ttl
        self.on_event = on_event
        # At the end, source name -> what a reader must know (an allowance spent, a source down), even
        # where another source stood in and nothing was lost; added unless a failure names the source.
        self._notices = notices
        self.counts = Counts()
        self.status: Status = "running"
        self.error: str | None = None
        # Not failures, but the first thing a reader of a filtered search must know about its sources.
        unfiltered = [s.name for s in self.sources if params.categories and not s.filters_categories]
        self.failures: list[str] = [f"{name} {NOT_FILTERED}" for name in unfiltered]
        self._tried: Counter[str] = Counter()
        self._lost: dict[str, dict[str, str]] = {step: {} for step in STEP_NAMES}  # step -> target -> reason
        self._roots: dict[str, list[_Node]] = {}
        self._nodes: dict[str, _Node] = {}  # by paper key: the run's seen set
        self._titles: set[str] = set()  # title keys seen, so one work found twice counts once
        self._started = time.monotonic()
        self._seconds: float | None = None
        self._work = anyio.CancelScope()  # cancelled when the paper budget runs out
        self._slots = anyio.CapacityLimiter(params.concurrency) if params.concurrency else None

    def _slot(self) -> AbstractAsyncContextManager[object]:
        """One unit of work (a search, or an expansion) under the `concurrency` bound, if any."""
        return self._slots if self._slots is not None else nullcontext()

    # The run ------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run to the end (or a budget); returns the result, whatever failed on the way.

        A step that fails after its retries is recorded and the rest goes on; a store fault ends the
        run at once as `failed`. Cancellation propagates; `result()` still works."""
        await self._emit("started", f"deep search: {self.query}")
        try:
            with anyio.move_on_after(self.params.max_seconds or math.inf) as deadline:
                with self._work:
                    await self._search_and_expand()
        except anyio.get_cancelled_exc_class():
            self.status = "cancelled"
            self._seconds = time.monotonic() - self._started
            raise
        except (StoreError, BaseExceptionGroup) as exc:
            error = first_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
            if not isinstance(error, StoreError):
                self.status = "failed"
                raise error from None
            self.status, self.error = "failed", str(error)
            self.failures.append(str(error))
        if deadline.cancelled_caught:
            self.status = "budget"
            self.failures.append(f"time budget of {self.params.max_seconds:g} s reached")
        elif self.status == "running":
            self.error = self._nothing_useful()
            self.status = "failed" if self.error else "partial" if self._losses() else "finished"
        self._seconds = time.monotonic() - self._started
        for name, notice in (self._notices(self._started) if self._notices else {}).items():
            if not any(name in failure for failure in self.failures):
                self.failures.append(notice)
        result = self.result()
        await self._emit("finished", f"{result.outcome} ({self.counts.selected} selected of {self.counts.papers})")
        return result

    def _nothing_useful(self) -> str | None:
        """Why the run could do nothing useful (no query, no search answered, no score), or None."""
        steps = {
            "queries": "the crawler wrote no search query",
            "search": "no search answered",
            "score": "the selector never answered",
        }
        for step, what in steps.items():
            if self._tried[step] and len(self._lost[step]) == self._tried[step]:
                return f"{what}: {self._reason(step, short=False)}"
        return None

    def _reason(self, step: str, short: bool = True) -> str:
        """The most common reason a step failed (shortened to fit a one-line summary)."""
        (reason, _), *_ = Counter(self._lost[step].values()).most_common(1)
        return reason if not short or len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"

    def _losses(self) -> list[str]:
        return [
            f"{len(lost)} of {self._tried[step]} {STEP_NAMES[step]} failed: {self._reason(step)}"
            for step, lost in self._lost.items()
            if lost
        ]

    async def _attempt(self, step: Step, target: str, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()`, or None when it fails after its retries: then the failure is recorded and the run goes on."""
        self._tried[step] += step != "expand"  # an expansion is counted once, whatever parts it tries
        try:
            return await call()
        except STEP_ERRORS as exc:
            error: BaseException = exc
        except BaseExceptionGroup as group:  # from a task group inside the step (the resolver's title matches)
            matched, rest = group.split(STEP_ERRORS)
            if rest is not None or matched is None:
                raise
            error = first_error(matched)
        await self._failure(step, target, f"{what}: {error}", str(error))
        return None

    async def _search_and_expand(self) -> None:
        queries = await self._queries()
        layer: list[_Node] = []
        lookup, metadata = Layer(), Layer()
        async with anyio.create_task_group() as tg:
            for query in queries:
                tg.start_soon(self._search, query, layer, lookup.member(), metadata.member())
        for _ in range(1, self.params.expand_layers):
            ranked = sorted(layer, key=lambda n: n.score, reverse=True)[: self.params.expand_papers]
            layer = []
            lookup = Layer()
            self.counts.expansions_left += len(ranked)
            async with anyio.create_task_group() as tg:
                for node in ranked:
                    tg.start_soon(self._expand, node, layer, lookup.member())
            if not layer:
                break

    async def _queries(self) -> list[str]:
        runs = [False] + [True] * (self.params.ensemble - 1)
        found: list[list[str] | None] = [None] * len(runs)

        async def one(i: int, sample: bool) -> None:
            run = f"sampled run {i}" if sample else "greedy run"
            ask = functools.partial(self.crawler.queries, self.query, limit=self.params.search_queries, sample=sample)
            found[i] = await self._attempt("queries", run, f"crawler queries ({run})", ask)

        async with anyio.create_task_group() as tg:
            for i, sample in enumerate(runs):
                tg.start_soon(one, i, sample)
        queries = list(dict.fromkeys(q for qs in found if qs for q in qs))
        self.counts.queries = len(queries)
        await self._emit("queries", f"{len(queries)} search queries", {"queries": queries})
        return queries

    async def _search(self, query: str, next_layer: list[_Node], member: Member, metadata: Member) -> None:
        """One query through every source; new papers are scored, then expanded (depth 0 expands all).

        The search is a `member` of the first layer's lookup until its expansions have joined it, and
        a member of the searches' `metadata` lookup until its sources have answered.
        """
        try:
            # Under a concurrency bound a search holding a slot must not wait for one that has none.
            token = SEARCHES.set(metadata if self._slots is None else None)
            try:
                nodes = await self._searched(query, metadata)
            finally:
                SEARCHES.reset(token)
            if self.params.expand_layers == 0:
                return
            self.counts.expansions_left += len(nodes)
            async with anyio.create_task_group() as tg:
                for node in sorted(nodes, key=lambda n: n.score, reverse=True):
                    tg.start_soon(self._expand, node, next_layer, member.layer.member())
                member.done()
        finally:
            metadata.done()
            member.done()

    async def _searched(self, query: str, metadata: Member) -> list[_Node]:
        results: list[list[Paper]] = [[] for _ in self.sources]

        async def search(i: int, source: SearchSource) -> None:
            ask = functools.partial(
                cached_search,
                source,
                self.store,
                query,
                limit=self.params.search_papers,
                before=self.params.end_date,
                after=self.params.start_date,
                ttl=self.cache_ttl,
                categories=self.params.categories,
            )
            what = f"search {source.name!r} for {query!r}"
            found = await self._attempt("search", f"{source.name}: {query}", what, ask)
            if found is not None:
                results[i] = found
                self.counts.searches += 1

        async with self._slot():
            try:
                async with anyio.create_task_group() as tg:
                    for i, source in enumerate(self.sources):
                        tg.start_soon(search, i, source)
            finally:
                metadata.done()
            found = [paper for papers in results for paper in papers]
            nodes = self._admit(found, depth=0, source=f"search: {query}", parent=None)
            self._roots.setdefault(query, []).extend(nodes)
            await self._emit("searched", f"{query!r}: {len(found)} found, {len(nodes)} new", {"query": query})
            await self._score(nodes)
        return nodes

    async def _expand(self, node: _Node, next_layer: list[_Node], member: Member) -> None:
        """Follow the citations of the sections the crawler picks; new papers join the next layer.

        The `concurrency` slot covers the full text and the crawler's choice; resolving waits for the
        layer's arXiv lookup, which must not hold a slot that another expansion of the layer needs.
        """
        key = node.paper.key
        self._tried["expand"] += 1
        try:
            async with self._slot():
                chosen, refs = await self._cited(node)
            resolved: list[Paper | None] = []
            if refs:
                what = f"resolving references of {key}"
                ask = functools.partial(self.resolver.resolve, [ref for _, ref in refs], member)
                try:
                    resolved = await self._attempt("expand", key, what, ask) or []
                except ResolutionIncomplete as exc:  # what was resolved joins the next layer; the rest is a loss
                    resolved = exc.results
                    why = f"cited references not resolved ({exc.error})"
                    await self._failure("expand", key, f"{what}: {exc}", why)
        finally:
            member.done()
        node.sections = chosen
        new: list[_Node] = []
        for (name, _), paper in zip(refs, resolved, strict=False):
            if paper is not None:
                admitted = self._admit([paper], depth=node.depth + 1, source=name, parent=node)
                node.children.setdefault(name, []).extend(admitted)
                new.extend(admitted)
        await self._score(new)
        next_layer.extend(new)
        self.counts.expanded += 1
        self.counts.expansions_left -= 1
        await self._emit(
            "expanded",
            f"{node.paper.title[:60]}: {len(chosen)} sections, {len(refs)} cited, {len(new)} new",
            {"paper": key, "sections": chosen, "cited": len(refs), "new": len(new)},
        )

    async def _cited(self, node: _Node) -> tuple[list[str], list[tuple[str, Reference]]]:
        """The sections the crawler picks from the paper's full text, and the references they cite."""
        key = node.paper.key
        ask = functools.partial(self.fulltext.section_map, node.paper)
        section_map = await self._attempt("expand", key, f"full text of {key}", ask)
        if section_map is not None and not section_map.complete:
            # Used for this run, but what the missing part cites is lost: say so.
            why = f"full text incomplete ({'; '.join(section_map.warnings) or 'cut off'})"
            await self._failure("expand", key, f"full text of {key}: {why}", why)
        if not section_map or not section_map.sections:
            return [], []
        chosen = await self._sections(node, list(section_map.sections))
        return chosen, section_map.cited(chosen)

    async def _sections(self, node: _Node, names: list[str]) -> list[str]:
        """The sections the crawler picks; an ensemble run that fails loses only its own picks."""
        runs = [False] + [True] * (self.params.ensemble - 1)
        picks: list[list[str] | None] = [None] * len(runs)
        key = node.paper.key

        async def one(i: int, sample: bool) -> None:
            ask = functools.partial(self.crawler.sections, self.query, node.paper, names, sample=sample)
            picks[i] = await self._attempt("expand", key, f"crawler sections of {key}", ask)

        async with anyio.create_task_group() as tg:
            for i, sample in enumerate(runs):
                tg.start_soon(one, i, sample)
        return list(dict.fromkeys(name for pick in picks if pick for name in pick))

    def _admit(self, papers: list[Paper], *, depth: int, source: str, parent: _Node | None) -> list[_Node]:
        """Claim the papers not seen in this run yet (synchronously, so concurrent tasks never both win)."""
        nodes = []
        for paper in papers:
            if paper.key in self._nodes or paper.title_key in self._titles:
                continue
            if not kept(paper.categories, self.params.categories):  # a cited paper outside the filter
                continue
            if self.params.max_papers is not None and len(self._nodes) >= self.params.max_papers:
                self.status = "budget"
                self.failures.append(f"paper budget of {self.params.max_papers} reached")
                self._work.cancel()
                break
            node = _Node(paper, depth, source, parent)
            self._nodes[paper.key] = node
            self._titles.add(paper.title_key)
            nodes.append(node)
        self.counts.papers = len(self._nodes)
        return nodes

    async def _score(self, nodes: list[_Node]) -> None:
        """Score the nodes; if the selector fails they stay unscored (-1), which the losses report."""
        if not nodes:
            return
        ask = functools.partial(score_cached, self.selector, self.store, self.query, [n.paper for n in nodes])
        target = f"{nodes[0].paper.key} and {len(nodes) - 1} more" if len(nodes) > 1 else nodes[0].paper.key
        scores = await self._attempt("score", target, f"scoring {target}", ask)
        if scores is None:
            return
        for node, score in zip(nodes, scores, strict=True):
            node.score = score
        self.counts.scored += len(nodes)
        self.counts.selected = sum(n.score > self.params.threshold for n in self._nodes.values())
        await self._emit("scored", f"{len(nodes)} scored", {"papers": [n.paper.key for n in nodes]})

    async def _failure(self, step: Step, target: str, message: str, reason: str) -> None:
        message, reason = scrub(message), scrub(reason)
        self._lost[step].setdefault(target, reason)
        self.failures.append(message)
        await self._emit("failure", message, {"error": reason, "step": step, "target": target})

    async def _emit(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        if self.on_event is not None:
            await self.on_event(Event(kind=kind, message=message, data=data or {}, counts=self.counts.model_copy()))

    # Results ------------------------------------------------------------------------------

    def result(self) -> RunResult:
        """The result so far (complete once `run` returned)."""
        threshold = self.params.threshold
        order = {key: i for i, key in enumerate(self._nodes)}
        nodes = sorted(self._nodes.values(), key=lambda n: (-n.score, order[n.paper.key]))
        papers = [
            FoundPaper(
                key=n.paper.key,
                title=n.paper.title,
                arxiv_id=n.paper.arxiv_id,
                score=n.score,
                selected=n.score > threshold,
                depth=n.depth,
                found_by=n.source if n.parent is None else f"{n.parent.paper.key} § {n.source}",
                parent=n.parent.paper.key if n.parent else None,
            )
            for n in nodes
        ]
        seconds = self._seconds if self._seconds is not None else time.monotonic() - self._started
        return RunResult(
            query=self.query,
            status=self.status,
            params=self.params,
            papers=papers,
            counts=self.counts.model_copy(),
            failures=list(self.failures),
            losses=self._losses(),
            steps={step: StepCount(tried=self._tried[step], failed=len(self._lost[step])) for step in STEP_NAMES},
            error=self.error,
            seconds=round(seconds, 3),
            tree=self.tree(),
        )

    def tree(self) -> dict[str, Any]:
        """The run as the reference implementation's PaperNode tree (root = the user query)."""

        def node_dict(n: _Node) -> dict[str, Any]:
            return {
                "title": n.paper.title,
                "arxiv_id": n.paper.arxiv_id or "",
                "depth": n.depth,
                "abstract": n.paper.abstract,
                "sections": n.sections,
                "source": f"Search {n.source[len('search: ') :]}" if n.parent is None else f"Expand {n.source}",
                "select_score": n.score,
                "child": {name: [node_dict(c) for c in kids] for name, kids in n.children.items()},
                "extra": {"key": n.paper.key, "doi": n.paper.doi},
            }

        threshold = self.params.threshold
        return {
            "title": self.query,
            "arxiv_id": "",
            "depth": -1,
            "abstract": "",
            "sections": [],
            "source": "Root",
            "select_score": -1,
            "child": {query: [node_dict(n) for n in nodes] for query, nodes in self._roots.items()},
            "extra": {
                "end_date": self.params.end_date.isoformat() if self.params.end_date else None,
                "start_date": self.params.start_date.isoformat() if self.params.start_date else None,
                "categories": self.params.categories,
                "crawler_recall_papers": [n.paper.title for n in self._nodes.values()],
                "recall_papers": [n.paper.title for n in self._nodes.values() if n.score > threshold],
            },
        }
