"""server.json, the MCP registry manifest: the registry's required fields, and nothing in it that the
package does not have (its version, its `serve` command, its settings' environment variables)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from pasa_mcp.cli import app
from pasa_mcp.config import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_the_registry_fields_are_there() -> None:
    assert MANIFEST["$schema"] == "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
    assert re.fullmatch(r"io\.github\.[A-Za-z0-9-]+/[A-Za-z0-9._-]+", MANIFEST["name"])
    assert 1 <= len(MANIFEST["description"]) <= 100
    assert 1 <= len(MANIFEST["title"]) <= 100 and MANIFEST["websiteUrl"].startswith("https://")
    (package,) = MANIFEST["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == PROJECT["name"]
    assert package["transport"] == {"type": "stdio"} and package["runtimeHint"] == "uvx"
    for variable in package["environmentVariables"]:
        assert set(variable) <= {"name", "description", "isRequired", "isSecret", "default", "format", "choices"}
        assert variable["description"] and isinstance(variable.get("isSecret", False), bool)


def test_versions_match_the_package() -> None:
    (package,) = MANIFEST["packages"]
    assert MANIFEST["version"] == package["version"] == PROJECT["version"]


def test_the_launch_command_is_the_serve_command() -> None:
    (package,) = MANIFEST["packages"]
    assert package["packageArguments"] == [{"type": "positional", "value": "serve"}]
    assert "serve" in {command.name or command.callback.__name__ for command in app.registered_commands}
    assert "pasa-mcp" in PROJECT["scripts"]


# Settings a user of the registry package does not set, and why; every other setting is declared.
NOT_DECLARED = {
    **dict.fromkeys(
        [
            "serper_url",
            "arxiv_api_url",
            "arxiv_oai_url",
            "arxiv_html_url",
            "ar5iv_url",
            "s2_url",
            "openalex_url",
            "crossref_url",
        ],
        "the services' addresses: changed only to point at the simulated web (tools/world)",
    ),
    **dict.fromkeys(
        [
            "arxiv_interval",
            "arxiv_html_interval",
            "arxiv_html_burst",
            "ar5iv_interval",
            "s2_interval",
            "openalex_interval",
            "crossref_interval",
        ]
        + ["serper_concurrency"],
        "pacing that the services' terms set, not a user's choice",
    ),
    **dict.fromkeys(
        ["http_backoff", "http_rest"],
        "the client's own waits on failure: changed only to scale them with the simulated web's time",
    ),
    "http_token": "only for `serve --http`; the registry package runs stdio",
    "weights_dir": "only for `pasa-mcp models serve`, not read by the MCP server",
}


def declared() -> dict[str, dict]:
    (package,) = MANIFEST["packages"]
    return {variable["name"]: variable for variable in package["environmentVariables"]}


def env_name(field: str) -> str:
    aliases = Settings.model_fields[field].validation_alias
    plain = [a for a in getattr(aliases, "choices", []) if a.isupper() and not a.startswith("PASA_")]
    return plain[0] if plain else f"PASA_{field.upper()}"  # SERPER_API_KEY rather than PASA_SERPER_API_KEY


def test_every_setting_a_user_sets_is_declared() -> None:
    wanted = {env_name(field) for field in Settings.model_fields if field not in NOT_DECLARED}
    assert wanted | {"PASA_CONFIG"} == set(declared())


def test_the_config_path_variable_is_the_one_the_package_reads(monkeypatch, tmp_path) -> None:
    from pasa_mcp.config import config_path

    monkeypatch.setenv("PASA_CONFIG", str(tmp_path / "c.toml"))
    assert config_path() == tmp_path / "c.toml" and declared()["PASA_CONFIG"]["format"] == "filepath"


def test_every_environment_variable_is_a_setting_with_that_default() -> None:
    (package,) = MANIFEST["packages"]
    defaults = Settings.model_construct()
    for variable in package["environmentVariables"]:
        if variable["name"] == "PASA_CONFIG":
            continue
        field = variable["name"].removeprefix("PASA_").lower()
        assert field in Settings.model_fields, variable["name"]
        if "default" in variable:
            value = getattr(defaults, field)
            assert variable["default"] == (json.dumps(value) if isinstance(value, list) else str(value))
        if "choices" in variable:
            assert set(variable["choices"]) == set(Settings.model_fields[field].annotation.__args__)
        if variable.get("isSecret"):
            assert "SecretStr" in str(Settings.model_fields[field].annotation)
