"""`pasa-mcp models serve|smoke-test`: serve the PaSa checkpoints and check them, from the installed package."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import anyio
import typer

from . import serving

app = typer.Typer(help="Serve the PaSa checkpoints (vLLM or llama.cpp) and smoke-test them.", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(
    ctx: typer.Context,
    role: Annotated[Literal["crawler", "selector", "both"], typer.Argument(help="Which model to serve.")],
    engine: Annotated[Literal["vllm", "llama.cpp"], typer.Option(help="vLLM (GPU) or llama.cpp (GGUF).")] = "vllm",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    crawler_port: Annotated[int, typer.Option(min=1, max=65535)] = serving.PORTS["crawler"],
    selector_port: Annotated[int, typer.Option(min=1, max=65535)] = serving.PORTS["selector"],
    gpu_util: Annotated[
        float | None, typer.Option(help="vLLM memory share (default 0.90, 0.45 each for both).")
    ] = None,
    quant: Annotated[str, typer.Option(help="llama.cpp: which converted GGUF (<weights>/pasa-7b-ROLE-QUANT.gguf).")] = (
        "Q8_0"
    ),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the commands instead of running them.")] = False,
) -> None:
    """Serve a checkpoint under the name pasa-mcp asks for. Arguments after -- go to the server."""
    from .cli import _settings, err

    settings = _settings()
    roles: list[serving.Role] = ["crawler", "selector"] if role == "both" else [role]
    ports = [crawler_port if r == "crawler" else selector_port for r in roles]
    util = gpu_util if gpu_util is not None else (0.45 if role == "both" else 0.90)
    commands = [
        serving.command(
            r, engine, weights=settings.weights_dir, host=host, port=p, gpu_util=util, quant=quant, extra=ctx.args
        )
        for r, p in zip(roles, ports, strict=True)
    ]
    if dry_run:
        for args in commands:
            print(" ".join(args))
        return
    try:
        for r in roles:
            serving.prepare(r, engine, settings.weights_dir, quant)
        raise typer.Exit(serving.serve(commands, host, ports))
    except serving.ServeError as exc:
        err.print(f"[red]{exc}[/red]", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


@app.command("smoke-test")
def smoke_test() -> None:
    """Check the served models end to end and report what only the real checkpoints can tell."""
    from .cli import _settings
    from .smoke import main

    _settings()  # a bad setting is one line, before anything runs
    sys.exit(anyio.run(main))
