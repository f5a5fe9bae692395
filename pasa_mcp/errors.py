"""Validation errors in plain words, on one line, under the names the user typed.

pydantic's own text names internal fields, spans several lines and links its documentation; the CLI
(options such as `--layers`) and the MCP server (tool arguments) both report bad input through here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
}


def plain_errors(exc: ValidationError, names: Mapping[str, str] | None = None, quiet: Collection[str] = ()) -> str:
    """Every problem of `exc` as `NAME must be ...`, joined by '; '. `names` maps field names to what the
    user typed; the values given for `quiet` fields (secrets) are never repeated."""
    return "; ".join(_one(error, names or {}, quiet) for error in exc.errors(include_url=False))


def _one(error: Any, names: Mapping[str, str], quiet: Collection[str]) -> str:
    loc = [str(part) for part in error["loc"]]
    name = names.get(loc[0], loc[0]) if loc else "input"
    name += "".join(f"[{part}]" for part in loc[1:])
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    shown = isinstance(value, str | int | float) and len(repr(value)) <= 60 and not (loc and loc[0] in quiet)
    got = f", got {value!r}" if shown else ""
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{name} must be {words} {ctx[key]}{got}"
    if kind in ("too_short", "string_too_short"):
        return f"{name} must not be empty" if ctx.get("min_length") == 1 else f"{name} is too short{got}"
    if kind == "too_long":
        return f"{name} takes at most {ctx['max_length']} items, got {ctx['actual_length']}"
    if kind == "missing":
        return f"{name} is required"
    if kind == "extra_forbidden":
        return f"{name} is not known"
    if kind == "literal_error":
        return f"{name} must be one of {ctx['expected']}{got}"
    if kind == "value_error":  # a validator's own words
        return f"{name} {error['msg'].removeprefix('Value error, ')}{got}"
    message = error["msg"].replace("Input should be", "must be").replace(" after validation", "")
    return f"{name} {message}{got}"
