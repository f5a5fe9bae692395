"""`pasa-mcp serve` as clients run it: a stdio subprocess and a streamable HTTP subprocess, both over
the simulated scholarly web (tools/world) on loopback."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from typer.testing import CliRunner

from pasa_mcp.cli import app
from pasa_mcp.server import TOOLS, transport_security
from pasa_mcp.store import Store
from tools.world import Faults, World

PASA_MCP = str(Path(sys.executable).with_name("pasa-mcp"))  # the console script users run
TOKEN = "s3cret-for-tests"
SMALL = {"search_queries": 3, "expand_layers": 1}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    """A quiet world: no latency, no rate limits."""
    async with World.start(seed=11, papers=400, latency=False, limits={}) as w:
        yield w


@pytest.fixture(scope="module")
async def stuck_world() -> AsyncIterator[World]:
    """A world whose crawler never answers: its deep searches stay running."""
    async with World.start(seed=11, papers=400, latency=False, limits={}, faults={"crawler": Faults(timeout=1)}) as w:
        yield w


def server_env(world: World, tmp_path: Path, **extra: str) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(world.settings_toml(), encoding="utf-8")
    return {"PASA_CONFIG": str(config), "PASA_STORE_PATH": str(tmp_path / "store.sqlite3"), **extra}


def data(result: CallToolResult) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def answer(world: World) -> tuple[str, list[str]]:
    """A planted question and the arXiv ids of its answers."""
    row = world.queries[0]
    return row["question"], row["answer_arxiv_id"]


@pytest.mark.anyio
async def test_stdio_server_runs_a_deep_search_to_the_end_and_serves_its_results(world: World, tmp_path: Path) -> None:
    question, answers = answer(world)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    params = StdioServerParameters(command=PASA_MCP, args=["serve"], env=server_env(world, tmp_path))
    with anyio.fail_after(30):
        async with Client(params) as client:
            tools = (await client.list_tools()).tools
            assert len(tools) == len(TOOLS)
            assert all(t.output_schema["type"] == "object" for t in tools if t.name != "get_bibtex")  # BibTeX: text

            start = {"question": question, "end_date": "2024-02-29", "wait_seconds": 0, **SMALL}
            search_id = data(await client.call_tool("paper_search", start))["search_id"]
            status = {"search_id": search_id, "wait_seconds": 30, "limit": 100}
            final = data(await client.call_tool("paper_search_status", status, progress_callback=on_progress))
            assert final["status"] == "finished" and final["failures"] == []
            found = {p["id"].removeprefix("arxiv:") for p in final["papers"]}
            assert len(found & set(answers)) >= len(answers) // 2  # the planted answers, found and selected
            assert progress and progress[-1].startswith("finished: 3 queries, 3 searches run")

            markdown = (await client.read_resource(f"pasa://search/{search_id}.md")).contents[0].text
            assert markdown.count("\n1. **") == 1 and f"{final['total']} selected" in markdown
            bib = (await client.read_resource(f"pasa://search/{search_id}.bib")).contents[0].text
            assert bib.count("\n@") + 1 == final["total"]
            whole = json.loads((await client.read_resource(f"pasa://search/{search_id}")).contents[0].text)
            assert whole["result"]["tree"]["extra"]["end_date"] == "2024-02-29"

            paper = data(await client.call_tool("get_paper", {"paper": f"arXiv:{answers[0]}"}))
            assert paper["id"] == f"arxiv:{answers[0]}" and paper["sections"]
            other = next(p.arxiv_id for p in world.corpus.papers if p.arxiv_id and p.arxiv_id not in answers)
            scores = data(await client.call_tool("score_paper", {"question": question, "papers": [answers[0], other]}))
            assert [s["selected"] for s in scores["papers"]] == [True, False]

            bad = await client.call_tool("score_paper", {"question": question, "papers": ["arxiv:2401.99999"]})
            assert bad.is_error and "paper not found: 'arxiv:2401.99999'" in bad.content[0].text
            assert len((await client.list_tools()).tools) == len(TOOLS)  # still serving


@pytest.mark.anyio
async def test_a_stdio_clients_exit_stops_its_searches_as_cancelled_and_they_resume(
    stuck_world: World, world: World, tmp_path: Path
) -> None:
    """What the README promises: when the client that started `pasa-mcp serve` exits, the server stops
    and records its running searches as cancelled (with what they found); any server sharing the store
    resumes them by id."""
    question, _ = answer(stuck_world)
    params = StdioServerParameters(command=PASA_MCP, args=["serve"], env=server_env(stuck_world, tmp_path))
    with anyio.fail_after(30):
        async with Client(params) as client:
            started = data(await client.call_tool("paper_search", {"question": question, "wait_seconds": 0.2}))
            assert started["status"] == "running"  # the crawler is still thinking
    store = Store(tmp_path / "store.sqlite3")
    run = store.get_run(started["search_id"])
    store.close()
    assert (run["status"], run["error"]) == ("cancelled", "stopped: the server shut down")

    params = StdioServerParameters(command=PASA_MCP, args=["serve"], env=server_env(world, tmp_path))
    with anyio.fail_after(30):
        async with Client(params) as client:
            resume = {"question": question, "resume": started["search_id"], "wait_seconds": 25}
            resumed = data(await client.call_tool("paper_search", resume))
    assert resumed["status"] == "finished" and resumed["total"] > 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def listening(port: int) -> None:
    with anyio.fail_after(20):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)
            else:
                await stream.aclose()
                return


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@pytest.mark.anyio
async def test_http_server_wants_the_token_and_its_searches_end_with_it(stuck_world: World, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {**os.environ, **server_env(stuck_world, tmp_path, PASA_HTTP_TOKEN=TOKEN)}
    process = await anyio.open_process([PASA_MCP, "serve", "--http", "--port", str(port)], env=env)
    try:
        await listening(port)
        discover = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}}
        async with httpx.AsyncClient() as raw:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                refused = await raw.post(url, json=discover, headers=headers)
                assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
            rebound = await raw.post(
                url, json=discover, headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
            )
            assert rebound.status_code == 421  # DNS-rebinding protection: a foreign Host header

        question, answers = answer(stuck_world)
        with anyio.fail_after(20):
            async with connect(url) as client:
                assert len((await client.list_tools()).tools) == len(TOOLS)
                paper = data(await client.call_tool("get_paper", {"paper": answers[0], "sections": False}))
                assert paper["id"] == f"arxiv:{answers[0]}"
                started = data(await client.call_tool("paper_search", {"question": question, "wait_seconds": 0.2}))
                assert started["status"] == "running"  # the crawler is still thinking
            async with connect(url) as client:  # a new session: the search outlived the client that started it
                again = {"search_id": started["search_id"], "wait_seconds": 0}
                assert data(await client.call_tool("paper_search_status", again))["status"] == "running"
                left_running = data(await client.call_tool("paper_search", {"question": question, "wait_seconds": 0}))
                cancelled = data(await client.call_tool("paper_search_cancel", {"search_id": started["search_id"]}))
                assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled on request"
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
    # The search left running when the server stopped is recorded as stopped, not running forever.
    store = Store(tmp_path / "store.sqlite3")
    assert store.get_run(left_running["search_id"])["error"] == "stopped: the server shut down"
    store.close()


def test_http_beyond_loopback_needs_a_token() -> None:
    refused = CliRunner().invoke(app, ["serve", "--http", "--host", "0.0.0.0"])
    assert refused.exit_code == 2
    assert "serving on 0.0.0.0 needs a bearer token: set PASA_HTTP_TOKEN" in refused.output


def test_dns_rebinding_protection_names_loopback_the_bound_host_and_the_allowed_ones() -> None:
    security = transport_security("10.0.0.5", ["papers.lab.example"])
    assert security.enable_dns_rebinding_protection
    assert security.allowed_hosts == ["127.0.0.1:*", "localhost:*", "[::1]:*", "10.0.0.5:*", "papers.lab.example:*"]
    assert "https://papers.lab.example:*" in security.allowed_origins
