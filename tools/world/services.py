"""The simulated services as Starlette apps, one per service, each behind its `Gate`.

Paths are the real ones: serper `POST /search`; arXiv `GET /api/query`; arxiv.org and ar5iv
`GET /html/{id}`; Semantic Scholar under `/graph/v1` and OpenAlex `/works` (scholar.py); vLLM
`/v1/...`, `/tokenize`, `/health`, `/version` (vllm.py). Every app also answers `GET /_world/counts`
(request counts of all services, not logged or limited).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import atom, latexml, oai, scholar, vllm
from .config import Context
from .corpus import ARXIV_ID, Corpus, Paper, unit
from .engines import QueryError, arxiv_search, google
from .gate import RATE_EXCEEDED

_ATOM = "application/atom+xml; charset=utf-8"
_HTML = "text/html; charset=utf-8"

# What each service says when a client exceeds its rate limit.
# How each service answers a request over its rate limit: (status, content type, body). OpenAlex's
# error reference gives 403 "Rate limit exceeded; slow down" for requests too fast (429 is its daily
# allowance); its rate-limit page says 429 for both, which the client handles as any 429.
LIMITED = {
    "arxiv_api": (429, "text/plain; charset=utf-8", RATE_EXCEEDED),
    "arxiv_html": (429, "text/plain; charset=utf-8", RATE_EXCEEDED),
    "ar5iv": (429, "text/plain; charset=utf-8", RATE_EXCEEDED),
    "s2": (
        429,
        "application/json",
        b'{"message": "Too Many Requests. Please wait and try again or apply for a key for higher rate limits.",'
        b' "code": "429"}',
    ),
    "openalex": (
        403,
        "application/json",
        b'{"error": "Rate limit exceeded", "message": "Too many requests per second."}',
    ),
}
DEFAULT_LIMITED = (429, "application/json", b'{"message": "Too many requests."}')


def build(name: str, ctx: Context) -> Starlette:
    """The Starlette app of service `name` (not yet gated)."""
    routes = {
        "serper": _serper,
        "arxiv_api": _arxiv_api,
        "arxiv_html": _arxiv_html,
        "ar5iv": _ar5iv,
        "s2": scholar.s2_routes,
        "openalex": scholar.openalex_routes,
        "crossref": scholar.crossref_routes,
        "crawler": vllm.routes,
        "selector": vllm.routes,
    }[name](ctx, name)

    async def counts(_: Request) -> Response:
        return JSONResponse(ctx.log.counts())

    return Starlette(routes=[*routes, Route("/_world/counts", counts)])


# serper.dev ---------------------------------------------------------------------------------------


def _serper(ctx: Context, _: str) -> list[Route]:
    corpus = ctx.corpus

    def one(item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("q"), str) or not item["q"].strip():
            raise ValueError("Query must be a non-empty string in field 'q'.")
        num, page = item.get("num", 10), item.get("page", 1)
        if not isinstance(num, int) or not 1 <= num <= 100 or not isinstance(page, int) or page < 1:
            raise ValueError("'num' must be 1..100 and 'page' >= 1.")
        organic = []
        for position, hit in enumerate(google(corpus, item["q"], num, page), 1):
            organic.append(_organic(corpus, hit.paper, hit.link, item["q"], position))
        params = {"q": item["q"], "gl": item.get("gl", "us"), "hl": item.get("hl", "en"), "type": "search", "num": num}
        if page > 1:
            params["page"] = page
        return {"searchParameters": {**params, "engine": "google"}, "organic": organic, "credits": 1}

    async def search(request: Request) -> Response:
        if request.headers.get("x-api-key") != ctx.config.serper_key:
            return JSONResponse({"message": "Unauthorized.", "statusCode": 403}, 403)
        try:
            body = json.loads(await request.body())
            result: Any = [one(i) for i in body] if isinstance(body, list) else one(body)
        except (json.JSONDecodeError, ValueError) as exc:
            return JSONResponse({"message": str(exc), "statusCode": 400}, 400)
        return JSONResponse(result)

    return [Route("/search", search, methods=["POST"])]


def _organic(corpus: Corpus, paper: Paper | None, link: str, q: str, position: int) -> dict[str, Any]:
    if paper is None:
        category = link.split("/list/")[1].split("/")[0]
        return {
            "title": f"{category} recent submissions - arXiv",
            "link": link,
            "snippet": f"Recent submissions in {category}. Showing the most recent entries.",
            "position": position,
        }
    u = unit("serper-title", corpus.seed, paper.idx, q)
    title = f"[{paper.arxiv_id}] {paper.title}" if paper.arxiv_id and u < 0.6 else paper.title
    if "/pdf/" in link:
        title = f"{paper.title} - arXiv"
    if len(title) > 70:
        title = title[:66].rsplit(" ", 1)[0] + " ..."
    snippet = paper.abstract if len(paper.abstract) <= 160 else paper.abstract[:155].rsplit(" ", 1)[0] + " ..."
    result: dict[str, Any] = {"title": title, "link": link, "snippet": snippet}
    if u < 0.5:
        result["date"] = f"{paper.published:%b} {paper.published.day}, {paper.published.year}"
    result["position"] = position
    return result


# arXiv API ----------------------------------------------------------------------------------------


def _arxiv_api(ctx: Context, _: str) -> list[Route]:
    corpus = ctx.corpus

    def error(message: str) -> Response:
        return Response(atom.error_feed(message), 400, media_type=_ATOM)

    async def query(request: Request) -> Response:
        params = request.query_params
        search_query, id_list = params.get("search_query", ""), params.get("id_list", "")
        try:
            start, max_results = int(params.get("start", "0")), int(params.get("max_results", "10"))
        except ValueError:
            return error("start and max_results must be integers")
        if start < 0 or max_results < 0:
            return error("start and max_results must be non-negative")
        if max_results > 2000:
            return error("max_results must be at most 2000")
        sort_by = params.get("sortBy", "relevance")
        order = params.get("sortOrder", "descending")
        if sort_by not in ("relevance", "lastUpdatedDate", "submittedDate") or order not in ("ascending", "descending"):
            return error(f"unknown sortBy {sort_by!r} or sortOrder {order!r}")
        wanted: list[tuple[int, int]] = []
        for raw in filter(None, (x.strip() for x in id_list.split(","))):
            m = ARXIV_ID.fullmatch(raw)
            if m is None:
                return error(f"incorrect id format for {raw}")
            idx = corpus.by_arxiv.get(m.group("id"))
            if idx is None:
                continue
            version = int(m.group("v") or corpus.papers[idx].versions)
            if 1 <= version <= corpus.papers[idx].versions:
                wanted.append((idx, version))
        if not search_query and not id_list.strip():
            return error("either search_query or id_list is required")
        try:
            matched = arxiv_search(corpus, search_query, sort_by, order == "descending") if search_query else None
        except QueryError as exc:
            return error(str(exc))
        if id_list.strip():
            keep = None if matched is None else set(matched)
            hits = [(i, v) for i, v in wanted if keep is None or i in keep]
        else:
            hits = [(i, corpus.papers[i].versions) for i in matched or []]
        page = hits[start : start + max_results]
        body = atom.feed(
            search_query=search_query,
            id_list=id_list,
            start=start,
            max_results=max_results,
            total=len(hits),
            entries=[atom.entry(corpus.papers[i], v) for i, v in page],
        )
        return Response(body, media_type=_ATOM)

    served = [0]  # OAI-PMH requests so far: every `oai_flow_control`-th is told to come back later

    async def moved(request: Request) -> Response:
        """export.arxiv.org/oai2, arXiv's OAI-PMH address until 2025: a permanent redirect to the new one."""
        query = f"?{request.url.query}" if request.url.query else ""
        return Response(status_code=301, headers={"Location": f"{ctx.oai_url}/oai{query}"})

    async def oai_pmh(request: Request) -> Response:
        params = request.query_params
        url = str(request.url.replace(query=""))
        served[0] += 1
        every = ctx.config.oai_flow_control
        if every and served[0] % every == 0:
            retry = ctx.config.oai_retry_after * ctx.config.time_scale
            shown = str(round(retry)) if retry >= 1 else f"{max(retry, 0.05):.2f}"  # fractions only when scaled
            return Response("Retry after the time given (flow control).", 503, {"Retry-After": shown})

        def answer(text: str) -> Response:
            return Response(text, media_type="text/xml; charset=utf-8")

        verb = params.get("verb")
        if verb == "Identify":
            return answer(oai.identify(url, corpus))
        if verb != "ListRecords":
            return answer(oai.error("badVerb", f"Illegal verb {verb!r}", url))
        if token := params.get("resumptionToken"):
            base, _, offset = token.rpartition("|")
            set_name, since, until = (base.split(";") + ["", "", ""])[:3]
            if not offset.isdigit() or len(params) > 2:
                return answer(oai.error("badResumptionToken", f"Bad resumption token {token!r}", url))
            start = int(offset)
        else:
            if params.get("metadataPrefix") != "arXiv" and params.get("metadataPrefix") not in ("oai_dc", "arXivRaw"):
                return answer(oai.error("badArgument", "metadataPrefix is required", url))
            if params.get("metadataPrefix") != "arXiv":
                return answer(oai.error("cannotDisseminateFormat", "The simulation serves only arXiv", url))
            set_name, since, until, start = params.get("set", ""), params.get("from", ""), params.get("until", ""), 0
        try:
            first = date.fromisoformat(since) if since else None
            last = date.fromisoformat(until) if until else None
        except ValueError:
            return answer(oai.error("badArgument", "from and until must be YYYY-MM-DD", url))
        items = oai.listing(corpus, set_name or None, first, last)
        if not items:
            return answer(oai.error("noRecordsMatch", "No records match the request", url))
        base = f"{set_name};{since};{until}"
        return answer(oai.list_records(url, items, start, ctx.config.oai_page_size, base))

    return [Route("/api/query", query), Route("/oai", oai_pmh), Route("/oai2", moved)]


# arxiv.org/html and ar5iv -------------------------------------------------------------------------


def _not_found(what: str) -> Response:
    body = f"<!DOCTYPE html><html><head><title>404</title></head><body><h1>No HTML for '{what}'</h1></body></html>"
    return Response(body, 404, media_type=_HTML)


def _arxiv_html(ctx: Context, _: str) -> list[Route]:
    corpus = ctx.corpus

    async def html(request: Request) -> Response:
        raw = request.path_params["paper"]
        found = corpus.find_arxiv(raw)
        if found is None or not found[0].arxiv_html:
            return _not_found(raw)
        paper, version = found
        if version is None:
            return RedirectResponse(str(request.url.replace(path=f"/html/{paper.arxiv_id}v{paper.versions}")), 302)
        if not 1 <= version <= paper.versions:
            return _not_found(raw)
        body = latexml.page(corpus, paper, url=str(request.url), ar5iv=False, size=ctx.config.page_bytes)
        return Response(body, media_type=_HTML)

    return [Route("/html/{paper:path}", html)]


def _ar5iv(ctx: Context, _: str) -> list[Route]:
    corpus = ctx.corpus

    async def html(request: Request) -> Response:
        raw = request.path_params["paper"]
        found = corpus.find_arxiv(raw)
        if found is None or not found[0].ar5iv:
            return _not_found(raw)
        body = latexml.page(corpus, found[0], url=str(request.url), ar5iv=True, size=ctx.config.page_bytes)
        return Response(body, media_type=_HTML)

    return [Route("/html/{paper:path}", html)]
