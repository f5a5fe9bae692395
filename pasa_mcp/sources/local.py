"""The local paper index as a search source: BM25 over titles and abstracts, no request at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from ..index.db import LocalIndex
from ..papers import Paper


class LocalSearch:
    """Searches `pasa-mcp index`'s index; safe to share between concurrent runs."""

    name = "local"
    filters_categories = True

    def __init__(self, index: LocalIndex) -> None:
        self.index = index

    async def search(
        self, query: str, *, limit: int, before: date | None, after: date | None = None, categories: Sequence[str] = ()
    ) -> list[Paper]:
        return await self.index.call(
            self.index.search, query, limit=limit, before=before, after=after, categories=categories
        )
