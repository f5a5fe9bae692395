"""The model client against vLLM's real wire shapes (httpx.MockTransport, no GPU)."""

from __future__ import annotations

import copy
import inspect
import json
import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from conftest import fixture_json
from pydantic import SecretStr

from pasa_mcp.config import Settings
from pasa_mcp.llm import ModelClient, ModelError, ModelUnavailable, Sampling, true_probability
from pasa_mcp.net import Net

URL = "http://127.0.0.1:8002/v1"
TRUE_ID = 2514  # any id: the client must use whatever /tokenize says
GEMMA = "vllm", "vllm-issue-19305_completions_logprobs20_gemma-3-4b-it.json"
Handler = Callable[[httpx.Request], Any]


def gemma() -> dict[str, Any]:
    """The real vLLM /v1/completions response (top-20 logprobs, string keys)."""
    return copy.deepcopy(fixture_json(*GEMMA))  # type: ignore[arg-type]


def gemma_top() -> dict[str, float]:
    return gemma()["choices"][0]["logprobs"]["top_logprobs"][0]


def id_keyed(top: dict[str, float], true_at: str | None = None) -> dict[str, float]:
    """The same distribution as vLLM sends it with return_tokens_as_token_ids (ids invented, True's if asked)."""
    return {
        f"token_id:{TRUE_ID if token == true_at else 1000 + i}": value for i, (token, value) in enumerate(top.items())
    }


def completion(tops: list[dict[str, float]], order: list[int] | None = None) -> dict[str, Any]:
    """A /v1/completions response in the real fixture's shape, one choice per top-logprobs dict."""
    response = gemma()
    template = response["choices"][0]
    choices = []
    for i, top in enumerate(tops):
        choice = copy.deepcopy(template)
        best = max(top, key=top.__getitem__)
        choice["index"] = i
        choice["logprobs"].update(tokens=[best], token_logprobs=[top[best]], top_logprobs=[top])
        choices.append(choice)
    response["choices"] = [choices[i] for i in order] if order else choices
    response["usage"] = {"prompt_tokens": 100 * len(tops), "completion_tokens": len(tops), "total_tokens": 0}
    return response


def tokenize_answer(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/tokenize":
        return httpx.Response(200, json={"count": 1, "max_model_len": 32768, "tokens": [TRUE_ID], "token_strs": None})
    return None


class Recorder:
    """A MockTransport handler that records (path, JSON body) of every request."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.answer(request)
        if not isinstance(response, httpx.Response):
            response = await response
        return response

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


PROBES = ("/version", "/props", "/api/version", "/openapi.json")


def no_probes(handler: Handler) -> Handler:
    """`handler` behind a server that has none of the engine probes' endpoints (an unknown OpenAI-compatible one)."""

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path in PROBES:
            if handler is unreachable:
                unreachable(request)
            return httpx.Response(404, json={"detail": "Not Found"})
        response = handler(request)
        return await response if inspect.isawaitable(response) else response

    return answer


def client_for(handler: Handler, *, settings: Settings | None = None, **kwargs: Any) -> tuple[ModelClient, Net]:
    settings = settings or Settings()
    net = Net(settings, transport=httpx.MockTransport(no_probes(handler)))
    options: dict[str, Any] = {"role": "selector", "model": "pasa-7b-selector", "urls": [URL]} | kwargs
    return ModelClient(net, timeout=settings.model_timeout, **options), net


# P(True) from the real response shape ------------------------------------------------------


def test_true_listed_in_the_top_n_is_exact() -> None:
    top = id_keyed(gemma_top(), true_at="Okay")
    p, exact = true_probability(top, f"token_id:{TRUE_ID}")
    assert exact and p == pytest.approx(math.exp(gemma_top()["Okay"]))


def test_true_absent_from_the_top_n_is_bounded_below_half() -> None:
    top = id_keyed(gemma_top())
    probs = sorted(math.exp(v) for v in gemma_top().values())
    p, exact = true_probability(top, f"token_id:{TRUE_ID}")
    assert not exact
    assert p == pytest.approx(min(probs[0], 1 - sum(probs)))
    assert 0 <= p <= probs[0] < 0.5


@pytest.mark.parametrize(
    "probs",
    [[0.5], [0.5, 0.5], [0.49, 0.01], [0.3, 0.3, 0.3], [0.34], [0.99], [1e-6] * 20, [0.25] * 4],
)
def test_the_bound_never_selects(probs: list[float]) -> None:
    """Whatever the listed distribution, an absent True scores <= 0.5, so "> 0.5" stays exact."""
    p, exact = true_probability({f"token_id:{i}": math.log(q) for i, q in enumerate(probs)}, "token_id:99")
    assert not exact and 0 <= p <= 0.5 and p <= min(probs) * (1 + 1e-12)


def test_an_empty_top_list_is_an_error() -> None:
    with pytest.raises(ModelError, match="empty top_logprobs"):
        true_probability({}, "True")


# Requests and P(True) through the client ---------------------------------------------------


def exact_server(true_logprob: float) -> Recorder:
    """vLLM >= 0.26: logprob_token_ids returns the sampled token and the asked one, nothing else."""

    def answer(request: httpx.Request) -> httpx.Response:
        if found := tokenize_answer(request):
            return found
        body = json.loads(request.content)
        assert body["logprob_token_ids"] == [TRUE_ID]
        tops = [{"token_id:17": -0.01, f"token_id:{TRUE_ID}": true_logprob} for _ in body["prompt"]]
        return httpx.Response(200, json=completion(tops))

    return Recorder(answer)


@pytest.mark.anyio
async def test_judge_sends_every_parameter_and_reads_the_asked_token() -> None:
    server = exact_server(math.log(0.125))
    client, _ = client_for(server)
    judged = await client.judge(["prompt one", "prompt two"])
    assert [(j.p_true, j.exact) for j in judged] == [(pytest.approx(0.125), True)] * 2
    assert server.bodies("/v1/completions") == [
        {
            "model": "pasa-7b-selector",
            "prompt": ["prompt one", "prompt two"],
            "temperature": 0.0,
            "top_p": 1.0,
            "max_tokens": 1,
            "n": 1,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "top_k": -1,
            "min_p": 0.0,
            "repetition_penalty": 1.0,
            "logprobs": 20,
            "return_tokens_as_token_ids": True,
            "logprob_token_ids": [TRUE_ID],
        }
    ]
    tokenize = [r for r in server.requests if r.url.path == "/tokenize"]
    assert [str(r.url) for r in tokenize] == ["http://127.0.0.1:8002/tokenize"]
    assert json.loads(tokenize[0].content) == {
        "model": "pasa-7b-selector",
        "prompt": "True",
        "add_special_tokens": False,
    }


@pytest.mark.anyio
async def test_the_token_id_is_learned_once_per_server() -> None:
    server = exact_server(math.log(0.9))
    client, _ = client_for(server)
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(client.judge, ["p"])
    await client.judge(["p"])
    assert len([r for r in server.requests if r.url.path == "/tokenize"]) == 1
    sent = server.bodies("/v1/completions")
    assert len(sent) == 5 and all(body["logprob_token_ids"] == [TRUE_ID] for body in sent)


def old_server(tops: list[dict[str, float]]) -> Recorder:
    """vLLM before 0.26: ignores logprob_token_ids (as it does every unknown field) and sends the top-N."""

    def answer(request: httpx.Request) -> httpx.Response:
        return tokenize_answer(request) or httpx.Response(200, json=completion(tops))

    return Recorder(answer)


@pytest.mark.anyio
async def test_older_servers_give_the_top_n_keyed_by_token_id() -> None:
    present, absent = id_keyed(gemma_top(), true_at="Princess"), id_keyed(gemma_top())
    client, _ = client_for(old_server([present, absent]))
    first, second = await client.judge(["a", "b"])
    assert first.exact and first.p_true == pytest.approx(math.exp(gemma_top()["Princess"])) and first.p_true > 0.5
    probs = [math.exp(v) for v in gemma_top().values()]
    assert not second.exact and second.p_true == pytest.approx(min(min(probs), 1 - sum(probs)))
    assert client.usage.bounded == 1


@pytest.mark.anyio
async def test_a_server_ignoring_logprob_token_ids_is_noticed_and_spared_it() -> None:
    server = old_server([id_keyed(gemma_top())])
    client, _ = client_for(server)
    for _ in range(3):
        (judged,) = await client.judge(["p"])
        assert not judged.exact and judged.p_true < 0.5
    sent = server.bodies("/v1/completions")
    assert ["logprob_token_ids" in body for body in sent] == [True, False, False]
    assert all(body["return_tokens_as_token_ids"] for body in sent)


@pytest.mark.anyio
async def test_a_server_rejecting_logprob_token_ids_is_asked_without_and_remembered() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if found := tokenize_answer(request):
            return found
        if "logprob_token_ids" in json.loads(request.content):
            return httpx.Response(400, json={"object": "error", "message": "extra fields not permitted", "code": 400})
        return httpx.Response(200, json=completion([id_keyed(gemma_top(), true_at="Okay")]))

    server = Recorder(answer)
    client, _ = client_for(server)
    for _ in range(2):
        (judged,) = await client.judge(["p"])
        assert judged.exact and judged.p_true == pytest.approx(math.exp(gemma_top()["Okay"]))
    sent = server.bodies("/v1/completions")
    assert ["logprob_token_ids" in body for body in sent] == [True, False, False]
    assert all(body["return_tokens_as_token_ids"] and body["logprobs"] == 20 for body in sent)


@pytest.mark.anyio
async def test_a_400_for_another_reason_is_an_error_and_changes_nothing() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if found := tokenize_answer(request):
            return found
        return httpx.Response(400, json={"message": "This model's maximum context length is 8192 tokens"})

    server = Recorder(answer)
    client, _ = client_for(server)
    with pytest.raises(ModelError, match="HTTP 400.*maximum context length"):
        await client.judge(["p"])
    with pytest.raises(ModelError):
        await client.judge(["p"])
    assert ["logprob_token_ids" in body for body in server.bodies("/v1/completions")] == [True, False, True, False]


@pytest.mark.anyio
async def test_without_tokenize_the_real_string_keyed_response_is_matched_by_text() -> None:
    as_sent = gemma()
    with_true = gemma()
    top = with_true["choices"][0]["logprobs"]["top_logprobs"][0]
    top["True"] = top.pop("Princess")

    responses = iter([as_sent, with_true])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json=next(responses))

    server = Recorder(answer)
    client, _ = client_for(server)
    (absent,) = await client.judge(["p"])
    (present,) = await client.judge(["p"])
    assert not absent.exact and absent.p_true < 0.5
    assert present.exact and present.p_true == pytest.approx(math.exp(-0.041444092988967896))
    for body in server.bodies("/v1/completions"):
        assert "logprob_token_ids" not in body and "return_tokens_as_token_ids" not in body
    assert await client.true_token_keys() == {URL: "True"}


@pytest.mark.anyio
async def test_true_must_be_one_token() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"count": 2, "tokens": [3007, 68], "max_model_len": 8192})

    client, _ = client_for(answer)
    with pytest.raises(ModelError, match=r"\[3007, 68\].*one token"):
        await client.judge(["p"])


@pytest.mark.anyio
async def test_choices_are_put_back_in_prompt_order() -> None:
    tops = [{"token_id:1": math.log(0.99), f"token_id:{TRUE_ID}": math.log(p)} for p in (0.001, 0.002, 0.003)]
    client, _ = client_for(lambda r: tokenize_answer(r) or httpx.Response(200, json=completion(tops, [2, 0, 1])))
    judged = await client.judge(["a", "b", "c"])
    assert [j.p_true for j in judged] == [pytest.approx(p) for p in (0.001, 0.002, 0.003)]


@pytest.mark.anyio
async def test_a_missing_choice_is_an_error() -> None:
    tops = [{f"token_id:{TRUE_ID}": -1.0}] * 3
    client, _ = client_for(lambda r: tokenize_answer(r) or httpx.Response(200, json=completion(tops, [0, 2])))
    with pytest.raises(ModelError, match=r"2 choices .* for 3 prompt"):
        await client.judge(["a", "b", "c"])


@pytest.mark.anyio
async def test_a_server_without_logprobs_says_what_to_do() -> None:
    response = gemma()
    response["choices"][0]["logprobs"] = None
    client, _ = client_for(lambda r: tokenize_answer(r) or httpx.Response(200, json=response))
    with pytest.raises(ModelError, match="PASA_SELECTOR_BACKEND=general"):
        await client.judge(["p"])


@pytest.mark.anyio
async def test_usage_counts_calls_and_tokens() -> None:
    client, _ = client_for(exact_server(-0.1))
    await client.judge(["a", "b"])
    await client.judge(["c"])
    assert (client.usage.calls, client.usage.prompt_tokens, client.usage.completion_tokens) == (2, 300, 3)


# Chat -----------------------------------------------------------------------------------


def chat_answer(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


@pytest.mark.parametrize("vllm", [True, False])
@pytest.mark.anyio
async def test_chat_sends_every_sampling_parameter(vllm: bool) -> None:
    server = Recorder(lambda r: httpx.Response(200, json=chat_answer("[Search] x\n[StopSearch]")))
    client, _ = client_for(server, role="crawler", model="m", vllm=vllm)
    messages = [{"role": "user", "content": "hello"}]
    choice = await client.chat(messages, Sampling(temperature=2.0, top_p=0.8, max_tokens=512))
    assert choice["message"]["content"] == "[Search] x\n[StopSearch]"
    expected = {
        "model": "m",
        "messages": messages,
        "temperature": 2.0,
        "top_p": 0.8,
        "max_tokens": 512,
        "n": 1,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    if vllm:
        expected |= {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
    assert server.bodies("/v1/chat/completions") == [expected]
    assert client.usage.calls == 1 and client.usage.prompt_tokens == 7


@pytest.mark.anyio
async def test_requests_carry_the_model_timeout_and_the_api_key() -> None:
    server = Recorder(lambda r: httpx.Response(200, json=chat_answer("ok")))
    settings = Settings(model_timeout=42.0)
    client, _ = client_for(server, settings=settings, api_key=SecretStr("sk-secret"))
    await client.chat([{"role": "user", "content": "x"}], Sampling(0.0, 1.0, 5))
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer sk-secret"
    assert request.extensions["timeout"]["read"] == 42.0


# Balancing, retries and failures ------------------------------------------------------------


@pytest.mark.anyio
async def test_requests_go_to_the_url_with_fewest_outstanding() -> None:
    urls = ["http://gpu-a:8001/v1", "http://gpu-b:8001/v1"]
    arrived = {url: anyio.Event() for url in urls}
    release = {url: anyio.Event() for url in urls}
    order: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url).removesuffix("/chat/completions")
        order.append(url)
        arrived[url].set()
        if len(order) <= 2:  # the first request to each URL waits to be released
            await release[url].wait()
        return httpx.Response(200, json=chat_answer(url))

    client, _ = client_for(Recorder(answer), role="crawler", model="m", urls=urls)
    ask = [{"role": "user", "content": "x"}]
    second_done = anyio.Event()

    async def second() -> None:
        await client.chat(ask, Sampling(0, 1, 5))
        second_done.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.chat, ask, Sampling(0, 1, 5))
            await arrived[urls[0]].wait()
            tg.start_soon(second)  # A is busy: goes to B
            await arrived[urls[1]].wait()
            release[urls[1]].set()
            await second_done.wait()
            third = await client.chat(ask, Sampling(0, 1, 5))  # A still busy, B idle: B
            release[urls[0]].set()
    assert order == [urls[0], urls[1], urls[1]]
    assert third["message"]["content"] == urls[1]


@pytest.mark.anyio
async def test_a_503_is_retried_then_succeeds() -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200, json=chat_answer("ok"))])
    client, net = client_for(lambda r: next(answers), role="crawler", model="m")
    choice = await client.chat([{"role": "user", "content": "x"}], Sampling(0, 1, 5))
    assert choice["message"]["content"] == "ok"
    assert net.request_counts()[f"crawler model at {URL}"] == 2


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.anyio
async def test_an_unreachable_endpoint_names_the_url_and_the_way_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = "http://user:hunter2@127.0.0.1:8002/v1"
    client, _ = client_for(unreachable, settings=Settings(http_retries=0), urls=[url], api_key=SecretStr("sk-secret"))
    with pytest.raises(ModelUnavailable) as caught:
        await client.judge(["p"])
    message = str(caught.value)
    assert "http://127.0.0.1:8002/v1 (ConnectError" in message
    assert message.startswith("selector model not running at")
    assert "pasa-mcp models serve selector" in message and "pasa-mcp doctor" in message
    assert "PASA_SELECTOR_URLS" in message and "PASA_SELECTOR_BACKEND=general" in message
    for secret in ("sk-secret", "hunter2"):
        assert secret not in message and secret not in repr(caught.value) and secret not in caplog.text


@pytest.mark.anyio
async def test_a_dead_replica_hands_its_requests_to_the_others() -> None:
    urls = ["http://dead:8001/v1", "http://alive:8001/v1"]

    def answer(request: httpx.Request) -> httpx.Response:
        return unreachable(request) if request.url.host == "dead" else httpx.Response(200, json=chat_answer("ok"))

    client, _ = client_for(answer, settings=Settings(http_retries=0), role="crawler", model="m", urls=urls)
    for _ in range(3):
        assert (await client.chat([{"role": "user", "content": "x"}], Sampling(0, 1, 5)))["message"]["content"] == "ok"

    client, _ = client_for(unreachable, settings=Settings(http_retries=0), role="crawler", model="m", urls=urls)
    expected = r"not running at http://dead:8001/v1 .*; http://alive:8001/v1 .*models serve crawler"
    with pytest.raises(ModelUnavailable, match=expected):
        await client.chat([{"role": "user", "content": "x"}], Sampling(0, 1, 5))


@pytest.mark.anyio
async def test_a_rejected_key_says_which_setting_and_never_shows_the_key() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": f"invalid key {request.headers['authorization']}"})

    client, _ = client_for(answer, role="crawler", model="m", api_key=SecretStr("sk-secret"))
    with pytest.raises(ModelError, match="HTTP 401.*PASA_CRAWLER_API_KEY") as caught:
        await client.chat([{"role": "user", "content": "x"}], Sampling(0, 1, 5))
    assert "sk-secret" not in str(caught.value) and "****" in str(caught.value)


@pytest.mark.anyio
async def test_served_models_lists_each_url() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list", "data": [{"id": "pasa-7b-selector", "object": "model"}]})

    client, _ = client_for(answer)
    assert await client.served_models() == {URL: ["pasa-7b-selector"]}


def test_a_client_needs_a_url() -> None:
    with pytest.raises(ValueError, match="PASA_CRAWLER_URLS"):
        client_for(unreachable, role="crawler", urls=[])
