"""The SQLite store: merging, caches with expiry, runs, and several processes writing at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
import traceback
from datetime import date
from pathlib import Path

import anyio
import pytest

from pasa_mcp import __version__
from pasa_mcp.papers import Paper, Reference, SectionMap
from pasa_mcp.store import SCHEMA_VERSION, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "s.sqlite3")
    yield s
    s.close()


def test_a_new_store_is_migrated_and_in_wal_mode(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"papers", "papers_fts", "section_maps", "searches", "scores", "runs", "run_events"} <= set(
        store.db.table_names()
    )


def test_reopening_does_not_migrate_twice(tmp_path: Path) -> None:
    Store(tmp_path / "s.sqlite3").close()
    again = Store(tmp_path / "s.sqlite3")
    assert again.db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == SCHEMA_VERSION


def test_papers_from_two_sources_merge_and_the_key_moves_to_the_arxiv_id(store: Store) -> None:
    store.upsert_papers([Paper(title="Attention Is All You Need", doi="10.5555/3295222", sources=["s2"])])
    store.put_section_map("doi:10.5555/3295222", SectionMap(origin="references"))
    (merged,) = store.upsert_papers(
        [Paper(title="Attention is all you need.", arxiv_id="1706.03762", abstract="Transformers.", sources=["arxiv"])]
    )
    assert merged.key == "arxiv:1706.03762"
    assert merged.doi == "10.5555/3295222"
    assert store.count_papers() == 1
    assert store.get_paper("doi:10.5555/3295222") == merged
    assert store.get_section_map("arxiv:1706.03762") is not None


def test_full_text_search_finds_stored_papers_and_survives_operators(store: Store) -> None:
    store.upsert_papers(
        [
            Paper(title="Sliding-window UCB for non-stationary bandits", arxiv_id="0805.3415"),
            Paper(title="Deep Q-networks", abstract="Value-based deep reinforcement learning.", arxiv_id="1312.5602"),
        ]
    )
    assert [p.arxiv_id for p in store.search_papers("bandit")] == ["0805.3415"]  # porter stemming
    assert [p.arxiv_id for p in store.search_papers("reinforcement learning")] == ["1312.5602"]
    assert store.search_papers('UCB AND (" OR NEAR') == []  # user text is quoted, never FTS syntax


def test_search_cache_expires_and_is_keyed_by_bound_and_limit(store: Store) -> None:
    store.put_search("arxiv", "ucb", date(2024, 1, 1), 10, ["arxiv:0805.3415"], ttl=60)
    assert store.get_search("arxiv", "ucb", date(2024, 1, 1), 10) == ["arxiv:0805.3415"]
    assert store.get_search("arxiv", "ucb", None, 10) is None
    assert store.get_search("arxiv", "ucb", date(2024, 1, 1), 20) is None
    store.put_search("arxiv", "old", None, 10, ["arxiv:1"], ttl=-1)
    assert store.get_search("arxiv", "old", None, 10) is None


def test_resolution_misses_are_remembered_until_they_expire(store: Store) -> None:
    store.put_resolutions({"hit": "arxiv:1706.03762", "miss": None}, ttl_miss=60, ttl_hit=600)
    store.put_resolutions({"stale": None}, ttl_miss=-1, ttl_hit=600)
    assert store.get_resolutions(["hit", "miss", "stale", "never"]) == {"hit": "arxiv:1706.03762", "miss": None}


def test_scores_are_keyed_by_model_query_and_content(store: Store) -> None:
    p = Paper(title="T", abstract="A", arxiv_id="2101.00001")
    store.put_scores("sel", "q", [(p, 0.9)])
    assert store.get_scores("sel", "q", [p]) == {"arxiv:2101.00001": 0.9}
    assert store.get_scores("other-model", "q", [p]) == {}
    assert store.get_scores("sel", "q2", [p]) == {}
    assert store.get_scores("sel", "q", [p.model_copy(update={"abstract": "changed"})]) == {}


def test_section_maps_round_trip(store: Store) -> None:
    smap = SectionMap(
        origin="arxiv_html",
        sections={"1 Introduction": [Reference(title="Deep Q-networks", text="Mnih et al. Deep Q-networks.")]},
        warnings=["w"],
    )
    store.put_section_map("arxiv:1", smap)
    assert store.get_section_map("arxiv:1") == smap
    assert store.get_section_map("arxiv:2") is None


def test_runs_keep_params_events_and_results(store: Store) -> None:
    run_id = store.create_run("q", {"search_queries": 5, "end_date": date(2024, 1, 1)})
    assert store.add_event(run_id, "started", {"n": 1}) == 1
    assert store.add_event(run_id, "scored", {"n": 2}) == 2
    store.save_partial(run_id, {"papers": [1]})
    assert store.get_run(run_id)["status"] == "running"
    store.finish_run(run_id, "finished", {"papers": [1, 2]})
    run = store.get_run(run_id)
    assert run["status"] == "finished" and run["result"] == {"papers": [1, 2]}
    assert run["params"]["end_date"] == "2024-01-01"
    assert [e["kind"] for e in store.run_events(run_id)] == ["started", "scored"]
    assert [e["seq"] for e in store.run_events(run_id, after=1)] == [2]
    with pytest.raises(ValueError, match="unknown run status"):
        store.finish_run(run_id, "done", None)
    assert store.get_run("nope") is None


@pytest.mark.anyio
async def test_async_callers_share_one_connection_safely(store: Store) -> None:
    async def write(i: int) -> None:
        await store.call(store.upsert_papers, [Paper(title=f"paper {i}", arxiv_id=f"2101.{i:05d}")])

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(write, i)
    assert store.count_papers() == 50


def _writer(path: str, source: str, start: float) -> None:
    try:
        store = Store(path)
        while time.time() < start:
            time.sleep(0.001)
        for i in range(150):
            # Both processes write the same 150 works, each seen by its own source, one transaction each.
            store.upsert_papers([Paper(title=f"Shared work number {i}", arxiv_id=f"2101.{i:05d}", sources=[source])])
            run = store.create_run(f"{source} {i}", {})
            store.add_event(run, "started", {})
        store.close()
    except BaseException:
        Path(path + f".{source}.error").write_text(traceback.format_exc())
        raise


def test_two_processes_writing_the_same_papers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    start = time.time() + 1.5  # both processes start writing at the same moment, migrations included
    procs = [ctx.Process(target=_writer, args=(path, name, start)) for name in ("one", "two")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    errors = [e.read_text() for e in tmp_path.glob("*.error")]
    assert [p.exitcode for p in procs] == [0, 0], errors
    store = Store(path)
    assert store.count_papers() == 150
    for i in (0, 75, 149):
        assert sorted(store.get_paper(f"arxiv:2101.{i:05d}").sources) == ["one", "two"]
    assert len(store.list_runs(limit=1000)) == 300
    store.close()


def _opener(folder: str, start: float, rounds: int, name: str) -> None:
    try:
        for k in range(rounds):
            while time.time() < start + k * 0.15:
                time.sleep(0.0005)
            Store(Path(folder) / f"new-{k}.sqlite3").close()  # every process opens the same new file at once
    except BaseException:
        Path(folder, f"{name}.error").write_text(traceback.format_exc())
        raise


def test_processes_opening_a_new_store_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, rounds = time.time() + 2.0, 12
    procs = [ctx.Process(target=_opener, args=(str(tmp_path), start, rounds, f"p{i}")) for i in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    errors = [e.read_text() for e in tmp_path.glob("*.error")]
    assert [p.exitcode for p in procs] == [0] * 5, errors
    for k in range(rounds):
        store = Store(tmp_path / f"new-{k}.sqlite3")
        assert store.schema_version == SCHEMA_VERSION
        store.close()


# Faults: each is one clear line naming the file and what to do, and loses nothing stored before.


def test_a_full_store_says_so_and_keeps_what_it_had(tmp_path: Path) -> None:
    path = tmp_path / "full.sqlite3"
    store = Store(path)
    store.upsert_papers([Paper(title="Kept before the disk filled", arxiv_id="2101.00001")])
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own size limit stands in for a full disk
    big = [Paper(title=f"Paper number {i}", abstract="x" * 4000, arxiv_id=f"2101.{i:05d}") for i in range(2, 200)]
    with pytest.raises(StoreError) as caught:
        anyio.run(store.call, store.upsert_papers, big)
    message = str(caught.value)
    assert message.startswith(f"the store {path} is full") and "PASA_STORE_PATH" in message
    assert "\n" not in message
    assert store.count_papers() == 1 and store.get_paper("arxiv:2101.00001") is not None
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.db.execute("PRAGMA max_page_count = 1000000")  # space again: the store works on
    store.upsert_papers(big[:3])
    assert store.count_papers() == 4
    store.close()


def test_a_store_that_turns_read_only_says_so(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    store = Store(path)
    # What SQLite answers for a file it may not write (chmod does not stop root, which runs these tests).
    store.db.execute("PRAGMA query_only = 1")
    with pytest.raises(StoreError, match=rf"^the store {path} is read-only: make the file .* PASA_STORE_PATH"):
        anyio.run(store.call, store.put_search, "arxiv", "q", None, 10, [], 60.0)
    store.close()


def test_a_damaged_store_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not an sqlite database, just some text " * 100)
    with pytest.raises(StoreError, match=rf"^the store {path} is not an SQLite database: move it aside"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not")  # left as it was


def test_a_directory_as_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=rf"^the store {tmp_path} is a directory, not a file: set PASA_STORE_PATH"):
        Store(tmp_path)


def test_a_store_from_a_newer_version_is_refused_at_open_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    store = Store(path)
    store.upsert_papers([Paper(title="Kept", arxiv_id="2101.00001")])
    store.db.execute("INSERT INTO _migrations VALUES ('_m099_from_the_future', 0)")
    store.close()
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(caught.value) == (
        f"the store {path} has schema {SCHEMA_VERSION + 1} (written by a newer pasa-mcp: _m099_from_the_future); "
        f"this pasa-mcp ({__version__}) reads schema {SCHEMA_VERSION} at most: upgrade pasa-mcp, "
        "or set PASA_STORE_PATH to another file"
    )
    with sqlite3.connect(path) as conn:  # untouched
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 1
