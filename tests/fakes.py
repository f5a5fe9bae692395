"""Test doubles for the agent's collaborators: real implementations of the protocols, in memory,
recording every call. The corpus is a small synthetic citation graph defined right here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import anyio

from pasa_mcp.layers import Member
from pasa_mcp.net import SourceUnavailable
from pasa_mcp.papers import Paper, Reference, SectionMap

_IDS: dict[str, int] = {}
_DIGITS = str.maketrans("0123456789", "abcdefghij")


def title(name: str) -> str:
    """Titles spell digits as letters: PaSa's title keys keep letters only, so "q1" and "q2" must differ."""
    return f"Paper {name.translate(_DIGITS)}"


def name_of(paper_title: str) -> str:
    return paper_title.removeprefix("Paper ").translate(str.maketrans("abcdefghij", "0123456789"))


def paper(name: str) -> Paper:
    """A synthetic paper; `name` like "q1-3" or "q1-3.r2" makes its title and a stable arXiv id."""
    number = _IDS.setdefault(name, len(_IDS) + 1)
    return Paper(title=title(name), abstract=f"Abstract of {name}.", arxiv_id=f"2101.{number:05d}")


@dataclass
class Calls:
    log: list[tuple] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple]:
        return [c for c in self.log if c[0] == kind]


class FakeCrawler:
    """Queries `q1..qN` (more than asked, to check the limit); picks "2 Related Work" when present."""

    name = "fake-crawler"

    def __init__(self, calls: Calls, n_queries: int = 7) -> None:
        self.calls, self.n_queries = calls, n_queries

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        self.calls.log.append(("queries", user_query, limit, sample))
        prefix = "s" if sample else "q"
        return [f"{prefix}{i}" for i in range(1, self.n_queries + 1)][:limit]

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]:
        self.calls.log.append(("sections", paper.key, tuple(names), sample))
        return ["2 Related Work"] if "2 Related Work" in names else []


class FakeSelector:
    """Scores from a table by title; unknown titles score 0.1."""

    name = "fake-selector"

    def __init__(self, calls: Calls, scores: dict[str, float] | None = None) -> None:
        self.calls, self.scores = calls, scores or {}

    async def score(self, user_query: str, papers: list[Paper]) -> list[float]:
        self.calls.log.append(("score", tuple(p.title for p in papers)))
        await anyio.lowlevel.checkpoint()
        return [self.scores.get(p.title, 0.1) for p in papers]

    async def explain(self, user_query: str, paper: Paper) -> tuple[float, str]:
        return self.scores.get(paper.title, 0.1), "fake reason"


class FakeSource:
    """Query `qK` finds papers `qK-0 .. qK-(per_query-1)`; paper `shared` is found by every query."""

    filters_categories = False

    def __init__(self, calls: Calls, name: str = "fake", per_query: int = 12, shared: bool = False) -> None:
        self.calls, self.name, self.per_query, self.shared = calls, name, per_query, shared
        self.failing = False

    async def search(self, query: str, *, limit: int, before: date | None, after: date | None = None) -> list[Paper]:
        self.calls.log.append(("search", self.name, query, limit, before))
        await anyio.lowlevel.checkpoint()
        if self.failing:
            raise SourceUnavailable(self.name, 6, "HTTP 503")
        found = [paper(f"{query}-{i}") for i in range(self.per_query)]
        if self.shared:
            found.insert(0, paper("shared"))
        return found[:limit]


class FakeFullText:
    """Every paper cites three papers in its Introduction and three in its Related Work."""

    def __init__(self, calls: Calls, gate: anyio.Event | None = None) -> None:
        self.calls, self.gate = calls, gate

    async def section_map(self, p: Paper) -> SectionMap | None:
        self.calls.log.append(("fulltext", p.key))
        if self.gate is not None:
            await self.gate.wait()
        await anyio.lowlevel.checkpoint()
        name = name_of(p.title)
        return SectionMap(
            origin="arxiv_html",
            sections={
                "1 Introduction": [Reference(title=title(f"{name}.i{j}")) for j in range(3)],
                "2 Related Work": [Reference(title=title(f"{name}.r{j}")) for j in range(3)],
            },
        )


class FakeResolver:
    """Resolves every cited title to its synthetic paper."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def resolve(self, refs: list[Reference], member: Member | None = None) -> list[Paper | None]:
        self.calls.log.append(("resolve", tuple(r.title for r in refs)))
        await anyio.lowlevel.checkpoint()
        return [paper(name_of(r.title)) for r in refs]
