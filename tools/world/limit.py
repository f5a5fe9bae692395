"""The physical limit of a default deep search: the least time any client needs, from what it must learn.

Unlike a bound computed from a run's own requests, this one depends only on the question and the
world: the PaSa loop replayed on the ground truth (reach.py: the crawler's queries, Google's results,
the sections the crawler expands, the top papers of each layer) says what a search must learn, and
each host's limit says how fast it can learn it. A client at the limit

- asks the crawler for queries, runs the searches at once, and fetches the metadata of every
  result in one arXiv API request (it needs the versions, for arXiv's HTML), then scores them;
- fetches each expanded paper's page from a host that has it (arXiv's HTML, ar5iv), choosing hosts
  to finish soonest under their limits, or its reference list from OpenAlex (two requests) when
  neither has it; asks the crawler which sections to expand as each page arrives;
- resolves the cited entries of the chosen sections: those that write an arXiv id in one arXiv API
  request per layer (100 ids a request, the API's interval apart, after the layer's last page),
  the others on OpenAlex (one DOI lookup per paper, one title search per title), paced at its limit,
  as each page's sections are known; then scores the new papers, which ends the layer.

With `blind=True` the client does not know which host has a page: it learns that a paper has no
page anywhere only by asking both hosts (one miss each) before its reference list. That is the
least a real client pays for not knowing, since nothing in arXiv's metadata tells which papers its
HTML or ar5iv converted; wrong first guesses for papers on one host only are still not charged.

Latencies are the world's medians (the models: base plus their per-token costs for the scripted
outputs and the question, a lower bound on the prompts pasa-mcp sends); seconds are scaled by the
world's time scale, like everything the world does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pasa_mcp.protocol import parse_queries

from .config import WorldConfig
from .corpus import Corpus, Paper
from .engines import google
from .gate import Latency, Limit
from .layout import BibItem, layout_of
from .models import expand_choice, p_true, pieces, search_queries, section_targets
from .reach import Limits, crawl, end_date

IDS_PER_REQUEST = 100  # the arXiv API's comfortable id_list size
SELECTOR_OUTPUT = 1  # tokens a selector answer decodes ("True"/"False")


@dataclass
class LayerWork:
    """What one expansion layer must learn, and when the limit finishes it (scaled seconds from the start)."""

    papers: int = 0  # papers expanded
    pages: dict[str, int] = field(default_factory=dict)  # host -> pages fetched there ("references": lists)
    misses: int = 0  # page requests that found nothing (blind limit only)
    ids: int = 0  # distinct arXiv ids resolved through the arXiv API
    dois: int = 0  # papers whose chosen entries have DOIs (one OpenAlex lookup each)
    titles: int = 0  # distinct titles resolved through OpenAlex
    start: float = 0.0
    pages_done: float = 0.0
    end: float = 0.0


@dataclass
class PhysicalLimit:
    seconds: float  # scaled
    prefix: float  # queries, searches, metadata and scoring of depth 0 (scaled)
    layers: list[LayerWork]
    arxiv_api_requests: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "prefix": self.prefix,
            "arxiv_api_requests": self.arxiv_api_requests,
            "layers": [vars(layer) for layer in self.layers],
        }


class _Host:
    """A host's limit as the world checks it (GCRA: `burst` at once, then one per `interval`)."""

    def __init__(self, limit: Limit | None, latency: float, scale: float) -> None:
        self.interval = limit.interval * scale if limit else 0.0
        self.burst = limit.burst if limit else 1
        self.latency = latency
        self.tat = 0.0  # GCRA's theoretical arrival time
        self.sent = 0

    def next_start(self, ready: float) -> float:
        """When a request ready at `ready` can start."""
        return max(ready, self.tat - (self.burst - 1) * self.interval)

    def send(self, ready: float) -> float:
        """Send a request at the earliest allowed time; returns when its answer arrives."""
        start = self.next_start(ready)
        self.tat = max(start, self.tat) + self.interval
        self.sent += 1
        return start + self.latency


def _latency(config: WorldConfig, name: str) -> Latency:
    return config.latencies.get(name, Latency()) if config.latency else Latency()


def _model_seconds(latency: Latency, prompt: str, output: str, scale: float) -> float:
    tokens_in, tokens_out = len(pieces(prompt)), len(pieces(output))
    return (latency.base + latency.per_prompt_token * tokens_in + latency.per_output_token * tokens_out) * scale


def _leaf_items(corpus: Corpus, paper: Paper, chosen: Iterable[str]) -> list[BibItem]:
    """The bibliography entries cited in the chosen leaf sections of the paper's page."""
    layout = layout_of(corpus, paper)
    wanted = set(chosen)
    items: dict[int, BibItem] = {}
    for s in layout.sections:
        if s.kind != "section":
            continue
        leaves = [(f"{s.heading} {c.heading}", c) for c in s.children] if s.children else [(s.heading, s)]
        for key, node in leaves:
            if key in wanted:
                items.update((n, layout.bib[n - 1]) for n in node.cited())
    return list(items.values())


def physical_limit(
    corpus: Corpus, config: WorldConfig, row: Mapping[str, Any], limits: Limits | None = None, *, blind: bool = False
) -> PhysicalLimit:
    """The physical limit of a default deep search for one dataset row (see the module docstring)."""
    limits = limits or Limits()
    scale = config.time_scale
    question = str(row["question"])
    before = end_date(row)

    def median(name: str) -> float:
        return _latency(config, name).base * scale

    hosts = {
        name: _Host(config.limits.get(name), median(name), scale)
        for name in ("arxiv_api", "arxiv_html", "ar5iv", "openalex")
    }
    crawler, selector = _latency(config, "crawler"), _latency(config, "selector")
    score = _model_seconds(selector, question, "True" * SELECTOR_OUTPUT, scale)

    output = "".join(f"[Search] {q}\n" for q in search_queries(corpus, question)) + "[StopSearch]"
    queries = parse_queries(output, limits.search_queries)
    expanded: list[list[int]] = []

    def search(query: str) -> list[int]:
        hits = google(corpus, f"{query} before:{before} site:arxiv.org", limits.search_papers)
        return [hit.paper.idx for hit in hits if hit.paper is not None]

    def choose(i: int, found: Mapping[str, Iterable[int]]) -> list[str]:
        return expand_choice(corpus, corpus.papers[i], question, list(found))

    def rank(i: int) -> float:
        return p_true(corpus, question, corpus.papers[i], corpus.papers[i].title, 0.0)

    def sections(i: int) -> Mapping[str, set[int]]:
        return section_targets(corpus, corpus.papers[i])

    searched, _ = crawl(queries, search, sections, choose, rank, limits, expanded=expanded)

    # Depth 0: the queries, the searches side by side, one metadata request, the scores.
    results = _model_seconds(crawler, question, output, scale) + median("serper")
    metadata = hosts["arxiv_api"].send(results)
    prefix = metadata + score
    known = set(searched)  # papers the client has metadata for (its store)
    layers: list[LayerWork] = []
    start = prefix
    for papers in expanded:
        work = _layer(corpus, question, papers, start, hosts, crawler, score, scale, known, blind)
        layers.append(work)
        start = work.end
    return PhysicalLimit(start, prefix, layers, hosts["arxiv_api"].sent)


def _layer(
    corpus: Corpus,
    question: str,
    papers: Sequence[int],
    start: float,
    hosts: dict[str, _Host],
    crawler: Latency,
    score: float,
    scale: float,
    known: set[int],
    blind: bool,
) -> LayerWork:
    work = LayerWork(papers=len(papers), start=start)
    arrived: list[tuple[float, Paper]] = []
    # Pages: papers one host has go there; papers both have go where they finish soonest.
    both: list[Paper] = []
    for i in papers:
        paper = corpus.papers[i]
        if paper.arxiv_html and paper.ar5iv:
            both.append(paper)
            continue
        host = "arxiv_html" if paper.arxiv_html else "ar5iv" if paper.ar5iv else "references"
        work.pages[host] = work.pages.get(host, 0) + 1
        if host == "references":  # the work and its referenced works: two OpenAlex requests
            asked = start
            if blind:  # both hosts say "no page" first
                asked = max(hosts["arxiv_html"].send(start), hosts["ar5iv"].send(start))
                work.misses += 2
            arrived.append((hosts["openalex"].send(hosts["openalex"].send(asked)), paper))
        else:
            arrived.append((hosts[host].send(start), paper))
    for paper in both:
        host = min(("arxiv_html", "ar5iv"), key=lambda h: hosts[h].next_start(start) + hosts[h].latency)
        work.pages[host] = work.pages.get(host, 0) + 1
        arrived.append((hosts[host].send(start), paper))
    work.pages_done = max((t for t, _ in arrived), default=start)

    # Sections, then resolution: titles and DOIs on OpenAlex as they come, ids in one arXiv request.
    ids: set[str] = set()
    titles: set[str] = set()
    learnt: set[int] = set()
    ids_ready = start
    resolved = start
    for done, paper in sorted(arrived, key=lambda a: a[0]):
        found = section_targets(corpus, paper)
        chosen = expand_choice(corpus, paper, question, list(found))
        reply = "".join(f"[Expand] {n}\n" for n in chosen) + "[StopExpand]"
        ready = done + _model_seconds(crawler, question, reply, scale)
        resolved = max(resolved, ready)
        if paper.arxiv_html or paper.ar5iv:
            entries = [
                (item.target, item.title, _written_id(corpus, item)) for item in _leaf_items(corpus, paper, chosen)
            ]
        else:  # a reference list names each work's ids
            cited = [corpus.papers[t] for name in chosen for t in found[name]]
            entries = [(p.idx, p.title, ("arxiv", p.arxiv_id) if p.arxiv_id else ("doi", p.doi)) for p in cited]
        dois = False
        for target, title, (kind, value) in entries:
            if target is not None and target in known:  # the store has it (by id, title key or its text index)
                continue
            if target is not None:
                learnt.add(target)
            if kind == "arxiv":
                if value not in ids:
                    ids.add(value)
                    ids_ready = max(ids_ready, ready)
            elif kind == "doi":
                dois = True
            elif title not in titles:
                titles.add(title)
                resolved = max(resolved, hosts["openalex"].send(ready))
        if dois:
            work.dois += 1
            resolved = max(resolved, hosts["openalex"].send(ready))
    work.ids, work.titles = len(ids), len(titles)
    known |= learnt
    for _ in range(math.ceil(len(ids) / IDS_PER_REQUEST)):
        resolved = max(resolved, hosts["arxiv_api"].send(ids_ready))
    work.end = resolved + score
    return work


def _written_id(corpus: Corpus, item: BibItem) -> tuple[str, str | None]:
    """("arxiv", id) or ("doi", doi) when the entry writes its paper's id, else ("title", None)."""
    paper = None if item.target is None else corpus.papers[item.target]
    if paper is not None and paper.arxiv_id and paper.arxiv_id in item.venue:
        return "arxiv", paper.arxiv_id
    if paper is not None and paper.doi and paper.doi in item.venue:
        return "doi", paper.doi
    return "title", None
