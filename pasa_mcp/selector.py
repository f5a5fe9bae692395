"""The Selector: the probability that a paper satisfies the user query, and the reason why.

`PasaSelector` runs the released checkpoint exactly as trained (PROTOCOL section 4): the raw
`get_selected` prompt with no chat template, one greedy token, score = P(token `True`), many papers
per /completions request and several requests in flight. `GeneralSelector` asks any
OpenAI-compatible chat model the same question, told to begin its answer with True or False.

Scores are a pure function of (selector, query, title, abstract), so `score_cached` keeps them in
the store under the selector's `name` and only asks the model about the misses.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

from .config import Settings
from .llm import ModelClient, ModelError, Sampling, message_text
from .net import Net
from .papers import Paper
from .protocol import prompt_version, selector_prompt
from .store import Store
from .tasks import gather

EXPLAIN_TOKENS = 256
GENERAL_TOP_LOGPROBS = 20  # the most OpenAI's chat API allows

SELECT_SYSTEM = """\
You judge whether a paper satisfies a user's query.
Begin your answer with exactly one word, True or False, then give your reason on the next line."""


GENERAL_PROMPTS = prompt_version(SELECT_SYSTEM)


class Selector(Protocol):
    """Scores papers for a user query: P(the paper satisfies it)."""

    name: str  # backend and model: the key of cached scores

    async def score(self, user_query: str, papers: Sequence[Paper]) -> list[float]: ...

    async def explain(self, user_query: str, paper: Paper) -> tuple[float, str]: ...


def _check_query(user_query: str) -> None:
    if not user_query.strip():
        raise ValueError("the user query is empty")


def reason_of(text: str) -> str:
    """The reason in a selector's answer: after `Reason:` if written, else after the verdict line."""
    _, marker, after = text.partition("Reason:")
    if marker:
        return after.strip()
    _, _, rest = text.strip().partition("\n")
    return rest.strip()


class PasaSelector:
    """The PaSa selector checkpoint on vLLM."""

    def __init__(self, client: ModelClient, batch: int = 16) -> None:
        if batch < 1:
            raise ValueError(f"selector batch must be at least 1, got {batch}")
        self.client, self.batch = client, batch
        self.name = f"pasa:{client.model}{client.mode_suffix}"

    async def score(self, user_query: str, papers: Sequence[Paper]) -> list[float]:
        """P(True) per paper, in order: batches of `batch` prompts, all requests in flight together."""
        _check_query(user_query)
        prompts = [selector_prompt(user_query, paper.title, paper.abstract) for paper in papers]
        batches = [prompts[i : i + self.batch] for i in range(0, len(prompts), self.batch)]
        judged = await gather(*(functools.partial(self.client.judge, batch) for batch in batches))
        return [j.p_true for batch in judged for j in batch]

    async def explain(self, user_query: str, paper: Paper) -> tuple[float, str]:
        """The score of the first token, and the reason the checkpoint goes on to write."""
        _check_query(user_query)
        prompt = selector_prompt(user_query, paper.title, paper.abstract)
        (judged,) = await self.client.judge([prompt], max_tokens=EXPLAIN_TOKENS)
        return judged.p_true, reason_of(judged.text)


def _verdict_probability(choice: dict[str, Any]) -> float:
    """P(True) of a general chat model's first token.

    With logprobs: the summed probability of the listed first-token variants of "True" (`True`,
    ` True`, `true`: for a general model they are the same answer). It is 0.0 when none is among the
    top 20, which for a model that answers in the asked format means it said False. Without logprobs
    (servers that do not return them): 1.0 or 0.0 from the answer's first word.
    """
    content = (choice.get("logprobs") or {}).get("content") or []
    top = content[0].get("top_logprobs") if content else None
    if top:
        return min(1.0, sum(math.exp(item["logprob"]) for item in top if item["token"].strip().lower() == "true"))
    text = message_text(choice)
    first = re.match(r"\W*(\w+)", text)
    word = first.group(1).lower() if first else ""
    if word not in ("true", "false"):
        raise ModelError(f"the selector answered {text[:200]!r}, expected it to begin with True or False")
    return 1.0 if word == "true" else 0.0


class GeneralSelector:
    """Any OpenAI-compatible chat model asked the selector's question; one request per paper."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client
        self.name = f"general:{client.model}@{GENERAL_PROMPTS}"  # the cache key: model and prompts

    async def _ask(self, user_query: str, paper: Paper, max_tokens: int) -> dict[str, Any]:
        messages = [
            {"role": "system", "content": SELECT_SYSTEM},
            {"role": "user", "content": selector_prompt(user_query, paper.title, paper.abstract)},
        ]
        sampling = Sampling(temperature=0.0, top_p=1.0, max_tokens=max_tokens)
        return await self.client.chat(messages, sampling, top_logprobs=GENERAL_TOP_LOGPROBS)

    async def score(self, user_query: str, papers: Sequence[Paper]) -> list[float]:
        _check_query(user_query)
        choices = await gather(*(functools.partial(self._ask, user_query, paper, 1) for paper in papers))
        return [_verdict_probability(choice) for choice in choices]

    async def explain(self, user_query: str, paper: Paper) -> tuple[float, str]:
        _check_query(user_query)
        choice = await self._ask(user_query, paper, EXPLAIN_TOKENS)
        return _verdict_probability(choice), reason_of(message_text(choice))


def build_selector(settings: Settings, net: Net) -> Selector:
    """The selector that `selector_backend` names, on `selector_urls`."""
    client = ModelClient.from_settings(settings, net, "selector")
    if settings.selector_backend == "pasa":
        return PasaSelector(client, settings.selector_batch)
    return GeneralSelector(client)


async def score_cached(selector: Selector, store: Store, user_query: str, papers: Sequence[Paper]) -> list[float]:
    """Scores in the order of `papers`, from the store where known; only the misses reach the model."""
    cached = await store.call(store.get_scores, selector.name, user_query, papers)
    missing = list({paper.key: paper for paper in papers if paper.key not in cached}.values())
    if missing:
        fresh = await selector.score(user_query, missing)
        await store.call(store.put_scores, selector.name, user_query, list(zip(missing, fresh, strict=True)))
        cached |= {paper.key: score for paper, score in zip(missing, fresh, strict=True)}
    return [cached[paper.key] for paper in papers]
