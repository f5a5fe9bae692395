"""Search sources: one module per service, one small protocol for all."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from ..papers import Paper


class SearchSource(Protocol):
    """Anything that finds papers for a search query, published before a date."""

    name: str

    async def search(self, query: str, *, limit: int, before: date | None) -> list[Paper]: ...
