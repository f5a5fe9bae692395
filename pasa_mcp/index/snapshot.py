"""arXiv's metadata snapshot (JSON lines, one paper a line) into the local index.

Streaming, in transactions of BATCH papers, each committed with the byte offset it reached: an
interrupted import resumes there, and a finished one is not read again unless the file changed.
Importing twice changes nothing (the index skips records whose `update_date` it already has).
Lines are decoded by msgspec into `Line` (only the fields kept, typed): a line whose fields have
other types is counted bad and reported, like one that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from ..categories import in_categories, split_categories
from ..papers import normalize_arxiv_id
from .db import LocalIndex, Record

# Papers per transaction: tantivy's writer queues at most 10,000 documents, so with batches of 5,000
# its threads still have a batch to index while this one decodes and writes the next (with 20,000
# they ran dry during each batch's rows: at 1M papers 17,525-18,846 papers/s, 20,037-21,577 with 5,000).
BATCH = 5_000
READ_BUFFER = 1 << 20  # bytes: reading a line at a time from an 8 KB buffer cost 1.2 us a line, from 1 MB 0.45
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def category_filter(spec: str | None) -> Callable[[Sequence[str]], bool] | None:
    """`cs,stat.ML` -> a test with the search filter's rule (categories.py): any category is `cs` or
    `cs.*`, or exactly `stat.ML`. None keeps all; a bad category is a ValueError naming it."""
    if not spec:
        return None
    wanted = split_categories(spec)
    if not wanted:
        raise ValueError(f"--categories names no category: {spec!r}")
    return lambda categories: in_categories(categories, wanted)


def _created(text: str) -> str | None:
    """`Mon, 2 Apr 2007 19:18:42 GMT` -> `2007-04-02` (the snapshot's version dates)."""
    parts = text.split()
    if len(parts) < 4 or parts[2] not in _MONTHS:
        return None
    try:
        return f"{int(parts[3]):04d}-{_MONTHS[parts[2]]:02d}-{int(parts[1]):02d}"
    except ValueError:
        return None


class _Version(msgspec.Struct):
    created: str = ""


class Line(msgspec.Struct, rename={"journal_ref": "journal-ref"}):
    """The fields of a snapshot line the index keeps (the others are skipped while decoding)."""

    id: str = ""
    title: str | None = None
    abstract: str | None = None
    authors: str | None = None
    authors_parsed: list[list[str]] | None = None
    categories: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    versions: list[_Version] | None = None
    update_date: str | None = None


_decode = msgspec.json.Decoder(Line).decode


def one_line(text: str) -> str:
    """`text` with each run of whitespace as one space, stripped: `" ".join(text.split())`, without
    splitting the usual case (only newlines and single spaces) into words."""
    text = text.replace("\n", " ").strip(" ")
    if "  " not in text and text.isprintable():  # printable: no whitespace but the ASCII space
        return text
    return " ".join(text.split())


def _name(parsed: list[str]) -> str:
    """`[last, first, suffix]` -> `first last` (either alone when the other is empty)."""
    last, first = parsed[0], parsed[1] if len(parsed) > 1 else ""
    return f"{first} {last}" if first and last else first or last


def record(line: Line) -> Record:
    """One snapshot line as an index record; raises ValueError naming what is missing."""
    arxiv_id = normalize_arxiv_id(line.id)
    if arxiv_id is None:
        raise ValueError(f"no valid arXiv id in field 'id': {line.id!r}")
    title = one_line(line.title) if line.title else ""
    if not title:
        raise ValueError(f"{arxiv_id}: no title")
    if line.authors_parsed:
        authors = [_name(a) for a in line.authors_parsed if a]
    else:
        authors = [a.strip() for a in (line.authors or "").replace(" and ", ", ").split(",") if a.strip()]
    published = _created(line.versions[0].created) if line.versions else None
    return Record(
        title=title,
        abstract=one_line(line.abstract) if line.abstract else "",
        arxiv_id=arxiv_id,
        doi=line.doi.split()[0] if line.doi and line.doi.strip() else None,
        authors=authors,
        categories=line.categories.split() if line.categories else [],
        published=published or line.update_date,
        venue=one_line(line.journal_ref) or None if line.journal_ref else None,
        datestamp=line.update_date,
    )


def import_snapshot(
    index: LocalIndex,
    path: Path,
    *,
    categories: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Import the snapshot at `path`; returns counts (read, added, updated, skipped, bad).

    `on_progress(bytes_done, bytes_total)` is called after every batch.
    """
    keep = category_filter(categories)
    stat = path.stat()
    key = f"import-arxiv:{path.resolve()}:{categories or ''}"
    saved = json.loads(index.get_state(key) or "null")
    offset = saved["offset"] if saved and saved["size"] == stat.st_size and saved["mtime"] == stat.st_mtime else 0
    counts = {"read": 0, "added": 0, "updated": 0, "skipped": 0, "bad": 0}
    bad_lines: list[str] = []
    with path.open("rb", buffering=READ_BUFFER) as f:
        f.seek(offset)
        batch: list[Record] = []

        def commit() -> None:
            state = {"offset": offset, "size": stat.st_size, "mtime": stat.st_mtime}
            added, updated = index.add(batch, {key: json.dumps(state)}, bulk=True)
            counts["added"] += added
            counts["updated"] += updated
            counts["skipped"] += len(batch) - added - updated
            batch.clear()
            if on_progress:
                on_progress(offset, stat.st_size)

        for line in f:
            offset += len(line)
            if not line.strip():
                continue
            counts["read"] += 1
            try:
                rec = record(_decode(line))
            except (ValueError, msgspec.DecodeError) as exc:
                counts["bad"] += 1
                if len(bad_lines) < 5:
                    bad_lines.append(str(exc)[:200])
                continue
            if keep is None or keep(rec.categories):
                batch.append(rec)
            if len(batch) >= BATCH:
                commit()
        commit()
    index.finish()
    counts["errors"] = bad_lines  # type: ignore[assignment]
    return counts
