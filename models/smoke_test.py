"""GPU smoke test: the real PaSa models on real vLLM servers, end to end.

Run it on the machine that serves the models (see models/README.md):

    python models/smoke_test.py

It reads the same settings as pasa-mcp (PASA_* environment variables or the config file), prints
every check with its time, and exits 1 if any check fails.
"""

from __future__ import annotations

import sys
import time

import anyio

from pasa_mcp.config import Settings
from pasa_mcp.crawler import build_crawler
from pasa_mcp.llm import ModelClient, ModelError
from pasa_mcp.net import Net
from pasa_mcp.papers import Paper
from pasa_mcp.selector import build_selector

QUESTION = "Which papers propose sequence-to-sequence models for machine translation built only from attention layers?"
RELEVANT = Paper(
    title="Attention Is All You Need",
    arxiv_id="1706.03762",
    abstract=(
        "We introduce the Transformer, an encoder-decoder network for sequence transduction that uses "
        "self-attention and feed-forward layers only, with no recurrence or convolution. On English-German "
        "and English-French machine translation it beats earlier models while training much faster."
    ),
)
# Invented for this test: a paper that no reading of QUESTION could select.
IRRELEVANT = Paper(
    title="Seasonal dynamics of soil fungal communities in Mediterranean vineyards",
    abstract=(
        "We sampled vineyard soils monthly for two years and sequenced fungal ITS regions. Community "
        "composition followed rainfall and tillage more than grape variety."
    ),
)
SECTIONS = ["1 Introduction", "2 Background", "3 Model Architecture", "6 Results", "7 Conclusion"]


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self._start = time.monotonic()

    def report(self, ok: bool, what: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"{'ok  ' if ok else 'FAIL'} {elapsed:6.1f}s  {what}", flush=True)
        self.failed += not ok
        self._start = time.monotonic()


async def run(settings: Settings, net: Net, checks: Checks) -> None:
    for role in ("crawler", "selector"):
        client = ModelClient.from_settings(settings, net, role)
        for url, names in (await client.served_models()).items():
            checks.report(client.model in names, f"{url} serves {client.model!r} (it serves {names})")
    if settings.selector_backend == "pasa":
        selector_client = ModelClient.from_settings(settings, net, "selector")
        for url, key in (await selector_client.true_token_keys()).items():
            checks.report(key.startswith("token_id:"), f"{url}: /tokenize gives one token for True ({key})")

    crawler = build_crawler(settings, net)
    queries = await crawler.queries(QUESTION, limit=settings.search_queries)
    checks.report(bool(queries), f"{crawler.name} wrote {len(queries)} queries: {queries}")
    sampled = await crawler.queries(QUESTION, limit=settings.search_queries, sample=True)
    checks.report(bool(sampled), f"{crawler.name} sampled {len(sampled)} queries: {sampled}")
    chosen = await crawler.sections(QUESTION, RELEVANT, SECTIONS)
    checks.report(set(chosen) <= set(SECTIONS), f"{crawler.name} chose sections {chosen} of {SECTIONS}")

    selector = build_selector(settings, net)
    relevant, irrelevant = await selector.score(QUESTION, [RELEVANT, IRRELEVANT])
    checks.report(relevant > 0.5, f"{selector.name}: relevant paper scores {relevant:.4f} (want > 0.5)")
    checks.report(irrelevant < 0.5, f"{selector.name}: irrelevant paper scores {irrelevant:.4f} (want < 0.5)")
    score, reason = await selector.explain(QUESTION, RELEVANT)
    checks.report(score > 0.5 and bool(reason), f"{selector.name} explains {score:.4f}: {reason[:300]!r}")


async def main() -> int:
    settings = Settings()
    net = Net(settings)
    checks = Checks()
    try:
        await run(settings, net, checks)
    except ModelError as exc:
        checks.report(False, str(exc))
    finally:
        await net.aclose()
    print(f"HTTP requests: {net.request_counts()}")
    print("all checks passed" if not checks.failed else f"{checks.failed} check(s) failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
