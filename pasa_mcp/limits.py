"""How big an input may be: every limit on what a tool call or a command takes, in one place, and
the checks that say which limit an input passed (naming it and the size, never repeating the input).

The MCP server checks every tool call's arguments here before the tool sees them (`check_arguments`),
so that the published schemas stay small; the agent checks the question, the CLI its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

QUESTION_CHARS = 4000  # a research question (the paper's benchmarks: a few hundred at most)
QUERY_CHARS = 500  # a search query
ID_CHARS = 300  # a paper id, arXiv URL, DOI or title; a search id; a section name
TEXT_CHARS = 4000  # any other text argument
URI_CHARS = ID_CHARS + 20  # a resource URI: pasa://paper/ID, pasa://search/ID.bib
ITEMS = 1000  # items in a list argument

# Tool arguments with a limit of their own; any other text argument may be TEXT_CHARS long.
ARGUMENTS = {
    "question": QUESTION_CHARS,
    "queries": QUERY_CHARS,
    "paper": ID_CHARS,
    "papers": ID_CHARS,
    "sections": ID_CHARS,
    "search_id": ID_CHARS,
    "resume": ID_CHARS,
}


class TooLong(ValueError):
    """An input over its limit; the message names the input, the limit and the size."""


def check_text(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise TooLong(f"{name} is too long: at most {limit} characters, got {len(value)}")


def check_arguments(arguments: Mapping[str, Any]) -> None:
    """Every text argument (and every text in a list argument) within its limit, every list within ITEMS."""
    for name, value in arguments.items():
        limit = ARGUMENTS.get(name, TEXT_CHARS)
        if isinstance(value, str):
            check_text(name, value, limit)
        elif isinstance(value, list):
            if len(value) > ITEMS:
                raise TooLong(f"{name} has too many items: at most {ITEMS}, got {len(value)}")
            for index, item in enumerate(value):
                if isinstance(item, str):
                    check_text(f"{name}[{index}]", item, limit)
