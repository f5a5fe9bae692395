"""The PaSa steps as tools, for an assistant that drives the search loop itself."""

from __future__ import annotations

import functools
from datetime import date
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from ..app import Pasa
from ..categories import NOT_FILTERED, parse_categories
from ..net import SourceRejected, SourceUnavailable
from ..papers import Paper
from ..resolve import ResolutionIncomplete
from ..selector import score_cached
from ..sources import StoodIn, cached_search
from ..tasks import gather
from .common import LONG_ABSTRACT, SOURCE, Categories, Ctx, Offset, lookup, page, shared, tool_errors
from .shapes import (
    CitedPaper,
    Expansion,
    FoundPapers,
    PaperBrief,
    PaperDetails,
    Queries,
    Score,
    Scores,
    SourceFailure,
    details,
)


@tool_errors
async def generate_queries(
    question: Annotated[str, Field(min_length=1)],
    ctx: Ctx,
    count: Annotated[int | None, Field(ge=1, le=50, description="per crawler run (5)")] = None,
    ensemble: Annotated[int, Field(ge=1, le=8, description="crawler runs unioned")] = 1,
) -> Queries:
    """The crawler's search queries for a research question."""
    pasa = shared(ctx).pasa
    limit = count or pasa.settings.search_queries
    runs = await gather(
        *(functools.partial(pasa.crawler.queries, question, limit=limit, sample=i > 0) for i in range(ensemble))
    )
    return Queries(queries=list(dict.fromkeys(q for run in runs for q in run)), crawler=pasa.crawler.name)


@tool_errors
async def find_papers(
    queries: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=20)],
    ctx: Ctx,
    end_date: Annotated[date | None, Field(description="published before")] = None,
    start_date: Annotated[date | None, Field(description="published from")] = None,
    categories: Categories = None,
    sources: Annotated[list[SOURCE] | None, Field(min_length=1)] = None,
    papers_per_query: Annotated[int | None, Field(ge=1, le=100, description="per query and source (10)")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=100)] = 20,
) -> FoundPapers:
    """Search the sources; failed searches (and sources unable to filter categories) are listed."""
    if start_date and end_date and start_date >= end_date:
        raise ValueError(f"start_date {start_date} must come before end_date {end_date}")
    wanted = parse_categories(categories)
    pasa = shared(ctx).pasa
    chosen = pasa.sources(sources)
    per_query = papers_per_query or pasa.settings.search_papers
    ttl = pasa.settings.search_cache_days * 86400
    failures: list[SourceFailure] = []
    stood_in: list[SourceFailure] = []  # searches another source answered (the one asked is down)

    async def search(source: Any, query: str) -> list[Paper]:
        try:
            found = await cached_search(
                source,
                pasa.store,
                query,
                limit=per_query,
                before=end_date,
                after=start_date,
                ttl=ttl,
                categories=wanted,
            )
        except (SourceUnavailable, SourceRejected) as exc:
            failures.append(SourceFailure(source=source.name, query=query, error=str(exc)))
            return []
        if isinstance(found, StoodIn):  # answered, but not by the source asked: say so
            why = f"{found.why}; {found.by} answered instead"
            stood_in.append(SourceFailure(source=source.name, query=query, error=why))
        return found

    pairs = [(query, source) for query in queries for source in chosen]
    found = await gather(*(functools.partial(search, source, query) for query, source in pairs))
    if len(failures) == len(pairs):
        raise ToolError("every search failed: " + "; ".join(f.error for f in failures[:3]))
    failures += stood_in
    if wanted:
        failures += [
            SourceFailure(source=s.name, query="*", error=NOT_FILTERED) for s in chosen if not s.filters_categories
        ]
    papers: dict[str, Paper] = {}
    by: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for (query, _), hits in zip(pairs, found, strict=True):
        for paper in hits:
            key = titles.setdefault(paper.title_key, paper.key)  # one work from two sources counts once
            papers.setdefault(key, paper)
            if query not in by.setdefault(key, []):
                by[key].append(query)
    shown, next_offset = page(list(papers.values()), offset, limit)
    return FoundPapers(
        papers=[PaperBrief.of(p) for p in shown],
        found_by={p.key: by[p.key] for p in shown},
        total=len(papers),
        next_offset=next_offset,
        failures=failures,
    )


async def paper_details(pasa: Pasa, ident: str, sections: bool, abstract_chars: int) -> PaperDetails:
    (found,) = await lookup(pasa, [ident])
    section_map, warnings = None, []
    if sections:
        try:
            section_map = await pasa.fulltext.section_map(found)
        except (SourceUnavailable, SourceRejected) as exc:
            warnings.append(f"full text unavailable: {exc}")
        if section_map is None and not warnings:
            warnings.append("no HTML full text and no reference list known for this paper")
    return details(found, section_map, warnings, abstract_chars)


@tool_errors
async def get_paper(
    paper: Annotated[str, Field(min_length=1, description="id, arXiv id/URL, DOI or title")],
    ctx: Ctx,
    sections: Annotated[bool, Field(description="fetches the full text")] = True,
) -> PaperDetails:
    """A paper's metadata, abstract, and sections with citation counts."""
    return await paper_details(shared(ctx).pasa, paper, sections, LONG_ABSTRACT)


@tool_errors
async def expand_citations(
    paper: Annotated[str, Field(min_length=1, description="id, arXiv id/URL, DOI or title")],
    ctx: Ctx,
    sections: Annotated[list[str] | None, Field(min_length=1, description="names from get_paper")] = None,
    question: Annotated[str | None, Field(min_length=1, description="crawler picks sections")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=100)] = 30,
) -> Expansion:
    """Papers cited in chosen sections of a paper (named, or picked by the crawler)."""
    if (sections is None) == (question is None):
        raise ValueError("give either sections (names from get_paper) or a question, not both or neither")
    pasa = shared(ctx).pasa
    (found,) = await lookup(pasa, [paper])
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
    warnings: list[str] = []
    try:
        resolved = await pasa.resolver.resolve([ref for _, ref in cited]) if cited else []
    except ResolutionIncomplete as exc:  # a source failed for some: the others are still worth having
        resolved, warnings = exc.results, [str(exc)]
    shown, next_offset = page(list(zip(cited, resolved, strict=True)), offset, limit)
    return Expansion(
        paper=found.key,
        sections=chosen,
        chosen_by="caller" if sections is not None else "crawler",
        cited=len(cited),
        resolved=sum(p is not None for p in resolved),
        papers=[
            CitedPaper(section=name, cited_as=ref.title, paper=PaperBrief.of(p) if p else None)
            for (name, ref), p in shown
        ],
        next_offset=next_offset,
        warnings=warnings,
    )


@tool_errors
async def score_paper(
    question: Annotated[str, Field(min_length=1)],
    papers: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=50)],
    ctx: Ctx,
    explain: Annotated[bool, Field(description="ask why (slower)")] = False,
) -> Scores:
    """The selector's P(paper satisfies the question) per paper; optionally why."""
    pasa = shared(ctx).pasa
    found = await lookup(pasa, papers)
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
