"""JSON records in the shapes of Semantic Scholar's graph API and OpenAlex (see shared/fixtures/s2, openalex)."""

from __future__ import annotations

import hashlib
from typing import Any

from .corpus import Corpus, Paper, unit

S2_FIELDS = frozenset(
    "paperId corpusId externalIds url title abstract venue publicationVenue year referenceCount citationCount "
    "influentialCitationCount isOpenAccess openAccessPdf fieldsOfStudy s2FieldsOfStudy publicationTypes "
    "publicationDate journal citationStyles authors tldr".split()
)
S2_EDGE_FIELDS = frozenset({"contexts", "intents", "isInfluential", "contextsWithIntent"})

_FIELD_OF_STUDY = {"cs": "Computer Science", "stat": "Mathematics", "math": "Mathematics"}


class FieldError(ValueError):
    """Fields a client asked for that the API does not know."""


def s2_fields(raw: str | None, allowed: frozenset[str] = S2_FIELDS) -> list[str]:
    """The `fields` parameter as a list; unknown names raise FieldError (S2 answers 400)."""
    names = [f.strip() for f in (raw or "title").split(",") if f.strip()]
    bad = [n for n in names if n.split(".")[0] not in allowed]
    if bad:
        raise FieldError(f"Unrecognized or unsupported fields: [{', '.join(bad)}]")
    return [n.split(".")[0] for n in names]


def _study(paper: Paper) -> str:
    return _FIELD_OF_STUDY.get(paper.categories[0].split(".")[0], "Physics")


def s2_paper(corpus: Corpus, paper: Paper, fields: list[str]) -> dict[str, Any]:
    """One paper as Semantic Scholar returns it: paperId first, then the requested fields."""
    pid = corpus.s2_id(paper)
    record: dict[str, Any] = {"paperId": pid}
    arxiv = paper.arxiv_id
    for name in fields:
        if name == "corpusId":
            record[name] = corpus.corpus_id(paper)
        elif name == "externalIds":
            ids: dict[str, Any] = {}
            if arxiv:
                ids["ArXiv"] = arxiv
            ids["DOI"] = paper.doi or f"10.48550/arXiv.{arxiv}"
            ids["CorpusId"] = corpus.corpus_id(paper)
            record[name] = ids
        elif name == "url":
            record[name] = f"https://www.semanticscholar.org/paper/{pid}"
        elif name == "title":
            record[name] = paper.title
        elif name == "abstract":  # S2 withholds some publishers' abstracts
            record[name] = None if unit("s2-abstract", corpus.seed, paper.idx) < 0.15 else paper.abstract
        elif name == "venue":
            record[name] = paper.venue or "arXiv.org"
        elif name == "publicationVenue":
            venue = paper.venue or "arXiv.org"
            vid = hashlib.md5(venue.encode()).hexdigest()
            record[name] = {
                "id": f"{vid[:8]}-{vid[8:12]}-{vid[12:16]}-{vid[16:20]}-{vid[20:32]}",
                "name": venue,
                "type": "journal" if paper.venue else "other",
            }
        elif name == "year":
            record[name] = paper.published.year
        elif name == "referenceCount":
            record[name] = len(paper.refs) + len(paper.externals)
        elif name == "citationCount":
            record[name] = paper.cited_by
        elif name == "influentialCitationCount":
            record[name] = paper.cited_by // 10
        elif name == "isOpenAccess":
            record[name] = bool(arxiv)
        elif name == "openAccessPdf":
            record[name] = {"url": f"https://arxiv.org/pdf/{arxiv}", "status": "GREEN"} if arxiv else None
        elif name == "fieldsOfStudy":
            record[name] = [_study(paper)]
        elif name == "s2FieldsOfStudy":
            record[name] = [{"category": _study(paper), "source": "s2-fos-model"}]
        elif name == "publicationTypes":
            record[name] = ["JournalArticle"] if paper.venue else None
        elif name == "publicationDate":
            record[name] = paper.published.date().isoformat()
        elif name == "journal":
            record[name] = {"name": "ArXiv", "volume": f"abs/{arxiv}"} if not paper.venue else {"name": paper.venue}
        elif name == "citationStyles":
            authors = " and ".join(paper.authors)
            key = f"{paper.authors[0].split()[-1]}{paper.published.year}"
            year = paper.published.year
            bibtex = (
                f"@Article{{{key},\n author = {{{authors}}},\n title = {{{paper.title}}},\n year = {{{year}}}\n}}\n"
            )
            record[name] = {"bibtex": bibtex}
        elif name == "authors":
            record[name] = [{"authorId": str(_author_number(a)), "name": a} for a in paper.authors]
        elif name == "tldr":
            record[name] = None
    return record


def s2_reference(corpus: Corpus, citing: Paper, target: int | str, fields: list[str]) -> dict[str, Any]:
    """One element of /paper/{id}/references: edge fields and `citedPaper` (paperId null outside S2)."""
    edge: dict[str, Any] = {}
    for name in fields:
        if name == "contexts":
            edge[name] = []
        elif name == "intents":
            edge[name] = ["background"]
        elif name == "isInfluential":
            edge[name] = False
        elif name == "contextsWithIntent":
            edge[name] = []
    paper_fields = [f for f in fields if f not in S2_EDGE_FIELDS]
    if isinstance(target, str):
        cited = {"paperId": None, **{f: None for f in paper_fields}}
        if "title" in paper_fields:
            cited["title"] = target
        edge["citedPaper"] = cited
    else:
        edge["citedPaper"] = s2_paper(corpus, corpus.papers[target], paper_fields)
    return edge


def _author_number(name: str) -> int:
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) % 90_000_000 + 1_000_000


OPENALEX_SOURCE_ARXIV = {
    "id": "https://openalex.org/S4306400194",
    "display_name": "arXiv (Cornell University)",
    "issn_l": None,
    "issn": None,
    "is_oa": True,
    "is_in_doaj": False,
    "is_core": False,
    "host_organization": None,
    "host_organization_name": "Cornell University",
    "type": "repository",
}


def openalex_work(corpus: Corpus, paper: Paper, select: list[str] | None = None) -> dict[str, Any]:
    """One work as OpenAlex returns it (the fields a client reads, in the real order)."""
    wid = f"https://openalex.org/{corpus.openalex_id(paper)}"
    doi = f"https://doi.org/{paper.doi or f'10.48550/arxiv.{paper.arxiv_id}'}"
    locations = []
    if paper.venue:
        source = {"id": None, "display_name": paper.venue, "type": "journal", "is_oa": False}
        locations.append(
            {
                "id": f"doi:{paper.doi}",
                "is_oa": False,
                "landing_page_url": f"https://doi.org/{paper.doi}",
                "pdf_url": None,
                "source": source,
                "license": None,
                "version": "publishedVersion",
            }
        )
    if paper.arxiv_id:
        locations.append(
            {
                "id": f"pmh:oai:arXiv.org:{paper.arxiv_id}",
                "is_oa": True,
                "landing_page_url": f"https://arxiv.org/abs/{paper.arxiv_id}",
                "pdf_url": f"https://arxiv.org/pdf/{paper.arxiv_id}",
                "source": OPENALEX_SOURCE_ARXIV,
                "license": None,
                "version": "submittedVersion",
            }
        )
    abstract = None if unit("oa-abstract", corpus.seed, paper.idx) < 0.1 else _inverted(paper.abstract)
    work: dict[str, Any] = {
        "id": wid,
        "doi": doi,
        "title": paper.title,
        "display_name": paper.title,
        "publication_year": paper.published.year,
        "publication_date": paper.published.date().isoformat(),
        "ids": {"openalex": wid, "doi": doi},
        "language": "en",
        "primary_location": locations[0],
        "type": "article" if paper.venue else "preprint",
        "indexed_in": ["crossref"] if paper.venue else ["arxiv", "datacite"],
        "open_access": {
            "is_oa": bool(paper.arxiv_id),
            "oa_status": "green" if paper.arxiv_id else "closed",
            "oa_url": f"https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else None,
            "any_repository_has_fulltext": bool(paper.arxiv_id),
        },
        "authorships": [
            {
                "author_position": "first" if i == 0 else "last" if i == len(paper.authors) - 1 else "middle",
                "author": {
                    "id": f"https://openalex.org/A{5_000_000_000 + _author_number(a)}",
                    "display_name": a,
                    "orcid": None,
                },
                "institutions": [],
                "countries": [],
                "is_corresponding": i == 0,
                "raw_author_name": a,
                "raw_affiliation_strings": [],
            }
            for i, a in enumerate(paper.authors)
        ],
        "cited_by_count": paper.cited_by,
        "biblio": {"volume": None, "issue": None, "first_page": None, "last_page": None},
        "is_retracted": False,
        "is_paratext": False,
        "locations_count": len(locations),
        "locations": locations,
        "best_oa_location": next((loc for loc in locations if loc["is_oa"]), None),
        "referenced_works_count": len(paper.refs),
        "referenced_works": [f"https://openalex.org/{corpus.openalex_id(corpus.papers[r])}" for r in paper.refs],
        "related_works": [],
        "abstract_inverted_index": abstract,
        "counts_by_year": [],
        "updated_date": "2025-07-01T00:00:00.000000",
        "created_date": paper.published.date().isoformat(),
    }
    if select:
        return {k: work.get(k) for k in select}
    return work


def _inverted(text: str) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, word in enumerate(text.split()):
        index.setdefault(word, []).append(i)
    return index


def crossref_item(paper: Paper, score: float) -> dict[str, Any]:
    """One work as Crossref's works list gives it (the fields pasa-mcp selects)."""
    doi = paper.doi or f"10.48550/arXiv.{paper.arxiv_id}"
    authors = [{"given": " ".join(a.split()[:-1]), "family": a.split()[-1]} for a in paper.authors if a.split()]
    when = paper.published
    return {
        "DOI": doi,
        "title": [paper.title],
        "author": authors,
        "issued": {"date-parts": [[when.year, when.month, when.day]]},
        "container-title": [paper.venue] if paper.venue else [],
        "URL": f"https://doi.org/{doi}",
        "score": round(score, 3),
    }
