"""Settings come from env vars over a TOML file over defaults; secrets stay masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pasa_mcp.config import Settings


def test_defaults_are_the_papers_parameters() -> None:
    s = Settings()
    assert (s.search_queries, s.search_papers, s.expand_layers, s.expand_papers, s.threshold) == (5, 10, 2, 20, 0.5)
    assert s.arxiv_interval == 3.0
    assert s.sources == ["arxiv"]


def test_toml_file_then_env_vars_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Path(tmp_path / "config.toml")
    config.write_text(
        'crawler_urls = ["http://gpu1:8001/v1", "http://gpu2:8001/v1"]\nsearch_queries = 7\nexpand_layers = 1\n'
    )
    monkeypatch.setenv("PASA_EXPAND_LAYERS", "3")
    s = Settings()
    assert s.crawler_urls == ["http://gpu1:8001/v1", "http://gpu2:8001/v1"]
    assert s.search_queries == 7
    assert s.expand_layers == 3


def test_the_usual_key_names_work_and_google_is_used_when_serper_has_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERPER_API_KEY", "sk-secret-123")
    s = Settings()
    assert s.serper_api_key is not None and s.serper_api_key.get_secret_value() == "sk-secret-123"
    assert s.sources == ["google"]
    shown = s.display()
    assert shown["serper_api_key"] == "****"
    assert "sk-secret-123" not in repr(s) and "sk-secret-123" not in str(shown)


def test_bad_values_name_the_setting(tmp_path: Path) -> None:
    Path(tmp_path / "config.toml").write_text("search_queries = 0\n")
    with pytest.raises(ValidationError, match="search_queries"):
        Settings()


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    Path(tmp_path / "config.toml").write_text("serach_queries = 3\n")
    with pytest.raises(ValidationError, match="serach_queries"):
        Settings()
