"""Secrets never leave: every configured key, raw or percent-encoded or JSON-escaped, is masked in
errors, failures, logs, results and stored rows, even when a remote echoes it back in a 4xx body."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import anyio
import pytest
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pasa_mcp import scrub
from pasa_mcp.config import Settings, secret_fields
from pasa_mcp.server import build_server
from tests.loopback import serve

# Characters that a URL query, a header and a JSON body each carry differently.
KEYS = {
    "serper_api_key": "sk+Serper/key=01&x",
    "s2_api_key": "s2 Key+with/slash==",
    "openalex_api_key": "oa+Key/With=Equals&and",
    "crawler_api_key": "sk-crawler+key/42==",
    "selector_api_key": "sk-selector+key/43==",
    "http_token": "tok+Http/token=99",
}


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}


def leaks(text: str) -> list[str]:
    """The key forms found in `text`."""
    return [form for secret in KEYS.values() for form in forms(secret) if form in text]


def test_keys_are_masked_in_every_form_and_short_values_are_left_alone() -> None:
    scrub.add("sk+Serper/key=01&x")
    scrub.add("abc")  # too short to mask safely: "abc" would vanish from every message
    text = "a sk+Serper/key=01&x b sk%2BSerper%2Fkey%3D01%26x c sk%2bSerper%2fkey%3d01%26x d sk%2BSerper/key%3D01%26x"
    assert scrub.scrub(text + " abc") == "a **** b **** c **** d **** abc"
    assert scrub.scrub_json({"k sk+Serper/key=01&x": ["sk+Serper/key=01&x", 3]}) == {"k ****": ["****", 3]}


def test_log_records_are_scrubbed_for_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    scrub.remember(Settings(s2_api_key=KEYS["s2_api_key"]))
    with caplog.at_level(logging.WARNING):
        logging.getLogger("somebody.else").warning("answer: %s", f"echo {quote(KEYS['s2_api_key'])}")
        try:
            raise ValueError(f"bad {KEYS['s2_api_key']}")
        except ValueError:
            logging.getLogger("pasa_mcp.x").exception("failed")
    assert "echo ****" in caplog.text and "bad ****" in caplog.text
    assert not leaks(caplog.text)


def test_every_secret_setting_is_covered_here() -> None:
    assert set(KEYS) == set(secret_fields())


async def echo(request: Request) -> JSONResponse:
    """A remote that refuses every request (400) and says back what carried a key, first (error bodies are
    shortened): a key in the query as sent (percent-encoded) and decoded, the key headers, the body."""
    sent = [part for part in request.url.query.split("&") if part.startswith("api_key=")]
    keys = [f"{name}: {request.headers[name]}" for name in ("x-api-key", "authorization") if name in request.headers]
    body = (await request.body()).decode(errors="replace")
    said = " ".join(["denied", *sent, *(f"({unquote(part)})" for part in sent), *keys, body])
    return JSONResponse({"error": said}, status_code=400)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    async with serve(app) as url:
        yield url


def dump(store: Path) -> str:
    with sqlite3.connect(store) as db:
        return "\n".join(db.iterdump())


@pytest.mark.anyio
async def test_keys_echoed_by_remotes_reach_no_tool_error_result_log_or_stored_row(
    echo_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store.sqlite3"
    settings = Settings(
        **KEYS,
        store_path=store,
        crawler_urls=[f"{echo_url}/v1"],
        selector_urls=[f"{echo_url}/v1"],
        serper_url=echo_url,
        s2_url=echo_url,
        openalex_url=echo_url,
        arxiv_api_url=f"{echo_url}/api/query",
        http_retries=0,
        s2_interval=0,
        openalex_interval=0,
        arxiv_interval=0,
    )
    seen: list[str] = []
    with caplog.at_level(logging.INFO):
        async with Client(build_server(settings)) as client:
            for tool, arguments in [
                ("find_papers", {"queries": ["q"], "sources": ["google", "semantic_scholar", "openalex", "arxiv"]}),
                ("generate_queries", {"question": "value-based RL"}),
                ("score_paper", {"question": "q", "papers": ["arxiv:2401.00001"]}),
                ("paper_search", {"question": "value-based RL", "sources": ["google", "openalex"], "wait_seconds": 20}),
                ("list_searches", {}),
            ]:
                result = await client.call_tool(tool, arguments)
                seen.append(result.model_dump_json())
    texts = {"tool results and errors": "\n".join(seen), "logs": caplog.text, "store": dump(store)}
    for where, text in texts.items():
        assert not leaks(text), (where, leaks(text))
    # The remotes' own words did come through (so the masking, not a silence, keeps the keys out).
    assert "denied" in texts["tool results and errors"] and "****" in texts["tool results and errors"]
    assert "****" in texts["store"]


@pytest.mark.anyio
async def test_keys_echoed_by_sources_reach_no_cli_line_json_or_stored_row(echo_url: str, tmp_path: Path) -> None:
    from tools.world import World

    store, out = tmp_path / "store.sqlite3", tmp_path / "result.json"
    async with World.start(seed=3, papers=300, time_scale=0.02) as world:
        settings = {
            **world.settings(),
            **KEYS,
            "serper_url": echo_url,
            "s2_url": echo_url,
            "openalex_url": echo_url,
            "store_path": str(store),
            "http_retries": 0,
        }
        config = tmp_path / "config.toml"
        config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
        env = {**os.environ, "PASA_CONFIG": str(config), "COLUMNS": "250"}
        command = ["search", world.queries[0]["question"], "--queries", "2", "--layers", "0"]
        with anyio.fail_after(120):
            done = await anyio.run_process(
                [sys.executable, "-m", "pasa_mcp", *command, "--sources", "google,openalex", "--json", str(out)],
                env=env,
                check=False,
            )
    printed = done.stdout.decode() + done.stderr.decode()
    assert "Traceback" not in printed, printed
    for where, text in {"CLI output": printed, "--json": out.read_text(), "store": dump(store)}.items():
        assert not leaks(text), (where, leaks(text))
    assert "denied" in printed and "****" in printed, printed
    assert "****" in out.read_text() and "****" in dump(store)
