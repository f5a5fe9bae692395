"""How a world is set up: corpus size and seed, time scale, latencies, limits, faults, model noise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import Corpus, CorpusSpec
from .gate import Faults, Latency, Limit, RequestLog, ServiceState

SERVICES = ("serper", "arxiv_api", "arxiv_html", "ar5iv", "s2", "openalex", "crossref", "crawler", "selector")

# Typical latencies of the real services (seconds) and of a 7B model on one GPU (per token).
DEFAULT_LATENCY: Mapping[str, Latency] = {
    "serper": Latency(0.6),
    "arxiv_api": Latency(0.5),
    "arxiv_html": Latency(0.25),
    "ar5iv": Latency(0.35),
    "s2": Latency(0.25),
    "openalex": Latency(0.15),
    "crossref": Latency(0.3),
    "crawler": Latency(0.03, per_prompt_token=0.00005, per_output_token=0.015),
    "selector": Latency(0.03, per_prompt_token=0.00004, per_output_token=0.015),
}

# The published or customary limits: arXiv's API terms (one request every 3 s, one connection),
# arXiv's guidance for export.arxiv.org, which serves the HTML pages to programs (bursts of 4
# requests a second with a 1 s sleep: 4 at once, 2 a second on average), Semantic Scholar's
# introductory key (1 request/s), OpenAlex (10 requests/s), Crossref's public pool (5 requests/s),
# and pasa-mcp's own politeness toward ar5iv (1 request/s). Search and models have none.
DEFAULT_LIMITS: Mapping[str, Limit] = {
    "arxiv_api": Limit(3.0, concurrency=1),
    "arxiv_html": Limit(0.5, burst=4),
    "ar5iv": Limit(1.0),
    "s2": Limit(1.0),
    "openalex": Limit(0.1, burst=10),
    "crossref": Limit(0.2),
}


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 7
    papers: int = 2000
    corpus: CorpusSpec = CorpusSpec()
    time_scale: float = 1.0  # multiplies every latency, limit interval and Retry-After
    latency: bool = True  # False: answer at once
    latencies: Mapping[str, Latency] = field(default_factory=lambda: dict(DEFAULT_LATENCY))
    limits: Mapping[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    limit_slack: float = 0.1  # a request may come this fraction of an interval early (network jitter) ...
    limit_jitter: float = 0.05  # ... or this many seconds (not scaled: event-loop stalls in scaled worlds)
    faults: Mapping[str, Faults] = field(default_factory=dict)
    selector_noise: float = 0.0  # standard deviation of the selector's noise, in logit units
    page_bytes: int = 0  # HTML pages of about this size (real ones: 0.3 to 2.5 MB); 0: compact pages
    hang_seconds: float = 300.0  # how long a time-out fault holds a request at most (not scaled)
    vllm_version: str = "0.26.0"  # what /version says; below 0.26 logprob_token_ids is ignored
    serper_key: str = "sim-serper-key"
    openalex_key: str = "sim-openalex-key"
    # OpenAlex's daily allowance without a key (since February 2026: $0.01 a day, a list request
    # costing $0.0001 and a search $0.001, single works free), in list requests; it never renews
    # in a world, which lives less than a day.
    openalex_keyless_allowance: int = 100
    host: str = "127.0.0.1"
    port: int = 0  # first port (services take consecutive ones, OAI-PMH the next); 0 picks free ports
    log_path: Path | None = None  # request log as JSON lines
    oai_page_size: int = 200  # records per OAI-PMH ListRecords page
    oai_flow_control: int = 0  # every N-th OAI-PMH request is answered 503 with Retry-After (0: never)
    oai_retry_after: float = 5.0  # seconds that 503 asks for (scaled)

    def __post_init__(self) -> None:
        unknown = (set(self.latencies) | set(self.limits) | set(self.faults)) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; known: {', '.join(SERVICES)}")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")


@dataclass
class Context:
    """What every service handler reads: the corpus, the configuration, the limit states, the log."""

    corpus: Corpus
    config: WorldConfig
    states: dict[str, ServiceState]
    log: RequestLog
    oai_url: str  # where OAI-PMH listens: the arxiv_api service's second location (world.py)
