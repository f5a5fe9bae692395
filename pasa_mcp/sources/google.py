"""Google through serper.dev, as upstream PaSa searched: arXiv ids from result links, metadata from arXiv.

The query is `"{query} before:YYYY-MM-DD site:arxiv.org"`; ids come from the organic results' links
(abs, pdf, html; old- and new-style; any version), and all of them are looked up in one batched
arXiv API request. The API key travels only in the `X-API-KEY` header, never in a message.
"""

from __future__ import annotations

from datetime import date, timedelta

from ..config import Settings
from ..net import Net, SourceRejected
from ..papers import Paper, normalize_arxiv_id
from .arxiv import ArxivAPI


def serper_query(query: str, before: date | None, after: date | None = None) -> str:
    """Google's date operators are exclusive: `after:` names the day before the first one wanted."""
    bound = f" before:{before.isoformat()}" if before else ""
    bound += f" after:{(after - timedelta(days=1)).isoformat()}" if after else ""
    return f"{query}{bound} site:arxiv.org"


def arxiv_ids(results: object) -> list[str]:
    """arXiv ids of a serper.dev `/search` answer's organic results, in rank order, without repeats."""
    if not isinstance(results, dict) or not isinstance(results.get("organic", []), list):
        raise ValueError("serper.dev answered with something other than search results")
    ids: list[str] = []
    for item in results.get("organic", []):
        link = item.get("link") if isinstance(item, dict) else None
        if (arxiv_id := normalize_arxiv_id(link)) and arxiv_id not in ids:
            ids.append(arxiv_id)
    return ids


class GoogleSearch:
    """Google (serper.dev) restricted to arxiv.org, with arXiv API metadata."""

    name = "google"
    filters_categories = False  # papers of other categories are dropped where theirs are known

    def __init__(self, net: Net, settings: Settings, arxiv: ArxivAPI) -> None:
        self.net = net
        self.url = f"{settings.serper_url.rstrip('/')}/search"
        self._key = settings.serper_api_key
        self.arxiv = arxiv

    async def search(self, query: str, *, limit: int, before: date | None, after: date | None = None) -> list[Paper]:
        if self._key is None or not self._key.get_secret_value():
            raise ValueError("Google search needs a serper.dev API key (set SERPER_API_KEY)")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        try:
            answer = await self.net.request(
                "google",
                "POST",
                self.url,
                headers={"X-API-KEY": self._key.get_secret_value()},
                json={"q": serper_query(query, before, after), "num": limit},
                parse=lambda response: response.json(),
            )
        except SourceRejected as exc:
            if exc.status not in (401, 403):
                raise
            raise exc.key_refused("SERPER_API_KEY") from None
        ids = arxiv_ids(answer)[:limit]
        found = await self.arxiv.papers(ids, gather=True) if ids else {}  # one request for all the searches
        return [found[i].model_copy(update={"sources": ["google", *found[i].sources]}) for i in ids if i in found]
