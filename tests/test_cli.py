"""The command line's own behaviour: settings display, and clear errors with exit codes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasa_mcp.cli import app

runner = CliRunner()


def test_config_prints_effective_settings_with_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERPER_API_KEY", "sk-very-secret")
    monkeypatch.setenv("PASA_SEARCH_QUERIES", "7")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0
    assert "search_queries = 7" in result.output
    assert 'serper_api_key = "****"' in result.output
    assert "sk-very-secret" not in result.output


def test_invalid_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASA_EXPAND_LAYERS", "many")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "expand_layers" in result.output


def test_a_bad_date_is_refused_before_anything_runs() -> None:
    result = runner.invoke(app, ["search", "a question", "--end-date", "2024-13-01"])
    assert result.exit_code == 2
    assert "--end-date must be a date as YYYY-MM-DD" in result.output


def test_no_model_running_says_where_and_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PASA_CRAWLER_URLS", f'["http://127.0.0.1:{port}/v1"]')
    monkeypatch.setenv("PASA_HTTP_RETRIES", "0")
    monkeypatch.setenv("PASA_STORE_PATH", str(tmp_path / "store.sqlite3"))
    out = tmp_path / "result.json"
    result = runner.invoke(app, ["search", "value-based methods for non-stationary RL", "--json", str(out)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"failed: the crawler wrote no search query: crawler model not running at http://127.0.0.1:{port}/v1" in text
    assert "pasa-mcp models serve crawler" in text and "PASA_CRAWLER_URLS" in text and "pasa-mcp doctor" in text
    written = json.loads(out.read_text())  # the result is written whatever the outcome
    assert written["status"] == "failed" and written["error"].startswith("the crawler wrote no search query")


def test_a_bad_dataset_line_is_named(tmp_path: Path) -> None:
    dataset = tmp_path / "d.jsonl"
    dataset.write_text('{"question": "q"}\n')
    result = runner.invoke(app, ["eval", str(dataset), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "d.jsonl:1" in " ".join(result.output.split())


@pytest.mark.anyio
async def test_bare_command_started_by_an_mcp_client_serves_stdio(tmp_path: Path) -> None:
    import os
    import sys

    import anyio
    from mcp import Client, StdioServerParameters

    # What `uvx pasa-mcp` does in a client config without "serve": stdin is a pipe, not a terminal.
    command = str(Path(sys.executable).with_name("pasa-mcp"))
    env = {**os.environ, "PASA_STORE_PATH": str(tmp_path / "store.sqlite3")}
    with anyio.fail_after(30):
        async with Client(StdioServerParameters(command=command, args=[], env=env)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"paper_search", "get_paper", "score_paper"} <= names


def test_bare_command_in_a_terminal_prints_help() -> None:
    import os
    import pty
    import subprocess
    import sys

    controller, terminal = pty.openpty()  # stdin is a terminal, as when a person types `pasa-mcp`
    try:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("pasa-mcp"))], stdin=terminal, capture_output=True, timeout=30
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert done.returncode == 0
    assert "Usage" in done.stdout.decode() and "search" in done.stdout.decode()


def test_a_store_that_cannot_be_used_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PASA_STORE_PATH", str(tmp_path))  # a directory
    result = runner.invoke(app, ["search", "value-based methods for non-stationary RL"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"the store {tmp_path} is a directory, not a file: set PASA_STORE_PATH to a file path"
    )
