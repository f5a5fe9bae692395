"""`python -m tools.bench`: run the benchmarks against the simulated web, print tables, write JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from . import report
from .runs import SIMULATION, BenchConfig, parallel, recall, single

BENCHMARKS = ("wall", "parallel", "warm", "usage", "recall")


def parse(argv: list[str]) -> tuple[list[str], Path, BenchConfig]:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=f"Benchmarks of pasa-mcp {SIMULATION}. Prints tables and writes one JSON file per benchmark.",
    )
    parser.add_argument("benchmarks", nargs="*", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="directory for the JSON results")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--papers", type=int, default=defaults.papers)
    parser.add_argument("--time-scale", type=float, default=defaults.time_scale, help="world latencies and limits")
    parser.add_argument("--question", type=int, default=defaults.question, help="planted question for wall/warm/usage")
    parser.add_argument("--questions", type=int, default=defaults.questions, help="cold searches against the limit")
    parser.add_argument("--page-bytes", type=int, default=defaults.page_bytes, help="world page size (0: compact)")
    parser.add_argument("--parallel", type=int, default=defaults.parallel, help="searches at once")
    parser.add_argument("--recall-questions", type=int, default=defaults.recall_questions)
    parser.add_argument("--recall-time-scale", type=float, default=defaults.recall_time_scale)
    args = parser.parse_args(argv)
    if unknown := [name for name in args.benchmarks if name not in BENCHMARKS]:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    config = BenchConfig(
        seed=args.seed,
        papers=args.papers,
        time_scale=args.time_scale,
        question=args.question,
        questions=args.questions,
        page_bytes=args.page_bytes,
        parallel=args.parallel,
        recall_questions=args.recall_questions,
        recall_time_scale=args.recall_time_scale,
        recall_parallel=defaults.recall_parallel,
    )
    return list(dict.fromkeys(args.benchmarks or BENCHMARKS)), args.out, config


async def run(names: list[str], out: Path, config: BenchConfig, console: Console) -> dict[str, dict[str, Any]]:
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}

    async def done(name: str, result: dict[str, Any]) -> None:
        results[name] = {"benchmark": name, **result}
        report.PRINTERS[name](console, result)
        path = anyio.Path(out / f"{name}.json")
        await path.write_text(json.dumps(results[name], indent=2) + "\n", encoding="utf-8")
        console.print(f"[dim]wrote {path}[/dim]\n")

    console.print(f"pasa-mcp benchmarks, {SIMULATION}\n")
    if shared := [n for n in ("wall", "warm", "usage") if n in names]:
        for name, result in (await single(config, set(shared))).items():
            await done(name, result)
    if "parallel" in names:
        await done("parallel", await parallel(config))
    if "recall" in names:
        await done("recall", await recall(config))
    report.targets(console, results)
    return results


def main(argv: list[str] | None = None) -> None:
    names, out, config = parse(sys.argv[1:] if argv is None else argv)
    # Tables are wide: a pipe or file gets 160 columns instead of rich's 80 (COLUMNS still wins).
    console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)
    # Each world listens on fresh ports: keep their pacing files out of the user's own state dir.
    with tempfile.TemporaryDirectory(prefix="pasa-bench-state-") as state:
        os.environ.setdefault("PASA_STATE_DIR", state)
        anyio.run(run, names, out, config, console)


if __name__ == "__main__":
    main()
