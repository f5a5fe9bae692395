"""The agent end to end over real sockets, against a loopback replay of the recorded scholarly web.

`tests/replay_server.py` serves the recorded payloads of ../shared/fixtures (serper, the arXiv API,
arxiv.org/html and ar5iv pages, Semantic Scholar, OpenAlex) and a STAND-IN for the two vLLM models:
responses in the recorded vLLM shapes whose content (the crawler's queries and section picks, the
selector's P(True)) comes from tables set here. Its docstring lists every place where the replay
departs from the recordings (the serper links, the page routing, three rewritten citations).
Pacing intervals are 0: politeness is tested in test_net.py; here the request counts are the point.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import anyio
import pytest
from conftest import fixture_json
from loopback import serve
from test_latexml import ATTENTION_SECTIONS

from pasa_mcp.agent import Event, RunResult, SearchParams
from pasa_mcp.app import open_app
from pasa_mcp.config import Settings
from tests.replay_server import TRUE_ID, Replay, Seen, entry_fields

pytestmark = pytest.mark.anyio

QUESTION = "Which papers propose attention-only architectures for sequence transduction?"
QUERY = "attention only architectures for sequence transduction"
END = date(2024, 1, 1)
SERPER_ORDER = ["2202.12139", "1605.08386", "cond-mat/0603029", "1201.4869"]  # LINKS, repeats and others left out
EXPANDED = "2 Background"
ASTROML_SECTIONS = [
    "1 Introduction",
    "2 Review; Popular Classification Algorithms 2.1 Linear regression",
    "2 Review; Popular Classification Algorithms 2.2 Logistic regression",
    "2 Review; Popular Classification Algorithms 2.3 Naive Bayesian (NB)",
    "2 Review; Popular Classification Algorithms 2.4 Support Vector Machines (SVMs)",
    "2 Review; Popular Classification Algorithms 2.5 K-means",
    "2 Review; Popular Classification Algorithms 2.6 Decision Trees",
    "2 Review; Popular Classification Algorithms 2.7 Neural Networks",
    "3 Data",
]
# "2 Background" cites ten works. Three are the rewritten citations of recorded works:
BY_ID = "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"  # arXiv 1111.2011
BY_TITLE = "A Data Citation Roadmap for Scholarly Data Repositories"  # OpenAlex title search, no id in the entry
BY_DOI = "Vector Quotient Filters"  # OpenAlex, DOI 10.1145/3448016.3452841
# The other seven are real citations that no recording describes: looked up, never found.
UNKNOWN_IDS = ["1601.06733", "1610.10099", "1703.03130", "1705.03122"]
UNKNOWN_TITLES = [
    "Neural machine translation in linear time",
    "Convolutional sequence to sequence learning",
    "Gradient flow in recurrent nets: the difficulty of learning long-term dependencies",
    "Long short-term memory-networks for machine reading",
    "A decomposable attention model",
    "A structured self-attentive sentence embedding",
    "Neural GPUs learn algorithms",
]


def title(arxiv_id: str) -> str:
    return entry_fields(arxiv_id)["title"]


def settings(base: str, tmp_path: Path) -> Settings:
    return Settings(
        store_path=tmp_path / "store.sqlite3",
        serper_api_key="replay-serper-key",
        serper_url=f"{base}/serper",
        arxiv_api_url=f"{base}/arxiv/api/query",
        arxiv_html_url=f"{base}/arxiv/html",
        ar5iv_url=f"{base}/ar5iv/html",
        s2_url=f"{base}/s2/graph/v1",
        openalex_url=f"{base}/openalex",
        crossref_url=f"{base}/crossref",  # not recorded: 404, so an untitled entry stays unresolved
        crawler_urls=[f"{base}/crawler/v1"],
        selector_urls=[f"{base}/selector/v1"],
        arxiv_interval=0,
        arxiv_html_interval=0,
        s2_interval=0,
        openalex_interval=0,
    )


def google_replay() -> Replay:
    return Replay(
        queries=[QUERY],
        picks={title("2202.12139"): [EXPANDED]},
        scores={
            title("2202.12139"): 0.92,
            title("1605.08386"): 0.35,
            title("cond-mat/0603029"): 0.15,
            title("1201.4869"): 0.62,
            BY_ID: 0.71,
            BY_TITLE: 0.08,
            BY_DOI: 0.55,
        },
    )


GOOGLE_PARAMS = SearchParams(search_queries=5, search_papers=10, expand_layers=1, end_date=END)


def shown_sections(replay: Replay) -> dict[str, list[str]]:
    """Paper title -> the section list each crawler request showed for it."""
    shown = {}
    for seen in replay.of("crawler"):
        prompt = seen.body["messages"][-1]["content"]
        if "\nSections: " in prompt:
            paper = prompt.split("Title: ", 1)[1].split("\nAbstract:", 1)[0]
            shown[paper] = json.loads(prompt.rsplit("\nSections: ", 1)[1])
    return shown


def arxiv_kind(seen: Seen) -> str:
    if "id_list" in seen.params:
        return "ids"
    return "titles" if 'ti:"' in seen.params["search_query"] else "search"


def selector_titles(seen: Seen) -> list[str]:
    return [prompt.split("\nTitle: ", 1)[1].split("\nAbstract:", 1)[0] for prompt in seen.body["prompt"]]


def depth0_titles(result: RunResult, query: str) -> list[str]:
    return [node["title"] for node in result.tree["child"][query]]


async def test_google_run_follows_the_recorded_web_from_search_to_cited_papers(tmp_path: Path) -> None:
    replay = google_replay()
    events: list[Event] = []

    async def on_event(event: Event) -> None:
        events.append(event)

    async with serve(replay.app()) as base, open_app(settings(base, tmp_path)) as pasa:
        with anyio.fail_after(20):
            result = await pasa.deep_search(QUESTION, GOOGLE_PARAMS, sources=["google"], on_event=on_event)
        keys = ("arxiv:2202.12139", "arxiv:1605.08386", "arxiv:1201.4869")
        maps = {key: await pasa.store.call(pasa.store.get_section_map, key) for key in keys}
    assert result.status == "finished" and result.failures == []

    # Search: serper's arXiv links, in serper's order, with the recorded Atom metadata of one batched lookup.
    (serper,) = replay.of("serper")
    assert serper.body == {"q": f"{QUERY} before:2024-01-01 site:arxiv.org", "num": 10}
    assert serper.headers["x-api-key"] == "replay-serper-key"
    assert depth0_titles(result, QUERY) == [title(i) for i in SERPER_ORDER]
    assert [node["arxiv_id"] for node in result.tree["child"][QUERY]] == SERPER_ORDER
    lookups = [s for s in replay.of("arxiv") if arxiv_kind(s) == "ids"]
    assert lookups[0].params["id_list"] == ",".join(SERPER_ORDER) and lookups[0].params["max_results"] == "4"

    # Full text: arXiv's HTML is asked for the version arXiv's entry gave (no redirect hop).
    # 2202.12139 has no arXiv HTML page, so ar5iv's (the 1706.03762 page) is parsed; 1605.08386v1
    # is the AstroML page; 1201.4869 has no page and gets Semantic Scholar's two recorded reference
    # pages; cond-mat/0603029 has nothing anywhere.
    asked = sorted(s.path for s in replay.of("arxiv_html"))
    assert asked == sorted(f"/arxiv/html/{i}v{entry_fields(i)['version']}" for i in SERPER_ORDER)
    assert sorted(s.path for s in replay.of("ar5iv")) == sorted(
        f"/ar5iv/html/{i}" for i in ("2202.12139", "cond-mat/0603029", "1201.4869")
    )
    references = replay.of("s2.references")
    assert sorted((s.path, s.params.get("offset")) for s in references) == [
        ("/s2/graph/v1/paper/ARXIV:1201.4869/references", "0"),
        ("/s2/graph/v1/paper/ARXIV:1201.4869/references", "50"),
        ("/s2/graph/v1/paper/ARXIV:cond-mat/0603029/references", "0"),
    ]
    assert [s.path for s in replay.of("openalex.work")] == ["/openalex/works/doi:10.1103/physrevb.74.024520"]

    # The crawler was shown each page's real section names (and the reference list as one section).
    assert [m.origin for m in maps.values()] == ["ar5iv", "arxiv_html", "references"]
    pages = [fixture_json("s2", "derived", f"semanticscholar_test_get_paper_references.{n}.body.json") for n in (0, 1)]
    cited = [item["citedPaper"]["title"] for page in pages for item in page["data"]]
    assert [ref.title for ref in maps["arxiv:1201.4869"].sections["References"]] == cited
    assert shown_sections(replay) == {
        title("2202.12139"): ATTENTION_SECTIONS,
        title("1605.08386"): ASTROML_SECTIONS,
        title("1201.4869"): ["References"],
    }

    # Resolution of "2 Background": one batched arXiv id lookup, one DOI lookup, and one OpenAlex
    # title match per title without an id; OpenAlex answered them all, so arXiv's title search is not asked.
    assert lookups[1].params["id_list"] == ",".join(sorted(["1111.2011", *UNKNOWN_IDS]))
    assert [s for s in replay.of("arxiv") if arxiv_kind(s) == "titles"] == []
    works = replay.of("openalex.works")
    assert [s.params["filter"] for s in works if s.params["filter"].startswith("doi:")] == [
        "doi:10.1145/3448016.3452841"
    ]
    searched = sorted(s.params["filter"] for s in works if s.params["filter"].startswith("title.search:"))
    asked = [*UNKNOWN_TITLES, BY_TITLE]  # OpenAlex filters take words only
    assert searched == sorted("title.search:" + " ".join(re.sub(r"[^\w\s]", " ", t).split()) for t in asked)

    # ... so the three recorded works are depth-1 papers found through the expanded section, and
    # the seven works no recording describes are not papers of the run.
    papers = {p.title: p for p in result.papers}
    depth1 = {p.title for p in result.papers if p.depth == 1}
    assert depth1 == {BY_ID, BY_TITLE, BY_DOI}
    for name in depth1:
        assert papers[name].found_by == f"arxiv:2202.12139 § {EXPANDED}"
        assert papers[name].parent == "arxiv:2202.12139"
    assert papers[BY_ID].arxiv_id == "1111.2011" and papers[BY_TITLE].key == "doi:10.1101/097196"
    assert papers[BY_DOI].key == "doi:10.1145/3448016.3452841"
    assert not set(UNKNOWN_TITLES) & set(papers)
    expanded = next(e for e in events if e.kind == "expanded" and e.data["paper"] == "arxiv:2202.12139")
    assert expanded.data == {"paper": "arxiv:2202.12139", "sections": [EXPANDED], "cited": 10, "new": 3}

    # Scores are the stand-in's P(True), read from its top-20 `token_id:N` logprobs.
    assert {p.title: p.score for p in result.papers} == pytest.approx(replay.scores)
    assert {p.title for p in result.selected} == {t for t, s in replay.scores.items() if s > 0.5}
    first, second = replay.of("selector")
    assert selector_titles(first) == [title(i) for i in SERPER_ORDER]
    assert sorted(selector_titles(second)) == sorted([BY_ID, BY_TITLE, BY_DOI])
    (tokenize,) = replay.of("selector.tokenize")
    assert tokenize.body == {"model": "pasa-7b-selector", "prompt": "True", "add_special_tokens": False}
    assert first.body["logprob_token_ids"] == [TRUE_ID] and first.body["return_tokens_as_token_ids"] is True
    assert "logprob_token_ids" not in second.body  # the stand-in, like vLLM < 0.26, ignored it

    assert replay.counts() == {
        "serper": 1,
        "arxiv": 2,  # serper's ids, the cited ids
        "arxiv_html": 4,  # four papers, each at its version
        "ar5iv": 3,
        "s2.references": 3,
        "openalex.work": 1,
        "openalex.works": 1 + len(UNKNOWN_TITLES) + 1,
        "crawler": 1 + 3,  # the queries, and the sections of three papers with full text
        "selector.tokenize": 1,
        "selector": 2,
    }


async def two_google_runs(tmp_path: Path) -> tuple[RunResult, RunResult, Counter[str], list[Seen]]:
    """The same deep search twice, each in a fresh app (a new process) on one store."""
    replay = google_replay()
    results: list[RunResult] = []
    async with serve(replay.app()) as base:
        for _ in range(2):
            before = len(replay.seen)
            async with open_app(settings(base, tmp_path)) as pasa:
                with anyio.fail_after(20):
                    results.append(await pasa.deep_search(QUESTION, GOOGLE_PARAMS, sources=["google"]))
    again = replay.seen[before:]
    return results[0], results[1], Counter(s.route for s in again), again


async def test_a_second_identical_run_is_served_from_the_store(tmp_path: Path) -> None:
    first, second, counts, again = await two_google_runs(tmp_path)
    assert second.status == "finished" and second.failures == []
    assert second.papers == first.papers and second.tree == first.tree
    # Nothing is fetched and no model is asked again: not the cited ids arXiv did not know, not the
    # paper that has no full text anywhere (both are remembered misses), not the greedy crawler.
    assert counts == {}


async def test_semantic_scholar_run_replays_the_recorded_search(tmp_path: Path) -> None:
    recorded = fixture_json("s2", "derived", "semanticscholar_test_search_paper.body.json")["data"][:5]
    replay = Replay(queries=["neural turing machines"], scores={recorded[4]["title"]: 0.9})
    params = SearchParams(search_papers=5, expand_layers=1, end_date=END)
    async with serve(replay.app()) as base, open_app(settings(base, tmp_path)) as pasa:
        with anyio.fail_after(20):
            result = await pasa.deep_search(QUESTION, params, sources=["semantic_scholar"])
    assert result.status == "finished" and result.failures == []
    assert depth0_titles(result, "neural turing machines") == [r["title"] for r in recorded]
    (search,) = replay.of("s2.search")
    assert search.params["query"] == "neural turing machines" and search.params["limit"] == "5"
    assert search.params["publicationDateOrYear"] == ":2023-12-31"
    # No paper has full text: each reference list is asked for by S2 paper id and answered 404 (not a failure).
    assert sorted(s.path for s in replay.of("s2.references")) == sorted(
        f"/s2/graph/v1/paper/{r['paperId']}/references" for r in recorded
    )
    assert [p.title for p in result.selected] == [recorded[4]["title"]]
    assert sorted(p.score for p in result.papers) == pytest.approx([replay.default_score] * 4 + [0.9])
    assert replay.counts() == {
        "crawler": 1,
        "s2.search": 1,
        "s2.references": 5,
        "selector.tokenize": 1,
        "selector": 1,
    }


async def test_openalex_run_replays_the_recorded_works(tmp_path: Path) -> None:
    recorded = fixture_json("openalex", "derived", "commonmeta_test_get_random_id_from_openalex.1.body.json")
    works = recorded["results"]
    replay = Replay(queries=["participatory decision making"], scores={works[4]["title"]: 0.75})
    params = SearchParams(search_papers=5, expand_layers=1, end_date=END)
    async with serve(replay.app()) as base, open_app(settings(base, tmp_path)) as pasa:
        with anyio.fail_after(20):
            result = await pasa.deep_search(QUESTION, params, sources=["openalex"])
    assert result.status == "finished" and result.failures == []
    assert depth0_titles(result, "participatory decision making") == [w["title"] for w in works]
    search, cited = replay.of("openalex.works")
    assert search.params["search"] == "participatory decision making" and search.params["per_page"] == "5"
    assert search.params["filter"] == "to_publication_date:2023-12-31"
    # Reference lists: Semantic Scholar knows neither DOI (404); OpenAlex gives each work's referenced
    # works, and the one work that has any (34) has them looked up in one batch, none recorded.
    assert sorted(s.path for s in replay.of("s2.references")) == [
        "/s2/graph/v1/paper/DOI:10.1016/j.landusepol.2004.08.009/references",
        "/s2/graph/v1/paper/DOI:10.5580/1cbc/references",
    ]
    assert sorted(s.path for s in replay.of("openalex.work")) == sorted(
        f"/openalex/works/{w['id'].rsplit('/', 1)[1]}" for w in works
    )
    assert cited.params["filter"] == "openalex:" + "|".join(w.rsplit("/", 1)[1] for w in works[4]["referenced_works"])
    assert [p.title for p in result.selected] == [works[4]["title"]]
    assert replay.counts() == {
        "crawler": 1,
        "openalex.works": 2,
        "openalex.work": 5,
        "s2.references": 2,
        "selector.tokenize": 1,
        "selector": 1,
    }


async def test_arxiv_run_replays_the_recorded_search_feed(tmp_path: Path) -> None:
    first_three = ["2202.12139", "2405.13786", "2005.14124"]  # the recorded `testing` feed's first entries
    replay = Replay(queries=["testing deep learning models"])
    params = SearchParams(search_papers=3, expand_layers=1)
    async with serve(replay.app()) as base, open_app(settings(base, tmp_path)) as pasa:
        with anyio.fail_after(20):
            result = await pasa.deep_search(QUESTION, params, sources=["arxiv"])
    assert result.status == "finished" and result.failures == []
    assert depth0_titles(result, "testing deep learning models") == [title(i) for i in first_three]
    (search,) = [s for s in replay.of("arxiv") if arxiv_kind(s) == "search"]
    assert search.params["search_query"] == "all:testing AND all:deep AND all:learning AND all:models"
    assert search.params["max_results"] == "3" and search.params["sortBy"] == "relevance"
    assert shown_sections(replay) == {title("2202.12139"): ATTENTION_SECTIONS}
    assert replay.counts()["arxiv"] == 1  # nothing expanded: the crawler stand-in picked no section
