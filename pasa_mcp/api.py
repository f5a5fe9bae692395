"""pasa-mcp from Python: the MCP tools as calls, with the same arguments and the same results.

`connect()` runs the server in this process (no subprocess, no sockets) and hands back `Tools`;
a deep search, a single step or an export is then one awaited call. Failures a tool reports (a bad
argument, a paper not found, a source or model that failed) raise `ToolFailed` with the tool's
own one-line message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client

from .config import Settings
from .server import build_server

RUNNING = ("queued", "running")


class ToolFailed(Exception):
    """A tool answered with an error; the message is the tool's."""


class Tools:
    """The server's tools, called in process. `call` takes any tool by name; the rest are shorthands."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def call(self, tool: str, **arguments: Any) -> Any:
        """The tool's structured result (a dict), or its text for a text tool (get_bibtex)."""
        result = await self._client.call_tool(tool, arguments)
        text = result.content[0].text if result.content and result.content[0].type == "text" else ""
        if result.is_error:
            raise ToolFailed(text.removeprefix(f"Error executing tool {tool}: "))
        return result.structured_content if result.structured_content is not None else text

    async def deep_search(self, question: str, **arguments: Any) -> dict[str, Any]:
        """paper_search, waited for to the end (polling paper_search_status): the final report."""
        report = await self.call("paper_search", question=question, **arguments)
        while report["status"] in RUNNING:
            report = await self.call(
                "paper_search_status", search_id=report["search_id"], limit=arguments.get("limit", 20)
            )
        return report


@asynccontextmanager
async def connect(settings: Settings | None = None) -> AsyncIterator[Tools]:
    """The tools of a server opened from `settings` (default: the environment and the config file)."""
    async with Client(build_server(settings or Settings())) as client:
        yield Tools(client)
