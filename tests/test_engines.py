"""The pasa backends on each inference server's wire shapes: llama-server, llama-cpp-python, Ollama, unknown.

Each fake answers as its server documents (and, for llama-cpp-python, as its source does: validation
errors come back as HTTP 500); the real llama-cpp-python server is driven by tests/test_llama_server.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pasa_mcp.config import Settings
from pasa_mcp.crawler import GREEDY, PASA_SAMPLE, PasaCrawler
from pasa_mcp.llm import (
    ModelClient,
    ModelNotRunning,
    ModelOverloaded,
    ModelRejected,
    ModelUnavailable,
    Sampling,
)
from pasa_mcp.net import Net
from pasa_mcp.selector import PasaSelector

ROOT = "http://127.0.0.1:8080"
Answer = Callable[[httpx.Request], httpx.Response]


class Server:
    """Routes (method, path) to answers and records every request."""

    def __init__(self, routes: dict[tuple[str, str], Answer]) -> None:
        self.routes, self.requests = routes, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        return route(request) if route else httpx.Response(404, json={"detail": "Not Found"})

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path and r.method == "POST"]


def client(server: Server, role: str = "selector", **kwargs: Any) -> ModelClient:
    net = Net(Settings(http_retries=2), transport=httpx.MockTransport(server))
    return ModelClient(net, role=role, model="pasa-7b-" + role, urls=[ROOT + "/v1"], **kwargs)  # type: ignore[arg-type]


def ok(payload: Any) -> Answer:
    return lambda request: httpx.Response(200, json=payload)


CHAT = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "[Search] q\n[StopSearch]"}}]}


# llama-cpp-python ----------------------------------------------------------------------------------


def llama_cpp_python(p_true: float | None) -> Server:
    """llama-cpp-python's server: OpenAPI title, one prompt per completion, top_logprobs keyed by token text."""

    def complete(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        for name, minimum in (("top_k", 0), ("min_p", 0), ("repeat_penalty", 0), ("logprobs", 0)):
            if name in body and body[name] < minimum:  # its pydantic validation error comes back as a 500
                message = (
                    f"1 validation error for CreateCompletionRequest\n{name}\n"
                    f"  Input should be greater than or equal to {minimum}"
                )
                return httpx.Response(500, json={"error": {"message": message, "type": "internal_server_error"}})
        if isinstance(body["prompt"], list):
            return httpx.Response(500, json={"error": {"message": "", "type": "internal_server_error"}})
        top = {"Yes": math.log(0.3), " True": math.log(0.1)}
        if p_true is not None:
            top["True"] = math.log(p_true)
        choice = {"index": 0, "text": "Yes", "logprobs": {"tokens": ["Yes"], "top_logprobs": [top]}}
        return httpx.Response(200, json={"choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})

    return Server(
        {
            ("GET", "/openapi.json"): ok({"openapi": "3.1.0", "info": {"title": "🦙 llama.cpp Python API"}}),
            ("POST", "/v1/completions"): complete,
            ("POST", "/v1/chat/completions"): ok(CHAT),
        }
    )


@pytest.mark.anyio
async def test_llama_cpp_python_gets_its_own_neutral_samplers_and_one_prompt_per_request() -> None:
    server = llama_cpp_python(0.25)
    model = client(server)
    judged = await model.judge(["prompt one", "prompt two"])
    assert [j.p_true for j in judged] == pytest.approx([0.25, 0.25]) and all(j.exact for j in judged)
    bodies = server.bodies("/v1/completions")
    assert [b["prompt"] for b in bodies] == ["prompt one", "prompt two"]
    for body in bodies:
        assert body["temperature"] == 0 and body["top_k"] == 0 and body["min_p"] == 0 and body["repeat_penalty"] == 1
        assert "repetition_penalty" not in body and "logprob_token_ids" not in body
    assert await model.served_engines() == {ROOT + "/v1": "llama-cpp-python"}
    assert not any(r.url.path == "/tokenize" for r in server.requests)  # keys are texts: nothing to learn

    crawler = client(server, role="crawler")
    await crawler.chat([{"role": "user", "content": "x"}], PASA_SAMPLE)
    (chat,) = server.bodies("/v1/chat/completions")
    assert chat["temperature"] == 2.0 and chat["top_p"] == 0.8 and chat["top_k"] == 0 and chat["repeat_penalty"] == 1


@pytest.mark.anyio
async def test_true_outside_llama_cpp_pythons_top_list_is_the_documented_bound() -> None:
    (judged,) = await client(llama_cpp_python(None)).judge(["p"])
    assert not judged.exact and judged.p_true == pytest.approx(0.1)  # the smallest listed probability


@pytest.mark.anyio
async def test_a_validation_error_answered_as_500_is_a_rejection_with_the_servers_words() -> None:
    server = llama_cpp_python(0.5)
    server.routes.pop(("GET", "/openapi.json"))  # unrecognised: it gets vLLM's names, top_k=-1 among them
    with pytest.raises(ModelRejected) as caught:
        await client(server).judge(["p"])
    message = str(caught.value)
    assert (
        "rejected the request: HTTP 500: 1 validation error for CreateCompletionRequest top_k Input should be"
        in message
    )
    assert "unavailable" not in message and "not running" not in message and "pasa-mcp doctor" in message
    assert isinstance(caught.value, ModelUnavailable)


# llama-server ---------------------------------------------------------------------------------------


def llama_server(new_format: bool = True) -> Server:
    """llama.cpp's llama-server: /props, /tokenize {content}, /completion with a list of prompts and n_probs."""

    def complete(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        results = []
        for i, prompt in enumerate(body["prompt"]):
            p = 0.2 + 0.1 * i
            if new_format:
                top = [
                    {"id": 9, "token": "Yes", "logprob": math.log(0.5)},
                    {"id": 77, "token": "True", "logprob": math.log(p)},
                ]
                probs = [{"id": 9, "token": "Yes", "logprob": math.log(0.5), "top_logprobs": top}]
            else:
                probs = [{"content": "Yes", "probs": [{"tok_str": "Yes", "prob": 0.5}, {"tok_str": "True", "prob": p}]}]
            results.append({"index": i, "content": "Yes " + prompt, "completion_probabilities": probs})
        return httpx.Response(200, json=results)

    return Server(
        {
            ("GET", "/props"): ok({"default_generation_settings": {"n_ctx": 4096}, "chat_template": "{{x}}"}),
            ("POST", "/tokenize"): ok({"tokens": [77]}),
            ("POST", "/completion"): complete,
            ("POST", "/v1/chat/completions"): ok(CHAT),
        }
    )


@pytest.mark.parametrize("new_format", [True, False])
@pytest.mark.anyio
async def test_llama_server_scores_a_batch_on_its_own_completion_path(new_format: bool) -> None:
    server = llama_server(new_format)
    model = client(server)
    judged = await model.judge(["a", "b"])
    assert [j.p_true for j in judged] == pytest.approx([0.2, 0.3]) and all(j.exact for j in judged)
    assert [j.text for j in judged] == ["Yes a", "Yes b"]
    (body,) = server.bodies("/completion")
    assert body["prompt"] == ["a", "b"] and body["n_predict"] == 1 and body["n_probs"] == 20
    assert body["temperature"] == 0 and body["top_k"] == 0 and body["min_p"] == 0 and body["repeat_penalty"] == 1
    assert server.bodies("/tokenize") == [{"content": "True", "add_special": False}]
    assert await model.true_token_keys() == {ROOT + "/v1": "token_id:77"}


# Ollama ---------------------------------------------------------------------------------------------


def ollama() -> Server:
    generate = {
        "response": "True",
        "logprobs": [
            {"token": "True", "logprob": math.log(0.7), "top_logprobs": [{"token": "True", "logprob": math.log(0.7)}]}
        ],
        "prompt_eval_count": 40,
        "eval_count": 1,
    }
    chat = {"message": {"role": "assistant", "content": "[Search] q\n[StopSearch]"}, "eval_count": 6}
    return Server(
        {
            ("GET", "/api/version"): ok({"version": "0.13.0"}),
            ("POST", "/api/generate"): ok(generate),
            ("POST", "/api/chat"): ok(chat),
        }
    )


@pytest.mark.anyio
async def test_ollama_gets_the_raw_prompt_through_generate_and_options_for_sampling() -> None:
    server = ollama()
    (judged,) = await client(server).judge(["the raw prompt"])
    assert judged.p_true == pytest.approx(0.7) and judged.exact
    (body,) = server.bodies("/api/generate")
    assert body["raw"] is True and body["stream"] is False and body["prompt"] == "the raw prompt"
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert body["options"] == {
        "temperature": 0.0,
        "top_p": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "num_predict": 1,
        "top_k": 0,
        "min_p": 0.0,
        "repeat_penalty": 1.0,
    }
    assert await PasaCrawler(client(server, role="crawler")).queries("a question", limit=5) == ["q"]
    (chat,) = server.bodies("/api/chat")
    assert chat["messages"][0]["role"] == "user" and chat["options"]["num_predict"] == 512


# Any server: what it rejects, and why it failed -----------------------------------------------------


@pytest.mark.anyio
async def test_an_unknown_server_rejecting_the_extra_samplers_is_asked_without_them_once() -> None:
    def chat(request: httpx.Request) -> httpx.Response:
        if "top_k" in json.loads(request.content):
            return httpx.Response(400, json={"error": {"message": "Unrecognized request argument supplied: top_k"}})
        return httpx.Response(200, json=CHAT)

    server = Server({("POST", "/v1/chat/completions"): chat})
    model = client(server, role="crawler")
    for _ in range(2):
        await model.chat([{"role": "user", "content": "x"}], GREEDY)
    assert ["top_k" in body for body in server.bodies("/v1/chat/completions")] == [True, False, False]


@pytest.mark.anyio
async def test_checkpoint_sampling_sends_only_what_the_reference_sent() -> None:
    server = Server({("GET", "/version"): ok({"version": "0.11.0"}), ("POST", "/v1/chat/completions"): ok(CHAT)})
    model = client(server, role="crawler", sampling="checkpoint")
    await model.chat([{"role": "user", "content": "x"}], GREEDY)
    await model.chat([{"role": "user", "content": "x"}], PASA_SAMPLE)
    greedy, sampled = server.bodies("/v1/chat/completions")
    assert set(greedy) == {"model", "messages", "max_tokens"}
    assert set(sampled) == {"model", "messages", "max_tokens", "temperature", "top_p"}
    assert PasaSelector(client(server, sampling="checkpoint")).name == "pasa:pasa-7b-selector+checkpoint"


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (refused, ModelNotRunning, "selector model not running at http://127.0.0.1:8080/v1 (ConnectError"),
        (lambda r: httpx.Response(503, text="busy"), ModelOverloaded, "overloaded or timed out at"),
        (
            lambda r: httpx.Response(404, json={"error": {"message": "The model `x` does not exist."}}),
            ModelRejected,
            "rejected the request: HTTP 404: The model `x` does not exist. (is model 'pasa-7b-selector' served",
        ),
        (
            lambda r: httpx.Response(401, json={"error": "invalid api key"}),
            ModelRejected,
            "rejected the request: HTTP 401: invalid api key (check PASA_SELECTOR_API_KEY)",
        ),
    ],
)
@pytest.mark.anyio
async def test_each_failure_says_what_is_wrong(answer: Answer, kind: type[ModelUnavailable], words: str) -> None:
    net = Net(Settings(http_retries=0), transport=httpx.MockTransport(answer))
    model = ModelClient(net, role="selector", model="pasa-7b-selector", urls=[ROOT + "/v1"])
    with pytest.raises(kind) as caught:
        await model.chat([{"role": "user", "content": "x"}], Sampling(0, 1, 1))
    message = str(caught.value)
    assert words in message and "pasa-mcp doctor" in message
    if kind is not ModelNotRunning:
        assert "models serve" not in message  # never tell the user to start a model that answered


@pytest.mark.anyio
async def test_the_servers_message_is_read_out_of_a_long_error_body() -> None:
    # llama-cpp-python's context-length error is longer than the 200 characters Net keeps of a body.
    message = "This model's maximum context length is 2048 tokens, however you requested 5002 tokens " * 3
    body = {"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": None}}
    server = Server({("POST", "/v1/chat/completions"): lambda r: httpx.Response(400, json=body)})
    with pytest.raises(ModelRejected) as caught:
        await client(server, role="crawler").chat([{"role": "user", "content": "x"}], GREEDY)
    assert "rejected the request: HTTP 400: This model's maximum context length is 2048 tokens, however" in str(
        caught.value
    )
    assert '{"error"' not in str(caught.value)
