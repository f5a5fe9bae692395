"""tools/world: the simulated scholarly web answers in the real services' shapes, deterministically,
with its rate limits, faults, scripted models and crawler-recall bound behaving as documented."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from pasa_mcp.config import Settings
from pasa_mcp.latexml import parse_page
from pasa_mcp.net import Net, SourceUnavailable
from pasa_mcp.papers import normalize_arxiv_id, title_key
from pasa_mcp.protocol import parse_queries, parse_sections, query_prompt, section_prompt, selector_prompt
from tools.world import TRUE_ID, Corpus, Faults, Limits, World, crawl, latexml, reachable, vocab
from tools.world.config import DEFAULT_LIMITS, WorldConfig
from tools.world.gate import Limit
from tools.world.layout import layout_of
from tools.world.limit import physical_limit
from tools.world.models import p_true

NS = {
    "a": "http://www.w3.org/2005/Atom",
    "os": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
}
SIM = "pasa-mcp tools/world"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    """One quiet world (no latency, no limits) shared by the tests that only read from it."""
    async with World.start(seed=11, papers=600, latency=False, limits={}) as w:
        yield w


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def _answer(world: World, need_html: bool = False) -> tuple[dict, object]:
    for row in world.queries:
        for arxiv_id in row["answer_arxiv_id"]:
            paper = world.corpus.papers[world.corpus.by_arxiv[arxiv_id]]
            if not need_html or paper.arxiv_html:
                return row, paper
    raise AssertionError("no suitable answer in the corpus")


# The corpus -------------------------------------------------------------------------------------


def test_corpus_is_a_pure_function_of_its_seed() -> None:
    one, two, other = Corpus(3, 400), Corpus(3, 400), Corpus(4, 400)
    assert [(p.title, p.arxiv_id, p.refs) for p in one.papers] == [(p.title, p.arxiv_id, p.refs) for p in two.papers]
    assert one.queries == two.queries
    assert [p.title for p in one.papers] != [p.title for p in other.papers]


def test_corpus_mixes_id_styles_doi_only_papers_and_rewritten_citations() -> None:
    corpus = Corpus(7, 3000)
    ids = [p.arxiv_id for p in corpus.papers if p.arxiv_id]
    assert all(normalize_arxiv_id(i) == i for i in ids)
    assert any("/" in i for i in ids) and any(re.fullmatch(r"\d{4}\.\d{5}", i) for i in ids)
    assert any(p.arxiv_id is None and p.doi for p in corpus.papers)
    assert all(corpus.papers[r].published <= p.published for p in corpus.papers for r in p.refs)
    written = [
        item.title != corpus.papers[item.target].title
        for p in corpus.papers[-200:]
        for item in layout_of(corpus, p).bib
        if item.target is not None
    ]
    assert 0.05 < sum(written) / len(written) < 0.3
    assert len({title_key(p.title) for p in corpus.papers}) == len(corpus.papers)


def test_vocabulary_word_sets_are_disjoint() -> None:
    def words(items: object) -> set[str]:
        return {w for item in items for w in re.findall(r"[a-z0-9]+", item.lower())}  # type: ignore[attr-defined]

    topic = words(vocab.MODIFIERS) | words(vocab.NOUNS)
    aspects = words(a for pair in vocab.ASPECTS for a in pair)
    filler = words([*vocab.ADJECTIVES, *vocab.PROPERTIES, *vocab.CLAIMS, *vocab.COMPONENTS])
    assert not words(vocab.MODIFIERS) & words(vocab.NOUNS)
    assert not topic & aspects and not filler & (topic | aspects)


def test_planted_questions_have_the_pasa_dataset_format_and_answers_before_the_end_date() -> None:
    corpus = Corpus(5, 1500)
    assert corpus.queries
    for row in corpus.queries:
        assert set(row) == {"question", "answer", "answer_arxiv_id", "source_meta", "qid"}
        assert len(row["answer"]) == len(row["answer_arxiv_id"]) >= 3
        published = row["source_meta"]["published_time"]
        assert re.fullmatch(r"\d{8}", published)
        for title, arxiv_id in zip(row["answer"], row["answer_arxiv_id"], strict=True):
            paper = corpus.papers[corpus.by_arxiv[arxiv_id]]
            assert paper.title == title and corpus.relevance(row["question"], paper) == 2
            assert paper.published.strftime("%Y%m%d") < published


# Wire formats -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_arxiv_api_answers_in_the_atom_format_with_paging_and_the_error_feed(world: World, client) -> None:
    url = world.settings()["arxiv_api_url"]
    row, paper = _answer(world)
    old = next(p for p in world.corpus.papers if p.arxiv_id and "/" in p.arxiv_id)
    r = await client.get(url, params={"id_list": f"{paper.arxiv_id},{old.arxiv_id}v1,0000.0000", "max_results": 100})
    assert r.status_code == 200 and r.headers["x-simulation"] == SIM and "Simulated" in r.text
    feed = ET.fromstring(r.content)
    assert feed.findtext("os:totalResults", namespaces=NS) == "2"
    entries = feed.findall("a:entry", NS)
    first = entries[0]
    assert first.findtext("a:id", namespaces=NS) == f"http://arxiv.org/abs/{paper.arxiv_id}v{paper.versions}"
    assert first.findtext("a:title", namespaces=NS) == paper.title
    assert first.findtext("a:summary", namespaces=NS) == paper.abstract
    assert first.findtext("a:published", namespaces=NS).startswith(str(paper.published.year))
    assert first.findtext("a:updated", namespaces=NS)
    assert [a.findtext("a:name", namespaces=NS) for a in first.findall("a:author", NS)] == paper.authors
    assert first.find("arxiv:primary_category", NS).get("term") == paper.categories[0]
    assert {link.get("title") for link in first.findall("a:link", NS)} >= {None, "pdf"}
    assert entries[1].findtext("a:id", namespaces=NS) == f"http://arxiv.org/abs/{old.arxiv_id}v1"

    bad = await client.get(url, params={"id_list": "abc"})
    assert bad.status_code == 400
    error = ET.fromstring(bad.content).find("a:entry", NS)
    assert error.findtext("a:title", namespaces=NS) == "Error"
    assert error.findtext("a:summary", namespaces=NS) == "incorrect id format for abc"

    phrase = await client.get(url, params={"search_query": f'ti:"{paper.title}"', "max_results": 5})
    ids = [e.findtext("a:id", namespaces=NS) for e in ET.fromstring(phrase.content).findall("a:entry", NS)]
    assert normalize_arxiv_id(ids[0]) == paper.arxiv_id

    query = "abs:experiments AND submittedDate:[200001010000 TO 202012312359]"
    pages = [
        await client.get(url, params={"search_query": query, "start": s, "max_results": n})
        for s, n in ((0, 4), (4, 4), (0, 8))
    ]
    ids = [[e.findtext("a:id", namespaces=NS) for e in ET.fromstring(p.content).findall("a:entry", NS)] for p in pages]
    assert ids[0] + ids[1] == ids[2] and len(ids[2]) == 8
    for e in ET.fromstring(pages[2].content).findall("a:entry", NS):
        assert "2000" <= e.findtext("a:published", namespaces=NS)[:4] <= "2020"


def _protocol_sections(html: str) -> dict[str, set[str]]:
    """A minimal reading of PROTOCOL section 3: leaf section keys -> cited bibliography ids."""
    tree = HTMLParser(html)
    keys: dict[str, set[str]] = {}

    def cites(node) -> set[str]:
        return {a.attributes["href"].split("#")[1] for a in node.css("cite.ltx_cite a.ltx_ref")}

    def heading(node) -> str:
        return " ".join(node.text().split())

    for section in tree.css("article > section.ltx_section"):
        h2 = heading(section.css_first("h2"))
        subs = section.css("section.ltx_subsection")
        for sub in subs:
            if found := cites(sub):
                keys[f"{h2} {heading(sub.css_first('h3'))}"] = found
        if not subs and (found := cites(section)):
            keys[h2] = found
    return keys


@pytest.mark.anyio
async def test_arxiv_html_redirects_to_the_latest_version_and_serves_a_latexml_page(world: World, client) -> None:
    settings = world.settings()
    paper = next(p for p in world.corpus.papers if p.arxiv_html and len(p.refs) > 8)
    r = await client.get(f"{settings['arxiv_html_url']}/{paper.arxiv_id}")
    assert r.status_code == 302
    assert r.headers["location"].endswith(f"/html/{paper.arxiv_id}v{paper.versions}")
    page = await client.get(r.headers["location"])
    tree = HTMLParser(page.text)
    assert "Simulated" in page.text and page.headers["x-simulation"] == SIM
    assert tree.css_first("article.ltx_document h1.ltx_title_document").text(strip=True) == paper.title
    assert tree.css("section.ltx_section > h2.ltx_title.ltx_title_section")
    items = tree.css("section.ltx_bibliography ul.ltx_biblist > li.ltx_bibitem")
    assert items and all(i.attributes["id"].startswith("bib.bib") and i.css("span.ltx_bibblock") for i in items)

    layout = layout_of(world.corpus, paper)
    parsed = _protocol_sections(page.text)
    target = {f"bib.bib{n}": item.target for n, item in enumerate(layout.bib, 1)}
    assert {k: {target[b] for b in v} - {None} for k, v in parsed.items()} == layout.section_map()

    missing = next(p for p in world.corpus.papers if p.arxiv_id and not p.arxiv_html)
    assert (await client.get(f"{settings['arxiv_html_url']}/{missing.arxiv_id}")).status_code == 404
    on_ar5iv = next(p for p in world.corpus.papers if p.ar5iv)
    ar5iv = await client.get(f"{settings['ar5iv_url']}/{on_ar5iv.arxiv_id}")
    assert ar5iv.status_code == 200 and HTMLParser(ar5iv.text).css_first("article.ltx_document")
    assert (await client.get(f"{settings['ar5iv_url']}/9912.99999")).status_code == 404


@pytest.mark.anyio
async def test_semantic_scholar_answers_in_its_json_shapes(world: World, client) -> None:
    base = world.settings()["s2_url"]
    row, paper = _answer(world)
    search = (await client.get(f"{base}/paper/search", params={"query": row["question"], "limit": 5})).json()
    assert search["offset"] == 0 and search["next"] == 5 and search["total"] > 5
    assert set(search["data"][0]) == {"paperId", "title"}

    match = await client.get(
        f"{base}/paper/search/match", params={"query": paper.title.lower(), "fields": "externalIds"}
    )
    hit = match.json()["data"][0]
    assert hit["externalIds"]["ArXiv"] == paper.arxiv_id and hit["matchScore"] > 0
    miss = await client.get(f"{base}/paper/search/match", params={"query": "zzz qqq unrelated words"})
    assert miss.status_code == 404 and miss.json() == {"error": "Title match not found"}

    fields = "title,externalIds,authors,year,abstract,publicationDate"
    batch = await client.post(
        f"{base}/paper/batch", params={"fields": fields}, json={"ids": [f"ARXIV:{paper.arxiv_id}", "CorpusId:1"]}
    )
    record, absent = batch.json()
    assert absent is None and record["title"] == paper.title and record["authors"][0]["name"] == paper.authors[0]

    citing = next(p for p in world.corpus.papers if p.refs and p.externals)
    refs = (
        await client.get(
            f"{base}/paper/{world.corpus.s2_id(citing)}/references", params={"fields": "title,externalIds"}
        )
    ).json()
    cited = [d["citedPaper"] for d in refs["data"]]
    assert len(cited) == len(citing.refs) + len(citing.externals)
    assert {c["title"] for c in cited if c["paperId"]} == {world.corpus.papers[r].title for r in citing.refs}
    assert any(c["paperId"] is None for c in cited)

    gone = await client.get(f"{base}/paper/0")
    assert gone.status_code == 404 and gone.json() == {"error": "Paper with id 0 not found"}
    bad = await client.get(f"{base}/paper/search", params={"query": "x", "fields": "nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.json()["error"]


@pytest.mark.anyio
async def test_openalex_answers_in_its_json_shapes(world: World, client) -> None:
    base = world.settings()["openalex_url"]
    row, paper = _answer(world)
    answer = await client.get(f"{base}/works", params={"search": row["question"], "per_page": 5})
    found = answer.json()
    assert set(found["meta"]) >= {"count", "page", "per_page"} and len(found["results"]) == 5
    # Without the key: what is left of the day's allowance, and the seconds until it renews at 00:00 UTC.
    assert float(answer.headers["X-RateLimit-Remaining-USD"]) < 0.01
    assert 0 < int(answer.headers["X-RateLimit-Reset"]) <= 86_400
    keyed = await client.get(f"{base}/works", params={"search": "x", "api_key": world.config.openalex_key})
    assert keyed.status_code == 200 and "X-RateLimit-Reset" not in keyed.headers
    work = found["results"][0]
    assert work["id"].startswith("https://openalex.org/W") and "relevance_score" in work
    assert isinstance(work["authorships"], list) and "referenced_works" in work

    w1, w2 = world.corpus.openalex_id(paper), world.corpus.openalex_id(world.corpus.papers[0])
    both = (await client.get(f"{base}/works", params={"filter": f"openalex:{w1}|{w2}"})).json()
    assert {r["id"] for r in both["results"]} == {f"https://openalex.org/{w1}", f"https://openalex.org/{w2}"}
    one = (await client.get(f"{base}/works/{w1}")).json()
    words = sorted((i, w) for w, positions in (one["abstract_inverted_index"] or {}).items() for i in positions)
    assert one["title"] == paper.title and (not words or " ".join(w for _, w in words) == paper.abstract)
    assert (await client.get(f"{base}/works/W1")).status_code == 404
    assert (await client.get(f"{base}/works", params={"filter": "bogus:1"})).status_code == 400
    assert (await client.get(f"{base}/works/{w1}", params={"api_key": "wrong"})).status_code == 401


@pytest.mark.anyio
async def test_crossref_finds_a_work_by_a_reference_string_without_its_title(world: World) -> None:
    from pasa_mcp.net import SourceRejected
    from pasa_mcp.sources.crossref import Crossref
    from pasa_mcp.titles import reference_matches

    settings = Settings(**{k: v for k, v in world.settings().items() if k.startswith("crossref")})
    _, paper = _answer(world)
    # An APS-style entry: authors, words of the abstract as a stand-in for a journal, year; no title.
    text = f"{', '.join(paper.authors)}, {' '.join(paper.abstract.split()[:6])} ({paper.published.year})."
    net = Net(settings)
    try:
        found = await Crossref(net, settings).search_reference(text)
        with pytest.raises(SourceRejected, match="rows"):
            await net.request("crossref", "GET", f"{settings.crossref_url}/works", params={"rows": "x"})
    finally:
        await net.aclose()
    assert found and any(p.title == paper.title and reference_matches(text, p) for p in found)


@pytest.mark.anyio
async def test_serper_returns_arxiv_links_before_the_date_and_checks_the_key(world: World, client) -> None:
    settings = world.settings()
    row, _ = _answer(world)
    end = "2015-06-01"
    r = await client.post(
        f"{settings['serper_url']}/search",
        headers={"X-API-KEY": settings["serper_api_key"]},
        json={"q": f"{row['question']} before:{end} site:arxiv.org", "num": 10},
    )
    body = r.json()
    assert body["searchParameters"]["q"].endswith("site:arxiv.org") and body["organic"]
    for position, item in enumerate(body["organic"], 1):
        assert item["position"] == position and {"title", "link", "snippet"} <= set(item)
        arxiv_id = normalize_arxiv_id(item["link"])
        if arxiv_id:  # a listing page now and then, as on Google
            assert world.corpus.papers[world.corpus.by_arxiv[arxiv_id]].published.date().isoformat() < end
    denied = await client.post(f"{settings['serper_url']}/search", headers={"X-API-KEY": "wrong"}, json={"q": "x"})
    assert denied.status_code == 403


# The scripted models ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_vllm_endpoints_answer_like_vllm(world: World, client) -> None:
    settings = world.settings()
    base = settings["selector_urls"][0]
    root = base.removesuffix("/v1")
    assert (await client.get(f"{root}/health")).status_code == 200
    assert (
        (await client.get(f"{base}/models")).json()["data"][0]["id"]
        == settings["selector_model"]
        == "sim-pasa-7b-selector"
    )
    tokens = (await client.post(f"{root}/tokenize", json={"prompt": "True", "add_special_tokens": False})).json()
    assert tokens["tokens"] == [TRUE_ID] and tokens["count"] == 1 and tokens["max_model_len"] > 0

    row, paper = _answer(world)
    stranger = next(p for p in world.corpus.papers if world.corpus.relevance(row["question"], p) == 0)
    prompts = [selector_prompt(row["question"], p.title, p.abstract) for p in (paper, stranger)]
    request = {"model": settings["selector_model"], "prompt": prompts, "max_tokens": 1, "temperature": 0}
    full = (await client.post(f"{base}/completions", json={**request, "logprobs": 20})).json()
    assert [c["index"] for c in full["choices"]] == [0, 1] and full["usage"]["completion_tokens"] == 2
    for choice in full["choices"]:
        top = choice["logprobs"]["top_logprobs"][0]
        assert math.isclose(sum(math.exp(v) for v in top.values()), 1.0, rel_tol=1e-9)  # a proper distribution
        assert choice["logprobs"]["tokens"] == [choice["text"]] and choice["logprobs"]["text_offset"] == [0]
    as_ids = (
        await client.post(f"{base}/completions", json={**request, "logprobs": 3, "return_tokens_as_token_ids": True})
    ).json()
    assert f"token_id:{TRUE_ID}" in as_ids["choices"][0]["logprobs"]["top_logprobs"][0]
    exact = (
        await client.post(
            f"{base}/completions", json={**request, "prompt": prompts[1], "logprobs": 1, "logprob_token_ids": [TRUE_ID]}
        )
    ).json()
    top = exact["choices"][0]["logprobs"]["top_logprobs"][0]
    assert set(top) == {"False", "True"} and top["True"] < top["False"]

    timings = []
    for _ in range(10):  # small answers must not stall on Nagle's algorithm (40 ms on every request)
        with anyio.fail_after(5):
            started = anyio.current_time()
            await client.get(f"{base}/models")
            timings.append(anyio.current_time() - started)
    assert min(timings) < 0.035  # the fastest of ten: a loaded machine slows some, Nagle would slow all

    too_many = await client.post(f"{base}/completions", json={**request, "logprobs": 21})
    assert too_many.status_code == 400 and "max allowed: 20" in too_many.json()["error"]["message"]
    wrong = await client.post(f"{base}/completions", json={**request, "model": "pasa-7b-selector"})
    assert wrong.status_code == 404


@pytest.mark.anyio
async def test_selector_probability_follows_ground_truth_without_noise(world: World, client) -> None:
    settings = world.settings()
    corpus = world.corpus
    row = world.queries[0]
    question = row["question"]
    answers = [corpus.papers[corpus.by_arxiv[i]] for i in row["answer_arxiv_id"]]
    others = [p for p in corpus.papers if corpus.relevance(question, p) < 2][:30]
    papers = answers + others
    r = await client.post(
        f"{settings['selector_urls'][0]}/completions",
        json={
            "model": settings["selector_model"],
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": 1,
            "logprob_token_ids": [TRUE_ID],
            "prompt": [selector_prompt(question, p.title, p.abstract) for p in papers],
        },
    )
    scores = [math.exp(c["logprobs"]["top_logprobs"][0]["True"]) for c in r.json()["choices"]]
    assert all(s > 0.5 for s in scores[: len(answers)]) and all(s < 0.5 for s in scores[len(answers) :])
    noisy = [p_true(corpus, question, p, p.title, 3.0) for p in papers]
    assert noisy == [p_true(corpus, question, p, p.title, 3.0) for p in papers]  # a pure function
    assert any((n > 0.5) != (s > 0.5) for n, s in zip(noisy, scores, strict=True))


@pytest.mark.anyio
async def test_crawler_writes_search_queries_and_expands_sections_citing_answers(world: World, client) -> None:
    settings = world.settings()
    corpus = world.corpus
    url = f"{settings['crawler_urls'][0]}/chat/completions"

    async def chat(content: str) -> httpx.Response:
        body = {
            "model": settings["crawler_model"],
            "messages": [{"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": 512,
        }
        return await client.post(url, json=body)

    row = world.queries[0]
    first = (await chat(query_prompt(row["question"]))).json()
    again = (await chat(query_prompt(row["question"]))).json()
    output = first["choices"][0]["message"]["content"]
    assert output == again["choices"][0]["message"]["content"] and output.endswith("[StopSearch]")
    queries = parse_queries(output, 5)
    topic, aspect = corpus.mentions(row["question"])
    assert len(queries) == 5 and topic in queries[0] and aspect in queries[0]

    sections: dict[str, set[int]] = {}
    for paper in corpus.papers:
        if paper.arxiv_html or paper.ar5iv:
            sections = layout_of(corpus, paper).section_map()
            relevant = [
                k
                for k, v in sections.items()
                if any(corpus.relevance(row["question"], corpus.papers[t]) == 2 for t in v)
            ]
            if relevant and len(relevant) < len(sections):
                break
    reply = (await chat(section_prompt(row["question"], paper.title, paper.abstract, list(sections)))).json()
    chosen = parse_sections(reply["choices"][0]["message"]["content"], sections)
    assert chosen == relevant

    unrelated = next(
        p
        for p in corpus.papers
        if p.arxiv_html
        and corpus.relevance(row["question"], p) == 0
        and not any(corpus.relevance(row["question"], corpus.papers[r]) for r in p.refs)
    )
    names = list(layout_of(corpus, unrelated).section_map())
    nothing = (await chat(section_prompt(row["question"], unrelated.title, unrelated.abstract, names))).json()
    assert nothing["choices"][0]["message"]["content"] == "[StopExpand]"
    assert (await chat("Tell me a joke.")).status_code == 400


# Behaviour: limits, faults, log -----------------------------------------------------------------


@pytest.mark.anyio
async def test_arxiv_rate_limit_answers_429_when_exceeded_and_not_to_a_polite_client() -> None:
    # 1.5 s between requests: the world forgives 0.15 s of earliness, more than a loaded 2-core
    # machine's stalls between a request leaving and its arrival being stamped; and room for a burst
    # of four to arrive within one interval.
    scale = 0.5
    async with World.start(seed=2, papers=200, latency=False, time_scale=scale) as world:
        settings = Settings(**world.settings())
        url = settings.arxiv_api_url
        net = Net(settings)  # pasa-mcp's polite client: one request per arxiv_interval, one at a time
        try:
            polite = [await net.request("arxiv", "GET", url, params={"id_list": "0000.0000"}) for _ in range(5)]
        finally:
            await net.aclose()
        assert all(r.status_code == 200 for r in polite)
        assert world.log.counts()["arxiv_api"] == {"requests": 5, "exceeded": 0, "faults": 0, "status_200": 5}

        async with httpx.AsyncClient(timeout=10) as client:
            burst: list[httpx.Response] = []

            async def one() -> None:
                burst.append(await client.get(url, params={"id_list": "0000.0000"}))

            async with anyio.create_task_group() as tg:  # all four at once, however busy the machine
                for _ in range(4):
                    tg.start_soon(one)
            counts = (await client.get(url.removesuffix("/api/query") + "/_world/counts")).json()
        limited = [r for r in burst if r.status_code == 429]
        assert len(limited) >= 3 and all(0 < float(r.headers["retry-after"]) <= math.ceil(3.0 * scale) for r in limited)
        assert counts == world.log.counts()  # the counts endpoint is neither logged nor limited
        assert counts["arxiv_api"]["requests"] == 9 and counts["arxiv_api"]["exceeded"] == len(limited)


@pytest.mark.anyio
async def test_openalex_answers_requests_over_its_rate_403_as_its_error_reference_says() -> None:
    async with World.start(seed=2, papers=200, latency=False, time_scale=1.0) as world:
        url = Settings(**world.settings()).openalex_url.rstrip("/") + "/works"
        async with httpx.AsyncClient(timeout=10) as client:
            answers: list[httpx.Response] = []

            async def one() -> None:
                answers.append(await client.get(url, params={"filter": "doi:10.1/x", "api_key": "sim-openalex-key"}))

            async with anyio.create_task_group() as tg:  # 30 at once: the burst is 10, then one a 0.1 s
                for _ in range(30):
                    tg.start_soon(one)
        over = [r for r in answers if r.status_code != 200]
        assert over and all(r.status_code == 403 and r.json()["error"] == "Rate limit exceeded" for r in over)
        assert world.log.counts()["openalex"]["exceeded"] == len(over)


@pytest.mark.anyio
async def test_openalex_keeps_to_the_works_an_index_lists() -> None:
    from pasa_mcp.sources.openalex import paper_from_work

    async with World.start(seed=2, papers=300, latency=False, time_scale=0.01) as world:
        url = Settings(**world.settings()).openalex_url.rstrip("/") + "/works"
        key = {"api_key": world.config.openalex_key, "per_page": 200}
        async with httpx.AsyncClient(timeout=10) as client:
            on_arxiv = (await client.get(url, params={**key, "filter": "indexed_in:arxiv"})).json()
            in_crossref = (await client.get(url, params={**key, "filter": "indexed_in:crossref"})).json()
            bad = await client.get(url, params={**key, "filter": "indexed_in:scholar"})
    with_id = sum(p.arxiv_id is not None for p in world.corpus.papers)
    assert on_arxiv["meta"]["count"] == with_id < len(world.corpus.papers)  # journal papers without an arXiv id
    assert all(paper_from_work(work).arxiv_id for work in on_arxiv["results"])
    assert in_crossref["meta"]["count"] == sum(p.doi is not None for p in world.corpus.papers)
    assert bad.status_code == 400 and "scholar is not an index" in bad.text


@pytest.mark.anyio
async def test_fault_injection_at_rate_one_gives_each_fault(tmp_path: Path) -> None:
    faults = {
        "s2": Faults(error=1.0),
        "openalex": Faults(malformed=1.0),
        "serper": Faults(reset=1.0),
        "arxiv_html": Faults(timeout=1.0),
    }
    log_path = tmp_path / "requests.jsonl"
    async with World.start(seed=2, papers=200, latency=False, limits={}, faults=faults, log_path=log_path) as world:
        s = world.settings()
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=0.3)) as client:
            error = await client.get(f"{s['s2_url']}/paper/search", params={"query": "x"})
            assert error.status_code in (500, 502, 503) and error.headers["x-simulation"] == SIM
            cut = await client.get(f"{s['openalex_url']}/works", params={"search": "x"})
            assert cut.status_code == 200 and int(cut.headers["content-length"]) == len(cut.content)
            with pytest.raises(json.JSONDecodeError):
                json.loads(cut.content)
            with pytest.raises(httpx.TransportError):
                await client.post(
                    f"{s['serper_url']}/search", headers={"X-API-KEY": s["serper_api_key"]}, json={"q": "x"}
                )
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"{s['arxiv_html_url']}/{world.corpus.papers[-1].arxiv_id}")
    # Every request is logged by the time the world has stopped (the held one once the client gave up).
    assert {r["service"]: r["fault"] for r in world.log.records} == {
        "s2": "error",
        "openalex": "malformed",
        "serper": "reset",
        "arxiv_html": "timeout",
    }
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert {r["service"] for r in logged} == {"s2", "openalex", "serper", "arxiv_html"}
    assert set(logged[0]) == {"time", "service", "method", "path", "status", "latency", "exceeded", "fault"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "status", "last"),
    [("rate_exceeded", 200, "HTTP 200 throttling: Rate exceeded."), ("status_406", 406, "HTTP 406 throttling")],
)
async def test_arxivs_other_throttling_forms_are_served_and_read_as_throttling(
    kind: str, status: int, last: str
) -> None:
    faults = {"arxiv_api": Faults(**{kind: 1.0})}
    async with World.start(seed=2, papers=200, latency=False, limits={}, faults=faults) as world:
        url = world.settings()["arxiv_api_url"]
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(url, params={"id_list": "0000.0000"})
        assert answer.status_code == status and answer.headers["x-simulation"] == SIM
        if kind == "rate_exceeded":
            assert answer.text == "Rate exceeded."
        net = Net(Settings(**world.settings(), http_retries=1))
        try:
            with anyio.fail_after(20), pytest.raises(SourceUnavailable) as caught:
                await net.request(
                    "arxiv", "GET", url, params={"id_list": "0000.0000"}, parse=lambda r: ET.fromstring(r.text)
                )
        finally:
            await net.aclose()
    assert str(caught.value).startswith(f"arXiv API unavailable: 1 retries, last {last}")  # not "malformed answer"
    assert net.hosts["arxiv"].throttled == 2
    assert [r["fault"] for r in world.log.records] == [kind] * 3


# The crawler-recall bound -----------------------------------------------------------------------


def test_crawl_follows_the_pasa_limits_on_a_tiny_graph() -> None:
    results = {"q1": ["A", "B"], "q2": ["B", "C"]}
    sections = {
        "A": {"Related": ["D", "E"]},
        "B": {"Intro": ["F"], "Method": ["G"]},
        "C": {"Related": ["H"]},
        "D": {"Related": ["I"]},
        "E": {"Related": ["J"]},
        "F": {"Related": ["K"]},
        "I": {"Related": ["L"]},
    }
    relevant = set("DEFHIJKL")
    scores = {"D": 0.9, "E": 0.8, "F": 0.7, "G": 0.1}

    def run(limits: Limits) -> tuple[frozenset, frozenset]:
        return crawl(
            ["q1", "q2"],
            results.__getitem__,
            lambda n: sections.get(n, {}),
            lambda n, found: [name for name, cited in found.items() if relevant & set(cited)],
            lambda n: scores.get(n, 0.0),
            limits,
        )

    searched, crawled = run(Limits(search_queries=1, expand_papers=2))
    # G sits in a section citing nothing relevant; F is third at depth 1, so K stays out; L is depth 3.
    assert searched == set("AB") and crawled == set("ABDEFIJ")
    assert run(Limits(search_queries=2, expand_papers=3))[1] == set("ABCDEFHIJK")
    assert run(Limits(search_queries=2, expand_papers=3, expand_layers=3))[1] == set("ABCDEFHIJKL")
    assert run(Limits(search_queries=2, expand_layers=0))[1] == set("ABC")


def test_reachable_answers_bound_the_crawler_recall_and_some_need_expansion() -> None:
    corpus = Corpus(7, 2000)
    reaches = [reachable(corpus, row) for row in corpus.queries[:40]]
    assert reaches == [reachable(corpus, row) for row in corpus.queries[:40]]
    for reach in reaches:
        assert reach.by_search <= reach.found <= reach.answers and reach.searched <= reach.crawled
        assert 0 < reach.bound <= 1
    assert any(r.found - r.by_search for r in reaches)  # answers only citation expansion reaches
    assert any(r.answers - r.found for r in reaches)  # answers no run can reach
    strict = [reachable(corpus, row, resolution="services") for row in corpus.queries[:10]]
    assert all(s.found <= r.found for s, r in zip(strict, reaches, strict=False))


# Settings and the command -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_settings_toml_points_pasa_mcp_at_the_world(world: World) -> None:
    path = anyio.Path(os.environ["PASA_CONFIG"])
    await path.write_text(world.settings_toml(), encoding="utf-8")
    settings = Settings()
    for key, value in world.settings().items():
        actual = getattr(settings, key)
        assert (actual.get_secret_value() if hasattr(actual, "get_secret_value") else actual) == value
    assert settings.sources == ["google"] and "SIMULATED" in await path.read_text()


@pytest.mark.anyio
async def test_command_writes_settings_and_serves_until_interrupted(tmp_path: Path) -> None:
    out, log = tmp_path / "world.toml", tmp_path / "log.jsonl"
    command = [sys.executable, "-m", "tools.world", "--papers", "300", "--no-latency", "--settings-out", str(out)]
    command += ["--log", str(log)]
    process = await anyio.open_process(command, cwd=ROOT)
    try:
        await _serves_until_interrupted(process, out, log)
    finally:
        if process.returncode is None:  # a failed check must not leave the world running
            process.kill()
            await process.wait()


async def _serves_until_interrupted(process: anyio.abc.Process, out: Path, log: Path) -> None:
    """Waits for the world's banner, asks one service, stops it with SIGTERM and checks the log."""
    lines = []
    with anyio.fail_after(120):  # a cold start on a loaded 2-core machine imports slowly
        async for chunk in process.stdout:
            lines.append(chunk.decode())
            if "Ctrl-C" in "".join(lines):
                break
    text = "".join(lines)
    assert "SIMULATION" in text and str(out) in text
    settings = dict(line.split(" = ", 1) for line in (await anyio.Path(out).read_text()).splitlines() if " = " in line)
    crawler = json.loads(settings["crawler_urls"])[0]
    async with httpx.AsyncClient() as client:
        assert (await client.get(crawler.removesuffix("/v1") + "/health")).status_code == 200
    process.send_signal(signal.SIGTERM)
    with anyio.fail_after(10):
        assert await process.wait() == 0
    assert json.loads(await anyio.Path(log).read_text())["path"] == "/health"  # flushed on the way out


def test_the_physical_limit_follows_from_what_the_search_must_learn_and_each_hosts_limit() -> None:
    corpus = Corpus(7, 3000)
    row = next(r for r in corpus.queries if len(reachable(corpus, r).searched) >= 20)
    base = WorldConfig(seed=7, papers=3000)
    limit = physical_limit(corpus, base, row)
    reach = reachable(corpus, row)
    assert [layer.papers for layer in limit.layers] == [len(reach.searched), min(20, limit.layers[1].papers)]
    for layer in limit.layers:
        assert sum(layer.pages.values()) == layer.papers  # every expanded paper: one page or one reference list
        assert layer.start < layer.pages_done <= layer.end
    # One metadata request, then at most one id lookup per layer (100 ids a request).
    assert limit.arxiv_api_requests <= 1 + sum(math.ceil(layer.ids / 100) for layer in limit.layers)
    assert limit.seconds == limit.layers[-1].end > limit.prefix > 0
    # Slower hosts can only make it longer; no limits at all, shorter; the time scale scales it.
    slower = {**DEFAULT_LIMITS, "ar5iv": Limit(2.0), "arxiv_html": Limit(1.0, burst=4)}
    assert physical_limit(corpus, replace(base, limits=slower), row).seconds > limit.seconds
    assert physical_limit(corpus, replace(base, limits={}), row).seconds < limit.seconds
    scaled = physical_limit(corpus, replace(base, time_scale=0.1), row).seconds
    assert math.isclose(scaled, limit.seconds * 0.1, rel_tol=1e-9)
    # A client that must ask to learn a page is nowhere pays one miss at each HTML host for it.
    blind = physical_limit(corpus, base, row, blind=True)
    nowhere = [layer.pages.get("references", 0) for layer in blind.layers]
    assert [layer.misses for layer in blind.layers] == [2 * n for n in nowhere] and sum(nowhere) > 0
    assert blind.seconds > limit.seconds and all(layer.misses == 0 for layer in limit.layers)


def test_full_size_pages_parse_to_the_same_section_map() -> None:
    corpus = Corpus(7, 600)
    paper = next(p for p in corpus.papers if p.arxiv_html and len(p.refs) > 8)
    compact = latexml.page(corpus, paper, url="http://world.test/html/x", ar5iv=False)
    full = latexml.page(corpus, paper, url="http://world.test/html/x", ar5iv=False, size=400_000)
    assert len(compact) < 40_000 and 300_000 < len(full) < 500_000
    assert parse_page(full).titles() == parse_page(compact).titles() != {}
