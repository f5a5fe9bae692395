"""arXiv's OAI-PMH interface into the local index: ListRecords in the `arXiv` metadata format.

arXiv's preferred way to keep a copy current. Every request goes through the process's `Net` as the
"arxiv" host: arXiv's terms give its legacy APIs one limit together, so OAI-PMH (oaipmh.arxiv.org)
shares the query API's (export.arxiv.org) clock and connection across the user's processes: one
request every 3 s over one connection, 503 with Retry-After waited out.
Each page commits with its resumption token, so an interrupted harvest resumes at the page it
reached; a finished one remembers the newest datestamp, and the next run asks `from` that day.
Deleted records remove the paper from the index.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import anyio
import httpx

from ..net import Net
from ..papers import normalize_arxiv_id
from .db import LocalIndex, Record

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_ARXIV = "{http://arxiv.org/OAI/arXiv/}"


class HarvestError(Exception):
    """The repository answered with an OAI-PMH error other than "no records" (its code and message)."""


@dataclass
class Page:
    records: list[Record] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    token: str | None = None  # None: the list is complete
    newest: str | None = None  # the newest datestamp on the page
    total: int | None = None  # completeListSize, when the repository says


def parse_page(xml: str) -> Page:
    """One ListRecords answer; raises ValueError when it is not OAI-PMH, HarvestError for its errors."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"OAI-PMH answer is not XML: {exc}") from None
    if root.tag != f"{_OAI}OAI-PMH":
        raise ValueError(f"OAI-PMH answer has root <{root.tag}>")
    page = Page()
    for error in root.findall(f"{_OAI}error"):
        if error.get("code") == "noRecordsMatch":
            return page
        raise HarvestError(f"OAI-PMH error {error.get('code')}: {' '.join((error.text or '').split())}")
    listing = root.find(f"{_OAI}ListRecords")
    if listing is None:
        raise ValueError("OAI-PMH answer has no ListRecords")
    for rec in listing.findall(f"{_OAI}record"):
        header = rec.find(f"{_OAI}header")
        if header is None:
            raise ValueError("OAI-PMH record without a header")
        stamp = header.findtext(f"{_OAI}datestamp", "").strip() or None
        if stamp and (page.newest is None or stamp > page.newest):
            page.newest = stamp
        identifier = header.findtext(f"{_OAI}identifier", "")
        if header.get("status") == "deleted":
            if arxiv_id := normalize_arxiv_id(identifier.rsplit(":", 1)[-1]):
                page.deleted.append(arxiv_id)
            continue
        meta = rec.find(f"{_OAI}metadata/{_ARXIV}arXiv")
        if meta is None:
            raise ValueError(f"OAI-PMH record {identifier} has no arXiv metadata")
        page.records.append(_record(meta, stamp))
    token = listing.find(f"{_OAI}resumptionToken")
    if token is not None:
        page.token = (token.text or "").strip() or None
        if size := token.get("completeListSize"):
            page.total = int(size) if size.isdigit() else None
    return page


def _text(meta: ET.Element, tag: str) -> str:
    return " ".join(meta.findtext(f"{_ARXIV}{tag}", "").split())


def _record(meta: ET.Element, stamp: str | None) -> Record:
    arxiv_id = normalize_arxiv_id(_text(meta, "id"))
    if arxiv_id is None:
        raise ValueError(f"OAI-PMH record with a bad arXiv id: {_text(meta, 'id')!r}")
    authors = []
    for author in meta.iter(f"{_ARXIV}author"):
        names = [_text(author, "forenames"), _text(author, "keyname"), _text(author, "suffix")]
        authors.append(" ".join(n for n in names if n))
    return Record(
        title=_text(meta, "title"),
        abstract=_text(meta, "abstract"),
        arxiv_id=arxiv_id,
        doi=_text(meta, "doi").split(" ")[0] or None,
        authors=authors,
        categories=_text(meta, "categories").split(),
        published=_text(meta, "created") or None,
        venue=_text(meta, "journal-ref") or None,
        datestamp=stamp,
    )


def _state_key(set_spec: str | None) -> str:
    return f"harvest:{set_spec or '*'}"


async def harvest(
    index: LocalIndex,
    net: Net,
    url: str,
    *,
    set_spec: str | None = None,
    since: date | None = None,
    on_page: Callable[[int, int, int | None], None] | None = None,
) -> dict[str, int | str | None]:
    """Harvest ListRecords into the index; returns counts and the datestamp reached.

    Resumes an interrupted harvest of the same set; otherwise asks from `since`, else from the last
    finished harvest's newest datestamp, else everything. `on_page(records, deleted, total)` after
    each page.
    """
    key = _state_key(set_spec)
    saved = json.loads(index.get_state(key) or "{}")
    counts: dict[str, int | str | None] = {"pages": 0, "records": 0, "added": 0, "updated": 0, "deleted": 0}
    token: str | None = saved.get("token") if since is None else None
    start = since.isoformat() if since else saved.get("from") if token else saved.get("datestamp")
    newest = saved.get("newest") if token else None
    while True:
        if token:
            params = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": "arXiv"}
            if set_spec:
                params["set"] = set_spec
            if start:
                params["from"] = start
        try:
            page: Page = await net.request("arxiv", "GET", url, params=params, parse=_parse)
        except HarvestError as exc:
            if token and "badResumptionToken" in str(exc):
                # Tokens expire: forget it, so the next run starts this harvest over from its `from`.
                await anyio.to_thread.run_sync(index.set_state, key, json.dumps({"datestamp": start}))
                raise HarvestError(f"{exc}; the saved resumption token expired, run the harvest again") from None
            raise
        if page.newest and (newest is None or page.newest > newest):
            newest = page.newest
        done = page.token is None
        progress = {"token": page.token, "from": start, "newest": newest, "datestamp": saved.get("datestamp")}
        if done:
            progress = {"datestamp": newest or saved.get("datestamp")}
        added, updated = await anyio.to_thread.run_sync(index.add, page.records, {key: json.dumps(progress)})
        removed = await anyio.to_thread.run_sync(index.delete, page.deleted) if page.deleted else 0
        counts["pages"] += 1  # type: ignore[operator]
        counts["records"] += len(page.records) + len(page.deleted)  # type: ignore[operator]
        counts["added"] += added  # type: ignore[operator]
        counts["updated"] += updated  # type: ignore[operator]
        counts["deleted"] += removed  # type: ignore[operator]
        if on_page:
            on_page(len(page.records), len(page.deleted), page.total)
        if done:
            break
        token = page.token
    await anyio.to_thread.run_sync(index.finish)
    counts["datestamp"] = newest or saved.get("datestamp")
    return counts


def _parse(response: httpx.Response) -> Page:
    return parse_page(response.text)
