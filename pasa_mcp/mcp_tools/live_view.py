"""The live view of a deep search (MCP Apps): a self-contained ui:// page bound to paper_search and
paper_search_status. Hosts with Apps render it beside the call: progress as it happens, then the
selected papers as a tree of how each was found (query, or citing paper and section) with scores,
links and a BibTeX export; it polls paper_search_status and calls get_bibtex through the host.
Clients without Apps ignore the binding and keep the tools' text results."""

from __future__ import annotations

from importlib import resources

from mcp.server.apps import Apps

URI = "ui://pasa/search.html"
BINDING = {"ui": {"resourceUri": URI}}  # the tools' _meta that points hosts at the view


def page() -> str:
    return resources.files("pasa_mcp").joinpath("data/live_view.html").read_text(encoding="utf-8")


def apps() -> Apps:
    """The Apps extension with the view registered (the tools are bound by server.py with BINDING)."""
    extension = Apps()
    extension.add_html_resource(URI, page(), name="pasa-search", title="PaSa deep search, live")
    return extension
