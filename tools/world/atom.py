"""arXiv API responses: the current Atom feed format (see shared/fixtures/arxiv_atom, arxivpy_*)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from .corpus import Paper

_HEAD = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    "<!-- Simulated by pasa-mcp tools/world; not a response of the arXiv API. -->\n"
    '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom"'
    ' xmlns="http://www.w3.org/2005/Atom">'
)
_SCHEME = "http://arxiv.org/schemas/atom"


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed(*, search_query: str, id_list: str, start: int, max_results: int, total: int, entries: list[str]) -> str:
    query = f"search_query={search_query}&id_list={id_list}&start={start}&max_results={max_results}"
    digest = base64.b64encode(hashlib.sha1(query.encode()).digest()).decode().rstrip("=")
    link = f"https://arxiv.org/api/query?search_query={search_query}&start={start}&max_results={max_results}&id_list={id_list}"
    lines = [
        _HEAD,
        f"  <id>https://arxiv.org/api/{digest}</id>",
        f"  <title>arXiv Query: {escape(query)}</title>",
        f"  <updated>{_stamp(datetime.now(UTC))}</updated>",
        f'  <link href={quoteattr(link)} type="application/atom+xml"/>',
        f"  <opensearch:itemsPerPage>{max_results}</opensearch:itemsPerPage>",
        f"  <opensearch:totalResults>{total}</opensearch:totalResults>",
        f"  <opensearch:startIndex>{start}</opensearch:startIndex>",
        *entries,
        "</feed>",
    ]
    return "\n".join(lines) + "\n"


def entry(paper: Paper, version: int) -> str:
    versioned = f"{paper.arxiv_id}v{version}"
    updated = paper.published if version == 1 else paper.updated or paper.published
    lines = [
        "  <entry>",
        f"    <id>http://arxiv.org/abs/{versioned}</id>",
        f"    <title>{escape(paper.title)}</title>",
        f"    <updated>{_stamp(updated)}</updated>",
        f'    <link href="https://arxiv.org/abs/{versioned}" rel="alternate" type="text/html"/>',
        f'    <link href="https://arxiv.org/pdf/{versioned}" rel="related" type="application/pdf" title="pdf"/>',
        f"    <summary>{escape(paper.abstract)}</summary>",
        *(f'    <category term="{c}" scheme="{_SCHEME}"/>' for c in paper.categories),
        f"    <published>{_stamp(paper.published)}</published>",
        "    <arxiv:comment>Simulated paper (pasa-mcp tools/world)</arxiv:comment>",
        f'    <arxiv:primary_category term="{paper.categories[0]}"/>',
    ]
    if paper.venue:
        lines.append(f"    <arxiv:journal_ref>{escape(paper.venue)} ({paper.published.year})</arxiv:journal_ref>")
    for name in paper.authors:
        lines += ["    <author>", f"      <name>{escape(name)}</name>", "    </author>"]
    if paper.doi:
        lines.append(f"    <arxiv:doi>{escape(paper.doi)}</arxiv:doi>")
        lines.append(f'    <link rel="related" href="https://doi.org/{escape(paper.doi)}" title="doi"/>')
    lines.append("  </entry>")
    return "\n".join(lines)


def error_feed(message: str) -> str:
    """The feed the API sends with HTTP 400 (e.g. "incorrect id format for abc")."""
    anchor = "https://arxiv.org/api/errors#" + "_".join(message.split())
    now = _stamp(datetime.now(UTC))
    lines = [
        _HEAD,
        "  <id>https://arxiv.org/</id>",
        "  <title>arXiv Search Results</title>",
        f"  <updated>{now}</updated>",
        "  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>",
        "  <opensearch:totalResults>1</opensearch:totalResults>",
        "  <opensearch:startIndex>0</opensearch:startIndex>",
        "  <entry>",
        f"    <id>{escape(anchor)}</id>",
        "    <title>Error</title>",
        f"    <updated>{now}</updated>",
        f'    <link href={quoteattr(anchor)} rel="alternate" type="text/html"/>',
        f"    <summary>{escape(message)}</summary>",
        "    <author>",
        "      <name>arXiv api core</name>",
        "    </author>",
        "  </entry>",
        "</feed>",
    ]
    return "\n".join(lines) + "\n"
