"""The crawler backends: the exact requests they send and how they read awkward answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FIXTURES

from pasa_mcp.config import Settings
from pasa_mcp.crawler import GENERAL_PROMPTS, CachedCrawler, GeneralCrawler, PasaCrawler, build_crawler
from pasa_mcp.llm import ModelClient, ModelError
from pasa_mcp.net import Net
from pasa_mcp.papers import Paper
from pasa_mcp.store import Store

QUERY = "Which papers adapt diffusion models to protein structure generation?"
PAPER = Paper(title="Protein Diffusion\n Survey", abstract="We review  diffusion models for proteins.")
SECTIONS = ["1 Introduction", "2 Related Work", "2 Related Work 2.1 Score Models", "5 Experiments"]
# The templates as published beside PROTOCOL.md, read independently of pasa_mcp.protocol.
TEMPLATES = json.loads((FIXTURES.parent / "pasa" / "agent_prompt.json").read_text(encoding="utf-8"))
GREEDY = {
    "temperature": 0.0,
    "top_p": 1.0,
    "max_tokens": 512,
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
VLLM_EXTRAS = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}


class FakeChat:
    """A chat endpoint that answers with queued texts and records every request body."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":  # vLLM says what it is
            return httpx.Response(200, json={"version": "0.11.0"})
        assert request.url.path == "/v1/chat/completions"
        self.bodies.append(json.loads(request.content))
        message = {"role": "assistant", "content": self.answers.pop(0)}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})


def crawler(kind: type[PasaCrawler] | type[GeneralCrawler], fake: FakeChat) -> Any:
    net = Net(Settings(), transport=httpx.MockTransport(fake))
    urls = ["http://127.0.0.1:8001/v1"]
    return kind(ModelClient(net, role="crawler", model="m", urls=urls, vllm=kind is PasaCrawler))


@pytest.mark.anyio
async def test_pasa_queries_send_one_user_message_with_the_exact_prompt() -> None:
    fake = FakeChat("[Search] protein diffusion\n[Search] survey of generative protein design\n[StopSearch]")
    queries = await crawler(PasaCrawler, fake).queries(QUERY, limit=5)
    assert queries == ["protein diffusion", "survey of generative protein design"]
    prompt = TEMPLATES["generate_query"].format(user_query=QUERY).strip()
    assert fake.bodies == [{"model": "m", "messages": [{"role": "user", "content": prompt}], **GREEDY, **VLLM_EXTRAS}]


@pytest.mark.anyio
async def test_pasa_sampling_is_the_papers_ensemble_setting() -> None:
    fake = FakeChat("[Search] a\n[StopSearch]", "[StopExpand]", "[StopExpand]")
    pasa = crawler(PasaCrawler, fake)
    await pasa.queries(QUERY, limit=5, sample=True)
    await pasa.sections(QUERY, PAPER, SECTIONS, sample=True)
    await pasa.sections(QUERY, PAPER, SECTIONS)
    assert [(body["temperature"], body["top_p"]) for body in fake.bodies] == [(2.0, 0.8), (2.0, 0.8), (0.0, 1.0)]


@pytest.mark.parametrize(
    ("output", "limit", "expected"),
    [
        ("[Search]  odd   spacing \n[Search]no space[StopSearch]", 5, ["odd spacing", "no space"]),
        ("[Search] same\n[Search] same\n[Search] other\n[StopSearch]", 5, ["same", "other"]),
        ("[Search] one\n[Search] two\n[Search] three\n[StopSearch]", 2, ["one", "two"]),
        ("[Search] kept\n[Search] cut off at the token lim", 5, ["kept"]),
        ("Sure! Here you go:\n[Search] multi\nline query\n[StopSearch]", 5, ["multi line query"]),
    ],
)
@pytest.mark.anyio
async def test_awkward_query_outputs(output: str, limit: int, expected: list[str]) -> None:
    for kind in (PasaCrawler, GeneralCrawler):
        assert await crawler(kind, FakeChat(output)).queries(QUERY, limit=limit) == expected


@pytest.mark.anyio
async def test_an_answer_without_a_complete_query_is_an_error_quoting_it() -> None:
    with pytest.raises(ModelError, match="no complete \\[Search\\] query.*only one cut off"):
        await crawler(PasaCrawler, FakeChat("[Search] only one cut off")).queries(QUERY, limit=5)


@pytest.mark.anyio
async def test_pasa_sections_render_the_names_as_a_json_list() -> None:
    fake = FakeChat("[Expand] 2 Related Work\n[Expand] 1 Introduction\n[StopExpand]")
    chosen = await crawler(PasaCrawler, fake).sections(QUERY, PAPER, SECTIONS)
    assert chosen == ["2 Related Work", "1 Introduction"]
    prompt = TEMPLATES["select_section"].format(
        user_query=QUERY,
        title="Protein Diffusion Survey",
        abstract="We review diffusion models for proteins.",
        sections='["1 Introduction", "2 Related Work", "2 Related Work 2.1 Score Models", "5 Experiments"]',
    )
    assert fake.bodies == [{"model": "m", "messages": [{"role": "user", "content": prompt}], **GREEDY, **VLLM_EXTRAS}]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("[Expand] 2 related work \n[Expand]5  Experiments\n[StopExpand]", ["2 Related Work", "5 Experiments"]),
        ("[Expand] 9 Not A Section\n[Expand] 1 Introduction\n[StopExpand]", ["1 Introduction"]),
        ("[Expand] 1 Introduction\n[Expand] 1 Introduction\n[StopExpand]", ["1 Introduction"]),
        ("[Expand] 2 Related Work 2.1 Score Models\n[Expand] 5 Experiments", ["2 Related Work 2.1 Score Models"]),
        ("[StopExpand]", []),
    ],
)
@pytest.mark.anyio
async def test_awkward_section_outputs(output: str, expected: list[str]) -> None:
    for kind in (PasaCrawler, GeneralCrawler):
        assert await crawler(kind, FakeChat(output)).sections(QUERY, PAPER, SECTIONS) == expected


@pytest.mark.anyio
async def test_no_sections_means_no_request() -> None:
    fake = FakeChat()
    assert await crawler(PasaCrawler, fake).sections(QUERY, PAPER, []) == []
    assert fake.bodies == []


@pytest.mark.anyio
async def test_general_crawler_adds_a_format_system_message_and_only_openai_parameters() -> None:
    fake = FakeChat("[Search] a\n[StopSearch]", "[Search] b\n[StopSearch]", "[Expand] 1 Introduction\n[StopExpand]")
    general = crawler(GeneralCrawler, fake)
    assert general.name == f"general:m@{GENERAL_PROMPTS}"
    await general.queries(QUERY, limit=3)
    await general.queries(QUERY, limit=3, sample=True)
    await general.sections(QUERY, PAPER, SECTIONS)
    queries, sampled, sections = fake.bodies
    system, user = queries["messages"]
    assert system["role"] == "system" and "[Search] <query>" in system["content"] and "at most 3" in system["content"]
    assert user == {"role": "user", "content": TEMPLATES["generate_query"].format(user_query=QUERY).strip()}
    assert {k: v for k, v in queries.items() if k != "messages"} == {"model": "m", **GREEDY}
    assert (sampled["temperature"], sampled["top_p"]) == (1.0, 0.9)
    assert "[Expand] <section name>" in sections["messages"][0]["content"]
    assert json.dumps(SECTIONS) in sections["messages"][1]["content"]


@pytest.mark.anyio
async def test_bad_input_is_refused_before_any_request() -> None:
    fake = FakeChat()
    pasa = crawler(PasaCrawler, fake)
    with pytest.raises(ValueError, match="empty"):
        await pasa.queries("  ", limit=5)
    with pytest.raises(ValueError, match="limit"):
        await pasa.queries(QUERY, limit=0)
    assert fake.bodies == []


def test_build_crawler_follows_the_backend_setting() -> None:
    net = Net(Settings())
    assert isinstance(build_crawler(Settings(), net), PasaCrawler)
    general = build_crawler(Settings(crawler_backend="general", crawler_model="gpt-4o"), net)
    assert isinstance(general, GeneralCrawler) and general.name == f"general:gpt-4o@{GENERAL_PROMPTS}"
    assert not general.client.vllm


class CountingCrawler:
    """A crawler double counting its calls; answers depend on `sample` so caching is visible."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    async def queries(self, user_query: str, *, limit: int, sample: bool = False) -> list[str]:
        self.calls.append(("queries", sample))
        return [f"{user_query} {'sampled' if sample else 'greedy'} {len(self.calls)}"][:limit]

    async def sections(self, user_query: str, paper: Paper, names: list[str], *, sample: bool = False) -> list[str]:
        self.calls.append(("sections", sample))
        return names[:1]


@pytest.mark.anyio
async def test_greedy_crawler_answers_are_kept_and_sampled_ones_never(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    inner = CountingCrawler()
    crawler = CachedCrawler(inner, store)
    first = await crawler.queries("q", limit=5)
    assert await crawler.queries("q", limit=5) == first  # from the store
    await crawler.queries("q", limit=3)
    assert inner.calls.count(("queries", False)) == 2  # another limit is another question
    await crawler.queries("q", limit=5, sample=True)
    await crawler.queries("q", limit=5, sample=True)
    assert inner.calls.count(("queries", True)) == 2
    paper = Paper(title="T", abstract="A", arxiv_id="2101.00001")
    assert await crawler.sections("q", paper, ["1 Intro", "2 Method"]) == ["1 Intro"]
    assert await crawler.sections("q", paper, ["1 Intro", "2 Method"]) == ["1 Intro"]
    assert await crawler.sections("q", paper, ["2 Method"]) == ["2 Method"]  # other sections, other question
    assert inner.calls.count(("sections", False)) == 2
    # Another process (a new Store on the same file) sees the kept answers.
    again = CachedCrawler(inner, Store(tmp_path / "c.sqlite3"))
    assert await again.queries("q", limit=5) == first
    assert inner.calls.count(("queries", False)) == 2
