"""The prompts are the released ones byte for byte; the parsers survive awkward crawler output."""

from __future__ import annotations

import json

from pasa_mcp.protocol import (
    parse_queries,
    parse_sections,
    prompts,
    query_prompt,
    render_sections,
    section_prompt,
    selector_prompt,
)
from tests.conftest import fixture_path


def test_packaged_prompts_are_the_reference_file() -> None:
    shipped = json.loads(fixture_path("..", "pasa", "agent_prompt.json").read_text(encoding="utf-8"))
    assert prompts() == shipped
    assert set(prompts()) == {"generate_query", "select_section", "get_selected", "get_value"}


def test_prompts_fill_their_slots() -> None:
    q = "value-based methods for non-stationary RL, especially with UCB algorithms"
    assert query_prompt(q).endswith(f"User Query: {q}")
    section = section_prompt(q, "A Title", "An abstract.", ["1 Introduction", "2 Related Work"])
    assert section.endswith('Sections: ["1 Introduction", "2 Related Work"]')
    assert f"`{q}`" in section
    selector = selector_prompt(q, "A Title", "An abstract.")
    assert selector.endswith("Decision:")
    assert "Title: A Title\nAbstract: An abstract.\n\nUser Query: " + q in selector


def test_sections_render_as_a_json_list_not_dict_keys() -> None:
    assert render_sections({"1 Intro": [], 'Say "hi"': []}.keys()) == '["1 Intro", "Say \\"hi\\""]'


def test_queries_parse_from_clean_output() -> None:
    out = "[Search] UCB value iteration non-stationary\n[Search] sliding window UCB RL\n[StopSearch]"
    assert parse_queries(out, 5) == ["UCB value iteration non-stationary", "sliding window UCB RL"]


def test_queries_parse_from_awkward_output() -> None:
    out = "[Search]   spaced   out \n\n[Search]spaced out[Search] second\n[Search]  \n[Search] third [StopSearch]"
    # odd spacing collapses, the repeat is dropped, the empty query is dropped
    assert parse_queries(out, 5) == ["spaced out", "second", "third"]


def test_a_query_cut_off_at_the_token_limit_is_dropped() -> None:
    assert parse_queries("[Search] complete one\n[Search] cut off mid-sent", 5) == ["complete one"]


def test_queries_keep_only_the_first_limit() -> None:
    out = "".join(f"[Search] q{i}\n" for i in range(8)) + "[StopSearch]"
    assert parse_queries(out, 5) == [f"q{i}" for i in range(5)]


def test_no_queries_in_chatter() -> None:
    assert parse_queries("I cannot help with that.", 5) == []


SECTIONS = ["1 Introduction", "2 Related Work", "2 Related Work 2.1 Bandits", "3 Method"]


def test_sections_parse_exact_names_in_order() -> None:
    out = "[Expand] 2 Related Work\n[Expand] 1 Introduction\n[StopExpand]"
    assert parse_sections(out, SECTIONS) == ["2 Related Work", "1 Introduction"]


def test_unknown_sections_are_dropped_and_near_names_match_by_letters() -> None:
    out = "[Expand]  2 related work. \n[Expand] 7 Appendix\n[Expand] 3 Method[Expand] 3 Method\n[StopExpand]"
    assert parse_sections(out, SECTIONS) == ["2 Related Work", "3 Method"]


def test_ambiguous_letter_matches_are_refused() -> None:
    names = ["1 Results", "4 Results"]
    assert parse_sections("[Expand] Results\n[StopExpand]", names) == []
    assert parse_sections("[Expand] 4 Results\n[StopExpand]", names) == ["4 Results"]


def test_an_expand_without_closing_tag_is_dropped() -> None:
    assert parse_sections("[Expand] 1 Introduction\n[Expand] 3 Method", SECTIONS) == ["1 Introduction"]


def test_prompt_version_changes_with_any_prompt_so_cached_answers_are_not_reused() -> None:
    from pasa_mcp.protocol import prompt_version

    assert prompt_version("system A", "system B") == prompt_version("system A", "system B")
    assert prompt_version("system A", "system B") != prompt_version("system A", "system B, reworded")
    assert prompt_version("ab", "c") != prompt_version("a", "bc")
