"""BibTeX and RIS for any list of papers: every entry parses back with a BibTeX parser and with
BibTeX's own brace rule, organisations stay one author, math stays math, keys are unique and do not
depend on the order of the list."""

from __future__ import annotations

import re
from datetime import date

import bibtexparser

from pasa_mcp.export import bibtex, cite_keys, latex, ris
from pasa_mcp.papers import Paper

TEAM = Paper(
    title="Sorting in $O(n)$ time {with an unbalanced brace",
    authors=["Research and Development Team", "José Müller", "OpenAI"],
    published=date(2020, 1, 1),
    arxiv_id="2001.00001",
)
ARTICLE = Paper(title="Deep Q & A: 50% of #1_x", authors=["Ada Lovelace"], published=date(2020, 1, 1), venue="J. {ML")
TWIN = Paper(title="Sorting in $O(n)$ time", authors=["R. and D. Team"], published=date(2020, 3, 1), doi="10.1234/ab")


def fields(bib: str) -> dict[str, dict[str, str]]:
    """Entries by key, parsed by bibtexparser; fails on any block it could not parse."""
    library = bibtexparser.parse_string(bib)
    assert not library.failed_blocks, [b.error for b in library.failed_blocks]
    return {e.key: {f.key: f.value for f in e.fields} for e in library.entries}


def bibtex_balanced(value: str) -> bool:
    """BibTeX's own rule: braces balance counting every one, escaped or not."""
    depth = 0
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_every_entry_parses_back_with_balanced_braces() -> None:
    entries = fields(bibtex([TEAM, ARTICLE, TWIN]))
    assert len(entries) == 3
    for entry in entries.values():
        assert all(bibtex_balanced(v) for v in entry.values()), entry
    article = entries["lovelace2020deep"]
    assert article["title"] == r"{Deep Q \& A: 50\% of \#1\_x}"
    assert article["journal"] == r"J. \textbraceleft{}ML"


def test_organisations_stay_one_author_and_math_stays_math() -> None:
    (entry,) = fields(bibtex([TEAM])).values()
    assert entry["author"] == r"{Research and Development Team} and Jos\'e M\"uller and {OpenAI}"
    assert entry["title"] == r"{Sorting in $O(n)$ time \textbraceleft{}with an unbalanced brace}"
    assert "\\$" not in bibtex([TEAM])
    assert latex("a $x_{1}$ b_c") == r"a $x_{1}$ b\_c"


def test_keys_are_unique_and_independent_of_order() -> None:
    papers = [TEAM, ARTICLE, TWIN]
    keys = cite_keys(papers)
    assert len(set(keys)) == 3
    assert dict(zip([p.key for p in papers], keys, strict=True)) == dict(
        zip([p.key for p in reversed(papers)], cite_keys(list(reversed(papers))), strict=True)
    )
    assert re.findall(r"@(\w+)\{(\w+),", bibtex([ARTICLE, TEAM])) == [
        ("article", "lovelace2020deep"),
        ("misc", "team2020sorting"),
    ]
    assert bibtex([TEAM, TEAM]).count("@misc{") == 1  # the same paper twice is one entry


def test_ris_records_one_tag_a_line() -> None:
    text = ris([TEAM, ARTICLE])
    records = text.split("ER  - \r\n")
    assert len(records) == 3 and records[-1] == ""
    first = dict(line.split("  - ", 1) for line in records[0].strip().splitlines() if line)
    assert first["TY"] == "UNPB" and first["TI"] == TEAM.title and first["M1"] == "arXiv:2001.00001"
    assert records[0].count("\r\nAU  - ") == 3 and "AU  - Research and Development Team\r\n" in records[0]
    assert "TY  - JOUR\r\n" in records[1] and "T2  - J. {ML\r\n" in records[1]


def test_arxiv_as_a_venue_is_a_preprint() -> None:
    preprint = Paper(title="A Preprint", authors=["Ada Lovelace"], venue="arXiv (Cornell University)")
    assert bibtex([preprint]).startswith("@misc{") and "journal" not in bibtex([preprint])
    assert ris([preprint]).startswith("TY  - UNPB\r\n") and "T2  - " not in ris([preprint])
