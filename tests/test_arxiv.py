"""The arXiv API source with the recorded Atom feeds (legacy and current) through httpx.MockTransport."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from urllib.parse import quote_plus

import anyio
import anyio.abc
import httpx
import pytest
from conftest import fixture_json, fixture_text

from pasa_mcp.config import Settings
from pasa_mcp.layers import SEARCHES, Layer, Member
from pasa_mcp.net import Net, SourceRejected, SourceUnavailable
from pasa_mcp.papers import Paper
from pasa_mcp.sources import STOOD_IN_TTL, StoodIn, cached_search
from pasa_mcp.sources.arxiv import (
    EMPTY_RETRIES,
    MAX_QUERY_CHARS,
    RESULTS_PER_TITLE,
    TITLES_PER_QUERY,
    ArxivAPI,
    ArxivError,
    parse_feed,
)
from pasa_mcp.sources.openalex import OpenAlex
from pasa_mcp.store import Store

pytestmark = pytest.mark.anyio

API = "https://export.arxiv.test/api/query"
ATOM = "{http://www.w3.org/2005/Atom}"
FEEDS = [
    "legacy_id_list_1111.2011v2.xml",
    "legacy_search_au_del_maestro.xml",
    "legacy_search_au_del_maestro_AND_ti_checkerboard.xml",
    "derived/arxivpy_id_1605.08386_s0_m100_199195aa31ad.body.xml",
    "derived/arxivpy_id_2104.12255v1_s0_m100_6ae69987ffe1.body.xml",
    "derived/arxivpy_q_testing_s0_m10_bc5a6c384fe9.body.xml",
]
EMPTY = fixture_text("arxiv_atom", "derived/arxivpy_id_0000.0000_s0_m100_8b51d9633a68.body.xml")
ERROR = fixture_json("arxiv_atom", "arxivpy_id_abc_s0_m100_b79c8dcf6bc3.json")
TESTING = fixture_text("arxiv_atom", FEEDS[-1])


def recorded_entries() -> dict[str, str]:
    """Every entry of the recorded feeds as XML, by its versionless arXiv id."""
    ET.register_namespace("", ATOM[1:-1])
    entries = {}
    for name in FEEDS:
        for entry in ET.fromstring(fixture_text("arxiv_atom", name)).iter(f"{ATOM}entry"):
            url = entry.findtext(f"{ATOM}id", "")
            arxiv_id = url.split("/abs/")[1].rsplit("v", 1)[0]
            entries[arxiv_id] = ET.tostring(entry, encoding="unicode")
    return entries


def feed(entries: list[str]) -> str:
    """A feed shaped like the current API's (namespaces declared on the root)."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom"'
        ' xmlns="http://www.w3.org/2005/Atom">\n'
        f"  <opensearch:totalResults>{len(entries)}</opensearch:totalResults>\n" + "".join(entries) + "</feed>\n"
    )


def made_up_entry(arxiv_id: str, title: str) -> str:
    return (
        f"<entry><id>http://arxiv.org/abs/{arxiv_id}v2</id><title>{title}</title>"
        "<summary>An abstract.</summary><published>2021-01-04T10:00:00Z</published>"
        "<author><name>A. Author</name></author></entry>"
    )


def atom(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=text, headers={"content-type": "application/atom+xml; charset=utf-8"})


@asynccontextmanager
async def arxiv_api(handler: Callable[[httpx.Request], httpx.Response]) -> AsyncIterator[ArxivAPI]:
    net = Net(Settings(arxiv_api_url=API, arxiv_interval=0), httpx.MockTransport(handler))
    try:
        yield ArxivAPI(net, Settings(arxiv_api_url=API))
    finally:
        await net.aclose()


# Parsing ------------------------------------------------------------------------------------------


def test_legacy_id_feed_parses_every_field() -> None:
    (paper,) = parse_feed(fixture_text("arxiv_atom", "legacy_id_list_1111.2011v2.xml"))
    assert paper.arxiv_id == "1111.2011"
    assert paper.title == "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    assert paper.abstract.startswith("Theoretical description of anisotropic systems, such as layered superconductors")
    assert paper.authors == ["James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic"]
    assert paper.published == date(2011, 11, 8)
    assert paper.doi == "10.1103/physrevb.85.115117"
    assert paper.venue == "Phys. Rev. B 85, 115117 (2012)"
    assert paper.url == "https://arxiv.org/abs/1111.2011"
    assert paper.sources == ["arxiv"]


def test_current_id_feeds_parse() -> None:
    (paper,) = parse_feed(fixture_text("arxiv_atom", FEEDS[3]))
    assert (paper.arxiv_id, paper.title) == ("1605.08386", "Heat-bath random walks with Markov bases")
    assert paper.authors == ["Caprice Stanley", "Tobias Windisch"]
    assert paper.published == date(2016, 5, 26)
    assert paper.doi is None and paper.venue is None
    (versioned,) = parse_feed(fixture_text("arxiv_atom", FEEDS[4]))
    assert versioned.arxiv_id == "2104.12255"
    assert versioned.published == date(2021, 4, 20)


def test_legacy_search_feed_keeps_old_style_ids() -> None:
    papers = parse_feed(fixture_text("arxiv_atom", "legacy_search_au_del_maestro.xml"))
    assert len(papers) == 10
    assert [p.arxiv_id for p in papers][:3] == ["1201.4869", "cond-mat/0412498", "cond-mat/0603029"]
    old = papers[1]
    assert old.title == "Thermal melting of density waves on the square lattice"
    assert old.published == date(2004, 12, 19)
    assert old.doi == "10.1103/physrevb.71.184511"
    assert old.venue == "Physical Review B 71, 184511 (2005)"
    assert old.authors == ["Adrian Del Maestro", "Subir Sachdev"]
    assert papers[4].authors == ["B. Kulchytskyy", "G. Gervais", "A. Del Maestro"]


def test_current_search_feed_parses() -> None:
    papers = parse_feed(TESTING)
    assert len(papers) == 10
    first = papers[0]
    assert first.arxiv_id == "2202.12139"
    assert first.title == "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    assert first.authors == ["Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker"]
    assert first.doi == "10.1109/icstw55395.2022.00035"
    assert first.published == date(2022, 2, 24)
    assert papers[-1].arxiv_id == "1812.11470"


def test_error_feed_raises_arxivs_message() -> None:
    assert ERROR["status_code"] == 400
    with pytest.raises(ArxivError, match="arXiv API error: incorrect id format for abc"):
        parse_feed(ERROR["body"])


def test_empty_result_is_an_empty_list() -> None:
    assert parse_feed(EMPTY) == []


def test_malformed_xml_is_an_error() -> None:
    with pytest.raises(ValueError, match="malformed Atom"):
        parse_feed(TESTING[: len(TESTING) // 2])
    with pytest.raises(ValueError, match="not an Atom feed"):
        parse_feed("<html><body>Service unavailable</body></html>")


# Search -------------------------------------------------------------------------------------------


async def test_search_sends_all_terms_with_an_exclusive_submission_date_bound() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(TESTING)

    async with arxiv_api(handler) as api:
        papers = await api.search("Testing of deep-learning models", limit=3, before=date(2024, 1, 15))
    (request,) = sent
    assert str(request.url).startswith(API + "?")
    assert request.url.params["search_query"] == (
        "(all:Testing AND all:deep AND all:learning AND all:models) AND submittedDate:[190001010000 TO 202401142359]"
    )
    assert request.url.params["max_results"] == "3"
    assert request.url.params["sortBy"] == "relevance"
    assert [p.arxiv_id for p in papers] == ["2202.12139", "2405.13786", "2005.14124"]


async def test_search_without_bound_and_bad_queries() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(EMPTY)

    async with arxiv_api(handler) as api:
        assert await api.search("the attention", limit=10, before=None) == []
        assert sent[0].url.params["search_query"] == "all:attention"
        with pytest.raises(ValueError, match="no words"):
            await api.search(" -- ", limit=10, before=None)
        with pytest.raises(ValueError, match="limit"):
            await api.search("graphs", limit=0, before=None)
    assert len(sent) == 1


# Id lookups ---------------------------------------------------------------------------------------


async def test_250_ids_take_three_requests_of_at_most_100() -> None:
    sent: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["id_list"].split(",")
        sent.append(ids)
        assert request.url.params["max_results"] == str(len(ids))
        return atom(feed([made_up_entry(i, f"Paper {i}") for i in reversed(ids)]))

    ids = [f"2101.{n:05d}" for n in range(1, 249)] + ["hep-th/9901001v2", "https://arxiv.org/pdf/2101.00001v3"]
    async with arxiv_api(handler) as api:
        found = await api.papers(ids)
    assert [len(batch) for batch in sent] == [100, 100, 49]  # the pdf link repeats 2101.00001
    assert "hep-th/9901001" in sent[2] and "hep-th/9901001v2" not in sent[2]
    assert len(found) == 249
    assert found["hep-th/9901001"].title == "Paper hep-th/9901001"
    assert found["2101.00001"].published == date(2021, 1, 4)


async def test_the_searches_of_a_deep_search_share_one_metadata_request() -> None:
    sent: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params["id_list"].split(","))
        return atom(feed([made_up_entry(i, f"Paper {i}") for i in sent[-1]]))

    searches = Layer()
    first, second, cached = searches.member(), searches.member(), searches.member()
    found: list[dict] = []

    async def search(member: Member, ids: list[str]) -> None:
        SEARCHES.set(member)  # as the agent does around each search (a task's own context)
        found.append(await api.papers(ids, gather=True))

    async with arxiv_api(handler) as api:
        async with anyio.create_task_group() as tg:
            tg.start_soon(search, first, ["2101.00001", "2101.00002"])
            tg.start_soon(search, second, ["2101.00003"])
            await anyio.wait_all_tasks_blocked()
            assert sent == []  # the third search is still out
            cached.done()  # ... and answered from the store without asking
        await api.papers(["2101.00004"], gather=True)  # outside a deep search: sent at once
    assert sent == [["2101.00001", "2101.00002", "2101.00003"], ["2101.00004"]]
    assert sorted(len(f) for f in found) == [1, 2]


async def test_spurious_empty_feed_is_retried() -> None:
    answers = [atom(EMPTY), atom(fixture_text("arxiv_atom", FEEDS[3]))]
    async with arxiv_api(lambda request: answers.pop(0)) as api:
        found = await api.papers(["arXiv:1605.08386v1"])
    assert list(found) == ["1605.08386"]
    assert answers == []


async def test_an_id_arxiv_does_not_know_is_absent_after_the_retries() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(EMPTY)

    async with arxiv_api(handler) as api:
        assert await api.papers(["2401.99999"]) == {}
    assert len(sent) == 1 + EMPTY_RETRIES


class StandIn:
    """Semantic Scholar's batch lookup as the arXiv API's stand-in: knows the papers given, counts asks."""

    def __init__(self, papers: list[Paper], fails: bool = False) -> None:
        self.known = {f"ARXIV:{p.arxiv_id}": p for p in papers}
        self.fails, self.asked = fails, []

    async def papers(self, ids: list[str]) -> dict[str, Paper]:
        self.asked.append(ids)
        if self.fails:
            raise SourceUnavailable("Semantic Scholar", 3, "HTTP 500")
        return {i: self.known[i] for i in ids if i in self.known}


async def test_while_the_api_is_down_a_stand_in_answers_and_what_it_lacks_stays_unconfirmed() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0"}, text="down")

    one, two = (Paper(title=f"Paper {n}", arxiv_id=f"2401.0000{n}") for n in (1, 2))
    net = Net(Settings(arxiv_api_url=API, arxiv_interval=0, http_retries=1), httpx.MockTransport(down))
    try:
        knows_both = StandIn([one, two])
        api = ArxivAPI(net, Settings(arxiv_api_url=API), stand_in=knows_both)
        found = await api.papers(["2401.00001", "arXiv:2401.00002v3"])
        assert found == {"2401.00001": one, "2401.00002": two} and api.unconfirmed == set()
        assert knows_both.asked == [["ARXIV:2401.00001", "ARXIV:2401.00002"]]
        # What the stand-in lacks is left out, and not taken for an id arXiv does not know.
        api = ArxivAPI(net, Settings(arxiv_api_url=API), stand_in=StandIn([one]))
        assert await api.papers(["2401.00001", "2401.00002"]) == {"2401.00001": one}
        assert api.unconfirmed == {"2401.00002"}
        # A stand-in that knows none of them, or fails: arXiv's own failure.
        for stand_in in (StandIn([]), StandIn([one, two], fails=True)):
            api = ArxivAPI(net, Settings(arxiv_api_url=API), stand_in=stand_in)
            with pytest.raises(SourceUnavailable, match="arXiv API unavailable"):
                await api.papers(["2401.00001", "2401.00002"])
    finally:
        await net.aclose()


class SearchStandIn:
    """A search source standing in for arXiv's search: answers with the papers given (or fails), records asks."""

    name = "stand_in"
    filters_categories = True

    def __init__(self, papers: list[Paper], fails: bool = False) -> None:
        self.papers, self.fails, self.asked = papers, fails, []

    async def search(
        self, query: str, *, limit: int, before: date | None, after: date | None = None, categories: Sequence[str] = ()
    ) -> list[Paper]:
        self.asked.append({"query": query, "limit": limit, "before": before, "after": after, "categories": categories})
        if self.fails:
            raise SourceUnavailable("Stand-in", 2, "HTTP 500")
        return self.papers[:limit]


OPENALEX = "https://openalex.test"
ON_ARXIV = {  # an arXiv preprint as OpenAlex lists it: its arXiv DOI and arxiv.org location
    "id": "https://openalex.org/W4221145109",
    "doi": "https://doi.org/10.48550/arxiv.2202.12139",
    "title": "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques",
    "publication_date": "2022-02-24",
    "primary_location": {"landing_page_url": "https://arxiv.org/abs/2202.12139", "source": {"display_name": "arXiv"}},
}
IN_A_JOURNAL = {"id": "https://openalex.org/W1", "title": "Testing neural networks", "publication_year": 2020}


@asynccontextmanager
async def arxiv_search_down(
    arxiv: httpx.Response, openalex: httpx.Response, *more: SearchStandIn
) -> AsyncIterator[tuple[ArxivAPI, dict[str, list[httpx.Request]]]]:
    """An ArxivAPI whose search gets `arxiv` every time, OpenAlex (answering `openalex`) its first search
    stand-in and `more` the next; yields it and the requests each host got."""
    sent: dict[str, list[httpx.Request]] = {"arxiv": [], "openalex": []}

    def handler(request: httpx.Request) -> httpx.Response:
        host = "openalex" if str(request.url).startswith(OPENALEX) else "arxiv"
        sent[host].append(request)
        return arxiv if host == "arxiv" else openalex

    settings = Settings(arxiv_api_url=API, openalex_url=OPENALEX, arxiv_interval=0, openalex_interval=0, http_retries=1)
    net = Net(settings, httpx.MockTransport(handler))
    try:
        yield ArxivAPI(net, settings, search_stand_ins=[OpenAlex(net, settings, indexed_in="arxiv"), *more]), sent
    finally:
        await net.aclose()


DOWN = httpx.Response(503, headers={"Retry-After": "0"}, text="down")


async def test_while_search_is_down_openalex_answers_and_its_papers_keep_their_arxiv_ids(tmp_path: Path) -> None:
    answer = httpx.Response(200, json={"meta": {"count": 2}, "results": [ON_ARXIV, IN_A_JOURNAL]})
    async with arxiv_search_down(DOWN, answer) as (api, sent):
        papers = await api.search("Testing of deep-learning models", limit=3, before=date(2024, 1, 15))
        assert len(sent["arxiv"]) == 2  # arXiv's search failed every retry first
        (asked,) = sent["openalex"]
        assert asked.url.params["search"] == "Testing of deep-learning models"
        assert asked.url.params["filter"] == "to_publication_date:2024-01-14,indexed_in:arxiv"  # arXiv's works
        assert asked.url.params["per_page"] == "3"
        assert isinstance(papers, StoodIn) and papers.by == "openalex"
        assert papers.why == "arXiv API unavailable: 1 retries, last HTTP 503"  # for the caller to report
        assert [(p.arxiv_id, p.sources) for p in papers] == [("2202.12139", ["openalex"]), (None, ["openalex"])]
        assert papers[0].key == "arxiv:2202.12139"  # expanded through arXiv's HTML like arXiv's own hits
        # Cached for a minute only, so that arXiv's own answer replaces it once arXiv is back.
        store = Store(tmp_path / "store.sqlite3")
        try:
            passed_on = await cached_search(api, store, "graphs", limit=2, before=None, ttl=30 * 86400)
            (kept,) = store.db.execute("SELECT expires - fetched FROM searches").fetchone()
            assert isinstance(passed_on, StoodIn) and passed_on.by == "openalex"  # the caller learns it too
        finally:
            store.close()
    assert kept == STOOD_IN_TTL


async def test_when_the_stand_in_fails_too_the_next_is_asked_and_then_arxivs_failure_stands() -> None:
    one = Paper(title="Paper 1", arxiv_id="2401.00001")
    async with arxiv_search_down(DOWN, DOWN, SearchStandIn([one])) as (api, sent):
        papers = await api.search("graphs", limit=5, before=None, after=date(2020, 1, 1), categories=["cs.LG"])
        assert papers == [one] and papers.by == "stand_in"
        assert len(sent["openalex"]) == 2
        # The next stand-in filters categories, as arXiv does: it gets them.
        assert api.search_stand_ins[1].asked == [
            {"query": "graphs", "limit": 5, "before": None, "after": date(2020, 1, 1), "categories": ["cs.LG"]}
        ]
    async with arxiv_search_down(DOWN, DOWN, SearchStandIn([one], fails=True)) as (api, sent):
        with pytest.raises(SourceUnavailable, match="arXiv API unavailable: 1 retries, last HTTP 503"):
            await api.search("graphs", limit=5, before=None)
        assert len(sent["openalex"]) == 2 and len(api.search_stand_ins[1].asked) == 1


async def test_a_rejected_search_is_not_handed_to_a_stand_in() -> None:
    stand_in = SearchStandIn([Paper(title="Paper 1", arxiv_id="2401.00001")])
    rejected = atom(ERROR["body"], status=ERROR["status_code"])
    async with arxiv_search_down(rejected, httpx.Response(200, json={"results": []}), stand_in) as (api, sent):
        with pytest.raises(SourceRejected, match="arXiv API rejected the request: HTTP 400 for search_query="):
            await api.search("graphs", limit=5, before=None)
    assert len(sent["arxiv"]) == 1 and sent["openalex"] == [] and stand_in.asked == []


async def test_ids_that_are_not_arxiv_ids_are_refused_before_any_request() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(EMPTY)

    async with arxiv_api(handler) as api:
        with pytest.raises(ValueError, match="not arXiv ids: 'abc'"):
            await api.papers(["1605.08386", "abc"])
    assert sent == []


async def test_http_400_error_feed_is_rejected_without_retry_naming_the_request() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(ERROR["body"], status=ERROR["status_code"])

    async with arxiv_api(handler) as api:
        with pytest.raises(SourceRejected, match=r"arXiv API rejected the request: HTTP 400 for id_list=1605\.08386"):
            await api.papers(["1605.08386"])
    assert len(sent) == 1


# Title search -------------------------------------------------------------------------------------


async def test_title_search_batches_titles_and_accepts_only_matching_titles() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return atom(TESTING)

    titles = [
        "Testing deep learning models: a first comparative study of multiple testing techniques.",
        "Towards Explainable Test Case Prioritisation with Learning to Rank Models",
        "Testing Deep Learning Models",  # a phrase of a real title, but not that title
        '{Q}uantum "quoted" (title) [x]',
    ]
    async with arxiv_api(handler) as api:
        found = await api.search_titles(titles)
    (request,) = sent
    assert request.url.params["search_query"] == (
        'ti:"testing deep learning models a first comparative study of multiple testing techniques"'
        ' OR ti:"towards explainable test case prioritisation with learning to rank models"'
        ' OR ti:"testing deep learning models" OR ti:"quantum quoted title x"'
    )
    assert request.url.params["max_results"] == str(4 * RESULTS_PER_TITLE)
    assert found[titles[0]].arxiv_id == "2202.12139"
    assert found[titles[1]].arxiv_id == "2405.13786"
    assert found[titles[2]] is None
    assert found[titles[3]] is None


async def test_title_search_requests_stay_within_title_and_length_limits() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(request.url.params["search_query"])
        return atom(EMPTY)

    titles = [f"Study {n} of " + " ".join(["interdisciplinarity"] * (n % 14)) for n in range(60)]
    async with arxiv_api(handler) as api:
        found = await api.search_titles(titles)
    assert found == dict.fromkeys(titles)
    clauses = [q.split(" OR ") for q in queries]
    assert sum(map(len, clauses)) == 60
    assert all(len(c) <= TITLES_PER_QUERY for c in clauses)
    assert all(len(quote_plus(q)) <= MAX_QUERY_CHARS for q in queries)
    assert len(queries) > math.ceil(60 / TITLES_PER_QUERY)  # these long titles hit the length limit
    for query, following in zip(clauses, clauses[1:], strict=False):  # a new request only when one is full
        fuller = " OR ".join([*query, following[0]])
        assert len(query) == TITLES_PER_QUERY or len(quote_plus(fuller)) > MAX_QUERY_CHARS


# Coalescing concurrent callers ---------------------------------------------------------------------


class HeldFirst:
    """An arXiv API whose first request waits until the test releases it; later ones get `later`."""

    def __init__(self, later: httpx.Response) -> None:
        self.later = later
        self.queries: list[str] = []
        self.first_arrived, self.release = anyio.Event(), anyio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(request.url.params["search_query"])
        if len(self.queries) == 1:
            self.first_arrived.set()
            await self.release.wait()
            return atom(TESTING)
        return self.later


def some_titles(tag: str) -> list[str]:
    return [f"Study {tag} number {n}" for n in range(10)]


async def test_titles_asked_while_a_request_is_out_share_the_next_request() -> None:
    server = HeldFirst(later=atom(TESTING))
    late = [*some_titles("b"), "Towards explainable test case prioritisation with learning-to-rank models"]
    results: dict[str, dict] = {}
    async with arxiv_api(server) as api:

        async def ask(name: str, titles: list[str]) -> None:
            results[name] = await api.search_titles(titles)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "a", some_titles("a"))
                await server.first_arrived.wait()
                tg.start_soon(ask, "b", late)
                tg.start_soon(ask, "c", some_titles("c"))
                await anyio.wait_all_tasks_blocked()
                server.release.set()
    assert len(server.queries) == 2
    assert server.queries[1].count("ti:") == 21
    assert results["b"][late[-1]].arxiv_id == "2405.13786"
    assert set(results["c"].values()) == {None}


async def test_a_failed_request_fails_every_caller_it_carried() -> None:
    server = HeldFirst(later=atom(ERROR["body"], status=400))
    failures: list[str] = []
    async with arxiv_api(server) as api:

        async def ask(name: str) -> None:
            try:
                await api.search_titles(some_titles(name))
            except SourceRejected:
                failures.append(name)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "a")
                await server.first_arrived.wait()
                tg.start_soon(ask, "b")
                tg.start_soon(ask, "c")
                await anyio.wait_all_tasks_blocked()
                server.release.set()
    assert sorted(failures) == ["b", "c"]
    assert len(server.queries) == 2


async def test_a_cancelled_caller_withdraws_its_titles() -> None:
    server = HeldFirst(later=atom(TESTING))
    async with arxiv_api(server) as api:

        async def give_up_later(*, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
            with anyio.CancelScope() as scope:
                task_status.started(scope)
                await api.search_titles(some_titles("b"))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(api.search_titles, some_titles("a"))
                await server.first_arrived.wait()
                scope = await tg.start(give_up_later)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
                tg.start_soon(api.search_titles, some_titles("c"))
                await anyio.wait_all_tasks_blocked()
                server.release.set()
    assert len(server.queries) == 2
    assert server.queries[1].count("ti:") == 10 and "study c" in server.queries[1]
    assert "study b" not in server.queries[1]
