"""`pasa-mcp models smoke-test`: the real models on their real servers, end to end.

Run it where the models are served. It reads the same settings as pasa-mcp, prints every check with
its time, exits 1 if any fails, and reports what only the real checkpoints can tell:

- each checkpoint's `generation_config.json` (what `model_sampling = "checkpoint"` lets the server apply);
- a fixed set of selector prompts scored both ways, explicit and checkpoint sampling, side by side;
- the crawler's answer when offered only a "References" section (papers without full text are
  expanded through their reference lists offered under that name; the reference never showed it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import Settings
from .crawler import GREEDY, build_crawler
from .llm import ModelClient, ModelError, Role, message_text
from .net import Net
from .papers import Paper
from .protocol import parse_sections, section_prompt
from .selector import PasaSelector, build_selector

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
# Selector prompts scored both ways: clear yes, clear no, and borderline cases, where sampling settings
# (the repetition penalty touches `True`, a token of the prompt) could flip a decision.
SELECTOR_CASES = [
    (QUESTION, RELEVANT),
    (QUESTION, IRRELEVANT),
    (
        QUESTION,
        Paper(
            title="Convolutional Sequence to Sequence Learning",
            abstract="An architecture for sequence to sequence learning based entirely on convolutional networks.",
        ),
    ),
    (
        "Which papers study sparse attention for long documents?",
        Paper(
            title="Longformer: The Long-Document Transformer",
            abstract="An attention mechanism that scales linearly with sequence length, for long documents.",
        ),
    ),
    (
        "Which papers study sparse attention for long documents?",
        Paper(title="BERT", abstract="Pre-training of deep bidirectional transformers for language understanding."),
    ),
    (
        "True or False: which papers evaluate True/False question answering datasets?",
        Paper(title="BoolQ", abstract="A reading comprehension dataset of naturally occurring yes/no questions."),
    ),
]


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self._start = time.monotonic()

    def report(self, ok: bool, what: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"{'ok  ' if ok else 'FAIL'} {elapsed:6.1f}s  {what}", flush=True)
        self.failed += not ok
        self._start = time.monotonic()

    @staticmethod
    def info(what: str) -> None:
        print(f"info          {what}", flush=True)


def generation_config(settings: Settings, role: Role) -> str:
    """The checkpoint's generation_config.json, from the weights directory or the Hugging Face cache."""
    model = getattr(settings, f"{role}_model")
    local = Path(settings.weights_dir) / model / "generation_config.json"
    if local.is_file():
        return f"{local}: {json.dumps(json.loads(local.read_text()), sort_keys=True)}"
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(f"bytedance-research/{model}", "generation_config.json", local_files_only=True)
        return f"{path}: {json.dumps(json.loads(Path(path).read_text()), sort_keys=True)}"
    except Exception:  # noqa: BLE001 (not installed, not cached: say where it was looked for)
        return f"not found at {local} nor in the Hugging Face cache (download the checkpoint to see it)"


async def run(settings: Settings, net: Net, checks: Checks) -> None:
    for role in ("crawler", "selector"):
        client = ModelClient.from_settings(settings, net, role)
        for url, names in (await client.served_models()).items():
            checks.report(client.model in names, f"{url} serves {client.model!r} (it serves {names})")
        checks.info(f"{role} generation_config.json: {generation_config(settings, role)}")
    if settings.selector_backend == "pasa":
        selector_client = ModelClient.from_settings(settings, net, "selector")
        engines = await selector_client.served_engines()
        for url, key in (await selector_client.true_token_keys()).items():
            checks.report(key.startswith("token_id:") or key == "True", f"{url} ({engines[url]}): True is {key}")

    crawler = build_crawler(settings, net)
    queries = await crawler.queries(QUESTION, limit=settings.search_queries)
    checks.report(bool(queries), f"{crawler.name} wrote {len(queries)} queries: {queries}")
    sampled = await crawler.queries(QUESTION, limit=settings.search_queries, sample=True)
    checks.report(bool(sampled), f"{crawler.name} sampled {len(sampled)} queries: {sampled}")
    chosen = await crawler.sections(QUESTION, RELEVANT, SECTIONS)
    checks.report(set(chosen) <= set(SECTIONS), f"{crawler.name} chose sections {chosen} of {SECTIONS}")
    prompt = section_prompt(QUESTION, RELEVANT.title, RELEVANT.abstract, ["References"])
    answer = message_text(await crawler.client.chat([{"role": "user", "content": prompt}], GREEDY))
    checks.info(
        f"offered only ['References'] the crawler answered {answer!r} -> {parse_sections(answer, ['References'])}"
    )

    selector = build_selector(settings, net)
    relevant, irrelevant = await selector.score(QUESTION, [RELEVANT, IRRELEVANT])
    checks.report(relevant > 0.5, f"{selector.name}: relevant paper scores {relevant:.4f} (want > 0.5)")
    checks.report(irrelevant < 0.5, f"{selector.name}: irrelevant paper scores {irrelevant:.4f} (want < 0.5)")
    score, reason = await selector.explain(QUESTION, RELEVANT)
    checks.report(score > 0.5 and bool(reason), f"{selector.name} explains {score:.4f}: {reason[:300]!r}")
    if settings.selector_backend == "pasa":
        await compare_sampling(settings, net, checks)


async def compare_sampling(settings: Settings, net: Net, checks: Checks) -> None:
    """The fixed selector prompts scored with explicit and with checkpoint sampling."""
    both = {}
    for mode in ("explicit", "checkpoint"):
        selector = PasaSelector(
            ModelClient.from_settings(settings.model_copy(update={"model_sampling": mode}), net, "selector")
        )
        both[mode] = [(await selector.score(q, [paper]))[0] for q, paper in SELECTOR_CASES]
    checks.info(
        "selector, explicit vs checkpoint sampling (vLLM returns raw logprobs unless started with "
        "--logprobs-mode processed_logprobs, which is what the reference's scores were):"
    )
    for (question, paper), explicit, checkpoint in zip(
        SELECTOR_CASES, both["explicit"], both["checkpoint"], strict=True
    ):
        flip = "  DECISION DIFFERS" if (explicit > 0.5) != (checkpoint > 0.5) else ""
        checks.info(f"  {explicit:.4f} {checkpoint:.4f}  {paper.title[:50]!r} for {question[:50]!r}{flip}")


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
