"""The Claude Desktop bundle's entry point: the settings form's values to pasa-mcp's environment, then
the MCP server on stdio.

The form gives plain text: lists come comma-separated (pasa-mcp reads them as JSON), and a field the
user left empty may arrive empty or as its unexpanded `${user_config.…}` placeholder (then unset).
"""

import json
import os

LISTS = ("PASA_CRAWLER_URLS", "PASA_SELECTOR_URLS", "PASA_SEARCH_SOURCES")


def settle(env: dict[str, str]) -> dict[str, str]:
    settled = {}
    for name, value in env.items():
        value = value.strip()
        if not value or value.startswith("${user_config."):
            continue
        if name in LISTS and not value.startswith("["):
            value = json.dumps([part.strip() for part in value.split(",") if part.strip()])
        settled[name] = value
    return settled


if __name__ == "__main__":
    ours = [name for name in os.environ if name.startswith("PASA_") or name.endswith("_API_KEY")]
    formed = {name: os.environ.pop(name) for name in ours}
    os.environ.update(settle(formed))

    from pasa_mcp.cli import app

    app(["serve"])
