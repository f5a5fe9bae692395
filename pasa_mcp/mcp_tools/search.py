"""The deep search as a job: start it, wait for it with progress, read it page by page, cancel it."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from ..agent import SearchParams
from ..jobs import Snapshot
from .common import DEFAULT_WAIT, SOURCE, Ctx, Include, Offset, Wait, page, shared, tool_errors
from .shapes import FoundBrief, SearchReport


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
        error=snap.error,
        seconds=result.seconds if result else None,
        resources=[uri, f"{uri}.md", f"{uri}.bib"],
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
    state = shared(ctx)
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
    """Wait for a deep search, then its progress and (partial or final) papers, one page at a time."""
    return await wait_and_report(ctx, search_id, wait_seconds, include, offset, limit)


@tool_errors
async def paper_search_cancel(search_id: Annotated[str, Field(min_length=1)], ctx: Ctx) -> SearchReport:
    """Stop a deep search; the papers found so far stay readable."""
    return report(await shared(ctx).jobs.cancel(search_id), "selected", 0, 20)
