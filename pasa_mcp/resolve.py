"""Cited references -> papers: their own ids, then the store, then remote title matching, all batched.

Order per call: a reference's own arXiv id or DOI (the store, the local paper index, then one
batched arXiv id lookup and one batched OpenAlex DOI lookup, Semantic Scholar's while OpenAlex
fails); then by title: the resolutions cache
(hits and misses), the store's title keys, the store's full-text index, the local paper index
(`pasa-mcp index`: everything local is asked before any network request), the configured title
matchers (OpenAlex, then
Semantic Scholar with a key) and, only for titles no matcher could answer (no matcher, or each one
failed), arXiv title search (many titles per request). A matcher's "no such title" is trusted: arXiv
allows one request every 3 s and OpenAlex ten a second, so arXiv is kept for what only it knows
(ids with their versions). A local index stands in for a missing matcher (it holds what arXiv's
title search would find), but not for failed ones: it may be partial (one category's import, or not
harvested lately), so titles every matcher failed on go to arXiv with or without it. Entries without
a usable title are looked up in the local index by their whole reference string. Identical titles
are looked up once per call.

A failing source is not "no such paper": its lookups are never remembered as misses, a reference
whose id lookup failed is still looked up by its title, and one source failing does not stop the
others. When failures left some references unresolved, `resolve` raises `ResolutionIncomplete`,
which holds what was resolved (a deep search keeps it) and how many the failures left unresolved;
when nothing at all was resolved, the first source error itself.

A deep search resolves a whole layer's references with one arXiv id lookup: its expansions join a
`Layer`, and the ids they ask for are sent together once every expansion has asked or given up, while
their titles are matched at once (layers.py).

An entry that names no title of its own (`Reference.untitled`: "A. Name, Phys. Rev. Lett. 81, 2514
(1998).") is never looked up by a fragment: without an id it is searched for by its whole text with
the reference searches (OpenAlex, then Crossref's bibliographic query), and a work they return is
accepted only when `titles.reference_matches`: its year and its first author's surname are in the entry.

A remote or full-text candidate is accepted only when `titles.titles_match` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import anyio

from .layers import Member
from .net import SourceRejected, SourceUnavailable
from .papers import Paper, Reference, normalize_arxiv_id, normalize_doi, title_key
from .store import Store
from .tasks import gather
from .titles import best_match, normalize_title, reference_matches, titles_match

if TYPE_CHECKING:
    from .index.resolve import LocalResolver
    from .sources.arxiv import ArxivAPI

HIT_TTL = 90 * 86400.0  # seconds a remote match is remembered
MISS_TTL = 7 * 86400.0  # a miss is retried sooner: the paper may appear, or a source may come back
FTS_WORDS = 3  # words per local full-text query (FTS5 ANDs them), taken longest first ...
FTS_QUERIES = 2  # ... in two disjoint groups, so one misspelt or variant word does not hide the paper
FTS_CANDIDATES = 10  # best-ranked rows per query that the fuzzy rule then checks


class ResolutionIncomplete(Exception):
    """Sources failed for some references, so they are unresolved (not known to be missing).

    `results` is what was resolved, in the order asked (None where not); `unresolved` counts the
    references a failure left unresolved; `error` is the first source error (already scrubbed).
    """

    def __init__(self, results: list[Paper | None], unresolved: int, error: Exception) -> None:
        self.results, self.unresolved, self.error = results, unresolved, error
        super().__init__(f"{unresolved} of {len(results)} references not resolved: {error}")


class _Failed:
    """The lookups of one `resolve` call that failing sources left unanswered, and the first failure."""

    def __init__(self) -> None:
        self.keys: set[str] = set()  # id keys, title keys and `ref:` keys of whole reference strings
        self.error: Exception | None = None

    def add(self, keys: Iterable[str], error: Exception) -> None:
        self.keys.update(keys)
        self.error = self.error or error


class DoiLookup(Protocol):
    """A source that finds papers by DOI in batches (OpenAlex; Semantic Scholar stands in for it)."""

    async def papers_by_doi(self, dois: list[str]) -> dict[str, Paper]: ...


class ReferenceSearch(Protocol):
    """A remote source that finds works by a whole reference string (OpenAlex search, Crossref)."""

    name: str

    async def search_reference(self, text: str) -> list[Paper]: ...


class TitleMatcher(Protocol):
    """A remote source that finds the one paper with a given title (or None)."""

    name: str

    async def match_title(self, title: str) -> Paper | None: ...


def _fts_queries(title: str) -> list[str]:
    words = sorted(set(normalize_title(title).split()), key=lambda w: (-len(w), w))
    groups = [words[i : i + FTS_WORDS] for i in range(0, FTS_WORDS * FTS_QUERIES, FTS_WORDS)]
    return [" ".join(group) for group in groups if group]


def _id_keys(ref: Reference) -> list[str]:
    """The paper keys a reference gives itself: its arXiv id, then its DOI."""
    arxiv_id, doi = normalize_arxiv_id(ref.arxiv_id), normalize_doi(ref.doi)
    return ([f"arxiv:{arxiv_id}"] if arxiv_id else []) + ([f"doi:{doi}"] if doi else [])


def _text_key(text: str) -> str | None:
    """The resolutions cache's key of a whole reference string (None: it has no words)."""
    return f"ref:{words}" if (words := normalize_title(text)) else None


def _lookups(ref: Reference, ids: list[str]) -> set[str]:
    """Every key a reference may be looked up by: its ids, then its title's or (untitled) its text's."""
    key = _text_key(ref.text) if ref.untitled else title_key(ref.title)
    return {*ids, key} if key else set(ids)


class Resolver:
    """Resolves references to papers, remembering hits and misses in the store."""

    def __init__(
        self,
        store: Store,
        arxiv: ArxivAPI | None,
        matchers: Sequence[TitleMatcher] = (),
        *,
        dois: Sequence[DoiLookup] = (),
        local: LocalResolver | None = None,
        references: Sequence[ReferenceSearch] = (),
        hit_ttl: float = HIT_TTL,
        miss_ttl: float = MISS_TTL,
    ) -> None:
        self.store = store
        self.local = local
        self.arxiv = arxiv
        self.matchers = list(matchers)
        self.dois = list(dois)  # the first answers; the next stands in while the ones before fail
        self.references = list(references)
        self.hit_ttl, self.miss_ttl = hit_ttl, miss_ttl

    async def resolve(self, refs: Sequence[Reference], member: Member | None = None) -> list[Paper | None]:
        """The paper each reference cites, or None, in the order given.

        With a `member`, the references' arXiv ids wait for the rest of its layer (and the member is
        done when this returns or fails); titles of references without an id are matched meanwhile.
        Raises `ResolutionIncomplete` when sources failed for some references, and the first source
        error when nothing was resolved and a source failed.
        """
        failed = _Failed()
        try:
            keys = [_id_keys(ref) for ref in refs]
            known, wanted = await self.store.call(self._stored_ids, keys)
            if self.local is not None and wanted:
                known.update(await self._local_ids(wanted))
                wanted &= {key for ref_keys in keys if not any(k in known for k in ref_keys) for key in ref_keys}
            now = _titles(
                ref
                for ref, ref_keys in zip(refs, keys, strict=True)
                if not any(key in known or key in wanted for key in ref_keys)
            )
            by_title: dict[str, Paper | None] = {}

            async def by_ids() -> None:
                known.update(await self._by_ids(wanted, member, failed))

            async def titles() -> None:
                by_title.update(await self._by_titles(now, failed))

            await gather(by_ids, titles)
        finally:
            if member is not None:
                member.done()
        missed = [ref for ref, ref_keys in zip(refs, keys, strict=True) if not any(k in known for k in ref_keys)]
        if later := {key: title for key, title in _titles(missed).items() if key not in by_title}:
            by_title.update(await self._by_titles(later, failed))
        results = [
            next((known[key] for key in ref_keys if key in known), None)
            or (None if ref.untitled else by_title.get(title_key(ref.title)))
            for ref, ref_keys in zip(refs, keys, strict=True)
        ]
        if self.local is not None:
            results = await self._by_reference_text(refs, results)
        results = await self._by_references(refs, results, failed)
        if failed.error is None:
            return results
        unresolved = sum(
            paper is None and not failed.keys.isdisjoint(_lookups(ref, ref_keys))
            for ref, ref_keys, paper in zip(refs, keys, results, strict=True)
        )
        if not unresolved:  # what failed was found another way
            return results
        if all(paper is None for paper in results):
            raise failed.error
        raise ResolutionIncomplete(results, unresolved, failed.error)

    async def _local_ids(self, keys: set[str]) -> dict[str, Paper]:
        """Papers of the local index by arXiv id or DOI (keys `arxiv:...`, `doi:...`), now in the store too."""
        local = self.local
        assert local is not None
        arxiv_ids = [key.removeprefix("arxiv:") for key in keys if key.startswith("arxiv:")]
        dois = [key.removeprefix("doi:") for key in keys if key.startswith("doi:")]

        def lookup() -> list[Paper]:
            found = list(local.by_arxiv(arxiv_ids).values())
            return found + [p for doi in dois if (p := local.by_doi(doi))]

        found: dict[str, Paper] = {}
        for paper in await self.store.call(self.store.upsert_papers, await local.index.call(lookup)):
            found[paper.key] = paper
            if paper.doi:
                found[f"doi:{paper.doi}"] = paper
        return found

    async def _by_reference_text(self, refs: Sequence[Reference], results: list[Paper | None]) -> list[Paper | None]:
        """Entries without a usable title, found in the local index by their whole reference string."""
        local = self.local
        assert local is not None
        todo = [
            i
            for i, (ref, paper) in enumerate(zip(refs, results, strict=True))
            if paper is None and (ref.untitled or not title_key(ref.title)) and (ref.text or ref.title).strip()
        ]
        if not todo:
            return results
        found = await local.index.call(lambda: [local.by_reference_text(refs[i].text or refs[i].title) for i in todo])
        merged = iter(await self.store.call(self.store.upsert_papers, [p for p in found if p is not None]))
        results = list(results)
        for i, paper in zip(todo, found, strict=True):
            if paper is not None:
                results[i] = next(merged)
        return results

    async def _by_references(
        self, refs: Sequence[Reference], results: list[Paper | None], failed: _Failed
    ) -> list[Paper | None]:
        """Untitled entries still unresolved, by their whole text: the resolutions cache, then the searches."""
        texts = {
            ref.text for ref, paper in zip(refs, results, strict=True) if paper is None and ref.untitled and ref.text
        }
        if not texts or not self.references:
            return results
        by_text = await self._search_references(texts, failed)
        return [
            paper or (by_text.get(ref.text) if ref.untitled else None) for ref, paper in zip(refs, results, strict=True)
        ]

    async def _search_references(self, texts: set[str], failed: _Failed) -> dict[str, Paper | None]:
        """Whole reference string -> paper (or None); strings every search failed on go to `failed`."""
        keys = {key: text for text in texts if (key := _text_key(text))}
        cached = await self.store.call(self.store.get_resolutions, keys)
        found: dict[str, Paper | None] = {}
        for key, hit in cached.items():
            found[keys[key]] = await self.store.call(self.store.get_paper, hit) if hit else None
        rest = {key: text for key, text in keys.items() if key not in cached}
        hits: dict[str, Paper] = {}
        answered: set[str] = set()  # keys some search answered: there, finding nothing is a miss
        errors: list[Exception] = []

        async def one(source: ReferenceSearch, key: str, text: str) -> None:
            try:
                candidates = await source.search_reference(text)
            except (SourceUnavailable, SourceRejected) as exc:
                errors.append(exc)
                return
            answered.add(key)
            if paper := next((p for p in candidates if reference_matches(text, p)), None):
                hits[key] = paper

        for source in self.references:
            async with anyio.create_task_group() as tg:
                for key, text in rest.items():
                    if key not in hits:
                        tg.start_soon(one, source, key, text)
        if unanswered := set(rest) - answered:
            failed.add(unanswered, errors[0])  # every search failed for these: an error, not "no such work"
        merged = await self.store.call(self.store.upsert_papers, list(hits.values()))
        resolved: dict[str, str | None] = dict.fromkeys(answered)
        for key, paper in zip(hits, merged, strict=True):
            found[rest[key]] = paper
            resolved[key] = paper.key
        await self.store.call(self.store.put_resolutions, resolved, self.miss_ttl, self.hit_ttl)
        return found

    def _stored_ids(self, keys: list[list[str]]) -> tuple[dict[str, Paper], set[str]]:
        """Runs in the store's worker thread: papers the store knows by id, and the ids worth asking
        for (earlier misses are remembered in the resolutions cache: asking again only costs requests)."""
        known = self.store.get_papers({key for ref_keys in keys for key in ref_keys})
        unknown = {key for ref_keys in keys if not any(key in known for key in ref_keys) for key in ref_keys}
        remembered = self.store.get_resolutions(unknown)
        return known, unknown - {key for key, hit in remembered.items() if hit is None}

    async def _by_ids(self, wanted: set[str], member: Member | None, failed: _Failed) -> dict[str, Paper]:
        """Papers by arXiv id (one batched arXiv lookup) and DOI (one batched OpenAlex lookup), side by side;
        the ids of a lookup that failed go to `failed`.

        A DOI is asked for even when the same reference has an arXiv id: waiting for arXiv first would
        put OpenAlex's answer behind the layer's lookup.
        """
        found: dict[str, Paper] = {}
        misses: set[str] = set()
        arxiv_ids = {key.removeprefix("arxiv:") for key in wanted if key.startswith("arxiv:")}
        dois = {key.removeprefix("doi:") for key in wanted if key.startswith("doi:")}

        async def arxiv() -> None:
            if not arxiv_ids or self.arxiv is None:
                if member is not None:
                    member.done()  # nothing to ask: the layer need not wait for this call's DOIs and titles
                return
            fetch = self.arxiv.papers
            try:
                fetched = await (member.arxiv_papers(sorted(arxiv_ids), fetch) if member else fetch(sorted(arxiv_ids)))
            except (SourceUnavailable, SourceRejected) as exc:
                failed.add((f"arxiv:{i}" for i in arxiv_ids), exc)
                return
            for paper in await self.store.call(self.store.upsert_papers, fetched.values()):
                found[paper.key] = paper
            # Ids the arXiv API's stand-in lacked are not misses: arXiv may know them.
            misses.update(f"arxiv:{i}" for i in arxiv_ids if i not in fetched and i not in self.arxiv.unconfirmed)

        async def by_doi() -> None:
            failure: Exception | None = None
            for n, source in enumerate(self.dois if dois else []):
                try:
                    fetched = await source.papers_by_doi(sorted(dois))
                except (SourceUnavailable, SourceRejected) as exc:
                    failure = failure or exc
                    continue
                for paper in await self.store.call(self.store.upsert_papers, fetched.values()):
                    # A paper found by DOI may carry an arXiv id: its key is then arxiv:, so index the DOI too.
                    found[paper.key] = found[f"doi:{paper.doi}"] = paper
                if n == 0:  # a stand-in's misses are not remembered: the one it stands in for may know them
                    misses.update(f"doi:{d}" for d in dois if d not in fetched)
                return
            if failure is not None:
                failed.add((f"doi:{d}" for d in dois), failure)

        await gather(arxiv, by_doi)
        if misses:
            await self.store.call(self.store.put_resolutions, dict.fromkeys(misses), self.miss_ttl, self.hit_ttl)
        return found

    async def _by_titles(self, pending: dict[str, str], failed: _Failed) -> dict[str, Paper | None]:
        """Title key -> paper (or None) for each pending title; titles every source failed on go to `failed`."""
        if not pending:
            return {}
        found, rest = await self.store.call(self._local, pending)
        if rest and self.local is not None:
            local = self.local
            titles = await local.index.call(lambda: {key: local.by_title(title) for key, title in rest.items()})
            hits_local = {key: paper for key, paper in titles.items() if paper is not None}
            merged_local = await self.store.call(self.store.upsert_papers, hits_local.values())
            found.update(zip(hits_local, merged_local, strict=True))
            rest = {key: title for key, title in rest.items() if key not in hits_local}
        if not rest or (self.arxiv is None and not self.matchers):
            return found
        hits: list[tuple[str, Paper]] = []
        unanswered = dict(rest)  # titles no matcher could answer (each one failed)
        failure: Exception | None = None
        for matcher in self.matchers:
            done = {key for key, _ in hits}
            asked = {key: title for key, title in rest.items() if key not in done}
            matched, lost, error = await self._match(matcher, asked)
            hits += matched
            for key in set(asked) - lost:
                unanswered.pop(key, None)
            failure = failure or error
        # A local index stands in for a missing matcher, not for a failed one (module docstring).
        if unanswered and self.arxiv is not None and (self.local is None or failure is not None):
            try:
                matched_ti = await self.arxiv.search_titles(unanswered.values())
            except (SourceUnavailable, SourceRejected) as exc:
                failed.add(unanswered, failure or exc)
            else:
                hits += [(key, paper) for key, title in unanswered.items() if (paper := matched_ti[title])]
        elif unanswered and failure is not None:
            failed.add(unanswered, failure)
        keys = [key for key, _ in hits]
        merged = await self.store.call(self.store.upsert_papers, [paper for _, paper in hits])
        resolved: dict[str, str | None] = {key: None for key in rest if key not in unanswered}
        for key, paper in zip(keys, merged, strict=True):
            found[key] = paper
            resolved[key] = paper.key
        await self.store.call(self.store.put_resolutions, resolved, self.miss_ttl, self.hit_ttl)
        return found

    def _local(self, pending: dict[str, str]) -> tuple[dict[str, Paper | None], dict[str, str]]:
        """Runs in the store's worker thread: cached resolutions, title keys, full-text index."""
        found: dict[str, Paper | None] = {}
        rest: dict[str, str] = {}
        cached = self.store.get_resolutions(pending)
        for key, title in pending.items():
            if key in cached and cached[key] is None:
                found[key] = None
                continue
            paper = self.store.get_paper(cached[key]) if cached.get(key) else None
            paper = paper or self.store.find_by_title(title)
            if paper is None:
                candidates = [p for q in _fts_queries(title) for p in self.store.search_papers(q, FTS_CANDIDATES)]
                paper = best_match(title, candidates)
            if paper is None:
                rest[key] = title
            found[key] = paper
        return found, rest

    async def _match(
        self, matcher: TitleMatcher, titles: dict[str, str]
    ) -> tuple[list[tuple[str, Paper]], set[str], Exception | None]:
        """(hits, keys whose lookup failed, the first failure): one source failing is not "no such title"."""
        hits: list[tuple[str, Paper]] = []
        failed: set[str] = set()
        errors: list[Exception] = []

        async def one(key: str, title: str) -> None:
            try:
                paper = await matcher.match_title(title)
            except (SourceUnavailable, SourceRejected) as exc:
                failed.add(key)
                errors.append(exc)
                return
            if paper is not None and titles_match(title, paper.title):
                hits.append((key, paper))

        async with anyio.create_task_group() as tg:
            for key, title in titles.items():
                tg.start_soon(one, key, title)
        return hits, failed, errors[0] if errors else None


def _titles(refs: Iterable[Reference]) -> dict[str, str]:
    """Title key -> title of the references that have one of their own, each distinct title once."""
    found: dict[str, str] = {}
    for ref in refs:
        if not ref.untitled and (key := title_key(ref.title)):
            found.setdefault(key, ref.title)
    return found
