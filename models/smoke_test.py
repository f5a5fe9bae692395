"""GPU smoke test, kept for checkouts: the logic lives in the package (`pasa-mcp models smoke-test`)."""

import sys

import anyio

from pasa_mcp.smoke import main

if __name__ == "__main__":
    sys.exit(anyio.run(main))
