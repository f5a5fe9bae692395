"""The simulated literature: topics, papers, identifiers, a citation graph and ground-truth relevance.

Everything is a pure function of (seed, size, spec). Papers are generated in date order so every
citation points to an older paper. A question names a topic and an aspect; the papers on exactly that
topic and aspect are its answers. A share of them ("hidden" papers) is written with the alias phrases
of the topic and aspect, so a search for the question's words rarely finds them: only citation
expansion does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from random import Random

from pasa_mcp.papers import title_key

from . import vocab
from .index import Index

START_YEAR, END = 1998, datetime(2025, 6, 30, tzinfo=UTC)
ARXIV_ID = re.compile(r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?")
_SMALL = {"a", "an", "and", "for", "in", "of", "on", "the", "to", "with", "via", "at"}


@dataclass(frozen=True)
class CorpusSpec:
    """Shape of the generated literature (shares are probabilities)."""

    papers_per_cell: int = 12  # papers per (topic, aspect): sets how many topics a corpus has
    aspects_per_topic: int = 4
    topic_share: float = 0.15  # papers about a topic in general, no aspect
    doi_only_share: float = 0.05  # journal papers without an arXiv id (Semantic Scholar/OpenAlex only)
    hidden_share: float = 0.3  # on-aspect papers written with the alias phrases
    journal_doi_share: float = 0.3  # arXiv papers that also have a journal DOI
    # HTML follows the real coverage: arXiv converts submissions since December 2023 (html_since),
    # ar5iv converted the older ones; a few of either kind fail or were converted the other way.
    html_since: datetime = datetime(2023, 12, 1, tzinfo=UTC)
    arxiv_html_share: tuple[float, float] = (0.1, 0.95)  # papers with arXiv HTML: (older, since html_since)
    ar5iv_share: tuple[float, float] = (0.85, 0.05)  # papers with an ar5iv page: (older, since html_since)
    variant_share: float = 0.15  # citations whose title is written differently (case, typos, ...)
    queries: int = 100


@dataclass(frozen=True)
class Topic:
    idx: int
    phrase: str
    alias: str
    acronym: str
    category: str
    aspects: tuple[int, ...]  # indices into vocab.ASPECTS


@dataclass(slots=True)
class Paper:
    idx: int
    kind: str  # "cell" (topic and aspect), "topic" (topic only) or "journal" (DOI only)
    topic: int
    aspect: int | None
    hidden: bool
    published: datetime
    title: str = ""
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    updated: datetime | None = None
    versions: int = 1
    arxiv_id: str | None = None
    doi: str | None = None
    categories: list[str] = field(default_factory=list)
    venue: str | None = None
    refs: list[int] = field(default_factory=list)
    externals: list[str] = field(default_factory=list)
    arxiv_html: bool = False
    ar5iv: bool = False
    cited_by: int = 0


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) for the given parts (stable across runs and processes)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def title_case(text: str) -> str:
    words = text.split()
    out = []
    for i, word in enumerate(words):
        if i and word in _SMALL:
            out.append(word)
        else:
            out.append("-".join(p[:1].upper() + p[1:] for p in word.split("-")))
    return " ".join(out)


def _acronym(phrase: str) -> str:
    return "".join(p[0].upper() for w in phrase.split() for p in w.split("-"))


def _coined(rng: Random) -> str:
    syllables = "ka ro mi te lu no va si de pa zu fe gi ho ba tor len mar vis quo".split()
    name = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3)))
    return name.upper() if rng.random() < 0.4 else name.capitalize()


class Corpus:
    """The generated papers with every lookup the simulated services need."""

    def __init__(self, seed: int, papers: int, spec: CorpusSpec | None = None) -> None:
        if papers < 20:
            raise ValueError(f"a corpus needs at least 20 papers, got {papers}")
        self.seed, self.spec = seed, spec or CorpusSpec()
        rng = Random(f"world:{seed}")
        self.topics = _topics(rng, papers, self.spec)
        self.papers = _papers(rng, papers, self.topics, self.spec)
        _identities(rng, self.papers, self.topics, self.spec)
        _texts(rng, self.papers, self.topics)
        _citations(rng, self.papers, self.topics)
        self.by_arxiv = {p.arxiv_id: p.idx for p in self.papers if p.arxiv_id}
        self.by_doi = {p.doi.lower(): p.idx for p in self.papers if p.doi}
        self.by_title = {title_key(p.title): p.idx for p in self.papers}
        self.by_s2 = {self.s2_id(p): p.idx for p in self.papers}
        phrases: dict[str, int] = {}
        for t in self.topics:
            phrases[t.phrase] = phrases[t.alias] = t.idx
        self._topic_phrases = phrases
        self._topic_re = _alternation(phrases)
        aspects = {a: i for i, pair in enumerate(vocab.ASPECTS) for a in pair}
        self._aspect_phrases = aspects
        self._aspect_re = _alternation(aspects)
        self.interpret = lru_cache(maxsize=4096)(self._interpret)
        self.layouts: dict[int, object] = {}  # filled by layout.layout_of
        self.queries = _queries(rng, self)

    # Identities of the other services, derived (not stored) from the paper's position.
    def s2_id(self, paper: Paper) -> str:
        return hashlib.sha1(f"s2:{self.seed}:{paper.idx}".encode()).hexdigest()

    def corpus_id(self, paper: Paper) -> int:
        return 100_000_000 + self.seed % 1000 * 1_000_000 + paper.idx

    def openalex_id(self, paper: Paper) -> str:
        return f"W{4_000_000_000 + self.seed % 1000 * 1_000_000 + paper.idx}"

    def by_openalex(self, work_id: str) -> Paper | None:
        m = re.fullmatch(r"(?:https://openalex\.org/)?[Ww](\d+)", work_id.strip())
        if not m:
            return None
        idx = int(m.group(1)) - 4_000_000_000 - self.seed % 1000 * 1_000_000
        return self.papers[idx] if 0 <= idx < len(self.papers) else None

    def by_corpus_id(self, corpus_id: int) -> Paper | None:
        idx = corpus_id - 100_000_000 - self.seed % 1000 * 1_000_000
        return self.papers[idx] if 0 <= idx < len(self.papers) else None

    def find_arxiv(self, raw: str) -> tuple[Paper, int | None] | None:
        """The paper of an arXiv id written as in a URL path (`2101.00001`, `hep-th/9901001v2`) and its version."""
        m = ARXIV_ID.fullmatch(raw.strip("/"))
        idx = self.by_arxiv.get(m.group("id")) if m else None
        if m is None or idx is None:
            return None
        return self.papers[idx], int(m.group("v")) if m.group("v") else None

    def find_title(self, title: str) -> Paper | None:
        idx = self.by_title.get(title_key(title))
        return None if idx is None else self.papers[idx]

    @cached_property
    def index(self) -> Index:
        return Index(
            [
                {"ti": p.title, "abs": p.abstract, "au": " ".join(p.authors), "cat": " ".join(p.categories)}
                for p in self.papers
            ]
        )

    # Ground truth.
    def mentions(self, text: str) -> tuple[str, str | None] | None:
        """The topic phrase and aspect phrase a query names (main or alias form), if any."""
        low = " ".join(text.lower().split())
        topic = self._topic_re.search(low)
        if topic is None:
            return None
        aspect = self._aspect_re.search(low)
        return topic.group(0), None if aspect is None else aspect.group(0)

    def _interpret(self, text: str) -> tuple[int, int | None] | None:
        """The (topic, aspect) a query is about; None if it names no topic."""
        found = self.mentions(text)
        if found is None:
            return None
        return self._topic_phrases[found[0]], None if found[1] is None else self._aspect_phrases[found[1]]

    def relevance(self, query: str, paper: Paper) -> int:
        """2: answers the query; 1: same topic, another aspect (a near miss); 0: unrelated."""
        about = self.interpret(query)
        if about is None or paper.topic != about[0]:
            return 0
        if about[1] is None:
            return 2 if paper.kind != "journal" else 1
        return 2 if paper.aspect == about[1] else 1


def _alternation(phrases: dict[str, int]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![a-z0-9])")


def _topics(rng: Random, papers: int, spec: CorpusSpec) -> list[Topic]:
    on_aspect = papers * (1 - spec.topic_share - spec.doi_only_share)
    count = max(2, round(on_aspect / (spec.aspects_per_topic * spec.papers_per_cell)))
    pairs = [(m, n) for m in vocab.MODIFIERS for n in vocab.NOUNS]
    if 2 * count > len(pairs):
        raise ValueError(f"{papers} papers need {count} topics; the vocabulary has room for {len(pairs) // 2}")
    rng.shuffle(pairs)
    topics = []
    for i in range(count):
        main, alias = pairs[2 * i], pairs[2 * i + 1]
        if set(main) & set(alias):  # an alias must share no word with its topic
            alias = next(p for p in pairs[2 * count :] if not set(p) & set(main))
            pairs.remove(alias)
        phrase = " ".join(main)
        aspects = tuple(rng.sample(range(len(vocab.ASPECTS)), spec.aspects_per_topic))
        topics.append(Topic(i, phrase, " ".join(alias), _acronym(phrase), rng.choice(list(vocab.CATEGORIES)), aspects))
    return topics


def _papers(rng: Random, count: int, topics: list[Topic], spec: CorpusSpec) -> list[Paper]:
    years = list(range(START_YEAR, END.year + 1))
    weights = [1.12 ** (y - START_YEAR) for y in years]
    drafts = []
    for _ in range(count):
        year = rng.choices(years, weights)[0]
        start = datetime(year, 1, 1, tzinfo=UTC)
        stop = min(datetime(year + 1, 1, 1, tzinfo=UTC), END)
        when = start + timedelta(seconds=rng.randrange(int((stop - start).total_seconds())))
        topic = topics[rng.randrange(len(topics))]
        roll = rng.random()
        if roll < spec.doi_only_share:
            drafts.append(("journal", topic.idx, None, False, when))
        elif roll < spec.doi_only_share + spec.topic_share:
            drafts.append(("topic", topic.idx, None, False, when))
        else:
            aspect = rng.choice(topic.aspects)
            drafts.append(("cell", topic.idx, aspect, rng.random() < spec.hidden_share, when))
    drafts.sort(key=lambda d: d[4])
    return [Paper(i, *d) for i, d in enumerate(drafts)]


def _identities(rng: Random, papers: list[Paper], topics: list[Topic], spec: CorpusSpec) -> None:
    """arXiv ids in date order (old style before April 2007), versions, DOIs, HTML availability."""
    numbers: dict[str, int] = {}
    for p in papers:
        topic = topics[p.topic]
        others = [c for c in vocab.CATEGORIES if c != topic.category]
        p.categories = [topic.category] + ([rng.choice(others)] if rng.random() < 0.4 else [])
        year = p.published.year
        if p.kind == "journal":
            p.doi = f"{rng.choice(vocab.DOI_PREFIXES)}/sim.{year}.{p.idx:05d}"
            p.venue = rng.choice(vocab.VENUES)
            p.updated = p.published
            continue
        month = p.published.strftime("%y%m")
        if p.published < datetime(2007, 4, 1, tzinfo=UTC):
            archive = vocab.CATEGORIES[topic.category]
            n = numbers[archive + month] = numbers.get(archive + month, 0) + rng.randint(1, 9)
            p.arxiv_id = f"{archive}/{month}{n:03d}"
        else:
            n = numbers[month] = numbers.get(month, 0) + rng.randint(1, 37)
            p.arxiv_id = f"{month}.{n:04d}" if year < 2015 else f"{month}.{n:05d}"
        p.versions = rng.choices((1, 2, 3), (6, 3, 1))[0]
        p.updated = p.published
        for _ in range(p.versions - 1):
            p.updated = min(END, p.updated + timedelta(days=rng.randint(5, 200), seconds=rng.randrange(86400)))
        if rng.random() < spec.journal_doi_share:
            p.doi = f"{rng.choice(vocab.DOI_PREFIXES)}/sim.{year}.{p.idx:05d}"
            p.venue = rng.choice(vocab.VENUES)
        recent = p.published >= spec.html_since
        p.arxiv_html = rng.random() < spec.arxiv_html_share[recent]
        p.ar5iv = rng.random() < spec.ar5iv_share[recent]


def _texts(rng: Random, papers: list[Paper], topics: list[Topic]) -> None:
    seen: set[str] = set()
    for p in papers:
        topic = topics[p.topic]
        t = topic.alias if p.hidden else topic.phrase
        a = None if p.aspect is None else vocab.ASPECTS[p.aspect][1 if p.hidden else 0]
        name = _coined(rng)
        title = _title(rng, p.kind, t, a, name)
        while title_key(title) in seen:  # titles are identities: name the method afresh until unique
            name = _coined(rng)
            title = f"{name}: {title_case(t)}" + (f" for {title_case(a)}" if a else "")
        seen.add(title_key(title))
        p.title = title
        other = topics[(p.topic + rng.randrange(1, len(topics))) % len(topics)].phrase
        p.abstract = _abstract(rng, p.kind, t, a, name, other, [vocab.ASPECTS[i][0] for i in topic.aspects])
        p.authors = [
            f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.LAST_NAMES)}" for _ in range(rng.randint(1, 6))
        ]


def _title(rng: Random, kind: str, t: str, a: str | None, name: str) -> str:
    T, adj, prop = title_case(t), rng.choice(vocab.ADJECTIVES), rng.choice(vocab.PROPERTIES)
    if kind == "journal":
        forms = [f"Foundations of {T}", f"A Tutorial on {T}", f"{T}: {prop} and Applications", f"{adj} {T}"]
    elif a is None:
        forms = [
            f"{name}: {adj} {T}",
            f"Understanding {T}",
            f"{T} at Scale",
            f"A Survey of {T}",
            f"On the {prop} of {T}",
        ]
    else:
        A = title_case(a)
        forms = [
            f"{name}: {T} for {A}",
            f"{name}: {adj} {T} for {A}",
            f"{T} for {A}",
            f"Towards {adj} {T} for {A}",
            f"{adj} {T} in {A}",
            f"On the {prop} of {T} for {A}",
            f"Revisiting {T} in {A}",
            f"{T} Meets {A}",
            f"A Survey of {T} for {A}",
        ]
    if rng.random() < 0.5:
        return forms[0]  # named titles keep most titles unique
    return rng.choice(forms)


def _abstract(rng: Random, kind: str, t: str, a: str | None, name: str, other: str, aspects: list[str]) -> str:
    limits = (
        "rely on hand-crafted heuristics",
        "ignore uncertainty in their inputs",
        "do not scale beyond small benchmarks",
        "require large amounts of labeled examples",
        "are brittle under distribution shift",
    )
    claim, component = rng.choice(vocab.CLAIMS), rng.choice(vocab.COMPONENTS)
    where = f" for {a}" if a else ""
    opening = rng.choice(
        (
            f"{t.capitalize()} is a promising direction{where}.",
            f"We study {t}{where}.",
            f"Applying {t}{' to ' + a if a else ''} remains challenging.",
        )
    )
    sentences = [opening, f"Existing methods {rng.choice(limits)}."]
    if kind == "journal":
        sentences.append(f"This article reviews the theory of {t} and its {rng.choice(vocab.PROPERTIES).lower()}.")
    else:
        sentences.append(f"We propose {name}, which combines {t} with {component}.")
        if rng.random() < 0.5:
            sentences.append(f"Unlike prior approaches, {name} {claim}.")
        tasks = a or (rng.choice(aspects) if rng.random() < 0.5 else "standard tasks")
        sentences.append(
            f"Experiments on {rng.randint(2, 7)} benchmarks for {tasks} show that {name} "
            f"{claim} by {rng.randint(2, 30)}% over strong baselines."
        )
    if rng.random() < 0.3:
        sentences.append(f"We also discuss connections to {other}.")
    return " ".join(sentences)


def _citations(rng: Random, papers: list[Paper], topics: list[Topic]) -> None:
    """Each paper cites older papers: its own cell, its topic, its category, a few at random."""
    by_cell: dict[tuple[int, int | None], list[int]] = {}
    by_topic: dict[int, list[int]] = {}
    journals: dict[int, list[int]] = {}
    by_category: dict[str, list[int]] = {}
    everyone: list[int] = []

    def pick(pool: list[int], k: int) -> list[int]:
        return rng.sample(pool, min(k, len(pool)))

    for p in papers:
        cell = by_cell.setdefault((p.topic, p.aspect), [])
        topic = by_topic.setdefault(p.topic, [])
        category = by_category.setdefault(p.categories[0], [])
        refs: dict[int, None] = {}
        if p.kind == "cell":
            refs.update(dict.fromkeys(pick(cell, rng.randint(2, 7))))
        for pool, k in (
            (topic, rng.randint(3, 8)),
            (category, rng.randint(1, 4)),
            (everyone, rng.randint(0, 2)),
            (journals.get(p.topic, []), rng.randint(0, 2)),
        ):
            refs.update(dict.fromkeys(pick(pool, k)))
        p.refs = list(refs)
        for r in p.refs:
            papers[r].cited_by += 1
        p.externals = [
            rng.choice(vocab.EXTERNAL_TITLES).format(x=title_case(topics[rng.randrange(len(topics))].phrase))
            for _ in range(rng.randint(0, 3))
        ]
        (journals.setdefault(p.topic, []) if p.kind == "journal" else cell).append(p.idx)
        topic.append(p.idx)
        category.append(p.idx)
        everyone.append(p.idx)


def _queries(rng: Random, corpus: Corpus) -> list[dict[str, object]]:
    """Questions in the PaSa dataset format, each from a paper whose older cell-mates are the answers."""
    cells: dict[tuple[int, int], list[Paper]] = {}
    for p in corpus.papers:
        if p.kind == "cell" and p.aspect is not None:
            cells.setdefault((p.topic, p.aspect), []).append(p)
    keys = sorted(cells)
    rng.shuffle(keys)
    rows: list[dict[str, object]] = []
    for topic, aspect in keys:
        if len(rows) >= corpus.spec.queries:
            break
        members = cells[(topic, aspect)]
        if len(members) < 4:
            continue
        source = members[rng.randint(3, len(members) - 1)]
        end = source.published.date() - timedelta(days=7)
        question = rng.choice(vocab.QUESTION_TEMPLATES).format(
            topic=corpus.topics[topic].phrase, aspect=vocab.ASPECTS[aspect][0]
        )
        answers = [p for p in members if p.arxiv_id and p.published.date() < end]
        if len(answers) < 3:
            continue
        rows.append(
            {
                "question": question,
                "answer": [p.title for p in answers],
                "answer_arxiv_id": [p.arxiv_id for p in answers],
                "source_meta": {"published_time": source.published.strftime("%Y%m%d")},
                "qid": f"world{corpus.seed}_{len(rows):04d}",
            }
        )
    return rows
