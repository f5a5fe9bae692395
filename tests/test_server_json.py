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


def test_every_environment_variable_is_a_setting_with_that_default() -> None:
    (package,) = MANIFEST["packages"]
    defaults = Settings.model_construct()
    for variable in package["environmentVariables"]:
        field = variable["name"].removeprefix("PASA_").lower()
        assert field in Settings.model_fields, variable["name"]
        if "default" in variable:
            value = getattr(defaults, field)
            assert variable["default"] == (json.dumps(value) if isinstance(value, list) else str(value))
        if "choices" in variable:
            assert set(variable["choices"]) == set(Settings.model_fields[field].annotation.__args__)
        if variable.get("isSecret"):
            assert "SecretStr" in str(Settings.model_fields[field].annotation)
