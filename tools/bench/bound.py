"""The critical-path lower bound of a deep search, from the same run's trace.

A run is a graph of steps (the agent's calls into its collaborators) with the service time each one
measured: the seconds during which a request it waited for was in flight, so time spent queueing for
a pacer, a connection slot or a coalesced lookup is not counted. The agent's dependencies are

    crawler queries -> each search -> scoring its new papers -> for each paper: full text ->
    crawler sections -> resolution -> scoring the cited papers -> layer barrier -> next layer ...

and no run, however scheduled, ends before the longest chain of service times. Paced hosts add a
second bound: between two barriers, requests to a host with interval I (and burst b) that can start
no earlier than h each, and leave at least q of their own service plus later work before the next
barrier, need at least  h_k + (m_k - b) * I + min q  where m_k is the number of them that start no
earlier than the k-th earliest. Each barrier's bound is the larger of the two; the next layer starts
from it, and a paced host's first request in it comes an interval after its last one in the layer
before, so the requests one layer must make after another's add up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .trace import Call, Trace

END = "end"


@dataclass(frozen=True)
class Step:
    """One unit of work that takes `seconds` once every step in `after` has ended."""

    name: str
    seconds: float = 0.0
    after: tuple[str, ...] = ()
    barrier: bool = False  # waits for every step since the previous barrier; paced hosts are bounded here


@dataclass(frozen=True)
class Use:
    """One request to a service: its service time and the steps that waited for it."""

    service: str
    seconds: float
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Pace:
    """A host's rate limit: one request per `interval` seconds, `burst` at once."""

    interval: float
    burst: int = 1


@dataclass
class Bound:
    chain: float  # the longest dependency chain of service times (no rate limits)
    total: float  # chains and every rate limit together: the bound
    by_service: dict[str, float]  # chains and that one service's rate limit
    barriers: dict[str, float] = field(default_factory=dict)  # each barrier's bound (all limits)


def ends(steps: Sequence[Step], uses: Iterable[Use] = (), paces: Mapping[str, Pace] | None = None) -> dict[str, float]:
    """A lower bound on the time each step ends (steps in dependency order, times from the run's start)."""
    paces = paces or {}
    segment_of: dict[str, int] = {}
    segment = 0
    for step in steps:
        if step.name in segment_of:
            raise ValueError(f"two steps named {step.name!r}")
        if unknown := [a for a in step.after if a not in segment_of]:
            raise ValueError(f"step {step.name!r} comes before the step {unknown[0]!r} it waits for")
        segment_of[step.name] = segment
        segment += step.barrier
    by_segment: dict[int, list[Use]] = defaultdict(list)
    for use in uses:
        if use.service in paces and use.steps:
            by_segment[max(segment_of[s] for s in use.steps)].append(use)

    end: dict[str, float] = {}
    start: dict[str, float] = {}
    free = dict.fromkeys(paces, 0.0)  # per service: the earliest start of its next request
    open_steps: list[Step] = []
    previous = 0.0  # the last barrier's bound
    for step in steps:
        head = max([end[a] for a in step.after], default=previous)
        if not step.barrier:
            start[step.name], end[step.name] = head, head + step.seconds
            open_steps.append(step)
            continue
        reached = max([previous, *(end[s.name] for s in open_steps)])
        tails = _tails(open_steps)
        for service, pace in paces.items():
            spans = []
            for use in by_segment[segment_of[step.name]]:
                waiting = [s for s in use.steps if s in tails]
                if use.service == service and waiting:
                    spans.append((min(start[s] for s in waiting), use.seconds + max(tails[s] for s in waiting)))
            if spans:
                done, last = paced(spans, pace, free[service])
                reached = max(reached, done)
                if pace.burst == 1:  # the next layer's first request comes an interval after this one's last
                    free[service] = last + pace.interval
        end[step.name] = previous = reached
        open_steps = []
    return end


def _tails(steps: Sequence[Step]) -> dict[str, float]:
    """Per step: the longest chain of service times after it up to the next barrier."""
    names = {s.name for s in steps}
    after: dict[str, list[Step]] = defaultdict(list)
    for step in steps:
        for before in step.after:
            if before in names:
                after[before].append(step)
    tail: dict[str, float] = {}
    for step in reversed(steps):
        tail[step.name] = max([t.seconds + tail[t.name] for t in after[step.name]], default=0.0)
    return tail


def paced(spans: Iterable[tuple[float, float]], pace: Pace, free: float = 0.0) -> tuple[float, float]:
    """Bounds for requests to one paced host, given as (earliest start, own service time + work after it).

    Returns (earliest time the last of them and the work after it can end, earliest start of the
    last one to start). `free`: no request starts before it. For every k, the requests that start no
    earlier than the k-th earliest are m, need (m - burst) intervals between the first and the last,
    and the last one still has its own service and later work to do.
    """
    ordered = sorted((max(head, free), tail) for head, tail in spans)
    done = last = 0.0
    least_tail = float("inf")
    for k in range(len(ordered) - 1, -1, -1):
        head, tail = ordered[k]
        least_tail = min(least_tail, tail)
        latest = head + max(0, len(ordered) - k - pace.burst) * pace.interval
        last, done = max(last, latest), max(done, latest + least_tail)
    return done, last


def bound(steps: Sequence[Step], uses: Sequence[Use], paces: Mapping[str, Pace]) -> Bound:
    """The chain bound, the bound with each service's limit alone, and the bound with all of them."""
    last = steps[-1].name
    full = ends(steps, uses, paces)
    return Bound(
        chain=ends(steps)[last],
        total=full[last],
        by_service={service: ends(steps, uses, {service: pace})[last] for service, pace in paces.items()},
        barriers={s.name: full[s.name] for s in steps if s.barrier},
    )


def places(tree: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """Paper key -> (depth, origin) in a run tree; the origin is the search query at depth 0, else the parent's key."""
    found: dict[str, tuple[int, str]] = {}

    def walk(node: Mapping[str, Any], origin: str) -> None:
        key = node["extra"]["key"]
        found[key] = (node["depth"], origin)
        for kids in node["child"].values():
            for kid in kids:
                walk(kid, key)

    for query, nodes in tree["child"].items():
        for node in nodes:
            walk(node, query)
    return found


def run_graph(trace: Trace, tree: Mapping[str, Any]) -> tuple[list[Step], list[Use]]:
    """The steps and request uses of one traced run (its `RunResult.tree` says who found whom)."""
    seconds = trace.seconds()
    where = places(tree)

    def step(call: Call, after: Sequence[str]) -> Step:
        return Step(step_name(call), seconds[call.id], tuple(after))

    by_kind: dict[str, list[Call]] = defaultdict(list)
    for call in trace.calls:
        by_kind[call.kind].append(call)
    steps = [step(c, ()) for c in by_kind["queries"]]
    started = [s.name for s in steps]
    searched: dict[str, list[str]] = defaultdict(list)
    for call in by_kind["search"]:
        steps.append(step(call, started))
        searched[call.subject].append(steps[-1].name)
    # A score call scores the new papers of one search query, or of one expansion.
    scored_for: dict[str, list[Call]] = defaultdict(list)
    for call in by_kind["score"]:
        if call.papers and call.papers[0] in where:
            scored_for[where[call.papers[0]][1]].append(call)
    ready: dict[str, list[str]] = {}  # search query -> the steps its depth-0 expansions wait for
    for query in dict.fromkeys(origin for depth, origin in where.values() if depth == 0):
        before = searched.get(query) or started
        scores = [step(c, before) for c in scored_for.get(query, [])]
        steps += scores
        ready[query] = [s.name for s in scores] or before

    stages = ("fulltext", "sections", "resolve")
    expansions: dict[str, dict[str, list[Call]]] = defaultdict(lambda: defaultdict(list))
    for call in trace.calls:
        if call.kind in stages:
            expansions[call.subject][call.kind].append(call)
    by_depth: dict[int, list[str]] = defaultdict(list)
    for paper in expansions:
        by_depth[where[paper][0]].append(paper)
    barrier = ""
    for depth in sorted(by_depth):
        for paper in by_depth[depth]:
            before = ready[where[paper][1]] if depth == 0 else [barrier]
            for calls in [*(expansions[paper][k] for k in stages), scored_for.get(paper, [])]:
                if calls:
                    stage = [step(c, before) for c in calls]
                    steps += stage
                    before = [s.name for s in stage]
        barrier = f"depth {depth} expanded"
        steps.append(Step(barrier, barrier=True))
    steps.append(Step(END, barrier=True))

    names = {s.name for s in steps}
    uses = []
    for request, calls in trace.waiting().items():
        waiting = tuple(name for c in calls if (name := step_name(c)) in names)
        if waiting:
            uses.append(Use(request.service, request.end - request.start, waiting))
    return steps, uses


def step_name(call: Call) -> str:
    """The name of the step a call becomes."""
    return f"{call.kind}#{call.id}"
