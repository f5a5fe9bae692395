"""The arXiv API (Atom feeds): search with a submission-date bound, batched id and title lookups.

We speak the Atom format directly rather than use the `arxiv` package: that package is synchronous
(requests), keeps its own HTTP session and paces requests per `Client` object, so several runs in
one process would each keep their own 3-second clock, and every call would need a worker thread.
Here every request goes through `Net` ("arxiv" host: one process-wide pacer, one connection,
Retry-After honoured), and the standard library's ElementTree parses the feed (expat resolves no
external entities and refuses entity expansion bombs).

At 3 s a request, arXiv's cost is the number of requests: id and title lookups of concurrent callers
are merged into full requests by a `Coalescer`. The metadata lookups of a deep search's searches
share one request (`layers.SEARCHES`), as the cited ids of each layer do (`layers.Layer`).

When the API is unavailable, id lookups are answered by a stand-in (Semantic Scholar, which keeps
every arXiv paper's id, published ones too, and looks up 500 a request): its papers lack only their
versions (arXiv's HTML is then reached through its redirect). The ids it lacks are left out but kept
in `unconfirmed`, so that none is taken for an id arXiv does not know (the resolver remembers no miss
for them); when it knows none of them, the API's failure stands.

When the API's search is unavailable (failed every retry, or resting), another search source answers
instead (`search_stand_ins`, the first that answers): a deep search degrades rather than ending with
"no search answered". The stand-in searches the same words and dates (publication dates, where arXiv
bounds submission dates); its papers keep the arXiv ids it knows (OpenAlex reads them from a work's
arXiv DOI or location, Semantic Scholar from its external ids), so they are still expanded through
arXiv's HTML. Its answer is cached briefly only (`StoodIn`), and the host's rest is what tells the
run's reader that arXiv was down (`Net.notices`). A rejected query (4xx) is not handed on: it is no
outage. When every stand-in fails too, arXiv's own failure is raised.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar
from urllib.parse import quote_plus

import anyio

from ..categories import arxiv_clause
from ..config import Settings
from ..layers import SEARCHES
from ..net import Net, SourceRejected, SourceUnavailable
from ..papers import Paper, normalize_arxiv_id
from ..titles import best_match, normalize_title
from . import SearchSource, StoodIn

if TYPE_CHECKING:
    from ..index.db import LocalIndex


class IdStandIn(Protocol):
    """A source that finds papers by `ARXIV:id` in batches (Semantic Scholar), asked while arXiv's API is down."""

    async def papers(self, ids: list[str]) -> dict[str, Paper]: ...


_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"

ID_BATCH = 100  # ids per id_list request (the API pages at 100 comfortably; more only adds latency)
EMPTY_RETRIES = 2  # extra tries when an id lookup comes back as an empty feed
TITLES_PER_QUERY = 40  # titles OR-ed into one title search (200 titles: 5 requests, not 200)
RESULTS_PER_TITLE = 4  # max_results per title in a batch: room for near-namesakes ranked above the paper
MAX_QUERY_CHARS = 4000  # URL-encoded search_query; the whole URL stays well under common 8 KB limits
TITLE_WORDS = 16  # a long title's phrase is cut to its first words: still a contiguous phrase of it
STAND_IN_LIMIT = 100  # most results a search stand-in is asked for (OpenAlex's and Semantic Scholar's page)
_VERSION = re.compile(r"v(\d+)$")  # an entry's id ends with the version it describes
_STOP = frozenset("a an and are as at by for from in is of on or the to with".split())


T = TypeVar("T")


class ArxivError(ValueError):
    """The API answered with its error feed (an entry titled "Error"); the message is arXiv's own."""


def parse_feed(xml: str) -> list[Paper]:
    """Papers from an arXiv Atom feed, legacy (pre-2025) or current; raises ArxivError on an error feed."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"arXiv API returned malformed Atom: {exc}") from None
    if root.tag != f"{_ATOM}feed":
        raise ValueError(f"arXiv API returned XML that is not an Atom feed (root <{root.tag}>)")
    papers = []
    for entry in root.iter(f"{_ATOM}entry"):
        entry_id = entry.findtext(f"{_ATOM}id", "")
        if "/api/errors" in entry_id:
            raise ArxivError(f"arXiv API error: {_text(entry, 'summary') or entry_id}")
        arxiv_id = normalize_arxiv_id(entry_id)
        if arxiv_id is None:
            raise ValueError(f"arXiv API returned an entry without an arXiv id: {entry_id!r}")
        published = _text(entry, "published")
        version = _VERSION.search(entry_id)
        papers.append(
            Paper(
                title=_text(entry, "title"),
                abstract=_text(entry, "summary"),
                arxiv_id=arxiv_id,
                arxiv_version=int(version.group(1)) if version else None,
                doi=entry.findtext(f"{_ARXIV}doi"),
                authors=[name for a in entry.iter(f"{_ATOM}author") if (name := _text(a, "name"))],
                published=date.fromisoformat(published[:10]) if published else None,
                venue=" ".join(entry.findtext(f"{_ARXIV}journal_ref", "").split()) or None,
                url=f"https://arxiv.org/abs/{arxiv_id}",
                sources=["arxiv"],
                categories=[term for c in entry.iter(f"{_ATOM}category") if (term := c.get("term"))],
            )
        )
    return papers


def _text(element: ET.Element, tag: str) -> str:
    return " ".join(element.findtext(f"{_ATOM}{tag}", "").split())


def search_query(query: str, before: date | None, after: date | None = None, categories: Sequence[str] = ()) -> str:
    """`all:` terms joined by AND (stop words dropped), bounded by submission date when `before` or
    `after` is set, and to `categories` (`cat:` terms OR-ed) when given.

    `before` is exclusive, like Google's `before:`: the range ends at 23:59 GMT the day before;
    `after` is inclusive: it starts at 00:00 GMT that day.
    """
    words = re.findall(r"[^\W_]+", query)
    terms = [w for w in words if w.lower() not in _STOP] or words
    if not terms:
        raise ValueError(f"search query has no words to search for: {query!r}")
    text = " AND ".join(f"all:{term}" for term in terms)
    bounds = [arxiv_clause(categories)] if categories else []
    if before is not None or after is not None:
        first = f"{after:%Y%m%d}0000" if after else "190001010000"
        last = f"{before - timedelta(days=1):%Y%m%d}2359" if before else "299912312359"
        bounds.append(f"submittedDate:[{first} TO {last}]")
    return " AND ".join([f"({text})", *bounds]) if bounds else text


def title_phrase(title: str) -> str | None:
    """A title as a `ti:` phrase: words only (quotes and brackets would break the query), or None."""
    words = normalize_title(title).split()[:TITLE_WORDS]
    return f'ti:"{" ".join(words)}"' if words else None


def title_batches(phrases: list[str]) -> list[list[str]]:
    """Phrases grouped into OR queries of at most TITLES_PER_QUERY titles and MAX_QUERY_CHARS (encoded)."""
    batches: list[list[str]] = []
    size = 0
    for phrase in phrases:
        cost = len(quote_plus(phrase)) + len(quote_plus(" OR "))
        if not batches or len(batches[-1]) >= TITLES_PER_QUERY or size + cost > MAX_QUERY_CHARS:
            batches.append([])
            size = 0
        batches[-1].append(phrase)
        size += cost
    return batches


@dataclass(eq=False)
class _Lookup(Generic[T]):
    left: dict[str, None]  # keys not answered yet, in the caller's order
    found: dict[str, T | None] = field(default_factory=dict)
    error: Exception | None = None


class Coalescer(Generic[T]):
    """Merges the lookups of concurrent callers into full requests.

    Callers take turns; whoever holds the turn sends the oldest waiting keys (its own and other
    callers'), as many as `take` puts in one request. Keys that arrive while a request waits for
    arXiv's pacer ride in the next one. A failed request fails every caller whose keys it carried;
    a cancelled caller withdraws its keys.
    """

    def __init__(
        self, fetch: Callable[[list[str]], Awaitable[Mapping[str, T]]], take: Callable[[list[str]], list[str]]
    ) -> None:
        self._fetch, self._take = fetch, take
        self._waiting: dict[str, list[_Lookup[T]]] = {}  # key -> callers waiting for it, oldest key first
        self._turn = anyio.Lock()

    async def get(self, keys: Iterable[str]) -> dict[str, T | None]:
        """`fetch`'s answer for each key (None where it had none)."""
        lookup: _Lookup[T] = _Lookup(dict.fromkeys(keys))
        for key in lookup.left:
            self._waiting.setdefault(key, []).append(lookup)
        try:
            while lookup.left:
                async with self._turn:
                    if lookup.error is not None:
                        raise lookup.error
                    if lookup.left:
                        await self._send()
        finally:
            for key in lookup.left:
                if lookup in (waiting := self._waiting.get(key, [])):
                    waiting.remove(lookup)
                    if not waiting:
                        del self._waiting[key]
        return lookup.found

    async def _send(self) -> None:
        batch = self._take(list(self._waiting))
        try:
            found = await self._fetch(batch)
        except Exception as exc:
            for key in batch:
                for lookup in self._waiting.pop(key, []):
                    lookup.error = exc
            raise
        for key in batch:
            for lookup in self._waiting.pop(key, []):
                lookup.found[key] = found.get(key)
                del lookup.left[key]


class ArxivAPI:
    """The arXiv export API; every request through the process-wide "arxiv" host."""

    name = "arxiv"
    filters_categories = True

    def __init__(
        self,
        net: Net,
        settings: Settings,
        local: LocalIndex | None = None,
        stand_in: IdStandIn | None = None,
        search_stand_ins: Sequence[SearchSource] = (),
    ) -> None:
        self.net = net
        self.url = settings.arxiv_api_url
        self.local = local  # the local paper index answers id lookups first
        self.stand_in = stand_in  # answers id lookups while the API is unavailable (module docstring)
        self.search_stand_ins = list(search_stand_ins)  # search in turn while the API's search is unavailable
        self.unconfirmed: set[str] = set()  # ids asked while the API was down that the stand-in lacked
        self._ids = Coalescer(self._fetch_ids, lambda ids: ids[:ID_BATCH])
        self._titles = Coalescer(self._fetch_phrases, lambda phrases: title_batches(phrases)[0])

    async def _get(self, params: dict[str, str | int], what: str) -> list[Paper]:
        try:
            return await self.net.request("arxiv", "GET", self.url, params=params, parse=lambda r: parse_feed(r.text))
        except SourceRejected as exc:
            # The 400 body is arXiv's error feed, which SourceRejected does not keep: say what we sent.
            raise SourceRejected(exc.host, exc.status, f"for {what}") from exc

    async def search(
        self, query: str, *, limit: int, before: date | None, after: date | None = None, categories: Sequence[str] = ()
    ) -> list[Paper]:
        """Papers matching all words of `query`, by relevance, submitted before `before` (from `after`),
        listed in any of `categories`."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        q = search_query(query, before, after, categories)
        params: dict[str, str | int] = {
            "search_query": q,
            "start": 0,
            "max_results": limit,
            "sortBy": "relevance",
            "sortOrder": "descending",
        }
        try:
            return (await self._get(params, f"search_query={q}"))[:limit]
        except SourceUnavailable as exc:
            found = await self._search_stood_in(
                query, str(exc), limit=limit, before=before, after=after, categories=categories
            )
            if found is None:
                raise
            return found

    async def _search_stood_in(
        self, query: str, why: str, *, limit: int, before: date | None, after: date | None, categories: Sequence[str]
    ) -> StoodIn | None:
        """The answer of the first search stand-in that answers (module docstring), marked with `why`
        arXiv did not answer; None when all fail.

        Categories go to a stand-in that filters by them; `cached_search` drops the others' papers of
        other known categories."""
        for source in self.search_stand_ins:
            extra = {"categories": list(categories)} if categories and source.filters_categories else {}
            try:
                found = await source.search(
                    query, limit=min(limit, STAND_IN_LIMIT), before=before, after=after, **extra
                )
            except (SourceUnavailable, SourceRejected):
                continue
            return StoodIn(found[:limit], by=source.name, why=why)
        return None

    async def papers(self, ids: Iterable[str], *, gather: bool = False) -> dict[str, Paper]:
        """Metadata by arXiv id (any form: bare, `arXiv:`, URL, versioned; old- and new-style).

        Keys are the normalised ids (no version); ids arXiv does not know are absent. Raises
        ValueError naming any id that is not an arXiv id, before sending anything. `gather`: inside a
        deep search's search (`layers.SEARCHES`), share one request with its other searches.
        """
        normalized = {raw: normalize_arxiv_id(raw) for raw in ids}
        if bad := [raw for raw, arxiv_id in normalized.items() if arxiv_id is None]:
            raise ValueError(f"not arXiv ids: {', '.join(map(repr, bad))}")
        wanted = list(dict.fromkeys(arxiv_id for arxiv_id in normalized.values() if arxiv_id))
        local = await self.local.call(self.local.papers_by_arxiv, wanted) if self.local and wanted else {}
        rest = [i for i in wanted if i not in local]
        if not rest:
            return local
        member = SEARCHES.get() if gather else None
        return local | await (member.arxiv_papers(rest, self._lookup) if member else self._lookup(rest))

    async def _lookup(self, ids: list[str]) -> dict[str, Paper]:
        try:
            found = await self._ids.get(ids)
        except SourceUnavailable as down:
            if self.stand_in is None:
                raise
            return await self._stood_in(ids, down)
        self.unconfirmed.difference_update(ids)
        return {arxiv_id: paper for arxiv_id, paper in found.items() if paper is not None}

    async def _stood_in(self, ids: list[str], down: SourceUnavailable) -> dict[str, Paper]:
        """The stand-in's papers for `ids` (those it lacks become `unconfirmed`); the API's failure when
        it has none of them or fails too."""
        assert self.stand_in is not None
        try:
            known = await self.stand_in.papers([f"ARXIV:{arxiv_id}" for arxiv_id in ids])
        except (SourceUnavailable, SourceRejected):
            raise down from None
        found = {arxiv_id: paper for arxiv_id in ids if (paper := known.get(f"ARXIV:{arxiv_id}"))}
        if not found:
            raise down
        self.unconfirmed.update(arxiv_id for arxiv_id in ids if arxiv_id not in found)
        return found

    async def _fetch_ids(self, batch: list[str]) -> dict[str, Paper]:
        params: dict[str, str | int] = {"id_list": ",".join(batch), "start": 0, "max_results": len(batch)}
        shown = ",".join(batch[:3]) + (f",... ({len(batch)} ids)" if len(batch) > 3 else "")
        for _ in range(1 + EMPTY_RETRIES):
            papers = await self._get(params, f"id_list={shown}")
            if papers:  # arXiv now and then answers valid ids with an empty feed
                break
        return {p.arxiv_id: p for p in papers if p.arxiv_id in batch}

    async def search_titles(self, titles: Iterable[str]) -> dict[str, Paper | None]:
        """The arXiv paper for each title, or None: many titles per request (`ti:"a" OR ti:"b"`).

        A hit is accepted only by `titles.titles_match`; the best match among the entries of the
        request that carried the title wins.
        """
        phrases = {title: title_phrase(title) for title in titles}
        candidates = await self._titles.get(phrase for phrase in phrases.values() if phrase)
        return {
            title: best_match(title, candidates.get(phrase) or []) if phrase else None
            for title, phrase in phrases.items()
        }

    async def _fetch_phrases(self, phrases: list[str]) -> dict[str, list[Paper]]:
        """Each phrase -> every entry of the one request that carried them all (arXiv does not say which
        clause an entry matched)."""
        params: dict[str, str | int] = {
            "search_query": " OR ".join(phrases),
            "start": 0,
            "max_results": len(phrases) * RESULTS_PER_TITLE,
            "sortBy": "relevance",
            "sortOrder": "descending",
        }
        entries = await self._get(params, f"a title search of {len(phrases)} titles")
        return dict.fromkeys(phrases, entries)
