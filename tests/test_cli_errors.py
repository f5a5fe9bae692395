"""Every command refuses bad input with one line naming the problem (never a traceback); the progress
line fits narrow terminals; a refused key is said once, naming the variable that sets it."""

from __future__ import annotations

import os
import re
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pasa_mcp.agent import Counts, Event
from pasa_mcp.cli import app, progress_line, search_progress

runner = CliRunner()
CLICK_LINES = ("Usage: ", "Try '")  # click's usage hint above its one "Error: ..." line


def commands() -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands} | {
        g.name for g in app.registered_groups if g.name
    }


# (arguments, extra environment, words the one error line must contain). Files under FILES are made first.
FILES = {
    "broken.toml": "search_queries = [\n",
    "odd.toml": "frobs = 3\nsearch_sources = ['bing']\n",
    "latin1.toml": "crawler_model = 'caf\xe9'\n",
    "secret.toml": "serper_api_key = 918273645\n",
    "d.jsonl": "{}\n",
}
CASES = [
    (["frob"], {}, "No such command 'frob'"),
    (["--frob"], {}, "No such option: --frob"),
    (["config", "extra"], {}, "unexpected extra argument"),
    (["config"], {"PASA_CONFIG": "{tmp}/broken.toml"}, "broken.toml:1: not valid TOML: Invalid value"),
    (["config"], {"PASA_CONFIG": "{tmp}/latin1.toml"}, "latin1.toml:1: not UTF-8 text (byte 0xe9)"),
    (["config"], {"PASA_CONFIG": "{tmp}/missing.toml"}, "PASA_CONFIG names {tmp}/missing.toml, which does not exist"),
    (["config"], {"PASA_CONFIG": "{tmp}"}, "PASA_CONFIG names {tmp}, which is a directory"),
    (["config"], {"PASA_CONFIG": "{tmp}/secret.toml"}, "serper_api_key must be a valid string"),
    (["config"], {"PASA_CONFIG": "{tmp}/odd.toml"}, "search_sources[0] must be one of 'google', 'arxiv'"),
    (["config"], {"PASA_EXPAND_LAYERS": "many"}, "expand_layers must be a valid integer"),
    (["config"], {"PASA_CRAWLER_URLS": "[]"}, "crawler_urls must not be empty"),
    (["config"], {"PASA_SELECTOR_URLS": '["http://gpu:8002/v1",'}, "selector_urls must be a JSON list, one value"),
    (["search", "q"], {"PASA_CONFIG": "{tmp}/broken.toml"}, "broken.toml:1: not valid TOML"),
    (["serve"], {"PASA_CONFIG": "{tmp}/broken.toml"}, "broken.toml:1: not valid TOML"),
    (["serve"], {"PASA_CRAWLER_URLS": "[]"}, "crawler_urls must not be empty"),
    (["search"], {}, "Missing argument 'question'"),
    (["search", "q", "--layers", "9"], {}, "--layers must be at most 5, got 9"),
    (["search", "q", "--layers", "x"], {}, "Invalid value for '--layers'"),
    (["search", "q", "--queries", "0"], {}, "--queries must be at least 1, got 0"),
    (["search", "q", "--ensemble", "9"], {}, "--ensemble must be at most 8"),
    (["search", "q", "--max-seconds", "-1"], {}, "--max-seconds must be more than 0"),
    (["search", "q", "--end-date", "2024-13-01"], {}, "--end-date must be a date as YYYY-MM-DD"),
    (["search", "q", "--start-date", "2024-6-1"], {}, "--start-date must be a date as YYYY-MM-DD, got '2024-6-1'"),
    (["search", "q", "--start-date", "2024-06-01", "--end-date", "2024-01-01"], {}, "must come before end_date"),
    (["search", "q", "--threshold", "2"], {}, "--threshold must be at most 1"),
    (["search", "q", "--sources", "bing"], {}, "unknown search source 'bing'"),
    (["search", "q", "--sources", ","], {}, "--sources names no source"),
    (["search", "q", "--json", "/nonexistent/dir/x.json"], {}, "--json /nonexistent/dir/x.json cannot be written"),
    (["search", "q", "--json", "{tmp}"], {}, "is a directory"),
    (["search", "   "], {}, "the research question is empty"),
    (["resume"], {}, "Missing argument 'search_id'"),
    (["resume", "nope"], {}, "no deep search with id 'nope'"),
    (["resume", "nope", "--json", "/nonexistent/dir/x.json"], {}, "--json /nonexistent/dir/x.json cannot be written"),
    (["eval", "{tmp}/missing.jsonl"], {}, "No such file or directory"),
    (["eval", "{tmp}/d.jsonl"], {}, "d.jsonl:1"),
    (["eval", "{tmp}/d.jsonl", "--concurrency", "0"], {}, "Invalid value for '--concurrency'"),
    (["doctor", "--frob"], {}, "No such option: --frob"),
    (["doctor"], {"PASA_EXPAND_LAYERS": "many"}, "expand_layers must be a valid integer"),
    (["models", "frob"], {}, "No such command 'frob'"),
    (["models", "serve", "nonsense"], {}, "'nonsense' is not one of 'crawler', 'selector', 'both'"),
    (["models", "serve", "crawler", "--engine", "frob"], {}, "Invalid value for '--engine'"),
    (["models", "smoke-test"], {"PASA_CONFIG": "{tmp}/broken.toml"}, "not valid TOML"),
    (["serve", "--port", "99999"], {}, "Invalid value for '--port'"),
    (["index", "search", "--before", "June", "x"], {}, "--before must be a date as YYYY-MM-DD"),
    (["index", "import-arxiv", "{tmp}/missing.jsonl"], {}, "no such file"),
    (["index", "frob"], {}, "No such command 'frob'"),
    (["serve", "--http", "--host", "0.0.0.0"], {}, "needs a bearer token: set PASA_HTTP_TOKEN"),
]


@pytest.fixture
def closed_port_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Models at a port nobody listens on: a command that got as far as searching would say so."""
    monkeypatch.setenv("PASA_CRAWLER_URLS", '["http://127.0.0.1:9/v1"]')
    monkeypatch.setenv("PASA_SELECTOR_URLS", '["http://127.0.0.1:9/v1"]')
    monkeypatch.setenv("PASA_HTTP_RETRIES", "0")
    monkeypatch.setenv("PASA_STORE_PATH", str(tmp_path / "store.sqlite3"))
    monkeypatch.delenv("PASA_CONFIG", raising=False)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="latin-1")  # latin1.toml: not UTF-8


@pytest.mark.parametrize(("args", "env", "expected"), CASES, ids=[" ".join(c[0]) + str(c[1]) for c in CASES])
@pytest.mark.usefixtures("closed_port_models")
def test_bad_input_is_one_line_naming_the_problem(args: list[str], env: dict, expected: str, tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an exception escaping as a traceback
    assert "Traceback" not in result.output and "pydantic.dev" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith(CLICK_LINES)]
    assert len(lines) == 1, result.output
    assert expected.replace("{tmp}", str(tmp_path)).lower() in lines[0].lower(), lines[0]
    assert "918273645" not in result.output  # a secret's value is never repeated
    assert "model unavailable" not in result.output  # refused before any work


def test_every_command_has_bad_input_cases() -> None:
    tried = {args[0] for args, _, _ in CASES if not args[0].startswith("-")}
    assert commands() <= tried, commands() - tried


@pytest.mark.usefixtures("closed_port_models")
def test_an_unwritable_json_path_is_refused_before_searching(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.json"
    result = runner.invoke(app, ["search", "value-based RL", "--json", str(target)])
    assert result.exit_code == 2
    assert "there is no directory" in result.output and "model unavailable" not in result.output
    assert not target.parent.exists()


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160])
def test_the_progress_line_keeps_spinner_bar_and_time_at_any_width(width: int) -> None:
    screen = StringIO()
    console = Console(file=screen, width=width, force_terminal=True, color_system=None)
    counts = Counts(queries=5, searches=5, papers=1234, scored=1200, selected=87, expanded=20, expansions_left=30)
    event = Event(kind="expanded", message="expanded arxiv:2401.01234 § 3 Related Work: 17 papers " * 2, counts=counts)
    progress = search_progress(console)
    task = progress.add_task("", total=50)
    progress.update(task, description=progress_line(event), completed=20)
    console.print(progress.get_renderable())
    (line,) = screen.getvalue().splitlines()
    assert len(line) <= width
    assert line[0] in SPINNER and "━" in line and re.search(r"\d:\d\d:\d\d", line), line
    if width >= 80:
        assert "1234 papers · 1200 scored · 87 selected" in line, line


@pytest.mark.anyio
async def test_a_refused_serper_key_is_said_once_naming_serper_api_key(tmp_path: Path) -> None:
    import anyio

    from tools.world import World

    async with World.start(seed=3, papers=300, time_scale=0.02) as world:
        settings = world.settings_toml().replace(world.config.serper_key, "a-wrong-key")
        config = tmp_path / "world.toml"
        config.write_text(settings + f'store_path = "{tmp_path / "store.sqlite3"}"\n')
        env = {**os.environ, "PASA_CONFIG": str(config), "COLUMNS": "80"}
        question = world.queries[0]["question"]
        with anyio.fail_after(120):
            done = await anyio.run_process(
                [sys.executable, "-m", "pasa_mcp", "search", question, "--queries", "3"], env=env, check=False
            )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr and "a-wrong-key" not in stderr + done.stdout.decode()
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(set(warnings)) >= 1, stderr
    assert "HTTP 403 (the API key was refused: check SERPER_API_KEY)" in warnings[0]
    (why,) = [line for line in stderr.splitlines() if line.startswith("search failed:")]
    assert "check SERPER_API_KEY" in why


STORE_FAULTS = {
    "a directory": (lambda tmp: tmp, "is a directory, not a file: set PASA_STORE_PATH"),
    "not SQLite": (lambda tmp: _write(tmp / "junk.sqlite3", b"not a database " * 400), "is not an SQLite database"),
    "no folder": (lambda tmp: _write(tmp / "file", b"") / "store.sqlite3", "cannot be created"),
}
INDEX_FAULTS = {
    "a directory": (lambda tmp: tmp, "the local index {path} cannot be used"),
    "not SQLite": (lambda tmp: _write(tmp / "junk.sqlite3", b"not a database " * 400), "cannot be used (file is not"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("variable", "fault"),
    [("PASA_STORE_PATH", f) for f in STORE_FAULTS] + [("PASA_INDEX_PATH", f) for f in INDEX_FAULTS],
)
@pytest.mark.parametrize("command", [["serve"], ["search", "q"], ["resume", "x"]])
@pytest.mark.usefixtures("closed_port_models")
def test_a_store_or_index_that_cannot_be_used_is_one_line(
    command: list[str], variable: str, fault: str, tmp_path: Path
) -> None:
    make, expected = (STORE_FAULTS if variable == "PASA_STORE_PATH" else INDEX_FAULTS)[fault]
    path = make(tmp_path)
    result = runner.invoke(app, command, env={variable: str(path)})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("deep search")]
    assert len(lines) == 1, result.output
    assert expected.format(path=path) in lines[0], lines[0]
    assert not path.with_name(path.name + ".tantivy").exists()  # a refused index leaves nothing behind


@pytest.mark.usefixtures("closed_port_models")
def test_an_unknown_pasa_variable_is_a_warning_naming_the_nearest_setting() -> None:
    result = runner.invoke(app, ["config"], env={"PASA_CRAWLER_URL": "http://gpu:8001/v1"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "warning: PASA_CRAWLER_URL is not a pasa-mcp setting and is ignored (did you mean PASA_CRAWLER_URLS?)"
    )
    assert 'crawler_urls = ["http://127.0.0.1:9/v1"]' in result.output  # what the fixture set, not the typo


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PASA_CONFIG": "{tmp}/broken.toml"}, "Invalid settings: {tmp}/broken.toml:1: not valid TOML: Invalid value"),
        (
            {"PASA_STORE_PATH": "{tmp}"},
            "the store {tmp} is a directory, not a file: set PASA_STORE_PATH to a file path",
        ),
    ],
)
@pytest.mark.usefixtures("closed_port_models")
def test_serve_says_what_is_wrong_on_stderr_before_a_client_connects(env: dict, expected: str, tmp_path: Path) -> None:
    """What an MCP client launching `pasa-mcp serve` shows in its log: one line, not a traceback."""
    import subprocess

    env = {**os.environ, **{k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}}
    initialize = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "pasa_mcp", "serve"],
        input=initialize,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode in (1, 2), done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [expected.replace("{tmp}", str(tmp_path))]
