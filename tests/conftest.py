"""Shared test set-up: every test gets its own config, cache and store under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's config, keys or store, nor masks another test's secrets."""
    from pasa_mcp import scrub

    scrub.forget()
    for name in ("SERPER_API_KEY", "S2_API_KEY", "OPENALEX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    import os

    for name in list(os.environ):
        if name.startswith("PASA_"):
            monkeypatch.delenv(name)
    config = tmp_path / "config.toml"
    config.touch()  # PASA_CONFIG naming a missing file is an error
    monkeypatch.setenv("PASA_CONFIG", str(config))
    monkeypatch.setenv("PASA_STORE_PATH", str(tmp_path / "store.sqlite3"))
    monkeypatch.setenv("PASA_INDEX_PATH", str(tmp_path / "index.sqlite3"))
    monkeypatch.setenv("PASA_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"shared fixture missing: {path} (tests expect ../shared beside the project)")
    return path


def fixture_text(*parts: str) -> str:
    return fixture_path(*parts).read_text(encoding="utf-8")


def fixture_json(*parts: str) -> object:
    return json.loads(fixture_text(*parts))
