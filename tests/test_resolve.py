"""Reference resolution: order of the stages, batching, and the cache of hits and misses."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import fixture_json
from test_arxiv import TESTING, atom, feed, recorded_entries

from pasa_mcp.config import Settings
from pasa_mcp.index.db import LocalIndex, Record
from pasa_mcp.index.resolve import LocalResolver
from pasa_mcp.layers import Layer, Member
from pasa_mcp.net import Net, SourceRejected, SourceUnavailable
from pasa_mcp.papers import Paper, Reference, title_key
from pasa_mcp.resolve import ResolutionIncomplete, Resolver
from pasa_mcp.sources.arxiv import TITLES_PER_QUERY, ArxivAPI, parse_feed, title_phrase
from pasa_mcp.store import Store
from pasa_mcp.titles import titles_match

pytestmark = pytest.mark.anyio

API = "https://arxiv.test/api/query"


class ArxivServer:
    """The arXiv API over the recorded entries: id lookups, and title searches answered with `titles`."""

    def __init__(self, titles: str = TESTING) -> None:
        self.entries = recorded_entries()
        self.titles = titles
        self.id_lookups: list[list[str]] = []
        self.title_searches: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if "id_list" in request.url.params:
            wanted = request.url.params["id_list"].split(",")
            self.id_lookups.append(wanted)
            return atom(feed([self.entries[i] for i in wanted if i in self.entries]))
        self.title_searches.append(request.url.params["search_query"])
        return atom(self.titles)


class Matcher:
    """A title matcher (the role OpenAlex plays) answering from a fixed table; titles in `failing` fail."""

    name = "fake_matcher"

    def __init__(self, known: dict[str, Paper], failing: frozenset[str] = frozenset()) -> None:
        self.known, self.failing = known, failing
        self.asked: list[str] = []

    async def match_title(self, title: str) -> Paper | None:
        self.asked.append(title)
        if title in self.failing:
            raise SourceUnavailable("fake_matcher", 3, "HTTP 503")
        return self.known.get(title)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "resolve.sqlite3")
    store.upsert_papers(
        [
            Paper(title="Attention Is All You Need", arxiv_id="1706.03762", abstract="The Transformer."),
            Paper(title="Deep Residual Learning for Image Recognition", doi="10.1109/CVPR.2016.90"),
        ]
    )
    yield store
    store.close()


@asynccontextmanager
async def arxiv(server: ArxivServer) -> AsyncIterator[ArxivAPI]:
    settings = Settings(arxiv_api_url=API, arxiv_interval=0)
    net = Net(settings, httpx.MockTransport(server))
    try:
        yield ArxivAPI(net, settings)
    finally:
        await net.aclose()


S2_ONLY = "A Paper Only the Matcher Knows"
NOWHERE = "Nothing Anywhere Has This Title"
REFS = [
    Reference(title="Heat bath random walks (garbled title)", arxiv_id="1605.08386v1"),  # own arXiv id
    Reference(title="Attention is all you need."),  # the store's title key
    Reference(title="Deep Residul Learning for Image Recognition"),  # the full-text index, fuzzy
    Reference(title="Testing deep learning models: a first comparative study of multiple testing techniques"),
    Reference(title=S2_ONLY),
    Reference(title=NOWHERE),
    Reference(title="TESTING DEEP LEARNING MODELS - A first comparative study of multiple testing techniques"),
    Reference(title="Residual learning, deep", doi="https://doi.org/10.1109/cvpr.2016.90"),  # own DOI
]


TESTING_TITLE = REFS[3].title


def matcher(failing: frozenset[str] = frozenset()) -> Matcher:
    return Matcher(
        {
            S2_ONLY: Paper(title="A paper only the matcher knows", doi="10.5555/only", sources=["openalex"]),
            NOWHERE: Paper(title="A different paper altogether", doi="10.5555/other"),  # rejected: title differs
            TESTING_TITLE: parse_feed(TESTING)[0],
        },
        failing,
    )


async def test_each_reference_resolves_at_the_first_stage_that_knows_it(store: Store) -> None:
    server, s2 = ArxivServer(), matcher()
    async with arxiv(server) as api:
        papers = await Resolver(store, api, [s2]).resolve(REFS)
    keys = [p.key if p else None for p in papers]
    assert keys == [
        "arxiv:1605.08386",
        "arxiv:1706.03762",
        "doi:10.1109/cvpr.2016.90",
        "arxiv:2202.12139",
        "doi:10.5555/only",
        None,
        "arxiv:2202.12139",
        "doi:10.1109/cvpr.2016.90",
    ]
    assert papers[0].title == "Heat-bath random walks with Markov bases"
    assert server.id_lookups == [["1605.08386"]]
    # The matcher answered every title the store lacks (the duplicate once): its "no" is trusted, so
    # arXiv's paced title search is not asked.
    assert server.title_searches == []
    assert sorted(s2.asked) == sorted([TESTING_TITLE, S2_ONLY, NOWHERE])
    assert store.find_by_title(S2_ONLY).doi == "10.5555/only"  # remote finds are stored


async def test_arxiv_title_search_takes_the_titles_every_matcher_failed_on(store: Store) -> None:
    server, flaky = ArxivServer(), matcher(failing=frozenset({TESTING_TITLE, NOWHERE}))
    async with arxiv(server) as api:
        papers = await Resolver(store, api, [flaky]).resolve(REFS[3:6])
    assert [p.key if p else None for p in papers] == ["arxiv:2202.12139", "doi:10.5555/only", None]
    assert server.title_searches == [
        'ti:"testing deep learning models a first comparative study of multiple testing techniques"'
        ' OR ti:"nothing anywhere has this title"'
    ]


async def test_a_failing_matcher_without_arxiv_is_a_failure_not_a_miss(store: Store) -> None:
    flaky = matcher(failing=frozenset({NOWHERE}))
    with pytest.raises(SourceUnavailable, match="fake_matcher unavailable"):
        await Resolver(store, None, [flaky]).resolve([REFS[5]])
    assert store.get_resolutions({title_key(NOWHERE)}) == {}  # nothing remembered as a miss


async def test_hits_and_misses_are_remembered(store: Store) -> None:
    server, s2 = ArxivServer(), matcher()
    async with arxiv(server) as api:
        first = await Resolver(store, api, [s2]).resolve(REFS[3:6])
        again = await Resolver(store, api, [s2]).resolve(REFS[3:6])
    assert [p.key if p else None for p in again] == [p.key if p else None for p in first]
    assert again[2] is None
    assert server.title_searches == []
    assert len(s2.asked) == 3


async def test_misses_expire_and_are_then_looked_up_again(store: Store) -> None:
    server, s2 = ArxivServer(), matcher()
    async with arxiv(server) as api:
        await Resolver(store, api, [s2], miss_ttl=0).resolve([REFS[5]])
        await Resolver(store, api, [s2], miss_ttl=0).resolve([REFS[5]])
    assert s2.asked == [NOWHERE, NOWHERE]


async def test_without_remote_sources_a_miss_is_not_remembered(store: Store) -> None:
    assert await Resolver(store, None).resolve([REFS[3]]) == [None]
    server = ArxivServer()
    async with arxiv(server) as api:
        (paper,) = await Resolver(store, api).resolve([REFS[3]])
    assert paper.arxiv_id == "2202.12139"
    assert len(server.title_searches) == 1


async def test_an_unknown_own_id_falls_back_to_the_title(store: Store) -> None:
    server = ArxivServer()
    refs = [Reference(title="Attention Is All You Need", arxiv_id="2401.99999")]
    async with arxiv(server) as api:
        (paper,) = await Resolver(store, api).resolve(refs)
    assert paper.arxiv_id == "1706.03762"
    assert len(server.id_lookups) == 3  # the empty answer was retried, as a spurious one would be
    assert server.title_searches == []


async def test_two_hundred_titles_take_a_handful_of_arxiv_requests(store: Store) -> None:
    recorded = fixture_json("s2", "derived", "semanticscholar_test_search_paper.body.json")["data"]
    by_key = {title_key(r["title"]): r["title"] for r in recorded}  # distinct titles of realistic length
    titles = [f"{t}{suffix}" for suffix in ("", " revisited", " (extended)") for t in by_key.values()][:200]
    assert len({title_key(t) for t in titles}) == 200
    server = ArxivServer(titles=feed([]))
    async with arxiv(server) as api:
        papers = await Resolver(store, api).resolve([Reference(title=t) for t in titles])
    assert len(papers) == 200
    assert len(server.title_searches) <= math.ceil(200 / TITLES_PER_QUERY) + 1
    clauses = [c for q in server.title_searches for c in q.split(" OR ")]
    assert sorted(clauses) == sorted({title_phrase(t) for t in titles})  # long titles may share a phrase


def test_the_fuzzy_rule_takes_variants_and_refuses_other_papers() -> None:
    (paper,) = parse_feed(feed([recorded_entries()["1605.08386"]]))
    assert titles_match("Heat-bath random walks with Markov bases", paper.title)
    assert titles_match("{H}eat-bath random walks with {M}arkov bases.", paper.title)
    assert titles_match("Heat bath random walks with Markov base", paper.title)  # typo
    assert not titles_match("Heat-bath random walks", paper.title)
    assert titles_match("Attention is all you need", "Attention Is All You Need")
    assert not titles_match("Attention is not all you need", "Attention Is All You Need")
    assert not titles_match(
        "Deep residual learning for image restoration", "Deep Residual Learning for Image Recognition"
    )
    assert not titles_match("", "")


async def test_a_doi_the_store_knows_spares_the_arxiv_lookup(store: Store) -> None:
    server = ArxivServer()
    refs = [Reference(title="ResNet", arxiv_id="arXiv:1512.03385", doi="doi:10.1109/CVPR.2016.90")]
    async with arxiv(server) as api:
        (paper,) = await Resolver(store, api).resolve(refs)
    assert paper.title == "Deep Residual Learning for Image Recognition"
    assert server.id_lookups == [] and server.title_searches == []


class DoiSource:
    """A DOI lookup (the role OpenAlex plays) answering from a fixed table, or failing."""

    def __init__(self, known: dict[str, Paper], fails: bool = False) -> None:
        self.known, self.fails = known, fails
        self.asked: list[list[str]] = []

    async def papers_by_doi(self, dois: list[str]) -> dict[str, Paper]:
        self.asked.append(dois)
        if self.fails:
            raise SourceUnavailable("OpenAlex", 6, "HTTP 503")
        return {doi: self.known[doi] for doi in dois if doi in self.known}


async def test_references_with_a_doi_are_looked_up_by_doi_in_one_batch(store: Store) -> None:
    gan = Paper(title="Generative Adversarial Nets", doi="10.5555/2969033.2969125", arxiv_id="1406.2661")
    dois = DoiSource({"10.5555/2969033.2969125": gan})
    refs = [
        Reference(title="Generative adversarial netz (typo)", doi="https://doi.org/10.5555/2969033.2969125"),
        Reference(title="Deep residual learning", doi="10.1109/cvpr.2016.90"),  # known to the store
        Reference(title="Unknown work", doi="10.9999/nothing"),
    ]
    resolver = Resolver(store, None, dois=[dois])
    found = await resolver.resolve(refs)
    assert found[0] is not None and found[0].key == "arxiv:1406.2661"
    assert found[1] is not None and found[1].doi == "10.1109/cvpr.2016.90"
    assert found[2] is None
    assert dois.asked == [["10.5555/2969033.2969125", "10.9999/nothing"]]  # the store answered the third
    assert store.get_paper("doi:10.5555/2969033.2969125") == found[0]


async def test_while_the_doi_lookup_fails_the_next_stands_in_and_its_misses_are_not_remembered(store: Store) -> None:
    gan = Paper(title="Generative Adversarial Nets", doi="10.5555/2969033.2969125")
    refs = [Reference(title="", doi="10.5555/2969033.2969125"), Reference(title="", doi="10.9999/nothing")]
    down, stand_in = DoiSource({}, fails=True), DoiSource({"10.5555/2969033.2969125": gan})
    found = await Resolver(store, None, dois=[down, stand_in]).resolve(refs)
    assert found[0] is not None and found[0].title == gan.title and found[1] is None
    assert down.asked == stand_in.asked == [["10.5555/2969033.2969125", "10.9999/nothing"]]
    # The stand-in's "unknown" is not remembered: once the first answers again, it is asked.
    back = DoiSource({})
    await Resolver(store, None, dois=[back]).resolve(refs[1:])
    assert back.asked == [["10.9999/nothing"]]
    with pytest.raises(SourceUnavailable, match="OpenAlex unavailable"):  # every lookup failing is an error
        both_down = Resolver(store, None, dois=[down, DoiSource({}, fails=True)])
        await both_down.resolve([Reference(title="", doi="10.1234/abc")])


async def test_ids_the_arxiv_stand_in_lacked_are_not_remembered_as_misses(store: Store) -> None:
    class StandIn:  # Semantic Scholar's batch lookup, knowing one of the two
        async def papers(self, ids: list[str]) -> dict[str, Paper]:
            known = {"ARXIV:2401.00001": Paper(title="Known", arxiv_id="2401.00001")}
            return {i: known[i] for i in ids if i in known}

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0"}, text="down")

    settings = Settings(arxiv_api_url=API, arxiv_interval=0, http_retries=0)
    net = Net(settings, httpx.MockTransport(down))
    try:
        api = ArxivAPI(net, settings, stand_in=StandIn())
        refs = [Reference(title="", arxiv_id="2401.00001"), Reference(title="", arxiv_id="2401.00002")]
        found = await Resolver(store, api).resolve(refs)
    finally:
        await net.aclose()
    assert found[0] is not None and found[0].arxiv_id == "2401.00001" and found[1] is None
    assert store.get_resolutions({"arxiv:2401.00002"}) == {}  # asked again once arXiv answers


async def test_a_layer_sends_its_members_ids_in_one_lookup_once_every_member_asked(store: Store) -> None:
    server, s2 = ArxivServer(), matcher()
    entries = list(server.entries)
    layer = Layer()
    first, second, idle = layer.member(), layer.member(), layer.member()
    async with arxiv(server) as api:
        resolver = Resolver(store, api, [s2])
        results: dict[str, list[Paper | None]] = {}

        async def run(name: str, member: Member, refs: list[Reference]) -> None:
            results[name] = await resolver.resolve(refs, member)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "first", first, [Reference(title="x", arxiv_id=entries[0]), REFS[4]])
            tg.start_soon(run, "second", second, [Reference(title="y", arxiv_id=entries[1])])
            await wait_until(lambda: S2_ONLY in s2.asked)
            # Titles without an id are matched at once; the ids wait for the member still expanding.
            assert server.id_lookups == [] and "second" not in results
            idle.done()
    assert server.id_lookups == [sorted(entries[:2])]
    assert [p.arxiv_id for p in results["second"] if p] == [entries[1]]
    assert [p.key if p else None for p in results["first"]] == [f"arxiv:{entries[0]}", "doi:10.5555/only"]


async def test_a_failed_layer_lookup_fails_every_member_that_asked(store: Store) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="no")

    layer = Layer()
    members = [layer.member(), layer.member()]
    errors: list[Exception] = []
    async with arxiv(down) as api:  # type: ignore[arg-type]

        async def run(member: Member, arxiv_id: str) -> None:
            try:
                await Resolver(store, api).resolve([Reference(title="t", arxiv_id=arxiv_id)], member)
            except SourceRejected as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, members[0], "2401.00001")
            tg.start_soon(run, members[1], "2401.00002")
    assert len(errors) == 2


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (polls a test double, not an event)
            await anyio.sleep(0.01)


# Entries without a title of their own: resolved by the whole reference string ----------------

APS = "A. Porter and B. Quill, Phys. Rev. Lett. 116, 125 (2000)."
ASTRO = "Porter A. B., Quill M., 2001a, Monthly Notices of the Lattice Society, 321, 45."


class ReferenceSearcher:
    """A reference search that answers from a table, or fails for the strings in `failing`."""

    def __init__(self, name: str, known: dict[str, list[Paper]], failing: frozenset[str] = frozenset()) -> None:
        self.name, self.known, self.failing, self.asked = name, known, failing, []

    async def search_reference(self, text: str) -> list[Paper]:
        self.asked.append(text)
        if text in self.failing:
            raise SourceUnavailable(self.name, 1, "HTTP 503")
        return self.known.get(text, [])


def porter(year: int, doi: str, first: str = "Ansel Porter") -> Paper:
    from datetime import date

    return Paper(title=f"A work of {year}", doi=doi, authors=[first, "Maria Quill"], published=date(year, 1, 1))


async def test_untitled_entries_resolve_by_their_whole_text_never_by_a_fragment(store: Store) -> None:
    untitled = [Reference(title=APS, text=APS, untitled=True), Reference(title=ASTRO, text=ASTRO, untitled=True)]
    openalex = ReferenceSearcher(
        "openalex",
        # The first candidate is another author's work; the second is the one named (year, surname).
        {APS: [porter(2000, "10.5555/other", first="Tomas Berg"), porter(2000, "10.5555/aps")]},
    )
    crossref = ReferenceSearcher("crossref", {ASTRO: [porter(1999, "10.5555/wrong-year"), porter(2001, "10.5555/mn")]})
    title_matcher = matcher()
    resolver = Resolver(store, None, [title_matcher], references=[openalex, crossref])
    papers = await resolver.resolve(untitled)
    assert [p.key if p else None for p in papers] == ["doi:10.5555/aps", "doi:10.5555/mn"]
    assert title_matcher.asked == []  # the whole entry is not a title to match
    assert openalex.asked == [APS, ASTRO] or openalex.asked == [ASTRO, APS]
    assert crossref.asked == [ASTRO]  # only what the first search did not find
    # Remembered: a second resolution asks nobody.
    again = await Resolver(store, None, references=[ReferenceSearcher("openalex", {})]).resolve(untitled)
    assert [p.key if p else None for p in again] == ["doi:10.5555/aps", "doi:10.5555/mn"]


async def test_reference_searches_that_all_fail_are_an_error_not_a_miss(store: Store) -> None:
    down = ReferenceSearcher("crossref", {}, failing=frozenset({APS}))
    with pytest.raises(SourceUnavailable):
        await Resolver(store, None, references=[down]).resolve([Reference(title=APS, text=APS, untitled=True)])
    nothing = ReferenceSearcher("crossref", {})
    assert await Resolver(store, None, references=[nothing]).resolve(
        [Reference(title=APS, text=APS, untitled=True)]
    ) == [None]


def test_reference_matches_needs_the_year_and_the_first_authors_surname() -> None:
    from pasa_mcp.titles import reference_matches

    assert reference_matches(APS, porter(2000, "10.5555/a"))
    assert reference_matches(ASTRO, porter(2001, "10.5555/b"))  # "2001a"
    assert not reference_matches(APS, porter(2001, "10.5555/c"))
    assert not reference_matches(APS, porter(2000, "10.5555/d", first="Tomas Berg"))
    assert not reference_matches(APS, Paper(title="No authors", doi="10.5555/e"))


# A source failing for some references: the rest is kept, the loss is said ------------------------


def arxiv_titles_down(server: ArxivServer) -> Callable[[httpx.Request], httpx.Response]:
    """`server` answering id lookups, with its title search down."""

    def answer(request: httpx.Request) -> httpx.Response:
        if "id_list" in request.url.params:
            return server(request)
        server.title_searches.append(request.url.params["search_query"])
        return httpx.Response(503, headers={"Retry-After": "0"}, text="down")

    return answer


@asynccontextmanager
async def quick_arxiv(handler: Callable[[httpx.Request], httpx.Response]) -> AsyncIterator[ArxivAPI]:
    """The arXiv API through `handler`, without retries: a failure fails at once."""
    settings = Settings(arxiv_api_url=API, arxiv_interval=0, http_retries=0)
    net = Net(settings, httpx.MockTransport(handler))
    try:
        yield ArxivAPI(net, settings)
    finally:
        await net.aclose()


async def test_what_resolved_survives_every_title_source_failing(store: Store) -> None:
    server, flaky = ArxivServer(), matcher(failing=frozenset({NOWHERE}))
    refs = [REFS[0], REFS[1], REFS[5], REFS[4]]  # by arXiv id, by the store, failing everywhere, by the matcher
    async with quick_arxiv(arxiv_titles_down(server)) as api:
        with pytest.raises(ResolutionIncomplete) as caught:
            await Resolver(store, api, [flaky]).resolve(refs)
    incomplete = caught.value
    assert [p.key if p else None for p in incomplete.results] == [
        "arxiv:1605.08386",
        "arxiv:1706.03762",
        None,
        "doi:10.5555/only",
    ]
    assert incomplete.unresolved == 1 and isinstance(incomplete.error, SourceUnavailable)
    assert str(incomplete) == "1 of 4 references not resolved: fake_matcher unavailable: 2 retries, last HTTP 503"
    assert server.id_lookups == [["1605.08386"]] and len(server.title_searches) == 1  # the fallback was tried
    assert store.get_resolutions({title_key(NOWHERE)}) == {}  # a failure, not a miss


async def test_what_resolved_survives_the_arxiv_id_lookup_failing(store: Store) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0"}, text="down")

    refs = [
        Reference(title="Attention is all you need", arxiv_id="2401.00009"),  # its title is in the store
        Reference(title="", arxiv_id="2401.00001"),
        Reference(title="Deep residual learning for image recognition"),
    ]
    async with quick_arxiv(down) as api:
        with pytest.raises(ResolutionIncomplete) as caught:
            await Resolver(store, api).resolve(refs)
    assert [p.key if p else None for p in caught.value.results] == [
        "arxiv:1706.03762",  # its id unanswered, found by its title
        None,
        "doi:10.1109/cvpr.2016.90",
    ]
    assert str(caught.value) == "1 of 3 references not resolved: arXiv API unavailable: HTTP 503"
    assert store.get_resolutions({"arxiv:2401.00001", "arxiv:2401.00009"}) == {}


async def test_with_a_local_index_arxiv_searches_the_titles_every_matcher_failed_on(
    store: Store, tmp_path: Path
) -> None:
    index = LocalIndex(tmp_path / "index.sqlite3")  # a partial index: one paper
    index.add([Record(title="Heat-bath random walks with Markov bases", arxiv_id="1605.08386")])
    server, flaky = ArxivServer(), matcher(failing=frozenset({TESTING_TITLE}))
    refs = [Reference(title="Heat bath random walks with Markov bases"), REFS[3], REFS[4], REFS[5]]
    try:
        async with arxiv(server) as api:
            papers = await Resolver(store, api, [flaky], local=LocalResolver(index)).resolve(refs)
    finally:
        index.close()
    assert [p.key if p else None for p in papers] == [
        "arxiv:1605.08386",  # the index
        "arxiv:2202.12139",  # arXiv's title search: the matcher failed on it
        "doi:10.5555/only",  # the matcher
        None,  # the matcher's "no": trusted, so arXiv is not asked
    ]
    assert server.title_searches == [
        'ti:"testing deep learning models a first comparative study of multiple testing techniques"'
    ]


async def test_lookups_that_failed_are_not_remembered_and_succeed_once_the_sources_are_back(store: Store) -> None:
    gan = Paper(title="Generative Adversarial Nets", doi="10.5555/2969033.2969125")
    refs = [
        REFS[1],  # the store
        REFS[4],  # a title
        Reference(title="", doi="10.5555/2969033.2969125"),  # a DOI
        Reference(title=APS, text=APS, untitled=True),  # a whole reference string
    ]
    down = Resolver(
        store,
        None,
        [matcher(failing=frozenset({S2_ONLY}))],
        dois=[DoiSource({}, fails=True)],
        references=[ReferenceSearcher("openalex", {}, failing=frozenset({APS}))],
    )
    with pytest.raises(ResolutionIncomplete) as caught:
        await down.resolve(refs)
    assert [p.key if p else None for p in caught.value.results] == ["arxiv:1706.03762", None, None, None]
    assert caught.value.unresolved == 3
    back = Resolver(
        store,
        None,
        [matcher()],
        dois=[DoiSource({gan.doi: gan})],
        references=[ReferenceSearcher("openalex", {APS: [porter(2000, "10.5555/aps")]})],
    )
    found = await back.resolve(refs)
    assert [p.key if p else None for p in found] == [
        "arxiv:1706.03762",
        "doi:10.5555/only",
        "doi:10.5555/2969033.2969125",
        "doi:10.5555/aps",
    ]


async def test_a_failure_that_another_stage_made_up_for_is_no_loss(store: Store) -> None:
    refs = [Reference(title="Attention is all you need", doi="10.5555/attention")]
    (paper,) = await Resolver(store, None, dois=[DoiSource({}, fails=True)]).resolve(refs)
    assert paper is not None and paper.key == "arxiv:1706.03762"  # found by its title: nothing lost
