"""`python -m tools.bench.cpu`: where pasa-mcp's CPU goes in one default deep search (issue 9, item 4).

The world runs in a process of its own (`python -m tools.world`), so all CPU measured here is
pasa-mcp's (the other benchmarks run the world in their process and subtract its threads). Each
plain run (cold store) gives the process's CPU, its main thread's (the event loop and everything on
it) and its worker threads' by the function they ran (pacing state, store calls, page parsing). One
more run under cProfile with a thread-CPU clock splits the main thread by library: the HTTP client
(httpx, httpcore, h11), the event loop (asyncio, anyio, sniffio), thread hand-offs, and the rest
(pasa-mcp and the libraries it calls for parsing, validation and storage). cProfile charges its own
cost to every call, so it overstates code made of many small calls, the framework's above all:
compare its shares between versions measured this same way, not with another profiler's.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from pasa_mcp.agent import SearchParams
from pasa_mcp.app import open_app
from pasa_mcp.config import Settings
from tools.world import end_date

from .runs import SIMULATION

LIBRARIES = {  # the main thread's groups, by the path of the code a profiled call ran
    "HTTP client": ("/httpx/", "/httpcore/", "/h11/", "/h2/", "/ssl.py", "/socket.py", "/idna/"),
    "event loop": ("/asyncio/", "/anyio/", "/selectors.py", "/sniffio/", "contextvars"),
    "thread hand-offs": ("/concurrent/futures/", "/threading.py", "/queue.py"),
}
WORKERS = {  # worker-thread functions, by the module they come from
    "pasa_mcp.pacer": "pacing state (pacer.py)",
    "filelock": "pacing state (pacer.py)",
    "pasa_mcp.store": "store calls (SQLite)",
    "pasa_mcp.latexml": "page parsing",
}


class Workers:
    """CPU of each function run in a worker thread (anyio.to_thread.run_sync wrapped while it counts)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._original = anyio.to_thread.run_sync

    def __enter__(self) -> Workers:
        original = self._original

        async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            module = getattr(func, "__module__", None) or ""
            name = next((v for k, v in WORKERS.items() if module.startswith(k)), getattr(func, "__qualname__", "?"))

            def timed(*a: Any) -> Any:
                started = time.thread_time()
                try:
                    return func(*a)
                finally:
                    self.seconds[name] += time.thread_time() - started
                    self.calls[name] += 1

            return await original(timed, *args, **kwargs)

        anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        anyio.to_thread.run_sync = self._original  # type: ignore[assignment]


def _library(path: str) -> str:
    return next((name for name, parts in LIBRARIES.items() if any(p in path for p in parts)), "rest")


async def search(settings: Settings, row: dict[str, Any], profile: bool) -> dict[str, Any]:
    """One cold default deep search: its CPU, and with `profile` the main thread's by library."""
    params = SearchParams.from_settings(settings, end_date=date.fromisoformat(end_date(row)))
    profiler = cProfile.Profile(time.thread_time)
    async with open_app(settings) as pasa:
        with Workers() as workers:
            cpu, main = time.process_time(), time.thread_time()
            if profile:
                profiler.enable()
            result = await pasa.deep_search(row["question"], params)
            profiler.disable()
            cpu, main = time.process_time() - cpu, time.thread_time() - main
        requests = sum(pasa.net.request_counts().values())
    out: dict[str, Any] = {
        "status": result.status,
        "requests": requests,
        "cpu": cpu,
        "main": main,
        "workers": {name: {"seconds": s, "calls": workers.calls[name]} for name, s in workers.seconds.items()},
    }
    if profile:
        by: dict[str, float] = defaultdict(float)
        for (path, _, _), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
            by[_library(path)] += own
        out["profiled"] = dict(by)
    return out


def start_world(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """The world in a process of its own; returns it, its settings file and its questions file."""
    settings, questions, log = workdir / "world.toml", workdir / "questions.jsonl", workdir / "world.out"
    command = [sys.executable, "-m", "tools.world", "--seed", str(args.seed), "--papers", str(args.papers)]
    command += ["--time-scale", str(args.time_scale), "--settings-out", str(settings), "--queries-out", str(questions)]
    if args.page_bytes:  # only when asked: the checkout issue 9 was filed against has compact pages only
        command += ["--page-bytes", str(args.page_bytes)]
    with log.open("wb") as output:
        world = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while b"Ctrl-C stops it" not in log.read_bytes():
        if world.poll() is not None or time.monotonic() > deadline:
            world.kill()
            raise SystemExit(f"the world did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return world, settings, questions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--papers", type=int, default=20000)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--question", type=int, default=0, help="planted question (0: the bench's first)")
    parser.add_argument("--page-bytes", type=int, default=0, help="world HTML page size (0: compact; real: 0.3-2.5 MB)")
    parser.add_argument("--runs", type=int, default=3, help="plain runs (medians are reported)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/cpu.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        world, settings_file, questions = start_world(args, workdir)
        try:
            os.environ.update(
                PASA_CONFIG=str(settings_file),
                PASA_STATE_DIR=str(workdir / "state"),
                PASA_INDEX_PATH=str(workdir / "no-index.sqlite3"),  # the user's local index stays out of it
            )
            row = json.loads(questions.read_text(encoding="utf-8").splitlines()[args.question])
            runs = []
            for n in range(args.runs + 1):
                settings = Settings(store_path=workdir / f"store-{n}.sqlite3")
                runs.append(anyio.run(search, settings, row, n == args.runs))
        finally:
            world.terminate()
            world.wait()
    report(args, row, runs[:-1], runs[-1])


def report(
    args: argparse.Namespace, row: dict[str, Any], plain: list[dict[str, Any]], profiled: dict[str, Any]
) -> None:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"

    print(f"pasa-mcp CPU in one default deep search, {SIMULATION}")
    pages = f"pages of about {args.page_bytes:,} bytes" if args.page_bytes else "compact pages"
    print(f"world: seed {args.seed}, {args.papers} papers, time scale {args.time_scale}, {pages}, in its own process")
    print(f"question {args.question}: {row['question'][:90]}")
    print(f"statuses {[r['status'] for r in plain]}, requests {[r['requests'] for r in plain]}")
    print(f"  process CPU          {median([r['cpu'] for r in plain])}")
    print(f"  main thread          {median([r['main'] for r in plain])}")
    names = sorted({name for r in plain for name in r["workers"]})
    for name in names:
        seconds = [r["workers"].get(name, {"seconds": 0.0})["seconds"] for r in plain]
        calls = statistics.median(r["workers"].get(name, {"calls": 0})["calls"] for r in plain)
        print(f"  worker: {name:28s} {median(seconds)}, {calls:.0f} calls")
    total = sum(profiled["profiled"].values())
    print(f"main thread under cProfile (thread CPU, {total:.2f} s profiled; its own cost inflates small calls):")
    for name, seconds in sorted(profiled["profiled"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:18s} {seconds:6.3f} s  {100 * seconds / total:5.1f}%")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"simulation": SIMULATION, "args": {k: str(v) for k, v in vars(args).items()}, "question": row["question"]}
    args.out.write_text(json.dumps(result | {"plain": plain, "profiled": profiled}, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
