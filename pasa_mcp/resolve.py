"""Cited references -> papers: their own ids, then the store, then remote title search, all batched.

Order per call: a reference's own arXiv id or DOI (the store, then one batched arXiv id lookup);
then by title: the resolutions cache (hits and misses), the store's title keys, the local full-text
index, arXiv title search (many titles per request) and finally the configured title matchers
(Semantic Scholar's /paper/search/match, OpenAlex). Identical titles are looked up once per call.

A remote or full-text candidate is accepted only when `titles_match`: the normalised titles
(Unicode folded, accents and braces dropped, lower case, runs of anything but letters and digits as
one space) or PaSa's title keys are equal, or their rapidfuzz ratio reaches FUZZY_THRESHOLD. At 95 it
admits a typo or a dropped word in a long title, and rejects "Attention is not all you need" for
"Attention is all you need" (92.6) and "... for image restoration" for "... for image recognition"
(90.9).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import anyio
from rapidfuzz import fuzz

from .papers import Paper, Reference, normalize_arxiv_id, normalize_doi, title_key
from .store import Store

if TYPE_CHECKING:
    from .sources.arxiv import ArxivAPI

FUZZY_THRESHOLD = 95.0  # rapidfuzz ratio (0-100) of normalised titles
HIT_TTL = 90 * 86400.0  # seconds a remote match is remembered
MISS_TTL = 7 * 86400.0  # a miss is retried sooner: the paper may appear, or a source may come back
FTS_WORDS = 3  # words per local full-text query (FTS5 ANDs them), taken longest first ...
FTS_QUERIES = 2  # ... in two disjoint groups, so one misspelt or variant word does not hide the paper
FTS_CANDIDATES = 10  # best-ranked rows per query that the fuzzy rule then checks


class DoiLookup(Protocol):
    """A source that finds papers by DOI in batches (OpenAlex)."""

    async def papers_by_doi(self, dois: list[str]) -> dict[str, Paper]: ...


class TitleMatcher(Protocol):
    """A remote source that finds the one paper with a given title (or None)."""

    name: str

    async def match_title(self, title: str) -> Paper | None: ...


def normalize_title(title: str) -> str:
    """Lower case words of letters and digits; BibTeX's case-protecting braces ("{BERT}") dropped."""
    folded = unicodedata.normalize("NFKD", title.replace("{", "").replace("}", ""))
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def title_similarity(a: str, b: str) -> float:
    """Rapidfuzz ratio (0-100) of the normalised titles."""
    return fuzz.ratio(normalize_title(a), normalize_title(b))


def titles_match(a: str, b: str) -> bool:
    """True when two titles name the same paper (see the module docstring for the rule)."""
    na, nb = normalize_title(a), normalize_title(b)
    if not na or not nb:
        return False
    if na == nb or title_key(a) == title_key(b):
        return True
    return fuzz.ratio(na, nb, score_cutoff=FUZZY_THRESHOLD) > 0


def best_match(title: str, candidates: Sequence[Paper]) -> Paper | None:
    """The candidate whose title matches `title` best, or None when none matches."""
    matching = [p for p in candidates if titles_match(title, p.title)]
    return max(matching, key=lambda p: title_similarity(title, p.title), default=None)


def _fts_queries(title: str) -> list[str]:
    words = sorted(set(normalize_title(title).split()), key=lambda w: (-len(w), w))
    groups = [words[i : i + FTS_WORDS] for i in range(0, FTS_WORDS * FTS_QUERIES, FTS_WORDS)]
    return [" ".join(group) for group in groups if group]


def _id_keys(ref: Reference) -> list[str]:
    """The paper keys a reference gives itself: its arXiv id, then its DOI."""
    arxiv_id, doi = normalize_arxiv_id(ref.arxiv_id), normalize_doi(ref.doi)
    return ([f"arxiv:{arxiv_id}"] if arxiv_id else []) + ([f"doi:{doi}"] if doi else [])


class Resolver:
    """Resolves references to papers, remembering hits and misses in the store."""

    def __init__(
        self,
        store: Store,
        arxiv: ArxivAPI | None,
        matchers: Sequence[TitleMatcher] = (),
        *,
        dois: DoiLookup | None = None,
        hit_ttl: float = HIT_TTL,
        miss_ttl: float = MISS_TTL,
    ) -> None:
        self.store = store
        self.arxiv = arxiv
        self.matchers = list(matchers)
        self.dois = dois
        self.hit_ttl, self.miss_ttl = hit_ttl, miss_ttl

    async def resolve(self, refs: Sequence[Reference]) -> list[Paper | None]:
        """The paper each reference cites, or None, in the order given."""
        results: list[Paper | None] = list(await self._by_ids(refs))
        pending: dict[str, str] = {}
        for ref, paper in zip(refs, results, strict=True):
            if paper is None and (key := title_key(ref.title)):
                pending.setdefault(key, ref.title)
        by_title = await self._by_titles(pending)
        return [paper or by_title.get(title_key(ref.title)) for ref, paper in zip(refs, results, strict=True)]

    async def _by_ids(self, refs: Sequence[Reference]) -> list[Paper | None]:
        """Papers by the references' own arXiv ids and DOIs: the store, then batched arXiv and DOI lookups."""
        keys = [_id_keys(ref) for ref in refs]
        known = await self.store.call(self.store.get_papers, {key for ref_keys in keys for key in ref_keys})
        unknown = [ref_keys for ref_keys in keys if not any(key in known for key in ref_keys)]
        # Ids that earlier lookups did not find are remembered misses (the resolutions cache, keyed
        # by the paper key): asking again would only cost paced requests.
        wanted = {key for ref_keys in unknown for key in ref_keys}
        remembered = await self.store.call(self.store.get_resolutions, wanted)
        wanted -= {key for key, hit in remembered.items() if hit is None}
        misses: set[str] = set()
        arxiv_ids = {key.removeprefix("arxiv:") for key in wanted if key.startswith("arxiv:")}
        if arxiv_ids and self.arxiv is not None:
            fetched = await self.arxiv.papers(sorted(arxiv_ids))
            for paper in await self.store.call(self.store.upsert_papers, fetched.values()):
                known[paper.key] = paper
            misses |= {f"arxiv:{i}" for i in arxiv_ids if i not in fetched}
        unknown = [ref_keys for ref_keys in unknown if not any(key in known for key in ref_keys)]
        dois = {
            key.removeprefix("doi:")
            for ref_keys in unknown
            for key in ref_keys
            if key in wanted and key.startswith("doi:")
        }
        if dois and self.dois is not None:
            by_doi = await self.dois.papers_by_doi(sorted(dois))
            for paper in await self.store.call(self.store.upsert_papers, by_doi.values()):
                # A paper found by DOI may carry an arXiv id: its key is then arxiv:, so index the DOI too.
                known[paper.key] = known[f"doi:{paper.doi}"] = paper
            misses |= {f"doi:{d}" for d in dois if d not in by_doi}
        if misses:
            await self.store.call(self.store.put_resolutions, dict.fromkeys(misses), self.miss_ttl, self.hit_ttl)
        return [next((known[key] for key in ref_keys if key in known), None) for ref_keys in keys]

    async def _by_titles(self, pending: dict[str, str]) -> dict[str, Paper | None]:
        """Title key -> paper (or None) for each pending title."""
        found, rest = await self.store.call(self._local, pending)
        remote = self.arxiv is not None or bool(self.matchers)
        if not rest or not remote:
            return found
        hits: list[tuple[str, Paper]] = []
        if self.arxiv is not None:
            matched = await self.arxiv.search_titles(rest.values())
            hits += [(key, paper) for key, title in rest.items() if (paper := matched[title])]
        for matcher in self.matchers:
            done = {key for key, _ in hits}
            hits += await self._match(matcher, {key: title for key, title in rest.items() if key not in done})
        keys = [key for key, _ in hits]
        merged = await self.store.call(self.store.upsert_papers, [paper for _, paper in hits])
        resolved: dict[str, str | None] = dict.fromkeys(rest)
        for key, paper in zip(keys, merged, strict=True):
            found[key] = paper
            resolved[key] = paper.key
        await self.store.call(self.store.put_resolutions, resolved, self.miss_ttl, self.hit_ttl)
        return found

    def _local(self, pending: dict[str, str]) -> tuple[dict[str, Paper | None], dict[str, str]]:
        """Runs in the store's worker thread: cached resolutions, title keys, full-text index."""
        found: dict[str, Paper | None] = {}
        rest: dict[str, str] = {}
        cached = self.store.get_resolutions(pending)
        for key, title in pending.items():
            if key in cached and cached[key] is None:
                found[key] = None
                continue
            paper = self.store.get_paper(cached[key]) if cached.get(key) else None
            paper = paper or self.store.find_by_title(title)
            if paper is None:
                candidates = [p for q in _fts_queries(title) for p in self.store.search_papers(q, FTS_CANDIDATES)]
                paper = best_match(title, candidates)
            if paper is None:
                rest[key] = title
            found[key] = paper
        return found, rest

    async def _match(self, matcher: TitleMatcher, titles: dict[str, str]) -> list[tuple[str, Paper]]:
        hits: list[tuple[str, Paper]] = []

        async def one(key: str, title: str) -> None:
            paper = await matcher.match_title(title)
            if paper is not None and titles_match(title, paper.title):
                hits.append((key, paper))

        async with anyio.create_task_group() as tg:
            for key, title in titles.items():
                tg.start_soon(one, key, title)
        return hits
