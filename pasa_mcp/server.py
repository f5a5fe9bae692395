"""The MCP server: the deep search as a job, the PaSa steps as tools, results as resources.

Thin adapters over the library: every tool reads the shared `Pasa` and `Jobs` from the lifespan
state, turns expected failures (bad arguments, unreachable models or sources) into error results
that name the problem, and keeps its output small (trimmed abstracts, pages of lists, paper ids
that the other tools accept).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import sys
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from . import __version__
from .agent import Counts, FoundPaper, SearchParams
from .app import Pasa, open_app
from .config import Settings
from .jobs import Jobs, JobsBusy, Snapshot, Status, UnknownSearch, open_jobs
from .llm import ModelError
from .net import SourceRejected, SourceUnavailable
from .papers import Paper, Reference, SectionMap, normalize_arxiv_id, paper_ref
from .selector import score_cached
from .sources import cached_search
from .tasks import gather

__all__ = ["AppState", "build_server", "serve_http", "serve_stdio"]

DEFAULT_WAIT = 50.0  # seconds a call waits for a deep search: below the ~60 s after which clients give up
SHORT_ABSTRACT = 300  # characters of abstract in lists
LONG_ABSTRACT = 1500  # ... and for one paper
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SOURCE = Literal["google", "arxiv", "semantic_scholar", "openalex"]
EXPECTED = (ValueError, ModelError, SourceUnavailable, SourceRejected, JobsBusy, UnknownSearch)

INSTRUCTIONS = """\
PaSa deep paper search. For a detailed research question call paper_search: it runs the whole
agent (crawler queries, search, selector scores, citation expansion) as a job and returns the
selected papers, or `running` with a search_id to pass to paper_search_status. To stay in control,
use the step tools (generate_queries, find_papers, score_paper, get_paper, expand_citations); the
prompt `pasa_loop` explains the loop. Paper ids look like arxiv:2401.01234, doi:10.1/x or title:key."""


@dataclass
class AppState:
    """What every tool call shares: the wired agent parts and the deep search jobs."""

    pasa: Pasa
    jobs: Jobs


Ctx = Context[AppState]
P = ParamSpec("P")
T = TypeVar("T")


def _state(ctx: Ctx) -> AppState:
    return ctx.request_context.lifespan_context


def _tool_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Expected failures become error results with their own message (the SDK hides other exceptions' text)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except EXPECTED as exc:
            raise ToolError(str(exc)) from exc

    return wrapper


# Output models ----------------------------------------------------------------------------------


def _page(items: Sequence[T], offset: int, limit: int) -> tuple[list[T], int | None]:
    """One page of a list, and the offset of the next page (None on the last)."""
    end = offset + limit
    return list(items[offset:end]), end if end < len(items) else None


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


class PaperBrief(BaseModel):
    id: str = Field(description="paper id for the other tools")
    title: str
    authors: str
    year: int | None
    abstract: str = Field(description="trimmed")

    @classmethod
    def of(cls, paper: Paper, abstract_chars: int = SHORT_ABSTRACT) -> PaperBrief:
        authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
        year = paper.published.year if paper.published else None
        return cls(
            id=paper.key, title=paper.title, authors=authors, year=year, abstract=_trim(paper.abstract, abstract_chars)
        )


class FoundBrief(BaseModel):
    id: str
    title: str
    score: float = Field(description="selector's P(the paper satisfies the question)")
    depth: int = Field(description="0: found by a search query; n: cited by a depth n-1 paper")
    found_by: str

    @classmethod
    def of(cls, paper: FoundPaper) -> FoundBrief:
        return cls(
            id=paper.key, title=paper.title, score=round(paper.score, 4), depth=paper.depth, found_by=paper.found_by
        )


class SearchReport(BaseModel):
    search_id: str
    status: Status = Field(description="queued/running: call paper_search_status; the rest are final")
    question: str
    counts: Counts
    papers: list[FoundBrief] = Field(description="selected papers (or all touched), best first, one page")
    total: int = Field(description="papers in the whole list")
    next_offset: int | None = Field(description="offset of the next page, if any")
    failures: list[str] = Field(description="searches, full texts or lookups that failed (first 10)")
    error: str | None = None
    seconds: float | None = None
    resources: list[str] = Field(description="the full result as JSON, Markdown and BibTeX")


class Queries(BaseModel):
    queries: list[str]
    crawler: str


class SourceFailure(BaseModel):
    source: str
    query: str
    error: str


class FoundPapers(BaseModel):
    papers: list[PaperBrief] = Field(description="deduplicated, in the order found, one page")
    found_by: dict[str, list[str]] = Field(description="paper id -> the queries that found it (this page)")
    total: int
    next_offset: int | None
    failures: list[SourceFailure] = Field(description="searches that failed: not the same as finding nothing")


class SectionInfo(BaseModel):
    name: str
    citations: int


class PaperDetails(BaseModel):
    id: str
    title: str
    authors: list[str] = Field(description="at most 10")
    published: date | None
    venue: str | None
    arxiv_id: str | None
    doi: str | None
    url: str | None
    abstract: str = Field(description="trimmed")
    full_text: str | None = Field(description="where the section map came from: arxiv_html, ar5iv or references")
    sections: list[SectionInfo] = Field(description="sections with the number of references each cites")
    warnings: list[str]


class CitedPaper(BaseModel):
    section: str
    cited_as: str = Field(description="the title as written in the reference")
    paper: PaperBrief | None = Field(description="the cited paper, or null when it could not be found")


class Expansion(BaseModel):
    paper: str
    sections: list[str] = Field(description="the sections followed")
    chosen_by: Literal["caller", "crawler"]
    cited: int = Field(description="distinct references in those sections")
    resolved: int = Field(description="how many of them were found as papers")
    papers: list[CitedPaper] = Field(description="one page of the references")
    next_offset: int | None


class Score(BaseModel):
    id: str
    title: str
    score: float
    selected: bool = Field(description="score above the threshold")
    reason: str | None = None


class Scores(BaseModel):
    question: str
    threshold: float
    selector: str
    papers: list[Score]


# Looking papers up ------------------------------------------------------------------------------


async def _lookup(pasa: Pasa, idents: Sequence[str]) -> list[Paper]:
    """Papers by id, arXiv URL, DOI or title: the store first, then arXiv, Semantic Scholar or a title match."""
    store = pasa.store
    keys: list[str] = []
    for ident in idents:
        if not ident.strip():
            raise ValueError("a paper id is empty")
        ((kind, value),) = paper_ref(ident.strip()).items()
        if not value or (kind == "arxiv" and not normalize_arxiv_id(value)):
            raise ValueError(f"not a paper id, arXiv id or URL, DOI or title: {ident!r}")
        keys.append(f"{kind}:{value}")
    found = await store.call(store.get_papers, keys)
    fetched: list[Paper] = []
    if arxiv_ids := [k.removeprefix("arxiv:") for k in keys if k.startswith("arxiv:") and k not in found]:
        fetched += (await pasa.arxiv.papers(arxiv_ids)).values()
    if dois := [k.removeprefix("doi:") for k in keys if k.startswith("doi:") and k not in found]:
        fetched += (await pasa.semantic_scholar.papers([f"DOI:{doi}" for doi in dois])).values()
    titles = {k: i.strip() for k, i in zip(keys, idents, strict=True) if k.startswith("title:") and k not in found}
    typed = {k: t for k, t in titles.items() if not t.startswith("title:")}  # a bare title key cannot be searched
    if typed:
        resolved = await pasa.resolver.resolve([Reference(title=t) for t in typed.values()])
        found |= {k: p for k, p in zip(typed, resolved, strict=True) if p is not None}
    for paper in await store.call(store.upsert_papers, fetched):
        # A DOI asked for may come back as an arXiv paper: match it by every identity it has.
        for key in (f"arxiv:{paper.arxiv_id}", f"doi:{paper.doi}"):
            if key in keys:
                found[key] = paper
    missing = [i for k, i in zip(keys, idents, strict=True) if k not in found]
    if missing:
        raise ValueError(f"paper not found: {', '.join(map(repr, missing[:5]))}")
    return [found[k] for k in keys]


def _section_infos(section_map: SectionMap | None) -> list[SectionInfo]:
    if section_map is None:
        return []
    return [SectionInfo(name=name, citations=len(refs)) for name, refs in section_map.sections.items()]


def _details(paper: Paper, section_map: SectionMap | None, warnings: list[str], abstract_chars: int) -> PaperDetails:
    return PaperDetails(
        id=paper.key,
        title=paper.title,
        authors=paper.authors[:10],
        published=paper.published,
        venue=paper.venue,
        arxiv_id=paper.arxiv_id,
        doi=paper.doi,
        url=paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else None),
        abstract=_trim(paper.abstract, abstract_chars),
        full_text=section_map.origin if section_map else None,
        sections=_section_infos(section_map),
        warnings=warnings + (section_map.warnings if section_map else []),
    )


# The deep search --------------------------------------------------------------------------------


def _report(snap: Snapshot, include: str, offset: int, limit: int) -> SearchReport:
    result = snap.result
    if snap.status == "failed":
        raise ToolError(f"deep search {snap.search_id} failed: {snap.error}")
    papers = (result.selected if include == "selected" else result.papers) if result else []
    page, next_offset = _page(papers, offset, limit)
    failures = result.failures if result else []
    uri = f"pasa://search/{snap.search_id}"
    return SearchReport(
        search_id=snap.search_id,
        status=snap.status,
        question=snap.query,
        counts=snap.counts,
        papers=[FoundBrief.of(p) for p in page],
        total=len(papers),
        next_offset=next_offset,
        failures=failures[:10] + ([f"... and {len(failures) - 10} more"] if len(failures) > 10 else []),
        error=snap.error,
        seconds=result.seconds if result else None,
        resources=[uri, f"{uri}.md", f"{uri}.bib"],
    )


def _progress_message(snap: Snapshot) -> str:
    c = snap.counts
    return (
        f"{snap.status}: {c.queries} queries, {c.searches} searches run, {c.papers} papers found, "
        f"{c.scored} scored, {c.selected} selected, {c.expanded} expanded, {c.expansions_left} expansions left"
    )


async def _wait_and_report(
    ctx: Ctx, search_id: str, seconds: float, include: str, offset: int, limit: int
) -> SearchReport:
    reported = 0

    async def progress(snap: Snapshot) -> None:
        nonlocal reported
        reported += 1  # progress must grow with every notification; the counts are in the message
        await ctx.report_progress(reported, None, _progress_message(snap))

    snap = await _state(ctx).jobs.wait(search_id, seconds, progress)
    return _report(snap, include, offset, limit)


Offset = Annotated[int, Field(ge=0, description="first item of the page")]
Include = Annotated[Literal["selected", "all"], Field(description="selected papers, or every paper touched")]
Wait = Annotated[float, Field(ge=0, le=600, description="seconds to wait for the search to finish")]


@_tool_errors
async def paper_search(
    question: Annotated[str, Field(min_length=1, description="a detailed research question")],
    ctx: Ctx,
    end_date: Annotated[date | None, Field(description="only papers published before this date")] = None,
    search_queries: Annotated[int | None, Field(ge=1, le=50, description="crawler queries (default 5)")] = None,
    search_papers: Annotated[int | None, Field(ge=1, le=100, description="papers per query and source (10)")] = None,
    expand_layers: Annotated[int | None, Field(ge=0, le=5, description="citation expansion layers (2)")] = None,
    expand_papers: Annotated[
        int | None, Field(ge=1, le=200, description="papers expanded per deeper layer (20)")
    ] = None,
    threshold: Annotated[float | None, Field(ge=0, le=1, description="selection score threshold (0.5)")] = None,
    ensemble: Annotated[int, Field(ge=1, le=8, description="crawler runs unioned (first greedy, rest sampled)")] = 1,
    max_papers: Annotated[int | None, Field(ge=1, description="stop after this many papers")] = None,
    max_seconds: Annotated[float | None, Field(gt=0, description="stop after this many seconds")] = None,
    sources: Annotated[list[SOURCE] | None, Field(min_length=1, description="search sources (configured)")] = None,
    wait_seconds: Wait = DEFAULT_WAIT,
    limit: Annotated[int, Field(ge=1, le=200, description="papers returned")] = 20,
) -> SearchReport:
    """Deep search for papers answering a research question (minutes): final result, or `running` and a search_id."""
    state = _state(ctx)
    pasa = state.pasa
    params = SearchParams.from_settings(
        pasa.settings,
        search_queries=search_queries,
        search_papers=search_papers,
        expand_layers=expand_layers,
        expand_papers=expand_papers,
        threshold=threshold,
        end_date=end_date,
        ensemble=ensemble,
        max_papers=max_papers,
        max_seconds=max_seconds,
    )
    search_id = await state.jobs.start(
        lambda on_event: pasa.deep_search_run(question, params, sources=sources, on_event=on_event)
    )
    return await _wait_and_report(ctx, search_id, wait_seconds, "selected", 0, limit)


@_tool_errors
async def paper_search_status(
    search_id: Annotated[str, Field(min_length=1)],
    ctx: Ctx,
    wait_seconds: Wait = DEFAULT_WAIT,
    include: Include = "selected",
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
) -> SearchReport:
    """Wait for a deep search, then its progress and (partial or final) papers, one page at a time."""
    return await _wait_and_report(ctx, search_id, wait_seconds, include, offset, limit)


@_tool_errors
async def paper_search_cancel(search_id: Annotated[str, Field(min_length=1)], ctx: Ctx) -> SearchReport:
    """Stop a deep search; the papers found so far stay readable."""
    return _report(await _state(ctx).jobs.cancel(search_id), "selected", 0, 20)


# The steps --------------------------------------------------------------------------------------


@_tool_errors
async def generate_queries(
    question: Annotated[str, Field(min_length=1, description="a detailed research question")],
    ctx: Ctx,
    count: Annotated[int | None, Field(ge=1, le=50, description="queries per crawler run (default 5)")] = None,
    ensemble: Annotated[int, Field(ge=1, le=8, description="crawler runs unioned (first greedy, rest sampled)")] = 1,
) -> Queries:
    """The crawler's search queries for a research question."""
    pasa = _state(ctx).pasa
    limit = count or pasa.settings.search_queries
    runs = await gather(
        *(functools.partial(pasa.crawler.queries, question, limit=limit, sample=i > 0) for i in range(ensemble))
    )
    return Queries(queries=list(dict.fromkeys(q for run in runs for q in run)), crawler=pasa.crawler.name)


@_tool_errors
async def find_papers(
    queries: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=20)],
    ctx: Ctx,
    end_date: Annotated[date | None, Field(description="only papers published before this date")] = None,
    sources: Annotated[list[SOURCE] | None, Field(min_length=1, description="search sources (configured)")] = None,
    papers_per_query: Annotated[int | None, Field(ge=1, le=100, description="per query and source (10)")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=100)] = 20,
) -> FoundPapers:
    """Run search queries through the search sources; failed searches are listed, not dropped."""
    pasa = _state(ctx).pasa
    chosen = pasa.sources(sources)
    per_query = papers_per_query or pasa.settings.search_papers
    ttl = pasa.settings.search_cache_days * 86400
    failures: list[SourceFailure] = []

    async def search(source: Any, query: str) -> list[Paper]:
        try:
            return await cached_search(source, pasa.store, query, limit=per_query, before=end_date, ttl=ttl)
        except (SourceUnavailable, SourceRejected) as exc:
            failures.append(SourceFailure(source=source.name, query=query, error=str(exc)))
            return []

    pairs = [(query, source) for query in queries for source in chosen]
    found = await gather(*(functools.partial(search, source, query) for query, source in pairs))
    if len(failures) == len(pairs):
        raise ToolError("every search failed: " + "; ".join(f.error for f in failures[:3]))
    papers: dict[str, Paper] = {}
    by: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for (query, _), hits in zip(pairs, found, strict=True):
        for paper in hits:
            key = titles.setdefault(paper.title_key, paper.key)  # one work from two sources counts once
            papers.setdefault(key, paper)
            if query not in by.setdefault(key, []):
                by[key].append(query)
    page, next_offset = _page(list(papers.values()), offset, limit)
    return FoundPapers(
        papers=[PaperBrief.of(p) for p in page],
        found_by={p.key: by[p.key] for p in page},
        total=len(papers),
        next_offset=next_offset,
        failures=failures,
    )


async def _paper_details(pasa: Pasa, ident: str, sections: bool, abstract_chars: int) -> PaperDetails:
    (found,) = await _lookup(pasa, [ident])
    section_map, warnings = None, []
    if sections:
        try:
            section_map = await pasa.fulltext.section_map(found)
        except (SourceUnavailable, SourceRejected) as exc:
            warnings.append(f"full text unavailable: {exc}")
        if section_map is None and not warnings:
            warnings.append("no HTML full text and no reference list known for this paper")
    return _details(found, section_map, warnings, abstract_chars)


@_tool_errors
async def get_paper(
    paper: Annotated[str, Field(min_length=1, description="paper id, arXiv id or URL, DOI, or title")],
    ctx: Ctx,
    sections: Annotated[bool, Field(description="also list its sections (fetches the full text)")] = True,
) -> PaperDetails:
    """A paper's metadata, abstract, and sections with how many references each cites."""
    return await _paper_details(_state(ctx).pasa, paper, sections, LONG_ABSTRACT)


@_tool_errors
async def expand_citations(
    paper: Annotated[str, Field(min_length=1, description="paper id, arXiv id or URL, DOI, or title")],
    ctx: Ctx,
    sections: Annotated[list[str] | None, Field(min_length=1, description="section names from get_paper")] = None,
    question: Annotated[str | None, Field(min_length=1, description="let the crawler pick sections for it")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=100)] = 30,
) -> Expansion:
    """The papers cited in chosen sections of a paper (named, or picked by the crawler for a question)."""
    if (sections is None) == (question is None):
        raise ValueError("give either sections (names from get_paper) or a question, not both or neither")
    pasa = _state(ctx).pasa
    (found,) = await _lookup(pasa, [paper])
    section_map = await pasa.fulltext.section_map(found)
    if section_map is None or not section_map.sections:
        raise ValueError(f"no HTML full text and no reference list known for {found.key}")
    names = list(section_map.sections)
    if sections is not None:
        if unknown := [s for s in sections if s not in section_map.sections]:
            raise ValueError(f"{found.key} has no section {unknown[0]!r}; its sections: {'; '.join(names[:30])}")
        chosen = list(dict.fromkeys(sections))
    else:
        assert question is not None
        chosen = await pasa.crawler.sections(question, found, names)
    cited = section_map.cited(chosen)
    resolved = await pasa.resolver.resolve([ref for _, ref in cited]) if cited else []
    page, next_offset = _page(list(zip(cited, resolved, strict=True)), offset, limit)
    return Expansion(
        paper=found.key,
        sections=chosen,
        chosen_by="caller" if sections is not None else "crawler",
        cited=len(cited),
        resolved=sum(p is not None for p in resolved),
        papers=[
            CitedPaper(section=name, cited_as=ref.title, paper=PaperBrief.of(p) if p else None)
            for (name, ref), p in page
        ],
        next_offset=next_offset,
    )


@_tool_errors
async def score_paper(
    question: Annotated[str, Field(min_length=1, description="the research question")],
    papers: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=50, description="ids")],
    ctx: Ctx,
    explain: Annotated[bool, Field(description="also ask the selector why (slower)")] = False,
) -> Scores:
    """The selector's probability that each paper satisfies the question, optionally with its reason."""
    pasa = _state(ctx).pasa
    found = await _lookup(pasa, papers)
    reasons: list[str | None] = [None] * len(found)
    if explain:
        explained = await gather(*(functools.partial(pasa.selector.explain, question, p) for p in found))
        scores = [score for score, _ in explained]
        reasons = [reason for _, reason in explained]
    else:
        scores = await score_cached(pasa.selector, pasa.store, question, found)
    threshold = pasa.settings.threshold
    return Scores(
        question=question,
        threshold=threshold,
        selector=pasa.selector.name,
        papers=[
            Score(id=p.key, title=p.title, score=round(s, 4), selected=s > threshold, reason=r)
            for p, s, r in zip(found, scores, reasons, strict=True)
        ],
    )


# Resources and the prompt -----------------------------------------------------------------------


async def _search_snapshot(ctx: Ctx, search_id: str) -> Snapshot:
    try:
        return await _state(ctx).jobs.snapshot(search_id)
    except UnknownSearch as exc:
        raise ResourceNotFoundError(str(exc)) from None


async def search_json(search_id: str, ctx: Ctx) -> str:
    """A deep search's whole result as JSON: every paper touched, failures, and the run tree."""
    return (await _search_snapshot(ctx, search_id)).model_dump_json(indent=1)


async def search_markdown(search_id: str, ctx: Ctx) -> str:
    """A deep search's selected papers as Markdown."""
    snap = await _search_snapshot(ctx, search_id)
    store = _state(ctx).pasa.store
    selected = snap.result.selected if snap.result else []
    known = await store.call(store.get_papers, [p.key for p in selected])
    c = snap.counts
    lines = [
        f"# Deep search: {snap.query}",
        "",
        f"Status **{snap.status}**: {c.selected} selected of {c.papers} papers; {c.queries} queries, "
        f"{c.expanded} papers expanded. Search id `{snap.search_id}`.",
        "",
    ]
    for n, found in enumerate(selected, 1):
        paper = known.get(found.key) or Paper(title=found.title, arxiv_id=found.arxiv_id)
        brief = PaperBrief.of(paper, 600)
        link = f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else paper.url or paper.key
        lines += [
            f"{n}. **{paper.title}** ({brief.authors or 'unknown authors'}, {brief.year or 'n.d.'}) <{link}>",
            f"   score {found.score:.2f}; found by {found.found_by}",
        ]
        if brief.abstract:
            lines.append(f"   > {brief.abstract}")
    if snap.result and snap.result.failures:
        lines += ["", "## Failures", *(f"- {f}" for f in snap.result.failures)]
    if snap.error:
        lines += ["", f"Note: {snap.error}"]
    return "\n".join(lines) + "\n"


def _bib_escape(text: str) -> str:
    return re.sub(r"([{}&%$#_])", r"\\\1", text)


def _bib_key(paper: Paper, taken: set[str]) -> str:
    surname = paper.authors[0].split()[-1] if paper.authors else "anon"
    word = next((w for w in re.findall(r"[A-Za-z]+", paper.title) if len(w) > 3), "paper")
    base = unicodedata.normalize("NFKD", f"{surname}{paper.published.year if paper.published else ''}{word}")
    base = re.sub(r"[^a-z0-9]", "", base.lower())
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}{chr(ord('a') + n - 1)}" if n <= 26 else f"{base}{n}"
    taken.add(key)
    return key


def bibtex(papers: Sequence[Paper]) -> str:
    """BibTeX entries: @article for papers with a venue, @misc (with the arXiv eprint) otherwise."""
    taken: set[str] = set()
    entries = []
    for paper in papers:
        fields = {
            "title": "{" + _bib_escape(paper.title) + "}",
            "author": " and ".join(_bib_escape(a) for a in paper.authors),
            "year": str(paper.published.year) if paper.published else "",
            "journal": _bib_escape(paper.venue or ""),
            "doi": paper.doi or "",
            "eprint": paper.arxiv_id or "",
            "archiveprefix": "arXiv" if paper.arxiv_id else "",
            "url": paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else ""),
        }
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items() if value)
        entries.append(f"@{'article' if paper.venue else 'misc'}{{{_bib_key(paper, taken)},\n{body}\n}}")
    return "\n\n".join(entries) + "\n"


async def search_bibtex(search_id: str, ctx: Ctx) -> str:
    """A deep search's selected papers as BibTeX."""
    snap = await _search_snapshot(ctx, search_id)
    store = _state(ctx).pasa.store
    selected = snap.result.selected if snap.result else []
    known = await store.call(store.get_papers, [p.key for p in selected])
    return bibtex([known.get(p.key) or Paper(title=p.title, arxiv_id=p.arxiv_id) for p in selected])


async def paper_json(id: str, ctx: Ctx) -> str:
    """A paper's metadata, whole abstract, and sections with how many references each cites."""
    try:
        details = await _paper_details(_state(ctx).pasa, id, True, 100_000)
    except EXPECTED as exc:
        raise ResourceNotFoundError(str(exc)) from None
    return details.model_dump_json(indent=1)


def pasa_loop(question: str) -> str:
    """How to run PaSa's search loop yourself with the step tools, for a research question."""
    return f"""\
Find the papers that answer this research question, the way the PaSa agent does, with the pasa tools:

{question}

1. generate_queries(question) gives search queries; add your own if the question has angles they miss.
2. find_papers(queries, end_date=...) searches the sources. Note any failures it reports: a failed
   source is not "no papers"; retry it later or use other sources.
3. score_paper(question, ids) scores the candidates (up to 50 per call). A score above the threshold
   (0.5) means the selector thinks the paper satisfies the question; explain=true gives its reason.
4. Expand: for every paper found by search (whatever its score), call
   expand_citations(paper, question=...) to follow the citations of the sections the crawler picks
   (or call get_paper to see the sections and pass section names yourself). Score the new papers.
5. Go one layer deeper: expand the 20 best-scoring papers of the new layer, score what they cite.
6. Answer with the papers scored above the threshold, best first: title, id, score, and how each
   was found (search query, or cited in which paper and section).

Keep a list of ids already seen, so that no paper is scored or expanded twice. If you would rather
not drive the loop, paper_search runs all of it as one job (poll it with paper_search_status)."""


# The server -------------------------------------------------------------------------------------


class SharedToken:
    """Bearer authentication with one shared secret (for `serve --http` beyond loopback)."""

    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest):
            return AccessToken(token="shared", client_id="pasa-mcp", scopes=[])
        return None


READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)
TOOLS: list[tuple[Callable[..., Any], ToolAnnotations]] = [
    (paper_search, ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)),
    (paper_search_status, ToolAnnotations(read_only_hint=True, open_world_hint=False)),
    (paper_search_cancel, ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)),
    (generate_queries, READ),
    (find_papers, READ),
    (get_paper, READ),
    (expand_citations, READ),
    (score_paper, READ),
]


def build_server(
    settings: Settings | None = None,
    *,
    pasa: Pasa | None = None,
    token: str | None = None,
) -> MCPServer[AppState]:
    """The pasa MCP server. `pasa` hands in parts the caller opened (tests); `token` requires bearer auth."""
    settings = settings or (pasa.settings if pasa else Settings())

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            app = pasa or await stack.enter_async_context(open_app(settings))
            running = await stack.enter_async_context(open_jobs(app.store))
            yield AppState(app, running)

    auth: dict[str, Any] = {}
    if token:
        # AuthSettings wants an issuer even though a shared token needs no OAuth routes (none are served).
        auth = {
            "token_verifier": SharedToken(token),
            "auth": AuthSettings(issuer_url="http://localhost", resource_server_url=None),
        }
    server: MCPServer[AppState] = MCPServer(
        "pasa", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING", **auth
    )
    for fn, hints in TOOLS:
        server.add_tool(fn, annotations=hints)
    # The suffixed forms come first: `{search_id}` alone would also match "abc.md".
    server.resource("pasa://search/{search_id}.md", mime_type="text/markdown")(search_markdown)
    server.resource("pasa://search/{search_id}.bib", mime_type="application/x-bibtex")(search_bibtex)
    server.resource("pasa://search/{search_id}", mime_type="application/json")(search_json)
    server.resource("pasa://paper/{+id}", mime_type="application/json")(paper_json)
    server.prompt()(pasa_loop)
    return server


def serve_stdio(settings: Settings) -> None:
    """Serve one client on stdin/stdout (what desktop clients launch)."""
    build_server(settings).run()


def transport_security(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: only these Host (and browser Origin) headers are served."""
    names = list(dict.fromkeys([*LOOPBACK, host, *allowed_hosts]))
    hosts = [f"[{n}]" if ":" in n else n for n in names]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:*" for h in hosts],
        allowed_origins=[f"{scheme}://{h}:*" for h in hosts for scheme in ("http", "https")],
    )


def http_app(settings: Settings, *, host: str, token: str | None, allowed_hosts: Sequence[str] = ()) -> Any:
    """The streamable HTTP app at /mcp. Beyond loopback a bearer token is required."""
    if host not in LOOPBACK and not token:
        raise ValueError(f"serving on {host} needs a bearer token: set PASA_HTTP_TOKEN (clients send it)")
    server = build_server(settings, token=token)
    return server.streamable_http_app(transport_security=transport_security(host, allowed_hosts), host=host)


def serve_http(settings: Settings, *, host: str, port: int, allowed_hosts: Sequence[str] = ()) -> None:
    """Serve streamable HTTP at http://HOST:PORT/mcp until interrupted."""
    import uvicorn

    token = settings.http_token.get_secret_value() if settings.http_token else None
    app = http_app(settings, host=host, token=token, allowed_hosts=allowed_hosts)
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token required" if token else "no token"
    print(f"pasa-mcp {__version__}: MCP at http://{shown}:{port}/mcp ({auth})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
