"""The MCP server through a real MCP client connected in-process, around the recording fakes: tools
and their schemas, the deep search as start/status/cancel, progress, cancellation, resources, the
prompt, and error results for bad arguments and unreachable models."""

from __future__ import annotations

import functools
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextResourceContents

from pasa_mcp.app import Pasa, open_app
from pasa_mcp.config import Settings
from pasa_mcp.net import SourceUnavailable
from pasa_mcp.papers import Paper
from pasa_mcp.resolve import ResolutionIncomplete
from pasa_mcp.server import build_server
from pasa_mcp.sources import StoodIn
from tests.fakes import Calls, FakeCrawler, FakeFullText, FakeResolver, FakeSelector, FakeSource, paper, title

QUESTION = "value-based methods for non-stationary RL"
SCORES = {title("q1-0"): 0.9, title("q2-1"): 0.8, title("q1-0.r0"): 0.7}
TOOLS = {
    "paper_search",
    "paper_search_status",
    "paper_search_cancel",
    "generate_queries",
    "find_papers",
    "get_paper",
    "expand_citations",
    "score_paper",
    "list_searches",
    "read_paper",
    "find_citing_papers",
    "get_bibtex",
}
MODES = ["auto", "legacy"]  # the 2026 protocol, and the 2025 one that most clients still speak
SMALL = {"search_queries": 3, "search_papers": 4, "expand_layers": 1}  # 12 found, 36 cited: 48 papers


class FakeArxiv(FakeSource):
    """The fake source as "arxiv", which also looks papers up by id among those it has handed out."""

    def __init__(self, calls: Calls, gate: anyio.Event | None = None) -> None:
        super().__init__(calls, name="arxiv")
        self.gate, self.entered, self.cancelled = gate, anyio.Event(), anyio.Event()
        self.known: dict[str, Paper] = {}

    async def search(self, query: str, *, limit: int, before: date | None, after: date | None = None) -> list[Paper]:
        if self.gate is not None and query == "slow":
            self.entered.set()
            try:
                await self.gate.wait()
            except anyio.get_cancelled_exc_class():
                self.cancelled.set()
                raise
        found = await super().search(query, limit=limit, before=before)
        self.known |= {p.arxiv_id: p for p in found if p.arxiv_id}
        return found

    async def papers(self, ids: list[str]) -> dict[str, Paper]:
        self.calls.log.append(("papers", tuple(ids)))
        return {i: self.known[i] for i in ids if i in self.known}


class GatedFullText(FakeFullText):
    """Tells when the first expansion has reached its gate."""

    def __init__(self, calls: Calls, gate: anyio.Event | None) -> None:
        super().__init__(calls, gate)
        self.entered = anyio.Event()

    async def section_map(self, p: Paper):  # type: ignore[no-untyped-def]
        self.entered.set()
        return await super().section_map(p)


class NoDois:
    name = "semantic_scholar"

    async def papers(self, ids: list[str]) -> dict[str, Paper]:
        return {}


class TitleResolver(FakeResolver):
    """Resolves the fake corpus' titles ("Paper ...") only."""

    async def resolve(self, refs, member=None):  # type: ignore[no-untyped-def]
        resolved = await super().resolve(refs, member)
        return [p if r.title.startswith("Paper ") else None for r, p in zip(refs, resolved, strict=True)]


class PartlyFailing(TitleResolver):
    """Resolves the first reference; a source failed for the others."""

    async def resolve(self, refs, member=None):  # type: ignore[no-untyped-def]
        first = (await super().resolve(refs[:1], member))[0]
        down = SourceUnavailable("OpenAlex", 6, "HTTP 503")
        raise ResolutionIncomplete([first] + [None] * (len(refs) - 1), len(refs) - 1, down)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def pasa() -> AsyncIterator[Pasa]:
    """The real wiring with no model running (a closed port, no retries): the model tools must say so."""
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    async with open_app(Settings(crawler_urls=[dead], selector_urls=[dead], http_retries=0)) as app:
        yield app


def plug_fakes(pasa: Pasa, calls: Calls, gate: anyio.Event | None = None) -> FakeArxiv:
    """Pasa is a plain container of its parts: tests give it the recording fakes."""
    arxiv = FakeArxiv(calls, gate)
    pasa.arxiv, pasa.semantic_scholar = arxiv, NoDois()  # type: ignore[assignment]
    pasa.openalex = FakeSource(calls, name="openalex")  # type: ignore[assignment]
    pasa.crawler, pasa.selector = FakeCrawler(calls), FakeSelector(calls, SCORES)
    pasa.fulltext = GatedFullText(calls, gate)  # type: ignore[assignment]
    pasa.resolver = TitleResolver(calls)  # type: ignore[assignment]
    return arxiv


def data(result: CallToolResult) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return result.content[0].text


async def read(client: Client, uri: str) -> TextResourceContents:
    (contents,) = (await client.read_resource(uri)).contents
    return contents


async def cancel_when(ready: Callable[[], bool], call: Callable[[], Awaitable[object]]) -> None:
    """Start a call, and cancel it (as a client does when it gives up) once `ready()`."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(5):
            while not ready():  # noqa: ASYNC110 (conditions that the fakes and the store cannot signal)
                await anyio.sleep(0.005)
        tg.cancel_scope.cancel()


async def status_until(client: Client, search_id: str, done: Callable[[dict], bool]) -> dict:
    """Poll the status (each call waits 10 ms) until `done(report)`."""
    status = {"search_id": search_id, "wait_seconds": 0.01}
    with anyio.fail_after(5):
        while not done(report := data(await client.call_tool("paper_search_status", status))):
            pass
    return report


@pytest.mark.anyio
async def test_tools_resources_and_prompt_are_listed_with_schemas(pasa: Pasa) -> None:
    async with Client(build_server(pasa=pasa)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.name == "get_bibtex" or tool.output_schema["type"] == "object"  # BibTeX is text
            assert tool.input_schema["type"] == "object"
            assert "\n" not in tool.description and len(tool.description) <= 120
        steps = TOOLS - {"paper_search", "paper_search_cancel"}
        assert all(tools[name].annotations.read_only_hint for name in steps)
        local = {"paper_search_status", "list_searches"}
        assert all(tools[name].annotations.open_world_hint is not False for name in steps - local)
        assert tools["paper_search"].annotations.destructive_hint is False
        assert tools["paper_search"].input_schema["properties"]["wait_seconds"]["default"] < 60
        # The client checks every structured result below against these output schemas.

        templates = {t.uri_template: t.mime_type for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {
            "pasa://search/{search_id}": "application/json",
            "pasa://search/{search_id}.md": "text/markdown",
            "pasa://search/{search_id}.bib": "application/x-bibtex",
            "pasa://paper/{+id}": "application/json",
        }
        (prompt,) = (await client.list_prompts()).prompts
        rendered = await client.get_prompt(prompt.name, {"question": QUESTION})
        text = rendered.messages[0].content.text
        assert QUESTION in text
        assert all(name in text for name in ("generate_queries", "find_papers", "score_paper", "expand_citations"))


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_deep_search_runs_to_completion_through_start_and_status_calls(pasa: Pasa, mode: str) -> None:
    calls, gate = Calls(), anyio.Event()
    plug_fakes(pasa, calls, gate)
    progress: list[tuple[float, str]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message or ""))

    async with Client(build_server(pasa=pasa), mode=mode) as client:
        started = data(await client.call_tool("paper_search", {"question": QUESTION, "wait_seconds": 0, **SMALL}))
        assert started["status"] in ("queued", "running") and re.fullmatch(r"[0-9a-f]{12}", started["search_id"])
        search_id = started["search_id"]

        partial = await status_until(client, search_id, lambda r: r["counts"]["scored"] == 12)
        assert partial["status"] == "running"
        assert [p["id"] for p in partial["papers"]] == [paper("q1-0").key, paper("q2-1").key]

        gate.set()
        with anyio.fail_after(5):
            final = data(
                await client.call_tool(
                    "paper_search_status", {"search_id": search_id, "wait_seconds": 30}, progress_callback=on_progress
                )
            )
        assert final["status"] == "finished"
        assert [p["title"] for p in final["papers"]] == list(SCORES)  # best first
        assert final["papers"][2]["found_by"] == f"{paper('q1-0').key} § 2 Related Work"
        assert (final["counts"]["papers"], final["total"]) == (48, 3)
        assert final["resources"] == [f"pasa://search/{search_id}{s}" for s in ("", ".md", ".bib")]

        assert progress, "no progress notifications"
        assert [done for done, _ in progress] == sorted({done for done, _ in progress})  # strictly growing
        assert re.search(r"\d+ queries, \d+ searches run, \d+ papers found, \d+ scored, \d+ selected", progress[0][1])
        assert progress[-1][1].startswith("finished: 3 queries, 3 searches run, 48 papers found, 48 scored, 3 selected")

        everything = data(
            await client.call_tool(
                "paper_search_status",
                {"search_id": search_id, "wait_seconds": 0, "include": "all", "offset": 40, "limit": 5},
            )
        )
        assert (everything["total"], len(everything["papers"]), everything["next_offset"]) == (48, 5, 45)


@pytest.mark.anyio
async def test_paper_search_returns_the_result_when_the_search_ends_within_the_wait(pasa: Pasa) -> None:
    plug_fakes(pasa, Calls())
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with Client(build_server(pasa=pasa)) as client:
        with anyio.fail_after(5):
            result = await client.call_tool(
                "paper_search", {"question": QUESTION, **SMALL, "end_date": "2024-05-01"}, progress_callback=on_progress
            )
    report = data(result)
    assert report["status"] == "finished" and len(report["papers"]) == 3
    assert len(progress) >= 2 and progress[-1].startswith("finished")
    assert json.loads(result.content[0].text) == report  # the text copy for clients without structured content


@pytest.mark.anyio
async def test_cancelling_a_running_search_keeps_the_papers_found(pasa: Pasa) -> None:
    calls, gate = Calls(), anyio.Event()
    plug_fakes(pasa, calls, gate)
    async with Client(build_server(pasa=pasa)) as client:
        search_id = data(await client.call_tool("paper_search", {"question": QUESTION, "wait_seconds": 0, **SMALL}))[
            "search_id"
        ]
        await status_until(client, search_id, lambda r: r["counts"]["scored"] == 12)
        with anyio.fail_after(2):
            cancelled = data(await client.call_tool("paper_search_cancel", {"search_id": search_id}))
        assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled on request"
        assert cancelled["counts"]["selected"] == 2
        again = data(await client.call_tool("paper_search_status", {"search_id": search_id, "wait_seconds": 0}))
        assert again["status"] == "cancelled" and again["total"] == 2
        assert [p["title"] for p in again["papers"]] == [title("q1-0"), title("q2-1")]


@pytest.mark.anyio
async def test_a_cancelled_search_resumes_by_its_id_and_finishes_from_the_store(pasa: Pasa) -> None:
    calls, gate = Calls(), anyio.Event()
    plug_fakes(pasa, calls, gate)
    async with Client(build_server(pasa=pasa)) as client:
        search_id = data(await client.call_tool("paper_search", {"question": QUESTION, "wait_seconds": 0, **SMALL}))[
            "search_id"
        ]
        await status_until(client, search_id, lambda r: r["counts"]["scored"] == 12)
        await client.call_tool("paper_search_cancel", {"search_id": search_id})
        searched = len(calls.of("search"))
        gate.set()
        with anyio.fail_after(5):
            resumed = data(await client.call_tool("paper_search", {"question": QUESTION, "resume": search_id}))
        assert resumed["search_id"] == search_id and resumed["status"] == "finished" and resumed["total"] == 3
        assert len(calls.of("search")) == searched  # the searches it had run came from the store
        again = await client.call_tool("paper_search", {"question": QUESTION, "resume": search_id})
        assert again.is_error and f"deep search {search_id} is finished: only a stopped search" in again.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_paper_search_call_ends_the_wait_but_not_the_search(pasa: Pasa, mode: str) -> None:
    calls, gate = Calls(), anyio.Event()
    plug_fakes(pasa, calls, gate)
    async with Client(build_server(pasa=pasa), mode=mode) as client:
        search = functools.partial(client.call_tool, "paper_search", {"question": QUESTION, **SMALL})
        await cancel_when(pasa.fulltext.entered.is_set, search)
        runs = pasa.store.list_runs()
        assert [r["status"] for r in runs] == ["running"]  # a client time-out must not kill the search
        gate.set()
        with anyio.fail_after(5):
            final = data(
                await client.call_tool("paper_search_status", {"search_id": runs[0]["id"], "wait_seconds": 30})
            )
        assert final["status"] == "finished"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_step_call_stops_its_work_and_keeps_what_was_done(pasa: Pasa, mode: str) -> None:
    calls, gate = Calls(), anyio.Event()
    arxiv = plug_fakes(pasa, calls, gate)
    async with Client(build_server(pasa=pasa), mode=mode) as client:
        q1_done = functools.partial(pasa.store.get_search, "arxiv", "q1", None, 10)
        await cancel_when(
            lambda: arxiv.entered.is_set() and q1_done() is not None,
            functools.partial(client.call_tool, "find_papers", {"queries": ["q1", "slow"]}),
        )
        with anyio.fail_after(5):
            await arxiv.cancelled.wait()  # the server stopped the call's work
        gate.set()
        await anyio.wait_all_tasks_blocked()
        assert [c[2] for c in calls.of("search")] == ["q1"]  # "slow" never got past its gate
        assert q1_done() is not None  # the finished search was kept
        assert pasa.store.get_search("arxiv", "slow", None, 10) is None
        arxiv.gate = None
        found = data(await client.call_tool("find_papers", {"queries": ["q1", "slow"]}))
        assert found["total"] == 20  # the server still serves; q1 came from the store this time
        assert [c[2] for c in calls.of("search")] == ["q1", "slow"]


@pytest.mark.anyio
async def test_search_results_are_resources_in_json_markdown_and_bibtex(pasa: Pasa) -> None:
    plug_fakes(pasa, Calls())
    async with Client(build_server(pasa=pasa)) as client:
        with anyio.fail_after(5):
            report = data(await client.call_tool("paper_search", {"question": QUESTION, **SMALL}))
        uri = f"pasa://search/{report['search_id']}"

        whole = await read(client, uri)
        assert whole.mime_type == "application/json"
        body = json.loads(whole.text)
        assert body["status"] == "finished" and len(body["result"]["papers"]) == 48
        assert body["result"]["tree"]["child"].keys() == {"q1", "q2", "q3"}

        markdown = (await read(client, uri + ".md")).text
        assert markdown.startswith(f"# Deep search: {QUESTION}\n")
        assert [line.split("**")[1] for line in markdown.splitlines() if line[:1].isdigit()] == list(SCORES)
        assert f"<https://arxiv.org/abs/{paper('q1-0').arxiv_id}>" in markdown

        bib = (await read(client, uri + ".bib")).text
        assert bib.count("@misc{") == 3 and f"eprint = {{{paper('q2-1').arxiv_id}}}" in bib

        one = json.loads((await read(client, f"pasa://paper/{paper('q1-0').key}")).text)
        assert one["title"] == title("q1-0") and one["abstract"] == "Abstract of q1-0."
        assert {s["name"]: s["citations"] for s in one["sections"]} == {"1 Introduction": 3, "2 Related Work": 3}

        with pytest.raises(Exception, match="no deep search with id 'feedfeedfeed'"):
            await client.read_resource("pasa://search/feedfeedfeed.md")
        with pytest.raises(Exception, match="paper not found"):
            await client.read_resource("pasa://paper/arxiv:2401.99999")


@pytest.mark.anyio
async def test_step_tools_run_the_pasa_loop_one_step_at_a_time(pasa: Pasa) -> None:
    calls = Calls()
    arxiv = plug_fakes(pasa, calls)
    pasa.openalex.failing = True
    async with Client(build_server(pasa=pasa)) as client:
        queries = data(await client.call_tool("generate_queries", {"question": QUESTION, "count": 2, "ensemble": 2}))
        assert queries == {"queries": ["q1", "q2", "s1", "s2"], "crawler": "fake-crawler"}

        found = data(
            await client.call_tool(
                "find_papers",
                {"queries": ["q1", "q2"], "sources": ["arxiv", "openalex"], "papers_per_query": 3, "limit": 4},
            )
        )
        assert found["total"] == 6 and found["next_offset"] == 4
        assert [p["id"] for p in found["papers"]] == [paper(n).key for n in ("q1-0", "q1-1", "q1-2", "q2-0")]
        assert found["found_by"][paper("q2-0").key] == ["q2"]
        assert {(f["source"], f["query"]) for f in found["failures"]} == {("openalex", "q1"), ("openalex", "q2")}
        assert "HTTP 503" in found["failures"][0]["error"]

        everything_down = await client.call_tool("find_papers", {"queries": ["q1"], "sources": ["openalex"]})
        assert error_text(everything_down).endswith(
            "every search failed: openalex unavailable: 5 retries, last HTTP 503"
        )

        target = paper("q1-0")
        for ident in (target.key, f"https://arxiv.org/abs/{target.arxiv_id}v2", target.title):
            details = data(await client.call_tool("get_paper", {"paper": ident}))
            assert (details["id"], details["full_text"]) == (target.key, "arxiv_html")
            assert details["sections"] == [
                {"name": "1 Introduction", "citations": 3},
                {"name": "2 Related Work", "citations": 3},
            ]
        assert calls.of("papers") == []  # found by search before: the store answered, not arXiv

        named = data(await client.call_tool("expand_citations", {"paper": target.key, "sections": ["1 Introduction"]}))
        assert (named["chosen_by"], named["cited"], named["resolved"]) == ("caller", 3, 3)
        assert [c["paper"]["title"] for c in named["papers"]] == [title(f"q1-0.i{j}") for j in range(3)]
        picked = data(await client.call_tool("expand_citations", {"paper": target.key, "question": QUESTION}))
        assert (picked["chosen_by"], picked["sections"]) == ("crawler", ["2 Related Work"])
        assert named["warnings"] == picked["warnings"] == []

        resolver = pasa.resolver
        pasa.resolver = PartlyFailing(calls)  # type: ignore[assignment]
        partial = data(
            await client.call_tool("expand_citations", {"paper": target.key, "sections": ["1 Introduction"]})
        )
        assert (partial["cited"], partial["resolved"]) == (3, 1)
        assert [c["paper"] is not None for c in partial["papers"]] == [True, False, False]
        assert partial["warnings"] == ["2 of 3 references not resolved: OpenAlex unavailable: 5 retries, last HTTP 503"]
        pasa.resolver = resolver

        ids = [target.key, paper("q1-1").key]
        scores = data(await client.call_tool("score_paper", {"question": QUESTION, "papers": ids}))
        assert [(s["id"], s["score"], s["selected"]) for s in scores["papers"]] == [
            (ids[0], 0.9, True),
            (ids[1], 0.1, False),
        ]
        explained = data(await client.call_tool("score_paper", {"question": QUESTION, "papers": ids, "explain": True}))
        assert [s["reason"] for s in explained["papers"]] == ["fake reason", "fake reason"]

        arxiv.known[paper("elsewhere").arxiv_id] = paper("elsewhere")
        fetched = data(await client.call_tool("get_paper", {"paper": paper("elsewhere").arxiv_id, "sections": False}))
        assert fetched["title"] == title("elsewhere") and fetched["sections"] == [] and fetched["full_text"] is None
        assert calls.of("papers") == [("papers", (paper("elsewhere").arxiv_id,))]


@pytest.mark.anyio
async def test_find_papers_says_when_another_source_answered_for_one_that_is_down(pasa: Pasa) -> None:
    arxiv = plug_fakes(pasa, Calls())
    down = "arXiv API unavailable: down (3 requests in a row failed, the last: HTTP 503)"

    async def stood_in(query: str, **_: object) -> StoodIn:
        return StoodIn([paper(f"{query}-0")], by="openalex", why=down)

    arxiv.search = stood_in  # type: ignore[method-assign]
    async with Client(build_server(pasa=pasa)) as client:
        found = data(await client.call_tool("find_papers", {"queries": ["q1"], "sources": ["arxiv"]}))
    assert [p["id"] for p in found["papers"]] == [paper("q1-0").key]  # not "every search failed"
    assert found["failures"] == [{"source": "arxiv", "query": "q1", "error": f"{down}; openalex answered instead"}]


BAD_CALLS = [
    ("paper_search", {"question": ""}, "invalid arguments for paper_search: question must not be empty"),
    ("paper_search", {"question": "   "}, "the research question is empty"),
    ("paper_search", {"question": "q", "expand_layers": 9}, "expand_layers must be at most 5, got 9"),
    ("paper_search", {"question": "q", "end_date": "last year"}, "end_date must be a valid date"),
    ("paper_search", {"question": "q", "sources": ["bing"]}, "sources[0] must be one of 'google', 'arxiv'"),
    ("paper_search", {"question": "q", "sources": ["google"]}, "the google source needs a serper.dev key"),
    ("paper_search_status", {"search_id": "nope"}, "no deep search with id 'nope'"),
    ("paper_search_status", {"search_id": "x", "limit": 0}, "limit must be at least 1, got 0"),
    ("paper_search_cancel", {}, "invalid arguments for paper_search_cancel: search_id is required"),
    ("paper_search_cancel", {"search_id": "nope"}, "no deep search with id 'nope'"),
    ("generate_queries", {"question": "q", "count": 0}, "count must be at least 1, got 0"),
    ("find_papers", {"queries": []}, "queries must not be empty"),
    ("paper_search", {"question": "q", "resume": "nope"}, "no deep search with id 'nope'"),
    ("find_papers", {"queries": ["q"], "sources": ["google"]}, "SERPER_API_KEY"),
    ("get_paper", {"paper": "arxiv:2401.99999"}, "paper not found: 'arxiv:2401.99999'"),
    ("get_paper", {"paper": "An Unknown Title"}, "paper not found: 'An Unknown Title'"),
    ("get_paper", {"paper": "!!!"}, "not a paper id, arXiv id or URL, DOI or title: '!!!'"),
    ("get_paper", {"paper": "arxiv:9999.1"}, "not a paper id, arXiv id or URL, DOI or title: 'arxiv:9999.1'"),
    ("expand_citations", {"paper": "q"}, "give either sections (names from get_paper) or a question"),
    ("expand_citations", {"paper": "PAPER", "sections": ["9 Nope"]}, "has no section '9 Nope'; its sections: 1 Intro"),
    ("score_paper", {"question": "q", "papers": []}, "papers must not be empty"),
    ("score_paper", {"question": "q", "papers": ["doi:10.1/none"]}, "paper not found: 'doi:10.1/none'"),
    ("list_searches", {"offset": -1}, "invalid arguments for list_searches: offset must be at least 0, got -1"),
    ("read_paper", {"paper": "arxiv:2401.99999"}, "paper not found: 'arxiv:2401.99999'"),
    ("read_paper", {"paper": "PAPER", "max_chars": 10}, "read_paper: max_chars must be at least 500, got 10"),
    ("read_paper", {"paper": "PAPER", "format": "pdf"}, "read_paper: format must be one of"),
    ("find_citing_papers", {"paper": "doi:10.1/none"}, "paper not found: 'doi:10.1/none'"),
    ("get_bibtex", {"papers": ["arxiv:2401.99999"]}, "paper not found: 'arxiv:2401.99999'"),
    ("no_such_tool", {}, "Unknown tool: no_such_tool"),
]


@pytest.mark.anyio
async def test_bad_arguments_to_every_tool_are_clear_errors_and_the_server_keeps_serving(pasa: Pasa) -> None:
    plug_fakes(pasa, Calls())
    async with Client(build_server(pasa=pasa)) as client:
        known = data(await client.call_tool("find_papers", {"queries": ["q1"]}))["papers"][0]["id"]
        for tool, arguments, expected in BAD_CALLS:
            arguments = {k: known if v == "PAPER" else v for k, v in arguments.items()}
            result = await client.call_tool(tool, arguments)
            assert expected in error_text(result), (tool, arguments)
            assert "\n" not in error_text(result) and "pydantic" not in error_text(result), error_text(result)
        assert {tool for tool, _, _ in BAD_CALLS} >= TOOLS
        assert data(await client.call_tool("get_paper", {"paper": known}))["id"] == known


@pytest.mark.anyio
async def test_without_a_model_the_model_tools_say_where_and_the_others_keep_working(pasa: Pasa) -> None:
    models = pasa.crawler, pasa.selector  # the real ones, at a closed port
    plug_fakes(pasa, Calls())
    pasa.crawler, pasa.selector = models
    url = pasa.settings.crawler_urls[0]
    async with Client(build_server(pasa=pasa)) as client:
        with anyio.fail_after(10):
            failed = error_text(await client.call_tool("paper_search", {"question": QUESTION, "wait_seconds": 20}))
        assert re.match(
            r"Error executing tool paper_search: deep search [0-9a-f]{12} failed: the crawler wrote no search query: "
            r"crawler model not running",
            failed,
        )
        for text in (failed, error_text(await client.call_tool("generate_queries", {"question": QUESTION}))):
            assert f"not running at {url} (ConnectError)" in text
            assert "pasa-mcp models serve crawler" in text and "PASA_CRAWLER_URLS" in text
            assert "pasa-mcp doctor" in text

        found = data(await client.call_tool("find_papers", {"queries": ["q1"]}))
        ids = [p["id"] for p in found["papers"][:2]]
        scored = error_text(await client.call_tool("score_paper", {"question": QUESTION, "papers": ids}))
        assert f"selector model not running at {url}" in scored and "PASA_SELECTOR_URLS" in scored
        assert data(await client.call_tool("get_paper", {"paper": ids[0]}))["sections"]
