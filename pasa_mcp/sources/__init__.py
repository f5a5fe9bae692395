"""Search sources: one module per service, one small protocol for all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from ..categories import kept
from ..papers import Paper
from ..store import Store

STOOD_IN_TTL = 60.0  # seconds a stand-in's answer is cached: for runs at the same time, not for the next


class StoodIn(list[Paper]):
    """What another source found for a source that is down (`by`: its name; `why`: the source's
    failure). `cached_search` keeps it for STOOD_IN_TTL only, so that the source's own answer replaces
    it once the source is back, and passes the mark on to its caller, which reports it."""

    def __init__(self, papers: Sequence[Paper], *, by: str, why: str) -> None:
        super().__init__(papers)
        self.by, self.why = by, why


class SearchSource(Protocol):
    """Anything that finds papers for a search query, published before a date (and from a date).

    A source with `filters_categories` also takes `categories=` (arXiv categories) in `search`.
    """

    name: str
    filters_categories: bool

    async def search(
        self, query: str, *, limit: int, before: date | None, after: date | None = None
    ) -> list[Paper]: ...


async def cached_search(
    source: SearchSource,
    store: Store,
    query: str,
    *,
    limit: int,
    before: date | None,
    ttl: float,
    after: date | None = None,
    categories: Sequence[str] = (),
) -> list[Paper]:
    """`source.search` behind the store: fresh cached results are served without a request.

    Found papers are merged into the store, so the returned records carry what every source knows.
    `categories` go to a source that filters by them; from any source, papers whose known categories
    miss them all are dropped (`categories.kept`). A stand-in's answer (`StoodIn`) is cached briefly.
    """
    pushed = list(categories) if source.filters_categories else []
    cached_as = source.name + (f"[{','.join(pushed)}]" if pushed else "")  # a filtered search is another search
    keys = await store.call(store.get_search, cached_as, query, before, limit, after)
    merged: list[Paper] | None = None
    stood_in: StoodIn | None = None
    if keys is not None:
        known = await store.call(store.get_papers, keys)
        if len(known) == len(keys):
            merged = [known[key] for key in keys]
    if merged is None:
        extra = {"categories": pushed} if pushed else {}
        papers = await source.search(query, limit=limit, before=before, after=after, **extra)
        merged = await store.call(store.upsert_papers, papers)
        stood_in = papers if isinstance(papers, StoodIn) else None
        keep = min(ttl, STOOD_IN_TTL) if stood_in is not None else ttl
        await store.call(store.put_search, cached_as, query, before, limit, [p.key for p in merged], keep, after)
    found = [p for p in merged if kept(p.categories, categories)]
    return StoodIn(found, by=stood_in.by, why=stood_in.why) if stood_in is not None else found
