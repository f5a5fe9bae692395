"""`python -m tools.world`: start a simulated scholarly web and write pasa-mcp settings pointing at it."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

import anyio

from . import exports
from .config import SERVICES, WorldConfig
from .corpus import CorpusSpec
from .gate import FAULT_KINDS, Faults
from .world import World


def _faults(specs: list[str]) -> dict[str, Faults]:
    """`SERVICE:KIND=RATE` (SERVICE may be `all`) -> per-service fault rates."""
    rates: dict[str, dict[str, float]] = {}
    for spec in specs:
        service, _, rest = spec.partition(":")
        kind, _, rate = rest.partition("=")
        if service not in (*SERVICES, "all") or kind not in FAULT_KINDS:
            raise SystemExit(
                f"--fault {spec!r}: want SERVICE:KIND=RATE, SERVICE in {SERVICES} or all, KIND in {FAULT_KINDS}"
            )
        try:
            value = float(rate)
        except ValueError:
            raise SystemExit(f"--fault {spec!r}: RATE must be a number") from None
        for name in SERVICES if service == "all" else (service,):
            rates.setdefault(name, {})[kind] = value
    return {name: Faults(**kinds) for name, kinds in rates.items()}


def parse(argv: list[str]) -> tuple[argparse.Namespace, WorldConfig]:
    parser = argparse.ArgumentParser(
        prog="python -m tools.world",
        description="Start a SIMULATED scholarly web (serper, arXiv API and HTML, ar5iv, Semantic Scholar, "
        "OpenAlex, and the two PaSa models on vLLM's API) on loopback, and run until interrupted.",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--papers", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=100, help="planted questions to generate")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="first port (services take consecutive ones, OAI-PMH the next); 0: any"
    )
    parser.add_argument("--settings-out", type=Path, help="write pasa-mcp settings here (load with PASA_CONFIG)")
    parser.add_argument("--queries-out", type=Path, help="write the planted questions here (PaSa JSON lines)")
    parser.add_argument("--log", type=Path, help="write the request log here (JSON lines)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply latencies and rate-limit intervals")
    parser.add_argument("--no-latency", action="store_true", help="answer at once")
    parser.add_argument("--selector-noise", type=float, default=0.0, help="selector noise (logit std)")
    parser.add_argument("--page-bytes", type=int, default=0, help="HTML pages of about this size (0: compact)")
    parser.add_argument("--fault", action="append", default=[], metavar="SERVICE:KIND=RATE")
    parser.add_argument("--snapshot-out", type=Path, help="write the corpus as an arXiv metadata snapshot (JSON lines)")
    parser.add_argument(
        "--pasa-db-out",
        type=Path,
        nargs=2,
        metavar=("ZIP", "ID2PAPER"),
        help="write the corpus as the PaSa paper database",
    )
    args = parser.parse_args(argv)
    config = WorldConfig(
        seed=args.seed,
        papers=args.papers,
        corpus=CorpusSpec(queries=args.queries),
        time_scale=args.time_scale,
        latency=not args.no_latency,
        faults=_faults(args.fault),
        selector_noise=args.selector_noise,
        page_bytes=args.page_bytes,
        host=args.host,
        port=args.port,
        log_path=args.log,
    )
    return args, config


async def run(args: argparse.Namespace, config: WorldConfig) -> None:
    async with World.start(config) as world:
        if args.settings_out:
            await anyio.Path(args.settings_out).write_text(world.settings_toml(), encoding="utf-8")
        if args.queries_out:
            text = "".join(json.dumps(row) + "\n" for row in world.queries)
            await anyio.Path(args.queries_out).write_text(text, encoding="utf-8")
        if args.snapshot_out:
            count = await anyio.to_thread.run_sync(exports.write_snapshot, world.corpus, args.snapshot_out)
            print(f"arXiv metadata snapshot (simulated): {args.snapshot_out}, {count} papers")
        if args.pasa_db_out:
            count = await anyio.to_thread.run_sync(exports.write_pasa_db, world.corpus, *args.pasa_db_out)
            print(f"PaSa paper database (simulated): {' '.join(map(str, args.pasa_db_out))}, {count} papers")
        print(
            f"pasa-mcp tools/world: a SIMULATION (seed {config.seed}, {config.papers} papers, "
            f"{len(world.queries)} questions, time scale {config.time_scale})"
        )
        for name, url in world.urls.items():
            print(f"  {name:<11} {url}")
        print(f"  {'(OAI-PMH)':<11} {world.oai_url}/oai  (served by arxiv_api, under its limit)")
        if args.settings_out:
            print(f"settings: {args.settings_out} (PASA_CONFIG={args.settings_out} pasa-mcp ...)")
        if args.queries_out:
            print(f"questions: {args.queries_out}")
        print("Ctrl-C stops it.", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:  # stop cleanly (the log is flushed) on the first one
                break


def main(argv: list[str] | None = None) -> None:
    args, config = parse(sys.argv[1:] if argv is None else argv)
    anyio.run(run, args, config)


if __name__ == "__main__":
    main()
