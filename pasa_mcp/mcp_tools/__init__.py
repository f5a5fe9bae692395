"""The MCP server's tools, resources and prompt, by concern; server.py wires them into a server.

Thin adapters over the library: every tool reads the shared `Pasa` and `Jobs` from the lifespan
state, turns expected failures (bad arguments, unreachable models or sources) into error results
that name the problem, and keeps its output small (trimmed abstracts, pages of lists, paper ids
that the other tools accept).
"""
