"""OpenAI-compatible model client: chat for the crawler, completions with logprobs for the selector.

One `ModelClient` serves one model from one or more base URLs (vLLM replicas, or a router in
front of them). Each request goes to the URL with the fewest requests outstanding; a URL that stays
unreachable after `Net`'s retries hands the request to the next one. Every request goes through
`Net` as host `model:<url>` (concurrency `model_concurrency`, no pacing).

Every sampling parameter is sent explicitly: vLLM otherwise fills missing ones from the checkpoint's
`generation_config.json` (Qwen2.5's sets top_k 20 and repetition_penalty 1.05, which change even
greedy output). For vLLM (`vllm=True`) that includes its extras `top_k=-1`, `min_p=0` and
`repetition_penalty=1` (neutral values); general OpenAI-compatible endpoints get only the OpenAI
parameters, because OpenAI itself rejects unknown ones.

P(True) follows PROTOCOL section 4, see `true_probability`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
from pydantic import SecretStr

from .config import Settings
from .net import Net, SourceRejected, SourceUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
Role = Literal["crawler", "selector"]

TRUE = "True"  # the selector's positive token, spelled without a leading space
DEFAULT_TOP_N = 20  # vLLM's default --max-logprobs
MODEL_RETRIES = 3  # backoff 1 + 2 + 4 s before a model URL counts as unavailable


class ModelError(Exception):
    """A model endpoint refused a request or answered something unusable."""


class ModelUnavailable(ModelError):
    """Every base URL of a model failed; the message says which, and how to get a model running."""

    def __init__(self, role: str, failures: Sequence[tuple[str, str]]) -> None:
        self.role = role
        self.urls = [url for url, _ in failures]
        tried = "; ".join(f"{url} ({why})" for url, why in failures)
        super().__init__(
            f"{role} model unavailable at {tried}. Start it with `models/serve.sh {role}` (see models/README.md), "
            f"or point PASA_{role.upper()}_URLS at another OpenAI-compatible endpoint "
            f"and set PASA_{role.upper()}_BACKEND=general."
        )


@dataclass(frozen=True)
class Sampling:
    """The OpenAI sampling parameters of one request (n is always 1)."""

    temperature: float
    top_p: float
    max_tokens: int


@dataclass
class Usage:
    """Counters for benchmarks and run reports."""

    calls: int = 0  # answered generation requests (tokenize and model listing excluded)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    bounded: int = 0  # P(True) values that are upper bounds (True outside the top-N), see true_probability


@dataclass(frozen=True)
class Judgement:
    """The selector's first-token verdict for one prompt."""

    p_true: float
    exact: bool  # False: p_true is an upper bound, the decision "> 0.5" is still exact
    text: str  # the generated text (one token for scoring, a reason for explanations)


@dataclass
class _Server:
    url: str  # base URL ending in /v1 (or wherever the OpenAI routes live)
    host: str
    outstanding: int = 0
    true_id: int | None = None
    true_key: str | None = None  # key of token True in top_logprobs, learned once
    unsupported: set[str] = field(default_factory=set)  # optional request fields this server rejects or ignores
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    @property
    def root(self) -> str:
        """The server root: vLLM serves /tokenize beside /v1, not under it."""
        return self.url.removesuffix("/v1")


def safe_url(url: str) -> str:
    """`url` without user:password, so that it can appear in messages."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def true_probability(top: Mapping[str, float], key: str) -> tuple[float, bool]:
    """P(token `key`) from one position's top logprobs (log-softmax over the whole vocabulary).

    Returns (probability, exact). When `key` is listed, exp(logprob) is exact. When it is not, its
    probability is at most the smallest listed one (the list is the greedy top-N) and at most the mass
    the list leaves over; the smaller bound is returned. That bound is never above 0.5: the absent
    token is no likelier than the top token and the two sum to at most 1. So the selection decision
    (score > 0.5) is exact either way, and bounded papers still rank below every selected one.
    """
    if key in top:
        return math.exp(top[key]), True
    if not top:
        raise ModelError("the model returned an empty top_logprobs list")
    probs = [math.exp(value) for value in top.values()]
    # 0.5 is itself a proven bound; it also keeps rounding in exp() from ever crossing the threshold.
    return max(0.0, min(min(probs), 1.0 - sum(probs), 0.5)), False


class ModelClient:
    """One model behind one or more OpenAI-compatible base URLs."""

    def __init__(
        self,
        net: Net,
        *,
        role: Role,
        model: str,
        urls: Sequence[str],
        api_key: SecretStr | None = None,
        timeout: float = 120.0,
        concurrency: int = 8,
        vllm: bool = True,
        top_n: int = DEFAULT_TOP_N,
    ) -> None:
        if not urls:
            raise ValueError(f"no base URL configured for the {role} model: set PASA_{role.upper()}_URLS")
        self.net, self.role, self.model, self.vllm, self.top_n = net, role, model, vllm, top_n
        self.usage = Usage()
        self._key = api_key.get_secret_value() if api_key else ""
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._servers: list[_Server] = []
        for url in urls:
            server = _Server(url.rstrip("/"), f"model:{url.rstrip('/')}")
            # Few retries: a model that is not running should be reported within seconds, not half a minute.
            net.host(
                server.host,
                label=f"{role} model at {safe_url(server.url)}",
                interval=0,
                concurrency=concurrency,
                retries=min(MODEL_RETRIES, net.retries),
            )
            self._servers.append(server)
        self._turn = 0

    @classmethod
    def from_settings(cls, settings: Settings, net: Net, role: Role) -> ModelClient:
        prefix = role + "_"
        return cls(
            net,
            role=role,
            model=getattr(settings, prefix + "model"),
            urls=getattr(settings, prefix + "urls"),
            api_key=getattr(settings, prefix + "api_key"),
            timeout=settings.model_timeout,
            concurrency=settings.model_concurrency,
            vllm=getattr(settings, prefix + "backend") == "pasa",
        )

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self._servers]

    # Public calls ---------------------------------------------------------------------------

    async def chat(
        self, messages: Sequence[Mapping[str, str]], sampling: Sampling, *, top_logprobs: int = 0
    ) -> dict[str, Any]:
        """One chat completion; returns its choice (`message`, and `logprobs` when asked and given).

        A server that answers 400 to the logprobs fields is asked again without them, and not again.
        """
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), **self._sampling(sampling)}
        if top_logprobs:
            body |= {"logprobs": True, "top_logprobs": top_logprobs}

        async def send(server: _Server) -> dict[str, Any]:
            data = await self._post(server, "/chat/completions", body, optional=("logprobs", "top_logprobs"))
            return self._choices(server, data, 1)[0]

        return await self._call(send)

    async def judge(self, prompts: Sequence[str], *, max_tokens: int = 1) -> list[Judgement]:
        """P(True) at the first generated position of each raw prompt (no chat template), in order.

        All prompts go in one /completions request, greedy. The id of `True` is learned once per
        server from /tokenize; `logprob_token_ids` asks for exactly that token (vLLM >= 0.26). Older
        servers ignore the field and send the top-N, keyed `token_id:N` so that tokens cannot
        collide; a server seen ignoring (or rejecting) the field is not sent it again. Should a
        server both honour it and add the top-N, it is merely treated as an older one: still correct.
        """
        if not prompts:
            return []
        sampling = Sampling(temperature=0.0, top_p=1.0, max_tokens=max_tokens)

        async def send(server: _Server) -> list[Judgement]:
            key = await self._true_key(server)
            body: dict[str, Any] = {
                "model": self.model,
                "prompt": list(prompts),
                **self._sampling(sampling),
                "logprobs": self.top_n,
            }
            if server.true_id is not None:
                body |= {"return_tokens_as_token_ids": True, "logprob_token_ids": [server.true_id]}
            data = await self._post(server, "/completions", body, optional=("logprob_token_ids",))
            choices = self._choices(server, data, len(prompts))
            tops = [self._first_top(server, choice) for choice in choices]
            if "logprob_token_ids" in body and "logprob_token_ids" not in server.unsupported:
                # Honoured, the field leaves only the sampled token and True; more means it was ignored.
                if any(len(top) > 2 for top in tops):
                    server.unsupported.add("logprob_token_ids")
                    log.info(
                        "%s ignores logprob_token_ids: reading True from the top %d", safe_url(server.url), self.top_n
                    )
            judged = [
                Judgement(*true_probability(top, key), choice.get("text") or "")
                for top, choice in zip(tops, choices, strict=True)
            ]
            self.usage.bounded += sum(not j.exact for j in judged)
            return judged

        return await self._call(send)

    async def served_models(self) -> dict[str, list[str]]:
        """The model names each base URL serves (GET /models), for checks and `doctor`."""

        async def fetch(server: _Server) -> list[str]:
            models = await self._request(server, "GET", server.url + "/models")
            return [str(item.get("id")) for item in models.get("data", [])]

        return {server.url: await self._call(fetch, only=server) for server in self._servers}

    async def true_token_keys(self) -> dict[str, str]:
        """The top_logprobs key of token True on each base URL (`token_id:N`, or `True` without /tokenize)."""
        return {server.url: await self._call(self._true_key, only=server) for server in self._servers}

    # Plumbing -------------------------------------------------------------------------------

    def _sampling(self, sampling: Sampling) -> dict[str, Any]:
        body: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "n": 1,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
        }
        if self.vllm:
            body |= {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
        return body

    def _next(self, tried: set[str], only: _Server | None) -> _Server | None:
        """The untried server with the fewest outstanding requests (ties rotate), or `only` once."""
        if only is not None:
            return None if only.url in tried else only
        order = self._servers[self._turn :] + self._servers[: self._turn]
        self._turn = (self._turn + 1) % len(self._servers)
        candidates = [server for server in order if server.url not in tried]
        return min(candidates, key=lambda server: server.outstanding) if candidates else None

    async def _call(self, fn: Callable[[_Server], Awaitable[T]], only: _Server | None = None) -> T:
        failures: list[tuple[str, str]] = []
        tried: set[str] = set()
        while (server := self._next(tried, only)) is not None:
            tried.add(server.url)
            server.outstanding += 1
            try:
                return await fn(server)
            except SourceUnavailable as exc:
                retries = f" after {exc.attempts - 1} retries" if exc.attempts > 1 else ""
                failures.append((safe_url(server.url), exc.last + retries))
                log.warning("%s model at %s unavailable: %s", self.role, safe_url(server.url), exc.last)
            except SourceRejected as exc:
                raise ModelError(self._scrub(self._rejection(exc))) from None
            finally:
                server.outstanding -= 1
        raise ModelUnavailable(self.role, failures)

    def _rejection(self, exc: SourceRejected) -> str:
        hint = ""
        if exc.status in (401, 403):
            hint = f" (check PASA_{self.role.upper()}_API_KEY)"
        elif exc.status == 404:
            hint = f" (is model '{self.model}' served there? Check PASA_{self.role.upper()}_MODEL and GET /v1/models)"
        return f"{exc}{hint}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "****") if self._key else text

    async def _request(self, server: _Server, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON object the server answers; a garbled answer is retried like a 503 (see `Net`)."""
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        return await self.net.request(
            server.host, method, url, headers=headers, timeout=self._timeout, parse=_json_object, **kwargs
        )

    async def _post(
        self, server: _Server, path: str, body: dict[str, Any], optional: Sequence[str] = ()
    ) -> dict[str, Any]:
        body = {name: value for name, value in body.items() if name not in server.unsupported}
        try:
            return await self._request(server, "POST", server.url + path, json=body)
        except SourceRejected as exc:
            dropped = [name for name in optional if name in body]
            if exc.status != 400 or not dropped:
                raise
            # Only a success without them shows that these fields caused the 400.
            reduced = {name: value for name, value in body.items() if name not in dropped}
            data = await self._request(server, "POST", server.url + path, json=reduced)
            server.unsupported.update(dropped)
            log.info("%s rejects %s; sending requests without them", safe_url(server.url), ", ".join(dropped))
            return data

    async def _true_key(self, server: _Server) -> str:
        async with server.lock:
            if server.true_key is None:
                payload = {"model": self.model, "prompt": TRUE, "add_special_tokens": False}
                try:
                    tokenized = await self._request(server, "POST", server.root + "/tokenize", json=payload)
                except SourceRejected as exc:
                    if exc.status != 404:
                        raise
                    # No /tokenize (not vLLM, or a router that does not forward it): the keys are then
                    # decoded token texts, and the text "True" is still the token spelled True.
                    log.warning("%s has no /tokenize; matching token True by its text", safe_url(server.url))
                    server.true_key = TRUE
                else:
                    tokens = tokenized.get("tokens")
                    if not (isinstance(tokens, list) and len(tokens) == 1 and isinstance(tokens[0], int)):
                        raise ModelError(
                            f"{safe_url(server.root)}/tokenize gave {tokens!r} for {TRUE!r}; "
                            f"the selector needs it to be one token (is '{self.model}' the PaSa selector?)"
                        )
                    server.true_id, server.true_key = tokens[0], f"token_id:{tokens[0]}"
            return server.true_key

    def _choices(self, server: _Server, data: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        """The choices ordered by `index`, one per prompt; counts usage."""
        usage = data.get("usage") or {}
        self.usage.calls += 1
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        choices = sorted(data.get("choices") or [], key=lambda choice: choice.get("index", 0))
        if [choice.get("index", 0) for choice in choices] != list(range(expected)):
            raise ModelError(
                f"{safe_url(server.url)} answered {len(choices)} choices with indexes "
                f"{[c.get('index') for c in choices]} for {expected} prompt(s)"
            )
        return choices

    def _first_top(self, server: _Server, choice: dict[str, Any]) -> dict[str, float]:
        """The top logprobs at the first generated position."""
        tops = (choice.get("logprobs") or {}).get("top_logprobs") or []
        if not tops or not isinstance(tops[0], dict):
            raise ModelError(
                f"{safe_url(server.url)} returned no logprobs for the selector; the pasa selector backend needs "
                f"vLLM (or another server with completions logprobs), else set PASA_SELECTOR_BACKEND=general"
            )
        return tops[0]


def message_text(choice: Mapping[str, Any]) -> str:
    """The assistant text of a chat choice ("" when the model wrote nothing)."""
    return (choice.get("message") or {}).get("content") or ""


def _json_object(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__} where an object was expected")
    return data
