"""The local paper index: snapshot and PaSa database imports, search, local resolution, and the
OAI-PMH harvest against tools/world (a simulation) over real sockets."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import signal
import sqlite3
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from pasa_mcp.cli import app
from pasa_mcp.config import Settings
from pasa_mcp.index import db as db_module
from pasa_mcp.index.db import LocalIndex, Record
from pasa_mcp.index.harvest import harvest
from pasa_mcp.index.pasa_db import import_pasa
from pasa_mcp.index.resolve import LocalResolver
from pasa_mcp.index.snapshot import import_snapshot
from pasa_mcp.net import Net
from pasa_mcp.papers import Reference, title_key
from tools.world import World
from tools.world.corpus import Corpus
from tools.world.exports import cited_titles, write_pasa_db, write_snapshot
from tools.world.layout import layout_of
from tools.world.oai import datestamp, deleted_ids

SEED, PAPERS = 3, 400


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(SEED, PAPERS)


@pytest.fixture
def snapshot(corpus: Corpus, tmp_path: Path) -> Path:
    path = tmp_path / "arxiv-metadata.json"
    write_snapshot(corpus, path)
    return path


def arxiv_papers(corpus: Corpus) -> list:
    return [p for p in corpus.papers if p.arxiv_id]


def test_snapshot_import_is_complete_idempotent_and_resumable(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index.sqlite3")
    counts = import_snapshot(index, snapshot)
    papers = arxiv_papers(corpus)
    assert counts["added"] == len(papers) and counts["bad"] == 0
    old_style = next(p for p in papers if "/" in p.arxiv_id)
    found = index.papers_by_arxiv([old_style.arxiv_id, f"arXiv:{papers[5].arxiv_id}v1"])
    assert found[old_style.arxiv_id].title == old_style.title
    assert found[f"arXiv:{papers[5].arxiv_id}v1"].published == papers[5].published.date()
    # Into an empty index, the lookups by title and DOI were indexed once at the end.
    assert _lookup_indexes(tmp_path / "index.sqlite3") == {"papers_title_key", "papers_doi"}
    assert index.paper_by_title_key(title_key(papers[3].title)).arxiv_id == papers[3].arxiv_id
    # The bulk import wrote without syncing; finished, its rows are synced into the file and the log is empty.
    assert index.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL again
    assert (tmp_path / "index.sqlite3-wal").stat().st_size == 0
    # Again: the finished file is not read again; with its state gone, every record is unchanged.
    assert import_snapshot(index, snapshot)["read"] == 0
    index.set_state(f"import-arxiv:{snapshot.resolve()}:", None)
    again = import_snapshot(index, snapshot)
    assert (again["added"], again["updated"], again["skipped"]) == (0, 0, len(papers))
    assert index.count() == len(papers)
    index.close()


def test_an_interrupted_import_resumes_where_it_stopped(snapshot: Path, tmp_path: Path, monkeypatch) -> None:
    from pasa_mcp.index import snapshot as module

    monkeypatch.setattr(module, "BATCH", 100)
    monkeypatch.setattr(db_module, "RELOAD_EVERY", 0.0)  # the reader checks the lookup indexes on each lookup
    index = LocalIndex(tmp_path / "index.sqlite3")
    reader = LocalIndex(tmp_path / "index.sqlite3")  # a process that had the index open before (an MCP server)
    calls = []

    def stop_after_two(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_snapshot(index, snapshot, on_progress=stop_after_two)
    assert index.count() == 200
    assert _lookup_indexes(tmp_path / "index.sqlite3") == set()  # left to the import's end
    # A process opening the index meanwhile (an MCP server starting) leaves them to the import too.
    LocalIndex(tmp_path / "index.sqlite3").close()
    assert _lookup_indexes(tmp_path / "index.sqlite3") == set()
    row = index.db.execute("SELECT arxiv_id, title_key, doi FROM papers WHERE doi IS NOT NULL LIMIT 1").fetchone()
    # Meanwhile nothing is looked up by title key or DOI (each lookup would read the whole table) ...
    for each in (index, reader):
        statements: list[str] = []
        each.db.set_trace_callback(statements.append)
        assert each.paper_by_title_key(row[1]) is None and each.paper_by_doi(row[2]) is None
        assert each.title_candidates("A title that is nowhere") == []
        assert not [s for s in statements if "title_key =" in s or "doi =" in s]
        each.db.set_trace_callback(None)
    rest = import_snapshot(index, snapshot)
    assert rest["added"] == index.count() - 200 and rest["read"] == rest["added"]
    assert _lookup_indexes(tmp_path / "index.sqlite3") == {"papers_title_key", "papers_doi"}
    # ... and once the import has built the indexes, it is, in every process.
    for each in (index, reader):
        assert each.paper_by_title_key(row[1]).arxiv_id == each.paper_by_doi(row[2]).arxiv_id == row[0]
    reader.close()
    index.close()


def test_lookups_an_import_left_undone_are_built_once_it_is_gone(snapshot: Path, tmp_path: Path, monkeypatch) -> None:
    from pasa_mcp.index import snapshot as module

    monkeypatch.setattr(module, "BATCH", 100)
    index = LocalIndex(tmp_path / "index.sqlite3")
    with pytest.raises(KeyboardInterrupt):
        import_snapshot(index, snapshot, on_progress=lambda done, total: (_ for _ in ()).throw(KeyboardInterrupt))
    index.close()  # the importing process ends (a crash releases its lock the same way)
    assert _lookup_indexes(tmp_path / "index.sqlite3") == set()
    reopened = LocalIndex(tmp_path / "index.sqlite3")
    assert _lookup_indexes(tmp_path / "index.sqlite3") == {"papers_title_key", "papers_doi"}
    row = reopened.db.execute("SELECT arxiv_id, title_key FROM papers LIMIT 1").fetchone()
    assert reopened.paper_by_title_key(row[1]).arxiv_id == row[0]
    reopened.close()


def _lookup_indexes(path: Path) -> set[str]:
    """The indexes on the papers table besides its primary key and arXiv id (a connection of its own)."""
    db = sqlite3.connect(path)
    try:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'papers' AND sql IS NOT NULL"
        return {name for (name,) in db.execute(sql)}
    finally:
        db.close()


def _documents(index: LocalIndex) -> int:
    """Live documents in the committed text index."""
    index.text.reload()
    return index.text.searcher().num_docs


# A bulk import killed (SIGKILL, in its own process) after 3 batches of 100: with the text index
# committed every 150 papers, the kill finds 300 rows, 200 of them indexed and marked; killed inside
# the first text commit's marking, it finds 200 documents committed but none marked.
KILL = """
import os, signal, sys
from pathlib import Path
from pasa_mcp.index import db, snapshot
snapshot.BATCH, db.BULK_COMMIT = 100, 150
index = db.LocalIndex(Path(sys.argv[1]))
calls = []
def progress(done, total):
    calls.append(done)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[3] == "marking":
    mark = db.LocalIndex._set_state
    def die_marking(self, key, value):
        if key == "indexed_through":
            os.kill(os.getpid(), signal.SIGKILL)
        mark(self, key, value)
    db.LocalIndex._set_state = die_marking
snapshot.import_snapshot(index, Path(sys.argv[2]), on_progress=progress)
"""


@pytest.mark.parametrize(("moment", "rows", "documents"), [("after rows", 300, 200), ("marking", 200, 200)])
def test_a_killed_bulk_import_resumes_with_every_paper_indexed_once(
    corpus: Corpus, snapshot: Path, tmp_path: Path, moment: str, rows: int, documents: int
) -> None:
    path = tmp_path / "index.sqlite3"
    killed = subprocess.run(
        [sys.executable, "-c", KILL, str(path), str(snapshot), moment], cwd=Path(__file__).parents[1]
    )
    assert killed.returncode == -signal.SIGKILL
    assert _lookup_indexes(path) == set()  # the import would have built them at its end
    index = LocalIndex(path)
    assert _lookup_indexes(path) == {"papers_title_key", "papers_doi"}  # opening the index builds them
    assert (index.count(), _documents(index)) == (rows, documents)
    rest = import_snapshot(index, snapshot)
    papers = arxiv_papers(corpus)
    assert rest["added"] == len(papers) - rows and index.count() == _documents(index) == len(papers)
    first = papers[0]  # in the first batch: indexed again after the kill, found once
    assert [p.arxiv_id for p in index.search(first.title, limit=3)].count(first.arxiv_id) == 1
    index.close()


def test_an_import_that_fails_while_indexing_indexes_everything_when_run_again(
    corpus: Corpus, snapshot: Path, tmp_path: Path, monkeypatch
) -> None:
    from pasa_mcp.index import db
    from pasa_mcp.index import snapshot as module

    monkeypatch.setattr(module, "BATCH", 100)
    day, calls = db._day, []

    def fail_once(published: str | None, arxiv_id: str | None) -> int:
        calls.append(arxiv_id)
        if len(calls) == 150:  # in the second batch: its rows are written, half its documents fed
            raise OSError("disk full")
        return day(published, arxiv_id)

    monkeypatch.setattr(db, "_day", fail_once)
    index = LocalIndex(tmp_path / "index.sqlite3")
    with pytest.raises(OSError, match="disk full"):
        import_snapshot(index, snapshot)
    assert index.count() == 200 and _documents(index) == 0
    import_snapshot(index, snapshot)
    papers = arxiv_papers(corpus)
    assert index.count() == _documents(index) == len(papers)
    assert index.search(papers[120].title, limit=1)[0].arxiv_id == papers[120].arxiv_id
    index.close()


def test_a_removed_text_index_is_built_again_by_the_next_write(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    paper = arxiv_papers(corpus)[4]
    index = LocalIndex(tmp_path / "index.sqlite3")
    import_snapshot(index, snapshot)
    index.close()
    shutil.rmtree(tmp_path / "index.sqlite3.tantivy")  # a user freeing space, a backup without it, ...
    index = LocalIndex(tmp_path / "index.sqlite3")
    assert index.search(paper.title) == [] and index.stats()["text_documents"] == 0
    assert import_snapshot(index, snapshot)["read"] == 0  # the file is done; the write still indexes every row
    assert index.search(paper.title, limit=1)[0].arxiv_id == paper.arxiv_id
    assert index.stats()["text_documents"] == index.count() == len(arxiv_papers(corpus))
    index.close()


def test_category_filter_and_bad_lines(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    lines = snapshot.read_text().splitlines()
    snapshot.write_text("\n".join([*lines, "{not json", json.dumps({"id": "nonsense", "title": "x"})]) + "\n")
    index = LocalIndex(tmp_path / "index.sqlite3")
    counts = import_snapshot(index, snapshot, categories="cs,hep-th")
    wanted = [p for p in arxiv_papers(corpus) if any(c.startswith("cs.") or c == "hep-th" for c in p.categories)]
    assert counts["added"] == len(wanted) < len(lines)
    assert counts["bad"] == 2 and "nonsense" in " ".join(counts["errors"])
    with pytest.raises(ValueError, match="not an arXiv category: 'machine learning'"):
        import_snapshot(index, snapshot, categories="cs,machine learning")
    index.close()


def _pack(snapshot: Path, kind: str) -> Path:
    """The snapshot as published (Kaggle's zip of the one JSON file) or compressed by a user."""
    data = snapshot.read_bytes()
    if kind == "zip":
        packed = snapshot.with_suffix(".zip")
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("arxiv-metadata-oai-snapshot.json", data)
        return packed
    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}[kind]
    packed = snapshot.with_name(f"{snapshot.name}.{kind}")
    with opener(packed, "wb") as f:
        f.write(data)
    return packed


@pytest.mark.parametrize("kind", ["zip", "gz", "bz2", "xz"])
def test_a_zipped_or_compressed_snapshot_imports_like_the_plain_one(
    corpus: Corpus, snapshot: Path, tmp_path: Path, kind: str
) -> None:
    packed = _pack(snapshot, kind)
    index = LocalIndex(tmp_path / "index.sqlite3")
    progress: list[tuple[int, int]] = []
    counts = import_snapshot(index, packed, on_progress=lambda done, total: progress.append((done, total)))
    papers = arxiv_papers(corpus)
    assert counts["added"] == len(papers) and counts["bad"] == 0
    found = index.papers_by_arxiv([p.arxiv_id for p in papers])
    assert {i: found[i].title for i in found} == {p.arxiv_id: p.title for p in papers}
    assert progress[-1] == (packed.stat().st_size, packed.stat().st_size)  # the whole file read, on disk's scale
    assert import_snapshot(index, packed)["read"] == 0  # finished: not read again
    index.close()


def test_an_interrupted_import_of_a_gzipped_snapshot_resumes(snapshot: Path, tmp_path: Path, monkeypatch) -> None:
    from pasa_mcp.index import snapshot as module

    monkeypatch.setattr(module, "BATCH", 100)
    packed = _pack(snapshot, "gz")
    index = LocalIndex(tmp_path / "index.sqlite3")

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_snapshot(index, packed, on_progress=stop)
    assert index.count() == 100
    rest = import_snapshot(index, packed)
    assert rest["read"] == rest["added"] == index.count() - 100 and rest["skipped"] == 0
    index.close()


def test_a_file_that_is_not_the_snapshot_is_refused_and_not_taken_as_imported(snapshot: Path, tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index.sqlite3")
    other_json = tmp_path / "other.jsonl"
    other_json.write_text("".join(json.dumps({"name": f"row {i}", "value": i}) + "\n" for i in range(5000)))
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    for path, read in [(other_json, 100), (binary, None), (other_json, 100)]:  # refused again: nothing recorded
        with pytest.raises(ValueError, match="does not read as arXiv's metadata snapshot") as refused:
            import_snapshot(index, path)
        assert str(path) in str(refused.value)
        if read is not None:
            assert f"none of the {read} lines read is a paper" in str(refused.value)  # stopped early
    assert index.count() == 0 and index.db.execute("SELECT count(*) FROM state").fetchone()[0] == 0
    seven = tmp_path / "arxiv.7z"
    seven.write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(64))
    with pytest.raises(ValueError, match="arxiv.7z is a 7-Zip archive: unpack it first"):
        import_snapshot(index, seven)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.json", "{}")
        archive.writestr("b.json", "{}")
    with pytest.raises(ValueError, match="a zip holding a.json, b.json; expected one JSON-lines file"):
        import_snapshot(index, two)
    done = CliRunner().invoke(app, ["index", "import-arxiv", str(binary)])
    assert done.exit_code == 2 and "does not read as arXiv's metadata snapshot" in done.output
    index.close()


def test_search_ranks_the_title_and_honours_the_date(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index.sqlite3")
    import_snapshot(index, snapshot)
    paper = arxiv_papers(corpus)[-1]
    hits = index.search(paper.title, limit=5)
    assert hits[0].arxiv_id == paper.arxiv_id
    cutoff = paper.published.date()
    assert all(p.published < cutoff for p in index.search(paper.title, limit=50, before=cutoff))
    assert paper.arxiv_id not in {p.arxiv_id for p in index.search(paper.title, limit=50, before=cutoff)}
    with pytest.raises(ValueError, match="no words"):
        index.search("  ;; ")
    index.close()


def test_titles_and_reference_strings_resolve_locally(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index.sqlite3")
    import_snapshot(index, snapshot)
    local = LocalResolver(index)
    a, b, c = arxiv_papers(corpus)[10:13]
    typo = b.title[:-3] + b.title[-2] + b.title[-3] + b.title[-1]
    refs = [Reference(title=a.title.lower()), Reference(title=typo), Reference(title="A Book Nobody Indexed At All")]
    found = local.resolve(refs)
    assert [p.arxiv_id if p else None for p in found] == [a.arxiv_id, b.arxiv_id, None]
    entry = f"{', '.join(c.authors)}. {c.title}. In Proceedings of Something, {c.published.year}."
    assert local.by_reference_text(entry).arxiv_id == c.arxiv_id
    assert local.by_reference_text("J. Smith. Collected notes, unpublished, 1999.") is None
    index.close()


def test_pasa_database_gives_section_maps_without_requests(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    db, ids = tmp_path / "paper_db.zip", tmp_path / "id2paper.json"
    assert write_pasa_db(corpus, db, ids) == len(arxiv_papers(corpus))
    index = LocalIndex(tmp_path / "index.sqlite3")
    import_snapshot(index, snapshot)
    counts = import_pasa(index, db, ids)
    assert counts["papers"] == counts["with_id"] == len(arxiv_papers(corpus)) and counts["bad"] == 0
    assert index.count() == len(arxiv_papers(corpus))  # merged into the snapshot's records, not added
    paper = next(p for p in arxiv_papers(corpus) if cited_titles(layout_of(corpus, p)))
    got = index.section_map(index.papers_by_arxiv([paper.arxiv_id])[paper.arxiv_id])
    assert got is not None and got.origin == "pasa_db"
    assert got.titles() == cited_titles(layout_of(corpus, paper))
    # The snapshot imported again keeps the section maps.
    index.set_state(f"import-arxiv:{snapshot.resolve()}:", None)
    import_snapshot(index, snapshot)
    assert index.section_map(index.papers_by_arxiv([paper.arxiv_id])[paper.arxiv_id]) == got
    index.close()


def test_files_that_are_not_the_pasa_database_are_refused(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    db, ids = tmp_path / "paper_db.zip", tmp_path / "id2paper.json"
    write_pasa_db(corpus, db, ids)
    index = LocalIndex(tmp_path / "index.sqlite3")
    arxiv_zip = _pack(snapshot, "zip")  # the arXiv snapshot given in the database's place
    with pytest.raises(ValueError, match="arxiv-metadata.zip does not read as PaSa's paper database: none of the 1"):
        import_pasa(index, arxiv_zip, ids)
    many = tmp_path / "pages.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for n in range(150):
            archive.writestr(f"page{n}.html", "<html></html>")
    with pytest.raises(ValueError, match="none of the 100 members read"):  # stopped early
        import_pasa(index, many, ids)
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"2301.00001": "Caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.json: not a readable JSON file"):
        import_pasa(index, db, latin)
    paper = tmp_path / "paper.json"
    paper.write_text(json.dumps({"title": "A paper", "sections": {}}))
    with pytest.raises(ValueError, match="paper.json: maps no arXiv id to a title"):
        import_pasa(index, db, paper)  # the two files swapped, or a paper given for the id map
    assert index.count() == 0
    index.close()


def test_cli_imports_searches_and_reports(corpus: Corpus, snapshot: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["index", "import-arxiv", str(snapshot)])
    assert done.exit_code == 0, done.output
    paper = arxiv_papers(corpus)[7]
    done = runner.invoke(app, ["index", "search", "--json", "--limit", "3", paper.title, "zzzunknownword"])
    assert done.exit_code == 0, done.output
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["hits"][0]["arxiv_id"] == paper.arxiv_id and first["ms"] >= 0
    assert second == {"query": "zzzunknownword", "ms": second["ms"], "hits": []}
    stats = runner.invoke(app, ["index", "stats"])
    assert f"papers = {len(arxiv_papers(corpus))}" in stats.stdout
    bad = runner.invoke(app, ["index", "search", "--before", "June", "x"])
    assert bad.exit_code == 2 and "--before must be a date" in bad.output
    missing = runner.invoke(app, ["index", "import-arxiv", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_search_without_an_index_says_how_to_build_one() -> None:
    done = CliRunner().invoke(app, ["index", "search", "anything"])
    assert done.exit_code == 1 and "pasa-mcp index import-arxiv" in done.output


@pytest.mark.anyio
async def test_harvest_pages_politely_resumes_and_continues_from_its_datestamp(tmp_path: Path) -> None:
    async with World.start(
        seed=SEED, papers=PAPERS, time_scale=0.02, oai_page_size=60, oai_flow_control=4, latency=False
    ) as world:
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        index = LocalIndex(tmp_path / "index.sqlite3")
        gone = deleted_ids(world.corpus)[0][0]
        index.add([Record(title="A Paper Withdrawn Later", arxiv_id=gone, datestamp="2020-01-01")])
        net = Net(settings)
        pages = []

        def interrupt(records: int, deleted: int, total: int | None) -> None:
            pages.append(records)
            if len(pages) == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            await harvest(index, net, settings.arxiv_oai_url, on_page=interrupt)
        assert index.count() == 1 + 120 and json.loads(index.get_state("harvest:*"))["token"]
        counts = await harvest(index, net, settings.arxiv_oai_url)
        papers = arxiv_papers(world.corpus)
        assert index.count() == len(papers) and index.papers_by_arxiv([gone]) == {}
        stamps = [datestamp(p) for p in papers] + [stamp for _, stamp in deleted_ids(world.corpus)]
        assert counts["deleted"] == 1 and counts["datestamp"] == max(stamps)
        newest = json.loads(index.get_state("harvest:*"))["datestamp"]
        requests_before = world.log.counts()["arxiv_api"]["requests"]
        again = await harvest(index, net, settings.arxiv_oai_url)  # incremental: from the newest datestamp
        assert again["pages"] == 1 and again["added"] == 0 and again["datestamp"] == newest
        only_cs = await harvest(index, net, settings.arxiv_oai_url, set_spec="cs", since=date(2024, 1, 1))
        assert only_cs["added"] == 0 and only_cs["records"] > 0
        await net.aclose()
        index.close()
        counts = world.log.counts()["arxiv_api"]
        oai = [r for r in world.log.records if r["path"].startswith("/oai")]
    assert counts["requests"] > requests_before
    assert counts["exceeded"] == 0 and counts.get("status_429", 0) == 0, counts
    assert any(r["status"] == 503 for r in oai)  # flow control was met and waited out


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/oai", "/oai2"])  # arXiv's OAI-PMH address, and the old one that redirects there
async def test_a_harvest_and_api_requests_in_two_processes_keep_arxivs_one_limit(tmp_path: Path, path: str) -> None:
    # OAI-PMH listens apart from the API (as oaipmh.arxiv.org and export.arxiv.org) but the world's
    # gate counts both against one limit, as arXiv's terms do for its legacy APIs.
    async with World.start(seed=SEED, papers=PAPERS, time_scale=0.1, oai_page_size=60, latency=False) as world:
        settings = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        url = settings.arxiv_oai_url if path == "/oai" else f"{world.urls['arxiv_api']}/oai2"
        index = LocalIndex(tmp_path / "index.sqlite3")
        harvesting, searching = Net(settings), Net(settings)  # two processes' clients, one state dir

        async def lookups() -> None:
            for n in range(6):
                ids = ",".join(p.arxiv_id for p in world.corpus.papers[n * 5 : n * 5 + 5] if p.arxiv_id)
                await searching.request("arxiv", "GET", settings.arxiv_api_url, params={"id_list": ids})

        done: dict[str, int] = {}

        async def harvesting_all() -> None:
            done.update(await harvest(index, harvesting, url))

        async with anyio.create_task_group() as group:
            group.start_soon(harvesting_all)
            group.start_soon(lookups)
        await harvesting.aclose()
        await searching.aclose()
        index.close()
        records = [r for r in world.log.records if r["service"] == "arxiv_api"]
    api = [r["time"] for r in records if r["path"].startswith("/api/")]
    oai = [r["time"] for r in records if r["path"].startswith("/oai?")]
    assert len(api) == 6 and len(oai) == done["pages"] > 3 and done["added"] == len(arxiv_papers(world.corpus))
    assert min(oai) < max(api) and min(api) < max(oai)  # the two ran at the same time
    if path == "/oai2":  # each page asked at the old address first, then where it moved
        assert sum(r["path"].startswith("/oai2?") and r["status"] == 301 for r in records) == len(oai)
    assert not [r for r in records if r["exceeded"]], "a request came before arXiv's limit allowed it"


@pytest.mark.anyio
async def test_the_resolver_asks_the_index_for_untitled_entries_by_their_whole_string(
    corpus: Corpus, snapshot: Path, tmp_path: Path
) -> None:
    from pasa_mcp.resolve import Resolver
    from pasa_mcp.store import Store

    index = LocalIndex(tmp_path / "index.sqlite3")
    import_snapshot(index, snapshot)
    store = Store(tmp_path / "store.sqlite3")
    paper = arxiv_papers(corpus)[20]
    entry = f"{paper.authors[0]}, {paper.title}, Journal of Things 12 (2019) 1-9"
    refs = [Reference(title=entry, text=entry, untitled=True), Reference(title=paper.title.upper())]
    found = await Resolver(store, None, local=LocalResolver(index)).resolve(refs)
    assert [p.arxiv_id if p else None for p in found] == [paper.arxiv_id, paper.arxiv_id]
    assert store.get_paper(f"arxiv:{paper.arxiv_id}") is not None  # what the index found is in the store
    store.close()
    index.close()


def test_a_second_writer_is_refused_with_a_clear_error(snapshot: Path, tmp_path: Path) -> None:
    busy = LocalIndex(tmp_path / "index.sqlite3")  # the path conftest points PASA_INDEX_PATH at
    busy._text_writer()  # an import running in another process holds the writer
    done = CliRunner().invoke(app, ["index", "import-arxiv", str(snapshot)])
    assert done.exit_code == 2 and "being written by another process" in done.output
    assert "Traceback" not in done.output
    busy.close()
