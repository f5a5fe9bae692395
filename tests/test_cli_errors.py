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
FILES = {"broken.toml": "search_queries = [\n", "odd.toml": "frobs = 3\nsearch_sources = ['bing']\n", "d.jsonl": "{}\n"}
CASES = [
    (["frob"], {}, "No such command 'frob'"),
    (["--frob"], {}, "No such option: --frob"),
    (["config", "extra"], {}, "unexpected extra argument"),
    (["config"], {"PASA_CONFIG": "{tmp}/broken.toml"}, "broken.toml): the file is not valid TOML"),
    (["config"], {"PASA_CONFIG": "{tmp}/odd.toml"}, "search_sources[0] must be one of 'google', 'arxiv'"),
    (["config"], {"PASA_EXPAND_LAYERS": "many"}, "expand_layers must be a valid integer"),
    (["config"], {"PASA_CRAWLER_URLS": "http://gpu:8001/v1"}, 'field "crawler_urls"'),
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
    (["models", "smoke-test"], {"PASA_CONFIG": "{tmp}/broken.toml"}, "the file is not valid TOML"),
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
        (tmp_path / name).write_text(text)


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
    assert expected.lower() in lines[0].lower(), lines[0]
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
