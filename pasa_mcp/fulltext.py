"""Full text of a paper as a section map (PROTOCOL section 3): fetched, parsed, cached.

The store first, then arXiv's LaTeXML HTML (arxiv.org/html or ar5iv), parsed by `latexml`; a paper
without HTML falls back to a reference list (Semantic Scholar, OpenAlex) offered as one section.

A host that fails (every retry, a refusal other than "no such page", or resting after failing:
net.py) is passed over for the next one and for the reference lists, which then stand in for the
page: the map is marked incomplete, so the run reports the loss and the store keeps it only briefly.
Only when nothing stands in is the failure raised (never "no full text").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Protocol

import anyio

from .config import Settings
from .latexml import PARSER, Origin, parse_latexml
from .net import Net, SourceRejected, SourceUnavailable
from .papers import Paper, Reference, SectionMap
from .store import Store

if TYPE_CHECKING:
    from .index.db import LocalIndex

__all__ = ["HTML_SINCE", "INCOMPLETE_TTL", "NO_FULL_TEXT_TTL", "PAGE_TRIES", "REFERENCES", "FullText", "ReferenceList"]

NO_FULL_TEXT = "no HTML full text and no reference list"
NO_FULL_TEXT_TTL = 7 * 86400.0  # seconds before a paper without full text is looked for again
HTML_SINCE = date(2023, 12, 1)  # arXiv converts submissions to HTML since then; ar5iv covers the older ones
INCOMPLETE_TTL = 60.0  # seconds an incomplete page is kept: for runs at the same time, not for the next
PAGE_TRIES = 3  # fetches of a page that comes incomplete before the last copy is used as it is
MISSING_BIBLIOGRAPHY = "missing from the page"  # in the parser's warning about cited entries it did not find
REFERENCES = "References"


class ReferenceList(Protocol):
    """A source that knows a paper's reference list (Semantic Scholar, OpenAlex).

    Used when the paper has no HTML full text; None or [] means it does not know the paper.
    """

    async def references(self, paper: Paper) -> list[Reference] | None: ...


class FullText:
    """Section maps of papers: the store first, then arXiv's HTML or ar5iv, then reference lists.

    Host choice per paper: a host known to have the page (or known not to) is tried first (or not at
    all); otherwise to the host expected to give the page soonest: the requests ahead of it there
    (those waiting, and the other host's misses that will come next) times its interval (arXiv's
    HTML takes one more without the version, for the redirect), divided by the share of pages the
    host has had so far in this process. First tries go to both when both are worth it. On a tie,
    papers older than HTML_SINCE go to ar5iv first, which converted the older papers, and the others
    to arXiv's HTML. arXiv's HTML is fetched at /html/IDvN when the version is known.
    """

    def __init__(
        self,
        net: Net,
        settings: Settings,
        store: Store,
        reference_lists: Sequence[ReferenceList] = (),
        local: LocalIndex | None = None,
    ) -> None:
        self.net, self.settings, self.store = net, settings, store
        self.reference_lists = list(reference_lists)
        self._bases: dict[Origin, str] = {
            "arxiv_html": settings.arxiv_html_url.rstrip("/"),
            "ar5iv": settings.ar5iv_url.rstrip("/"),
        }
        self._intervals: dict[Origin, float] = {
            "arxiv_html": settings.arxiv_html_interval,
            "ar5iv": settings.ar5iv_interval,
        }
        self._waiting: dict[Origin, int] = dict.fromkeys(self._bases, 0)  # fetches queued or in flight
        self._tries: dict[Origin, list[int]] = {host: [1, 2] for host in self._bases}  # [pages found, asked] (+1, +2)
        # arXiv id -> host -> has its page, learnt in this process. A paper no host has is forgotten:
        # the store remembers "no full text" (for NO_FULL_TEXT_TTL) instead.
        self._where: dict[str, dict[Origin, bool]] = {}
        self.local = local  # the PaSa paper database's section maps, asked before any host

    async def section_map(self, paper: Paper) -> SectionMap | None:
        """The paper's section map, or None when it has neither HTML full text nor a reference list.

        Raises a host's SourceUnavailable (or SourceRejected) when it failed and nothing stood in for
        its page: that is an error, not "no sections".
        """
        cached = await self.store.call(self.store.get_section_map, paper.key, NO_FULL_TEXT_TTL, INCOMPLETE_TTL)
        # A page read by an older parser is read again (fetched again: the store keeps maps, not pages).
        if cached is not None and not (cached.origin in ("arxiv_html", "ar5iv") and cached.parser != PARSER):
            return None if _is_no_full_text(cached) else cached
        if self.local is not None and (local := await self.local.call(self.local.section_map, paper)):
            await self.store.call(self.store.put_section_map, paper.key, local)
            return local
        found, failed = await self._from_html(paper) if paper.arxiv_id else (None, [])
        if found is None:
            try:
                found = await self._from_reference_lists(paper)
            except (SourceUnavailable, SourceRejected):
                if failed:
                    raise failed[0] from None
                raise
            if found is None and failed:
                raise failed[0]  # a host that may have the page could not be asked: not "no full text"
        elif not found.sections:
            # A LaTeXML page without one usable citation (a failed conversion) loses to a reference list.
            try:
                found = await self._from_reference_lists(paper) or found
            except (SourceUnavailable, SourceRejected) as exc:
                found.warnings.append(f"no reference list either: {exc}")
        if failed and found is not None:  # a stand-in: reported as a loss, kept briefly (INCOMPLETE_TTL)
            found.warnings += [f"{exc}; used {found.origin} instead" for exc in failed]
            found.complete = False
        # "Nothing anywhere" is remembered too (for NO_FULL_TEXT_TTL): the next run asks no host again.
        await self.store.call(self.store.put_section_map, paper.key, found or _no_full_text())
        return found

    def hosts(self, paper: Paper) -> list[Origin]:
        """The HTML hosts to try for `paper`, best first (see the class docstring)."""
        known = self._where.get(paper.arxiv_id or "", {})
        if has := [host for host, present in known.items() if present]:
            return has
        hosts = [host for host in self._bases if host not in known]
        old = paper.published is not None and paper.published < HTML_SINCE

        def cost(host: Origin) -> tuple[float, bool]:
            hops = 2 if host == "arxiv_html" and not paper.arxiv_version else 1
            # Requests ahead of this one: those waiting for the host, and the share of the other
            # host's that will miss and come here next.
            ahead = self._waiting[host] + sum(
                self._waiting[other] * (1 - self._hit_rate(other)) for other in hosts if other != host
            )
            return (ahead + hops) * self._intervals[host] / self._hit_rate(host), (host == "ar5iv") != old

        return sorted(hosts, key=cost)

    def _hit_rate(self, host: Origin) -> float:
        found, asked = self._tries[host]
        return found / asked

    def _url(self, host: Origin, paper: Paper) -> str:
        version = f"v{paper.arxiv_version}" if host == "arxiv_html" and paper.arxiv_version else ""
        return f"{self._bases[host]}/{paper.arxiv_id}{version}"

    async def _from_html(self, paper: Paper) -> tuple[SectionMap | None, list[SourceUnavailable | SourceRejected]]:
        """The first host's complete page (an incomplete one only when no host has a complete page),
        and the failures of the hosts that could not give theirs."""
        assert paper.arxiv_id is not None
        where = self._where.setdefault(paper.arxiv_id, {})
        incomplete: SectionMap | None = None
        failed: list[SourceUnavailable | SourceRejected] = []
        for host in self.hosts(paper):
            self._waiting[host] += 1
            try:
                html = await self._fetch(host, self._url(host, paper))
                found = await self._parsed(host, paper, html)
            except (SourceUnavailable, SourceRejected) as exc:
                failed.append(exc)
                continue
            finally:
                self._waiting[host] -= 1
            where[host] = html is not None
            self._tries[host][0] += html is not None
            self._tries[host][1] += 1
            if found is not None and found.complete:
                return found, []
            incomplete = incomplete or found
        if not any(where.values()):
            self._where.pop(paper.arxiv_id, None)  # two searches may fetch one paper at once
        return incomplete, failed

    async def _parsed(self, host: Origin, paper: Paper, html: str | None) -> SectionMap | None:
        """The page's section map, fetched again while it comes incomplete (PAGE_TRIES fetches in all)."""
        found: SectionMap | None = None
        for attempt in range(PAGE_TRIES):
            if attempt:
                html = await self._fetch(host, self._url(host, paper))
            # Parsing a 2.5 MB page takes tens of milliseconds: keep it off the event loop.
            if html is None or (found := await anyio.to_thread.run_sync(parse_latexml, html, host)) is None:
                return None
            if _check_complete(html, found).complete:
                return found
        return found

    async def _fetch(self, host: Origin, url: str) -> str | None:
        """The page's HTML, or None for "no HTML here" (404/410)."""
        try:
            response = await self.net.request(host, "GET", url)
        except SourceRejected as exc:
            if exc.status in (404, 410):
                return None
            raise
        return response.text

    async def _from_reference_lists(self, paper: Paper) -> SectionMap | None:
        """The first provider's list as one "References" section; an error only if every provider failed."""
        failure: SourceUnavailable | SourceRejected | None = None
        for provider in self.reference_lists:
            try:
                refs = await provider.references(paper)
            except (SourceUnavailable, SourceRejected) as exc:
                failure = failure or exc
                continue
            if refs:
                return SectionMap(origin="references", sections={REFERENCES: refs})
        if failure is not None:
            raise failure
        return None


def _check_complete(html: str, found: SectionMap) -> SectionMap:
    """Mark `found` incomplete when its page ends early (no closing </html>) or lacks cited bibliography entries.

    A 200 whose body was cut in transit (with a matching Content-Length) parses without error into a
    smaller map; these two signs are what tells it apart from a short paper.
    """
    if "</html>" not in html[-4096:].lower():
        found.warnings.append("the page ends early (no closing </html>): cut off in transit")
        found.complete = False
    if any(MISSING_BIBLIOGRAPHY in warning for warning in found.warnings):
        found.complete = False
    return found


def _no_full_text() -> SectionMap:
    return SectionMap(origin="references", warnings=[NO_FULL_TEXT])


def _is_no_full_text(section_map: SectionMap) -> bool:
    # Reference-list maps are only made from non-empty lists, so an empty one is the marker.
    return section_map.origin == "references" and not section_map.sections
