"""Settings: environment variables (`PASA_*`, plus the usual key names) over a TOML file over defaults.

The TOML file is `$PASA_CONFIG` or `config.toml` in the user's config directory. Every base URL is a
setting so that the whole system runs unchanged against the simulated web (tools/world).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_config_dir, user_data_dir
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

APP = "pasa-mcp"
DEFAULT_STORE = Path(user_cache_dir(APP)) / "pasa.sqlite3"
DEFAULT_INDEX = Path(user_cache_dir(APP)) / "index.sqlite3"
DEFAULT_CONFIG = Path(user_config_dir(APP)) / "config.toml"
DEFAULT_WEIGHTS = Path(user_data_dir(APP)) / "weights"


def config_path() -> Path:
    return Path(os.environ.get("PASA_CONFIG") or DEFAULT_CONFIG)


def _env(name: str, *others: str) -> AliasChoices:
    return AliasChoices(f"PASA_{name.upper()}", name, *others)


class Settings(BaseSettings):
    """Everything configurable. Field `x` is set by env `PASA_X` or key `x` in the TOML file."""

    model_config = SettingsConfigDict(env_prefix="PASA_", extra="forbid", populate_by_name=True)

    store_path: Path = DEFAULT_STORE
    # The local paper index (`pasa-mcp index ...`): used when it exists. Offline: the index and the
    # stored full texts only; no request but to the models.
    index_path: Path = DEFAULT_INDEX
    offline: bool = False

    # Models: several base URLs per model are balanced by least outstanding requests.
    crawler_urls: list[str] = ["http://127.0.0.1:8001/v1"]
    crawler_model: str = "pasa-7b-crawler"
    crawler_api_key: SecretStr | None = None
    crawler_backend: Literal["pasa", "general"] = "pasa"
    selector_urls: list[str] = ["http://127.0.0.1:8002/v1"]
    selector_model: str = "pasa-7b-selector"
    selector_api_key: SecretStr | None = None
    selector_backend: Literal["pasa", "general"] = "pasa"
    selector_batch: int = Field(16, ge=1, description="selector prompts per completions request")
    model_timeout: float = Field(120.0, gt=0)
    model_concurrency: int = Field(8, ge=1, description="requests in flight per model base URL")
    # explicit: every sampling parameter sent (deterministic greedy); checkpoint: only what the reference
    # implementation sent, so the server applies the checkpoint's generation_config.json (pasa backends).
    model_sampling: Literal["explicit", "checkpoint"] = "explicit"
    weights_dir: Path = Field(DEFAULT_WEIGHTS, description="checkpoints for `pasa-mcp models serve`")

    # Search sources. None means: local when offline, else google (serper) when its key is set, else arxiv.
    search_sources: list[Literal["google", "arxiv", "semantic_scholar", "openalex", "local"]] | None = None
    serper_api_key: SecretStr | None = Field(None, validation_alias=_env("serper_api_key", "SERPER_API_KEY"))
    serper_url: str = "https://google.serper.dev"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_oai_url: str = "https://export.arxiv.org/oai2"
    # arXiv asks programs to fetch from export.arxiv.org (the same LaTeXML pages at /html/IDvN);
    # https://arxiv.org/html also works, paced per its robots.txt (arxiv_html_interval = 15).
    arxiv_html_url: str = "https://export.arxiv.org/html"
    ar5iv_url: str = "https://ar5iv.labs.arxiv.org/html"
    s2_url: str = "https://api.semanticscholar.org/graph/v1"
    s2_api_key: SecretStr | None = Field(None, validation_alias=_env("s2_api_key", "S2_API_KEY"))
    openalex_url: str = "https://api.openalex.org"
    openalex_api_key: SecretStr | None = Field(None, validation_alias=_env("openalex_api_key", "OPENALEX_API_KEY"))
    openalex_mailto: str | None = None
    crossref_url: str = "https://api.crossref.org"
    crossref_mailto: str | None = None

    # `serve --http`: clients send `Authorization: Bearer <token>`; required beyond loopback.
    http_token: SecretStr | None = None

    # Politeness: shared by every run in the process.
    arxiv_interval: float = Field(3.0, ge=0, description="seconds between arXiv API requests")
    # export.arxiv.org's guidance: bursts of 4 requests a second, then a 1 s sleep (2 a second on average).
    arxiv_html_interval: float = Field(0.5, ge=0, description="seconds between arXiv HTML requests, on average")
    arxiv_html_burst: int = Field(4, ge=1, description="arXiv HTML requests that may go out at once")
    ar5iv_interval: float = Field(1.0, ge=0, description="seconds between ar5iv requests")
    s2_interval: float = Field(1.0, ge=0, description="seconds between Semantic Scholar requests")
    openalex_interval: float = Field(0.1, ge=0)
    crossref_interval: float = Field(0.2, ge=0)  # Crossref's public pool: 5 requests a second
    serper_concurrency: int = Field(5, ge=1)
    http_timeout: float = Field(30.0, gt=0)
    http_retries: int = Field(5, ge=0)
    search_cache_days: float = Field(30.0, ge=0, description="how long cached search results stay fresh")

    # The PaSa loop (PROTOCOL section 5).
    search_queries: int = Field(5, ge=1)
    search_papers: int = Field(10, ge=1)
    expand_layers: int = Field(2, ge=0)
    expand_papers: int = Field(20, ge=1)
    threshold: float = Field(0.5, ge=0, le=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path())

    @property
    def sources(self) -> list[str]:
        if self.search_sources:
            return list(self.search_sources)
        if self.offline:
            return ["local"]
        return ["google"] if self.serper_api_key else ["arxiv"]

    def display(self) -> dict[str, object]:
        """The effective settings with secrets masked (for `pasa-mcp config`)."""
        shown: dict[str, object] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                value = "****" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        return shown
