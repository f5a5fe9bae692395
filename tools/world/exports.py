"""The corpus in the two formats its real counterparts publish for bulk use (simulated data):

- arXiv's metadata snapshot: JSON lines, one arXiv paper a line (`id`, `title`, `abstract`,
  `authors`, `authors_parsed`, `categories`, `doi`, `journal-ref`, `comments`, `versions`,
  `update_date`, ...), as `python -m tools.world --snapshot-out FILE` writes it;
- the PaSa paper database: a zip of JSON members named by PaSa's title key, each with `title`,
  `abstract` and `sections` (section key -> the cited titles as the paper writes them), and
  `id2paper.json` (arXiv id -> title), as `--pasa-db-out ZIP ID2PAPER` writes them. Every arXiv paper
  of the corpus is in it, its sections keyed as the PROTOCOL section map keys them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from pasa_mcp.papers import title_key

from .corpus import Corpus, Paper
from .layout import Layout, layout_of


def snapshot_line(paper: Paper) -> dict[str, object]:
    dates = [paper.published] + ([paper.updated] if paper.updated and paper.versions > 1 else [])
    versions = [
        {"version": f"v{n}", "created": when.strftime("%a, %-d %b %Y %H:%M:%S GMT")}
        for n, when in enumerate(dates[:1] * (paper.versions - len(dates) + 1) + dates[1:], 1)
    ]
    parsed = []
    for name in paper.authors:
        first, _, last = name.rpartition(" ")
        parsed.append([last, first, ""])
    return {
        "id": paper.arxiv_id,
        "submitter": paper.authors[0] if paper.authors else None,
        "authors": ", ".join(paper.authors[:-1]) + (" and " if len(paper.authors) > 1 else "") + paper.authors[-1]
        if paper.authors
        else "",
        "title": paper.title,
        "comments": "Simulated paper (pasa-mcp tools/world)",
        "journal-ref": f"{paper.venue} ({paper.published.year})" if paper.venue else None,
        "doi": paper.doi,
        "report-no": None,
        "categories": " ".join(paper.categories),
        "license": None,
        "abstract": paper.abstract,
        "versions": versions,
        "update_date": (paper.updated or paper.published).date().isoformat(),
        "authors_parsed": parsed,
    }


def write_snapshot(corpus: Corpus, path: Path) -> int:
    """The arXiv papers as a metadata snapshot; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for paper in corpus.papers:
            if paper.arxiv_id:
                f.write(json.dumps(snapshot_line(paper)) + "\n")
                count += 1
    return count


def cited_titles(layout: Layout) -> dict[str, list[str]]:
    """Leaf section keys -> the titles cited there, as written in the bibliography (books included)."""
    found: dict[str, list[str]] = {}
    for s in layout.sections:
        if s.kind != "section":
            continue
        leaves = [(f"{s.heading} {c.heading}", c) for c in s.children] if s.children else [(s.heading, s)]
        for key, node in leaves:
            if titles := list(dict.fromkeys(layout.bib[n - 1].title for n in node.cited())):
                found[key] = titles
    return found


def write_pasa_db(corpus: Corpus, zip_path: Path, id2paper_path: Path) -> int:
    """The arXiv papers as the PaSa paper database and its id map; returns how many papers."""
    ids: dict[str, str] = {}
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for paper in corpus.papers:
            if not paper.arxiv_id:
                continue
            data = {
                "title": paper.title,
                "abstract": paper.abstract,
                "sections": cited_titles(layout_of(corpus, paper)),
            }
            archive.writestr(f"paper_database/{title_key(paper.title)}.json", json.dumps(data))
            ids[paper.arxiv_id] = paper.title
    id2paper_path.write_text(json.dumps(ids), encoding="utf-8")
    return len(ids)
