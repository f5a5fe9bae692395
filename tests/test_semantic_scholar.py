"""Semantic Scholar source against the recorded Graph API answers in shared/fixtures/s2."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import anyio
import httpx
import pytest
from conftest import fixture_json, fixture_text

from pasa_mcp.config import Settings
from pasa_mcp.net import Net, SourceRejected, SourceUnavailable
from pasa_mcp.papers import Paper
from pasa_mcp.sources.semantic_scholar import FIELDS, REFERENCE_FIELDS, SemanticScholar

pytestmark = pytest.mark.anyio

BASE = "https://s2.test/graph/v1"
KEY = "s2-secret-key-123"
NOT_FOUND = fixture_text("s2", "derived", "semanticscholar_test_not_found.0.body.json")  # Paper with id 0 not found


def body(name: str) -> Any:
    return fixture_json("s2", "derived", name)


@asynccontextmanager
async def s2(
    handler: Callable[[httpx.Request], httpx.Response], **settings: Any
) -> AsyncIterator[tuple[SemanticScholar, list[httpx.Request]]]:
    """A SemanticScholar on a MockTransport; yields it and the requests it sent."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    config = Settings(**{"s2_url": BASE, "s2_api_key": KEY, "s2_interval": 0, "http_retries": 2, **settings})
    net = Net(config, transport=httpx.MockTransport(record))
    try:
        yield SemanticScholar(net, config), sent
    finally:
        await net.aclose()
    assert all(KEY not in str(r.url) for r in sent), "the API key must travel only in its header"


async def test_search_sends_fields_exclusive_date_bound_key_header_and_parses_hits() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body("semanticscholar_test_search_paper.body.json"))

    async with s2(handler) as (source, sent):
        papers = await source.search("Megatron-Turing language model", limit=100, before=date(2024, 1, 1))

    (request,) = sent
    assert request.url.path == "/graph/v1/paper/search"
    assert dict(request.url.params) == {
        "query": "Megatron Turing language model",  # S2 finds nothing for hyphenated terms
        "fields": FIELDS,
        "limit": "100",
        "publicationDateOrYear": ":2023-12-31",
    }
    assert request.headers["x-api-key"] == KEY
    assert len(papers) == 100
    assert papers[0].title.startswith("Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B")
    assert papers[4].title == "Neural Turing Machines"
    assert papers[4].s2_id == "c1126fbffd6b8547a44c58b192b36b08b18299de"
    assert papers[4].key == "title:neuralturingmachines"  # this recording asked for titles only
    assert papers[4].sources == ["semantic_scholar"]


async def test_search_without_date_or_key_sends_neither() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"total": 0, "offset": 0, "data": []})

    async with s2(handler, s2_api_key=None) as (source, sent):
        assert await source.search("turing", limit=5, before=None) == []
    assert "publicationDateOrYear" not in sent[0].url.params
    assert "x-api-key" not in sent[0].headers


@pytest.mark.parametrize(("query", "limit"), [("  ", 10), ("turing", 0), ("turing", 101)])
async def test_search_rejects_bad_input_before_any_request(query: str, limit: int) -> None:
    async with s2(lambda request: httpx.Response(500)) as (source, sent):
        with pytest.raises(ValueError, match="Semantic Scholar search"):
            await source.search(query, limit=limit, before=None)
    assert sent == []


async def test_batch_maps_records_and_skips_the_null_for_an_unknown_id() -> None:
    ids = [
        "CorpusId:211530585",
        "CorpusId:470667",
        "DOI:10.2139/ssrn.2250500",
        "0f40b1f08821e22e859c6050916cec3667778613",
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body("semanticscholar_test_get_papers_not_found_warning.body.json"))

    async with s2(handler) as (source, sent):
        papers = await source.papers(ids)

    (request,) = sent
    assert request.method == "POST"
    assert request.url.path == "/graph/v1/paper/batch"
    assert request.url.params["fields"] == FIELDS
    assert json.loads(request.content) == {"ids": ids}
    assert request.headers["x-api-key"] == KEY
    assert list(papers) == ids[1:]  # the first id came back as null
    did = papers["CorpusId:470667"]
    assert did.title == "How Much Should We Trust Differences-in-Differences Estimates?"
    assert did.doi == "10.2139/ssrn.288970"
    assert did.s2_id == "c31c87c591a25c64fbaa82e8ac6a81831b6ac7ce"
    assert did.authors == ["Marianne Bertrand", "E. Duflo", "S. Mullainathan"]
    assert did.published == date(2001, 10, 1)
    assert did.abstract.startswith("Most Difference-in-Difference (DD) papers rely on many years of data")
    assert did.venue == "Experimental & Empirical Studies eJournal"  # venue "": the journal's name stands in
    assert did.url == "https://www.semanticscholar.org/paper/c31c87c591a25c64fbaa82e8ac6a81831b6ac7ce"
    assert (
        papers["DOI:10.2139/ssrn.2250500"].title == "The Miracle of Microfinance? Evidence from a Randomized Evaluation"
    )
    audits = papers["0f40b1f08821e22e859c6050916cec3667778613"]
    assert audits.venue is None  # neither a venue nor a journal
    assert audits.published == date(2023, 1, 1)  # publicationDate null: the year stands in
    assert audits.key == "doi:10.1257/rct.1355"


async def test_batch_sends_at_most_500_ids_a_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[None] * len(json.loads(request.content)["ids"]))

    async with s2(handler) as (source, sent):
        assert await source.papers([f"CorpusId:{n}" for n in range(1001)]) == {}
    assert [len(json.loads(r.content)["ids"]) for r in sent] == [500, 500, 1]


async def test_batch_answer_of_the_wrong_length_is_an_error() -> None:
    async with s2(lambda request: httpx.Response(200, json=[None])) as (source, _):
        with pytest.raises(SourceUnavailable, match="Semantic Scholar unavailable.*does not match"):
            await source.papers(["CorpusId:1", "CorpusId:2"])


async def test_arxiv_id_and_date_come_from_a_full_record() -> None:
    cited = fixture_json("s2", "semanticscholar_Reference.json")["citedPaper"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[cited])

    async with s2(handler) as (source, _):
        (paper,) = (await source.papers(["ARXIV:1402.0030"])).values()
    assert paper.arxiv_id == "1402.0030"
    assert paper.key == "arxiv:1402.0030"
    assert paper.published == date(2014, 1, 31)
    assert paper.venue == "International Conference on Machine Learning"
    assert paper.authors == ["A. Mnih", "Karol Gregor"]


async def test_title_match_accepts_the_same_title_and_refuses_a_mere_prefix() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body("semanticscholar_test_search_paper_match_title.body.json"))

    title = "Mining Association Rules between Sets of Items in Large Databases."
    async with s2(handler) as (source, sent):
        paper = await source.match_title(title)
        # The recorded answer was for this partial title: S2 returns its closest paper regardless.
        assert await source.match_title("mining association rules between") is None

    assert sent[0].url.path == "/graph/v1/paper/search/match"
    assert dict(sent[0].url.params) == {"query": title, "fields": FIELDS}
    assert paper is not None
    assert paper.s2_id == "6fe8c5bf8dddaadf10c765133d38dfef5714347f"
    assert paper.title == "Mining association rules between sets of items in large databases"


async def test_title_match_404_is_no_match() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # S2's documented answer when nothing matches (no recording of it in the fixtures).
        return httpx.Response(404, json={"error": "Title match not found"})

    async with s2(handler) as (source, _):
        assert await source.match_title("A title nobody wrote") is None


def references_handler(request: httpx.Request) -> httpx.Response:
    if request.url.params["offset"] == "0":
        return httpx.Response(200, json=body("semanticscholar_test_get_paper_references.0.body.json"))
    return httpx.Response(200, json=body("semanticscholar_test_get_paper_references.1.body.json"))


async def test_references_follow_next_across_both_recorded_pages() -> None:
    paper = Paper(
        title="The Miracle of Microfinance? Evidence from a Randomized Evaluation", doi="10.2139/ssrn.2250500"
    )
    async with s2(references_handler) as (source, sent):
        refs = await source.references(paper)

    assert [r.url.params["offset"] for r in sent] == ["0", "50"]
    assert all(r.url.raw_path.startswith(b"/graph/v1/paper/DOI:10.2139%2Fssrn.2250500/references?") for r in sent)
    assert sent[0].url.params["fields"] == REFERENCE_FIELDS
    assert refs is not None and len(refs) == 50 + 17
    assert (
        refs[0].title == "Group lending or individual lending? Evidence from a randomised field experiment in Mongolia"
    )
    # Page two: a reference S2 could not link to a paper (paperId null) still counts.
    assert refs[50].title == "Does Gender Matter for Firm Performance? Evidence from Eastern Europe and Central Asia"
    assert refs[51].title == "On the Macroeconomics of Microfinance"


async def test_references_prefer_the_s2_id_then_arxiv() -> None:
    async with s2(references_handler) as (source, sent):
        await source.references(Paper(title="x", s2_id="cb1ebd913c3724c599f6b276b14b5c6253da68f3", doi="10.1/x"))
        await source.references(Paper(title="x", arxiv_id="hep-th/9901001", doi="10.1/x"))
    assert sent[0].url.path == "/graph/v1/paper/cb1ebd913c3724c599f6b276b14b5c6253da68f3/references"
    assert sent[2].url.raw_path.startswith(b"/graph/v1/paper/ARXIV:hep-th%2F9901001/references?")


async def test_reference_keeps_ids_and_a_citation_text() -> None:
    page = {"offset": 0, "data": [fixture_json("s2", "semanticscholar_Reference.json")]}
    async with s2(lambda request: httpx.Response(200, json=page)) as (source, _):
        (ref,) = await source.references(Paper(title="NVIL citer", arxiv_id="1402.0030")) or []
    assert ref.title == "Neural Variational Inference and Learning in Belief Networks"
    assert ref.arxiv_id == "1402.0030"
    assert ref.text == (
        "A. Mnih, Karol Gregor. Neural Variational Inference and Learning in Belief Networks. "
        "International Conference on Machine Learning. 2014"
    )


async def test_references_of_a_paper_s2_does_not_know_are_none() -> None:
    async with s2(lambda request: httpx.Response(404, text=NOT_FOUND)) as (source, sent):
        assert await source.references(Paper(title="x", doi="10.9999/none")) is None
        assert await source.references(Paper(title="A paper with no identifier")) is None
    assert len(sent) == 1  # nothing to ask about the second


async def test_404_outside_match_and_references_is_a_clear_error() -> None:
    async with s2(lambda request: httpx.Response(404, text=NOT_FOUND)) as (source, _):
        with pytest.raises(SourceRejected) as caught:
            await source.search("turing", limit=10, before=None)
    message = str(caught.value)
    assert "Semantic Scholar rejected the request: HTTP 404" in message
    assert "Paper with id 0 not found" in message


async def test_429_with_retry_after_is_waited_out_then_answered() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "Too Many Requests.", "code": "429"}),
        httpx.Response(200, json=body("semanticscholar_test_search_paper_match_title.body.json")),
    ]
    async with s2(lambda request: answers.pop(0)) as (source, sent):
        with anyio.fail_after(0.9):  # backoff without Retry-After would wait at least 1 s
            paper = await source.match_title("Mining association rules between sets of items in large databases")
    assert paper is not None and paper.s2_id == "6fe8c5bf8dddaadf10c765133d38dfef5714347f"
    assert len(sent) == 2


async def test_503_forever_is_semantic_scholar_unavailable_without_the_key() -> None:
    async with s2(lambda request: httpx.Response(503, headers={"Retry-After": "0"}, text=KEY)) as (source, sent):
        with anyio.fail_after(0.9), pytest.raises(SourceUnavailable) as caught:
            await source.search("turing", limit=10, before=None)
    assert str(caught.value) == "Semantic Scholar unavailable: 2 retries, last HTTP 503"
    assert len(sent) == 3
