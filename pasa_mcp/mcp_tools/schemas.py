"""Tool schemas as small as they can be without losing meaning: every client pays for them in context.

pydantic's schemas carry a `title` for every property, spell an optional value as
`anyOf: [X, {"type": "null"}]` and write out `default: null`; none of it tells a model anything the
property name and a type list do not. Output schemas keep their structure and types but no prose,
defaults or `required` lists: the tool descriptions and input schemas say what things mean, and
every field is always sent. Validation is unaffected: the SDK checks arguments and results with the
pydantic models, not with these published copies.
"""

from __future__ import annotations

from typing import Any

NULL = {"type": "null"}


def compact(schema: Any, *, output: bool = False) -> Any:
    """The same JSON schema without `title` keywords, with `X | None` as a type list where X has a plain type."""
    if isinstance(schema, list):
        return [compact(item, output=output) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue  # the keyword; a property *named* title lives under "properties" and is kept
        if key == "default" and (output or value is None):
            continue
        if output and key in ("description", "required") and not isinstance(value, dict):
            continue  # keywords; a property named so is a dict under "properties"
        if key == "properties":
            out[key] = {name: compact(sub, output=output) for name, sub in value.items()}
        else:
            out[key] = compact(value, output=output)
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and NULL in options:
        (other,) = [o for o in options if o != NULL]
        if isinstance(other.get("type"), str) and not {"anyOf", "oneOf"} & other.keys():
            del out["anyOf"]
            out = {**other, **out, "type": [other["type"], "null"]}
    return out
