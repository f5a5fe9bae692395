"""pasa-mcp: the PaSa paper-search agent as an MCP server, a command line and a Python API."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Settings", "ToolFailed", "Tools", "__version__", "bibtex", "connect", "ris"]

_HOMES = {
    "Settings": "config",
    "ToolFailed": "api",
    "Tools": "api",
    "connect": "api",
    "bibtex": "export",
    "ris": "export",
}


def __getattr__(name: str) -> Any:
    """The API's names, imported on first use: `pasa-mcp --help` need not load the server."""
    if name not in _HOMES:
        raise AttributeError(f"module 'pasa_mcp' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
