"""Papers and their identities: arXiv ids, DOIs and PaSa's title keys.

A paper's identity is its arXiv id (without version) when it has one, else its DOI, else its
title key. Records of one paper from several sources merge into one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

_NEW_ID = r"(?P<new>(?:\d{2}(?:0[1-9]|1[0-2]))\.\d{4,5})"
_OLD_ID = r"(?P<old>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})"
_ID = rf"(?:{_NEW_ID}|{_OLD_ID})(?:v\d+)?"
_HOSTS = r"(?:www\.|export\.)?arxiv\.org|ar5iv(?:\.labs)?\.arxiv\.org|ar5iv\.org"
_URL = re.compile(rf"^(?:https?://)?(?:{_HOSTS})/(?:abs|pdf|html|format)/{_ID}(?:\.pdf)?(?:[/?#].*)?$", re.IGNORECASE)
_BARE = re.compile(rf"^(?:arxiv:\s*)?{_ID}$", re.IGNORECASE)
_IN_TEXT = re.compile(rf"(?:arxiv(?:\.org/abs/|:\s*|\s+))({_ID})", re.IGNORECASE)


def _id_from_match(m: re.Match[str]) -> str:
    if m.group("new"):
        return m.group("new")
    archive, number = m.group("old").split("/")
    # Archive names are lower case ("hep-th"); the subject class after a dot is upper ("math.GT").
    name, _, subject = archive.partition(".")
    return f"{name.lower()}{'.' + subject.upper() if subject else ''}/{number}"


def normalize_arxiv_id(text: str | None) -> str | None:
    """The arXiv id in `text` (a bare id, `arXiv:` id or an arXiv/ar5iv URL), without version.

    Returns None when `text` is not one of those forms.
    """
    if not text:
        return None
    text = text.strip()
    m = _URL.match(text) or _BARE.match(text)
    return _id_from_match(m) if m else None


def find_arxiv_id(text: str) -> str | None:
    """The first arXiv id written inside free text such as a bibliography entry ("arXiv:2401.01234")."""
    m = _IN_TEXT.search(text)
    return _id_from_match(m) if m else None


_NOT_ASCII_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())


def title_key(title: str) -> str:
    """PaSa's title key: letters only, lower case (its `keep_letters`)."""
    if title.isascii():  # most titles: the same, without a Python step per character
        return title.encode().translate(None, _NOT_ASCII_LETTERS).decode().lower()
    return "".join(c for c in title if c.isalpha()).lower()


_DOI = re.compile(r"10\.\d{4,9}/\S+", re.IGNORECASE)


def normalize_doi(text: str | None) -> str | None:
    """A DOI in lower case without resolver prefix (`https://doi.org/`, `doi:`), or None."""
    if not text:
        return None
    m = _DOI.search(text.strip())
    return m.group(0).rstrip(".,;").lower() if m else None


class Paper(BaseModel):
    """One scholarly work, as merged from every source that reported it."""

    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    arxiv_version: int | None = None  # the latest version arXiv reported: its HTML is fetched without a redirect
    doi: str | None = None
    s2_id: str | None = None
    openalex_id: str | None = None
    authors: list[str] = Field(default_factory=list)
    published: date | None = None
    venue: str | None = None
    url: str | None = None
    sources: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)  # arXiv's (`cs.LG`), where arXiv or the local index said

    def model_post_init(self, _context: object) -> None:
        self.title = " ".join(self.title.split())
        self.abstract = " ".join(self.abstract.split())
        # A value that is not an arXiv id or DOI would make a false identity: drop it.
        self.arxiv_id = normalize_arxiv_id(self.arxiv_id)
        self.doi = normalize_doi(self.doi)

    @property
    def key(self) -> str:
        """The identity used everywhere: `arxiv:ID`, `doi:DOI` or `title:KEY`."""
        if self.arxiv_id:
            return f"arxiv:{self.arxiv_id}"
        if self.doi:
            return f"doi:{self.doi}"
        return f"title:{title_key(self.title)}"

    @property
    def title_key(self) -> str:
        return title_key(self.title)

    def same_work(self, other: Paper) -> bool:
        """True when any identity the two records both carry agrees."""
        if self.arxiv_id and other.arxiv_id:
            return self.arxiv_id == other.arxiv_id
        if self.doi and other.doi:
            return self.doi == other.doi
        return bool(self.title_key) and self.title_key == other.title_key

    def merge(self, other: Paper) -> Paper:
        """One record from two of the same work: known fields win over blanks, longer abstracts win."""
        data = self.model_dump()
        for name, value in other.model_dump().items():
            mine = data[name]
            if name == "sources":
                data[name] = mine + [s for s in value if s not in mine]
            elif name == "abstract":
                data[name] = value if len(value) > len(mine) else mine
            elif name == "arxiv_version" and mine and value:
                data[name] = max(mine, value)
            elif not mine and value:
                data[name] = value
        return Paper(**data)


def paper_ref(key: str) -> dict[str, str]:
    """Split a paper key (or a bare arXiv id / DOI / URL a user typed) into its identity field."""
    kind, _, value = key.partition(":")
    if kind in ("arxiv", "doi", "title") and value:
        return {kind: value if kind != "arxiv" else normalize_arxiv_id(value) or value}
    if arxiv_id := normalize_arxiv_id(key):
        return {"arxiv": arxiv_id}
    if doi := normalize_doi(key):
        return {"doi": doi}
    return {"title": title_key(key)}


class Reference(BaseModel):
    """One bibliography entry as cited in a paper's text."""

    title: str
    text: str = ""  # the whole entry, kept for fuzzy resolution
    untitled: bool = False  # the entry names no title of its own: `title` holds the whole entry
    arxiv_id: str | None = None
    doi: str | None = None


class SectionMap(BaseModel):
    """A paper's sections -> the references cited in each (PROTOCOL section 3).

    `origin` says where it came from: arXiv's HTML, ar5iv, or (no full text) a reference list from
    Semantic Scholar or OpenAlex given as one section named "References".
    """

    origin: Literal["arxiv_html", "ar5iv", "references", "pasa_db"]
    sections: dict[str, list[Reference]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    parser: int = 0  # for a LaTeXML page: the `latexml.PARSER` version that read it (0: before versions)
    complete: bool = True  # False: the page came cut off or lacks cited bibliography entries (warnings say)

    def titles(self) -> dict[str, list[str]]:
        return {name: [ref.title for ref in refs] for name, refs in self.sections.items()}

    def cited(self, names: Iterable[str]) -> list[tuple[str, Reference]]:
        """(section, reference) for the references cited in `names`, each work once (first section wins).

        A work is its arXiv id or DOI, else its whole entry: two entries with one title but different
        reference strings (two books called "Causality") stay two.
        """
        found: dict[str, tuple[str, Reference]] = {}
        for name in names:
            for ref in self.sections[name]:
                found.setdefault(ref.arxiv_id or ref.doi or (ref.text or ref.title).lower(), (name, ref))
        return list(found.values())
