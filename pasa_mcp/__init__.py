"""pasa-mcp: the PaSa paper-search agent as an MCP server and command line."""

__version__ = "0.1.0"
