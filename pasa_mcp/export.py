"""Papers written out for people and reference managers: Markdown and BibTeX."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

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
    if snap.result and snap.result.failures:
        lines += ["", "## Failures", *(f"- {f}" for f in snap.result.failures)]
    if snap.error:
        lines += ["", f"Note: {snap.error}"]
    return "\n".join(lines) + "\n"


def _bib_escape(text: str) -> str:
    return re.sub(r"([{}&%$#_])", r"\\\1", text)


def _bib_key(paper: Paper, taken: set[str]) -> str:
    surname = paper.authors[0].split()[-1] if paper.authors else "anon"
    word = next((w for w in re.findall(r"[A-Za-z]+", paper.title) if len(w) > 3), "paper")
    base = unicodedata.normalize("NFKD", f"{surname}{paper.published.year if paper.published else ''}{word}")
    base = re.sub(r"[^a-z0-9]", "", base.lower())
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}{chr(ord('a') + n - 1)}" if n <= 26 else f"{base}{n}"
    taken.add(key)
    return key


def bibtex(papers: Sequence[Paper]) -> str:
    """BibTeX entries: @article for papers with a venue, @misc (with the arXiv eprint) otherwise."""
    taken: set[str] = set()
    entries = []
    for paper in papers:
        fields = {
            "title": "{" + _bib_escape(paper.title) + "}",
            "author": " and ".join(_bib_escape(a) for a in paper.authors),
            "year": str(paper.published.year) if paper.published else "",
            "journal": _bib_escape(paper.venue or ""),
            "doi": paper.doi or "",
            "eprint": paper.arxiv_id or "",
            "archiveprefix": "arXiv" if paper.arxiv_id else "",
            "url": paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else ""),
        }
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items() if value)
        entries.append(f"@{'article' if paper.venue else 'misc'}{{{_bib_key(paper, taken)},\n{body}\n}}")
    return "\n\n".join(entries) + "\n"
