"""arXiv's metadata snapshot (JSON lines, one paper a line) into the local index.

Streaming, in transactions of BATCH papers, each committed with the byte offset it reached: an
interrupted import resumes there, and a finished one is not read again unless the file changed.
Importing twice changes nothing (the index skips records whose `update_date` it already has).
Lines are decoded by msgspec into `Line` (only the fields kept, typed): a line whose fields have
other types is counted bad and reported, like one that is not JSON; a file whose first lines are
none of them papers is refused as a whole (not counted as imported).

The file may be the snapshot as Kaggle publishes it (a zip holding the one JSON file) or compressed
with gzip, bzip2 or xz: it is read as a stream, never unpacked to disk (the JSON is 4.6 GB). Offsets
are then counted in the uncompressed stream, and a resumed import reads up to its offset again.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO

import msgspec

from ..categories import in_categories, split_categories
from ..papers import normalize_arxiv_id
from .db import LocalIndex, Record

# Papers per transaction: tantivy's writer queues at most 10,000 documents, so with batches of 5,000
# its threads still have a batch to index while this one decodes and writes the next (with 20,000
# they ran dry during each batch's rows: at 1M papers 17,525-18,846 papers/s, 20,037-21,577 with 5,000).
BATCH = 5_000
READ_BUFFER = 1 << 20  # bytes: reading a line at a time from an 8 KB buffer cost 1.2 us a line, from 1 MB 0.45
SNIFF_LINES = 100  # lines read without a single paper: the file is not a snapshot (a binary, another JSON)
# Containers the snapshot is read from as a stream, by their first bytes.
_STREAMS: dict[bytes, Callable[[BinaryIO], BinaryIO]] = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw),
    b"BZh": lambda raw: bz2.BZ2File(raw),
    b"\xfd7zXZ\x00": lambda raw: lzma.LZMAFile(raw),
}
_UNREADABLE = {
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"\x28\xb5\x2f\xfd": "Zstandard-compressed",
    b"Rar!": "a RAR file",
}
_FORMATS = "JSON lines, or those zipped, gzipped, bzip2- or xz-compressed"
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


def _zip_member(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    """The snapshot inside a zip: its only file, or its only `.json`/`.jsonl` file."""
    files = [m for m in archive.infolist() if not m.is_dir()]
    if len(files) > 1:
        files = [m for m in files if m.filename.lower().endswith((".json", ".jsonl"))]
    if len(files) != 1:
        names = ", ".join(m.filename for m in archive.infolist()[:5]) or "nothing"
        raise ValueError(f"{path}: a zip holding {names}; expected one JSON-lines file (arXiv's snapshot)")
    return files[0]


@contextmanager
def open_snapshot(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """(the snapshot's lines as a buffered stream, the file as read from disk: its position is the progress)."""
    with ExitStack() as stack:
        raw = stack.enter_context(path.open("rb", buffering=READ_BUFFER))
        head = raw.peek(8)[:8]  # type: ignore[attr-defined] (a BufferedReader)
        if head.startswith(b"PK\x03\x04"):
            archive = stack.enter_context(zipfile.ZipFile(raw))
            stream: BinaryIO = stack.enter_context(archive.open(_zip_member(archive, path)))
        elif opener := next((o for magic, o in _STREAMS.items() if head.startswith(magic)), None):
            stream = stack.enter_context(opener(raw))
        elif kind := next((k for magic, k in _UNREADABLE.items() if head.startswith(magic)), None):
            raise ValueError(f"{path} is {kind}: unpack it first (a snapshot is read as {_FORMATS})")
        else:
            yield raw, raw
            return
        # A C-level line reader over the decompressed stream (zipfile's own readline is Python).
        yield stack.enter_context(io.BufferedReader(stream, READ_BUFFER)), raw  # type: ignore[arg-type]


def import_snapshot(
    index: LocalIndex,
    path: Path,
    *,
    categories: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Import the snapshot at `path`; returns counts (read, added, updated, skipped, bad).

    `on_progress(bytes_done, bytes_total)` is called after every batch, in bytes of the file on disk.
    """
    keep = category_filter(categories)
    stat = path.stat()
    key = f"import-arxiv:{path.resolve()}:{categories or ''}"
    saved = json.loads(index.get_state(key) or "null")
    offset = saved["offset"] if saved and saved["size"] == stat.st_size and saved["mtime"] == stat.st_mtime else 0
    counts = {"read": 0, "added": 0, "updated": 0, "skipped": 0, "bad": 0}
    bad_lines: list[str] = []
    with open_snapshot(path) as (f, raw):
        f.seek(offset)
        batch: list[Record] = []
        papers = 0  # lines that are papers, kept or not by the category filter

        def commit(*, last: bool = False) -> None:
            state = {"offset": offset, "size": stat.st_size, "mtime": stat.st_mtime}
            added, updated = index.add(batch, {key: json.dumps(state)}, bulk=True)
            counts["added"] += added
            counts["updated"] += updated
            counts["skipped"] += len(batch) - added - updated
            batch.clear()
            if on_progress:
                # the file's position (a zip's index follows the snapshot in it: the end says done)
                on_progress(stat.st_size if last else raw.tell(), stat.st_size)

        def refuse() -> ValueError:
            return ValueError(
                f"{path} does not read as arXiv's metadata snapshot (JSON lines): none of the"
                f" {counts['read']} lines read is a paper ({bad_lines[0]})"
            )

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
                if not papers and counts["bad"] >= SNIFF_LINES:
                    raise refuse() from None
                continue
            papers += 1
            if keep is None or keep(rec.categories):
                batch.append(rec)
            if len(batch) >= BATCH:
                commit()
        if counts["bad"] and not papers:
            raise refuse()
        commit(last=True)
    index.finish()
    counts["errors"] = bad_lines  # type: ignore[assignment]
    return counts
