"""OpenAlex works: search with a date bound, title match, batch lookup and reference lists.

Every request goes through `Net` as host "openalex". OpenAlex takes its API key as the `api_key`
query parameter, so a URL here is a secret: this module never puts one in an error, and `Net`
scrubs the key (raw or percent-encoded) from any error text a server echoes back.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from ..config import Settings
from ..net import Net, SourceRejected
from ..papers import Paper, Reference, normalize_arxiv_id, normalize_doi
from ..titles import best_match

NAME = "openalex"
MAX_PER_PAGE = 100  # the current API allows 1..100 results a page
# Values OR-ed in one filter: the current docs allow 100, older docs 50; 50 is safe under both.
BATCH_SIZE = 50
MATCH_CANDIDATES = 5  # title-search hits compared against the wanted title (titles.titles_match)
# Root-level fields we read: `select` keeps list answers small (referenced works carry large graphs).
SELECT = (
    "id,doi,title,display_name,publication_date,publication_year,ids,primary_location,locations,"
    "best_oa_location,authorships,abstract_inverted_index"
)
_ARXIV_DOI = "10.48550/arxiv."
_WORK_ID = re.compile(r"W\d+")
_FILTER_UNSAFE = re.compile(r"[^\w\s]")  # filter syntax reserves , | : and friends
_DOI_UNSAFE = re.compile(r"[|,]")  # a DOI with these cannot be OR-ed into a filter


def abstract_from_inverted_index(index: dict[str, list[int]] | None) -> str:
    """The abstract text from OpenAlex's `abstract_inverted_index` (word -> positions)."""
    if not index:
        return ""
    words = {position: word for word, positions in index.items() for position in positions}
    return " ".join(words[position] for position in sorted(words))


def short_id(openalex_id: str) -> str:
    """`W123` from `https://openalex.org/W123` or `W123`."""
    return openalex_id.rstrip("/").rsplit("/", 1)[-1].upper()


def _locations(work: dict[str, Any]) -> list[dict[str, Any]]:
    found = [work.get("primary_location"), work.get("best_oa_location"), *(work.get("locations") or [])]
    return [loc for loc in found if loc]


def arxiv_id_of(work: dict[str, Any]) -> str | None:
    """The arXiv id of a work: from an arXiv DOI (10.48550/arXiv.ID) or an arxiv.org location."""
    for doi in [work.get("doi"), *(loc.get("doi") for loc in _locations(work))]:
        doi = normalize_doi(doi)
        if doi and doi.startswith(_ARXIV_DOI) and (arxiv_id := normalize_arxiv_id(doi[len(_ARXIV_DOI) :])):
            return arxiv_id
    for loc in _locations(work):
        for url in (loc.get("landing_page_url"), loc.get("pdf_url")):
            if arxiv_id := normalize_arxiv_id(url):
                return arxiv_id
    return None


def _published(work: dict[str, Any]) -> date | None:
    if value := work.get("publication_date"):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    year = work.get("publication_year")
    return date(year, 1, 1) if year else None


def _venue(work: dict[str, Any]) -> str | None:
    location = work.get("primary_location") or {}
    return (location.get("source") or {}).get("display_name") or location.get("raw_source_name")


def _authors(work: dict[str, Any]) -> list[str]:
    authorships = work.get("authorships") or []
    names = ((a.get("author") or {}).get("display_name") or a.get("raw_author_name") for a in authorships)
    return [name for name in names if name]


def paper_from_work(work: dict[str, Any]) -> Paper | None:
    """A `Paper` from one OpenAlex work; None for a work without a title."""
    title = work.get("title") or work.get("display_name")
    if not title:
        return None
    return Paper(
        title=title,
        abstract=abstract_from_inverted_index(work.get("abstract_inverted_index")),
        arxiv_id=arxiv_id_of(work),
        doi=normalize_doi(work.get("doi")),
        openalex_id=short_id(work["id"]) if work.get("id") else None,
        authors=_authors(work),
        published=_published(work),
        venue=_venue(work),
        url=(work.get("primary_location") or {}).get("landing_page_url") or work.get("id"),
        sources=[NAME],
    )


def reference_from_work(work: dict[str, Any]) -> Reference | None:
    """A `Reference` from a cited work, with a citation-like text for fuzzy resolution."""
    paper = paper_from_work(work)
    if paper is None:
        return None
    parts = [", ".join(paper.authors), paper.title, paper.venue or "", str(work.get("publication_year") or "")]
    return Reference(
        title=paper.title,
        text=". ".join(p.strip().rstrip(".") for p in parts if p.strip()),
        arxiv_id=paper.arxiv_id,
        doi=paper.doi,
    )


class OpenAlex:
    """The OpenAlex works API as a search source and a source of reference lists."""

    name = NAME
    filters_categories = False  # papers of other categories are dropped where theirs are known

    def __init__(self, net: Net, settings: Settings, *, indexed_in: str | None = None) -> None:
        self._net = net
        # Searches keep to the works this index lists (OpenAlex's `indexed_in`: "arxiv" for a stand-in
        # for arXiv's search, whose papers are then expanded through arXiv's HTML like arXiv's own).
        self.indexed_in = indexed_in
        self._base = settings.openalex_url.rstrip("/")
        self._key = settings.openalex_api_key.get_secret_value() if settings.openalex_api_key else ""
        self._auth = {"api_key": self._key} if self._key else {}
        if settings.openalex_mailto:
            self._auth["mailto"] = settings.openalex_mailto

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            return await self._net.request(
                NAME, "GET", self._base + path, params={**params, **self._auth}, parse=lambda r: r.json()
            )
        except SourceRejected as exc:
            if exc.status != 401:  # OpenAlex's answer to a wrong or blank key
                raise
            raise exc.key_refused("OPENALEX_API_KEY") from None

    async def _works(self, **params: Any) -> list[dict[str, Any]]:
        body = await self._get("/works", {**params, "select": SELECT})
        return body.get("results") or []

    async def _by_ids(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Works by short OpenAlex id, in batches of OR-ed ids; ids OpenAlex does not return are left out."""
        works: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            for work in await self._works(filter="openalex:" + "|".join(chunk), per_page=len(chunk)):
                works[short_id(work.get("id") or "")] = work
        return works

    async def search(self, query: str, *, limit: int, before: date | None, after: date | None = None) -> list[Paper]:
        """Works matching `query`, published before `before` (exclusive) and from `after`, by relevance."""
        if not query.strip():
            raise ValueError("OpenAlex search needs a non-empty query")
        if not 1 <= limit <= MAX_PER_PAGE:
            raise ValueError(f"OpenAlex search limit must be 1..{MAX_PER_PAGE}, got {limit}")
        params: dict[str, Any] = {"search": query, "per_page": limit}
        bounds = [f"from_publication_date:{after.isoformat()}"] if after else []
        bounds += [f"to_publication_date:{(before - timedelta(days=1)).isoformat()}"] if before else []
        bounds += [f"indexed_in:{self.indexed_in}"] if self.indexed_in else []
        if bounds:
            params["filter"] = ",".join(bounds)
        return [p for work in await self._works(**params) if (p := paper_from_work(work))]

    async def match_title(self, title: str) -> Paper | None:
        """The work whose title best matches `title`, if `titles.titles_match` calls them one work."""
        words = " ".join(_FILTER_UNSAFE.sub(" ", title).split())
        if not words:
            raise ValueError(f"OpenAlex title match needs a title with words, got {title!r}")
        works = await self._works(filter=f"title.search:{words}", per_page=MATCH_CANDIDATES)
        return best_match(title, [p for work in works if (p := paper_from_work(work))])

    async def search_reference(self, text: str) -> list[Paper]:
        """The works OpenAlex's search ranks first for a whole reference string (an entry without a title)."""
        words = " ".join(_FILTER_UNSAFE.sub(" ", text).split())
        if not words:
            raise ValueError(f"OpenAlex reference search needs words, got {text!r}")
        return [
            p for work in await self._works(search=words, per_page=MATCH_CANDIDATES) if (p := paper_from_work(work))
        ]

    async def papers(self, openalex_ids: list[str]) -> dict[str, Paper]:
        """Works by OpenAlex id (`W123` or its URL), keyed by the id asked; unknown ids are left out."""
        wanted = {short_id(asked): asked for asked in openalex_ids}
        if bad := [asked for key, asked in wanted.items() if not _WORK_ID.fullmatch(key)]:
            raise ValueError(f"not OpenAlex work ids: {bad[:5]}")
        works = await self._by_ids(list(wanted))
        return {asked: p for key, asked in wanted.items() if key in works and (p := paper_from_work(works[key]))}

    async def papers_by_doi(self, dois: list[str]) -> dict[str, Paper]:
        """Works by DOI, in batches of OR-ed DOIs, keyed by normalised DOI; unknown DOIs are left out."""
        wanted = sorted({d for doi in dois if (d := normalize_doi(doi)) and not _DOI_UNSAFE.search(d)})
        found: dict[str, Paper] = {}
        for start in range(0, len(wanted), BATCH_SIZE):
            chunk = wanted[start : start + BATCH_SIZE]
            for work in await self._works(filter="doi:" + "|".join(chunk), per_page=len(chunk)):
                if (p := paper_from_work(work)) and p.doi:
                    found[p.doi] = p
        return found

    async def _work(self, paper: Paper, select: str) -> dict[str, Any] | None:
        """The work record of a paper (the fields in `select`); None when OpenAlex does not know it."""
        if paper.openalex_id:
            path = f"/works/{short_id(paper.openalex_id)}"
        elif paper.doi:
            path = f"/works/doi:{paper.doi}"
        elif paper.arxiv_id:
            path = f"/works/doi:{_ARXIV_DOI}{paper.arxiv_id}"  # arXiv registers a DataCite DOI for every paper
        else:
            return None
        try:
            return await self._get(path, {"select": select})
        except SourceRejected as exc:
            if exc.status == 404:
                return None
            raise

    async def citing(self, paper: Paper, *, offset: int, limit: int) -> tuple[list[Paper], int] | None:
        """One page of the works citing `paper` (most cited first) and how many there are; None when
        OpenAlex does not know the paper. OpenAlex pages by number, so a page that straddles two is
        read from both."""
        if not 1 <= limit <= MAX_PER_PAGE:
            raise ValueError(f"OpenAlex page size must be 1..{MAX_PER_PAGE}, got {limit}")
        work = await self._work(paper, "id")
        if work is None or not work.get("id"):
            return None
        found: list[Paper] = []
        total = 0
        for page in range(offset // limit + 1, (offset + limit - 1) // limit + 2):
            body = await self._get(
                "/works",
                {
                    "filter": f"cites:{short_id(work['id'])}",
                    "sort": "cited_by_count:desc",
                    "per_page": limit,
                    "page": page,
                    "select": SELECT,
                },
            )
            total = (body.get("meta") or {}).get("count") or 0
            start = (page - 1) * limit
            for n, record in enumerate(body.get("results") or [], start):
                if offset <= n < offset + limit and (p := paper_from_work(record)):
                    found.append(p)
        return found, total

    async def references(self, paper: Paper) -> list[Reference] | None:
        """The works `paper` cites, in OpenAlex's order; None when OpenAlex does not know the paper."""
        work = await self._work(paper, "id,referenced_works")
        if work is None:
            return None
        cited = [short_id(w) for w in work.get("referenced_works") or []]
        works = await self._by_ids(cited)
        return [ref for w in cited if w in works and (ref := reference_from_work(works[w]))]
