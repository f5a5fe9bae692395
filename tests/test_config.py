"""Settings come from env vars over a TOML file over defaults; secrets stay masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pasa_mcp.config import ConfigError, Settings, secret_fields, unknown_variables
from pasa_mcp.errors import plain_errors


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


@pytest.mark.parametrize(
    "value",
    ["http://h:8001/v1", "http://h:8001/v1, http://g:8001/v1", '["http://h:8001/v1", "http://g:8001/v1"]'],
)
def test_a_list_setting_takes_one_url_commas_or_a_json_list(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASA_CRAWLER_URLS", value)
    monkeypatch.setenv(
        "PASA_SEARCH_SOURCES", value.replace("http://h:8001/v1", "arxiv").replace("http://g:8001/v1", "openalex")
    )
    s = Settings()
    assert s.crawler_urls == ["http://h:8001/v1", "http://g:8001/v1"][: len(s.crawler_urls)]
    assert len(s.crawler_urls) == (1 if "," not in value else 2)
    assert s.search_sources == ["arxiv", "openalex"][: len(s.crawler_urls)]


def test_a_list_setting_in_the_file_may_be_one_string(tmp_path: Path) -> None:
    Path(tmp_path / "config.toml").write_text('selector_urls = "http://a:8002/v1,http://b:8002/v1"\n')
    assert Settings().selector_urls == ["http://a:8002/v1", "http://b:8002/v1"]


@pytest.mark.parametrize("value", ["[]", "", " , "])
def test_an_empty_list_of_urls_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASA_CRAWLER_URLS", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert plain_errors(caught.value) == "crawler_urls must not be empty"


def test_the_environment_wins_over_the_file_for_the_same_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(tmp_path / "config.toml").write_text(
        'serper_api_key = "from-file"\ns2_api_key = "s2-file"\nPASA_SEARCH_QUERIES = 4\nsearch_papers = 6\n'
    )
    monkeypatch.setenv("SERPER_API_KEY", "from-env")
    monkeypatch.setenv("PASA_S2_API_KEY", "s2-env")
    monkeypatch.setenv("PASA_SEARCH_PAPERS", "8")
    s = Settings()
    assert s.serper_api_key is not None and s.serper_api_key.get_secret_value() == "from-env"
    assert s.s2_api_key is not None and s.s2_api_key.get_secret_value() == "s2-env"
    assert (s.search_queries, s.search_papers) == (4, 8)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"search_queries = 3\nsearch_papers = [\n", "config.toml:2: not valid TOML: Invalid value"),
        (b"a = 1\nb = = 2\nc = 3\n", "config.toml:2: not valid TOML: Invalid value"),
        (b"search_queries = 3\n# caf\xe9\n", "config.toml:2: not UTF-8 text (byte 0xe9): save it as UTF-8"),
    ],
)
def test_a_file_that_is_not_toml_names_itself_and_the_line(tmp_path: Path, content: bytes, expected: str) -> None:
    Path(tmp_path / "config.toml").write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == f"{tmp_path}/{expected}"


def test_pasa_config_naming_nothing_or_a_directory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASA_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"PASA_CONFIG names .*missing.toml, which does not exist"):
        Settings()
    monkeypatch.setenv("PASA_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match=r"PASA_CONFIG names .*, which is a directory"):
        Settings()


def test_the_default_file_may_be_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PASA_CONFIG")
    monkeypatch.setattr("pasa_mcp.config.DEFAULT_CONFIG", Path("/nonexistent/pasa-mcp/config.toml"))
    assert Settings().search_queries == 5


def test_unknown_pasa_variables_are_named_with_the_nearest_setting() -> None:
    environ = {
        "PASA_CRAWLER_URL": "x",
        "PASA_FROBNICATE": "1",
        "PASA_CONFIG": "c",
        "PASA_SEARCH_QUERIES": "3",
        "PASA_LLAMA_PYTHON": "/v/bin/python",  # the project's own scripts read these
        "PASA_GPU_SMOKE": "1",
        "PATH": "/",
    }
    assert unknown_variables(environ) == [
        "PASA_CRAWLER_URL is not a pasa-mcp setting and is ignored (did you mean PASA_CRAWLER_URLS?)",
        "PASA_FROBNICATE is not a pasa-mcp setting and is ignored",
    ]


def test_a_mistyped_secret_is_never_repeated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(tmp_path / "config.toml").write_text("http_token = 918273645\nopenalex_api_key = 55501\n")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = plain_errors(caught.value, quiet=secret_fields())
    assert "http_token must be a valid string" in message and "openalex_api_key" in message
    assert "918273645" not in message and "55501" not in message


def test_every_key_and_token_is_a_secret() -> None:
    assert set(secret_fields()) == {
        "crawler_api_key",
        "selector_api_key",
        "serper_api_key",
        "s2_api_key",
        "openalex_api_key",
        "http_token",
    }
