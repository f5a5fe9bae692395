"""arXiv's OAI-PMH interface (oaipmh.arxiv.org/oai), simulated: Identify and ListRecords in the
`arXiv` metadata format, with resumption tokens, sets, from/until, deleted records and flow control.

It listens at a location of its own, as on arXiv since 2025 (the old address, export.arxiv.org/oai2,
answers with a permanent redirect there), but is served by the arxiv_api service behind its gate:
arXiv's terms give the legacy APIs one limit together, one request every 3 s and one at a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from xml.sax.saxutils import escape

from .corpus import Corpus, Paper

_HEAD = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    "<!-- Simulated by pasa-mcp tools/world; not a response of arXiv's OAI-PMH interface. -->\n"
    '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">'
)
DELETED = 3  # withdrawn ids the repository reports as deleted records


def set_spec(category: str) -> str:
    """arXiv's OAI set of a category: `cs`, `math`, `stat`, or `physics:ARCHIVE` for the physics archives."""
    archive = category.split(".")[0]
    return archive if archive in ("cs", "math", "stat", "q-bio", "q-fin", "econ", "eess") else f"physics:{archive}"


def datestamp(paper: Paper) -> str:
    return (paper.updated or paper.published).astimezone(UTC).date().isoformat()


def deleted_ids(corpus: Corpus) -> list[tuple[str, str]]:
    """(arXiv id, datestamp) of records withdrawn from the repository: ids the corpus does not use."""
    return [(f"2506.{99990 + k}", "2025-06-20") for k in range(DELETED)]


def _wrap(request: str, body: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{_HEAD}\n<responseDate>{now}</responseDate>\n{request}\n{body}\n</OAI-PMH>\n"


def error(code: str, message: str, url: str) -> str:
    return _wrap(f"<request>{escape(url)}</request>", f'<error code="{code}">{escape(message)}</error>')


def identify(url: str, corpus: Corpus) -> str:
    earliest = min(p.published for p in corpus.papers).date().isoformat()
    body = (
        "<Identify><repositoryName>arXiv (simulated)</repositoryName>"
        f"<baseURL>{escape(url)}</baseURL><protocolVersion>2.0</protocolVersion>"
        "<adminEmail>sim@example.invalid</adminEmail>"
        f"<earliestDatestamp>{earliest}</earliestDatestamp><deletedRecord>persistent</deletedRecord>"
        "<granularity>YYYY-MM-DD</granularity></Identify>"
    )
    return _wrap(f'<request verb="Identify">{escape(url)}</request>', body)


def listing(corpus: Corpus, set_name: str | None, since: date | None, until: date | None) -> list[tuple[str, object]]:
    """The records a ListRecords request selects, in datestamp order: ("paper", Paper) or ("deleted", (id, stamp))."""
    items: list[tuple[str, str, str, object]] = []
    for p in corpus.papers:
        if not p.arxiv_id:
            continue
        if set_name and not any(
            set_spec(c) == set_name or set_spec(c).startswith(set_name + ":") for c in p.categories
        ):
            continue
        items.append((datestamp(p), p.arxiv_id, "paper", p))
    if not set_name or set_name == "cs":
        items += [(stamp, i, "deleted", (i, stamp)) for i, stamp in deleted_ids(corpus)]
    items = [
        item
        for item in items
        if (since is None or item[0] >= since.isoformat()) and (until is None or item[0] <= until.isoformat())
    ]
    items.sort(key=lambda item: (item[0], item[1]))
    return [(kind, value) for _, _, kind, value in items]


def record(kind: str, value: object) -> str:
    if kind == "deleted":
        arxiv_id, stamp = value  # type: ignore[misc]
        return (
            f'<record><header status="deleted"><identifier>oai:arXiv.org:{arxiv_id}</identifier>'
            f"<datestamp>{stamp}</datestamp><setSpec>cs</setSpec></header></record>"
        )
    p = value
    assert isinstance(p, Paper)
    sets = "".join(f"<setSpec>{s}</setSpec>" for s in dict.fromkeys(set_spec(c) for c in p.categories))
    authors = []
    for name in p.authors:
        first, _, last = name.rpartition(" ")
        authors.append(
            f"<author><keyname>{escape(last)}</keyname>"
            + (f"<forenames>{escape(first)}</forenames>" if first else "")
            + "</author>"
        )
    extra = ""
    if p.venue:
        extra += f"<journal-ref>{escape(p.venue)} ({p.published.year})</journal-ref>"
    if p.doi:
        extra += f"<doi>{escape(p.doi)}</doi>"
    updated = f"<updated>{datestamp(p)}</updated>" if p.versions > 1 else ""
    return (
        f"<record><header><identifier>oai:arXiv.org:{p.arxiv_id}</identifier>"
        f"<datestamp>{datestamp(p)}</datestamp>{sets}</header><metadata>"
        '<arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">'
        f"<id>{p.arxiv_id}</id><created>{p.published.date().isoformat()}</created>{updated}"
        f"<authors>{''.join(authors)}</authors><title>{escape(p.title)}</title>"
        f"<categories>{' '.join(p.categories)}</categories>"
        "<comments>Simulated paper (pasa-mcp tools/world)</comments>"
        f"{extra}<license>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</license>"
        f"<abstract>{escape(p.abstract)}</abstract></arXiv></metadata></record>"
    )


def list_records(url: str, items: list[tuple[str, object]], start: int, page: int, token_base: str) -> str:
    """One page of a listing; the token names the next page (`BASE|OFFSET`), empty on the last page."""
    chunk = items[start : start + page]
    records = "\n".join(record(kind, value) for kind, value in chunk)
    more = start + page < len(items)
    token_text = f"{token_base}|{start + page}" if more else ""
    token = f'<resumptionToken cursor="{start}" completeListSize="{len(items)}">{escape(token_text)}</resumptionToken>'
    if start == 0 and not more:
        token = ""
    return _wrap(
        f'<request verb="ListRecords">{escape(url)}</request>', f"<ListRecords>\n{records}\n{token}\n</ListRecords>"
    )
