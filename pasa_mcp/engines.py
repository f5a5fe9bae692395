"""Which inference server stands behind a model URL, and how each one is asked the same questions.

The `pasa` backends must run the checkpoints exactly as trained on whatever serves them: vLLM (and
SGLang, which takes vLLM's parameters), llama.cpp's `llama-server`, llama-cpp-python's server,
Ollama, or a hosted OpenAI-compatible endpoint. They differ in three ways that matter here:

- Parameter names and neutral values. Greedy must stay greedy and sampling must mean temperature and
  top_p only, so every other sampler is switched off explicitly: vLLM `top_k=-1, min_p=0,
  repetition_penalty=1`; llama.cpp and llama-cpp-python `top_k=0, min_p=0, repeat_penalty=1` (their
  defaults are 40, 0.05 and 1.1, and llama-cpp-python rejects `top_k=-1`); Ollama the same inside
  `options`. Unknown servers get the vLLM names, dropped if the server rejects them (`llm.ModelClient`).
- The raw completion path for the selector's untemplated prompt: vLLM `/v1/completions` (a list of
  prompts per request); llama-server `/completion` (a list too); llama-cpp-python `/v1/completions`
  (one prompt per request: it refuses lists); Ollama `/api/generate` with `raw: true` (one prompt,
  no template), since its `/v1/completions` has no logprobs.
- Where P(True) comes from: vLLM `top_logprobs` keyed `token_id:N` (or exactly the asked token with
  `logprob_token_ids`); llama-server `completion_probabilities[0].top_logprobs` with token ids (older
  builds: `probs` with token texts and probabilities); llama-cpp-python `top_logprobs` keyed by token
  text; Ollama `logprobs[0].top_logprobs` by token text, at most 20. All are log-softmax of the raw
  logits, so a listed `True` is exact and an absent one gets the bound of `llm.true_probability`.

`detect` learns the server from what it serves beside the OpenAI routes: `/version` (vLLM),
`/props` (llama-server), `/api/version` (Ollama), the OpenAPI title (llama-cpp-python).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

Engine = Literal["vllm", "llama.cpp", "llama-cpp-python", "ollama", "openai"]
ENGINES: tuple[Engine, ...] = ("vllm", "llama.cpp", "llama-cpp-python", "ollama", "openai")

# Sampler settings that leave temperature and top_p alone, per family of parameter names.
VLLM_NEUTRAL = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
LLAMA_NEUTRAL = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
OLLAMA_TOP_LOGPROBS = 20  # Ollama's maximum


async def detect(probe: Callable[[str], Awaitable[Any]]) -> Engine | None:
    """The engine at a server root, from `probe(path)` (a JSON answer, False for a non-JSON answer or
    an error status, None when nothing answered).

    Returns None when no probe was answered at all (the server may not be up yet: ask again later),
    and "openai" for a server that answers but is none of the known ones.
    """
    answered = False
    version = await probe("/version")
    answered |= version is not None
    if isinstance(version, dict) and isinstance(version.get("version"), str) and len(version) <= 2:
        return "vllm"
    props = await probe("/props")
    answered |= props is not None
    if isinstance(props, dict) and "default_generation_settings" in props:
        return "llama.cpp"
    ollama = await probe("/api/version")
    answered |= ollama is not None
    if isinstance(ollama, dict) and isinstance(ollama.get("version"), str):
        return "ollama"
    openapi = await probe("/openapi.json")
    answered |= openapi is not None
    title = ((openapi or {}).get("info") or {}).get("title", "") if isinstance(openapi, dict) else ""
    if "llama.cpp" in str(title):
        return "llama-cpp-python"
    return "openai" if answered else None


def neutral(engine: Engine) -> dict[str, Any]:
    """The extra sampler parameters that make temperature and top_p mean what they say."""
    return dict(LLAMA_NEUTRAL if engine in ("llama.cpp", "llama-cpp-python", "ollama") else VLLM_NEUTRAL)


def ollama_options(openai: Mapping[str, Any], explicit: bool) -> dict[str, Any]:
    """OpenAI-named sampling parameters as Ollama's `options` (max_tokens is num_predict)."""
    options = {name: value for name, value in openai.items() if name not in ("max_tokens", "n")}
    options["num_predict"] = openai["max_tokens"]
    if explicit:
        options |= LLAMA_NEUTRAL
    return options


def _by_id_or_text(entries: list[Any], value: Callable[[dict[str, Any]], float]) -> dict[str, float]:
    """A top list of {id?, token, logprob|prob} as a dict: keys `token_id:N` when ids are given, else texts.

    Two tokens that decode to the same text keep the likelier one's value.
    """
    top: dict[str, float] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        text = entry.get("token", entry.get("tok_str"))
        key = f"token_id:{entry['id']}" if isinstance(entry.get("id"), int) else text
        if isinstance(key, str):
            top[key] = max(top.get(key, -math.inf), value(entry))
    return top


def llama_server_top(result: Mapping[str, Any]) -> dict[str, float]:
    """The first position's top logprobs in one llama-server `/completion` result (new or old form)."""
    probabilities = result.get("completion_probabilities") or []
    if not probabilities or not isinstance(probabilities[0], dict):
        return {}
    first = probabilities[0]
    if "top_logprobs" in first:
        return _by_id_or_text(first["top_logprobs"], lambda entry: float(entry["logprob"]))
    if "top_probs" in first:  # post_sampling_probs
        return _by_id_or_text(first["top_probs"], lambda entry: math.log(max(float(entry["prob"]), 1e-300)))
    return _by_id_or_text(first.get("probs") or [], lambda entry: math.log(max(float(entry["prob"]), 1e-300)))


def ollama_top(answer: Mapping[str, Any]) -> dict[str, float]:
    """The first position's top logprobs of an Ollama `/api/generate` or `/api/chat` answer."""
    logprobs = answer.get("logprobs") or []
    if not logprobs or not isinstance(logprobs[0], dict):
        return {}
    return _by_id_or_text(logprobs[0].get("top_logprobs") or [], lambda entry: float(entry["logprob"]))


def ollama_chat_choice(answer: Mapping[str, Any]) -> dict[str, Any]:
    """An Ollama `/api/chat` answer as an OpenAI chat choice (message, logprobs.content)."""
    message = answer.get("message") or {}
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": message.get("content") or ""}}
    if answer.get("logprobs"):
        choice["logprobs"] = {"content": answer["logprobs"]}
    return choice
