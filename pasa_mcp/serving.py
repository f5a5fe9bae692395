"""Serving the PaSa checkpoints from the installed package: vLLM (safetensors) or llama.cpp (GGUF).

`commands` builds the server command lines (one per role), `serve` runs them: one role in the
foreground, or both, the selector started only once the crawler answers (vLLM sizes its cache from
the memory free when it starts). The served names are the ones pasa-mcp asks for by default.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import httpx

Role = Literal["crawler", "selector"]
Engine = Literal["vllm", "llama.cpp"]
REPO = "bytedance-research"
PORTS: dict[Role, int] = {"crawler": 8001, "selector": 8002}
MAX_LEN = 8192  # PaSa prompts are short; this leaves room for long abstracts and section lists
SELECTOR_LOGPROBS = 20  # vLLM's --max-logprobs: the selector reads the top 20 on servers without logprob_token_ids


class ServeError(Exception):
    """Serving cannot start: the message says what is missing and how to get it."""


def name(role: Role) -> str:
    return f"pasa-7b-{role}"


def gguf_path(weights: Path, role: Role, quant: str) -> Path:
    """Where the converted checkpoint is expected: <weights>/pasa-7b-<role>-<quant>.gguf (see the README)."""
    return weights / f"{name(role)}-{quant}.gguf"


def command(
    role: Role,
    engine: Engine,
    *,
    weights: Path,
    host: str,
    port: int,
    gpu_util: float,
    quant: str = "Q8_0",
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that serves `role` under its default name."""
    if engine == "vllm":
        args = ["vllm", "serve", str(weights / name(role)), "--served-model-name", name(role)]
        args += ["--host", host, "--port", str(port), "--gpu-memory-utilization", str(gpu_util)]
        args += ["--max-model-len", str(MAX_LEN)]
        if role == "selector":
            args += ["--max-logprobs", str(SELECTOR_LOGPROBS)]
    else:
        # The GGUF carries the chat template (the converter copies it); --jinja applies it as written.
        args = ["llama-server", "-m", str(gguf_path(weights, role, quant)), "--alias", name(role), "--jinja"]
        args += ["--host", host, "--port", str(port), "-c", str(MAX_LEN)]
    return args + list(extra)


def prepare(role: Role, engine: Engine, weights: Path, quant: str) -> None:
    """Make sure the weights are there: vLLM's are downloaded once; a GGUF must be converted first."""
    if engine == "llama.cpp":
        path = gguf_path(weights, role, quant)
        if not path.is_file():
            raise ServeError(
                f"{path} not found: convert the checkpoint first (README: 'Running the checkpoints with llama.cpp'), "
                f"or pass --quant to pick another converted file"
            )
        if shutil.which("llama-server") is None:
            raise ServeError("llama-server not found on PATH: install llama.cpp (its releases or your package manager)")
        return
    if shutil.which("vllm") is None:
        raise ServeError("vllm is not installed: pip install 'pasa-mcp[vllm]' (Linux with a CUDA GPU)")
    target = weights / name(role)
    if (target / "config.json").is_file():
        return
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ServeError("huggingface_hub is needed to download the weights: pip install huggingface_hub") from None
    print(f"downloading {REPO}/{name(role)} into {target} (about 15 GB)", file=sys.stderr, flush=True)
    snapshot_download(f"{REPO}/{name(role)}", local_dir=target)


def wait_ready(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 1800) -> None:
    """Wait until the server's /health answers 200 (both engines have it), or the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeError(f"the server on port {port} exited with status {process.returncode}")
        try:
            if httpx.get(f"http://{host}:{port}/health", timeout=5).status_code == 200:
                print(f"ready: http://{host}:{port}/v1", file=sys.stderr, flush=True)
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise ServeError(f"the server on port {port} was not ready after {timeout:.0f} s")


def serve(commands: Sequence[list[str]], host: str, ports: Sequence[int]) -> int:
    """Run one server in place of this process, or several one after another; returns an exit status."""
    if len(commands) == 1:
        os.execvp(commands[0][0], commands[0])  # noqa: S606 (the user's own command)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for args, port in zip(commands, ports, strict=True):
            processes.append(subprocess.Popen(args))  # noqa: S603
            wait_ready(host, port, processes[-1])
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        return next(p.returncode for p in processes if p.returncode is not None)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
