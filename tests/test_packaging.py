"""What PyPI shows and ships: a README whose links work there, the licence in the package metadata."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_every_readme_link_is_absolute() -> None:
    """PyPI renders the README without the repository: a relative link or a #heading anchor breaks there."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README) + re.findall(r"<(https?://[^>]+|[^>\s]+\.md)>", README)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://"))]
    assert relative == []


def test_the_registry_ownership_marker_names_the_server() -> None:
    import json

    name = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))["name"]
    assert f"<!-- mcp-name: {name} -->" in README


def test_the_licence_is_apache_2_and_ships() -> None:
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert {"Homepage", "Repository", "Issues"} <= set(PROJECT["urls"]) and PROJECT["classifiers"]
