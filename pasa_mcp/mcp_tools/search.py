"""The deep search as a job: start (or resume) it, wait for it with progress, read it page by page, cancel it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from ..agent import SearchParams
from ..categories import parse_categories
from ..jobs import Snapshot
from .common import DEFAULT_WAIT, SOURCE, Categories, Ctx, Include, Offset, Wait, page, shared, tool_errors
from .shapes import FoundBrief, SearchList, SearchReport, SearchSummary


def report(snap: Snapshot, include: str, offset: int, limit: int) -> SearchReport:
    result = snap.result
    if snap.status == "failed":
        raise ToolError(f"deep search {snap.search_id} failed: {snap.error}")
    papers = (result.selected if include == "selected" else result.papers) if result else []
    shown, next_offset = page(papers, offset, limit)
    failures = result.failures if result else []
    uri = f"pasa://search/{snap.search_id}"
    return SearchReport(
        search_id=snap.search_id,
        status=snap.status,
        question=snap.query,
        counts=snap.counts,
        papers=[FoundBrief.of(p) for p in shown],
        total=len(papers),
        next_offset=next_offset,
        failures=failures[:10] + ([f"... and {len(failures) - 10} more"] if len(failures) > 10 else []),
        losses=result.losses if result else [],
        error=snap.error,
        seconds=result.seconds if result else None,
        resources=[uri, f"{uri}.md", f"{uri}.bib"],
    )


def summary(snap: Snapshot) -> SearchSummary:
    return SearchSummary(
        search_id=snap.search_id,
        question=snap.query,
        status=snap.status,
        counts=snap.counts,
        error=snap.error,
        started=datetime.fromtimestamp(snap.created, UTC),
        updated=datetime.fromtimestamp(snap.updated, UTC),
    )


def progress_message(snap: Snapshot) -> str:
    c = snap.counts
    return (
        f"{snap.status}: {c.queries} queries, {c.searches} searches run, {c.papers} papers found, "
        f"{c.scored} scored, {c.selected} selected, {c.expanded} expanded, {c.expansions_left} expansions left"
    )


async def wait_and_report(
    ctx: Ctx, search_id: str, seconds: float, include: str, offset: int, limit: int
) -> SearchReport:
    reported = 0

    async def progress(snap: Snapshot) -> None:
        nonlocal reported
        reported += 1  # progress must grow with every notification; the counts are in the message
        await ctx.report_progress(reported, None, progress_message(snap))

    snap = await shared(ctx).jobs.wait(search_id, seconds, progress)
    return report(snap, include, offset, limit)


@tool_errors
async def paper_search(
    question: Annotated[str, Field(min_length=1, description="a detailed research question")],
    ctx: Ctx,
    end_date: Annotated[date | None, Field(description="published before")] = None,
    start_date: Annotated[date | None, Field(description="published from")] = None,
    categories: Categories = None,
    search_queries: Annotated[int | None, Field(ge=1, le=50, description="crawler queries (5)")] = None,
    search_papers: Annotated[int | None, Field(ge=1, le=100, description="per query and source (10)")] = None,
    expand_layers: Annotated[int | None, Field(ge=0, le=5, description="citation layers (2)")] = None,
    expand_papers: Annotated[int | None, Field(ge=1, le=200, description="expanded per deeper layer (20)")] = None,
    threshold: Annotated[float | None, Field(ge=0, le=1, description="selection threshold (0.5)")] = None,
    ensemble: Annotated[int, Field(ge=1, le=8, description="crawler runs unioned")] = 1,
    max_papers: Annotated[int | None, Field(ge=1)] = None,
    max_seconds: Annotated[float | None, Field(gt=0)] = None,
    sources: Annotated[list[SOURCE] | None, Field(min_length=1)] = None,
    wait_seconds: Wait = DEFAULT_WAIT,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
    resume: str | None = None,  # the search_id of a stopped search to continue (its question and parameters)
) -> SearchReport:
    """Deep search for a research question (minutes): the result, or `running` and its id."""
    state = shared(ctx)
    pasa = state.pasa
    if resume is not None:  # a stopped search goes on under its id, with its own question and parameters
        await state.jobs.resume(
            resume,
            lambda q, params, sources, on_event: pasa.deep_search_run(q, params, sources=sources, on_event=on_event),
        )
        return await wait_and_report(ctx, resume, wait_seconds, "selected", 0, limit)
    params = SearchParams.from_settings(
        pasa.settings,
        search_queries=search_queries,
        search_papers=search_papers,
        expand_layers=expand_layers,
        expand_papers=expand_papers,
        threshold=threshold,
        end_date=end_date,
        start_date=start_date,
        categories=parse_categories(categories),
        ensemble=ensemble,
        max_papers=max_papers,
        max_seconds=max_seconds,
    )
    search_id = await state.jobs.start(
        lambda on_event: pasa.deep_search_run(question, params, sources=sources, on_event=on_event)
    )
    return await wait_and_report(ctx, search_id, wait_seconds, "selected", 0, limit)


@tool_errors
async def paper_search_status(
    search_id: Annotated[str, Field(min_length=1)],
    ctx: Ctx,
    wait_seconds: Wait = DEFAULT_WAIT,
    include: Include = "selected",
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
) -> SearchReport:
    """Wait for a deep search; progress and papers so far, paged."""
    return await wait_and_report(ctx, search_id, wait_seconds, include, offset, limit)


@tool_errors
async def paper_search_cancel(search_id: Annotated[str, Field(min_length=1)], ctx: Ctx) -> SearchSummary:
    """Stop a deep search; what it found stays readable."""
    snap = await shared(ctx).jobs.cancel(search_id)
    if snap.status == "failed":
        raise ToolError(f"deep search {snap.search_id} failed: {snap.error}")
    return summary(snap)


@tool_errors
async def list_searches(ctx: Ctx, offset: Offset = 0, limit: Annotated[int, Field(ge=1, le=100)] = 20) -> SearchList:
    """Deep searches, newest first, with status and counts."""
    snaps, more = await shared(ctx).jobs.recent(offset, limit)
    return SearchList(
        searches=[summary(s) for s in snaps],
        next_offset=offset + limit if more else None,
    )
