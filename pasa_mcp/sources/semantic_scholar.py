"""Semantic Scholar Graph API: relevance search, title match, batch details and reference lists.

Every request goes through `Net` as host "semantic_scholar", so all runs in the process share one
pace (1 request/s by default, the rate S2 grants an API key). The key travels only in the
`x-api-key` header, never in a URL, error or result.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from ..config import Settings
from ..net import Net, SourceRejected, SourceUnavailable
from ..papers import Paper, Reference, normalize_doi
from ..titles import best_match

NAME = "semantic_scholar"
FIELDS = "title,abstract,externalIds,authors,year,publicationDate,venue,journal,url"
# The references edge takes paper fields of the cited paper; it rejects dotted ones like authors.name.
REFERENCE_FIELDS = "title,externalIds,authors,venue,journal,year"
MAX_SEARCH = 100  # /paper/search returns at most 100 papers a page
BATCH_SIZE = 500  # ids per POST /paper/batch
REFERENCES_PAGE = 1000  # largest page of /paper/{id}/references
MAX_OFFSET = 9999  # S2 answers HTTP 400 once offset + limit reaches 10000


def _published(publication_date: str | None, year: int | None) -> date | None:
    if publication_date:
        try:
            return date.fromisoformat(publication_date)
        except ValueError:
            pass
    return date(year, 1, 1) if year else None


def _venue(record: dict[str, Any]) -> str | None:
    """`venue`, or the journal's name where S2 leaves `venue` empty (common for journal articles)."""
    return record.get("venue") or (record.get("journal") or {}).get("name") or None


def paper_from_record(record: dict[str, Any]) -> Paper | None:
    """A `Paper` from one S2 paper record; None for a record without a title."""
    title = record.get("title")
    if not title:
        return None
    ids = record.get("externalIds") or {}
    return Paper(
        title=title,
        abstract=record.get("abstract") or "",
        arxiv_id=ids.get("ArXiv"),
        doi=ids.get("DOI"),
        s2_id=record.get("paperId"),
        authors=[a["name"] for a in record.get("authors") or [] if a.get("name")],
        published=_published(record.get("publicationDate"), record.get("year")),
        venue=_venue(record),
        url=record.get("url"),
        sources=[NAME],
    )


def _s2_id(paper: Paper) -> str | None:
    return paper.s2_id or (f"ARXIV:{paper.arxiv_id}" if paper.arxiv_id else f"DOI:{paper.doi}" if paper.doi else None)


def reference_from_record(record: dict[str, Any]) -> Reference | None:
    """A `Reference` from a cited-paper record, with a citation-like text for fuzzy resolution."""
    title = (record.get("title") or "").strip()
    if not title:
        return None
    ids = record.get("externalIds") or {}
    authors = ", ".join(a["name"] for a in record.get("authors") or [] if a.get("name"))
    parts = [authors, title, _venue(record) or "", str(record.get("year") or "")]
    return Reference(
        title=title,
        text=". ".join(p.strip().rstrip(".") for p in parts if p.strip()),
        arxiv_id=ids.get("ArXiv"),
        doi=ids.get("DOI"),
    )


class SemanticScholar:
    """The Semantic Scholar Graph API (v1) as a search source and a source of reference lists."""

    name = NAME
    filters_categories = False  # papers of other categories are dropped where theirs are known

    def __init__(self, net: Net, settings: Settings) -> None:
        self._net = net
        self._base = settings.s2_url.rstrip("/")
        key = settings.s2_api_key.get_secret_value() if settings.s2_api_key else ""
        self._headers = {"x-api-key": key} if key else {}

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self._net.request(
            NAME, method, self._base + path, headers=self._headers, parse=lambda r: r.json(), **kwargs
        )

    async def search(self, query: str, *, limit: int, before: date | None, after: date | None = None) -> list[Paper]:
        """Relevance search for papers published before `before` (exclusive), from `after` (inclusive)."""
        if not query.strip():
            raise ValueError("Semantic Scholar search needs a non-empty query")
        if not 1 <= limit <= MAX_SEARCH:
            raise ValueError(f"Semantic Scholar search limit must be 1..{MAX_SEARCH}, got {limit}")
        # S2 finds nothing for hyphenated terms; its docs advise spaces instead.
        params: dict[str, Any] = {"query": query.replace("-", " "), "fields": FIELDS, "limit": limit}
        if before or after:
            end = (before - timedelta(days=1)).isoformat() if before else ""
            params["publicationDateOrYear"] = f"{after.isoformat() if after else ''}:{end}"
        body = await self._call("GET", "/paper/search", params=params)
        return [p for record in body.get("data") or [] if (p := paper_from_record(record))]

    async def match_title(self, title: str) -> Paper | None:
        """The paper S2 matches to `title`, if `titles.titles_match` calls them one work."""
        if not title.strip():
            raise ValueError("Semantic Scholar title match needs a non-empty title")
        try:
            body = await self._call("GET", "/paper/search/match", params={"query": title, "fields": FIELDS})
        except SourceRejected as exc:
            if exc.status == 404:  # "Title match not found"
                return None
            raise
        # S2 always offers its closest paper, however far; only a matching title counts.
        return best_match(title, [p for record in body.get("data") or [] if (p := paper_from_record(record))])

    async def papers(self, ids: list[str]) -> dict[str, Paper]:
        """Details for S2 ids (`ARXIV:...`, `DOI:...`, paperId...), keyed by the id asked; unknown ids left out."""
        found: dict[str, Paper] = {}
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            body = await self._call("POST", "/paper/batch", params={"fields": FIELDS}, json={"ids": chunk})
            if not isinstance(body, list) or len(body) != len(chunk):
                raise SourceUnavailable(self._net.host(NAME).name, 1, "batch answer does not match the ids sent")
            for asked, record in zip(chunk, body, strict=True):
                if record and (paper := paper_from_record(record)):
                    found[asked] = paper
        return found

    async def papers_by_doi(self, dois: list[str]) -> dict[str, Paper]:
        """Papers by DOI, keyed by normalised DOI (the resolver's stand-in for OpenAlex's lookup)."""
        wanted = sorted({d for doi in dois if (d := normalize_doi(doi))})
        found = await self.papers([f"DOI:{doi}" for doi in wanted])
        return {doi: paper for doi in wanted if (paper := found.get(f"DOI:{doi}"))}

    async def citing(self, paper: Paper, *, offset: int, limit: int) -> tuple[list[Paper], int | None] | None:
        """One page of the papers citing `paper` and the offset of the next page (None on the last);
        None when S2 does not know the paper."""
        if not 1 <= limit <= MAX_SEARCH or offset + limit > MAX_OFFSET:
            raise ValueError(f"Semantic Scholar pages citations up to offset {MAX_OFFSET}, {MAX_SEARCH} at a time")
        if (s2_id := _s2_id(paper)) is None:
            return None
        params = {"fields": FIELDS, "offset": offset, "limit": limit}
        try:
            body = await self._call("GET", f"/paper/{quote(s2_id, safe=':')}/citations", params=params)
        except SourceRejected as exc:
            if exc.status == 404:  # "Paper with id ... not found"
                return None
            raise
        citing = [p for item in body.get("data") or [] if (p := paper_from_record(item.get("citingPaper") or {}))]
        return citing, body.get("next")

    async def references(self, paper: Paper) -> list[Reference] | None:
        """The papers `paper` cites, in S2's order; None when S2 does not know the paper."""
        if (s2_id := _s2_id(paper)) is None:
            return None
        path = f"/paper/{quote(s2_id, safe=':')}/references"
        refs: list[Reference] = []
        offset: int | None = 0
        while offset is not None and (limit := min(REFERENCES_PAGE, MAX_OFFSET - offset)) > 0:
            params = {"fields": REFERENCE_FIELDS, "offset": offset, "limit": limit}
            try:
                body = await self._call("GET", path, params=params)
            except SourceRejected as exc:
                if exc.status == 404 and offset == 0:  # "Paper with id ... not found"
                    return None
                raise
            for item in body.get("data") or []:
                if (cited := item.get("citedPaper")) and (ref := reference_from_record(cited)):
                    refs.append(ref)
            offset = body.get("next")
        return refs
