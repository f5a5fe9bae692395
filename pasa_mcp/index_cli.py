"""`pasa-mcp index ...`: build, update and query the local paper index (pasa_mcp/index)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .config import Settings
from .limits import QUERY_CHARS, check_text

app = typer.Typer(help="The local paper index: arXiv's metadata and the PaSa paper database on this disk.")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line in logs and pipes


def _settings() -> Settings:
    from .cli import _settings as load

    return load()


def _open(settings: Settings, *, create: bool = True):  # noqa: ANN202 (LocalIndex, imported lazily)
    from .index.db import LocalIndex
    from .store import index_fault

    try:
        return LocalIndex(settings.index_path, create=create)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
    except (sqlite3.Error, OSError) as exc:
        err.print(f"[red]{escape(str(index_fault(settings.index_path, exc)))}[/red]", highlight=False)
    raise typer.Exit(1)


def _date(text: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        err.print(f"[red]{option} must be a date as YYYY-MM-DD, got {text!r}[/red]")
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}% {task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@app.command("import-arxiv")
def import_arxiv(
    file: Annotated[Path, typer.Argument(help="arXiv's metadata snapshot: JSON lines, Kaggle's zip, .gz, .bz2, .xz.")],
    categories: Annotated[str | None, typer.Option(help="Only these, e.g. cs,stat.ML (cs means cs.*).")] = None,
) -> None:
    """Import arXiv's metadata snapshot: streaming, resumable, idempotent."""
    from .index.snapshot import import_snapshot

    if not file.is_file():
        err.print(f"[red]no such file: {file}[/red]")
        raise typer.Exit(2)
    index = _open(_settings())
    started = time.perf_counter()
    try:
        with _progress() as progress:
            task = progress.add_task(f"importing {file.name}", total=file.stat().st_size, note="")
            counts = import_snapshot(
                index,
                file,
                categories=categories,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except (ValueError, RuntimeError) as exc:  # RuntimeError: another process is writing the index
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        index.close()
    seconds = time.perf_counter() - started
    errors = counts.pop("errors")
    out.print(f"{file}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" in {seconds:.1f} s")
    for line in errors:
        err.print(f"[yellow]skipped:[/yellow] {line}")


@app.command("import-pasa")
def import_pasa(
    paper_db: Annotated[Path, typer.Argument(help="PaSa's paper database (zip of title-key JSON members).")],
    id2paper: Annotated[Path, typer.Argument(help="id2paper.json: arXiv id -> title.")],
) -> None:
    """Import the PaSa paper database: its papers expand through their section maps with no request."""
    from .index.pasa_db import import_pasa as run

    for path in (paper_db, id2paper):
        if not path.is_file():
            err.print(f"[red]no such file: {path}[/red]")
            raise typer.Exit(2)
    index = _open(_settings())
    try:
        with _progress() as progress:
            task = progress.add_task(f"importing {paper_db.name}", total=None, note="")
            counts = run(
                index, paper_db, id2paper, on_progress=lambda n, total: progress.update(task, completed=n, total=total)
            )
    except (ValueError, RuntimeError) as exc:  # RuntimeError: another process is writing the index
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        index.close()
    out.print(f"{paper_db}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@app.command()
def harvest(
    set_spec: Annotated[str | None, typer.Option("--set", help="An OAI set such as cs or physics:hep-th.")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="YYYY-MM-DD (default: the last harvest's newest datestamp).")
    ] = None,
) -> None:
    """Harvest arXiv's OAI-PMH interface (one request every 3 s); resumable and incremental."""
    from .index.harvest import HarvestError
    from .index.harvest import harvest as run
    from .net import Net, SourceRejected, SourceUnavailable

    settings = _settings()
    start = _date(since, "--from")
    index = _open(settings)

    async def go() -> dict:
        net = Net(settings)
        try:
            with _progress() as progress:
                task = progress.add_task("harvesting", total=None, note="")
                seen = [0]

                def on_page(records: int, deleted: int, total: int | None) -> None:
                    seen[0] += records + deleted
                    progress.update(task, completed=seen[0], total=total, note=f"{seen[0]} records")

                return await run(index, net, settings.arxiv_oai_url, set_spec=set_spec, since=start, on_page=on_page)
        finally:
            await net.aclose()

    try:
        counts = anyio.run(go)
    except (HarvestError, SourceUnavailable, SourceRejected, RuntimeError) as exc:
        err.print(f"[red]harvest stopped: {exc}[/red] (what was harvested is kept; run it again to resume)")
        raise typer.Exit(1) from None
    finally:
        index.close()
    out.print(", ".join(f"{v} {k}" for k, v in counts.items()))


@app.command()
def search(
    queries: Annotated[list[str], typer.Argument(help="One or more queries.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Hits per query.")] = 10,
    before: Annotated[str | None, typer.Option(help="Only papers published before YYYY-MM-DD.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per query: its hits and ms.")] = False,
) -> None:
    """Search the local index (several queries in one process)."""
    end = _date(before, "--before")
    index = _open(_settings(), create=False)
    try:
        for query in queries:
            started = time.perf_counter()
            try:
                check_text("a query", query, QUERY_CHARS)
                hits = index.search(query, limit=limit, before=end)
            except ValueError as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            ms = (time.perf_counter() - started) * 1000
            if json_out:
                rows = [p.model_dump(mode="json", exclude={"sources", "s2_id", "openalex_id"}) for p in hits]
                line = json.dumps({"query": query, "ms": round(ms, 2), "hits": rows})
                out.print(line, highlight=False, soft_wrap=True)
                continue
            table = Table(title=f"{query} ({len(hits)} hits, {ms:.1f} ms)")
            table.add_column("id")
            table.add_column("published")
            table.add_column("title")
            for p in hits:
                table.add_row(p.arxiv_id or p.key, str(p.published or ""), p.title)
            out.print(table)
    finally:
        index.close()


@app.command()
def stats() -> None:
    """What the local index holds."""
    index = _open(_settings(), create=False)
    try:
        for name, value in index.stats().items():
            out.print(f"{name} = {json.dumps(value)}", highlight=False)
    finally:
        index.close()
