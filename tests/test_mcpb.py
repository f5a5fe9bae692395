"""The Claude Desktop bundle (mcpb/, packed by scripts/build-mcpb): it installs this version, sets only
real settings, lists the server's tools, and its entry point serves MCP on stdio with the form's values."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest

from pasa_mcp.config import Settings
from pasa_mcp.server import TOOLS

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "mcpb"
MANIFEST = json.loads((BUNDLE / "manifest.json").read_text(encoding="utf-8"))
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def entry_point():
    spec = importlib.util.spec_from_file_location("bundle_main", BUNDLE / MANIFEST["server"]["entry_point"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setting_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"PASA_{field.upper()}")
        names.update(a for a in getattr(info.validation_alias, "choices", []) if a.isupper())
    return names


def test_the_bundle_installs_this_version() -> None:
    environment = tomllib.loads((BUNDLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert MANIFEST["version"] == VERSION
    assert environment["dependencies"] == [f"pasa-mcp=={VERSION}"]


def test_the_form_sets_real_settings_and_every_field_is_used() -> None:
    env = MANIFEST["server"]["mcp_config"]["env"]
    assert set(env) <= setting_names(), set(env) - setting_names()
    used = {m for value in env.values() for m in re.findall(r"\$\{user_config\.(\w+)\}", value)}
    assert used == set(MANIFEST["user_config"])
    secret = {name for name, field in MANIFEST["user_config"].items() if field.get("sensitive")}
    assert secret == {"serper_api_key", "s2_api_key", "openalex_api_key"}


def test_the_manifest_lists_the_servers_tools() -> None:
    assert [tool["name"] for tool in MANIFEST["tools"]] == [entry[0].__name__ for entry in TOOLS]


def test_form_values_become_pasa_settings() -> None:
    settled = entry_point().settle(
        {
            "PASA_CRAWLER_URLS": "http://gpu1:8001/v1, http://gpu2:8001/v1",
            "PASA_SELECTOR_URLS": '["http://gpu1:8002/v1"]',
            "PASA_SEARCH_SOURCES": "arxiv,openalex",
            "SERPER_API_KEY": "${user_config.serper_api_key}",  # left empty: the host did not expand it
            "S2_API_KEY": " ",
            "PASA_OPENALEX_MAILTO": "me@example.org",
        }
    )
    assert settled == {
        "PASA_CRAWLER_URLS": '["http://gpu1:8001/v1", "http://gpu2:8001/v1"]',
        "PASA_SELECTOR_URLS": '["http://gpu1:8002/v1"]',
        "PASA_SEARCH_SOURCES": '["arxiv", "openalex"]',
        "PASA_OPENALEX_MAILTO": "me@example.org",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settled.items():
            patch.setenv(name, value)
        settings = Settings()
    assert settings.crawler_urls == ["http://gpu1:8001/v1", "http://gpu2:8001/v1"]
    assert settings.sources == ["arxiv", "openalex"] and settings.serper_api_key is None


@pytest.mark.anyio
async def test_the_entry_point_serves_mcp_on_stdio(tmp_path: Path) -> None:
    import anyio
    from mcp import Client, StdioServerParameters

    env = {
        **os.environ,
        "PASA_STORE_PATH": str(tmp_path / "store.sqlite3"),
        "PASA_CRAWLER_URLS": "http://127.0.0.1:9/v1",
        "SERPER_API_KEY": "${user_config.serper_api_key}",
    }
    main = str(BUNDLE / MANIFEST["server"]["entry_point"])
    with anyio.fail_after(60):
        async with Client(StdioServerParameters(command=sys.executable, args=[main], env=env)) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
    assert names == [tool["name"] for tool in MANIFEST["tools"]]
