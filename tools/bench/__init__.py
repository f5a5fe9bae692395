"""Benchmarks of pasa-mcp against the simulated scholarly web (tools/world). See README.md.

`python -m tools.bench` runs them; `trace` records a deep search's calls and requests, and `bound`
computes the critical-path lower bound of its wall time from that record.
"""

from .bound import Bound, Pace, Step, Use, bound, ends, paced, run_graph
from .trace import Call, Request, Trace, Tracer, union_seconds

__all__ = [
    "Bound",
    "Call",
    "Pace",
    "Request",
    "Step",
    "Trace",
    "Tracer",
    "Use",
    "bound",
    "ends",
    "paced",
    "run_graph",
    "union_seconds",
]
