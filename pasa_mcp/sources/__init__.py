"""Search sources: one module per service, one small protocol for all."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from ..papers import Paper
from ..store import Store


class SearchSource(Protocol):
    """Anything that finds papers for a search query, published before a date (and from a date)."""

    name: str

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
) -> list[Paper]:
    """`source.search` behind the store: fresh cached results are served without a request.

    Found papers are merged into the store, so the returned records carry what every source knows.
    """
    keys = await store.call(store.get_search, source.name, query, before, limit, after)
    if keys is not None:
        known = await store.call(store.get_papers, keys)
        if len(known) == len(keys):
            return [known[key] for key in keys]
    papers = await source.search(query, limit=limit, before=before, after=after)
    merged = await store.call(store.upsert_papers, papers)
    await store.call(store.put_search, source.name, query, before, limit, [p.key for p in merged], ttl, after)
    return merged
