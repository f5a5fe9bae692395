"""What the tools share: the lifespan state, error handling, paging, argument types and paper lookup."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, ParamSpec, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from ..app import Pasa
from ..jobs import Jobs, JobsBusy, UnknownSearch
from ..llm import ModelError
from ..net import SourceRejected, SourceUnavailable
from ..papers import Paper, Reference, normalize_arxiv_id, paper_ref
from ..resolve import ResolutionIncomplete
from ..store import StoreError

DEFAULT_WAIT = 50  # seconds a call waits for a deep search: below the ~60 s after which clients give up
SHORT_ABSTRACT = 300  # characters of abstract in lists
LONG_ABSTRACT = 1500  # ... and for one paper
SOURCE = Literal["google", "arxiv", "semantic_scholar", "openalex", "local"]
EXPECTED = (
    ValueError,
    ModelError,
    SourceUnavailable,
    SourceRejected,
    ResolutionIncomplete,
    JobsBusy,
    UnknownSearch,
    StoreError,
)


@dataclass
class AppState:
    """What every tool call shares: the wired agent parts and the deep search jobs."""

    pasa: Pasa
    jobs: Jobs


Ctx = Context[AppState]
P = ParamSpec("P")
T = TypeVar("T")

Offset = Annotated[int, Field(ge=0)]
Include = Annotated[Literal["selected", "all"], Field(description="or every paper touched")]
Wait = Annotated[float, Field(ge=0, le=600)]
Categories = Annotated[list[str] | None, Field(description="arXiv's, e.g. cs.LG or cs (all cs.*)")]


def shared(ctx: Ctx) -> AppState:
    return ctx.request_context.lifespan_context


def tool_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Expected failures become error results with their own message (the SDK hides other exceptions' text);
    a structured result's text copy is compact JSON (the SDK indents it: a quarter more context for nothing)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = await fn(*args, **kwargs)
        except EXPECTED as exc:
            raise ToolError(str(exc)) from exc
        if isinstance(result, BaseModel):
            data = result.model_dump(mode="json")
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            return cast(T, CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data))
        return result

    return wrapper


def page(items: Sequence[T], offset: int, limit: int) -> tuple[list[T], int | None]:
    """One page of a list, and the offset of the next page (None on the last)."""
    end = offset + limit
    return list(items[offset:end]), end if end < len(items) else None


def trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


async def lookup(pasa: Pasa, idents: Sequence[str]) -> list[Paper]:
    """Papers by id, arXiv URL, DOI or title: the store first, then arXiv, Semantic Scholar or a title match."""
    store = pasa.store
    keys: list[str] = []
    for ident in idents:
        if not ident.strip():
            raise ValueError("a paper id is empty")
        ((kind, value),) = paper_ref(ident.strip()).items()
        if not value or (kind == "arxiv" and not normalize_arxiv_id(value)):
            raise ValueError(f"not a paper id, arXiv id or URL, DOI or title: {ident!r}")
        keys.append(f"{kind}:{value}")
    found = await store.call(store.get_papers, keys)
    fetched: list[Paper] = []
    if arxiv_ids := [k.removeprefix("arxiv:") for k in keys if k.startswith("arxiv:") and k not in found]:
        fetched += (await pasa.arxiv.papers(arxiv_ids)).values()
    if dois := [k.removeprefix("doi:") for k in keys if k.startswith("doi:") and k not in found]:
        fetched += (await pasa.semantic_scholar.papers([f"DOI:{doi}" for doi in dois])).values()
    titles = {k: i.strip() for k, i in zip(keys, idents, strict=True) if k.startswith("title:") and k not in found}
    typed = {k: t for k, t in titles.items() if not t.startswith("title:")}  # a bare title key cannot be searched
    if typed:
        resolved = await pasa.resolver.resolve([Reference(title=t) for t in typed.values()])
        found |= {k: p for k, p in zip(typed, resolved, strict=True) if p is not None}
    for paper in await store.call(store.upsert_papers, fetched):
        # A DOI asked for may come back as an arXiv paper: match it by every identity it has.
        for key in (f"arxiv:{paper.arxiv_id}", f"doi:{paper.doi}"):
            if key in keys:
                found[key] = paper
    missing = [i for k, i in zip(keys, idents, strict=True) if k not in found]
    if missing:
        raise ValueError(f"paper not found: {', '.join(map(repr, missing[:5]))}")
    return [found[k] for k in keys]
