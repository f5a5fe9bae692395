"""`python -m pasa_mcp` is the `pasa-mcp` command."""

from .cli import app

app(prog_name="pasa-mcp")
