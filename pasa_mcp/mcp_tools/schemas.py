"""Tool schemas as small as they can be without losing meaning: every client pays for them in context.

pydantic's input schemas carry a `title` for every property, spell an optional value as
`anyOf: [X, {"type": "null"}]` and write out `default: null`; none of it tells a model anything the
property name and its type do not. An output schema names every field of the result and its JSON
type (a record or list inside it is an object or array; its fields are in the result itself),
without prose: the tool description and the input schema say what things mean. The SDK still
checks arguments and results with the pydantic models, not with these published copies. This keeps
tools/list under 10 KB (tests/test_footprint.py).
"""

from __future__ import annotations

from typing import Any

from mcp.types import Tool

NULL = {"type": "null"}


def compact_tool(tool: Tool) -> Tool:
    """A tool as published: the compact input schema and the output's fields with their types."""
    output = fields(tool.output_schema) if tool.output_schema else None
    return tool.model_copy(update={"input_schema": compact(tool.input_schema), "output_schema": output})


def fields(schema: dict[str, Any]) -> dict[str, Any]:
    """An object schema as its properties and their JSON types."""
    props = schema.get("properties") or {}
    return {"type": "object", "properties": {name: {"type": _json_type(sub)} for name, sub in props.items()}}


def _json_type(schema: dict[str, Any]) -> str | list[str]:
    if "$ref" in schema:
        return "object"
    if "type" in schema:
        return schema["type"]
    kinds: list[str] = []
    for option in schema.get("anyOf", []):
        kind = _json_type(option)
        kinds += kind if isinstance(kind, list) else [kind]
    kinds = list(dict.fromkeys(kinds))
    return kinds[0] if len(kinds) == 1 else kinds


def compact(schema: Any) -> Any:
    """The same JSON schema without `title` keywords and `default: null`, an optional argument as its type."""
    if isinstance(schema, list):
        return [compact(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue  # the keyword; a property *named* title lives under "properties" and is kept
        if key == "default" and value is None:
            continue
        if key in ("minLength", "minItems") and value == 1:
            continue  # "not empty": the server still checks it and says so plainly
        if key == "properties":
            out[key] = {name: compact(sub) for name, sub in value.items()}
        else:
            out[key] = compact(value)
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and NULL in options:
        # An argument left out means "the default": a caller never needs to send null.
        (other,) = [o for o in options if o != NULL]
        del out["anyOf"]
        out = {**other, **out}
    return out
