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

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
from pydantic import SecretStr

from . import engines
from .config import Settings
from .engines import Engine
from .net import Net, SourceRejected, SourceUnavailable
from .scrub import add as add_secret
from .scrub import scrub

log = logging.getLogger(__name__)
T = TypeVar("T")
Role = Literal["crawler", "selector"]
SamplingMode = Literal["explicit", "checkpoint"]

TRUE = "True"  # the selector's positive token, spelled without a leading space
DEFAULT_TOP_N = 20  # vLLM's default --max-logprobs
MODEL_RETRIES = 3  # backoff 1 + 2 + 4 s before a model URL counts as unavailable
LOGPROB_FIELDS = ("logprobs", "top_logprobs")
NEUTRAL_FIELDS = ("top_k", "min_p", "repetition_penalty", "repeat_penalty")
NOT_RUNNING = ("ConnectError", "ConnectTimeout")  # nothing listening, or nothing there
# A 5xx that names a bad request (llama-cpp-python answers its own validation errors with HTTP 500).
CUT_MESSAGE = re.compile(r'"(?:message|error|detail)"\s*:\s*"((?:[^"\\]|\\.)*)')
REQUEST_ERROR = re.compile(r"validation error|Input should be|Extra inputs|Field required|not supported", re.I)


class ModelError(Exception):
    """A model endpoint answered something unusable."""


DOCTOR = "`pasa-mcp doctor` checks every part"


class ModelUnavailable(ModelError):
    """A model could not answer a request. The subclasses say why, each with its own advice; callers that
    only need to know "this step failed" catch this class."""

    def __init__(self, role: str, message: str, urls: Sequence[str] = ()) -> None:
        self.role, self.urls = role, list(urls)
        super().__init__(f"{message} ({DOCTOR}).")


class ModelNotRunning(ModelUnavailable):
    """Nothing listens at any base URL of the model (connection refused, unknown host)."""

    def __init__(self, role: str, failures: Sequence[tuple[str, str]]) -> None:
        tried = "; ".join(f"{url} ({why})" for url, why in failures)
        super().__init__(
            role,
            f"{role} model not running at {tried}. Start it with `pasa-mcp models serve {role}` (vLLM or "
            f"llama.cpp, see the README), or point PASA_{role.upper()}_URLS at a running OpenAI-compatible "
            f"server (with PASA_{role.upper()}_BACKEND=general for a model other than the PaSa checkpoint)",
            [url for url, _ in failures],
        )


class ModelOverloaded(ModelUnavailable):
    """The model's server is there but failed or timed out on every attempt (5xx, time-outs, cut-off answers)."""

    def __init__(self, role: str, failures: Sequence[tuple[str, str]]) -> None:
        tried = "; ".join(f"{url} ({why})" for url, why in failures)
        super().__init__(
            role,
            f"{role} model overloaded or timed out at {tried}. The server is running: retry later, lower "
            f"PASA_MODEL_CONCURRENCY or raise PASA_MODEL_TIMEOUT, or add a replica to PASA_{role.upper()}_URLS",
            [url for url, _ in failures],
        )


class ModelRejected(ModelUnavailable):
    """The model's server refused the request itself (4xx, or a 5xx that names a bad request): retrying
    cannot help; the message is the server's own, with the setting that most likely causes it."""

    def __init__(self, role: str, url: str, status: int, message: str, hint: str = "") -> None:
        self.status, self.server_message = status, message
        super().__init__(role, f"{role} model at {url} rejected the request: HTTP {status}: {message}{hint}", [url])


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
    engine: Engine | None = None  # the inference server, learned once (pasa backends only)
    unsupported: set[str] = field(default_factory=set)  # optional request fields this server rejects or ignores
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    probe_lock: anyio.Lock = field(default_factory=anyio.Lock)

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
        sampling: SamplingMode = "explicit",
    ) -> None:
        if not urls:
            raise ValueError(f"no base URL configured for the {role} model: set PASA_{role.upper()}_URLS")
        # `vllm` (the pasa backends): the checkpoint's own parameters, on whichever engine serves it.
        self.net, self.role, self.model, self.vllm, self.top_n = net, role, model, vllm, top_n
        self.sampling_mode: SamplingMode = sampling
        self.usage = Usage()
        self._key = api_key.get_secret_value() if api_key else ""
        add_secret(self._key)
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._servers: list[_Server] = []
        for url in urls:
            server = _Server(url.rstrip("/"), f"model:{url.rstrip('/')}")
            label = f"{role} model at {safe_url(server.url)}"
            # Few retries: a model that is not running should be reported within seconds, not half a minute.
            retries = min(MODEL_RETRIES, net.retries)
            net.host(server.host, label=label, interval=0, concurrency=concurrency, retries=retries, rest_after=0)
            # Probes ask once: an endpoint a server lacks is an answer, not a failure.
            net.host(
                server.host + "#probe",
                label=label + " (probes)",
                interval=0,
                concurrency=concurrency,
                retries=0,
                rest_after=0,
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
            sampling=settings.model_sampling,
        )

    @property
    def mode_suffix(self) -> str:
        """ "+checkpoint" in checkpoint sampling mode: its answers and scores are cached apart."""
        return "+checkpoint" if self.vllm and self.sampling_mode == "checkpoint" else ""

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

        async def send(server: _Server) -> dict[str, Any]:
            engine = await self._engine(server)
            params = self._sampling(sampling, engine)
            if engine == "ollama":
                body: dict[str, Any] = {"model": self.model, "messages": list(messages), "stream": False}
                body["options"] = engines.ollama_options(params, self.sampling_mode == "explicit")
                if top_logprobs:
                    body |= {"logprobs": True, "top_logprobs": min(top_logprobs, engines.OLLAMA_TOP_LOGPROBS)}
                answer = await self._post(server, server.root + "/api/chat", body)
                self._count(answer.get("prompt_eval_count"), answer.get("eval_count"))
                return engines.ollama_chat_choice(answer)
            body = {"model": self.model, "messages": list(messages), **params}
            if top_logprobs:
                body |= {"logprobs": True, "top_logprobs": top_logprobs}
            data = await self._post(server, server.url + "/chat/completions", body, optional=LOGPROB_FIELDS)
            return self._choices(server, data, 1)[0]

        return await self._call(send)

    async def judge(self, prompts: Sequence[str], *, max_tokens: int = 1) -> list[Judgement]:
        """P(True) at the first generated position of each raw prompt (no chat template), in order.

        On vLLM all prompts go in one /completions request, greedy. The id of `True` is learned once per
        server from /tokenize; `logprob_token_ids` asks for exactly that token (vLLM >= 0.26). Older
        servers ignore the field and send the top-N, keyed `token_id:N` so that tokens cannot
        collide; a server seen ignoring (or rejecting) the field is not sent it again. Should a
        server both honour it and add the top-N, it is merely treated as an older one: still correct.
        Other engines: see `engines`.
        """
        if not prompts:
            return []
        sampling = Sampling(temperature=0.0, top_p=1.0, max_tokens=max_tokens)

        async def send(server: _Server) -> list[Judgement]:
            engine = await self._engine(server)
            key = await self._true_key(server)
            params = self._sampling(sampling, engine)
            if engine == "llama.cpp":
                tops = await self._judge_llama_server(server, prompts, params)
            elif engine == "llama-cpp-python":
                tops = [await self._judge_one_openai(server, prompt, params) for prompt in prompts]
            elif engine == "ollama":
                tops = [await self._judge_ollama(server, prompt, params) for prompt in prompts]
            else:
                tops = await self._judge_vllm(server, prompts, params)
            for top, _ in tops:
                if not top:
                    raise ModelError(
                        f"{safe_url(server.url)} returned no logprobs for the selector; the pasa selector backend "
                        f"needs a server that returns them (vLLM, llama.cpp, Ollama >= 0.12.11), "
                        f"else set PASA_SELECTOR_BACKEND=general"
                    )
            judged = [Judgement(*true_probability(top, _key_in(top, key)), text) for top, text in tops]
            self.usage.bounded += sum(not j.exact for j in judged)
            return judged

        return await self._call(send)

    async def served_models(self) -> dict[str, list[str]]:
        """The model names each base URL serves (GET /models), for checks and `doctor`."""

        async def fetch(server: _Server) -> list[str]:
            models = await self._request(server, "GET", server.url + "/models")
            return [str(item.get("id")) for item in models.get("data", [])]

        return {server.url: await self._call(fetch, only=server) for server in self._servers}

    async def served_engines(self) -> dict[str, Engine]:
        """The inference server behind each base URL ("openai" when unknown), for checks and `doctor`."""

        async def learn(server: _Server) -> Engine:
            return await self._engine(server)

        return {server.url: await self._call(learn, only=server) for server in self._servers}

    async def true_token_keys(self) -> dict[str, str]:
        """The top_logprobs key of token True on each base URL (`token_id:N`, or `True` matched by text)."""

        async def learn(server: _Server) -> str:
            await self._engine(server)
            return await self._true_key(server)

        return {server.url: await self._call(learn, only=server) for server in self._servers}

    # Engines --------------------------------------------------------------------------------

    async def _judge_vllm(
        self, server: _Server, prompts: Sequence[str], params: dict[str, Any]
    ) -> list[tuple[dict[str, float], str]]:
        body: dict[str, Any] = {"model": self.model, "prompt": list(prompts), **params, "logprobs": self.top_n}
        if server.true_id is not None:
            body |= {"return_tokens_as_token_ids": True, "logprob_token_ids": [server.true_id]}
        data = await self._post(server, server.url + "/completions", body, optional=("logprob_token_ids",))
        choices = self._choices(server, data, len(prompts))
        tops = [self._first_top(choice) for choice in choices]
        if "logprob_token_ids" in body and "logprob_token_ids" not in server.unsupported:
            # Honoured, the field leaves only the sampled token and True; more means it was ignored.
            if any(len(top) > 2 for top in tops):
                server.unsupported.add("logprob_token_ids")
                log.info("%s ignores logprob_token_ids: reading True from the top %d", safe_url(server.url), self.top_n)
        return [(top, choice.get("text") or "") for top, choice in zip(tops, choices, strict=True)]

    async def _judge_one_openai(
        self, server: _Server, prompt: str, params: dict[str, Any]
    ) -> tuple[dict[str, float], str]:
        """One prompt per /completions request (llama-cpp-python refuses a list); keys are token texts."""
        body = {"model": self.model, "prompt": prompt, **params, "logprobs": self.top_n}
        (choice,) = self._choices(server, await self._post(server, server.url + "/completions", body), 1)
        return self._first_top(choice), choice.get("text") or ""

    async def _judge_llama_server(
        self, server: _Server, prompts: Sequence[str], params: dict[str, Any]
    ) -> list[tuple[dict[str, float], str]]:
        """llama-server's own /completion: a list of prompts, `n_probs` top tokens with their ids."""
        body = {name: value for name, value in params.items() if name not in ("max_tokens", "n")}
        body |= {"prompt": list(prompts), "n_predict": params["max_tokens"], "n_probs": self.top_n}
        data = await self._post(server, server.root + "/completion", body, parse=_json_any)
        results = data if isinstance(data, list) else [data]
        if len(results) != len(prompts) or not all(isinstance(result, dict) for result in results):
            raise ModelError(f"{safe_url(server.root)}/completion answered {len(results)} results for {len(prompts)}")
        results = sorted(results, key=lambda result: result.get("index", 0))
        for result in results:
            self._count(result.get("tokens_evaluated"), result.get("tokens_predicted"))
        return [(engines.llama_server_top(result), str(result.get("content") or "")) for result in results]

    async def _judge_ollama(self, server: _Server, prompt: str, params: dict[str, Any]) -> tuple[dict[str, float], str]:
        """Ollama's /api/generate with `raw: true`: the prompt exactly as given, no template."""
        body = {
            "model": self.model,
            "prompt": prompt,
            "raw": True,
            "stream": False,
            "options": engines.ollama_options(params, self.sampling_mode == "explicit"),
            "logprobs": True,
            "top_logprobs": min(self.top_n, engines.OLLAMA_TOP_LOGPROBS),
        }
        answer = await self._post(server, server.root + "/api/generate", body)
        self._count(answer.get("prompt_eval_count"), answer.get("eval_count"))
        return engines.ollama_top(answer), str(answer.get("response") or "")

    async def _engine(self, server: _Server) -> Engine:
        """The server's engine, learned once (the general backends send only OpenAI's parameters: no need)."""
        if not self.vllm:
            return "openai"
        async with server.probe_lock:
            if server.engine is None:

                async def probe(path: str) -> Any:
                    """The JSON answer; False for an answer that is not (404, HTML); None for none at all."""
                    try:
                        return await self._request(
                            server, "GET", server.root + path, host=server.host + "#probe", parse=_json_any
                        )
                    except SourceRejected:
                        return False
                    except SourceUnavailable as exc:
                        return False if exc.last.startswith(("HTTP", "malformed")) else None

                found = await engines.detect(probe)
                if found is None:
                    return "openai"  # nothing answered: the request itself will say why; ask again next time
                server.engine = found
                log.info("%s model at %s: %s", self.role, safe_url(server.url), found)
            return server.engine

    # Plumbing -------------------------------------------------------------------------------

    def _sampling(self, sampling: Sampling, engine: Engine) -> dict[str, Any]:
        """The sampling parameters of one request (OpenAI names; `max_tokens` always).

        `checkpoint` mode sends what the reference implementation set, nothing more: no parameter
        when greedy (transformers then took the checkpoint's generation_config.json, and vLLM does
        the same), temperature and top_p for the ensemble's sampled runs.
        """
        if self.vllm and self.sampling_mode == "checkpoint":
            if sampling.temperature == 0:
                return {"max_tokens": sampling.max_tokens}
            return {"temperature": sampling.temperature, "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
        body: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "n": 1,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
        }
        if self.vllm and engine != "ollama":  # Ollama takes them inside `options`
            body |= engines.neutral(engine)
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
        down: list[bool] = []
        tried: set[str] = set()
        while (server := self._next(tried, only)) is not None:
            tried.add(server.url)
            server.outstanding += 1
            try:
                return await fn(server)
            except SourceUnavailable as exc:
                message = server_message(exc.detail)
                if exc.last.startswith("HTTP 5") and REQUEST_ERROR.search(message):
                    status = int(exc.last[5:8])
                    raise ModelRejected(self.role, safe_url(server.url), status, scrub(message)) from None
                retries = f" after {exc.attempts - 1} retries" if exc.attempts > 1 else ""
                said = f": {scrub(message)}" if message else ""
                failures.append((safe_url(server.url), f"{exc.last}{said}{retries}"))
                down.append(exc.last in NOT_RUNNING)
                log.warning("%s model at %s unavailable: %s", self.role, safe_url(server.url), exc.last)
            except SourceRejected as exc:
                raise self._rejection(server, exc) from None
            finally:
                server.outstanding -= 1
        if all(down):
            raise ModelNotRunning(self.role, failures)
        raise ModelOverloaded(self.role, failures)

    def _rejection(self, server: _Server, exc: SourceRejected) -> ModelRejected:
        hint = ""
        if exc.status in (401, 403):
            hint = f" (check PASA_{self.role.upper()}_API_KEY)"
        elif exc.status == 404:
            hint = f" (is model '{self.model}' served there? Check PASA_{self.role.upper()}_MODEL and GET /v1/models)"
        message = server_message(exc.detail) or "(no message)"
        return ModelRejected(self.role, safe_url(server.url), exc.status, scrub(message), hint)

    def _count(self, prompt_tokens: Any, completion_tokens: Any) -> None:
        self.usage.calls += 1
        self.usage.prompt_tokens += int(prompt_tokens or 0)
        self.usage.completion_tokens += int(completion_tokens or 0)

    async def _request(self, server: _Server, method: str, url: str, *, host: str | None = None, **kwargs: Any) -> Any:
        """The JSON the server answers (an object unless `parse` says otherwise); a garbled answer is
        retried like a 503 (see `Net`)."""
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        kwargs.setdefault("parse", _json_object)
        host = host or server.host
        return await self.net.request(host, method, url, headers=headers, timeout=self._timeout, **kwargs)

    async def _post(
        self, server: _Server, url: str, body: dict[str, Any], optional: Sequence[str] = (), **kwargs: Any
    ) -> Any:
        """POST `body`; a 400 (or 422) is answered by retrying once without the fields this client may
        drop (`optional` and the neutral sampler settings, which not every server takes), and if that
        succeeds, those fields are not sent to this server again."""
        body = {name: value for name, value in body.items() if name not in server.unsupported}
        try:
            return await self._request(server, "POST", url, json=body, **kwargs)
        except SourceRejected as exc:
            dropped = [name for name in (*optional, *NEUTRAL_FIELDS) if name in body]
            if exc.status not in (400, 422) or not dropped:
                raise
            # Only a success without them shows that these fields caused the 400.
            reduced = {name: value for name, value in body.items() if name not in dropped}
            data = await self._request(server, "POST", url, json=reduced, **kwargs)
            server.unsupported.update(dropped)
            log.info("%s rejects %s; sending requests without them", safe_url(server.url), ", ".join(dropped))
            return data

    async def _true_key(self, server: _Server) -> str:
        async with server.lock:
            if server.true_key is None:
                if server.engine in ("llama-cpp-python", "ollama"):
                    server.true_key = TRUE  # their top lists are keyed by token text
                    return TRUE
                llama = server.engine == "llama.cpp"
                payload = (
                    {"content": TRUE, "add_special": False}
                    if llama
                    else {"model": self.model, "prompt": TRUE, "add_special_tokens": False}
                )
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
        self._count(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        choices = sorted(data.get("choices") or [], key=lambda choice: choice.get("index", 0))
        if [choice.get("index", 0) for choice in choices] != list(range(expected)):
            raise ModelError(
                f"{safe_url(server.url)} answered {len(choices)} choices with indexes "
                f"{[c.get('index') for c in choices]} for {expected} prompt(s)"
            )
        return choices

    @staticmethod
    def _first_top(choice: dict[str, Any]) -> dict[str, float]:
        """The top logprobs at the first generated position ({} when the server sent none)."""
        tops = (choice.get("logprobs") or {}).get("top_logprobs") or []
        return tops[0] if tops and isinstance(tops[0], dict) else {}


def _key_in(top: Mapping[str, float], key: str) -> str:
    """`key`, or the text `True` when the list is keyed by token texts (older llama-server builds)."""
    if key.startswith("token_id:") and not any(name.startswith("token_id:") for name in top):
        return TRUE
    return key


def server_message(body: str) -> str:
    """The error message in a server's error body: OpenAI/vLLM/llama.cpp `{"error": {"message"}}`,
    Ollama `{"error": "..."}`, FastAPI `{"detail": [...]}`; else the body itself."""
    try:
        data = json.loads(body)
    except ValueError:
        # Net keeps the first 200 characters of an error body: read the message out of cut-off JSON too.
        found = CUT_MESSAGE.search(body)
        return " ".join(found.group(1).replace('\\"', '"').split()) if found else body.strip()
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if isinstance(error, list):  # FastAPI validation errors
            error = "; ".join(
                f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" if isinstance(e, dict) else str(e)
                for e in error
            )
        if error:
            return " ".join(str(error).split())
    return body.strip()


def message_text(choice: Mapping[str, Any]) -> str:
    """The assistant text of a chat choice ("" when the model wrote nothing)."""
    return (choice.get("message") or {}).get("content") or ""


def _json_any(response: httpx.Response) -> Any:
    return response.json()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__} where an object was expected")
    return data
