"""The SQLite store: papers (with FTS5), section maps, cached searches and resolutions, selector
scores, and runs with their events.

One file, WAL mode, shared safely by several processes: every write is one `BEGIN IMMEDIATE`
transaction, so concurrent writers queue (busy timeout) instead of losing updates. The methods are
synchronous; async code calls them through `Store.call`, which runs them in a worker thread.

A file SQLite cannot use (full disk, read-only, damaged, a directory, written by a newer version)
raises `StoreError`: one line naming the file and what to do. A failed write rolls back, so nothing
stored before is lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio
import sqlite_utils
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from . import __version__
from .papers import Paper, SectionMap, title_key
from .scrub import scrub

P = ParamSpec("P")
T = TypeVar("T")
BUSY_TIMEOUT_MS = 60_000


class StoreError(Exception):
    """The store's file cannot be used; the message names it and says what to do."""


# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF) that mean the file is unusable.
_FAULTS = {
    8: "is read-only: make the file and its folder writable, or set PASA_STORE_PATH to a writable file",
    10: "could not be read or written (I/O error): check its disk, or set PASA_STORE_PATH to another file",
    11: "is damaged: move it aside (a new store is made) or restore a copy; `sqlite3 FILE .recover` may save it",
    13: "is full (no space left on its disk, or a size limit): free space there, or set PASA_STORE_PATH "
    "to a file on another disk; nothing stored before is lost",
    14: "cannot be opened: its folder must exist and be writable, or set PASA_STORE_PATH to another file",
    26: "is not an SQLite database: move it aside (a new store is made), or set PASA_STORE_PATH to another file",
}


def store_fault(path: Path, exc: sqlite3.Error) -> StoreError | None:
    """The StoreError an SQLite error means for the file at `path`, or None for other errors (e.g. busy)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == 14 and path.is_dir():
        return StoreError(f"the store {path} is a directory, not a file: set PASA_STORE_PATH to a file path")
    if code not in _FAULTS:
        return None
    return StoreError(f"the store {path} {_FAULTS[code]} (SQLite: {exc})")


def _json(data: Any) -> str:
    """A run's data as stored: JSON with every known secret masked (a remote may echo a key into an error)."""
    return scrub(json.dumps(data, default=str))


def index_fault(path: Path, exc: Exception) -> StoreError:
    """The StoreError for a local paper index that cannot be opened (a directory, damaged, unreadable)."""
    why = getattr(exc, "strerror", None) or exc
    return StoreError(
        f"the local index {path} cannot be used ({why}): move it aside, or set PASA_INDEX_PATH to another file"
    )


_M001 = [
    "CREATE TABLE papers (key TEXT PRIMARY KEY, arxiv_id TEXT, doi TEXT, title_key TEXT NOT NULL,"
    " title TEXT NOT NULL, abstract TEXT NOT NULL, data TEXT NOT NULL, updated REAL NOT NULL)",
    "CREATE INDEX papers_arxiv_id ON papers(arxiv_id)",
    "CREATE INDEX papers_doi ON papers(doi)",
    "CREATE INDEX papers_title_key ON papers(title_key)",
    'CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, content="papers", content_rowid="rowid",'
    " tokenize='porter')",
    "CREATE TRIGGER papers_ai AFTER INSERT ON papers BEGIN"
    " INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.rowid, new.title, new.abstract); END",
    "CREATE TRIGGER papers_ad AFTER DELETE ON papers BEGIN"
    " INSERT INTO papers_fts(papers_fts, rowid, title, abstract)"
    " VALUES ('delete', old.rowid, old.title, old.abstract); END",
    "CREATE TRIGGER papers_au AFTER UPDATE ON papers BEGIN"
    " INSERT INTO papers_fts(papers_fts, rowid, title, abstract)"
    " VALUES ('delete', old.rowid, old.title, old.abstract);"
    " INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.rowid, new.title, new.abstract); END",
    "CREATE TABLE section_maps (paper_key TEXT PRIMARY KEY, data TEXT NOT NULL, fetched REAL NOT NULL)",
    "CREATE TABLE searches (source TEXT NOT NULL, query TEXT NOT NULL, before TEXT NOT NULL, lim INTEGER NOT NULL,"
    " keys TEXT NOT NULL, fetched REAL NOT NULL, expires REAL NOT NULL, PRIMARY KEY (source, query, before, lim))",
    "CREATE TABLE resolutions (ref_key TEXT PRIMARY KEY, paper_key TEXT, fetched REAL NOT NULL, expires REAL NOT NULL)",
    "CREATE TABLE scores (id TEXT PRIMARY KEY, model TEXT NOT NULL, query TEXT NOT NULL,"
    " paper_key TEXT NOT NULL, score REAL NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, params TEXT NOT NULL, status TEXT NOT NULL,"
    " created REAL NOT NULL, updated REAL NOT NULL, result TEXT, error TEXT)",
    "CREATE TABLE run_events (run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,"
    " kind TEXT NOT NULL, data TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (run_id, seq))",
]


def _m001_initial(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would commit the migration transaction early.
    for statement in _M001:
        conn.execute(statement)


def _m002_crawler_answers(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE crawler_answers (id TEXT PRIMARY KEY, model TEXT NOT NULL, answer TEXT NOT NULL,"
        " created REAL NOT NULL)"
    )


def _m003_full_texts(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE full_texts (paper_key TEXT PRIMARY KEY, origin TEXT NOT NULL, data TEXT NOT NULL,"
        " fetched REAL NOT NULL)"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial, _m002_crawler_answers, _m003_full_texts]
SCHEMA_VERSION = len(MIGRATIONS)
RUN_STATES = ("running", "finished", "partial", "budget", "failed", "cancelled")


def score_id(model: str, query: str, title: str, abstract: str) -> str:
    """Selector scores are a pure function of (model, query, title, abstract): hash them as the key."""
    return hashlib.sha256(json.dumps([model, query, title, abstract]).encode()).hexdigest()


def _answer_id(model: str, question: list[object]) -> str:
    return hashlib.sha256(json.dumps([model, *question]).encode()).hexdigest()


def _before_key(before: date | None, after: date | None = None) -> str:
    """The dates a search was bounded by, as one key: "END", or "START..END" with a start date."""
    end = before.isoformat() if before else ""
    return f"{after.isoformat()}..{end}" if after else end


class Store:
    """The one SQLite file behind everything pasa-mcp learns."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._open(str(path))
        except sqlite3.Error as exc:
            raise store_fault(self.path, exc) or exc from None
        except OSError as exc:  # creating its folder
            raise StoreError(f"the store {self.path} cannot be created: {exc.strerror or exc}") from None

    def _open(self, path: str) -> None:
        if path != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: this module opens every transaction itself (BEGIN IMMEDIATE).
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Switching a new file to WAL needs it alone for a moment, and SQLite's busy timeout does not
        # cover that: processes opening a new store together would fail with "database is locked".
        for attempt in Retrying(
            retry=retry_if_exception(lambda exc: "locked" in str(exc)),
            stop=stop_after_delay(BUSY_TIMEOUT_MS / 1000),
            wait=wait_random(0.005, 0.05),
            reraise=True,
        ):
            with attempt:
                conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._limiter = anyio.CapacityLimiter(1)
        try:
            self._migrate()
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        self.db.conn.close()

    async def call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store method in a worker thread, so the event loop never blocks on SQLite.

        An error that means the file is unusable comes back as StoreError."""
        try:
            return await anyio.to_thread.run_sync(lambda: method(*args, **kwargs), limiter=self._limiter)
        except sqlite3.Error as exc:
            raise store_fault(self.path, exc) or exc from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
                    conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
            done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
            if unknown := done - {migration.__name__ for migration in MIGRATIONS}:
                raise StoreError(
                    f"the store {self.path} has schema {len(done)} (written by a newer pasa-mcp: "
                    f"{', '.join(sorted(unknown))}); this pasa-mcp ({__version__}) reads schema {SCHEMA_VERSION} "
                    "at most: upgrade pasa-mcp, or set PASA_STORE_PATH to another file"
                )
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(conn)
                    conn.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.__name__, time.time()))

    @property
    def schema_version(self) -> int:
        return self.db.execute("SELECT count(*) FROM _migrations").fetchone()[0]

    # Papers ---------------------------------------------------------------------------------

    def upsert_papers(self, papers: Iterable[Paper]) -> list[Paper]:
        """Insert or merge papers with the records of the same work; returns the merged records."""
        merged: list[Paper] = []
        with self._write() as conn:
            for paper in papers:
                rows = conn.execute(
                    "SELECT key, data FROM papers WHERE arxiv_id = ? OR doi = ? OR title_key = ?",
                    (paper.arxiv_id, paper.doi, paper.title_key),
                ).fetchall()
                record = paper
                for key, data in rows:
                    known = Paper.model_validate_json(data)
                    if known.same_work(record):
                        record = known.merge(record)
                        conn.execute("DELETE FROM papers WHERE key = ?", (key,))
                        if key != record.key:
                            conn.execute(
                                "UPDATE OR IGNORE section_maps SET paper_key = ? WHERE paper_key = ?",
                                (record.key, key),
                            )
                conn.execute(
                    "INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key,
                        record.arxiv_id,
                        record.doi,
                        record.title_key,
                        record.title,
                        record.abstract,
                        record.model_dump_json(),
                        time.time(),
                    ),
                )
                merged.append(record)
        return merged

    def get_paper(self, key: str) -> Paper | None:
        """A paper by key (`arxiv:…`, `doi:…`, `title:…`)."""
        kind, _, value = key.partition(":")
        column = {"arxiv": "arxiv_id", "doi": "doi", "title": "title_key"}.get(kind)
        if column is None:
            raise ValueError(f"not a paper key: {key!r} (expected arxiv:ID, doi:DOI or title:KEY)")
        row = self.db.execute(f"SELECT data FROM papers WHERE {column} = ? LIMIT 1", (value,)).fetchone()
        return Paper.model_validate_json(row[0]) if row else None

    def get_papers(self, keys: Iterable[str]) -> dict[str, Paper]:
        found = {key: self.get_paper(key) for key in keys}
        return {key: paper for key, paper in found.items() if paper is not None}

    def find_by_title(self, title: str) -> Paper | None:
        row = self.db.execute("SELECT data FROM papers WHERE title_key = ? LIMIT 1", (title_key(title),)).fetchone()
        return Paper.model_validate_json(row[0]) if row else None

    def search_papers(self, text: str, limit: int = 10) -> list[Paper]:
        """Full-text search over stored titles and abstracts (FTS5, porter stemming), best first."""
        rows = self.db["papers"].search(text, limit=limit, columns=["data"], quote=True)
        return [Paper.model_validate_json(row["data"]) for row in rows]

    def count_papers(self) -> int:
        return self.db["papers"].count

    # Section maps ---------------------------------------------------------------------------

    def put_section_map(self, paper_key: str, section_map: SectionMap) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO section_maps VALUES (?, ?, ?)",
                (paper_key, section_map.model_dump_json(), time.time()),
            )

    def get_section_map(
        self, paper_key: str, empty_max_age: float = math.inf, incomplete_max_age: float = math.inf
    ) -> SectionMap | None:
        """The stored map; one without sections older than `empty_max_age` seconds, or an incomplete one
        older than `incomplete_max_age`, counts as absent."""
        row = self.db.execute("SELECT data, fetched FROM section_maps WHERE paper_key = ?", (paper_key,)).fetchone()
        if not row:
            return None
        section_map = SectionMap.model_validate_json(row[0])
        age = time.time() - row[1]
        if not section_map.sections and age > empty_max_age:
            return None
        if not section_map.complete and age > incomplete_max_age:
            return None
        return section_map

    # Cached searches and resolutions --------------------------------------------------------

    def put_search(
        self,
        source: str,
        query: str,
        before: date | None,
        limit: int,
        keys: list[str],
        ttl: float,
        after: date | None = None,
    ) -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO searches VALUES (?, ?, ?, ?, ?, ?, ?)",
                (source, query, _before_key(before, after), limit, json.dumps(keys), now, now + ttl),
            )

    def get_search(
        self, source: str, query: str, before: date | None, limit: int, after: date | None = None
    ) -> list[str] | None:
        """Cached result keys of a search, or None when never run or expired."""
        row = self.db.execute(
            "SELECT keys FROM searches WHERE source = ? AND query = ? AND before = ? AND lim = ? AND expires > ?",
            (source, query, _before_key(before, after), limit, time.time()),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put_resolutions(self, resolved: dict[str, str | None], ttl_miss: float, ttl_hit: float) -> None:
        """Remember reference title key -> paper key, misses (None) too, each with its expiry."""
        now = time.time()
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO resolutions VALUES (?, ?, ?, ?)",
                [(ref, key, now, now + (ttl_hit if key else ttl_miss)) for ref, key in resolved.items()],
            )

    def get_resolutions(self, ref_keys: Iterable[str]) -> dict[str, str | None]:
        """The fresh cached resolutions among `ref_keys` (a value of None is a remembered miss)."""
        now = time.time()
        found: dict[str, str | None] = {}
        for ref in set(ref_keys):
            row = self.db.execute(
                "SELECT paper_key FROM resolutions WHERE ref_key = ? AND expires > ?", (ref, now)
            ).fetchone()
            if row:
                found[ref] = row[0]
        return found

    # Selector scores ------------------------------------------------------------------------

    def get_scores(self, model: str, query: str, papers: Iterable[Paper]) -> dict[str, float]:
        """Cached scores by paper key."""
        found = {}
        for paper in papers:
            row = self.db.execute(
                "SELECT score FROM scores WHERE id = ?", (score_id(model, query, paper.title, paper.abstract),)
            ).fetchone()
            if row:
                found[paper.key] = row[0]
        return found

    def put_scores(self, model: str, query: str, scored: Iterable[tuple[Paper, float]]) -> None:
        now = time.time()
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?)",
                [(score_id(model, query, p.title, p.abstract), model, query, p.key, score, now) for p, score in scored],
            )

    # Crawler answers ------------------------------------------------------------------------

    def get_crawler_answer(self, model: str, question: list[object]) -> list[str] | None:
        """A greedy crawler answer (queries or section names) to `question`, if known."""
        row = self.db.execute(
            "SELECT answer FROM crawler_answers WHERE id = ?", (_answer_id(model, question),)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put_crawler_answer(self, model: str, question: list[object], answer: list[str]) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO crawler_answers VALUES (?, ?, ?, ?)",
                (_answer_id(model, question), model, json.dumps(answer), time.time()),
            )

    # Full texts to read ---------------------------------------------------------------------

    def get_full_text(self, paper_key: str) -> tuple[str, dict[str, list[tuple[str, str]]]] | None:
        """(origin, section name -> text blocks) of a paper read before; None if never fetched."""
        row = self.db.execute("SELECT origin, data FROM full_texts WHERE paper_key = ?", (paper_key,)).fetchone()
        if row is None:
            return None
        return row[0], {name: [(k, t) for k, t in blocks] for name, blocks in json.loads(row[1]).items()}

    def put_full_text(self, paper_key: str, origin: str, sections: dict[str, list[tuple[str, str]]]) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO full_texts VALUES (?, ?, ?, ?)",
                (paper_key, origin, json.dumps(sections), time.time()),
            )

    # Runs -----------------------------------------------------------------------------------

    def create_run(self, query: str, params: dict[str, Any], run_id: str | None = None) -> str:
        run_id = run_id or uuid.uuid4().hex[:12]
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, 'running', ?, ?, NULL, NULL)",
                (run_id, scrub(query), _json(params), now, now),
            )
        return run_id

    def add_event(self, run_id: str, kind: str, data: dict[str, Any]) -> int:
        """Append an event to a run; returns its sequence number."""
        with self._write() as conn:
            (seq,) = conn.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM run_events WHERE run_id = ?", (run_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO run_events VALUES (?, ?, ?, ?, ?)",
                (run_id, seq, kind, _json(data), time.time()),
            )
            conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (time.time(), run_id))
        return seq

    def finish_run(self, run_id: str, status: str, result: dict[str, Any] | None, error: str | None = None) -> None:
        if status not in RUN_STATES:
            raise ValueError(f"unknown run status {status!r}")
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, updated = ? WHERE id = ?",
                (status, _json(result) if result is not None else None, error and scrub(error), time.time(), run_id),
            )

    def restart_run(self, run_id: str, stale_before: float) -> bool:
        """Mark a stopped run `running` again (resumed); False if it is running with a heartbeat newer
        than `stale_before` (another process got there first). Its saved result stays until replaced."""
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE runs SET status = 'running', error = NULL, updated = ?"
                " WHERE id = ? AND (status != 'running' OR updated < ?)",
                (time.time(), run_id, stale_before),
            ).rowcount
        return changed == 1

    def set_run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Only a run's status and error: a small in-place write that may succeed where the result would not fit."""
        if status not in RUN_STATES:
            raise ValueError(f"unknown run status {status!r}")
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, error = ?, updated = ? WHERE id = ?",
                (status, error and scrub(error), time.time(), run_id),
            )

    def save_partial(self, run_id: str, result: dict[str, Any]) -> None:
        """Keep a running run's results so far (read back while it runs, and after a crash)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET result = ?, updated = ? WHERE id = ?",
                (_json(result), time.time(), run_id),
            )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, query, params, status, created, updated, result, error FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if not row:
            return None
        names = ("id", "query", "params", "status", "created", "updated", "result", "error")
        run = dict(zip(names, row, strict=True))
        run["params"] = json.loads(run["params"])
        run["result"] = json.loads(run["result"]) if run["result"] else None
        return run

    def run_status(self, run_id: str) -> tuple[str, str | None] | None:
        """A run's status and error, without reading its result."""
        row = self.db.execute("SELECT status, error FROM runs WHERE id = ?", (run_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def run_events(self, run_id: str, after: int = 0) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT seq, kind, data, at FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after)
        ).fetchall()
        return [{"seq": s, "kind": k, "data": json.loads(d), "at": at} for s, k, d, at in rows]

    def list_runs(self, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Runs newest first, with their error and counts (not their whole results)."""
        rows = self.db.execute(
            "SELECT id, query, status, created, updated, error, json_extract(result, '$.counts') FROM runs"
            " ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        names = ("id", "query", "status", "created", "updated", "error", "counts")
        runs = [dict(zip(names, r, strict=True)) for r in rows]
        for run in runs:
            run["counts"] = json.loads(run["counts"]) if run["counts"] else None
        return runs
