"""A small BM25 index over the corpus' fields, shared by every simulated search engine.

Postings are compact arrays (doc ids and term frequencies) so a 20,000-paper corpus indexes in
about a second and a few megabytes. Phrases are checked against the documents' own text.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to with we our via into "
    "using over under can which what how do does who".split()
)
FIELDS = ("ti", "abs", "au", "cat")
_WEIGHTS = {"ti": 2.0, "abs": 1.0, "au": 1.0, "cat": 0.5}  # weights of the fields in `all`
_K1, _B = 1.2, 0.75


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric runs: the unit of every search and phrase match in the world."""
    return _TOKEN.findall(text.lower())


def terms(text: str) -> list[str]:
    """Tokens worth scoring (stop words removed), in order, each once."""
    return list(dict.fromkeys(t for t in tokens(text) if t not in STOPWORDS))


class Index:
    """BM25 postings per field; `text(field, doc)` gives a document's field text for phrase checks."""

    def __init__(self, docs: Sequence[dict[str, str]]) -> None:
        self.size = len(docs)
        self._docs = docs
        self._postings: dict[str, dict[str, tuple[array, array]]] = {f: {} for f in FIELDS}
        self._lengths: dict[str, array] = {f: array("H") for f in FIELDS}
        for doc, fields in enumerate(docs):
            for field in FIELDS:
                words = tokens(fields.get(field, ""))
                self._lengths[field].append(min(len(words), 65535))
                postings = self._postings[field]
                for word, tf in Counter(words).items():
                    entry = postings.get(word)
                    if entry is None:
                        entry = postings[word] = (array("i"), array("H"))
                    entry[0].append(doc)
                    entry[1].append(tf)
        self._avg = {f: (sum(self._lengths[f]) / self.size if self.size else 1.0) or 1.0 for f in FIELDS}

    def text(self, field: str, doc: int) -> str:
        return self._docs[doc].get(field, "")

    def _fields(self, field: str) -> tuple[str, ...]:
        return FIELDS if field == "all" else (field,)

    def match(self, field: str, word: str) -> set[int]:
        """Documents whose `field` (or any field, for `all`) contains `word`."""
        found: set[int] = set()
        for f in self._fields(field):
            entry = self._postings[f].get(word)
            if entry is not None:
                found.update(entry[0])
        return found

    def phrase(self, field: str, words: Sequence[str]) -> set[int]:
        """Documents where `words` occur consecutively in one field."""
        if not words:
            return set()
        if len(words) == 1:
            return self.match(field, words[0])
        found: set[int] = set()
        for f in self._fields(field):
            candidates: set[int] | None = None
            for word in sorted(set(words), key=lambda w: len(self._postings[f].get(w, ((),))[0])):
                docs = set(self._postings[f].get(word, ((), ()))[0])
                candidates = docs if candidates is None else candidates & docs
                if not candidates:
                    break
            n = len(words)
            for doc in candidates or ():
                seq = tokens(self.text(f, doc))
                if any(seq[i : i + n] == list(words) for i in range(len(seq) - n + 1)):
                    found.add(doc)
        return found

    def scores(self, query: Iterable[tuple[str, str]], within: set[int] | None = None) -> dict[int, float]:
        """BM25 of (field, word) terms summed per document; `all` weights title over abstract."""
        result: dict[int, float] = {}
        for field, word in query:
            for f in self._fields(field):
                entry = self._postings[f].get(word)
                if entry is None:
                    continue
                docs, tfs = entry
                idf = math.log(1 + (self.size - len(docs) + 0.5) / (len(docs) + 0.5))
                weight = idf * (_WEIGHTS[f] if field == "all" else 1.0)
                lengths, avg = self._lengths[f], self._avg[f]
                for doc, tf in zip(docs, tfs, strict=True):
                    if within is not None and doc not in within:
                        continue
                    norm = tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * lengths[doc] / avg))
                    result[doc] = result.get(doc, 0.0) + weight * norm
        return result

    def search(self, text: str, keep: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """Free-text relevance search over all fields: (doc, score), best first, ties by doc id."""
        ranked = self.scores(("all", w) for w in terms(text))
        hits = [(doc, s) for doc, s in ranked.items() if keep is None or keep(doc)]
        hits.sort(key=lambda hit: (-hit[1], hit[0]))
        return hits
