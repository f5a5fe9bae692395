"""Resources (a deep search's result as JSON, Markdown and BibTeX; a paper as JSON) and the prompt."""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from .. import export
from ..jobs import Snapshot, UnknownSearch
from ..papers import Paper
from .common import EXPECTED, Ctx, shared
from .steps import paper_details


async def _search_snapshot(ctx: Ctx, search_id: str) -> Snapshot:
    try:
        return await shared(ctx).jobs.snapshot(search_id)
    except UnknownSearch as exc:
        raise ResourceNotFoundError(str(exc)) from None


async def _selected_papers(ctx: Ctx, snap: Snapshot) -> dict[str, Paper]:
    store = shared(ctx).pasa.store
    selected = snap.result.selected if snap.result else []
    return await store.call(store.get_papers, [p.key for p in selected])


async def search_json(search_id: str, ctx: Ctx) -> str:
    """A deep search's whole result as JSON: every paper touched, failures, and the run tree."""
    return (await _search_snapshot(ctx, search_id)).model_dump_json(indent=1)


async def search_markdown(search_id: str, ctx: Ctx) -> str:
    """A deep search's selected papers as Markdown."""
    snap = await _search_snapshot(ctx, search_id)
    return export.search_markdown(snap, await _selected_papers(ctx, snap))


async def search_bibtex(search_id: str, ctx: Ctx) -> str:
    """A deep search's selected papers as BibTeX."""
    snap = await _search_snapshot(ctx, search_id)
    known = await _selected_papers(ctx, snap)
    selected = snap.result.selected if snap.result else []
    return export.bibtex([known.get(p.key) or Paper(title=p.title, arxiv_id=p.arxiv_id) for p in selected])


async def paper_json(id: str, ctx: Ctx) -> str:
    """A paper's metadata, whole abstract, and sections with how many references each cites."""
    try:
        details = await paper_details(shared(ctx).pasa, id, True, 100_000)
    except EXPECTED as exc:
        raise ResourceNotFoundError(str(exc)) from None
    return details.model_dump_json(indent=1)


def pasa_loop(question: str) -> str:
    """How to run PaSa's search loop yourself with the step tools, for a research question."""
    return f"""\
Find the papers that answer this research question, the way the PaSa agent does, with the pasa tools:

{question}

1. generate_queries(question) gives search queries; add your own if the question has angles they miss.
2. find_papers(queries, end_date=...) searches the sources. Note any failures it reports: a failed
   source is not "no papers"; retry it later or use other sources.
3. score_paper(question, ids) scores the candidates (up to 50 per call). A score above the threshold
   (0.5) means the selector thinks the paper satisfies the question; explain=true gives its reason.
4. Expand: for every paper found by search (whatever its score), call
   expand_citations(paper, question=...) to follow the citations of the sections the crawler picks
   (or call get_paper to see the sections and pass section names yourself). Score the new papers.
5. Go one layer deeper: expand the 20 best-scoring papers of the new layer, score what they cite.
6. Answer with the papers scored above the threshold, best first: title, id, score, and how each
   was found (search query, or cited in which paper and section).

Keep a list of ids already seen, so that no paper is scored or expanded twice. If you would rather
not drive the loop, paper_search runs all of it as one job (poll it with paper_search_status)."""
