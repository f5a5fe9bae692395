"""One arXiv id lookup per layer of a deep search: the expansions (or searches) of a layer join a
`Layer`, and the ids they ask for go out together once every member has asked or given up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar

import anyio

from .papers import Paper

Fetch = Callable[[list[str]], Awaitable[dict[str, Paper]]]  # arXiv ids -> papers (ArxivAPI.papers)
# Set by a deep search around each of its searches: their arXiv metadata lookups (Google's results)
# share one request, sent once every search has asked or finished without asking (a `Layer`).
SEARCHES: ContextVar[Member | None] = ContextVar("pasa_searches", default=None)


class Layer:
    """The expansions of one layer of a deep search: the arXiv ids they ask for go out in one lookup.

    Each expansion holds a `Member`; the lookup is sent once every member has asked or is done
    without asking, so every member must be done on every path (`Member.done` may be called more
    than once). A search that will add expansions is a member itself until it has added them, so the
    layer cannot fire before its last expansion joined.
    """

    def __init__(self) -> None:
        self._open = 0
        self._ids: dict[str, None] = {}  # in the order asked
        self._ready = anyio.Event()
        self._turn = anyio.Lock()
        self._found: dict[str, Paper] | None = None
        self._error: Exception | None = None

    def member(self) -> Member:
        self._open += 1
        return Member(self)

    def _leave(self) -> None:
        self._open -= 1
        if self._open == 0:
            self._ready.set()

    async def _answer(self, ids: list[str], fetch: Fetch) -> dict[str, Paper]:
        await self._ready.wait()
        async with self._turn:  # the first member to wake sends the lookup for all
            if self._found is None and self._error is None:
                try:
                    self._found = await fetch(list(self._ids))
                except Exception as exc:
                    self._error = exc
        if self._error is not None:
            raise self._error
        assert self._found is not None
        return {i: self._found[i] for i in ids if i in self._found}


class Member:
    """One expansion's (or search's) place in a `Layer`."""

    def __init__(self, layer: Layer) -> None:
        self.layer, self._done = layer, False

    def done(self) -> None:
        """This member will ask for nothing (more); the layer stops waiting for it."""
        if not self._done:
            self._done = True
            self.layer._leave()

    async def arxiv_papers(self, ids: Iterable[str], fetch: Fetch) -> dict[str, Paper]:
        """`fetch`'s papers for `ids`, from the layer's one lookup (a second ask goes out on its own)."""
        ids = list(ids)
        if self._done:
            return await fetch(ids)
        self.layer._ids.update(dict.fromkeys(ids))
        self.done()
        return await self.layer._answer(ids, fetch)
