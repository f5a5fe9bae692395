"""The command line: a thin layer over the library (`pasa-mcp --help`)."""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import anyio
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from . import __version__
from .agent import Event, RunResult, SearchParams
from .categories import split_categories
from .config import ConfigError, Settings, config_path, secret_fields, unknown_variables
from .doctor import doctor
from .errors import plain_errors
from .index_cli import app as index_app
from .jobs import OnEvent, UnknownSearch
from .limits import ID_CHARS, TooLong, check_text
from .models_cli import app as models_app
from .scrub import scrub

app = typer.Typer(
    help="PaSa deep paper search: an LLM crawler and selector over arXiv and friends, as an MCP server and CLI.",
    add_completion=False,
    rich_markup_mode=None,  # click's plain one-line "Error: ..." for bad options, not a wrapped box
)
app.add_typer(index_app, name="index")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line in logs and pipes


def _settings() -> Settings:
    """The settings, or one line saying what is wrong with them (exit 2); unknown PASA_* variables are warned of."""
    for warning in unknown_variables():
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    try:
        return Settings()
    except ConfigError as exc:
        err.print(f"[red]Invalid settings:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        problem = plain_errors(exc, quiet=secret_fields())
    except SettingsError as exc:
        problem = str(exc)
    err.print(f"[red]Invalid settings[/red] (env vars PASA_* or {config_path()}): {escape(problem)}", highlight=False)
    raise typer.Exit(2)


def _offline(settings: Settings, offline: bool) -> Settings:
    return settings.model_copy(update={"offline": True}) if offline else settings


def _version(value: bool) -> None:
    if value:
        out.print(f"pasa-mcp {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """PaSa deep paper search. Without a command: the MCP server on stdio when an MCP client starts it
    (`uvx pasa-mcp`), this help in a terminal."""
    if ctx.invoked_subcommand is not None:
        return
    if sys.stdin.isatty():
        out.print(ctx.get_help())
        raise typer.Exit()
    serve(http=False)


@app.command()
def config() -> None:
    """Print the effective settings (secrets masked) and where they come from."""
    settings = _settings()
    out.print(f"# config file: {config_path()} ({'found' if config_path().exists() else 'not found'})")
    out.print("# environment variables PASA_<NAME> override it")
    for name, value in settings.display().items():
        out.print(f"{name} = {json.dumps(value)}", highlight=False, soft_wrap=True)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="A detailed research question.")],
    end_date: Annotated[str | None, typer.Option(help="Only papers published before YYYY-MM-DD.")] = None,
    start_date: Annotated[str | None, typer.Option(help="Only papers published on or after YYYY-MM-DD.")] = None,
    categories: Annotated[
        str | None,
        typer.Option(help="Only papers in these arXiv categories, comma-separated: cs.LG,stat.ML (cs: all cs.*)."),
    ] = None,
    sources: Annotated[
        str | None, typer.Option(help="Search sources, comma-separated: google, arxiv, semantic_scholar, openalex.")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Selection score threshold (paper: 0.5).")] = None,
    queries: Annotated[int | None, typer.Option(help="Crawler search queries (paper: 5).")] = None,
    papers: Annotated[int | None, typer.Option(help="Papers per query and source (paper: 10).")] = None,
    layers: Annotated[int | None, typer.Option(help="Citation expansion layers (paper: 2).")] = None,
    expand: Annotated[int | None, typer.Option(help="Papers expanded per deeper layer (paper: 20).")] = None,
    ensemble: Annotated[int, typer.Option(help="Crawler runs whose results are unioned.")] = 1,
    max_papers: Annotated[int | None, typer.Option(help="Stop after scoring this many papers.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List every paper touched, not only the selected.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result and the run tree here.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Only the local index and stored full texts.")] = False,
) -> None:
    """Run a deep search in the terminal and print the selected papers."""
    settings = _offline(_settings(), offline)
    try:
        params = SearchParams.from_settings(
            settings,
            search_queries=queries,
            search_papers=papers,
            expand_layers=layers,
            expand_papers=expand,
            end_date=_date_option(end_date),
            start_date=_date_option(start_date, "--start-date"),
            categories=split_categories(categories) if categories is not None else None,
            threshold=threshold,
            ensemble=ensemble,
            max_papers=max_papers,
            max_seconds=max_seconds,
        )
    except ValidationError as exc:
        err.print(f"[red]Invalid search parameters:[/red] {plain_errors(exc, SEARCH_OPTIONS)}")
        raise typer.Exit(2) from None
    except ValueError as exc:
        err.print(f"[red]Invalid search parameters:[/red] {exc}")
        raise typer.Exit(2) from None
    if json_out:
        _check_writable(json_out, "--json")
    chosen = [name.strip() for name in sources.split(",") if name.strip()] if sources is not None else None
    if chosen is not None and not chosen:
        err.print("[red]Invalid search parameters:[/red] --sources names no source")
        raise typer.Exit(2)
    _finish_search(anyio.run(_run_search, settings, None, (question, params, chosen)), show_all, json_out)


@app.command()
def resume(
    search_id: Annotated[str, typer.Argument(help="The id a stopped search printed (or paper_search returned).")],
    show_all: Annotated[bool, typer.Option("--all", help="List every paper touched, not only the selected.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result and the run tree here.")] = None,
) -> None:
    """Resume a stopped deep search (partial, failed, cancelled, interrupted): done work comes from the store."""
    try:
        check_text("the search id", search_id, ID_CHARS)
    except TooLong as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    settings = _settings()
    if json_out:
        _check_writable(json_out, "--json")
    _finish_search(anyio.run(_run_search, settings, search_id, None), show_all, json_out)


def _finish_search(run: tuple[RunResult, dict[str, int]], show_all: bool, json_out: Path | None) -> None:
    result, errors = run
    _print_result(result, show_all, errors)
    if json_out:
        json_out.write_text(scrub(result.model_dump_json(indent=2)), encoding="utf-8")
        out.print(f"result and tree written to {json_out}")
    raise typer.Exit(_exit_code(result))


EXIT_COMPLETE, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def _exit_code(result: RunResult) -> int:
    """0: complete; 3: finished with losses (or stopped by a budget after some); 1: failed."""
    if result.status == "failed":
        return EXIT_FAILED
    return EXIT_PARTIAL if result.status == "partial" or result.losses else EXIT_COMPLETE


# SearchParams fields and the `search` options that set them, for error messages.
SEARCH_OPTIONS = {
    "search_queries": "--queries",
    "search_papers": "--papers",
    "expand_layers": "--layers",
    "expand_papers": "--expand",
    "end_date": "--end-date",
    "start_date": "--start-date",
    "categories": "--categories",
    "threshold": "--threshold",
    "ensemble": "--ensemble",
    "max_papers": "--max-papers",
    "max_seconds": "--max-seconds",
}


def _check_writable(path: Path, option: str) -> None:
    """Refuse an output file that cannot be written before minutes of work, not after."""
    if path.is_dir():
        problem = "is a directory"
    elif not path.parent.is_dir():
        problem = f"cannot be written: there is no directory {path.parent}"
    elif not os.access(path if path.exists() else path.parent, os.W_OK):
        problem = "cannot be written: permission denied"
    else:
        return
    err.print(f"[red]{option} {path} {problem}[/red]", highlight=False)
    raise typer.Exit(2)


def _date_option(text: str | None, option: str = "--end-date") -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValueError(f"{option} must be a date as YYYY-MM-DD, got {text!r}") from None


def search_progress(console: Console) -> Progress:
    """One line at any width: spinner, bar and elapsed time keep their place; the counts and the
    latest event share the rest and are cut at its end."""
    return Progress(
        SpinnerColumn(),
        BarColumn(bar_width=10),
        TimeElapsedColumn(),
        TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
        console=console,
        transient=True,
        expand=True,
    )


def progress_line(event: Event) -> str:
    c = event.counts
    return f"{c.papers} papers · {c.scored} scored · {c.selected} selected · {c.queries} queries · {event.message}"


async def _run_search(
    settings: Settings, resume_id: str | None, new: tuple[str, SearchParams, list[str] | None] | None
) -> tuple[RunResult, dict[str, int]]:
    """A new search (`new`: question, parameters, sources) or a resumed one, run as a job (kept in the store,
    so that it can be read and resumed by id); and how often each error was met (each is printed once,
    when first met)."""
    from .app import open_app
    from .jobs import open_jobs
    from .store import StoreError

    errors: dict[str, int] = {}
    with search_progress(err) as progress:
        task = progress.add_task("starting", total=None)

        async def on_event(event: Event) -> None:
            done = event.counts.expanded
            total = done + event.counts.expansions_left or None
            progress.update(task, description=progress_line(event), completed=done, total=total)
            if event.kind == "failure":
                error = event.data.get("error", event.message)
                errors[error] = errors.get(error, 0) + 1
                if errors[error] == 1:
                    warning = escape(scrub(event.message))
                    progress.console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)

        def both(job_event: OnEvent) -> OnEvent:
            async def forward(event: Event) -> None:
                await job_event(event)
                await on_event(event)

            return forward

        refused: tuple[int, Exception] | None = None
        try:
            async with open_app(settings) as pasa, open_jobs(pasa.store) as jobs:
                # Errors are caught in here: leaving the jobs' task group would wrap them in an exception group.
                try:
                    if new is not None:
                        question, params, sources = new
                        search_id = await jobs.start(
                            lambda job_event: pasa.deep_search_run(
                                question, params, sources=sources, on_event=both(job_event)
                            )
                        )
                    else:
                        assert resume_id is not None
                        search_id = await jobs.resume(
                            resume_id,
                            lambda q, params, sources, job_event: pasa.deep_search_run(
                                q, params, sources=sources, on_event=both(job_event)
                            ),
                        )
                    progress.console.print(f"deep search {search_id} (resume it with `pasa-mcp resume {search_id}`)")
                    snap = await jobs.wait(search_id, math.inf)
                except StoreError as exc:
                    refused = (EXIT_FAILED, exc)
                except (UnknownSearch, ValueError) as exc:
                    refused = (EXIT_USAGE, exc)
        except StoreError as exc:
            refused = (EXIT_FAILED, exc)
    if refused is not None:
        err.print(f"[red]{escape(scrub(str(refused[1])))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(refused[0])
    assert snap.result is not None
    return snap.result, errors


def _print_result(result: RunResult, show_all: bool, errors: dict[str, int]) -> None:
    shown = result.papers if show_all else result.selected
    table = Table(title=f"{len(result.selected)} selected of {len(result.papers)} papers ({result.status})")
    table.add_column("score", justify="right")
    table.add_column("paper")
    table.add_column("id")
    table.add_column("found by", overflow="fold")
    for p in shown:
        table.add_row(f"{p.score:.2f}", p.title, p.arxiv_id or p.key, p.found_by)
    out.print(table)
    for failure in dict.fromkeys(result.failures):  # those that came without an event (budgets, the store)
        if not any(failure.endswith(error) for error in errors):
            err.print(f"[yellow]warning:[/yellow] {escape(scrub(failure))}", highlight=False)
    for error, times in errors.items():
        if times > 1:
            more = f"{times - 1} more failed the same way ({escape(error[:50])}…)"
            err.print(f"[yellow]warning:[/yellow] {more}", highlight=False)
    c = result.counts
    err.print(f"{c.queries} queries, {c.searches} searches, {c.expanded} expansions in {result.seconds:.1f} s")
    if result.status == "failed" or result.losses:  # the last line: why it failed, or what it lost
        colour = "red" if result.status == "failed" else "yellow"
        err.print(f"[{colour}]search {escape(scrub(result.outcome))}[/{colour}]", highlight=False, soft_wrap=True)


app.command()(doctor)
app.add_typer(models_app, name="models")


@app.command("eval")
def evaluate(
    dataset: Annotated[Path, typer.Argument(help="JSON lines: question, answer, source_meta.published_time, qid.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where each query's run (tree included) is saved.")] = Path(
        "eval-out"
    ),
    score_only: Annotated[bool, typer.Option("--score-only", help="Only recompute metrics from saved runs.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Queries run at once.")] = 4,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N queries.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Only the local index and stored full texts.")] = False,
) -> None:
    """Run the agent on every query of a dataset and report the paper's metrics."""
    from .eval import METRICS, average, load_dataset, score_trees

    settings = _offline(_settings(), offline)
    try:
        queries = load_dataset(dataset)[:limit]
    except (OSError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not score_only:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            err.print(f"[red]--out {out_dir} cannot be a directory of runs: {exc.strerror}[/red]", highlight=False)
            raise typer.Exit(2) from None
    if score_only:
        try:
            scores = score_trees(queries, out_dir)
        except FileNotFoundError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    else:
        scores = anyio.run(_run_eval, settings, queries, out_dir, concurrency)
    table = Table(title=f"{len(scores)} queries, {dataset.name}")
    table.add_column("qid")
    for name in METRICS:
        table.add_column(name, justify="right")
    for qid, row in scores.items():
        table.add_row(qid, *(f"{row[name]:.4f}" for name in METRICS))
    mean = average(list(scores.values()))
    table.add_row("mean", *(f"{mean[name]:.4f}" for name in METRICS), style="bold")
    out.print(table)
    summary = {"dataset": str(dataset), "queries": len(scores), "mean": mean, "per_query": scores}
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    out.print(f"metrics written to {out_dir / 'metrics.json'}")


async def _run_eval(settings: Settings, queries: list, out_dir: Path, concurrency: int) -> dict:
    from .app import open_app
    from .eval import EvalQuery, run_queries
    from .store import StoreError

    with Progress(
        TextColumn("eval"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err
    ) as progress:
        task = progress.add_task("eval", total=len(queries))
        try:
            async with open_app(settings) as pasa:

                async def search(query: EvalQuery) -> dict:
                    params = SearchParams.from_settings(settings, end_date=query.end_date)
                    result = await pasa.deep_search(query.question, params)
                    if result.status == "failed" or result.losses:
                        progress.console.print(f"[yellow]{query.qid}: {escape(result.outcome)}[/yellow]")
                    return result.model_dump(mode="json")

                return await run_queries(
                    queries, search, out_dir, concurrency=concurrency, on_done=lambda q, m: progress.advance(task)
                )
        except StoreError as exc:
            err.print(f"[red]{escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILED) from None


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="HTTP address; beyond loopback PASA_HTTP_TOKEN is required.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port.")] = 8765,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="Another Host header name clients use (DNS-rebinding protection).")
    ] = None,
) -> None:
    """Run the MCP server: stdio for desktop clients (the default), or streamable HTTP with --http."""
    from .app import check_files
    from .server import serve_http, serve_stdio
    from .store import StoreError

    settings = _settings()
    try:
        check_files(settings)
    except StoreError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    if not http:
        serve_stdio(settings)
        return
    try:
        serve_http(settings, host=host, port=port, allowed_hosts=allowed_host or [])
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
