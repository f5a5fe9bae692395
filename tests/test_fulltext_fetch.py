"""FullText over httpx.MockTransport: arxiv.org/html, ar5iv, reference lists, the store's cache, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import fixture_text
from test_latexml import ATTENTION_SECTIONS

from pasa_mcp.config import Settings
from pasa_mcp.fulltext import INCOMPLETE_TTL, NO_FULL_TEXT_TTL, PAGE_TRIES, REFERENCES, FullText
from pasa_mcp.latexml import PARSER
from pasa_mcp.net import Net, SourceUnavailable
from pasa_mcp.papers import Paper, Reference, SectionMap
from pasa_mcp.store import Store

pytestmark = pytest.mark.anyio

HTML = "https://arxiv.test/html"
AR5IV = "https://ar5iv.test/html"
ATTENTION_PAGE = fixture_text("arxiv_html", "ar5iv_1706.03762_arXiv-html_feedback.html")
ABS_PAGE = "<html><head><title>[1706.03762] Attention</title></head><body><h1>Abstract page</h1></body></html>"
ATTENTION = Paper(title="Attention Is All You Need", arxiv_id="1706.03762")
NO_ARXIV = Paper(title="A journal paper", doi="10.1000/xyz")
REFS = [Reference(title="Long short-term memory", text="S. Hochreiter and J. Schmidhuber. Long short-term memory.")]

Handler = Callable[[httpx.Request], httpx.Response]


class Provider:
    """A reference-list source double: answers `references` from a fixed value and counts calls."""

    def __init__(self, answer: list[Reference] | None | Exception) -> None:
        self.answer, self.asked = answer, []

    async def references(self, paper: Paper) -> list[Reference] | None:
        self.asked.append(paper.key)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@asynccontextmanager
async def fulltext(
    tmp_path: Path, handler: Handler, providers: tuple[Provider, ...] = (), **settings: Any
) -> AsyncIterator[tuple[FullText, list[httpx.Request], Store]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    config = Settings(
        **{
            "arxiv_html_url": HTML,
            "ar5iv_url": AR5IV,
            "arxiv_html_interval": 0,
            "ar5iv_interval": 0,
            "http_retries": 2,
            **settings,
        }
    )
    net = Net(config, transport=httpx.MockTransport(record))
    store = Store(tmp_path / "fulltext.sqlite3")
    try:
        yield FullText(net, config, store, providers), sent, store
    finally:
        await net.aclose()


def pages(routes: dict[str, httpx.Response]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return routes.get(str(request.url), httpx.Response(404, text="Not Found"))

    return handler


async def test_arxiv_html_page_is_parsed_and_cached(tmp_path: Path) -> None:
    handler = pages({f"{HTML}/1706.03762": httpx.Response(200, text=ATTENTION_PAGE)})
    async with fulltext(tmp_path, handler) as (source, sent, store):
        section_map = await source.section_map(ATTENTION)
        assert section_map is not None and section_map.origin == "arxiv_html"
        assert "Long short-term memory" in section_map.titles()["1 Introduction"]
        assert [str(r.url) for r in sent] == [f"{HTML}/1706.03762"]
        assert await store.call(store.get_section_map, ATTENTION.key) == section_map

        again = await source.section_map(ATTENTION)
        assert again == section_map
        assert len(sent) == 1, "a cached map needs no request"


async def test_a_map_stored_by_an_older_parser_is_read_again(tmp_path: Path) -> None:
    handler = pages({f"{HTML}/1706.03762": httpx.Response(200, text=ATTENTION_PAGE)})
    async with fulltext(tmp_path, handler) as (source, sent, store):
        old = SectionMap(origin="arxiv_html", sections={"5 Training": REFS}, parser=PARSER - 1)
        await store.call(store.put_section_map, ATTENTION.key, old)
        section_map = await source.section_map(ATTENTION)
        assert len(sent) == 1 and section_map is not None and section_map.parser == PARSER
        assert list(section_map.sections) == ATTENTION_SECTIONS
        assert await source.section_map(ATTENTION) == section_map and len(sent) == 1  # now current: kept


async def test_redirect_to_the_latest_version_is_followed(tmp_path: Path) -> None:
    handler = pages(
        {
            f"{HTML}/1706.03762": httpx.Response(301, headers={"Location": f"{HTML}/1706.03762v7"}),
            f"{HTML}/1706.03762v7": httpx.Response(200, text=ATTENTION_PAGE),
        }
    )
    async with fulltext(tmp_path, handler) as (source, sent, _):
        section_map = await source.section_map(ATTENTION)
    assert [r.url.path for r in sent] == ["/html/1706.03762", "/html/1706.03762v7"]
    assert section_map is not None and section_map.origin == "arxiv_html"
    assert list(section_map.sections) == ATTENTION_SECTIONS


async def test_a_known_version_is_fetched_without_the_redirect(tmp_path: Path) -> None:
    handler = pages({f"{HTML}/1706.03762v7": httpx.Response(200, text=ATTENTION_PAGE)})
    async with fulltext(tmp_path, handler) as (source, sent, _):
        section_map = await source.section_map(ATTENTION.model_copy(update={"arxiv_version": 7}))
    assert [r.url.path for r in sent] == ["/html/1706.03762v7"]
    assert section_map is not None and section_map.origin == "arxiv_html"


async def test_first_tries_spread_over_both_hosts_and_a_found_page_is_remembered(tmp_path: Path) -> None:
    day = date(2019, 1, 1)
    old = [Paper(title=f"Old {i}", arxiv_id=f"1901.0000{i}", arxiv_version=1, published=day) for i in range(4)]
    released = anyio.Event()
    first: dict[str, str] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        first.setdefault(request.url.path.removeprefix("/html/").split("v")[0], request.url.host)
        await released.wait()
        return httpx.Response(200, text=ATTENTION_PAGE)

    # Two hosts as fast and as likely to have a page share the first tries.
    intervals = {"arxiv_html_interval": 0.01, "ar5iv_interval": 0.01}
    async with fulltext(tmp_path, handler, **intervals) as (source, sent, _):  # type: ignore[arg-type]
        async with anyio.create_task_group() as tg:
            for paper in old:
                tg.start_soon(source.section_map, paper)
            with anyio.fail_after(10):
                while len(first) < len(old):  # noqa: ASYNC110 (waits for the double's requests)
                    await anyio.sleep(0.01)
            released.set()
        assert sorted(first.values()) == ["ar5iv.test"] * 2 + ["arxiv.test"] * 2
        assert len(sent) == len(old)  # every page found at its first try
        for paper in old:
            host = "ar5iv" if first[paper.arxiv_id] == "ar5iv.test" else "arxiv_html"
            assert source.hosts(paper) == [host]  # where each page is, remembered


async def test_missing_arxiv_html_falls_back_to_ar5iv(tmp_path: Path) -> None:
    handler = pages({f"{AR5IV}/1706.03762": httpx.Response(200, text=ATTENTION_PAGE)})
    async with fulltext(tmp_path, handler) as (source, sent, _):
        section_map = await source.section_map(ATTENTION)
    assert [str(r.url) for r in sent] == [f"{HTML}/1706.03762", f"{AR5IV}/1706.03762"]
    assert section_map is not None and section_map.origin == "ar5iv"
    assert section_map.titles()["5 Training 5.3 Optimizer"] == ["Adam: A method for stochastic optimization"]


async def test_a_page_that_is_not_latexml_does_not_count_as_full_text(tmp_path: Path) -> None:
    # arxiv.org/html answers 200 with something else; ar5iv has the LaTeXML page.
    handler = pages(
        {
            f"{HTML}/1706.03762": httpx.Response(200, text=ABS_PAGE),
            f"{AR5IV}/1706.03762": httpx.Response(200, text=ATTENTION_PAGE),
        }
    )
    async with fulltext(tmp_path, handler) as (source, _, _):
        section_map = await source.section_map(ATTENTION)
    assert section_map is not None and section_map.origin == "ar5iv"


async def test_no_html_anywhere_falls_back_to_a_reference_list(tmp_path: Path) -> None:
    # ar5iv sends papers it never converted to the abstract page: a redirect to something not LaTeXML.
    handler = pages(
        {
            f"{AR5IV}/1706.03762": httpx.Response(302, headers={"Location": "https://arxiv.test/abs/1706.03762"}),
            "https://arxiv.test/abs/1706.03762": httpx.Response(200, text=ABS_PAGE),
        }
    )
    unknown, knows = Provider(None), Provider(REFS)
    async with fulltext(tmp_path, handler, (unknown, knows)) as (source, sent, store):
        section_map = await source.section_map(ATTENTION)
        assert section_map is not None
        assert section_map.origin == "references"
        assert section_map.sections == {REFERENCES: REFS}
        assert unknown.asked == knows.asked == [ATTENTION.key]
        assert len(sent) == 3
        assert await store.call(store.get_section_map, ATTENTION.key) == section_map


async def test_paper_without_arxiv_id_asks_only_the_reference_lists(tmp_path: Path) -> None:
    provider = Provider(REFS)
    async with fulltext(tmp_path, pages({}), (provider,)) as (source, sent, _):
        section_map = await source.section_map(NO_ARXIV)
    assert sent == []
    assert section_map is not None and section_map.titles() == {REFERENCES: ["Long short-term memory"]}


async def test_no_full_text_and_no_reference_list_is_none_and_remembered_for_a_while(tmp_path: Path) -> None:
    provider = Provider([])
    async with fulltext(tmp_path, pages({}), (provider,)) as (source, sent, store):
        assert await source.section_map(ATTENTION) is None
        assert len(sent) == 2 and len(provider.asked) == 1
        assert await source.section_map(ATTENTION) is None  # the miss is remembered: nothing is asked again
        assert len(sent) == 2 and len(provider.asked) == 1
        # Once the miss is older than NO_FULL_TEXT_TTL, the paper is looked for again.
        store.db.execute("UPDATE section_maps SET fetched = fetched - ?", (NO_FULL_TEXT_TTL + 1,))
        assert await source.section_map(ATTENTION) is None
        assert len(sent) == 4 and len(provider.asked) == 2


async def test_failing_html_hosts_give_way_and_are_never_taken_for_no_full_text(tmp_path: Path) -> None:
    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0"}, text="Service Unavailable")

    # Nothing stands in for the page: the hosts' failure is raised, and no "no full text" is stored.
    async with fulltext(tmp_path, unavailable, (Provider(None),)) as (source, sent, store):
        with pytest.raises(SourceUnavailable, match=r"(arXiv HTML|ar5iv) unavailable: 2 retries, last HTTP 503"):
            await source.section_map(ATTENTION)
        assert len(sent) == 6  # both hosts, each with its retries
        assert await store.call(store.get_section_map, ATTENTION.key) is None
    # A reference list stands in: used, marked incomplete (the run reports the loss), kept briefly.
    provider = Provider(REFS)
    async with fulltext(tmp_path, unavailable, (provider,)) as (source, sent, store):
        found = await source.section_map(ATTENTION)
        assert found is not None and found.origin == "references" and not found.complete
        assert "arXiv HTML unavailable: 2 retries, last HTTP 503; used references instead" in found.warnings
        assert "ar5iv unavailable: 2 retries, last HTTP 503; used references instead" in found.warnings
        kept = await store.call(store.get_section_map, ATTENTION.key, NO_FULL_TEXT_TTL, INCOMPLETE_TTL)
        assert kept is not None and not kept.complete
        store.db.execute("UPDATE section_maps SET fetched = fetched - ?", (INCOMPLETE_TTL + 1,))
        assert await store.call(store.get_section_map, ATTENTION.key, NO_FULL_TEXT_TTL, INCOMPLETE_TTL) is None


async def test_failing_reference_list_is_an_error_unless_another_one_answers(tmp_path: Path) -> None:
    down = Provider(SourceUnavailable("Semantic Scholar", 3, "HTTP 503"))
    async with fulltext(tmp_path, pages({}), (down,)) as (source, _, _):
        with pytest.raises(SourceUnavailable, match="Semantic Scholar unavailable"):
            await source.section_map(NO_ARXIV)
    async with fulltext(tmp_path, pages({}), (down, Provider(REFS))) as (source, _, _):
        section_map = await source.section_map(NO_ARXIV)
    assert section_map is not None and section_map.origin == "references"


async def test_html_without_usable_citations_gives_way_to_a_reference_list(tmp_path: Path) -> None:
    empty = '<html><body><article class="ltx_document"><section id="S1" class="ltx_section"><h2>1 Intro</h2>'
    empty += "<p>No citations here.</p></section></article></body></html>"
    handler = pages({f"{HTML}/1706.03762": httpx.Response(200, text=empty)})
    async with fulltext(tmp_path, handler, (Provider(REFS),)) as (source, _, _):
        section_map = await source.section_map(ATTENTION)
    assert section_map is not None and section_map.origin == "references"

    async with fulltext(tmp_path / "other", handler) as (source, _, _):
        section_map = await source.section_map(ATTENTION)
    assert section_map is not None and section_map.origin == "arxiv_html"
    assert section_map.sections == {} and section_map.warnings == [
        "no citations found (no ltx_cite links to #bib.* entries)"
    ]


async def test_a_page_cut_off_in_transit_is_fetched_again_and_the_complete_copy_cached(tmp_path: Path) -> None:
    cut = ATTENTION_PAGE[: len(ATTENTION_PAGE) * 2 // 3]  # a 200 with a matching Content-Length, ending early
    answers = [cut, ATTENTION_PAGE]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=answers.pop(0)) if "arxiv.test" in str(request.url) else httpx.Response(404)

    async with fulltext(tmp_path, handler) as (source, sent, store):
        section_map = await source.section_map(ATTENTION)
        assert section_map is not None and section_map.complete and section_map.warnings == []
        assert len(sent) == 2
        assert store.get_section_map(ATTENTION.key).complete


async def test_a_page_that_stays_cut_off_is_used_marked_incomplete_and_kept_only_briefly(tmp_path: Path) -> None:
    cut = ATTENTION_PAGE[: ATTENTION_PAGE.rindex('<li id="bib.')]  # cut in its last bibliography entries
    handler = pages({f"{HTML}/1706.03762": httpx.Response(200, text=cut)})
    async with fulltext(tmp_path, handler) as (source, sent, store):
        section_map = await source.section_map(ATTENTION)
        assert section_map is not None and not section_map.complete
        assert section_map.sections  # what survived is used in this run ...
        assert "the page ends early (no closing </html>): cut off in transit" in section_map.warnings
        assert [str(r.url) for r in sent] == [f"{HTML}/1706.03762"] * PAGE_TRIES + [f"{AR5IV}/1706.03762"]
        # ... cached for INCOMPLETE_TTL only: a later run fetches it again.
        assert await source.section_map(ATTENTION) == section_map and len(sent) == PAGE_TRIES + 1
        store.db.execute("UPDATE section_maps SET fetched = fetched - ?", (INCOMPLETE_TTL + 1,))
        await source.section_map(ATTENTION)
        # (ar5iv is known by now not to have the page)
        assert [str(r.url) for r in sent[PAGE_TRIES + 1 :]] == [f"{HTML}/1706.03762"] * PAGE_TRIES


async def test_a_page_lacking_the_bibliography_its_citations_point_at_is_incomplete(tmp_path: Path) -> None:
    start, end = ATTENTION_PAGE.index('<li id="bib.bib5"'), ATTENTION_PAGE.index('<li id="bib.bib9"')
    damaged = ATTENTION_PAGE[:start] + ATTENTION_PAGE[end:]  # entries 5-8 gone, the page otherwise whole
    handler = pages({f"{HTML}/1706.03762": httpx.Response(200, text=damaged)})
    async with fulltext(tmp_path, handler) as (source, sent, store):
        section_map = await source.section_map(ATTENTION)
        assert section_map is not None and not section_map.complete
        assert any("missing from the page" in w for w in section_map.warnings)
        assert len(sent) == PAGE_TRIES + 1
