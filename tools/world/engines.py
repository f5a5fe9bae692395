"""The search engines behind the simulated services: Google via serper, the arXiv query language,
and Semantic Scholar's title match. All rank with the corpus' BM25 index, so they agree on relevance.
"""

from __future__ import annotations

import fnmatch
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime

from rapidfuzz import fuzz

from .corpus import Corpus, Paper, unit
from .index import STOPWORDS, tokens

# Google ------------------------------------------------------------------------------------------

_OPERATOR = re.compile(r"\b(before|after|site):(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class GoogleHit:
    link: str
    paper: Paper | None  # None for a page that is not a paper (an arXiv listing)


def google(corpus: Corpus, q: str, num: int = 10, page: int = 1) -> list[GoogleHit]:
    """Results for a Google query with `before:`/`after:` dates and `site:`, `num` per page."""
    before = after = None
    site = None
    for name, value in _OPERATOR.findall(q):
        name = name.lower()
        if name == "site":
            site = value.lower().removeprefix("www.")
        else:
            parsed = _google_date(value)
            if name == "before":
                before = parsed
            else:
                after = parsed
    text = _OPERATOR.sub(" ", q).replace('"', " ")

    def keep(doc: int) -> bool:
        p = corpus.papers[doc]
        when = p.published.date()
        if site is not None and (site != "arxiv.org" or not p.arxiv_id):
            return False
        return (before is None or when < before) and (after is None or when > after)

    ranked = corpus.index.search(text, keep)
    start = (page - 1) * num
    hits = [
        GoogleHit(_link(corpus, corpus.papers[doc], q), corpus.papers[doc]) for doc, _ in ranked[start : start + num]
    ]
    if hits and site in (None, "arxiv.org") and unit("listing", corpus.seed, q, page) < 0.05:
        at = int(unit("listing-at", corpus.seed, q) * len(hits))
        category = corpus.papers[int(unit("listing-cat", corpus.seed, q) * len(corpus.papers))].categories[0]
        hits.insert(at, GoogleHit(f"https://arxiv.org/list/{category}/recent", None))
        hits = hits[:num]
    return hits


def _google_date(value: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"unrecognised date {value!r} in a before:/after: operator")


def _link(corpus: Corpus, paper: Paper, q: str) -> str:
    """The URL Google shows for a paper: usually /abs/ID, sometimes a versioned, PDF or DOI link."""
    if not paper.arxiv_id:
        return f"https://doi.org/{paper.doi}"
    u = unit("link", corpus.seed, paper.idx, q)
    versioned = f"{paper.arxiv_id}v{paper.versions}"
    if u < 0.7:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if u < 0.8:
        return f"https://arxiv.org/abs/{versioned}"
    if u < 0.9:
        return f"https://arxiv.org/pdf/{paper.arxiv_id}"
    if u < 0.95 or not paper.arxiv_html:
        return f"https://arxiv.org/pdf/{versioned}"
    return f"https://arxiv.org/html/{versioned}"


# arXiv query language ----------------------------------------------------------------------------

ARXIV_FIELDS = {"ti", "au", "abs", "co", "jr", "cat", "rn", "id", "all"}
_LEX = re.compile(r'\s*(\(|\)|"[^"]*"|\[[^\]]*\]|[^\s()"\[]+)')


class QueryError(ValueError):
    """A search_query the arXiv API would not understand."""


@dataclass
class Found:
    docs: set[int] | None  # None: matches nothing in particular (a stop word): neutral in AND/OR
    terms: list[tuple[str, str]]  # (field, word) pairs that score relevance


class ArxivQuery:
    """Parses and evaluates `search_query` (fields, AND/OR/ANDNOT, quotes, groups, submittedDate).

    Juxtaposed terms without an operator combine with OR, as on the real API; AND and ANDNOT bind
    tighter than OR; a field prefix before a group applies to every term inside it.
    """

    def __init__(self, corpus: Corpus, text: str) -> None:
        self.corpus = corpus
        self.items = _lex(text)
        self.pos = 0
        self.dates = [p.published for p in corpus.papers]  # papers are in date order

    def run(self) -> Found:
        found = self._or("all")
        if self.pos != len(self.items):
            raise QueryError(f"unexpected {self.items[self.pos]!r} in search_query")
        return found

    def _peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def _take(self) -> str:
        item = self._peek()
        if item is None:
            raise QueryError("search_query ends too early")
        self.pos += 1
        return item

    def _or(self, field: str) -> Found:
        found = self._and(field)
        while (item := self._peek()) is not None and item != ")":
            if item == "OR":
                self._take()
            found = _combine(found, self._and(field), "OR")
        return found

    def _and(self, field: str) -> Found:
        found = self._unary(field)
        while self._peek() in ("AND", "ANDNOT"):
            op = self._take()
            found = _combine(found, self._unary(field), op)
        return found

    def _unary(self, field: str) -> Found:
        item = self._take()
        if item in ("AND", "OR", "ANDNOT", ")"):
            raise QueryError(f"unexpected {item!r} in search_query")
        if item == "(":
            found = self._or(field)
            if self._take() != ")":
                raise QueryError("unbalanced parentheses in search_query")
            return found
        prefix, sep, rest = item.partition(":")
        if sep and prefix == "submittedDate":
            return self._dates(rest or self._take())
        if sep and prefix in ARXIV_FIELDS:
            if rest:
                return self._value(prefix, rest)
            if self._peek() == "(":
                self._take()
                found = self._or(prefix)
                if self._take() != ")":
                    raise QueryError("unbalanced parentheses in search_query")
                return found
            return self._value(prefix, self._take())
        return self._value(field, item)

    def _value(self, field: str, value: str) -> Found:
        words = tokens(value.strip('"'))
        if field == "cat":
            return Found(self._categories(value.strip('"')), [])
        if field in ("co", "jr", "rn"):
            return Found(set(), [])  # the simulated corpus has no comments, journal refs or report numbers
        if field == "id":
            idx = self.corpus.by_arxiv.get(re.sub(r"v\d+$", "", value.strip('"')))
            return Found(set() if idx is None else {idx}, [])
        if not words or all(w in STOPWORDS for w in words) and not value.startswith('"'):
            return Found(None, [])
        docs = self.corpus.index.phrase(field, words)
        return Found(docs, [(field, w) for w in words if w not in STOPWORDS])

    def _categories(self, pattern: str) -> set[int]:
        """Papers listed in a category (any of theirs, not only the primary), case-insensitive; `*` and
        `?` are wildcards, as on arXiv (`cat:cs.*`). `cat:cs` is the category `cs`, which no paper has."""
        wanted = pattern.lower()
        return {
            i
            for i, p in enumerate(self.corpus.papers)
            if any(fnmatch.fnmatchcase(c.lower(), wanted) for c in p.categories)
        }

    def _dates(self, value: str) -> Found:
        m = re.fullmatch(r"\[(\d{8,14})\s+TO\s+(\d{8,14})\]", value.strip())
        if not m:
            raise QueryError(f"submittedDate must look like [YYYYMMDDHHMM TO YYYYMMDDHHMM], got {value!r}")
        low, high = (_arxiv_time(v, end=i == 1) for i, v in enumerate(m.groups()))
        return Found(set(range(bisect_left(self.dates, low), bisect_right(self.dates, high))), [])


def _arxiv_time(value: str, *, end: bool) -> datetime:
    padded = value.ljust(14, "9" if end else "0")
    try:
        return datetime.strptime(padded[:12], "%Y%m%d%H%M").replace(second=59 if end else 0, tzinfo=UTC)
    except ValueError as exc:
        raise QueryError(f"bad date {value!r} in submittedDate") from exc


def _lex(text: str) -> list[str]:
    items, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _LEX.match(text, pos)
        if m is None or not m.group(1):
            raise QueryError(f"cannot parse search_query near {text[pos : pos + 20]!r}")
        items.append(m.group(1))
        pos = m.end()
    if not items:
        raise QueryError("empty search_query")
    # `ti:"a phrase"` lexes as `ti:` then the quoted phrase: keep them together.
    merged: list[str] = []
    for item in items:
        if merged and merged[-1].endswith(":") and item.startswith(('"', "[")):
            merged[-1] += item
        else:
            merged.append(item)
    return merged


def _combine(left: Found, right: Found, op: str) -> Found:
    if op == "ANDNOT":
        if left.docs is None or right.docs is None:
            return left
        return Found(left.docs - right.docs, left.terms)
    terms = left.terms + right.terms
    if left.docs is None:
        return Found(right.docs, terms)
    if right.docs is None:
        return Found(left.docs, terms)
    return Found(left.docs & right.docs if op == "AND" else left.docs | right.docs, terms)


def arxiv_search(corpus: Corpus, text: str, sort_by: str, descending: bool) -> list[int]:
    """Papers matching `search_query`, sorted as the API sorts them (relevance ties: newest first)."""
    found = ArxivQuery(corpus, text).run()
    docs = found.docs if found.docs is not None else set(range(len(corpus.papers)))
    docs = {d for d in docs if corpus.papers[d].arxiv_id}
    if sort_by == "relevance":
        scores = corpus.index.scores(found.terms, docs)
        ordered = sorted(docs, key=lambda d: (scores.get(d, 0.0), d), reverse=True)
        return ordered if descending else ordered[::-1]
    if sort_by == "lastUpdatedDate":
        return sorted(docs, key=lambda d: (corpus.papers[d].updated, d), reverse=descending)
    return sorted(docs, reverse=descending)  # submittedDate: ids are in date order


# Semantic Scholar title match --------------------------------------------------------------------


def title_match(corpus: Corpus, query: str) -> tuple[Paper, float] | None:
    """The paper whose title best matches `query` (fuzzy, like /paper/search/match), or None."""
    wanted = " ".join(tokens(query))
    if not wanted:
        return None
    scores = corpus.index.scores(("ti", w) for w in set(tokens(query)) if w not in STOPWORDS)
    best: tuple[Paper, float] | None = None
    for doc, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:25]:
        paper = corpus.papers[doc]
        similarity = fuzz.ratio(wanted, " ".join(tokens(paper.title)))
        if similarity >= 85 and (best is None or similarity > best[1]):
            best = (paper, similarity)
    if best is None:
        return None
    return best[0], round(best[1] * 1.1 + scores[best[0].idx], 5)
