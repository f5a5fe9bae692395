"""The PaSa prompts (shipped byte for byte as package data) and the crawler's output parsers.

See PROTOCOL sections 1, 2 and 4: the checkpoints only work well on exactly these inputs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from functools import cache
from importlib.resources import files

from .papers import title_key

_SEARCH = re.compile(r"Search\](.*?)\[", re.DOTALL)
_EXPAND = re.compile(r"Expand\](.*?)\[", re.DOTALL)


@cache
def prompts() -> dict[str, str]:
    """The four templates: generate_query, select_section, get_selected, get_value."""
    return json.loads(files("pasa_mcp").joinpath("data/agent_prompt.json").read_text(encoding="utf-8"))


def prompt_version(*texts: str) -> str:
    """A short digest of the prompts a general backend sends besides the templates.

    It is part of that backend's cache key, so cached answers and scores given to other prompts are
    never reused when the prompts change.
    """
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:8]


def query_prompt(user_query: str) -> str:
    return prompts()["generate_query"].format(user_query=user_query).strip()


def section_prompt(user_query: str, title: str, abstract: str, sections: Iterable[str]) -> str:
    return prompts()["select_section"].format(
        user_query=user_query, title=title, abstract=abstract, sections=render_sections(sections)
    )


def selector_prompt(user_query: str, title: str, abstract: str) -> str:
    return prompts()["get_selected"].format(title=title, abstract=abstract, user_query=user_query)


def render_sections(names: Iterable[str]) -> str:
    """Section names as the crawler saw them in training: a JSON list."""
    return json.dumps(list(names))


def parse_queries(output: str, limit: int) -> list[str]:
    """`[Search] q` lines -> at most `limit` distinct non-empty queries, in order.

    A last query with no following `[` was cut off at the token limit and is dropped (as upstream).
    """
    queries: list[str] = []
    for raw in _SEARCH.findall(output):
        query = " ".join(raw.split())
        if query and query not in queries:
            queries.append(query)
    return queries[:limit]


def parse_sections(output: str, available: Iterable[str]) -> list[str]:
    """`[Expand] name` lines -> names that are keys of the section map, in order, each once.

    An exact match wins; otherwise a letters-only, lower-case match against one available name.
    """
    names = list(available)
    by_letters: dict[str, str | None] = {}
    for name in names:
        key = title_key(name)
        by_letters[key] = None if key in by_letters else name  # ambiguous keys never match
    chosen: list[str] = []
    for raw in _EXPAND.findall(output):
        wanted = raw.strip()
        name = wanted if wanted in names else by_letters.get(title_key(wanted))
        if name and name not in chosen:
            chosen.append(name)
    return chosen
