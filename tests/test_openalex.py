"""OpenAlex source against the recorded works in shared/fixtures/openalex."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import fixture_json

from pasa_mcp.config import Settings
from pasa_mcp.net import Net, SourceRejected, SourceUnavailable
from pasa_mcp.papers import Paper, normalize_doi
from pasa_mcp.sources.openalex import (
    SELECT,
    OpenAlex,
    abstract_from_inverted_index,
    arxiv_id_of,
    paper_from_work,
)
from tools.world import World

pytestmark = pytest.mark.anyio

BASE = "https://openalex.test"
KEY = "oa-secret-key-456"
MAILTO = "team@example.org"


def work(name: str) -> Any:
    return fixture_json("openalex", "derived", f"commonmeta_test_{name}.body.json")


JOURNAL, PROCEEDINGS, PREPRINT = work("journal_article"), work("proceedings_article"), work("posted_content")
SAMPLE = fixture_json("openalex", "derived", "commonmeta_test_get_random_id_from_openalex.1.body.json")


@asynccontextmanager
async def openalex(
    handler: Callable[[httpx.Request], httpx.Response], **settings: Any
) -> AsyncIterator[tuple[OpenAlex, list[httpx.Request]]]:
    """An OpenAlex on a MockTransport; yields it and the requests it sent."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    config = Settings(
        **{
            "openalex_url": BASE,
            "openalex_api_key": KEY,
            "openalex_mailto": MAILTO,
            "openalex_interval": 0,
            "http_retries": 2,
            **settings,
        }
    )
    net = Net(config, transport=httpx.MockTransport(record))
    try:
        yield OpenAlex(net, config), sent
    finally:
        await net.aclose()


def listing(*works: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"meta": {"count": len(works)}, "results": list(works)})


def test_abstract_is_rebuilt_in_word_order() -> None:
    text = abstract_from_inverted_index(JOURNAL["abstract_inverted_index"])
    assert text.startswith("Triosephosphate isomerase (TPI) deficiency is an autosomal recessive disorder caused by")
    assert len(text.split()) == 260  # positions 0..259, each word once
    assert abstract_from_inverted_index(None) == ""
    assert abstract_from_inverted_index({"b": [1], "a": [0, 2]}) == "a b a"


def test_work_maps_to_a_paper() -> None:
    paper = paper_from_work(JOURNAL)
    assert paper is not None
    assert paper.title.startswith("Triose Phosphate Isomerase Deficiency Is Caused by Altered Dimerization")
    assert paper.doi == "10.1371/journal.pone.0000030"
    assert paper.openalex_id == "W1982728624"
    assert paper.published == date(2006, 12, 20)
    assert paper.authors == ["Markus Ralser", "Gino Heeren", "Michael Breitenbach", "Hans Lehrach", "Sylvia Krobitsch"]
    assert paper.venue == "PLoS ONE"
    assert paper.abstract.startswith("Triosephosphate isomerase (TPI) deficiency")
    assert paper.arxiv_id is None
    assert paper.sources == ["openalex"]
    proceedings = paper_from_work(PROCEEDINGS)
    assert proceedings is not None
    assert proceedings.venue == "Proceedings of the 2021 International Conference on Management of Data"  # no source
    assert proceedings.authors[4] == "Martı́n Farach-Colton"


def test_no_recorded_work_claims_an_arxiv_id() -> None:
    for recorded in [JOURNAL, PROCEEDINGS, PREPRINT, *SAMPLE["results"]]:
        assert arxiv_id_of(recorded) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("doi", "https://doi.org/10.48550/arXiv.1706.03762"),
        ("landing_page_url", "http://arxiv.org/abs/1706.03762v5"),
        ("pdf_url", "https://arxiv.org/pdf/1706.03762"),
    ],
)
def test_arxiv_id_is_found_where_openalex_puts_it(field: str, value: str) -> None:
    # The recorded bioRxiv work, given an arXiv copy the way OpenAlex lists one (no recording has it).
    preprint = copy.deepcopy(PREPRINT)
    if field == "doi":
        preprint["doi"] = value
    else:
        preprint["locations"].append({"landing_page_url": None, "pdf_url": None, field: value})
    paper = paper_from_work(preprint)
    assert paper is not None and paper.arxiv_id == "1706.03762"
    assert paper.key == "arxiv:1706.03762"


async def test_search_sends_query_exclusive_date_bound_key_and_mailto() -> None:
    async with openalex(lambda request: httpx.Response(200, json=SAMPLE)) as (source, sent):
        papers = await source.search("waste treatment decision making", limit=5, before=date(2024, 1, 1))

    (request,) = sent
    assert request.url.path == "/works"
    assert dict(request.url.params) == {
        "search": "waste treatment decision making",
        "per_page": "5",
        "filter": "to_publication_date:2023-12-31",
        "select": SELECT,
        "api_key": KEY,
        "mailto": MAILTO,
    }
    assert [p.openalex_id for p in papers] == [
        "W2600965442",
        "W2042435470",
        "W2497229624",
        "W7120675484",
        "W2117049431",
    ]
    electre = papers[4]
    assert electre.title.startswith("ELECTRE III as a support for participatory decision-making")
    assert electre.doi == "10.1016/j.landusepol.2004.08.009"
    assert electre.published == date(2004, 12, 12)
    assert papers[0].doi is None and papers[0].key.startswith("title:patriotismascriterion")


async def test_search_without_key_or_mailto_sends_neither() -> None:
    async with openalex(lambda r: listing(), openalex_api_key=None, openalex_mailto=None) as (source, sent):
        assert await source.search("anything", limit=3, before=None) == []
    assert set(sent[0].url.params) == {"search", "per_page", "select"}


@pytest.mark.parametrize(("query", "limit"), [("", 5), ("x", 0), ("x", 101)])
async def test_search_rejects_bad_input_before_any_request(query: str, limit: int) -> None:
    async with openalex(lambda request: listing()) as (source, sent):
        with pytest.raises(ValueError, match="OpenAlex search"):
            await source.search(query, limit=limit, before=None)
    assert sent == []


async def test_title_match_takes_the_close_title_and_cleans_the_filter() -> None:
    async with openalex(lambda request: listing(JOURNAL, PROCEEDINGS)) as (source, sent):
        paper = await source.match_title("Vector quotient filters.")
        assert await source.match_title("Vector quotient filters: overcoming the time/space trade-off, again") is None
    assert paper is not None and paper.doi == "10.1145/3448016.3452841"
    assert sent[0].url.params["filter"] == "title.search:Vector quotient filters"
    assert sent[0].url.params["per_page"] == "5"
    # Commas and colons would split the filter: only words reach it.
    assert (
        sent[1].url.params["filter"] == "title.search:Vector quotient filters overcoming the time space trade off again"
    )


async def test_title_match_refuses_an_empty_title() -> None:
    async with openalex(lambda request: listing()) as (source, sent):
        with pytest.raises(ValueError, match="needs a title"):
            await source.match_title(" :: ")
    assert sent == []


async def test_papers_are_fetched_by_ored_ids_and_keyed_as_asked() -> None:
    async with openalex(lambda request: listing(PROCEEDINGS, JOURNAL)) as (source, sent):
        papers = await source.papers(["W1982728624", "https://openalex.org/W3174427814", "W1"])
    assert sent[0].url.params["filter"] == "openalex:W1982728624|W3174427814|W1"
    assert sent[0].url.params["per_page"] == "3"
    assert list(papers) == ["W1982728624", "https://openalex.org/W3174427814"]  # W1 is unknown
    assert papers["https://openalex.org/W3174427814"].title == "Vector Quotient Filters"


async def test_papers_go_50_ids_a_request() -> None:
    async with openalex(lambda request: listing()) as (source, sent):
        assert await source.papers([f"W{n}" for n in range(1, 121)]) == {}
    assert [len(r.url.params["filter"].removeprefix("openalex:").split("|")) for r in sent] == [50, 50, 20]


async def test_papers_refuse_what_is_not_a_work_id() -> None:
    async with openalex(lambda request: listing()) as (source, sent):
        with pytest.raises(ValueError, match="not OpenAlex work ids"):
            await source.papers(["W1", "10.1145/3448016.3452841"])
    assert sent == []


def as_cited(ids: list[str]) -> list[dict[str, Any]]:
    """Recorded works standing in for the cited ones (the recordings hold no cited work's own record)."""
    donors = [PROCEEDINGS, PREPRINT, *SAMPLE["results"]]
    return [{**copy.deepcopy(donors[n % len(donors)]), "id": cited} for n, cited in enumerate(ids)]


async def test_references_resolve_referenced_works_in_batches_and_keep_their_order() -> None:
    cited = JOURNAL["referenced_works"]
    known = as_cited(cited[:3]) + as_cited(cited[60:61])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/works/doi:"):
            return httpx.Response(200, json={"id": JOURNAL["id"], "referenced_works": cited})
        asked = request.url.params["filter"].removeprefix("openalex:").split("|")
        # Answer out of order, and only for the works we have records for.
        return listing(*reversed([w for w in known if w["id"].rsplit("/", 1)[1] in asked]))

    paper = Paper(title="Triose Phosphate Isomerase Deficiency", doi="10.1371/journal.pone.0000030")
    async with openalex(handler) as (source, sent):
        refs = await source.references(paper)

    assert sent[0].url.path == "/works/doi:10.1371/journal.pone.0000030"
    assert sent[0].url.params["select"] == "id,referenced_works"
    assert sent[0].url.params["api_key"] == KEY
    assert [len(r.url.params["filter"].split("|")) for r in sent[1:]] == [50, 26]  # 76 referenced works
    assert refs is not None
    assert [r.title for r in refs] == [
        "Vector Quotient Filters",
        "A Data Citation Roadmap for Scholarly Data Repositories",
        SAMPLE["results"][0]["title"],
        "Vector Quotient Filters",  # cited[60], donor 0 again
    ]
    assert refs[0].doi == "10.1145/3448016.3452841"
    assert refs[1].text == (
        "Martin Fenner, Mercè Crosas, Jeffrey Grethe, David Kennedy, Henning Hermjakob, Philippe Rocca-Serra, "
        "Gustavo Durand, Robin Berjon, Sebastian Karcher, Maryann Martone, Timothy Clark. "
        "A Data Citation Roadmap for Scholarly Data Repositories. bioRxiv (Cold Spring Harbor Laboratory). 2016"
    )


async def test_references_look_up_by_openalex_id_then_doi_then_arxiv_doi() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "https://openalex.org/W2", "referenced_works": []})

    async with openalex(handler) as (source, sent):
        assert await source.references(Paper(title="x", openalex_id="W3174427814", doi="10.1/x")) == []
        assert await source.references(Paper(title="x", arxiv_id="1706.03762")) == []
        assert await source.references(Paper(title="A paper with no identifier")) is None
    assert [r.url.path for r in sent] == ["/works/W3174427814", "/works/doi:10.48550/arxiv.1706.03762"]


async def test_references_of_an_unknown_work_are_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "404 Not Found", "message": "The requested URL was not found."})

    async with openalex(handler) as (source, _):
        assert await source.references(Paper(title="x", doi="10.9999/none")) is None


async def test_an_error_never_shows_the_api_key_even_when_the_server_echoes_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": f"api_key {request.url.params['api_key']} is not valid"})

    async with openalex(handler) as (source, sent):
        with pytest.raises(SourceRejected) as caught:
            await source.search("graphs", limit=5, before=None)
    assert KEY in str(sent[0].url)  # the key did go out, as a query parameter
    message = str(caught.value)
    assert message.startswith("OpenAlex rejected the request: HTTP 400")
    assert KEY not in message and "api_key **** is not valid" in message


async def test_a_refused_key_says_which_setting_to_check(tmp_path: Path) -> None:
    async with World.start(seed=3, papers=50, latency=False, time_scale=0.01) as world:
        wrong = Settings(**{**world.settings(), "openalex_api_key": "not-the-key"}, store_path=tmp_path / "s.sqlite3")
        net = Net(wrong)
        try:
            with pytest.raises(SourceRejected) as caught:
                await OpenAlex(net, wrong).match_title(world.corpus.papers[0].title)
        finally:
            await net.aclose()
    assert caught.value.status == 401 and "check OPENALEX_API_KEY" in str(caught.value)
    assert "not-the-key" not in str(caught.value)


async def test_429_with_retry_after_is_waited_out_then_answered() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json=SAMPLE)]
    async with openalex(lambda request: answers.pop(0)) as (source, sent):
        with anyio.fail_after(0.9):  # backoff without Retry-After would wait at least 1 s
            papers = await source.search("anything", limit=5, before=None)
    assert len(papers) == 5 and len(sent) == 2


async def test_503_forever_is_openalex_unavailable_without_the_key() -> None:
    async with openalex(lambda request: httpx.Response(503, headers={"Retry-After": "0"})) as (source, sent):
        with anyio.fail_after(0.9), pytest.raises(SourceUnavailable) as caught:
            await source.papers(["W1"])
    assert str(caught.value) == "OpenAlex unavailable: 2 retries, last HTTP 503"
    assert len(sent) == 3


async def test_an_answer_that_is_not_json_is_retried_then_a_clear_error() -> None:
    portal = lambda request: httpx.Response(200, text="<html>captive portal</html>")  # noqa: E731
    async with openalex(portal, http_retries=1) as (source, sent):
        with pytest.raises(SourceUnavailable, match=r"OpenAlex unavailable: 1 retries, last malformed answer"):
            await source.search("graphs", limit=5, before=None)
    assert len(sent) == 2  # one retry: a garbled body is often a cut-off one


async def test_papers_by_doi_batches_dois_into_or_filters() -> None:
    work = fixture_json("openalex", "derived", "commonmeta_test_journal_article.body.json")
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(200, json={"results": [work]})

    async with openalex(handler) as (source, _):
        dois = [f"10.1000/x{i}" for i in range(60)] + ["https://doi.org/10.1371/journal.pone.0000030", "10.1000/a|b"]
        found = await source.papers_by_doi(dois)
    assert [p["filter"].count("|") + 1 for p in seen] == [50, 11]  # the DOI with a "|" is never sent
    assert seen[0]["filter"].startswith("doi:10.1000/x")
    assert list(found) == ["10.1371/journal.pone.0000030"]


async def test_reference_search_sends_the_entrys_words_and_returns_the_ranked_works() -> None:
    async with openalex(lambda request: listing(JOURNAL, PREPRINT)) as (source, sent):
        papers = await source.search_reference("A. Porter, Lattice Lett. 116, 125 (2000).")
        with pytest.raises(ValueError, match="needs words"):
            await source.search_reference(" .,; ")
    (request,) = sent
    assert request.url.params["search"] == "A Porter Lattice Lett 116 125 2000"
    assert [p.doi for p in papers] == [normalize_doi(JOURNAL["doi"]), normalize_doi(PREPRINT["doi"])]


async def test_a_429_without_retry_after_is_the_daily_allowance_spent_and_nothing_more_is_asked_today() -> None:
    spent = lambda request: httpx.Response(429, json={"error": "Rate limit exceeded"})  # noqa: E731
    async with openalex(spent, openalex_api_key=None) as (source, sent):
        with anyio.fail_after(0.9), pytest.raises(SourceUnavailable) as caught:  # no backoff, no retries
            await source.search("graphs", limit=5, before=None)
        assert len(sent) == 1
        assert "HTTP 429, the daily allowance is spent" in str(caught.value)
        assert "https://openalex.org/settings/api" in str(caught.value) and "OPENALEX_API_KEY" in str(caught.value)
        with pytest.raises(SourceUnavailable, match="spent until 00:00 UTC"):
            await source.papers(["W1"])
        assert len(sent) == 1  # not asked again before the allowance renews


async def test_the_spent_allowance_renews_when_x_ratelimit_reset_says() -> None:
    answers = [httpx.Response(429, headers={"X-RateLimit-Reset": "1"}, json={"error": "Rate limit exceeded"})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json={"meta": {"count": 0}, "results": []})

    async with openalex(handler, openalex_api_key=None) as (source, sent):
        with pytest.raises(SourceUnavailable, match="the daily allowance is spent"):
            await source.search("graphs", limit=5, before=None)
        with pytest.raises(SourceUnavailable, match="spent until"):
            await source.search("graphs", limit=5, before=None)
        assert len(sent) == 1
        await anyio.sleep(1.1)  # renewed: asked again, and answered
        assert await source.search("graphs", limit=5, before=None) == [] and len(sent) == 2


async def test_with_a_key_the_spent_allowance_is_the_keys_and_the_key_stays_secret() -> None:
    async with openalex(lambda request: httpx.Response(429)) as (source, sent):
        with pytest.raises(SourceUnavailable) as caught:
            await source.match_title("Attention Is All You Need")
    assert len(sent) == 1 and "this OPENALEX_API_KEY's allowance" in str(caught.value) and KEY not in str(caught.value)


async def test_the_worlds_openalex_spends_its_keyless_allowance_and_the_client_stops_there(tmp_path: Path) -> None:
    async with World.start(seed=3, papers=200, latency=False, time_scale=0.01, openalex_keyless_allowance=25) as world:
        keyless = Settings(**{**world.settings(), "openalex_api_key": None}, store_path=tmp_path / "store.sqlite3")
        net = Net(keyless)
        source = OpenAlex(net, keyless)
        found, failed = 0, []
        for paper in world.corpus.papers[:6]:
            try:
                found += await source.match_title(paper.title) is not None
            except SourceUnavailable as exc:
                failed.append(str(exc))
        await net.aclose()
        counts = world.log.counts()["openalex"]
    # a title search costs 10 of the 25: two are answered, the third is refused, the rest never sent
    assert found == 2 and len(failed) == 4 and counts["requests"] == 3 and counts["status_429"] == 1
    # ... until 00:00 UTC, as the 429's X-RateLimit-Reset counts down to (and the client's clock agrees)
    assert "HTTP 429, the daily allowance is spent" in failed[0] and "spent until 00:00 UTC" in failed[-1]
