"""`python -m tools.bench.processes`: several `pasa-mcp search` processes at once against one world.

Each process is a real `pasa-mcp search` (its own HTTP client and store), all sharing one pacing
state directory, as several MCP servers and CLI searches of one user do. Each runs a different
planted question. Per run (N processes) it prints each process's status and wall time, and from the
world's request log the requests per service, the requests that came too early for a limit
(`exceeded`) and the 429s. Politeness across processes means: all finish, 0 exceeded, 0 429s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from tools.world import World, end_date

from .runs import SIMULATION, log_counts


@dataclass(frozen=True)
class Run:
    processes: int
    searches: list[dict[str, Any]]  # per process: question, status, outcome, wall, exit code
    wall: float  # seconds until the last process exited
    requests: dict[str, int]  # per service, every process together
    exceeded: int
    status_429: int
    exceeded_at: dict[str, int]  # per service with any

    @property
    def polite(self) -> bool:
        return self.exceeded == 0 and self.status_429 == 0

    @property
    def finished(self) -> bool:
        return all(s["status"] in ("finished", "partial") for s in self.searches)


def _env(settings: Path, store: Path, state: Path, workdir: Path) -> dict[str, str]:
    """The environment of one process: the world's settings, its own store, the shared state directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASA_") and not k.endswith("_API_KEY")}
    env.update(
        PASA_CONFIG=str(settings),
        PASA_STORE_PATH=str(store),
        PASA_INDEX_PATH=str(workdir / "no-index.sqlite3"),
        PASA_STATE_DIR=str(state),
        COLUMNS="100",
    )
    return env


async def run_processes(world: World, processes: int, workdir: Path, state: Path) -> Run:
    """`processes` deep searches in as many `pasa-mcp search` processes, at once, against `world`,
    pacing through the state directory `state` (the same for runs against one world: a run's first
    requests must keep their distance from the previous run's last)."""
    await anyio.Path(workdir).mkdir(parents=True, exist_ok=True)
    settings = workdir / "world.toml"
    await anyio.Path(settings).write_text(world.settings_toml(), encoding="utf-8")
    first = len(world.log.records)
    searches: list[dict[str, Any]] = []
    started = time.monotonic()

    async def one(i: int) -> None:
        row = world.queries[i % len(world.queries)]
        out = anyio.Path(workdir / f"search-{i}.json")
        command = [sys.executable, "-m", "pasa_mcp", "search", row["question"], "--end-date", end_date(row)]
        command += ["--json", str(out)]
        log = anyio.Path(workdir / f"search-{i}.log")
        async with await log.open("wb") as output:
            process = await anyio.run_process(
                command,
                env=_env(settings, workdir / f"store-{i}.sqlite3", state, workdir),
                stdout=output.wrapped,
                stderr=output.wrapped,
                check=False,
            )
        wall = time.monotonic() - started
        entry: dict[str, Any] = {"question": row["qid"], "exit": process.returncode, "wall": round(wall, 2)}
        if await out.exists():
            result = json.loads(await out.read_text(encoding="utf-8"))
            entry.update(status=result["status"], outcome=_outcome(result), selected=_selected(result))
        else:
            tail = (await log.read_text(encoding="utf-8", errors="replace")).strip().splitlines()[-1:]
            entry.update(status="no result", outcome=tail[0] if tail else "", selected=0)
        searches.append(entry)

    async with anyio.create_task_group() as group:
        for i in range(processes):
            group.start_soon(one, i)
    wall = time.monotonic() - started
    await anyio.sleep(0.5)  # the world logs a request when its answer has gone
    counts = log_counts(world.log.records[first:])
    return Run(
        processes=processes,
        searches=sorted(searches, key=lambda s: s["question"]),
        wall=round(wall, 2),
        requests={name: c["requests"] for name, c in sorted(counts.items())},
        exceeded=sum(c["exceeded"] for c in counts.values()),
        status_429=sum(c.get("status_429", 0) for c in counts.values()),
        exceeded_at={name: c["exceeded"] for name, c in sorted(counts.items()) if c["exceeded"]},
    )


def _outcome(result: dict[str, Any]) -> str:
    if result["status"] == "failed":
        return f"failed: {result.get('error')}"
    return "; ".join(result.get("losses") or []) or result["status"]


def _selected(result: dict[str, Any]) -> int:
    return sum(1 for p in result.get("papers", []) if p.get("selected"))


def show(run: Run, scale: float) -> str:
    lines = [f"{run.processes} processes at once: all done in {run.wall:.1f} s (world time scale {scale})"]
    for s in run.searches:
        lines.append(
            f"  {s['question']:<12} {s['status']:<9} exit {s['exit']}  {s['wall']:7.1f} s  "
            f"{s['selected']:3d} selected  {s['outcome']}"
        )
    lines.append("  requests: " + ", ".join(f"{name} {n}" for name, n in run.requests.items()))
    at = f" ({', '.join(f'{name} {n}' for name, n in run.exceeded_at.items())})" if run.exceeded_at else ""
    lines.append(f"  beyond a limit (exceeded): {run.exceeded}{at}   HTTP 429: {run.status_429}")
    return "\n".join(lines)


async def main_async(counts: list[int], seed: int, papers: int, scale: float, out: Path | None) -> list[Run]:
    runs: list[Run] = []
    async with World.start(seed=seed, papers=papers, time_scale=scale) as world:
        print(f"pasa-mcp processes sharing one pacing state, {SIMULATION}\n", flush=True)
        with tempfile.TemporaryDirectory(prefix="pasa-processes-") as tmp:
            for n in counts:
                run = await run_processes(world, n, Path(tmp) / f"run-{n}", Path(tmp) / "state")
                runs.append(run)
                print(show(run, scale) + "\n", flush=True)
    if out is not None:
        rows = [{**run.__dict__, "polite": run.polite, "finished": run.finished} for run in runs]
        text = json.dumps({"simulation": SIMULATION, "time_scale": scale, "runs": rows}, indent=2) + "\n"
        await anyio.Path(out).write_text(text, encoding="utf-8")
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.processes", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[2, 4], help="processes at once, one run each")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--papers", type=int, default=20000)
    parser.add_argument("--time-scale", type=float, default=1.0, help="world latencies and limits")
    parser.add_argument("--json", type=Path, help="write the runs here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    runs = anyio.run(main_async, args.processes, args.seed, args.papers, args.time_scale, args.json)
    sys.exit(0 if all(run.polite and run.finished for run in runs) else 1)


if __name__ == "__main__":
    main()
