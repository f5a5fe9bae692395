"""The context every client pays for the server: tools/list stays under 10 KB with output schemas,
every tool has a human title, and the hints say what each tool touches."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ListToolsResult

from pasa_mcp.config import Settings
from pasa_mcp.server import build_server

pytestmark = pytest.mark.anyio
LIMIT = 10 * 1024  # bytes of the tools/list result as JSON


async def tools_list(tmp_path: Path) -> ListToolsResult:
    async with Client(build_server(Settings(store_path=tmp_path / "store.sqlite3"))) as client:
        return await client.list_tools()


async def test_tools_list_fits_in_10_kb_with_output_schemas(tmp_path: Path) -> None:
    listed = await tools_list(tmp_path)
    size = len(listed.model_dump_json(by_alias=True, exclude_none=True))
    print(f"tools/list: {size} bytes for {len(listed.tools)} tools")
    assert size <= LIMIT, f"tools/list is {size} bytes, over {LIMIT}"
    structured = [t for t in listed.tools if t.name != "get_bibtex"]  # get_bibtex answers BibTeX text
    assert all(t.output_schema and t.output_schema["type"] == "object" for t in structured)
    assert all(t.output_schema["properties"] for t in structured)  # type: ignore[index]


async def test_every_tool_has_a_title_and_honest_hints(tmp_path: Path) -> None:
    tools = {t.name: t for t in (await tools_list(tmp_path)).tools}
    assert all(t.title and t.title[0].isupper() for t in tools.values()), [n for n, t in tools.items() if not t.title]
    assert tools["paper_search_cancel"].annotations.open_world_hint is False
    assert tools["paper_search_status"].annotations.open_world_hint is False
    assert tools["list_searches"].annotations.open_world_hint is False
    for name in ("get_paper", "read_paper", "find_citing_papers", "get_bibtex", "find_papers"):
        hints = tools[name].annotations
        assert hints.read_only_hint is True and hints.open_world_hint in (None, True)  # None: the default, true


async def test_schemas_carry_no_pydantic_titles(tmp_path: Path) -> None:
    listed = await tools_list(tmp_path)
    for tool in listed.tools:
        for schema in (tool.input_schema, tool.output_schema or {}):
            for prop in schema.get("properties", {}).values():
                assert "title" not in prop, (tool.name, prop)
    end_date = next(t for t in listed.tools if t.name == "paper_search").input_schema["properties"]["end_date"]
    assert end_date["type"] == "string" and end_date["format"] == "date"  # `date | None`, left out: the default
    assert "anyOf" not in end_date and "default" not in end_date
