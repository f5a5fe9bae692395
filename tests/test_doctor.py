"""`pasa-mcp doctor` against the simulated world (tools/world): all well, then one broken part at a time."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import SecretStr

from pasa_mcp.config import Settings
from pasa_mcp.doctor import Check, check_index, check_openalex, check_politeness, check_state_dir, run_checks
from pasa_mcp.index.db import LocalIndex
from pasa_mcp.index.snapshot import import_snapshot
from pasa_mcp.net import Net
from tools.world import World
from tools.world.corpus import Corpus
from tools.world.exports import write_snapshot

pytestmark = pytest.mark.anyio


def failed(checks: list) -> list:
    return [c for c in checks if not c.ok]


async def test_doctor_passes_against_the_world_and_names_each_broken_part(tmp_path: Path) -> None:
    async with World.start(seed=5, papers=300, time_scale=0.01) as world:
        base = Settings(**world.settings(), store_path=tmp_path / "store.sqlite3")
        with anyio.fail_after(60):
            checks = await run_checks(base)
        assert failed(checks) == []
        parts = [c.part for c in checks]
        crawler, selector = base.crawler_urls[0], base.selector_urls[0]
        assert parts.count(f"crawler model {crawler}") == 2 and parts.count(f"selector model {selector}") == 2
        assert {"store", "source google"} <= set(parts)
        details = " ".join(c.detail for c in checks)
        assert (
            "vllm server" in details and "chat template applied" in details and "P(True) of a known prompt" in details
        )

        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        broken = {
            "crawler_model": "pasa-7b-crawler",  # the real name; the world serves sim-pasa-7b-crawler
            "serper_api_key": SecretStr("wrong-key"),
            "store_path": tmp_path,  # a directory
            "selector_urls": [dead],
        }
        with anyio.fail_after(120):
            checks = await run_checks(base.model_copy(update=broken))
        bad = {c.part: c for c in failed(checks)}
        assert set(bad) == {
            f"crawler model {crawler}",
            f"selector model {dead}",
            "source google",
            "store",
        }
        assert "sim-pasa-7b-crawler" in bad[f"crawler model {crawler}"].fix
        assert "not running" in bad[f"selector model {dead}"].detail
        assert "HTTP 403" in bad["source google"].detail and "SERPER_API_KEY" in bad["source google"].fix
        assert "wrong-key" not in json.dumps([c.__dict__ for c in checks])
        assert "PASA_STORE_PATH" in bad["store"].fix


async def test_doctor_cli_prints_json_and_exits_non_zero_on_a_failure(tmp_path: Path) -> None:
    async with World.start(seed=5, papers=300, time_scale=0.01) as world:
        config = tmp_path / "world.toml"
        config.write_text(world.settings_toml() + f'store_path = "{tmp_path / "store.sqlite3"}"\n')
        env = {**os.environ, "PASA_CONFIG": str(config)}
        with anyio.fail_after(120):
            good = await anyio.run_process([sys.executable, "-m", "pasa_mcp", "doctor", "--json"], env=env, check=False)
            env["PASA_SELECTOR_MODEL"] = "no-such-model"
            bad = await anyio.run_process([sys.executable, "-m", "pasa_mcp", "doctor"], env=env, check=False)
    assert good.returncode == 0, good.stderr.decode()
    report = json.loads(good.stdout)
    assert report["ok"] is True and all(c["ok"] for c in report["checks"])
    assert bad.returncode == 1
    text = bad.stdout.decode()
    assert "FAIL selector model" in text and "PASA_SELECTOR_MODEL" in text and "1 failed" in text


def test_politeness_is_checked_against_the_real_hosts_only() -> None:
    checks = {c.part: c for c in check_politeness(Settings(arxiv_interval=1.0, s2_interval=0.2))}
    assert (
        not checks["politeness arxiv_interval"].ok and "PASA_ARXIV_INTERVAL" in checks["politeness arxiv_interval"].fix
    )
    assert not checks["politeness s2_interval"].ok
    mirror = Settings(arxiv_interval=0.1, arxiv_api_url="http://127.0.0.1:5/api/query")
    assert {c.part: c for c in check_politeness(mirror)}["politeness arxiv_interval"].ok


def test_the_pacing_state_dir_must_be_writable(tmp_path: Path) -> None:
    ok = check_state_dir(Settings(state_dir=tmp_path / "state"))
    assert ok.ok and str(tmp_path / "state" / "pacing") in ok.detail and (tmp_path / "state" / "pacing").is_dir()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    failed = check_state_dir(Settings(state_dir=blocked))
    assert not failed.ok and failed.fix == "set PASA_STATE_DIR to a writable directory"
    assert str(blocked / "pacing") in failed.detail and "\n" not in failed.detail


async def test_openalex_needs_a_key_and_it_is_tried_with_one_lookup() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.params.get("api_key") == "good":
            return httpx.Response(200, json={"results": []})
        return httpx.Response(401, json={"error": "bad key"})

    async def check(**settings: object) -> Check:
        config = Settings(openalex_url="https://openalex.test", **settings)
        net = Net(config, transport=httpx.MockTransport(answer))
        try:
            return await check_openalex(config, net)
        finally:
            await net.aclose()

    missing = await check(openalex_api_key=None)
    assert not missing.ok and "13 February 2026" in missing.detail and not sent
    assert missing.fix == "get one at https://openalex.org/settings/api, set OPENALEX_API_KEY"
    assert (await check(openalex_api_key=None, offline=True)).ok and not sent
    assert (await check(openalex_api_key=SecretStr("good"))).ok and len(sent) == 1
    wrong = await check(openalex_api_key=SecretStr("wrong-key"))
    assert not wrong.ok and wrong.fix == "check OPENALEX_API_KEY" and "wrong-key" not in wrong.detail


def test_the_local_index_is_reported_and_needed_only_offline_or_as_a_source(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    online = Settings(index_path=path)
    assert check_index(online).ok and "none at" in check_index(online).detail
    for needing in (Settings(index_path=path, offline=True), Settings(index_path=path, search_sources=["local"])):
        check = check_index(needing)
        assert not check.ok and "needs it" in check.detail and "pasa-mcp index import-arxiv" in check.fix
    snapshot = tmp_path / "snapshot.jsonl"
    write_snapshot(Corpus(3, 200), snapshot)
    index = LocalIndex(path)
    papers = import_snapshot(index, snapshot)["added"]
    index.close()
    check = check_index(online)
    assert check.ok and f"{papers} papers ({papers} in the full-text index)" in check.detail
    for file in (tmp_path / "index.sqlite3.tantivy").iterdir():  # the derived full-text index removed
        file.unlink()
    check = check_index(online)
    assert not check.ok and "is gone" in check.detail and "indexes every row again" in check.fix
