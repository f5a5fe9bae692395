"""Papers written out for people and reference managers: Markdown, BibTeX and RIS."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

import bibtexparser
from bibtexparser.middlewares import AddEnclosingMiddleware
from pylatexenc.latexencode import UnicodeToLatexEncoder

from .jobs import Snapshot
from .papers import Paper


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def search_markdown(snap: Snapshot, known: Mapping[str, Paper]) -> str:
    """A deep search's selected papers as Markdown; `known` holds the stored papers by key."""
    selected = snap.result.selected if snap.result else []
    c = snap.counts
    lines = [
        f"# Deep search: {snap.query}",
        "",
        f"Status **{snap.status}**: {c.selected} selected of {c.papers} papers; {c.queries} queries, "
        f"{c.expanded} papers expanded. Search id `{snap.search_id}`.",
        "",
    ]
    for n, found in enumerate(selected, 1):
        paper = known.get(found.key) or Paper(title=found.title, arxiv_id=found.arxiv_id)
        authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
        year = paper.published.year if paper.published else None
        link = f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else paper.url or paper.key
        lines += [
            f"{n}. **{paper.title}** ({authors or 'unknown authors'}, {year or 'n.d.'}) <{link}>",
            f"   score {found.score:.2f}; found by {found.found_by}",
        ]
        if abstract := _trim(paper.abstract, 600):
            lines.append(f"   > {abstract}")
    if snap.result and snap.result.losses:
        lines += ["", "## Losses", *(f"- {loss}" for loss in snap.result.losses)]
    if snap.result and snap.result.failures:
        lines += ["", "## Failures", *(f"- {f}" for f in snap.result.failures)]
    if snap.error:
        lines += ["", f"Note: {snap.error}"]
    return "\n".join(lines) + "\n"


# BibTeX ------------------------------------------------------------------------------------------

MATH = re.compile(r"(?<!\\)\$[^$]+(?<!\\)\$")  # an inline $...$ span: LaTeX already, kept as written
CORPORATE = re.compile(r"\band\b|\b(team|group|consortium|collaboration|project|institute|lab|inc\.?)$", re.I)
_LATEX = UnicodeToLatexEncoder(non_ascii_only=False, unknown_char_policy="keep", replacement_latex_protection="braces")


def _balanced(text: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _text(text: str) -> str:
    # BibTeX counts braces even after a backslash, so a literal brace is written as a command.
    encoded = _LATEX.unicode_to_latex(text)
    return encoded.replace("\\{", "\\textbraceleft{}").replace("\\}", "\\textbraceright{}")


def latex(text: str) -> str:
    """Plain text as LaTeX: special characters escaped, accents encoded, $math$ kept when its braces balance."""
    out, end = [], 0
    for m in MATH.finditer(text):
        if _balanced(m.group()):
            out += [_text(text[end : m.start()]), m.group()]
            end = m.end()
    out.append(_text(text[end:]))
    return "".join(out)


def _bib_name(name: str) -> str:
    """One author; an organisation ("Research and Development Team") is braced so BibTeX keeps it whole."""
    encoded = latex(name)
    return "{" + encoded + "}" if CORPORATE.search(name) or " " not in name.strip() else encoded


def _key_base(paper: Paper) -> str:
    surname = paper.authors[0].split()[-1] if paper.authors else "anon"
    word = next((w for w in re.findall(r"[A-Za-z]+", paper.title) if len(w) > 3), "paper")
    base = unicodedata.normalize("NFKD", f"{surname}{paper.published.year if paper.published else ''}{word}")
    return re.sub(r"[^a-z0-9]", "", base.lower()) or "paper"


def cite_keys(papers: Sequence[Paper]) -> list[str]:
    """Citation keys (surname, year, first long title word): unique in the list, and the same for a paper
    whatever the order of the list, as papers that share a base are told apart in the order of their ids."""
    bases = [_key_base(p) for p in papers]
    groups: dict[str, list[str]] = {}
    for base, paper in zip(bases, papers, strict=True):
        if paper.key not in groups.setdefault(base, []):
            groups[base].append(paper.key)
    keys = []
    for base, paper in zip(bases, papers, strict=True):
        group = sorted(groups[base])
        n = group.index(paper.key)
        keys.append(base if len(group) == 1 else f"{base}{_suffix(n)}")
    return keys


def _suffix(n: int) -> str:
    return chr(ord("a") + n) if n < 26 else str(n + 1)


def _venue(paper: Paper) -> str | None:
    """The journal or proceedings; arXiv itself (as OpenAlex names it) is no venue: such a paper is a preprint."""
    return paper.venue if paper.venue and "arxiv" not in paper.venue.lower() else None


def _link(paper: Paper) -> str:
    return paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else "")


def bibtex(papers: Sequence[Paper]) -> str:
    """BibTeX entries: @article for papers with a venue, @misc (with the arXiv eprint) otherwise.

    Written with bibtexparser; each value is LaTeX with balanced braces, so every entry parses back."""
    library = bibtexparser.Library()
    seen: set[str] = set()
    for paper, key in zip(papers, cite_keys(papers), strict=True):
        if key in seen:
            continue  # the same paper twice
        seen.add(key)
        values = {
            "title": "{" + latex(paper.title) + "}",  # double braces: keep the title's capitals
            "author": " and ".join(_bib_name(a) for a in paper.authors),
            "year": str(paper.published.year) if paper.published else "",
            "journal": latex(_venue(paper) or ""),
            "doi": paper.doi or "",
            "eprint": paper.arxiv_id or "",
            "archiveprefix": "arXiv" if paper.arxiv_id else "",
            "url": _link(paper),
        }
        fields = [bibtexparser.model.Field(name, value) for name, value in values.items() if value]
        library.add(bibtexparser.model.Entry("article" if _venue(paper) else "misc", key, fields))
    format = bibtexparser.BibtexFormat()
    format.indent = "  "
    return bibtexparser.write_string(
        library, unparse_stack=[AddEnclosingMiddleware(False, "{", "{")], bibtex_format=format
    )


# RIS ----------------------------------------------------------------------------------------------


def ris(papers: Sequence[Paper]) -> str:
    """RIS records (Zotero, EndNote, Mendeley import them): JOUR for papers with a venue, else a preprint."""
    records = []
    for paper in {p.key: p for p in papers}.values():
        lines = [("TY", "JOUR" if _venue(paper) else "UNPB"), ("TI", paper.title)]
        lines += [("AU", author) for author in paper.authors]
        if paper.published:
            lines += [("PY", str(paper.published.year)), ("DA", paper.published.strftime("%Y/%m/%d"))]
        lines += [("T2", _venue(paper) or ""), ("DO", paper.doi or ""), ("UR", _link(paper)), ("AB", paper.abstract)]
        if paper.arxiv_id:
            lines.append(("M1", f"arXiv:{paper.arxiv_id}"))
        records.append(
            "".join(f"{tag}  - {' '.join(value.split())}\r\n" for tag, value in lines if value) + "ER  - \r\n"
        )
    return "\r\n".join(records)
