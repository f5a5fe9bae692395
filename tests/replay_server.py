"""A loopback replay of the scholarly web and of the two PaSa models, built from ../shared/fixtures.

Every answer is a recorded payload (fixtures/SOURCES.md) served where pasa-mcp asks for it:

- serper.dev `/search`: the recorded haystack response, its organic links rewritten (see `LINKS`)
  to arXiv URLs of recorded Atom entries; no recorded serper answer points at arXiv.
- arXiv API: id lookups answered with the recorded entries of every recorded feed (spliced into the
  recorded current-API envelope; ids no recording holds are left out, as arXiv leaves out ids it
  does not know), the recorded empty feed when none is known; title searches (`ti:` phrases) with the
  recorded `au:del_maestro` feed, other searches with the recorded `testing` feed.
- arxiv.org/html and ar5iv: the AstroML LaTeXML page as arxiv.org/html of 1605.08386 (after the
  redirect to the versioned URL that arxiv.org sends), the ar5iv page of 1706.03762 as ar5iv of
  2202.12139 (`PAGES`); 404 for every other paper, so the fallbacks run.
- Semantic Scholar: the recorded search body (cut to `limit`), the two recorded reference pages
  (`offset` 0 and 50) as the references of arXiv 1201.4869, the recorded 404 body for other papers.
- OpenAlex: the recorded sample list as the answer to a search; filters (`openalex:`, `doi:`,
  `title.search:`) and single works answered from the nine recorded works; 404 (no recorded body
  exists) for works no recording holds.
- The models: a STAND-IN for vLLM, not a model. Its answers have the recorded vLLM shapes
  (completions with top-20 logprobs keyed `token_id:N`, as vLLM < 0.26 sends them whatever
  `logprob_token_ids` asks; chat completions) with scripted content: the crawler's queries and
  section picks and the selector's P(True) come from tables the test sets.

No recorded page cites a work that another recording describes, so citations cannot resolve from
the recordings alone. `cite_recorded_works` therefore rewrites three bibliography entries of the
served 1706.03762 page (all cited in "2 Background" only) to cite recorded works, one per way the
resolver finds a paper: an arXiv id, a title OpenAlex's title search knows, a DOI OpenAlex knows.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from conftest import fixture_json, fixture_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
TRUE_ID, FALSE_ID = 2514, 4049  # the stand-in's token ids of "True" and "False"
TOP_N = 20  # vLLM's default --max-logprobs, as in the recorded completions response

# serper organic result -> the link served instead (None: the recorded link stays).
LINKS = [
    "https://arxiv.org/abs/2202.12139v1",
    "https://arxiv.org/pdf/1605.08386v1",
    None,
    "http://arxiv.org/abs/cond-mat/0603029v2",
    "https://arxiv.org/html/2202.12139v1",  # the first paper again, as an HTML link
    "https://arxiv.org/abs/1201.4869",
    None,
    None,
    None,
]
PAGES = {
    ("arxiv_html", "1605.08386v1"): "latexml_AstroML-Zhoolideh-Haghighi_arXiv-view-as-html_temp.html",
    ("ar5iv", "2202.12139"): "ar5iv_1706.03762_arXiv-html_feedback.html",
}
S2_REFERENCES = "ARXIV:1201.4869"  # served the recorded reference pages of DOI 10.2139/ssrn.2250500


# Recorded payloads --------------------------------------------------------------------------

ATOM_FILES = [
    ("arxiv_atom", "derived", "arxivpy_id_1605.08386_s0_m100_199195aa31ad.body.xml"),
    ("arxiv_atom", "derived", "arxivpy_id_2104.12255v1_s0_m100_6ae69987ffe1.body.xml"),
    ("arxiv_atom", "derived", "arxivpy_q_testing_s0_m10_bc5a6c384fe9.body.xml"),
    ("arxiv_atom", "legacy_id_list_1111.2011v2.xml"),
    ("arxiv_atom", "legacy_search_au_del_maestro.xml"),
]
EMPTY_FEED = ("arxiv_atom", "derived", "arxivpy_id_0000.0000_s0_m100_8b51d9633a68.body.xml")
TITLE_SEARCH_FEED = ("arxiv_atom", "legacy_search_au_del_maestro.xml")
SEARCH_FEED = ("arxiv_atom", "derived", "arxivpy_q_testing_s0_m10_bc5a6c384fe9.body.xml")
_ENTRY = re.compile(r"<entry>.*?</entry>", re.DOTALL)
_ENTRY_ID = re.compile(r"<id>https?://arxiv\.org/abs/(.+?)(?:v\d+)?</id>")


@cache
def atom_entries() -> dict[str, str]:
    """arXiv id (no version) -> the recorded `<entry>` text, from every recorded feed."""
    entries: dict[str, str] = {}
    for parts in ATOM_FILES:
        for entry in _ENTRY.findall(fixture_text(*parts)):
            entries.setdefault(_ENTRY_ID.search(entry).group(1), entry)
    return entries


def entry_fields(arxiv_id: str) -> dict[str, Any]:
    """Title, authors, journal reference and version of a recorded entry."""
    root = ET.fromstring(feed([atom_entries()[arxiv_id]])).find(f"{ATOM}entry")
    return {
        "title": " ".join(root.findtext(f"{ATOM}title", "").split()),
        "authors": [a.findtext(f"{ATOM}name", "") for a in root.iter(f"{ATOM}author")],
        "journal": " ".join(root.findtext(f"{ARXIV}journal_ref", "").split()),
        "version": int(root.findtext(f"{ATOM}id", "").rpartition("v")[2]),
    }


def feed(entries: list[str]) -> str:
    """The recorded current-API envelope holding `entries` (the recorded empty feed when there are none)."""
    envelope = fixture_text(*EMPTY_FEED)
    if not entries:
        return envelope
    body = envelope.replace("<opensearch:totalResults>0<", f"<opensearch:totalResults>{len(entries)}<")
    return body.replace("</feed>", "".join(f"  {e}\n" for e in entries) + "</feed>")


def cut_feed(xml: str, limit: int) -> str:
    """A recorded search feed with its entries after the first `limit` left out (arXiv honours max_results)."""
    for extra in _ENTRY.findall(xml)[limit:]:
        xml = xml.replace(extra, "")
    return xml


@cache
def openalex_works() -> list[dict[str, Any]]:
    """The nine recorded OpenAlex works: the two sample lists and the three single works."""
    works: list[dict[str, Any]] = []
    for name in ("random_id_from_openalex.0", "random_id_from_openalex.1"):
        works += fixture_json("openalex", "derived", f"commonmeta_test_get_{name}.body.json")["results"]
    for name in ("journal_article", "proceedings_article", "posted_content"):
        works.append(fixture_json("openalex", "derived", f"commonmeta_test_{name}.body.json"))
    return works


def _bibitem(n: int, authors: list[str], title: str, venue: str) -> str:
    """A LaTeXML bibliography entry (authors / title / venue blocks), like the page's own."""
    names = ", ".join(authors[:-1]) + (", and " if len(authors) > 2 else " and ") + authors[-1]
    blocks = [html.escape(names), html.escape(title), venue]
    return (
        f'<li id="bib.bib{n}" class="ltx_bibitem"> <span class="ltx_tag ltx_role_refnum ltx_tag_bibitem">[{n}]</span> '
        + " ".join(f'<span class="ltx_bibblock">{block}.  </span>' for block in blocks)
        + " </li>"
    )


def cite_recorded_works(page: str) -> str:
    """The 1706.03762 page with bib16, bib28 and bib34 (cited in "2 Background" only) citing recorded works."""
    by_id = entry_fields("1111.2011")
    by_title = next(w for w in openalex_works() if w["doi"] == "https://doi.org/10.1101/097196")
    work = next(w for w in openalex_works() if w["doi"] == "https://doi.org/10.1145/3448016.3452841")
    replacements = {
        28: _bibitem(28, by_id["authors"], by_id["title"], "<i>arXiv preprint arXiv:1111.2011</i>, 2011"),
        16: _bibitem(16, [a["author"]["display_name"] for a in by_title["authorships"]], by_title["title"], "bioRxiv"),
        34: _bibitem(
            34,
            [a["author"]["display_name"] for a in work["authorships"]],
            work["title"],
            f'In <i>SIGMOD</i>, 2021. <a href="{work["doi"]}">{work["doi"]}</a>',
        ),
    }
    for n, item in replacements.items():
        page, count = re.subn(rf'<li id="bib\.bib{n}" class="ltx_bibitem">.*?</li>', item, page, flags=re.DOTALL)
        assert count == 1, f"bib.bib{n} not found in the recorded page"
    return page


# The replay -----------------------------------------------------------------------------------


@dataclass
class Seen:
    route: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Replay:
    """The replayed services, the stand-in models' tables, and every request received."""

    queries: list[str]  # what the crawler stand-in writes for any user query
    picks: dict[str, list[str]] = field(default_factory=dict)  # paper title -> sections it expands
    scores: dict[str, float] = field(default_factory=dict)  # paper title -> P(True)
    default_score: float = 0.2
    seen: list[Seen] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(s.route for s in self.seen)

    def of(self, route: str) -> list[Seen]:
        return [s for s in self.seen if s.route == route]

    def app(self) -> Starlette:
        def route(
            path: str, name: str, handler: Callable[[Request], Awaitable[Response]], method: str = "GET"
        ) -> Route:
            async def endpoint(request: Request) -> Response:
                raw = await request.body()
                self.seen.append(
                    Seen(
                        name,
                        request.url.path,
                        dict(request.query_params),
                        json.loads(raw) if raw else None,
                        dict(request.headers),
                    )
                )
                return await handler(request)

            return Route(path, endpoint, methods=[method])

        return Starlette(
            routes=[
                route("/serper/search", "serper", self.serper, "POST"),
                route("/arxiv/api/query", "arxiv", self.arxiv_api),
                route("/arxiv/html/{ident:path}", "arxiv_html", self.arxiv_html),
                route("/ar5iv/html/{ident:path}", "ar5iv", self.ar5iv),
                route("/s2/graph/v1/paper/search", "s2.search", self.s2_search),
                route("/s2/graph/v1/paper/{ident:path}/references", "s2.references", self.s2_references),
                route("/openalex/works", "openalex.works", self.openalex_list),
                route("/openalex/works/{ident:path}", "openalex.work", self.openalex_work),
                route("/crawler/v1/chat/completions", "crawler", self.crawler, "POST"),
                route("/selector/tokenize", "selector.tokenize", self.tokenize, "POST"),
                route("/selector/v1/completions", "selector", self.selector, "POST"),
            ]
        )

    # Sources --------------------------------------------------------------------------------

    async def serper(self, request: Request) -> Response:
        answer = copy.deepcopy(
            fixture_json("serper", "derived", "haystack_test_serperdev_EXAMPLE_SERPERDEV_RESPONSE.json")
        )
        for result, link in zip(answer["organic"], LINKS, strict=True):
            result["link"] = link or result["link"]
        return JSONResponse(answer)

    async def arxiv_api(self, request: Request) -> Response:
        params = request.query_params
        atom = {"media_type": "application/atom+xml; charset=utf-8"}
        if ids := params.get("id_list"):
            known = atom_entries()
            wanted = [re.sub(r"v\d+$", "", i) for i in ids.split(",")]
            return Response(feed([known[i] for i in wanted if i in known]), **atom)
        if 'ti:"' in params["search_query"]:
            return Response(fixture_text(*TITLE_SEARCH_FEED), **atom)
        return Response(cut_feed(fixture_text(*SEARCH_FEED), int(params["max_results"])), **atom)

    def _page(self, site: str, ident: str) -> Response:
        name = PAGES.get((site, ident))
        if name is None:
            return Response(status_code=404)
        page = fixture_text("arxiv_html", name)
        if "1706.03762" in name:
            page = cite_recorded_works(page)
        return Response(page, media_type="text/html; charset=utf-8")

    async def arxiv_html(self, request: Request) -> Response:
        ident = request.path_params["ident"]
        if ("arxiv_html", f"{ident}v1") in PAGES:
            return RedirectResponse(f"/arxiv/html/{ident}v1", status_code=301)
        return self._page("arxiv_html", ident)

    async def ar5iv(self, request: Request) -> Response:
        return self._page("ar5iv", request.path_params["ident"])

    async def s2_search(self, request: Request) -> Response:
        body = fixture_json("s2", "derived", "semanticscholar_test_search_paper.body.json")
        limit = int(request.query_params["limit"])
        return JSONResponse({**body, "next": limit, "data": body["data"][:limit]})

    async def s2_references(self, request: Request) -> Response:
        if request.path_params["ident"] != S2_REFERENCES:
            body = fixture_json("s2", "derived", "semanticscholar_test_not_found.0.body.json")
            return JSONResponse(body, status_code=404)
        page = {"0": 0, "50": 1}[request.query_params["offset"]]
        return JSONResponse(
            fixture_json("s2", "derived", f"semanticscholar_test_get_paper_references.{page}.body.json")
        )

    async def openalex_list(self, request: Request) -> Response:
        params = request.query_params
        sample = fixture_json("openalex", "derived", "commonmeta_test_get_random_id_from_openalex.1.body.json")
        if "search" in params:
            results = sample["results"][: int(params["per_page"])]
        else:
            kind, _, value = params["filter"].partition(":")
            wanted = value.lower().split("|")
            results = [w for w in openalex_works() if _matches(w, kind, wanted)]
        selected = [_select(w, params["select"]) for w in results]
        return JSONResponse({**sample, "meta": {**sample["meta"], "count": len(selected)}, "results": selected})

    async def openalex_work(self, request: Request) -> Response:
        ident = request.path_params["ident"]
        kind, value = ("doi", ident[4:]) if ident.startswith("doi:") else ("openalex", ident)
        work = next((w for w in openalex_works() if _matches(w, kind, [value.lower()])), None)
        if work is None:
            return Response(status_code=404)
        return JSONResponse(_select(work, request.query_params["select"]))

    # The model stand-in -------------------------------------------------------------------------

    async def crawler(self, request: Request) -> Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        if "\nSections: " in prompt:
            title = re.search(r"Title: (.*)\nAbstract:", prompt).group(1)
            text = "".join(f"[Expand] {name}\n" for name in self.picks.get(title, [])) + "[StopExpand]"
        else:
            text = "".join(f"[Search] {query}\n" for query in self.queries) + "[StopSearch]"
        chat = _recorded_chat()
        choice = {**chat["choices"][0], "message": {**chat["choices"][0]["message"], "content": text}}
        usage = _usage(len(prompt) // 4, len(text) // 4)
        return JSONResponse({**chat, "model": body["model"], "choices": [choice], "usage": usage})

    async def tokenize(self, request: Request) -> Response:
        return JSONResponse({"count": 1, "max_model_len": 32768, "tokens": [TRUE_ID], "token_strs": None})

    async def selector(self, request: Request) -> Response:
        body = await request.json()
        recorded = fixture_json("vllm", "vllm-issue-19305_completions_logprobs20_gemma-3-4b-it.json")
        choices = []
        for index, prompt in enumerate(body["prompt"]):
            title = re.search(r"\nTitle: (.*)\nAbstract:", prompt).group(1)
            top = _top_logprobs(self.scores.get(title, self.default_score))
            token = next(iter(top))
            choices.append(
                {
                    **recorded["choices"][0],
                    "index": index,
                    "text": "True" if token == f"token_id:{TRUE_ID}" else "False",
                    "logprobs": {
                        "text_offset": [0],
                        "token_logprobs": [top[token]],
                        "tokens": [token],
                        "top_logprobs": [top],
                    },
                }
            )
        tokens = sum(len(p) // 4 for p in body["prompt"])
        return JSONResponse(
            {**recorded, "model": body["model"], "choices": choices, "usage": _usage(tokens, len(choices))}
        )


def _matches(work: dict[str, Any], kind: str, wanted: list[str]) -> bool:
    if kind == "openalex":
        return work["id"].rsplit("/", 1)[-1].lower() in wanted
    if kind == "doi":
        return (work.get("doi") or "").lower().removeprefix("https://doi.org/") in wanted
    if kind == "title.search":
        words = set(re.findall(r"\w+", (work.get("title") or "").lower()))
        return all(word in words for word in re.findall(r"\w+", wanted[0]))
    raise AssertionError(f"the replay knows no OpenAlex filter {kind!r}")


def _select(work: dict[str, Any], select: str) -> dict[str, Any]:
    return {name: work[name] for name in select.split(",") if name in work}


def _recorded_chat() -> dict[str, Any]:
    """The recorded vLLM chat response, cut before its truncated `usage`; logprobs were not asked for."""
    text = fixture_text("vllm", "vllm-pr-17637_chat_logprobs_ministral-8b_TRUNCATED.txt")
    chat = json.loads(text[: text.index(',"usage"')] + "}")
    chat["choices"][0]["logprobs"] = None
    return chat


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
    }


def _top_logprobs(p_true: float) -> dict[str, float]:
    """The top 20 of a first position where P(True) = p_true: False takes most of the rest."""
    probs = {TRUE_ID: p_true, FALSE_ID: 0.98 * (1 - p_true)}
    probs |= {10_000 + i: 0.02 * (1 - p_true) / (TOP_N - 2) for i in range(TOP_N - 2)}
    ranked = sorted(probs.items(), key=lambda item: -item[1])
    return {f"token_id:{token}": math.log(p) for token, p in ranked}
