"""The selector backends and the score cache, against vLLM-shaped answers (httpx.MockTransport)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import FIXTURES

from pasa_mcp.config import Settings
from pasa_mcp.llm import ModelClient, ModelError, ModelUnavailable
from pasa_mcp.net import Net
from pasa_mcp.papers import Paper
from pasa_mcp.selector import GENERAL_PROMPTS, GeneralSelector, PasaSelector, build_selector, score_cached
from pasa_mcp.store import Store

QUERY = "Which papers study retrieval-augmented language models?"
TRUE_ID = 2514
TEMPLATES = json.loads((FIXTURES.parent / "pasa" / "agent_prompt.json").read_text(encoding="utf-8"))
TITLE = re.compile(r"\nTitle: Paper (\d+)\n")


def paper(i: int) -> Paper:
    return Paper(title=f"Paper {i}", abstract=f"Abstract of paper {i}.", arxiv_id=f"2401.{i:05d}")


def p_of(i: int) -> float:
    """The fake selector's P(True) for paper i: distinct per paper, some above and some below 0.5."""
    return (i % 10 + 0.5) / 10


class FakeVLLM:
    """/tokenize and /v1/completions as vLLM >= 0.26 answers them, P(True) = p_of(paper number).

    `wait_for` holds every completions request until that many are in flight at once.
    """

    def __init__(self, *, reverse: bool = False, wait_for: int = 0, text: str = " True") -> None:
        self.reverse, self.wait_for, self.text = reverse, wait_for, text
        self.prompts: list[list[str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.all_in = anyio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"count": 1, "max_model_len": 8192, "tokens": [TRUE_ID]})
        if request.url.path == "/version":  # vLLM says what it is
            return httpx.Response(200, json={"version": "0.11.0"})
        body = json.loads(request.content)
        self.bodies.append(body)
        self.prompts.append(body["prompt"])
        if len(self.prompts) == self.wait_for:
            self.all_in.set()
        if self.wait_for:
            await self.all_in.wait()
        choices = []
        for index, prompt in enumerate(body["prompt"]):
            number = int(TITLE.search(prompt).group(1))  # type: ignore[union-attr]
            top = {"token_id:7": math.log(0.5), f"token_id:{TRUE_ID}": math.log(p_of(number))}
            choices.append({"index": index, "text": self.text, "logprobs": {"top_logprobs": [top]}})
        if self.reverse:
            choices.reverse()
        usage = {"prompt_tokens": 10 * len(choices), "completion_tokens": len(choices)}
        return httpx.Response(200, json={"object": "text_completion", "choices": choices, "usage": usage})


def pasa_selector(fake: Any, batch: int = 16) -> PasaSelector:
    net = Net(Settings(), transport=httpx.MockTransport(fake))
    client = ModelClient(net, role="selector", model="pasa-7b-selector", urls=["http://127.0.0.1:8002/v1"])
    return PasaSelector(client, batch)


@pytest.mark.anyio
async def test_pasa_selector_sends_the_raw_prompt_without_chat_template() -> None:
    fake = FakeVLLM()
    selector = pasa_selector(fake)
    assert selector.name == "pasa:pasa-7b-selector"
    scores = await selector.score(QUERY, [paper(3)])
    assert scores == [pytest.approx(p_of(3))]
    raw = TEMPLATES["get_selected"].format(title="Paper 3", abstract="Abstract of paper 3.", user_query=QUERY)
    (body,) = fake.bodies
    assert body["prompt"] == [raw] and raw.endswith("Decision:")
    assert (body["max_tokens"], body["temperature"], body["logprobs"]) == (1, 0.0, 20)
    assert body["logprob_token_ids"] == [TRUE_ID]


@pytest.mark.anyio
async def test_batches_are_in_flight_together_and_scores_keep_paper_order() -> None:
    fake = FakeVLLM(reverse=True, wait_for=3)
    papers = [paper(i) for i in range(5)]
    with anyio.fail_after(5):  # the fake holds each request until all three are in flight
        scores = await pasa_selector(fake, batch=2).score(QUERY, papers)
    assert scores == [pytest.approx(p_of(i)) for i in range(5)]
    assert sorted(len(prompts) for prompts in fake.prompts) == [1, 2, 2]  # ceil(5 / 2) requests


@pytest.mark.anyio
async def test_pasa_explain_returns_the_first_token_score_and_the_reason() -> None:
    fake = FakeVLLM(text=" True\nReason: It adds a retriever to a language model.")
    score, reason = await pasa_selector(fake).explain(QUERY, paper(8))
    assert score == pytest.approx(p_of(8))
    assert reason == "It adds a retriever to a language model."
    assert fake.bodies[0]["max_tokens"] == 256 and fake.bodies[0]["temperature"] == 0.0


@pytest.mark.anyio
async def test_no_papers_no_request() -> None:
    fake = FakeVLLM()
    assert await pasa_selector(fake).score(QUERY, []) == []
    assert fake.bodies == []


# The general backend --------------------------------------------------------------------------


def chat_choice(text: str, top: list[tuple[str, float]] | None) -> dict[str, Any]:
    """A vLLM/OpenAI chat choice; with `top`, logprobs.content in vLLM's shape (token, logprob, bytes)."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
    if top is not None:
        entries = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in top]
        choice["logprobs"] = {"content": [{**entries[0], "top_logprobs": entries}]}
    return choice


class FakeChat:
    def __init__(self, *choices: dict[str, Any], reject_logprobs: bool = False) -> None:
        self.choices = list(choices)
        self.reject_logprobs = reject_logprobs
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.reject_logprobs and "logprobs" in body:
            return httpx.Response(400, json={"error": {"message": "logprobs is not supported"}})
        return httpx.Response(200, json={"choices": [self.choices.pop(0)], "usage": {}})


def general_selector(fake: FakeChat) -> GeneralSelector:
    net = Net(Settings(), transport=httpx.MockTransport(fake))
    return GeneralSelector(
        ModelClient(net, role="selector", model="gpt-4o", urls=["https://llm.example/v1"], vllm=False)
    )


@pytest.mark.anyio
async def test_general_selector_sums_the_forms_of_true_in_the_first_token() -> None:
    fake = FakeChat(chat_choice("True", [("True", 0.6), (" true", 0.15), ("False", 0.2), ("Yes", 0.05)]))
    selector = general_selector(fake)
    assert selector.name == f"general:gpt-4o@{GENERAL_PROMPTS}"
    assert await selector.score(QUERY, [paper(1)]) == [pytest.approx(0.75)]
    (body,) = fake.bodies
    system, user = body["messages"]
    assert system["role"] == "system" and "True or False" in system["content"]
    raw = TEMPLATES["get_selected"].format(title="Paper 1", abstract="Abstract of paper 1.", user_query=QUERY)
    assert user == {"role": "user", "content": raw}
    assert {k: body[k] for k in ("max_tokens", "temperature", "top_p", "logprobs", "top_logprobs")} == {
        "max_tokens": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "logprobs": True,
        "top_logprobs": 20,
    }
    assert "top_k" not in body and "repetition_penalty" not in body


@pytest.mark.anyio
async def test_general_selector_reads_the_text_when_there_are_no_logprobs() -> None:
    fake = FakeChat(chat_choice("False.", None), chat_choice("**True**", None), chat_choice("Maybe", None))
    selector = general_selector(fake)
    assert await selector.score(QUERY, [paper(1)]) == [0.0]
    assert await selector.score(QUERY, [paper(2)]) == [1.0]
    with pytest.raises(ModelError, match="'Maybe', expected it to begin with True or False"):
        await selector.score(QUERY, [paper(3)])


@pytest.mark.anyio
async def test_general_selector_drops_logprobs_once_a_server_rejects_them() -> None:
    fake = FakeChat(chat_choice("True", None), chat_choice("False", None), reject_logprobs=True)
    selector = general_selector(fake)
    assert await selector.score(QUERY, [paper(1)]) == [1.0]
    assert await selector.score(QUERY, [paper(2)]) == [0.0]
    assert ["logprobs" in body for body in fake.bodies] == [True, False, False]


@pytest.mark.anyio
async def test_general_explain_gives_the_reason_after_the_verdict() -> None:
    fake = FakeChat(chat_choice("True\nIt retrieves passages for a language model.", [("True", 0.9), ("False", 0.1)]))
    score, reason = await general_selector(fake).explain(QUERY, paper(1))
    assert score == pytest.approx(0.9) and reason == "It retrieves passages for a language model."
    assert fake.bodies[0]["max_tokens"] == 256


def test_build_selector_follows_the_settings() -> None:
    net = Net(Settings())
    pasa = build_selector(Settings(selector_batch=4), net)
    assert isinstance(pasa, PasaSelector) and pasa.batch == 4
    assert isinstance(build_selector(Settings(selector_backend="general"), net), GeneralSelector)


# The score cache -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_score_cached_sends_only_the_misses(tmp_path: Path) -> None:
    fake = FakeVLLM()
    selector = pasa_selector(fake)
    store = Store(tmp_path / "scores.sqlite3")
    try:
        first = await score_cached(selector, store, QUERY, [paper(1), paper(2), paper(1)])
        assert first == [pytest.approx(p_of(1)), pytest.approx(p_of(2)), pytest.approx(p_of(1))]
        assert [len(prompts) for prompts in fake.prompts] == [2]

        second = await score_cached(selector, store, QUERY, [paper(2), paper(3), paper(1)])
        assert second == [pytest.approx(p_of(i)) for i in (2, 3, 1)]
        assert "Paper 3" in fake.prompts[1][0] and len(fake.prompts[1]) == 1

        await score_cached(selector, store, QUERY, [paper(3), paper(2)])
        assert len(fake.prompts) == 2  # everything cached: no request

        await score_cached(selector, store, "another question", [paper(1)])
        assert len(fake.prompts) == 3  # scores belong to (selector, query, paper)
    finally:
        store.close()


@pytest.mark.anyio
async def test_a_failing_batch_raises_the_model_error_itself() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    net = Net(Settings(http_retries=0), transport=httpx.MockTransport(unreachable))
    client = ModelClient(net, role="selector", model="pasa-7b-selector", urls=["http://127.0.0.1:8002/v1"])
    with pytest.raises(ModelUnavailable, match="selector model not running.*models serve selector"):
        await PasaSelector(client, batch=1).score(QUERY, [paper(1), paper(2), paper(3)])
