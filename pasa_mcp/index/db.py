"""The local paper index: arXiv's metadata and the PaSa paper database in one SQLite file.

Separate from the store (`index_path`, not `store_path`): it is large, built in bulk by `pasa-mcp
index ...`, and only read by searches. Two parts:

- `index.sqlite3`: the records (papers, PaSa section maps, import and harvest state). It is the truth.
- `index.sqlite3.tantivy/`: a tantivy full-text index over titles and abstracts (BM25, English
  stemming; the title is its own field, so cited titles are matched without the abstracts' long
  posting lists). It is derived: documents carry the paper's row id, `state.indexed_through` says
  up to which row it is committed, and the first write of a process brings it level after an
  interruption (rows a crash left unindexed are added, documents a crash left without a row are
  removed or skipped). New rows' documents go to the writer as the rows are inserted; a bulk import
  commits the text index only every BULK_COMMIT papers, so its tokenising runs in tantivy's thread
  while this one decodes and inserts the next batches.

Tantivy was chosen over SQLite FTS5 by measurement (README, "The local index"): on the same corpus its
OR queries are top-k with block-max WAND (FTS5 ranks every match: seconds for common words), and its
index is a third of the size.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio
import tantivy
from filelock import FileLock, Timeout

from ..categories import in_categories
from ..papers import Paper, Reference, SectionMap, normalize_arxiv_id, normalize_doi, title_key

P = ParamSpec("P")
T = TypeVar("T")
TITLE_BOOST = 2.0  # a title word counts twice an abstract word (as Google-like engines rank)
TITLE_CANDIDATES = 10  # best title matches a cited title is checked against
CATEGORY_CANDIDATES = 2000  # best matches a category-filtered search picks its papers from
WRITER_HEAP = 256_000_000  # bytes tantivy buffers before writing a segment
WRITER_THREADS = 2  # tantivy's indexing threads: tokenising and stemming cost more than all the rest of an import
BULK_COMMIT = 250_000  # papers between text index commits in a bulk import
BULK_CACHE_KB = 262_144  # SQLite page cache of a bulk import: its indexes' pages stay in memory
RELOAD_EVERY = 1.0  # seconds between checks for segments committed by another process
BUSY_TIMEOUT_MS = 60_000
IMPORT_LOCK_WAIT = 10.0  # seconds: another process only holds the import lock for a moment to test it
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to with we our via into "
    "using over under can which what how do does who not".split()
)
_WORD = re.compile(r"[^\W_]+")
_EPOCH = date(1970, 1, 1).toordinal()
_ID_MONTH = re.compile(r"(?:^|/)(\d{2})(0[1-9]|1[0-2])")

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS papers (id INTEGER PRIMARY KEY, arxiv_id TEXT UNIQUE, doi TEXT,"
    " title_key TEXT NOT NULL, title TEXT NOT NULL, abstract TEXT NOT NULL, authors TEXT NOT NULL,"
    " categories TEXT NOT NULL, published TEXT, venue TEXT, datestamp TEXT)",
    "CREATE TABLE IF NOT EXISTS sections (paper_id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Row ids whose tantivy documents must go (replaced or deleted rows), until the next text commit.
    "CREATE TABLE IF NOT EXISTS unindex (id INTEGER PRIMARY KEY)",
]
# Lookups by title and DOI. A bulk import into an empty index builds them once at its end (an
# interrupted one: when the index is next opened), instead of keeping them ordered row by row. Until
# then, readers (an MCP server) do not look up by title key or DOI: without these indexes each lookup
# would read the whole table (a second at a million papers). The import holds `import_lock_path` while
# they are missing, so a process that opens the index meanwhile leaves them to it.
_LOOKUP_INDEXES = {
    "papers_title_key": "CREATE INDEX IF NOT EXISTS papers_title_key ON papers(title_key)",
    "papers_doi": "CREATE INDEX IF NOT EXISTS papers_doi ON papers(doi) WHERE doi IS NOT NULL",
}
_COLUMNS = "id, arxiv_id, doi, title, abstract, authors, categories, published, venue"


def text_index_path(path: Path) -> Path:
    """Where the tantivy index of the index at `path` lives (beside it)."""
    return path.with_name(path.name + ".tantivy")


def import_lock_path(path: Path) -> Path:
    """The lock a first bulk import holds while the lookup indexes are left to its end."""
    return path.with_name(path.name + ".import.lock")


def lookups_built(db: sqlite3.Connection) -> bool:
    """Whether the title-key and DOI lookup indexes exist (a first import builds them at its end)."""
    return _LOOKUP_INDEXES.keys() <= {row[1] for row in db.execute("PRAGMA index_list(papers)")}


@dataclass
class Record:
    """One paper as the index holds it (what the importers produce)."""

    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: str | None = None  # YYYY-MM-DD: the first version's date
    venue: str | None = None
    datestamp: str | None = None  # when the source last changed it (OAI datestamp, update_date)
    sections: dict[str, list[str]] | None = None  # PaSa section map: section name -> cited titles


def query_words(text: str) -> list[str]:
    """The words of a query worth matching, lower case, each once: stop words dropped (unless that is all)."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=False, tokenizer_name="en_stem", index_option="freq")
    builder.add_text_field("abstract", stored=False, tokenizer_name="en_stem", index_option="freq")
    builder.add_integer_field("rid", stored=True, indexed=True, fast=True)
    builder.add_integer_field("day", stored=False, indexed=False, fast=True)  # published, days since 1970
    return builder.build()


class LocalIndex:
    """The index: one writer at a time (import, harvest), any number of readers (searches)."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        self.text_path = text_index_path(self.path)
        if not create and not self.path.exists():
            raise FileNotFoundError(
                f"no local index at {self.path}: build one with `pasa-mcp index import-arxiv`,"
                " `index harvest` or `index import-pasa`"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._lock = threading.RLock()
        self._import_lock = FileLock(import_lock_path(self.path), thread_local=False)
        with self.write():
            for statement in _SCHEMA:
                self.db.execute(statement)
            if not self._import_running():  # lookups an interrupted import left undone are built now
                for statement in _LOOKUP_INDEXES.values():
                    self.db.execute(statement)
        self.text_path.mkdir(exist_ok=True)  # only once the rows' file is known good: a bad path leaves nothing
        self.schema = _schema()
        self.text = tantivy.Index(self.schema, path=str(self.text_path), reuse=True)
        self._writer: tantivy.IndexWriter | None = None
        self._fed_through = self._committed_through = 0  # last row id given to the writer / committed
        self._unindexed: list[int] = []  # row ids whose documents the writer was told to delete
        self._reloaded = 0.0
        self._lookups_checked, self._lookups_ready = 0.0, True  # the lookup indexes, as last checked
        self._limiter = anyio.CapacityLimiter(1)

    async def call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a method in a worker thread (one at a time: the SQLite connection is shared)."""
        return await anyio.to_thread.run_sync(lambda: method(*args, **kwargs), limiter=self._limiter)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None
        self._import_lock.release(force=True)
        self.db.close()

    def _import_running(self) -> bool:
        """Whether a first bulk import (this process's or another's) is under way, leaving the lookups to its end."""
        if self._import_lock.is_locked:
            return True
        try:
            self._import_lock.acquire(blocking=False)
        except Timeout:
            return True
        self._import_lock.release()
        return False

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One SQLite write transaction (BEGIN IMMEDIATE: concurrent writers queue)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # Writing ---------------------------------------------------------------------------------

    def add(
        self, records: Sequence[Record], state: dict[str, str | None] | None = None, *, bulk: bool = False
    ) -> tuple[int, int]:
        """Insert new papers and replace changed ones, then index them: (added, updated).

        A record whose arXiv id is known replaces the row unless its datestamp is the same, so
        importing a file twice changes nothing. `state` (resumption points) commits with the rows.
        With `bulk` (records with arXiv ids: a snapshot), the text index is committed only every
        BULK_COMMIT papers (and by `finish()`): searches see the new papers later, and a crash costs
        re-indexing them from the rows. A bulk import into an empty index also leaves the title and
        DOI lookup indexes to `finish()` (about a fifth of its rows' cost at 1M papers); until then no
        lookup is made by title key or DOI (`_lookups`).
        """
        writer = self._text_writer()  # first: it brings the text index level with rows from before
        if bulk:  # until finish(): a large page cache, and no fsync per checkpoint (see finish)
            self.db.execute(f"PRAGMA cache_size = -{BULK_CACHE_KB}")
            self.db.execute("PRAGMA synchronous = OFF")
        with self.write():
            if bulk and self.db.execute("SELECT NOT EXISTS (SELECT 1 FROM papers)").fetchone()[0]:
                self._import_lock.acquire(timeout=IMPORT_LOCK_WAIT)  # in the transaction: openers check it in theirs
                for name in _LOOKUP_INDEXES:
                    self.db.execute(f"DROP INDEX IF EXISTS {name}")
                self._lookups_checked = 0.0
            added, updated, docs, gone = self._add_rows(records)
            for key, value in (state or {}).items():
                self._set_state(key, value)
        self._feed(writer, docs, gone)
        if not bulk or self._fed_through - self._committed_through >= BULK_COMMIT:
            self.commit_text()
        return added, updated

    def _add_rows(self, records: Sequence[Record]) -> tuple[int, int, list[tuple[Any, ...]], list[int]]:
        """The rows of `records` written: (added, updated, the new rows' documents, row ids gone)."""
        known = self._known(records)
        changes: list[tuple[int | None, Record]] = []  # (old row id or None, record)
        for r in records:
            old = known.get(_identity(r))
            if old is not None and old[1] == r.datestamp and r.datestamp is not None and r.sections is None:
                continue  # unchanged
            changes.append((old[0] if old else None, r))
        gone = [old for old, _ in changes if old is not None]
        # A changed paper gets a new row (indexing it is then a plain append); its old row goes.
        self.db.executemany("DELETE FROM papers WHERE id = ?", [(i,) for i in gone])
        self.db.executemany("INSERT OR IGNORE INTO unindex VALUES (?)", [(i,) for i in gone])
        first = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM papers").fetchone()[0]
        first = max(first, int(self._get_state("indexed_through") or 0) + 1)
        rows = [(first + n, *_row(r)) for n, (_, r) in enumerate(changes)]
        self.db.executemany(
            "INSERT INTO papers (id, arxiv_id, doi, title_key, title, abstract, authors, categories, published,"
            " venue, datestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for n, (old, r) in enumerate(changes):
            if r.sections is not None:
                self.db.execute("INSERT OR REPLACE INTO sections VALUES (?, ?)", (first + n, json.dumps(r.sections)))
            elif old is not None:  # a metadata update keeps the paper's section map
                self.db.execute("UPDATE sections SET paper_id = ? WHERE paper_id = ?", (first + n, old))
        self.db.executemany("DELETE FROM sections WHERE paper_id = ?", [(i,) for i in gone])
        # (id, title, abstract, published, arxiv_id) as the text index takes them
        docs = [(row[0], row[4], row[5], row[8], row[1]) for row in rows]
        return len(changes) - len(gone), len(gone), docs, gone

    def _known(self, records: Sequence[Record]) -> dict[str, tuple[int, str | None]]:
        """Identity -> (row id, datestamp) of the records already here."""
        known: dict[str, tuple[int, str | None]] = {}
        ids = [r.arxiv_id for r in records if r.arxiv_id]
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            for row_id, arxiv_id, stamp in self.db.execute(
                f"SELECT id, arxiv_id, datestamp FROM papers WHERE arxiv_id IN ({marks})", chunk
            ):
                known[f"arxiv:{arxiv_id}"] = (row_id, stamp)
        for r in records:
            if not r.arxiv_id:  # PaSa papers without an arXiv id are known by title key
                sql = "SELECT id, datestamp FROM papers WHERE title_key = ? AND arxiv_id IS NULL"
                if row := self.db.execute(sql, (title_key(r.title),)).fetchone():
                    known[_identity(r)] = (row[0], row[1])
        return known

    def delete(self, arxiv_ids: Iterable[str]) -> int:
        """Remove papers withdrawn at the source; returns how many were here."""
        writer = self._text_writer()
        gone = []
        with self.write():
            for arxiv_id in arxiv_ids:
                row = self.db.execute("SELECT id FROM papers WHERE arxiv_id = ?", (arxiv_id,)).fetchone()
                if row:
                    self.db.execute("DELETE FROM papers WHERE id = ?", row)
                    self.db.execute("DELETE FROM sections WHERE paper_id = ?", row)
                    self.db.execute("INSERT OR IGNORE INTO unindex VALUES (?)", row)
                    gone.append(row[0])
        self._feed(writer, [], gone)
        self.commit_text()
        return len(gone)

    def _text_writer(self) -> tantivy.IndexWriter:
        """This process's text index writer, fed everything the rows hold that the index lacks.

        Documents past `indexed_through` come from a commit whose rows were never marked (or from
        rows a crash left unindexed): they are removed and the rows from there on added again; the
        documents of rows in `unindex` (replaced or deleted) are removed. A text index that was
        removed (empty, though rows were indexed) is built again from every row.
        """
        if self._writer is not None:
            return self._writer
        try:
            writer = self.text.writer(heap_size=WRITER_HEAP, num_threads=WRITER_THREADS)
        except ValueError as exc:
            busy = f"the local index at {self.path} is being written by another process ({exc})"
            raise RuntimeError(busy) from None
        through = int(self._get_state("indexed_through") or 0)
        if through and self.text.searcher().num_docs == 0:
            through = 0
        self._committed_through = self._fed_through = through
        self._unindexed = []
        writer.delete_documents_by_query(
            tantivy.Query.range_query(self.schema, "rid", tantivy.FieldType.Integer, through + 1, None)
        )
        self._writer = writer
        gone = [row[0] for row in self.db.execute("SELECT id FROM unindex")]
        cursor = self.db.execute(
            "SELECT id, title, abstract, published, arxiv_id FROM papers WHERE id > ? ORDER BY id", (through,)
        )
        while docs := cursor.fetchmany(10_000):
            self._feed(writer, docs, gone)
            gone = []
        self._feed(writer, [], gone)
        return writer

    def _feed(self, writer: tantivy.IndexWriter, docs: Sequence[tuple[Any, ...]], gone: Sequence[int]) -> None:
        """Give the writer the documents of new rows (id, title, abstract, published, arxiv_id) and the
        deletions of gone rows. If this is interrupted, the writer is dropped with what it was fed since
        its last commit, and the next write feeds it again from the rows."""
        try:
            for row_id in gone:
                writer.delete_documents_by_term("rid", row_id)
            add = writer.add_document
            Document = tantivy.Document
            for row_id, title, abstract, published, arxiv_id in docs:
                add(Document(rid=row_id, title=title, abstract=abstract, day=_day(published, arxiv_id)))
        except BaseException:
            self._drop_writer()
            raise
        self._unindexed.extend(gone)
        if docs:
            self._fed_through = max(self._fed_through, docs[-1][0])

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.rollback()
            self._writer.wait_merging_threads()
            self._writer = None

    def commit_text(self) -> None:
        """Commit what the writer was fed, then mark it in the rows' state."""
        if self._writer is None or (self._fed_through == self._committed_through and not self._unindexed):
            return
        try:
            self._writer.commit()
        except BaseException:
            self._drop_writer()
            raise
        with self.write():
            self._set_state("indexed_through", str(self._fed_through))
            self.db.executemany("DELETE FROM unindex WHERE id = ?", [(i,) for i in self._unindexed])
        self._committed_through = self._fed_through
        self._unindexed = []
        self._reloaded = 0.0  # this process's next search sees what it just committed

    def finish(self) -> None:
        """Commit the text index, wait for its background merges and release the writer (end of an import).

        A bulk import writes its rows without syncing them (5-12% of its time at 1M papers went to
        the syncs of SQLite's checkpoints): a crash of the process loses nothing, a power cut in the
        middle of one can leave the file to be imported again. Here the rows are synced once, so an
        import that has finished is as durable as any other write."""
        self.commit_text()
        with self.write():  # while tantivy merges its segments in its own thread
            for statement in _LOOKUP_INDEXES.values():
                self.db.execute(statement)
        self._import_lock.release(force=True)
        self._lookups_checked = 0.0
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # under NORMAL: the log, then the file, synced

    def get_state(self, key: str) -> str | None:
        return self._get_state(key)

    def _get_state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str | None) -> None:
        with self.write():
            self._set_state(key, value)

    def _set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    # Reading ---------------------------------------------------------------------------------

    def _lookups(self) -> bool:
        """Whether the title-key and DOI indexes exist (checked at most every RELOAD_EVERY seconds)."""
        if time.monotonic() - self._lookups_checked > RELOAD_EVERY:
            self._lookups_ready = lookups_built(self.db)
            self._lookups_checked = time.monotonic()
        return self._lookups_ready

    def _searcher(self) -> tantivy.Searcher:
        if time.monotonic() - self._reloaded > RELOAD_EVERY:
            self.text.reload()
            self._reloaded = time.monotonic()
        return self.text.searcher()

    def _hits(self, query: tantivy.Query, limit: int) -> list[Paper]:
        """The rows of the best `limit` documents, best first (documents without a row are skipped)."""
        searcher = self._searcher()
        hits = searcher.search(query, limit + 5, count=False).hits
        ids = [searcher.doc(address)["rid"][0] for _, address in hits]
        rows = _rows_by_id(self.db, ids)
        return [_paper(rows[i]) for i in ids if i in rows][:limit]

    def _text_query(self, words: Sequence[str], fields: list[str], *, every: bool) -> tantivy.Query:
        boosts = {"title": TITLE_BOOST} if len(fields) > 1 else None
        return self.text.parse_query(" ".join(words), fields, field_boosts=boosts, conjunction_by_default=every)

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        before: date | None = None,
        after: date | None = None,
        categories: Sequence[str] = (),
    ) -> list[Paper]:
        """Papers ranked by BM25 over title and abstract (title words weigh TITLE_BOOST) for any of the
        query's words, published before `before` and from `after` when given.

        With `categories`, the best CATEGORY_CANDIDATES matches are read and those listed in any of
        them kept (the categories live in the rows, not in the text index)."""
        words = query_words(query)
        if not words:
            raise ValueError(f"search query has no words to search for: {query!r}")
        q = self._text_query(words, ["title", "abstract"], every=False)
        if before is not None or after is not None:
            lower = after.toordinal() - _EPOCH if after else None
            upper = before.toordinal() - _EPOCH if before else None
            days = tantivy.Query.range_query(
                self.schema, "day", tantivy.FieldType.Integer, lower, upper, include_upper=False
            )
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), (tantivy.Occur.Must, days)])
        if not categories:
            return self._hits(q, limit)
        hits = self._hits(q, max(CATEGORY_CANDIDATES, limit))
        return [p for p in hits if in_categories(p.categories, categories)][:limit]

    def papers_by_arxiv(self, arxiv_ids: Iterable[str]) -> dict[str, Paper]:
        """Papers by arXiv id (any form `normalize_arxiv_id` reads), keyed by the id asked for."""
        wanted = {raw: normalize_arxiv_id(raw) or raw for raw in arxiv_ids}
        by_id: dict[str, Paper] = {}
        for chunk in _chunks(sorted(set(wanted.values())), 900):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT {_COLUMNS} FROM papers WHERE arxiv_id IN ({marks})", chunk):
                by_id[row[1]] = _paper(row)
        return {raw: by_id[i] for raw, i in wanted.items() if i in by_id}

    def paper_by_doi(self, doi: str) -> Paper | None:
        if not self._lookups():
            return None
        row = self.db.execute(f"SELECT {_COLUMNS} FROM papers WHERE doi = ? LIMIT 1", (normalize_doi(doi),)).fetchone()
        return _paper(row) if row else None

    def paper_by_title_key(self, key: str) -> Paper | None:
        if not self._lookups():
            return None
        row = self.db.execute(f"SELECT {_COLUMNS} FROM papers WHERE title_key = ? LIMIT 1", (key,)).fetchone()
        return _paper(row) if row else None

    def title_candidates(self, title: str, limit: int = TITLE_CANDIDATES) -> list[Paper]:
        """Papers whose title is or may be `title`: the exact title key, else the best title matches
        (titles with all of its words, or, for a typo or a dropped word, any of them by BM25)."""
        sql = f"SELECT {_COLUMNS} FROM papers WHERE title_key = ?"
        rows = self.db.execute(sql, (title_key(title),)).fetchall() if self._lookups() else []
        if rows:
            return [_paper(row) for row in rows]
        words = query_words(title)
        if not words:
            return []
        return self._hits(self._text_query(words, ["title"], every=True), limit) or self._hits(
            self._text_query(words, ["title"], every=False), limit
        )

    def reference_candidates(self, text: str, limit: int = TITLE_CANDIDATES) -> list[Paper]:
        """Papers whose titles share the most telling words with a whole bibliography entry (authors,
        title, venue and year in one string); the caller checks them."""
        words = [w for w in query_words(text) if not w.isdigit()][:64]
        return self._hits(self._text_query(words, ["title"], every=False), limit) if words else []

    def section_map(self, paper: Paper) -> SectionMap | None:
        """The PaSa database's section map of a paper (cited titles per section), or None."""
        if paper.arxiv_id:
            sql, arg = "p.arxiv_id = ?", paper.arxiv_id
        elif self._lookups():
            sql, arg = "p.title_key = ?", paper.title_key
        else:
            return None
        row = self.db.execute(
            f"SELECT s.data FROM sections s JOIN papers p ON p.id = s.paper_id WHERE {sql} LIMIT 1", (arg,)
        ).fetchone()
        if row is None:
            return None
        data: dict[str, list[str]] = json.loads(row[0])
        return SectionMap(
            origin="pasa_db",
            sections={name: [Reference(title=t) for t in titles if t.strip()] for name, titles in data.items()},
        )

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM papers").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        """Counts, the newest dates, the harvest state and the size on disk."""
        one = self.db.execute
        papers, with_id, dois = one("SELECT count(*), count(arxiv_id), count(doi) FROM papers").fetchone()
        files = [*self.path.parent.glob(self.path.name + "*"), *self.text_path.glob("*")]
        return {
            "path": str(self.path),
            "papers": papers,
            "arxiv_papers": with_id,
            "with_doi": dois,
            "text_documents": self._searcher().num_docs,  # papers the full-text index holds (as last committed)
            "lookups_ready": self._lookups(),
            "with_sections": one("SELECT count(*) FROM sections").fetchone()[0],
            "newest_published": one("SELECT max(published) FROM papers").fetchone()[0],
            "harvests": {
                key.removeprefix("harvest:"): json.loads(value)
                for key, value in one("SELECT key, value FROM state WHERE key LIKE 'harvest:%'")
            },
            "bytes": sum(p.stat().st_size for p in files if p.is_file()),
        }


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _rows_by_id(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, Sequence[Any]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {row[0]: row for row in db.execute(f"SELECT {_COLUMNS} FROM papers WHERE id IN ({marks})", list(ids))}


def _day(published: str | None, arxiv_id: str | None) -> int:
    """Days since 1970 of the publication date; without one, the first of the month its arXiv id names."""
    if published and (day := _date_day(published)) is not None:
        return day
    if arxiv_id and (m := _ID_MONTH.search(arxiv_id)):
        yy, mm = int(m.group(1)), int(m.group(2))
        return date(1900 + yy if yy >= 91 else 2000 + yy, mm, 1).toordinal() - _EPOCH
    return 0


@lru_cache(maxsize=65_536)  # papers share their dates: an import parses each once
def _date_day(text: str) -> int | None:
    try:
        return date.fromisoformat(text).toordinal() - _EPOCH
    except ValueError:
        return None


def _identity(r: Record) -> str:
    return f"arxiv:{r.arxiv_id}" if r.arxiv_id else f"title:{title_key(r.title)}"


def _row(r: Record) -> tuple[Any, ...]:
    return (
        r.arxiv_id,
        r.doi,
        title_key(r.title),
        r.title,
        r.abstract,
        "\x1f".join(r.authors),
        " ".join(r.categories),
        r.published,
        r.venue,
        r.datestamp,
    )


def _paper(row: Sequence[Any]) -> Paper:
    _, arxiv_id, doi, title, abstract, authors, categories, published, venue = row
    return Paper(
        title=title,
        abstract=abstract,
        arxiv_id=arxiv_id,
        doi=doi,
        authors=authors.split("\x1f") if authors else [],
        published=date.fromisoformat(published) if published else None,
        venue=venue,
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        sources=["local"],
        categories=categories.split(),
    )
