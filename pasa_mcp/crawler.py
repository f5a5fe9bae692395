"""The Crawler: search queries for a user query, and which sections of a paper to follow.

Two backends behind one small protocol. `PasaCrawler` talks to the released checkpoint with exactly
its training inputs (PROTOCOL sections 1 and 2). `GeneralCrawler` gives any OpenAI-compatible
instruct model the same user prompt plus a system message that makes it answer in the same
`[Search]` / `[Expand]` formats (the paper's "PaSa-GPT-4o" configuration). Both parse with the
protocol's parsers, so the agent never knows which one it has.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Protocol

from .config import Settings
from .llm import ModelClient, ModelError, Sampling, message_text
from .net import Net
from .papers import Paper
from .protocol import parse_queries, parse_sections, prompt_version, query_prompt, section_prompt
from .store import Store

MAX_TOKENS = 512
GREEDY = Sampling(temperature=0.0, top_p=1.0, max_tokens=MAX_TOKENS)
# The paper's ensemble samples the checkpoint at temperature 2.0, top_p 0.8 and unions the runs.
PASA_SAMPLE = Sampling(temperature=2.0, top_p=0.8, max_tokens=MAX_TOKENS)
# General models drift off format at temperature 2.0; 1.0 with top_p 0.9 still varies the queries.
GENERAL_SAMPLE = Sampling(temperature=1.0, top_p=0.9, max_tokens=MAX_TOKENS)

QUERIES_SYSTEM = """\
You write search queries for an academic paper search engine.
Answer with the queries only, one per line, each line written as `[Search] <query>`, at most {limit} \
queries, and end with the line `[StopSearch]`. No numbering, quotes, explanations or other text.
Example answer:
[Search] graph neural networks for molecular property prediction
[Search] survey of molecular representation learning
[StopSearch]"""

SECTIONS_SYSTEM = """\
You decide which sections of a paper to read to find more relevant papers among the ones it cites.
Answer with the chosen sections only, one per line, each line written as `[Expand] <section name>` \
with the name copied exactly from the Sections list, and end with the line `[StopExpand]`. \
If no section is worth reading, answer `[StopExpand]` alone. No explanations or other text.
Example answer:
[Expand] 2 Related Work
[Expand] 1 Introduction
[StopExpand]"""


GENERAL_PROMPTS = prompt_version(QUERIES_SYSTEM, SECTIONS_SYSTEM)


class Crawler(Protocol):
    """Writes search queries and picks sections to expand."""

    name: str

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]: ...

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]: ...


def _check_query(user_query: str, limit: int | None = None) -> None:
    if not user_query.strip():
        raise ValueError("the user query is empty")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def _queries_or_error(output: str, limit: int, name: str) -> list[str]:
    queries = parse_queries(output, limit)
    if not queries:
        raise ModelError(f"crawler {name} wrote no complete [Search] query: {output[:300]!r}")
    return queries


class PasaCrawler:
    """The PaSa crawler checkpoint: one user message holding the exact training prompt."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client
        self.name = f"pasa:{client.model}{client.mode_suffix}"

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        """Greedy by default; `sample=True` is one run of the paper's sampled ensemble."""
        _check_query(user_query, limit)
        messages = [{"role": "user", "content": query_prompt(user_query)}]
        choice = await self.client.chat(messages, PASA_SAMPLE if sample else GREEDY)
        return _queries_or_error(message_text(choice), limit, self.name)

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]:
        """Section names to expand, each one of `names`; [] when there is nothing to choose from.

        `sample=True` samples like `queries` does, for the sampled runs of an ensemble.
        """
        _check_query(user_query)
        if not names:
            return []
        prompt = section_prompt(user_query, paper.title, paper.abstract, names)
        choice = await self.client.chat([{"role": "user", "content": prompt}], PASA_SAMPLE if sample else GREEDY)
        return parse_sections(message_text(choice), names)


class GeneralCrawler:
    """Any OpenAI-compatible instruct model, held to the crawler's output formats by a system message."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client
        self.name = f"general:{client.model}@{GENERAL_PROMPTS}"  # the cache key: model and prompts

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        _check_query(user_query, limit)
        messages = [
            {"role": "system", "content": QUERIES_SYSTEM.format(limit=limit)},
            {"role": "user", "content": query_prompt(user_query)},
        ]
        choice = await self.client.chat(messages, GENERAL_SAMPLE if sample else GREEDY)
        return _queries_or_error(message_text(choice), limit, self.name)

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]:
        _check_query(user_query)
        if not names:
            return []
        messages = [
            {"role": "system", "content": SECTIONS_SYSTEM},
            {"role": "user", "content": section_prompt(user_query, paper.title, paper.abstract, names)},
        ]
        choice = await self.client.chat(messages, GENERAL_SAMPLE if sample else GREEDY)
        return parse_sections(message_text(choice), names)


def build_crawler(settings: Settings, net: Net) -> Crawler:
    """The crawler that `crawler_backend` names, on `crawler_urls`."""
    client = ModelClient.from_settings(settings, net, "crawler")
    return PasaCrawler(client) if settings.crawler_backend == "pasa" else GeneralCrawler(client)


class CachedCrawler:
    """A crawler whose greedy answers are kept in the store: with temperature 0 they are a function of
    (model, inputs), so a repeated search asks the model nothing. Sampled answers (the ensemble's
    extra runs) are never cached: their point is to differ."""

    def __init__(self, crawler: Crawler, store: Store) -> None:
        self.crawler, self.store, self.name = crawler, store, crawler.name

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        ask = functools.partial(self.crawler.queries, user_query, limit=limit)
        return await self._cached(sample, ["queries", user_query, limit], ask)

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]:
        ask = functools.partial(self.crawler.sections, user_query, paper, names)
        return await self._cached(sample, ["sections", user_query, paper.title, paper.abstract, names], ask)

    async def _cached(
        self, sample: bool, question: list[object], ask: Callable[..., Awaitable[list[str]]]
    ) -> list[str]:
        if sample:
            return await ask(sample=True)
        known = await self.store.call(self.store.get_crawler_answer, self.name, question)
        if known is not None:
            return known
        answer = await ask(sample=False)
        await self.store.call(self.store.put_crawler_answer, self.name, question, answer)
        return answer
