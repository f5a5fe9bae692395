"""vLLM's OpenAI-compatible API serving one scripted model (the crawler or the selector).

The JSON follows vLLM: completions with `logprobs` {tokens, token_logprobs, top_logprobs, text_offset},
`return_tokens_as_token_ids` (keys `token_id:N`), `logprob_token_ids` (from version 0.26: the sampled
token plus the requested ids, instead of the top N), errors as {"error": {message, type, code}}.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from random import Random
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import models
from .config import Context

Handler = Callable[[Request], Awaitable[Response]]

# vLLM (OpenAI-compatible) -------------------------------------------------------------------------


class UnknownModel(Exception):
    """A request named a model this server does not serve (vLLM answers 404)."""


def _vllm_error(message: str, status: int = 400, kind: str = "BadRequestError") -> Response:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


def routes(ctx: Context, service: str) -> list[Route]:
    corpus, config = ctx.corpus, ctx.config
    state = ctx.states[service]
    served = models.CRAWLER_MODEL if service == "crawler" else models.SELECTOR_MODEL
    new_api = tuple(int(x) for x in re.findall(r"\d+", config.vllm_version)[:2]) >= (0, 26)
    counter = iter(range(1 << 62))

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON body: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object")
        model = body.get("model", served)
        if model != served:
            raise UnknownModel(f"The model `{model}` does not exist.")
        return body

    def sampler(body: dict[str, Any]) -> Random | None:
        # vLLM fills a missing temperature from the checkpoint's generation_config (0.7 for Qwen2.5).
        temperature = body.get("temperature", 0.7)
        if not isinstance(temperature, int | float) or temperature < 0:
            raise ValueError("temperature must be a number >= 0")
        if temperature == 0:
            return None
        seed = body.get("seed")
        return Random(f"sample:{config.seed}:{seed}" if seed is not None else f"sample:{config.seed}:{next(counter)}")

    def limit_tokens(body: dict[str, Any], default: int) -> int:
        value = body.get("max_completion_tokens", body.get("max_tokens", default))
        if value is None:
            return default
        if not isinstance(value, int) or value < 1:
            raise ValueError("max_tokens must be a positive integer")
        return value

    def usage(prompt: int, completion: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "completion_tokens": completion,
            "prompt_tokens_details": None,
        }

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except UnknownModel as exc:
                return _vllm_error(str(exc), 404, "NotFoundError")
            except (ValueError, models.PromptError) as exc:
                return _vllm_error(str(exc))

        return run

    async def chat(request: Request) -> Response:
        body = await body_of(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list")
        if body.get("n", 1) != 1:
            raise ValueError("the simulation supports n = 1 only")
        texts = [_content(m) for m in messages]
        user = [t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user"]
        if service != "crawler" or not user:
            raise models.PromptError("the simulated chat model is the crawler: send the PaSa crawler prompts")
        rng = sampler(body)
        text = models.crawler_reply(corpus, user[-1], rng)
        max_tokens = limit_tokens(body, 512)
        out = models.pieces(text)
        finish = "stop"
        if len(out) > max_tokens:
            text, finish = "".join(out[:max_tokens]), "length"
        prompt_tokens = sum(len(models.pieces(t)) for t in texts) + 20  # the chat template's own tokens
        completion = min(len(out), max_tokens)
        _check_length(prompt_tokens, completion)
        await state.token_delay(prompt_tokens, completion)
        message = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": [],
            "reasoning_content": None,
        }
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": served,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish, "stop_reason": None}
                ],
                "usage": usage(prompt_tokens, completion),
                "prompt_logprobs": None,
            }
        )

    async def completions(request: Request) -> Response:
        body = await body_of(request)
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompt must be a string or a non-empty list of strings")
        if service != "selector":
            raise models.PromptError("the simulated completions model is the selector: send get_selected prompts")
        if body.get("n", 1) != 1:
            raise ValueError("the simulation supports n = 1 only")
        top = body.get("logprobs")
        if top is not None and (not isinstance(top, int) or top < 0):
            raise ValueError("logprobs must be a non-negative integer")
        if top is not None and top > 20:
            raise ValueError(f"Requested sample logprobs of {top}, which is greater than max allowed: 20")
        wanted_ids = body.get("logprob_token_ids") if new_api else None
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        rng = sampler(body)
        max_tokens = limit_tokens(body, 16)
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for i, text in enumerate(prompts):
            p = models.selector_probability(corpus, text, config.selector_noise)
            choice, used = _selector_choice(i, p, rng, max_tokens, top, wanted_ids, as_ids)
            choices.append(choice)
            prompt_tokens += len(models.pieces(text))
            completion_tokens += used
            _check_length(len(models.pieces(text)), used)
        # A batch decodes in parallel: its output time is that of the longest choice.
        await state.token_delay(prompt_tokens, max(c["_tokens"] for c in choices))
        for c in choices:
            del c["_tokens"]
        return JSONResponse(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": served,
                "choices": choices,
                "usage": usage(prompt_tokens, completion_tokens),
            }
        )

    async def tokenize(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body.get("prompt"), str):
            text = body["prompt"]
        elif isinstance(body.get("messages"), list):
            text = "".join(_content(m) for m in body["messages"])
        else:
            raise ValueError("tokenize needs a string prompt or a list of messages")
        ids = [models.token_id(piece) for piece in models.pieces(text)]
        return JSONResponse(
            {"count": len(ids), "max_model_len": models.MAX_MODEL_LEN, "tokens": ids, "token_strs": None}
        )

    async def model_list(_: Request) -> Response:
        card = {
            "id": served,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": served,
            "parent": None,
            "max_model_len": models.MAX_MODEL_LEN,
            "permission": [],
        }
        return JSONResponse({"object": "list", "data": [card]})

    async def health(_: Request) -> Response:
        return Response(status_code=200)

    async def version(_: Request) -> Response:
        return JSONResponse({"version": config.vllm_version})

    return [
        Route("/v1/chat/completions", guarded(chat), methods=["POST"]),
        Route("/v1/completions", guarded(completions), methods=["POST"]),
        Route("/tokenize", guarded(tokenize), methods=["POST"]),
        Route("/v1/models", model_list),
        Route("/health", health),
        Route("/version", version),
    ]


def _content(message: Any) -> str:
    if not isinstance(message, dict):
        raise ValueError("each message must be an object with role and content")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    raise ValueError("message content must be a string or a list of parts")


def _check_length(prompt_tokens: int, completion: int) -> None:
    if prompt_tokens + completion > models.MAX_MODEL_LEN:
        raise ValueError(
            f"This model's maximum context length is {models.MAX_MODEL_LEN} tokens. However, you requested "
            f"{prompt_tokens + completion} tokens."
        )


def _selector_choice(
    index: int, p: float, rng: Random | None, max_tokens: int, top: int | None, wanted_ids: Any, as_ids: bool
) -> tuple[dict[str, Any], int]:
    """One completion choice: the decision token (argmax, or sampled), then an optional reason."""
    dist = models.distribution(p)
    if rng is None:
        first = next(iter(dist))
    else:
        first = rng.choices(list(dist), [math.exp(lp) for lp in dist.values()])[0]
    rest = models.pieces(models.reason(p))
    emitted = [first, *rest][:max_tokens]
    finish = "length" if 1 + len(rest) > max_tokens else "stop"

    def key(token: str) -> str:
        return f"token_id:{models.token_id(token)}" if as_ids else token

    choice: dict[str, Any] = {
        "index": index,
        "text": "".join(emitted),
        "logprobs": None,
        "finish_reason": finish,
        "stop_reason": None,
        "prompt_logprobs": None,
        "_tokens": len(emitted),
    }
    if top is not None:
        if isinstance(wanted_ids, list) and wanted_ids:
            first_top = {key(first): dist[first]}
            for tid in wanted_ids:
                token = models.token_text(tid) if isinstance(tid, int) else None
                first_top[f"token_id:{tid}" if as_ids or token is None else token] = (
                    dist[token] if token is not None else -9999.0
                )
        else:
            ranked = list(dist.items())[:top]
            first_top = {key(t): lp for t, lp in ranked}
            first_top.setdefault(key(first), dist[first])
        tops = [first_top] + [{key(t): -0.05} for t in emitted[1:]]
        offsets, at = [], 0
        for t in emitted:
            offsets.append(at)
            at += len(t)
        choice["logprobs"] = {
            "text_offset": offsets,
            "token_logprobs": [dist[first]] + [-0.05] * (len(emitted) - 1),
            "tokens": [key(t) for t in emitted],
            "top_logprobs": tops,
        }
    return choice, len(emitted)
