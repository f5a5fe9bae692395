"""Crossref's bibliographic query: the work a whole reference string names.

Used only to resolve bibliography entries that name no title of their own ("A. Name, Phys. Rev.
Lett. 81, 2514 (1998)."): `query.bibliographic` is Crossref's search made for exactly such strings.
Every request goes through `Net` as host "crossref"; `mailto` puts it in Crossref's polite pool.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..config import Settings
from ..net import Net
from ..papers import Paper

NAME = "crossref"
CANDIDATES = 3  # best-scored works returned for a reference string; titles.reference_matches checks them
SELECT = "DOI,title,author,issued,container-title,URL"


def paper_from_item(item: dict[str, Any]) -> Paper | None:
    """A `Paper` from one Crossref work item; None for an item without a title."""
    title = " ".join(item.get("title") or [])
    if not title.strip():
        return None
    authors = [" ".join(p for p in (a.get("given"), a.get("family")) if p) for a in item.get("author") or []]
    parts = ((item.get("issued") or {}).get("date-parts") or [[None]])[0]
    year = parts[0] if parts and isinstance(parts[0], int) else None
    return Paper(
        title=title,
        doi=item.get("DOI"),
        authors=[a for a in authors if a],
        published=date(year, 1, 1) if year else None,
        venue=next(iter(item.get("container-title") or []), None),
        url=item.get("URL"),
        sources=[NAME],
    )


class Crossref:
    """The Crossref REST API's works search by whole reference string."""

    name = NAME

    def __init__(self, net: Net, settings: Settings) -> None:
        self._net = net
        self._base = settings.crossref_url.rstrip("/")
        self._mailto = {"mailto": settings.crossref_mailto} if settings.crossref_mailto else {}

    async def search_reference(self, text: str) -> list[Paper]:
        """The works Crossref scores best for the reference string `text`, best first."""
        if not text.strip():
            raise ValueError("Crossref's bibliographic query needs a non-empty reference")
        params = {"query.bibliographic": text, "rows": CANDIDATES, "select": SELECT, **self._mailto}
        body = await self._net.request(NAME, "GET", f"{self._base}/works", params=params, parse=lambda r: r.json())
        items = (body.get("message") or {}).get("items") or []
        return [p for item in items if (p := paper_from_item(item))]
