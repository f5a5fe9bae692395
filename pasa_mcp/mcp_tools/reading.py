"""Tools for working with papers once found: read them, see who cites them, cite them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .. import export
from ..app import Pasa
from ..paper_text import ABSTRACT, Sections, render, top_level
from ..papers import Paper
from ..selector import score_cached
from .common import Ctx, Offset, lookup, shared, tool_errors
from .shapes import CitingPapers, PaperText, ScoredBrief

PaperId = Annotated[str, Field(min_length=1, description="id, arXiv id/URL, DOI or title")]


@tool_errors
async def read_paper(
    paper: PaperId,
    ctx: Ctx,
    sections: Annotated[list[str] | None, Field(min_length=1, description="names from get_paper (all)")] = None,
    format: Literal["markdown", "text"] = "markdown",
    offset: Offset = 0,
    max_chars: Annotated[int, Field(ge=500, le=30_000)] = 8000,
) -> PaperText:
    """Read sections of a paper, math as TeX (else its abstract and references); paged."""
    pasa = shared(ctx).pasa
    (found,) = await lookup(pasa, [paper])
    available = await _readable(pasa, found)
    if not available:
        raise ValueError(f"nothing to read for {found.key}: no full text, abstract or reference list")
    names = list(dict.fromkeys(sections or top_level(available)))
    if unknown := [n for n in names if n not in available]:
        raise ValueError(f"{found.key} has no section {unknown[0]!r}; its sections: {'; '.join(list(available)[:40])}")
    text = "\n\n".join(render(available[n], format == "markdown") for n in names)
    if offset and offset >= len(text):
        raise ValueError(f"offset {offset} is past the end of the text ({len(text)} characters)")
    shown = text[offset : offset + max_chars]
    if offset + max_chars < len(text) and (cut := shown.rfind("\n\n")) > max_chars // 2:
        shown = shown[:cut]  # end the page between paragraphs
    end = offset + len(shown)
    return PaperText(
        paper=found.key,
        sections=names,
        available=list(available),
        text=shown.strip(),
        total=len(text),
        next_offset=end if end < len(text) else None,
    )


async def _readable(pasa: Pasa, paper: Paper) -> Sections:
    """Section name -> blocks: the HTML full text, else the abstract and the reference list."""
    if full := await pasa.paper_text.sections(paper):
        return full[1]
    available: Sections = {}
    if paper.abstract:
        available[ABSTRACT] = [("h2", ABSTRACT), ("p", paper.abstract)]
    section_map = await pasa.fulltext.section_map(paper)
    refs = list({r.title: r for refs in (section_map.sections.values() if section_map else []) for r in refs}.values())
    if refs:
        available["References"] = [("h2", "References")] + [("p", r.text or r.title) for r in refs]
    return available


@tool_errors
async def find_citing_papers(
    paper: PaperId,
    ctx: Ctx,
    source: Literal["openalex", "semantic_scholar"] = "openalex",
    question: Annotated[str | None, Field(min_length=1)] = None,
    offset: Offset = 0,
    limit: Annotated[int, Field(ge=1, le=100)] = 20,
) -> CitingPapers:
    """Papers citing a paper, paged; optionally scored against a question."""
    pasa = shared(ctx).pasa
    (found,) = await lookup(pasa, [paper])
    total: int | None
    if source == "openalex":
        if (counted := await pasa.openalex.citing(found, offset=offset, limit=limit)) is None:
            raise ValueError(f"OpenAlex does not know {found.key}")
        citing, total = counted
        next_offset = offset + limit if offset + limit < total else None
    else:
        if (paged := await pasa.semantic_scholar.citing(found, offset=offset, limit=limit)) is None:
            raise ValueError(f"Semantic Scholar does not know {found.key}")
        citing, next_offset = paged
        total = None if next_offset is not None else offset + len(citing)  # S2 says only whether more follow
    citing = await pasa.store.call(pasa.store.upsert_papers, citing)
    scores: list[float | None] = [None] * len(citing)
    if question is not None and citing:
        scores = list(await score_cached(pasa.selector, pasa.store, question, citing))
    return CitingPapers(
        paper=found.key,
        source=source,
        total=total,
        papers=[ScoredBrief.scored(p, s) for p, s in zip(citing, scores, strict=True)],
        next_offset=next_offset,
    )


@tool_errors
async def get_bibtex(
    papers: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=200)],
    ctx: Ctx,
    format: Literal["bibtex", "ris"] = "bibtex",
) -> str:
    """BibTeX or RIS by id, arXiv id, DOI or title."""
    found = await lookup(shared(ctx).pasa, papers)
    return export.bibtex(found) if format == "bibtex" else export.ris(found)
