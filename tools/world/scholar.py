"""Semantic Scholar's graph API and OpenAlex's works API over the corpus (shapes: shared/fixtures)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import records
from .config import Context
from .corpus import ARXIV_ID, Corpus, Paper
from .engines import title_match
from .index import terms

# Semantic Scholar ---------------------------------------------------------------------------------


def _s2_lookup(corpus: Corpus, raw: str) -> Paper | None:
    kind, sep, value = raw.partition(":")
    kind = kind.upper() if sep else ""
    if not sep and re.fullmatch(r"[0-9a-f]{40}", raw):
        idx = corpus.by_s2.get(raw)
    elif kind == "CORPUSID" and value.isdigit():
        return corpus.by_corpus_id(int(value))
    elif kind == "DOI" or (not sep and raw.startswith("10.")):
        idx = corpus.by_doi.get((value if sep else raw).lower())
        if idx is None and (value if sep else raw).lower().startswith("10.48550/arxiv."):
            idx = corpus.by_arxiv.get((value if sep else raw)[len("10.48550/arxiv.") :])
    elif kind == "ARXIV":
        m = ARXIV_ID.fullmatch(value)
        idx = corpus.by_arxiv.get(m.group("id")) if m else None
    elif kind == "URL":
        m = re.search(r"arxiv\.org/(?:abs|pdf|html)/(.+?)(?:\.pdf)?$", value)
        found = corpus.find_arxiv(m.group(1)) if m else None
        return found[0] if found else None
    else:
        return None
    return None if idx is None else corpus.papers[idx]


def s2_routes(ctx: Context, _: str) -> list[Route]:
    corpus = ctx.corpus

    def err(message: str, status: int = 400) -> Response:
        return JSONResponse({"error": message}, status)

    def fields(request: Request, allowed: frozenset[str] = records.S2_FIELDS) -> list[str]:
        return records.s2_fields(request.query_params.get("fields"), allowed)

    def number(request: Request, name: str, default: int, most: int) -> int:
        raw = request.query_params.get(name, str(default))
        if not raw.isdigit():
            raise ValueError(f"{name} must be a non-negative integer")
        if int(raw) > most:
            raise ValueError(f"{name.capitalize()} must be <= {most}")
        return int(raw)

    async def search(request: Request) -> Response:
        try:
            wanted = fields(request)
            offset, limit = number(request, "offset", 0, 10_000), number(request, "limit", 100, 100)
            low, high = _s2_dates(request.query_params)
        except ValueError as exc:
            return err(str(exc))
        text = request.query_params.get("query", "")
        if not text.strip():
            return err("Missing required parameter: 'query'")

        def keep(doc: int) -> bool:
            when = corpus.papers[doc].published.date()
            return (low is None or when >= low) and (high is None or when <= high)

        hits = corpus.index.search(text.replace("-", " "), keep)
        body: dict[str, Any] = {"total": len(hits), "offset": offset}
        if offset + limit < len(hits):
            body["next"] = offset + limit
        body["data"] = [records.s2_paper(corpus, corpus.papers[d], wanted) for d, _ in hits[offset : offset + limit]]
        return JSONResponse(body)

    async def match(request: Request) -> Response:
        try:
            wanted = fields(request)
        except ValueError as exc:
            return err(str(exc))
        found = title_match(corpus, request.query_params.get("query", ""))
        if found is None:
            return err("Title match not found", 404)
        paper, score = found
        record = records.s2_paper(corpus, paper, wanted)
        return JSONResponse({"data": [{**record, "matchScore": score}]})

    async def batch(request: Request) -> Response:
        try:
            wanted = fields(request)
            body = json.loads(await request.body())
        except (ValueError, json.JSONDecodeError) as exc:
            return err(str(exc))
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return err("Body must be a JSON object with a list of string 'ids'")
        if len(ids) > 500:
            return err("Cannot process more than 500 ids at once")
        papers = [_s2_lookup(corpus, i) for i in ids]
        return JSONResponse([None if p is None else records.s2_paper(corpus, p, wanted) for p in papers])

    async def paper(request: Request) -> Response:
        raw = request.path_params["paper"]
        try:
            wanted = fields(request)
        except ValueError as exc:
            return err(str(exc))
        found = _s2_lookup(corpus, raw)
        if found is None:
            return err(f"Paper with id {raw} not found", 404)
        return JSONResponse(records.s2_paper(corpus, found, wanted))

    async def references(request: Request) -> Response:
        raw = request.path_params["paper"]
        try:
            wanted = fields(request, records.S2_FIELDS | records.S2_EDGE_FIELDS)
            offset, limit = number(request, "offset", 0, 10_000), number(request, "limit", 100, 1000)
        except ValueError as exc:
            return err(str(exc))
        found = _s2_lookup(corpus, raw)
        if found is None:
            return err(f"Paper with id {raw} not found", 404)
        targets: list[int | str] = [*found.refs, *found.externals]
        body: dict[str, Any] = {"offset": offset}
        if offset + limit < len(targets):
            body["next"] = offset + limit
        body["data"] = [records.s2_reference(corpus, found, t, wanted) for t in targets[offset : offset + limit]]
        return JSONResponse(body)

    async def citations(request: Request) -> Response:
        raw = request.path_params["paper"]
        try:
            wanted = fields(request)
            offset, limit = number(request, "offset", 0, 10_000), number(request, "limit", 100, 1000)
        except ValueError as exc:
            return err(str(exc))
        found = _s2_lookup(corpus, raw)
        if found is None:
            return err(f"Paper with id {raw} not found", 404)
        citing = [p for p in corpus.papers if found.idx in p.refs]
        body: dict[str, Any] = {"offset": offset}
        if offset + limit < len(citing):
            body["next"] = offset + limit
        body["data"] = [{"citingPaper": records.s2_paper(corpus, p, wanted)} for p in citing[offset : offset + limit]]
        return JSONResponse(body)

    return [
        Route("/graph/v1/paper/search/match", match),
        Route("/graph/v1/paper/search", search),
        Route("/graph/v1/paper/batch", batch, methods=["POST"]),
        Route("/graph/v1/paper/{paper:path}/references", references),
        Route("/graph/v1/paper/{paper:path}/citations", citations),
        Route("/graph/v1/paper/{paper:path}", paper),
    ]


def _s2_dates(params: Any) -> tuple[date | None, date | None]:
    """`year` (2019, 2016-2020, 2010-, -2015) or `publicationDateOrYear` (2019-03-05:2020-06-06, :2023-01-01)."""
    if raw := params.get("publicationDateOrYear"):
        low, sep, high = raw.partition(":")
        if not sep:
            raise ValueError("publicationDateOrYear must look like START:END (either may be empty)")
        return _s2_bound(low, end=False), _s2_bound(high, end=True)
    if raw := params.get("year"):
        low, sep, high = raw.partition("-")
        return _s2_bound(low, end=False), _s2_bound(high if sep else low, end=True)
    return None, None


def _s2_bound(text: str, *, end: bool) -> date | None:
    text = text.strip()
    if not text:
        return None
    parts = text.split("-")
    try:
        if len(parts) == 1:
            return date(int(parts[0]), 12, 31) if end else date(int(parts[0]), 1, 1)
        if len(parts) == 2:
            y, m = int(parts[0]), int(parts[1])
            return (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)) if end else date(y, m, 1)
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError as exc:
        raise ValueError(f"bad date {text!r}") from exc


# OpenAlex -----------------------------------------------------------------------------------------

_OA_PARAMS = {"search", "filter", "per_page", "per-page", "page", "select", "sort", "mailto", "api_key", "cursor"}
_OA_FILTERS = {
    "openalex",
    "ids.openalex",
    "doi",
    "from_publication_date",
    "to_publication_date",
    "publication_year",
    "title.search",
    "default.search",
    "cites",
    "cited_by",
    "type",
    "indexed_in",
}
_OA_INDEXES = {"arxiv", "crossref", "datacite", "doaj", "pubmed"}  # OpenAlex's /indexes


def openalex_routes(ctx: Context, _: str) -> list[Route]:
    corpus = ctx.corpus
    spent = [0]  # what list requests without the key have cost, in list requests (a text search costs 10)

    def usage(params: Any) -> tuple[dict[str, str], Response | None]:
        """A keyless request's usage headers (what is left in dollars, seconds until 00:00 UTC), and once
        the allowance is spent the 429 without Retry-After that says so. Requests with the key: none."""
        if params.get("api_key") == ctx.config.openalex_key:
            return {}, None
        searching = params.get("search") or ".search:" in params.get("filter", "")
        spent[0] += 10 if searching else 1
        left = max(0, ctx.config.openalex_keyless_allowance - spent[0])
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        reset = math.ceil((midnight - now).total_seconds())
        headers = {"X-RateLimit-Remaining-USD": f"{left / 10_000:.4f}", "X-RateLimit-Reset": str(reset)}
        if spent[0] <= ctx.config.openalex_keyless_allowance:
            return headers, None
        message = "Daily usage allowance exceeded (SIMULATED). Add a free API key: api_key=..."
        return headers, JSONResponse({"error": "Rate limit exceeded", "message": message}, 429, headers=headers)

    def invalid(message: str) -> Response:  # 400, as OpenAlex's error reference (developers.openalex.org) has it
        return JSONResponse({"error": "Invalid query parameters error.", "message": message}, 400)

    def wrong_key(params: Any) -> Response | None:
        """A key that is not the world's: 401, as OpenAlex answers a wrong or blank `api_key`."""
        if "api_key" not in params or params["api_key"] == ctx.config.openalex_key:
            return None
        return JSONResponse({"error": "Invalid API key (SIMULATED)", "message": "check your api_key"}, 401)

    def work_ids(value: str) -> set[int]:
        found = set()
        for part in value.split("|"):
            paper = corpus.by_openalex(part)
            if paper is not None:
                found.add(paper.idx)
        return found

    def apply(key: str, value: str, docs: set[int]) -> set[int]:
        papers = corpus.papers
        if key in ("openalex", "ids.openalex"):
            return docs & work_ids(value)
        if key == "doi":
            wanted = {v.lower().removeprefix("https://doi.org/") for v in value.split("|")}
            return {d for d in docs if (papers[d].doi or f"10.48550/arxiv.{papers[d].arxiv_id}").lower() in wanted}
        if key in ("from_publication_date", "to_publication_date"):
            bound = date.fromisoformat(value)
            if key.startswith("from"):
                return {d for d in docs if papers[d].published.date() >= bound}
            return {d for d in docs if papers[d].published.date() <= bound}
        if key == "publication_year":
            years = {int(v) for v in value.split("|")}
            return {d for d in docs if papers[d].published.year in years}
        if key in ("title.search", "default.search"):
            field = "ti" if key == "title.search" else "all"
            hits = set(docs)
            for word in terms(value):
                hits &= corpus.index.match(field, word)
            return hits
        if key == "cites":
            targets = work_ids(value)
            return {d for d in docs if targets & set(papers[d].refs)}
        if key == "cited_by":
            citing = work_ids(value)
            return docs & {r for c in citing for r in papers[c].refs}
        if key == "indexed_in":  # the world's works are on arXiv (an id) or in Crossref (a DOI), or both
            indexes = set(value.split("|"))
            if unknown := sorted(indexes - _OA_INDEXES):
                raise ValueError(f"{unknown[0]} is not an index; indexes are {', '.join(sorted(_OA_INDEXES))}")
            on_arxiv, in_crossref = "arxiv" in indexes, "crossref" in indexes
            return {d for d in docs if (on_arxiv and papers[d].arxiv_id) or (in_crossref and papers[d].doi)}
        kinds = set(value.split("|"))
        return {d for d in docs if ("article" if papers[d].venue else "preprint") in kinds}

    async def works(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - _OA_PARAMS)
        if unknown:
            return invalid(
                f"{unknown[0]} is not a valid parameter. Valid parameters are {', '.join(sorted(_OA_PARAMS))}."
            )
        if refused_key := wrong_key(params):
            return refused_key
        usage_headers, refused = usage(params)
        if refused is not None:
            return refused
        try:
            per_page = int(params.get("per_page", params.get("per-page", "25")))
            page = int(params.get("page", "1"))
        except ValueError:
            return invalid("per_page and page must be integers")
        if not 1 <= per_page <= 200 or page < 1:
            return invalid("per-page parameter must be between 1 and 200, page must be >= 1")
        select = [s.strip() for s in params.get("select", "").split(",") if s.strip()] or None
        text = params.get("search", "")
        scores: dict[int, float] = {}
        if text.strip():
            scores = dict(corpus.index.search(text))
            docs = set(scores)
        else:
            docs = set(range(len(corpus.papers)))
        for condition in filter(None, params.get("filter", "").split(",")):
            key, sep, value = condition.partition(":")
            if not sep or key not in _OA_FILTERS:
                return invalid(f"{key} is not a valid field. Valid fields are {', '.join(sorted(_OA_FILTERS))}.")
            try:
                docs = apply(key, value, docs)
            except ValueError as exc:
                return invalid(f"{key}: {exc}")
        ordered = sorted(docs, key=lambda d: (-scores.get(d, 0.0), -corpus.papers[d].cited_by, d))
        chunk = ordered[(page - 1) * per_page : page * per_page]
        results = []
        for d in chunk:
            work = records.openalex_work(corpus, corpus.papers[d])
            if scores:
                work = {
                    **{k: work[k] for k in ("id", "doi", "title", "display_name")},
                    "relevance_score": round(scores[d], 6),
                    **work,
                }
            results.append({k: work.get(k) for k in select} if select else work)
        meta = {
            "count": len(ordered),
            "db_response_time_ms": 12,
            "page": page,
            "per_page": per_page,
            "groups_count": None,
        }
        return JSONResponse({"meta": meta, "results": results, "group_by": []}, headers=usage_headers)

    async def work(request: Request) -> Response:
        if refused_key := wrong_key(request.query_params):
            return refused_key
        raw = request.path_params["work"]
        paper = corpus.by_openalex(raw)
        low = raw.lower()
        if paper is None and (low.startswith("doi:") or low.startswith("https://doi.org/")):
            doi = low.removeprefix("doi:").removeprefix("https://doi.org/")
            idx = corpus.by_doi.get(doi)
            if idx is None and doi.startswith("10.48550/arxiv."):
                idx = corpus.by_arxiv.get(doi[len("10.48550/arxiv.") :])
            paper = None if idx is None else corpus.papers[idx]
        if paper is None:
            message = (
                "The requested URL was not found on the server. "
                "If you entered the URL manually please check your spelling and try again."
            )
            return JSONResponse({"error": "404 Not Found", "message": message}, 404)
        select = [s.strip() for s in request.query_params.get("select", "").split(",") if s.strip()] or None
        return JSONResponse(records.openalex_work(corpus, paper, select))

    return [Route("/works", works), Route("/works/{work:path}", work)]


_CR_PARAMS = {"query.bibliographic", "rows", "select", "mailto"}


def crossref_routes(ctx: Context, _: str) -> list[Route]:
    """Crossref's `/works?query.bibliographic=`: works best matching a whole reference string (SIMULATED)."""
    corpus = ctx.corpus

    async def works(request: Request) -> Response:
        params = request.query_params
        if unknown := sorted(set(params) - _CR_PARAMS):
            return JSONResponse({"status": "failed", "message": [{"message": f"{unknown[0]} is not supported"}]}, 400)
        try:
            rows = int(params.get("rows", "20"))
        except ValueError:
            rows = -1
        if not 0 <= rows <= 1000:
            return JSONResponse({"status": "failed", "message": [{"message": "rows must be 0..1000"}]}, 400)
        hits = corpus.index.search(params.get("query.bibliographic", "")) if params.get("query.bibliographic") else []
        items = [records.crossref_item(corpus.papers[d], score) for d, score in hits[:rows]]
        message = {"total-results": len(hits), "items-per-page": rows, "items": items}
        return JSONResponse({"status": "ok", "message-type": "work-list", "message": message})

    return [Route("/works", works)]
