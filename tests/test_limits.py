"""Bad input stays small: over-long ids, queries and questions, and over-long lists, are refused over
a real MCP client session and by the CLI with one line naming the limit, never repeating the input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from typer.testing import CliRunner

from pasa_mcp.app import Pasa, open_app
from pasa_mcp.cli import app
from pasa_mcp.config import Settings
from pasa_mcp.limits import ID_CHARS, ITEMS, QUERY_CHARS, QUESTION_CHARS, URI_CHARS
from pasa_mcp.server import build_server
from tests.fakes import Calls
from tests.test_server import closed_port, plug_fakes

pytestmark = pytest.mark.anyio


def filler(n: int) -> str:
    """`n` characters whose any 20 in a row would show in a message that repeated them."""
    return ("zq" * (n // 2 + 1))[:n]


BIG = filler(65_536)
ECHO = filler(20)
PAPER = "arxiv:2401.00001"
CALLS = [
    ("get_paper", {"paper": BIG}, f"paper is too long: at most {ID_CHARS} characters, got 65536"),
    ("get_paper", {"paper": filler(ID_CHARS + 1)}, f"paper is too long: at most {ID_CHARS} characters"),
    ("read_paper", {"paper": BIG}, "paper is too long"),
    ("find_citing_papers", {"paper": BIG}, "paper is too long"),
    ("expand_citations", {"paper": PAPER, "question": BIG}, f"question is too long: at most {QUESTION_CHARS}"),
    ("expand_citations", {"paper": PAPER, "sections": ["1 Intro", BIG]}, "sections[1] is too long"),
    ("score_paper", {"question": filler(QUESTION_CHARS + 1), "papers": [PAPER]}, "question is too long"),
    ("score_paper", {"question": "q", "papers": [PAPER] * (ITEMS + 1)}, f"papers has too many items: at most {ITEMS}"),
    ("get_bibtex", {"papers": [PAPER, BIG]}, "papers[1] is too long"),
    ("generate_queries", {"question": BIG}, f"question is too long: at most {QUESTION_CHARS} characters, got 65536"),
    ("find_papers", {"queries": [filler(QUERY_CHARS + 1)]}, f"queries[0] is too long: at most {QUERY_CHARS}"),
    ("paper_search", {"question": BIG}, "question is too long"),
    ("paper_search", {"question": "q", "resume": BIG}, "resume is too long"),
    ("paper_search_status", {"search_id": BIG}, "search_id is too long"),
    ("paper_search_cancel", {"search_id": BIG}, "search_id is too long"),
    ("list_searches", {"offset": BIG}, "offset is too long"),  # any text argument has a limit
]


@pytest.fixture
async def pasa() -> AsyncIterator[Pasa]:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    async with open_app(Settings(crawler_urls=[dead], selector_urls=[dead], http_retries=0)) as opened:
        plug_fakes(opened, Calls())
        yield opened


async def test_over_long_arguments_are_refused_naming_the_limit(pasa: Pasa) -> None:
    async with Client(build_server(pasa=pasa)) as client:
        for tool, arguments, expected in CALLS:
            result = await client.call_tool(tool, arguments)
            assert result.is_error, (tool, expected)
            text = result.content[0].text
            assert text == f"invalid arguments for {tool}: {expected}" or (
                text.startswith(f"invalid arguments for {tool}: {expected}") and len(text) < 200
            ), text
            assert ECHO not in text, text
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert {tool for tool, _, _ in CALLS} == listed


async def test_inputs_at_the_limit_reach_the_tool(pasa: Pasa) -> None:
    async with Client(build_server(pasa=pasa)) as client:
        title = filler(ID_CHARS)
        result = await client.call_tool("get_paper", {"paper": title})
        assert result.content[0].text.startswith("Error executing tool get_paper: paper not found"), result.content
        found = await client.call_tool("find_papers", {"queries": [filler(QUERY_CHARS)]})
        assert not found.is_error, found.content
        queries = await client.call_tool("generate_queries", {"question": filler(QUESTION_CHARS)})
        assert not queries.is_error and queries.structured_content["queries"], queries.content


async def test_resources_and_the_prompt_refuse_over_long_ids_and_questions(pasa: Pasa) -> None:
    async with Client(build_server(pasa=pasa)) as client:
        for uri, expected in [
            (f"pasa://paper/{BIG}", f"a resource URI is too long: at most {URI_CHARS} characters, got 65549"),
            (f"pasa://paper/{filler(URI_CHARS)}", "a resource URI is too long"),
            (f"pasa://search/{BIG}.md", "a resource URI is too long"),
        ]:
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            assert expected in str(caught.value) and ECHO not in str(caught.value), str(caught.value)[:300]
        at_the_limit = f"pasa://paper/title:{filler(URI_CHARS - 19)}"
        with pytest.raises(MCPError, match="paper not found"):
            await client.read_resource(at_the_limit)
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("pasa_loop", {"question": BIG})
        assert "question is too long" in str(caught.value) and ECHO not in str(caught.value), str(caught.value)[:300]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["search", filler(QUESTION_CHARS + 1)], f"the research question is too long: at most {QUESTION_CHARS}"),
        (["resume", BIG], f"the search id is too long: at most {ID_CHARS} characters, got 65536"),
    ],
    ids=["search", "resume"],
)
def test_the_cli_refuses_over_long_input_in_one_line(
    args: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f'["http://127.0.0.1:{closed_port()}/v1"]'
    monkeypatch.setenv("PASA_CRAWLER_URLS", dead)
    monkeypatch.setenv("PASA_SELECTOR_URLS", dead)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.output[:500]
    assert ECHO not in result.output
