"""A simulated scholarly web for testing and benchmarking pasa-mcp without internet or GPU.

Loopback HTTP servers speak the wire formats of serper (Google), the arXiv API, arxiv.org/html,
ar5iv, Semantic Scholar, OpenAlex and vLLM over a generated corpus with a known citation graph and
planted questions. It is a simulation, and every response says so. See README.md.
"""

from .config import DEFAULT_LATENCY, DEFAULT_LIMITS, SERVICES, WorldConfig
from .corpus import Corpus, CorpusSpec
from .gate import Faults, Latency, Limit, RequestLog
from .models import CRAWLER_MODEL, SELECTOR_MODEL, TRUE_ID
from .reach import Limits, Reach, crawl, end_date, reachable
from .world import World

__all__ = [
    "CRAWLER_MODEL",
    "DEFAULT_LATENCY",
    "DEFAULT_LIMITS",
    "SELECTOR_MODEL",
    "SERVICES",
    "TRUE_ID",
    "Corpus",
    "CorpusSpec",
    "Faults",
    "Latency",
    "Limit",
    "Limits",
    "Reach",
    "RequestLog",
    "World",
    "WorldConfig",
    "crawl",
    "end_date",
    "reachable",
]
