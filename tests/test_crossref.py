"""Crossref's bibliographic query, against a hand-written answer in the shape of Crossref's works list."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from pasa_mcp.config import Settings
from pasa_mcp.net import Net, SourceRejected
from pasa_mcp.sources.crossref import CANDIDATES, Crossref

pytestmark = pytest.mark.anyio

API = "http://127.0.0.1:9/crossref"  # never contacted: a MockTransport answers
ANSWER = {
    "status": "ok",
    "message-type": "work-list",
    "message": {
        "items": [
            {
                "DOI": "10.5555/Lattice.116.125",
                "title": ["Harmonic sieves in small fields"],
                "author": [{"given": "Ansel", "family": "Porter"}, {"family": "Quill"}],
                "issued": {"date-parts": [[2000, 3]]},
                "container-title": ["Lattice Letters"],
                "URL": "https://doi.org/10.5555/lattice.116.125",
            },
            {"DOI": "10.5555/untitled", "title": [], "issued": {"date-parts": [[None]]}},
        ]
    },
}


async def test_a_reference_string_is_sent_whole_and_the_items_become_papers() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=ANSWER)

    settings = Settings(crossref_url=API, crossref_interval=0, crossref_mailto="me@example.org")
    net = Net(settings, httpx.MockTransport(handler))
    try:
        papers = await Crossref(net, settings).search_reference("A. Porter, Lattice Lett. 116, 125 (2000).")
    finally:
        await net.aclose()
    (request,) = sent
    assert request.url.path == "/crossref/works"
    assert request.url.params["query.bibliographic"] == "A. Porter, Lattice Lett. 116, 125 (2000)."
    assert request.url.params["rows"] == str(CANDIDATES) and request.url.params["mailto"] == "me@example.org"
    (paper,) = papers  # the item without a title is left out
    assert (paper.title, paper.doi, paper.published) == (
        "Harmonic sieves in small fields",
        "10.5555/lattice.116.125",
        date(2000, 1, 1),
    )
    assert paper.authors == ["Ansel Porter", "Quill"] and paper.venue == "Lattice Letters"


async def test_a_refusal_is_an_error_and_an_empty_reference_is_bad_input() -> None:
    settings = Settings(crossref_url=API, crossref_interval=0, http_retries=0)
    net = Net(settings, httpx.MockTransport(lambda request: httpx.Response(400, text="bad query")))
    try:
        with pytest.raises(SourceRejected):
            await Crossref(net, settings).search_reference("A. Porter, 2000")
        with pytest.raises(ValueError, match="non-empty reference"):
            await Crossref(net, settings).search_reference("  ")
    finally:
        await net.aclose()
