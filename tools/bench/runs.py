"""The benchmarks: each runs pasa-mcp against a simulated world and returns JSON-ready results.

Every run opens its own `Pasa` (a process's worth of state: HTTP client, pacers, store), as a new
`pasa-mcp` process would, except the parallel benchmark, whose searches share one. Between runs the
bench waits out the longest rate-limit interval: a new process must not inherit its predecessor's
pace, and the world would rightly count that as a limit exceeded.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import httpx

from pasa_mcp.agent import RunResult, SearchParams
from pasa_mcp.app import open_app
from pasa_mcp.config import Settings
from pasa_mcp.eval import metrics
from tools.world import RequestLog, World, end_date

from .bound import END, Pace, Step, bound, run_graph, step_name
from .trace import Call, Request, Trace, Tracer, union_seconds

SIMULATION = "measured against the SIMULATED scholarly web (tools/world), not the real services"


@dataclass(frozen=True)
class BenchConfig:
    seed: int = 7
    papers: int = 20000
    time_scale: float = 0.1  # multiplies the world's latencies and rate-limit intervals
    question: int = 0  # index into the world's planted questions for the single-search benchmarks
    questions: int = 5  # cold searches of questions question, question+1, ... against the physical limit
    page_bytes: int = 0  # the world's HTML page size (0: compact pages; real ones are 0.3 to 2.5 MB)
    parallel: int = 4  # deep searches at once in the parallel benchmark
    recall_questions: int = 8
    recall_time_scale: float = 0.02  # recall does not depend on time: a faster world
    recall_parallel: int = 4


@dataclass
class Measured:
    """One deep search as the benchmarks saw it."""

    label: str
    result: RunResult
    wall: float  # scaled seconds
    cpu: float  # CPU seconds of pasa-mcp: the process's, less the world's service threads
    usage: dict[str, Any]
    log: dict[str, dict[str, int]]  # the world's request counts for this run, per service
    throttled: dict[str, int]  # 429 answers the client received, per host
    trace: Trace
    started: float  # time.monotonic() when the run began


def describe(config: BenchConfig, world: World) -> dict[str, Any]:
    """What every JSON output carries: what was measured, against what, on what machine."""
    return {
        "simulation": SIMULATION,
        "world": {
            "seed": world.config.seed,
            "papers": world.config.papers,
            "time_scale": world.config.time_scale,
            "selector_noise": world.config.selector_noise,
            "page_bytes": world.config.page_bytes,
            "limits": {name: asdict(limit) for name, limit in world.config.limits.items()},
            "latency_medians": {name: lat.base for name, lat in world.config.latencies.items()},
        },
        "bench": asdict(config),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }


def service_of(world: World) -> Callable[[httpx.URL], str]:
    netlocs = {httpx.URL(url).netloc: name for name, url in world.urls.items()}
    return lambda url: netlocs.get(url.netloc, url.host)


def paces(world: World) -> dict[str, Pace]:
    scale = world.config.time_scale
    return {name: Pace(limit.interval * scale, limit.burst) for name, limit in world.config.limits.items()}


def log_counts(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    log = RequestLog()
    log.records = records
    return log.counts()


async def cool_down(world: World) -> None:
    """Wait out the longest rate-limit interval, so the next process starts with a clean slate."""
    await anyio.sleep(max((p.interval for p in paces(world).values()), default=0.0) * 1.5)


def _params(settings: Settings, row: dict[str, Any], concurrency: int | None) -> SearchParams:
    return SearchParams.from_settings(settings, end_date=date.fromisoformat(end_date(row)), concurrency=concurrency)


async def search(
    world: World, store: Path, row: dict[str, Any], label: str, *, concurrency: int | None = None
) -> Measured:
    """One traced deep search in its own `Pasa` (a fresh process's state over `store`)."""
    settings = Settings(**world.settings(), store_path=store)
    first = len(world.log.records)
    async with open_app(settings) as pasa:
        tracer = Tracer(pasa.net.client, service_of(world))
        run = tracer.instrument(pasa.deep_search_run(row["question"], _params(settings, row, concurrency)))
        cpu, started = time.process_time() - world.cpu_seconds(), time.monotonic()
        result = await run.run()
        wall, cpu = time.monotonic() - started, time.process_time() - world.cpu_seconds() - cpu
        usage = pasa.usage()
        throttled = {host.name: host.throttled for host in pasa.net.hosts.values()}
    await cool_down(world)
    return Measured(
        label, result, wall, cpu, usage, log_counts(world.log.records[first:]), throttled, tracer.finish(), started
    )


def _requests(log: dict[str, dict[str, int]]) -> dict[str, int]:
    return {name: counts["requests"] for name, counts in sorted(log.items())}


def _limits(log: dict[str, dict[str, int]], throttled: dict[str, int]) -> dict[str, Any]:
    return {
        "exceeded": sum(c["exceeded"] for c in log.values()),
        "status_429": sum(c.get("status_429", 0) for c in log.values()),
        "client_429": sum(throttled.values()),
        "exceeded_at": {name: c["exceeded"] for name, c in sorted(log.items()) if c["exceeded"]},
    }


def _polite(*limits: dict[str, Any]) -> bool:
    """No request came too early, no 429 anywhere."""
    return not any(counts[key] for counts in limits for key in ("exceeded", "status_429", "client_429"))


def _segments(trace: Trace, steps: list[Step], started: float) -> dict[str, float]:
    """When each barrier was actually passed: the end of the last call before it (seconds from the start)."""
    by_name = {step_name(c): c for c in trace.calls}
    passed: dict[str, float] = {}
    last = 0.0
    for step in steps:
        if step.name in by_name:
            last = max(last, by_name[step.name].end - started)
        elif step.barrier:
            passed[step.name] = last
    return passed


def purpose(request: Request, calls: list[Call]) -> str:
    """What a request was for: the kinds of call that waited for it, and for arXiv lookups which kind."""
    what = "+".join(sorted({c.kind for c in calls})) or "nothing traced"
    if request.keys:
        what += " (id lookup)" if any(k.startswith("id:") for k in request.keys) else " (title search)"
    return what


def analyse(measured: Measured, world: World, row: dict[str, Any]) -> dict[str, Any]:
    """Wall time against the physical limit and the critical-path bound of the same run, and where the time went."""
    trace, scale = measured.trace, world.config.time_scale
    limit, blind = world.physical_limit(row), world.physical_limit(row, blind=True)
    steps, uses = run_graph(trace, measured.result.tree)
    limits = paces(world)
    found = bound(steps, uses, limits)
    purposes: dict[str, Counter[str]] = defaultdict(Counter)
    for request, calls in trace.waiting().items():
        purposes[request.service][purpose(request, calls)] += 1
    hosts = {}
    for service, pace in limits.items():
        reqs = sorted((r for r in trace.requests if r.service == service), key=lambda r: r.start)
        if not reqs:
            continue
        span = reqs[-1].end - reqs[0].start
        hosts[service] = {
            "requests": len(reqs),
            "interval": pace.interval,
            "floor": max(0, len(reqs) - pace.burst) * pace.interval,
            "bound_alone": found.by_service[service],
            "busy": union_seconds((r.start, r.end) for r in reqs),
            "first_start": reqs[0].start - measured.started,
            "last_end": reqs[-1].end - measured.started,
            "paced_share": max(0, len(reqs) - pace.burst) * pace.interval / span if span > 0 else 0.0,
            "for": dict(purposes[service].most_common()),
        }
    passed = _segments(trace, steps, measured.started)
    passed[END] = measured.wall
    return {
        "label": measured.label,
        "wall": measured.wall,
        "wall_real": measured.wall / scale,
        "cpu": measured.cpu,
        "limit": limit.seconds,
        "limit_real": limit.seconds / scale,
        "limit_ratio": measured.wall / limit.seconds,
        "limit_work": limit.as_dict(),
        "blind_limit": blind.seconds,
        "blind_real": blind.seconds / scale,
        "blind_ratio": measured.wall / blind.seconds,
        "blind_misses": sum(layer.misses for layer in blind.layers),
        "blind_over_limit": blind.seconds / limit.seconds,  # the least wall / limit a client without an oracle reaches
        "chain_bound": found.chain,
        "bound": found.total,
        "bound_real": found.total / scale,
        "ratio": measured.wall / found.total if found.total else None,
        "dominant": max(found.by_service, key=found.by_service.get, default=None)
        if found.total > found.chain * 1.001
        else "chain",
        "hosts": hosts,
        "barriers": {name: {"bound": t, "actual": passed.get(name)} for name, t in found.barriers.items()},
        "unattributed_requests": len(trace.unattributed()),
        "unanswered_requests": trace.unanswered,
        "counts": measured.result.counts.model_dump(),
        "status": measured.result.status,
        "requests": _requests(measured.log),
        "limits": _limits(measured.log, measured.throttled),
    }


def usage_row(
    label: str,
    usage: dict[str, Any],
    log: dict[str, dict[str, int]],
    throttled: dict[str, int],
    searches: int = 1,
) -> dict[str, Any]:
    """Model calls and tokens, and HTTP requests per source (the world's count), per search."""
    model = {
        f"{role}_{name}": value / searches
        for role in ("crawler", "selector")
        for name, value in usage[role].items()
        if name != "bounded"
    }
    return {
        "label": label,
        "searches": searches,
        **model,
        "requests": {name: n / searches for name, n in _requests(log).items()},
        "limits": _limits(log, throttled),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Median, least and most of some measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def single(config: BenchConfig, want: set[str]) -> dict[str, dict[str, Any]]:
    """Benchmarks 1, 3 and 4: cold searches of several questions against their physical limits, and for
    the first one the same search at concurrency 1 and again with a warm store (the cold run's)."""
    async with World.start(
        seed=config.seed, papers=config.papers, time_scale=config.time_scale, page_bytes=config.page_bytes
    ) as world:
        rows = world.queries[config.question : config.question + max(1, config.questions)]
        row = rows[0]
        with tempfile.TemporaryDirectory(prefix="pasa-bench-") as tmp:
            cold = await search(world, Path(tmp, "cold.sqlite3"), row, "cold, concurrency unbounded")
            others = [
                await search(world, Path(tmp, f"cold{i}.sqlite3"), r, f"cold, question {config.question + i}")
                for i, r in enumerate(rows[1:], 1)
            ]
            serial = await search(world, Path(tmp, "serial.sqlite3"), row, "cold, concurrency 1", concurrency=1)
            warm = await search(world, Path(tmp, "cold.sqlite3"), row, "warm store, concurrency unbounded")
        meta = describe(config, world) | {"question": row["question"], "qid": row["qid"]}
        scale = world.config.time_scale
        out: dict[str, dict[str, Any]] = {}
        if "wall" in want:
            runs = [analyse(cold, world, row), analyse(serial, world, row)]
            questions = [runs[0], *(analyse(m, world, r) for m, r in zip(others, rows[1:], strict=True))]
            medians = {
                key: spread([q[key] for q in questions])
                for key in (
                    "wall_real",
                    "limit_real",
                    "limit_ratio",
                    "blind_real",
                    "blind_ratio",
                    "blind_over_limit",
                    "ratio",
                    "cpu",
                )
            }
            medians["arxiv_api_requests"] = spread([q["requests"].get("arxiv_api", 0) for q in questions])
            out["wall"] = meta | {
                "runs": runs,
                "questions": questions,
                "medians": medians,
                "speedup": serial.wall / cold.wall,
                "best_speedup": serial.wall / runs[0]["bound"],
                "targets": {
                    "median_wall_within_1.15x_of_physical_limit": medians["limit_ratio"]["median"] <= 1.15,
                    "median_wall_at_most_40_s_real_world_equivalent": medians["wall_real"]["median"] <= 40,
                    "at_most_4_arxiv_api_requests_per_search": medians["arxiv_api_requests"]["max"] <= 4,
                    "no_429s_and_no_limit_exceeded": _polite(*(q["limits"] for q in [*questions, runs[1]])),
                },
            }
        if "warm" in want:
            out["warm"] = meta | {
                "runs": [
                    {
                        "label": m.label,
                        "wall": m.wall,
                        "wall_real": m.wall / scale,
                        "requests": _requests(m.log),
                        "limits": _limits(m.log, m.throttled),
                        "papers": m.result.counts.papers,
                    }
                    for m in (cold, warm)
                ],
                "ratio": cold.wall / warm.wall,
                "targets": {
                    "warm_at_least_100x_faster": cold.wall / warm.wall >= 100,
                    "no_429s_and_no_limit_exceeded": _polite(_limits(warm.log, warm.throttled)),
                },
            }
        if "usage" in want:
            out["usage"] = meta | {
                "rows": [usage_row(m.label, m.usage, m.log, m.throttled) for m in (cold, serial, warm)]
            }
    if "wall" in want:
        unlimited = await _unlimited(config)
        out["wall"]["unlimited"] = unlimited
        out["wall"]["unlimited_speedup"] = unlimited[1]["wall"] / unlimited[0]["wall"]
        # Issue 5's target is about scheduling: with rate limits the paced hosts bind both runs (the
        # best any scheduler reaches is `best_speedup`), so it is judged without them.
        out["wall"]["targets"]["at_least_3x_faster_than_concurrency_1_without_rate_limits"] = (
            out["wall"]["unlimited_speedup"] >= 3
        )
    return out


async def _unlimited(config: BenchConfig) -> list[dict[str, Any]]:
    """The same two runs in a world without rate limits: what the agent's concurrency gives when no pacer binds."""
    async with World.start(seed=config.seed, papers=config.papers, time_scale=config.time_scale, limits={}) as world:
        row = world.queries[config.question]
        with tempfile.TemporaryDirectory(prefix="pasa-bench-") as tmp:
            cold = await search(world, Path(tmp, "cold.sqlite3"), row, "cold, concurrency unbounded")
            serial = await search(world, Path(tmp, "serial.sqlite3"), row, "cold, concurrency 1", concurrency=1)
        return [analyse(cold, world, row), analyse(serial, world, row)]


async def parallel(config: BenchConfig) -> dict[str, Any]:
    """Benchmark 2: N different deep searches at once in one process (one `Pasa`)."""
    async with World.start(seed=config.seed, papers=config.papers, time_scale=config.time_scale) as world:
        rows = world.queries[: config.parallel]
        with tempfile.TemporaryDirectory(prefix="pasa-bench-") as tmp:
            settings = Settings(**world.settings(), store_path=Path(tmp, "store.sqlite3"))
            first = len(world.log.records)
            walls: list[float] = [0.0] * len(rows)
            results: list[RunResult | None] = [None] * len(rows)
            async with open_app(settings) as pasa:
                started, cpu = time.monotonic(), time.process_time()

                async def one(i: int) -> None:
                    row = rows[i]
                    results[i] = await pasa.deep_search(row["question"], _params(settings, row, None))
                    walls[i] = time.monotonic() - started

                async with anyio.create_task_group() as tg:
                    for i in range(len(rows)):
                        tg.start_soon(one, i)
                total, cpu = time.monotonic() - started, time.process_time() - cpu
                usage = pasa.usage()
                throttled = {host.name: host.throttled for host in pasa.net.hosts.values()}
            await cool_down(world)
        log = log_counts(world.log.records[first:])
        scale = world.config.time_scale
        floors = {
            name: max(0, log[name]["requests"] - pace.burst) * pace.interval
            for name, pace in paces(world).items()
            if name in log
        }
        return describe(config, world) | {
            "searches": [
                {"question": row["question"], "wall": w, "wall_real": w / scale, "status": r.status if r else None}
                for row, w, r in zip(rows, walls, results, strict=True)
            ],
            "total": total,
            "total_real": total / scale,
            "cpu": cpu,
            "requests": _requests(log),
            "requests_per_search": {k: v / len(rows) for k, v in _requests(log).items()},
            "floors": floors,
            "floors_real": {k: v / scale for k, v in floors.items()},
            "limits": _limits(log, throttled),
            "usage_per_search": usage_row(f"{len(rows)} at once, per search", usage, log, throttled, len(rows)),
            "targets": {"no_429s_and_no_limit_exceeded": _polite(_limits(log, throttled))},
        }


async def recall(config: BenchConfig) -> dict[str, Any]:
    """Benchmark 5: crawler recall with a noise-free selector against the world's reachability bound."""
    async with World.start(
        seed=config.seed, papers=config.papers, time_scale=config.recall_time_scale, selector_noise=0.0
    ) as world:
        rows = world.queries[: config.recall_questions]
        with tempfile.TemporaryDirectory(prefix="pasa-bench-") as tmp:
            settings = Settings(**world.settings(), store_path=Path(tmp, "store.sqlite3"))
            first = len(world.log.records)
            results: list[RunResult | None] = [None] * len(rows)
            limiter = anyio.Semaphore(config.recall_parallel)
            async with open_app(settings) as pasa:

                async def one(i: int) -> None:
                    async with limiter:
                        results[i] = await pasa.deep_search(rows[i]["question"], _params(settings, rows[i], None))

                async with anyio.create_task_group() as tg:
                    for i in range(len(rows)):
                        tg.start_soon(one, i)
                throttled = {host.name: host.throttled for host in pasa.net.hosts.values()}
            await cool_down(world)
        log = log_counts(world.log.records[first:])
        questions = []
        for row, result in zip(rows, results, strict=True):
            assert result is not None
            reach = world.reachable(row)
            via_services = world.reachable(row, resolution="services")
            measured = metrics(result.tree, row["answer"])
            crawled = {p.arxiv_id for p in result.papers if p.arxiv_id}
            reached = {world.corpus.papers[i].arxiv_id for i in reach.found}
            questions.append(
                {
                    "qid": row["qid"],
                    "answers": len(row["answer"]),
                    "crawler_recall": measured["crawler_recall"],
                    "bound": reach.bound,
                    "bound_services": via_services.bound,
                    "by_search": len(reach.by_search) / len(reach.answers) if reach.answers else 0.0,
                    "recall": measured["recall"],
                    "precision": measured["precision"],
                    "papers": len(result.papers),
                    "reachable_missed": sorted(reached - crawled),
                    "status": result.status,
                }
            )
        equal = sum(abs(q["crawler_recall"] - q["bound"]) < 1e-9 for q in questions)
        return describe(config, world) | {
            "questions": questions,
            "mean": {
                key: sum(q[key] for q in questions) / len(questions)
                for key in ("crawler_recall", "bound", "bound_services", "by_search", "recall", "precision")
            },
            "equal": equal,
            "requests": _requests(log),
            "limits": _limits(log, throttled),
            "targets": {
                "crawler_recall_equals_bound": equal == len(questions),
                "no_429s_and_no_limit_exceeded": _polite(_limits(log, throttled)),
            },
        }
