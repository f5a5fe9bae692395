"""The PaSa paper database into the local index: papers with their section maps, expandable offline.

The database is a zip whose members are named by PaSa's title key (letters only, lower case; any
folder and extension in the name are ignored) and hold JSON with `title`, `abstract` and `sections`
(section name -> titles of the works cited there), and `id2paper.json`, which maps arXiv ids to
titles. Papers the id map names get their arXiv id; the others are indexed by title alone.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..papers import normalize_arxiv_id, title_key
from .db import LocalIndex, Record

BATCH = 5_000
MAX_MEMBER = 8 << 20  # bytes: a paper's JSON is a few KB; a larger member is not one (and is not read)
SNIFF_MEMBERS = 100  # members read without a single paper: the zip is not the PaSa database


def _load_id_map(path: Path) -> dict[str, str]:
    """Title key -> arXiv id, from id2paper.json (arXiv id -> title)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8 text
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping arXiv ids to titles")
    by_key: dict[str, str] = {}
    for raw, title in data.items():
        arxiv_id = normalize_arxiv_id(str(raw))
        if arxiv_id and isinstance(title, str) and title_key(title):
            by_key.setdefault(title_key(title), arxiv_id)
    if data and not by_key:
        raise ValueError(f"{path}: maps no arXiv id to a title (expected id2paper.json: {{arXiv id: title}})")
    return by_key


def import_pasa(
    index: LocalIndex, zip_path: Path, id_map_path: Path, on_progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Import the database; returns counts (papers, with_id, sections, bad). Running it again is harmless."""
    ids = _load_id_map(id_map_path)
    counts = {"papers": 0, "with_id": 0, "sections": 0, "bad": 0}
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{zip_path}: not a readable zip file ({exc})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        batch: list[Record] = []
        for n, member in enumerate(members, 1):
            if not counts["papers"] and counts["bad"] >= SNIFF_MEMBERS:
                break
            try:
                if member.file_size > MAX_MEMBER:
                    raise ValueError("too large for a paper")
                data = json.loads(archive.read(member))
                title = " ".join(str(data["title"]).split())
                sections = data.get("sections") or {}
                if not title or not isinstance(sections, dict):
                    raise ValueError("no title, or sections that are not an object")
            except (ValueError, KeyError, TypeError, zipfile.BadZipFile):
                counts["bad"] += 1
                continue
            key = title_key(title) or PurePosixPath(member.filename).stem
            cited = {
                str(name): [str(t) for t in titles if isinstance(t, str)]
                for name, titles in sections.items()
                if isinstance(titles, list)
            }
            batch.append(
                Record(
                    title=title,
                    abstract=" ".join(str(data.get("abstract") or "").split()),
                    arxiv_id=ids.get(key),
                    sections=cited,
                    datestamp="pasa",
                )
            )
            counts["papers"] += 1
            counts["with_id"] += key in ids
            counts["sections"] += bool(cited)
            if len(batch) >= BATCH or n == len(members):
                _merge(index, batch)
                batch.clear()
                if on_progress:
                    on_progress(n, len(members))
    if counts["bad"] and not counts["papers"]:
        raise ValueError(
            f"{zip_path} does not read as PaSa's paper database: none of the {counts['bad']} members read"
            " is a paper's JSON (title, abstract, sections)"
        )
    index.finish()
    return counts


def _merge(index: LocalIndex, batch: list[Record]) -> None:
    """PaSa records add section maps to papers the index has from arXiv (keeping arXiv's metadata)."""
    known = index.papers_by_arxiv([r.arxiv_id for r in batch if r.arxiv_id])
    for r in batch:
        if r.arxiv_id and (paper := known.get(r.arxiv_id)):
            r.abstract = paper.abstract if len(paper.abstract) >= len(r.abstract) else r.abstract
            r.title, r.authors, r.doi, r.venue = paper.title, paper.authors, paper.doi, paper.venue
            r.published = paper.published.isoformat() if paper.published else None
    index.add(batch)
