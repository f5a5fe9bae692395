"""Running calls side by side, with a failure raised as itself rather than as an exception group,
so callers can catch ModelError or SourceUnavailable as usual."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first real error inside a (nested) exception group."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


async def gather(*calls: Callable[[], Awaitable[T]]) -> list[T]:
    """The calls' results, in order; the first failure cancels the others and is raised."""
    results: list[Any] = [None] * len(calls)

    async def one(i: int) -> None:
        results[i] = await calls[i]()

    try:
        async with anyio.create_task_group() as tg:
            for i in range(len(calls)):
                tg.start_soon(one, i)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return results
