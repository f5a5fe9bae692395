"""Two `pasa-mcp search` processes at once against one world share its limits (tools/bench/processes.py).

The world is four times faster than the real services, so its intervals are short and a client that
paced only itself would come early; the world counts such requests (`exceeded`) and answers 429.
(Not faster: at a tenth, export.arxiv.org's interval is 50 ms, and an event-loop stall of that size
on a loaded machine, in a client or in the world's own threads, reads as a request come early.)
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tools.bench.processes import run_processes
from tools.world import World

pytestmark = pytest.mark.anyio


async def test_two_processes_finish_with_no_request_beyond_a_limit(tmp_path: Path) -> None:
    async with World.start(seed=7, papers=2000, time_scale=0.25) as world:
        with anyio.fail_after(240):
            run = await run_processes(world, 2, tmp_path / "run", tmp_path / "state")
    assert [s["status"] for s in run.searches] == ["finished", "finished"], run.searches
    assert all(s["selected"] > 0 for s in run.searches)
    assert run.requests["arxiv_api"] >= 2 and run.requests["arxiv_html"] + run.requests["ar5iv"] > 10
    assert run.exceeded == 0, run.exceeded_at
    assert run.status_429 == 0
    assert list((tmp_path / "state" / "pacing").glob("arxiv@*.json"))  # both paced through the shared state
