"""The crawler-recall bound: which answers the PaSa loop can reach in this world at all.

`reachable` replays the loop of PROTOCOL section 5 on the world's ground truth: the scripted
crawler's queries, the simulated Google's results (`before:` end date, `site:arxiv.org`), the
scripted crawler's section choices, a noise-free selector ordering each layer, the PaSa limits, and
every cited paper resolved correctly (or, with `resolution="services"`, only the citations the
world's own services can resolve). An agent that follows the protocol against this world with a
noise-free selector crawls exactly these papers; anything less is the agent's loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pasa_mcp.protocol import parse_queries

from .corpus import Corpus
from .engines import google, title_match
from .layout import BibItem, layout_of
from .models import expand_choice, p_true, search_queries, section_targets


@dataclass(frozen=True)
class Limits:
    """The agent's limits (pasa_mcp.config.Settings defaults, the upstream ones)."""

    search_queries: int = 5
    search_papers: int = 10
    expand_layers: int = 2
    expand_papers: int = 20


@dataclass(frozen=True)
class Reach:
    answers: frozenset[int]  # the planted answers (paper indices)
    searched: frozenset[int]  # papers the searches return (depth 0)
    crawled: frozenset[int]  # every paper the loop touches

    @property
    def found(self) -> frozenset[int]:
        return self.answers & self.crawled

    @property
    def by_search(self) -> frozenset[int]:
        return self.answers & self.searched

    @property
    def bound(self) -> float:
        """The best crawler recall any run can reach: |answers reached| / |answers|."""
        return len(self.found) / len(self.answers) if self.answers else 0.0


def end_date(row: Mapping[str, object]) -> str:
    """A query's end date as PaSa uses it: the source paper's publication day minus 7 days."""
    meta = row["source_meta"]
    assert isinstance(meta, Mapping)
    published = datetime.strptime(str(meta["published_time"]), "%Y%m%d").date()
    return (published - timedelta(days=7)).isoformat()


def crawl(
    queries: Sequence[str],
    search: Callable[[str], Iterable[int]],
    sections: Callable[[int], Mapping[str, Iterable[int]]],
    choose: Callable[[int, Mapping[str, Iterable[int]]], Iterable[str]],
    score: Callable[[int], float],
    limits: Limits,
    expanded: list[list[int]] | None = None,
) -> tuple[frozenset[int], frozenset[int]]:
    """The PaSa loop on a citation graph: (papers found by search, every paper touched).

    Depth 0 is the union of the searches; each of `expand_layers` layers expands the papers the
    previous step added, best `score` first (all of them at depth 0, the top `expand_papers` later),
    following the sections `choose` picks; a paper already seen is never added again. `expanded`, if
    given, receives the papers each layer expands.
    """
    seen: dict[int, None] = {}
    for query in queries[: limits.search_queries]:
        seen.update(dict.fromkeys(i for i in search(query) if i not in seen))
    searched = frozenset(seen)
    layer = list(seen)
    for depth in range(limits.expand_layers):
        ordered = sorted(layer, key=score, reverse=True)
        if depth > 0:
            ordered = ordered[: limits.expand_papers]
        if expanded is not None:
            expanded.append(ordered)
        added: dict[int, None] = {}
        for i in ordered:
            found = sections(i)
            for name in choose(i, found):
                added.update(dict.fromkeys(t for t in found[name] if t not in seen and t not in added))
        seen.update(added)
        layer = list(added)
    return searched, frozenset(seen)


def findable(corpus: Corpus, item: BibItem) -> bool:
    """Whether a client of this world's services can resolve a bibliography entry to its paper.

    True when the entry writes the paper's arXiv id or DOI, or when Semantic Scholar's title match
    finds the paper from the title as written (so typos pass, most abbreviations do not).
    """
    if item.findable is None:
        paper = None if item.target is None else corpus.papers[item.target]
        if paper is None:
            item.findable = False
        elif (paper.arxiv_id and paper.arxiv_id in item.venue) or (paper.doi and paper.doi in item.venue):
            item.findable = True
        else:
            match = title_match(corpus, item.title)
            item.findable = match is not None and match[0].idx == paper.idx
    return item.findable


def reachable(
    corpus: Corpus,
    row: Mapping[str, object],
    limits: Limits | None = None,
    *,
    references: bool = True,
    resolution: Literal["perfect", "services"] = "perfect",
) -> Reach:
    """The bound for one dataset row.

    `references=False`: papers without HTML cannot be expanded (no reference-list fallback).
    `resolution="services"`: a cited paper is reached only if `findable` (else every citation resolves).
    """
    limits = limits or Limits()
    question = str(row["question"])
    ids = row["answer_arxiv_id"]
    assert isinstance(ids, list)
    before = end_date(row)
    output = "".join(f"[Search] {q}\n" for q in search_queries(corpus, question)) + "[StopSearch]"

    def search(query: str) -> list[int]:
        hits = google(corpus, f"{query} before:{before} site:arxiv.org", limits.search_papers)
        return [hit.paper.idx for hit in hits if hit.paper is not None]

    def sections(i: int) -> Mapping[str, set[int]]:
        paper = corpus.papers[i]
        if resolution == "services" and (paper.arxiv_html or paper.ar5iv):
            return layout_of(corpus, paper).section_map(lambda item: findable(corpus, item))
        return section_targets(corpus, paper) if paper.arxiv_html or paper.ar5iv or references else {}

    def choose(i: int, found: Mapping[str, Iterable[int]]) -> list[str]:
        return expand_choice(corpus, corpus.papers[i], question, list(found))

    def score(i: int) -> float:
        return p_true(corpus, question, corpus.papers[i], corpus.papers[i].title, 0.0)

    searched, crawled = crawl(parse_queries(output, limits.search_queries), search, sections, choose, score, limits)
    return Reach(frozenset(corpus.by_arxiv[i] for i in ids), searched, crawled)
