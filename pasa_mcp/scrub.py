"""Secrets never leave the process: the configured keys and tokens, and `scrub(text)`, which masks
each of them in every form a request carries it (raw, percent-encoded as in a URL's query, escaped
as in a JSON body) wherever text leaves: errors, run failures and losses, stored runs, CLI output,
log records.

`remember(settings)` adds a settings object's secrets (every process does so when it opens its
HTTP client, `Net`, and the MCP server when it is built); they stay known for the life of the
process.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

MASK = "****"
# Shorter values are not masked: a 3-letter "key" would mask that word in every message.
MIN_LENGTH = 6

_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember(settings: Any) -> None:
    """Know every secret of `settings` (every SecretStr field: API keys, the HTTP token), and scrub
    log records from now on."""
    for _, value in settings:
        if isinstance(value, SecretStr):
            add(value.get_secret_value())
    _scrub_logs()


def add(secret: str) -> None:
    """Know `secret`, in each form a request may carry it."""
    global _pattern
    if len(secret) < MIN_LENGTH:
        return
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), form) for form in forms}  # %2f as well as %2F
    _known.update(forms)
    # Longest first: a form that contains another is masked whole.
    _pattern = re.compile("|".join(re.escape(form) for form in sorted(_known, key=len, reverse=True)))


def forget() -> None:
    """Know no secret (tests start each from none)."""
    global _pattern
    _known.clear()
    _pattern = None


def scrub(text: str) -> str:
    """`text` with every known secret masked."""
    return _pattern.sub(MASK, text) if _pattern is not None and text else text


def scrub_json(data: Any) -> Any:
    """Every string in a JSON-like value scrubbed (keys too)."""
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, dict):
        return {scrub_json(key): scrub_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [scrub_json(item) for item in data]
    return data


def _scrub_record(record: logging.LogRecord) -> None:
    """A log record's message and traceback with secrets masked, before any handler formats them."""
    if _pattern is None:
        return
    record.msg, record.args = scrub(record.getMessage()), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)


def _scrub_logs() -> None:
    """Scrub every log record of the process, of every logger: where records are made, so that no
    handler (the MCP SDK's, uvicorn's, a library user's) sees a secret."""
    make = logging.getLogRecordFactory()
    if getattr(make, "scrubs", False):
        return

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _scrub_record(record)
        return record

    scrubbed.scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbed)
