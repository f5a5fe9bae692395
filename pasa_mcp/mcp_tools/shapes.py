"""The shapes of the tools' structured results: small, paged, with ids the other tools accept."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from ..agent import Counts, FoundPaper
from ..jobs import Status
from ..papers import Paper, SectionMap
from .common import SHORT_ABSTRACT, trim


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
            id=paper.key, title=paper.title, authors=authors, year=year, abstract=trim(paper.abstract, abstract_chars)
        )


class ScoredBrief(PaperBrief):
    score: float | None = Field(default=None, description="selector's score for the question, if one was given")

    @classmethod
    def scored(cls, paper: Paper, score: float | None) -> ScoredBrief:
        return cls(**PaperBrief.of(paper).model_dump(), score=None if score is None else round(score, 4))


class CitingPapers(BaseModel):
    paper: str
    source: str
    total: int | None = Field(description="citing papers in all (null: the source does not say)")
    papers: list[ScoredBrief]
    next_offset: int | None


class PaperText(BaseModel):
    paper: str
    sections: list[str] = Field(description="the sections in this text")
    available: list[str] = Field(description="every section that can be read")
    text: str
    total: int = Field(description="characters in the chosen sections")
    next_offset: int | None


class SearchSummary(BaseModel):
    search_id: str
    question: str
    status: Status
    counts: Counts
    error: str | None
    started: datetime
    updated: datetime


class SearchList(BaseModel):
    searches: list[SearchSummary] = Field(description="newest first")
    next_offset: int | None


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
    losses: list[str] = []  # how much each step lost: "3 of 44 expansions failed: ..."
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
    failures: list[SourceFailure] = Field(
        description="searches that failed (not the same as finding nothing) or that another source answered"
    )


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
    warnings: list[str] = []  # lookups that failed: their references are null here but may exist


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


def section_infos(section_map: SectionMap | None) -> list[SectionInfo]:
    if section_map is None:
        return []
    return [SectionInfo(name=name, citations=len(refs)) for name, refs in section_map.sections.items()]


def details(paper: Paper, section_map: SectionMap | None, warnings: list[str], abstract_chars: int) -> PaperDetails:
    return PaperDetails(
        id=paper.key,
        title=paper.title,
        authors=paper.authors[:10],
        published=paper.published,
        venue=paper.venue,
        arxiv_id=paper.arxiv_id,
        doi=paper.doi,
        url=paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else None),
        abstract=trim(paper.abstract, abstract_chars),
        full_text=section_map.origin if section_map else None,
        sections=section_infos(section_map),
        warnings=warnings + (section_map.warnings if section_map else []),
    )
