"""Settings: environment variables (`PASA_*`, plus the usual key names) over a TOML file over defaults.

The TOML file is `$PASA_CONFIG` or `config.toml` in the user's config directory. Every base URL is a
setting so that the whole system runs unchanged against the simulated web (tools/world).

A list setting takes a JSON list, one value, or values separated by commas, from either place; the same
setting in both is no error (the environment wins). A file that cannot be read or parsed raises
`ConfigError` naming the file and line; `unknown_variables` names `PASA_*` variables that set nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_cache_dir, user_config_dir, user_data_dir, user_state_dir
from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

APP = "pasa-mcp"
DEFAULT_STORE = Path(user_cache_dir(APP)) / "pasa.sqlite3"
DEFAULT_INDEX = Path(user_cache_dir(APP)) / "index.sqlite3"
DEFAULT_CONFIG = Path(user_config_dir(APP)) / "config.toml"
DEFAULT_WEIGHTS = Path(user_data_dir(APP)) / "weights"
DEFAULT_STATE = Path(user_state_dir(APP))


def config_path() -> Path:
    return Path(os.environ.get("PASA_CONFIG") or DEFAULT_CONFIG)


class ConfigError(ValueError):
    """The settings file cannot be used: one line naming it (and the line in it) and what is wrong."""


def _env(name: str, *others: str) -> AliasChoices:
    return AliasChoices(f"PASA_{name.upper()}", name, *others)


def _list(value: object) -> object:
    """A list setting as a JSON list, or one value, or values separated by commas."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("must be a JSON list, one value, or values separated by commas") from None
    return [part.strip() for part in value.split(",") if part.strip()]


# A list setting: never decoded as JSON by the environment source (`_list` reads every form).
Urls = Annotated[list[str], NoDecode, BeforeValidator(_list), Field(min_length=1)]
SourceNames = Literal["google", "arxiv", "semantic_scholar", "openalex", "local"]


class Settings(BaseSettings):
    """Everything configurable. Field `x` is set by env `PASA_X` or key `x` in the TOML file."""

    model_config = SettingsConfigDict(env_prefix="PASA_", extra="forbid", populate_by_name=True)

    store_path: Path = DEFAULT_STORE
    # The local paper index (`pasa-mcp index ...`): used when it exists. Offline: the index and the
    # stored full texts only; no request but to the models.
    index_path: Path = DEFAULT_INDEX
    offline: bool = False

    # Models: several base URLs per model are balanced by least outstanding requests.
    crawler_urls: Urls = ["http://127.0.0.1:8001/v1"]
    crawler_model: str = "pasa-7b-crawler"
    crawler_api_key: SecretStr | None = None
    crawler_backend: Literal["pasa", "general"] = "pasa"
    selector_urls: Urls = ["http://127.0.0.1:8002/v1"]
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
    search_sources: Annotated[list[SourceNames], NoDecode, BeforeValidator(_list), Field(min_length=1)] | None = None
    serper_api_key: SecretStr | None = Field(None, validation_alias=_env("serper_api_key", "SERPER_API_KEY"))
    serper_url: str = "https://google.serper.dev"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_oai_url: str = "https://oaipmh.arxiv.org/oai"  # arXiv's OAI-PMH since 2025 (export.arxiv.org/oai2 redirects)
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

    # Politeness: shared by every run of every pasa-mcp process that uses the same state directory.
    state_dir: Path = Field(DEFAULT_STATE, description="pacing shared by the user's pasa-mcp processes")
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
    http_backoff: float = Field(1.0, ge=0, description="seconds before a request's first retry (then doubling, to 30x)")
    http_rest: float = Field(60.0, ge=0, description="seconds a host that keeps failing is not asked")
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
        toml = _TomlFile(settings_cls, config_path())
        return init_settings, _ByName(settings_cls, env_settings), _ByName(settings_cls, toml)

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


def secret_fields() -> list[str]:
    """The settings that hold secrets (API keys, tokens)."""
    return [name for name, field in Settings.model_fields.items() if _holds_secret(field)]


def _holds_secret(field: FieldInfo) -> bool:
    return "SecretStr" in repr(field.annotation)


def _names(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Every name a setting answers to (lower case): its own, PASA_NAME and its other aliases."""
    names: dict[str, str] = {}
    for name, field in settings_cls.model_fields.items():
        aliases = field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else []
        for alias in [name, f"pasa_{name}", *aliases]:
            if isinstance(alias, str):
                names[alias.lower()] = name
    return names


def read_config_file(path: Path, named: bool) -> dict[str, Any]:
    """The TOML file's table; {} when there is none (`named`: PASA_CONFIG chose it, so it must exist)."""
    where = f"PASA_CONFIG names {path}" if named else f"the settings file {path}"
    if path.is_dir():
        raise ConfigError(f"{where}, which is a directory: point it at a TOML file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if named:
            raise ConfigError(f"{where}, which does not exist: create it or unset PASA_CONFIG") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}): save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        why, _, at = str(exc).partition(" (at ")
        found = re.match(r"line (\d+)", at)
        line = int(found[1]) if found else len(text.splitlines()) or 1  # "at end of document"
        raise ConfigError(f"{path}:{line}: not valid TOML: {why}") from None


class _TomlFile(PydanticBaseSettingsSource):
    """The TOML file's table (unknown keys stay, to be refused)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.data = read_config_file(path, named=bool(os.environ.get("PASA_CONFIG")))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class _ByName(PydanticBaseSettingsSource):
    """A source's values under the settings' own names, whichever alias set them: so that the
    environment's value for a setting replaces the file's (SERPER_API_KEY over serper_api_key)
    instead of both reaching validation as two inputs."""

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.source, self.names = source, _names(settings_cls)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return {self.names.get(key.lower(), key): value for key, value in self.source().items()}


# Read by the project's own scripts and tests (README "Development"), not by pasa-mcp: no warning.
SCRIPT_VARIABLES = {"PASA_DEMO_TIME_SCALE", "PASA_GPU_SMOKE", "PASA_LLAMA_GGUF", "PASA_LLAMA_PYTHON"}


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each `PASA_*` environment variable that sets nothing, naming the nearest setting."""
    known = {f"PASA_{name.upper()}" for name in Settings.model_fields} | {"PASA_CONFIG"} | SCRIPT_VARIABLES
    warnings = []
    for name in sorted(environ if environ is not None else os.environ):
        if name.upper().startswith("PASA_") and name.upper() not in known:
            near = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else ""
            warnings.append(f"{name} is not a pasa-mcp setting and is ignored{hint}")
    return warnings
