"""Google via serper.dev: the request sent, arXiv ids from result links, one batched arXiv lookup."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date

import httpx
import pytest
from conftest import fixture_json
from test_arxiv import atom, feed, recorded_entries

from pasa_mcp.config import Settings
from pasa_mcp.net import Net, SourceRejected, SourceUnavailable
from pasa_mcp.sources.arxiv import ArxivAPI
from pasa_mcp.sources.google import GoogleSearch, arxiv_ids

pytestmark = pytest.mark.anyio

KEY = "serper-test-key-0123456789"
SERPER = "https://serper.test"
ARXIV = "https://arxiv.test/api/query"
HAYSTACK = fixture_json("serper", "derived", "haystack_test_serperdev_EXAMPLE_SERPERDEV_RESPONSE.json")
APPLE = fixture_json("serper", "derived", "langchain_google_serper_ipynb_cell9_search_Apple_Inc.json")
LINKS = [  # rank order, as Google might list arXiv pages
    "https://arxiv.org/abs/1605.08386v1",
    "https://www.usmagazine.com/celebrity-news/pictures/olivia-wilde-and-harry-styles-relationship-timeline/",
    "https://arxiv.org/pdf/2104.12255v1",
    "http://arxiv.org/abs/cond-mat/0412498v1",
    "https://arxiv.org/pdf/1605.08386.pdf",
    "https://arxiv.org/list/cs.LG/recent",
    "https://arxiv.org/html/2202.12139v1/",
]
IDS = ["1605.08386", "2104.12255", "cond-mat/0412498", "2202.12139"]


def arxiv_results() -> dict:
    """The haystack response with its organic links replaced by arXiv URLs of several forms."""
    answer = copy.deepcopy(HAYSTACK)
    answer["searchParameters"]["q"] = "heat bath random walks site:arxiv.org"
    for item, link in zip(answer["organic"], LINKS, strict=False):
        item["link"] = link
    return answer


class Web:
    """serper.dev and the arXiv API behind one MockTransport, recording what each received."""

    def __init__(self, serper: Callable[[], httpx.Response]) -> None:
        self.serper_answer = serper
        self.serper: list[httpx.Request] = []
        self.arxiv: list[httpx.Request] = []
        self.entries = recorded_entries()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "serper.test":
            self.serper.append(request)
            return self.serper_answer()
        self.arxiv.append(request)
        wanted = request.url.params["id_list"].split(",")
        return atom(feed([self.entries[i] for i in reversed(wanted) if i in self.entries]))


@asynccontextmanager
async def google(web: Web, key: str | None = KEY, retries: int = 5) -> AsyncIterator[GoogleSearch]:
    settings = Settings(
        serper_api_key=key, serper_url=SERPER, arxiv_api_url=ARXIV, arxiv_interval=0, http_retries=retries
    )
    net = Net(settings, httpx.MockTransport(web))
    try:
        yield GoogleSearch(net, settings, ArxivAPI(net, settings))
    finally:
        await net.aclose()


async def test_search_sends_upstreams_query_and_looks_up_all_ids_in_one_request() -> None:
    web = Web(lambda: httpx.Response(200, json=arxiv_results()))
    async with google(web) as source:
        papers = await source.search("heat bath random walks", limit=10, before=date(2024, 1, 15))
    (request,) = web.serper
    assert request.method == "POST"
    assert str(request.url) == f"{SERPER}/search"
    assert request.headers["X-API-KEY"] == KEY
    assert json.loads(request.content) == {"q": "heat bath random walks before:2024-01-15 site:arxiv.org", "num": 10}
    (lookup,) = web.arxiv
    assert lookup.url.params["id_list"] == ",".join(IDS)
    assert [p.arxiv_id for p in papers] == IDS  # Google's ranking, whatever order arXiv answers in
    assert papers[0].title == "Heat-bath random walks with Markov bases"
    assert papers[2].title == "Thermal melting of density waves on the square lattice"
    assert all(p.sources == ["google", "arxiv"] for p in papers)


async def test_without_a_bound_the_query_has_no_before() -> None:
    web = Web(lambda: httpx.Response(200, json=arxiv_results()))
    async with google(web) as source:
        papers = await source.search("markov bases", limit=2, before=None)
    assert json.loads(web.serper[0].content) == {"q": "markov bases site:arxiv.org", "num": 2}
    assert web.arxiv[0].url.params["id_list"] == "1605.08386,2104.12255"
    assert len(papers) == 2


def test_ids_come_from_arxiv_links_only() -> None:
    assert arxiv_ids(arxiv_results()) == IDS
    assert arxiv_ids(HAYSTACK) == []
    assert arxiv_ids(APPLE) == []
    assert arxiv_ids({"searchParameters": {"q": "nothing"}}) == []
    with pytest.raises(ValueError, match="serper.dev answered"):
        arxiv_ids(["not", "a", "search", "result"])


async def test_recorded_answers_without_arxiv_links_give_no_papers_and_no_arxiv_request() -> None:
    web = Web(lambda: httpx.Response(200, json=HAYSTACK))
    async with google(web) as source:
        assert await source.search("Who is the boyfriend of Olivia Wilde?", limit=10, before=None) == []
    assert len(web.serper) == 1
    assert web.arxiv == []


async def test_a_missing_key_is_an_error_before_any_request() -> None:
    web = Web(lambda: httpx.Response(200, json=HAYSTACK))
    async with google(web, key=None) as source:
        with pytest.raises(ValueError, match="SERPER_API_KEY"):
            await source.search("graphs", limit=10, before=None)
    assert web.serper == []


async def test_a_rejected_key_is_reported_without_the_key() -> None:
    web = Web(lambda: httpx.Response(403, json={"message": "Unauthorized.", "statusCode": 403}))
    async with google(web) as source:
        with pytest.raises(SourceRejected) as caught:
            await source.search("graphs", limit=10, before=None)
    assert str(caught.value) == (
        "Google (serper.dev) rejected the request: HTTP 403 (the API key was refused: check SERPER_API_KEY)"
    )
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.args)


async def test_an_answer_that_is_not_json_is_retried_then_the_source_fails() -> None:
    web = Web(lambda: httpx.Response(200, text="<html>captcha</html>"))
    async with google(web, retries=0) as source:
        with pytest.raises(SourceUnavailable, match=r"Google \(serper.dev\) unavailable: malformed"):
            await source.search("graphs", limit=10, before=None)
