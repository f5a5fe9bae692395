"""LaTeXML pages (arxiv.org/html, ar5iv) as section maps: which references each section cites.

The crawler was trained on maps built from arXiv's LaTeXML HTML, so the keys follow that recipe
(PROTOCOL section 3), and this module decides the looser points as follows (tests hold it to that):

- A section's own key holds only the citations of its own text, outside its subsections, and exists
  only when that text cites something; each "<section> <subsection>" key holds everything in the
  subsection, its deeper levels included. Units nest by level, not by tag: a paragraph directly under
  a section gives a "<section> <paragraph>" key as a subsection would. Units are told by LaTeXML's
  classes (`ltx_section`, `ltx_subsection`, ... and `ltx_title_*` on the heading), since older
  releases write every title as h1 and their XHTML uses `div`. Where the training data kept only the
  first id of a citation group ("[3, 5, 9]"), every id counts here, and absolute `#bib` links too.
- Titles are the heading's visible text: whitespace runs (a prettified page's line breaks and
  indentation) become one space, MathML annotations (TeX source, content MathML) and footnotes
  are left out, so "4.1 RLSopt≠RLSdrift" instead of a dump of the TeX source.
- Skipped: headings naming references, acknowledgments (either spelling) or "about this document",
  any key naming an appendix, and sections LaTeXML marks as bibliography or appendix. Words are
  matched whole, so "Learning from Human Preferences" is kept (a plain substring test drops it).
- A page without sections (a letter) gives one section, "Main Text": every citation outside the
  bibliography and appendices. The crawler can then expand the whole paper or nothing.
- Damaged pages give what survives, with warnings saying what is missing; no page raises.

Each cited reference keeps its whole entry text, the arXiv id and DOI it names, and a title found by
`reference_title`, which knows more citation styles than upstream's split on ". ".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from selectolax.lexbor import LexborHTMLParser, LexborNode

from .papers import Reference, SectionMap, find_arxiv_id, normalize_arxiv_id, normalize_doi

__all__ = [
    "MAIN_TEXT",
    "PARSER",
    "Origin",
    "is_latexml",
    "parse_latexml",
    "parse_page",
    "parse_section_map",
    "reference_title",
]

Origin = Literal["arxiv_html", "ar5iv"]
MAIN_TEXT = "Main Text"
# Raised whenever the same page would give another map; stored maps of older versions are read again.
# 1: the training-format section rule, sections by class, bibliography styles of real papers.
PARSER = 1

_LATEXML = '.ltx_document, .ltx_page_main, meta[name="generator"][content^="LaTeXML"]'
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)\]”])")
_SPACE_AFTER = re.compile(r"([(\[“])\s+")


def _clean(text: str) -> str:
    """Whitespace runs -> one space, and no space inside brackets or before punctuation.

    A prettified page puts every inline element on its own line, which reads "Journal , vol. 3"
    once collapsed; LaTeX output never has those spaces, so removing them restores the text.
    """
    text = " ".join(text.split())
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


def is_latexml(html_or_tree: str | LexborHTMLParser) -> bool:
    """True for LaTeXML output (arxiv.org/html, ar5iv), whatever host served it."""
    tree = LexborHTMLParser(html_or_tree) if isinstance(html_or_tree, str) else html_or_tree
    return tree.css_first(_LATEXML) is not None


def parse_section_map(html: str) -> dict[str, list[str]]:
    """Section name -> titles of the references cited in it, in first-citation order, no repeats."""
    return parse_page(html).titles()


def parse_page(html: str, origin: Origin = "arxiv_html") -> SectionMap:
    """The section map of one LaTeXML page, with whole references (title, text, arXiv id, DOI).

    Never raises on bad input: an empty or non-LaTeXML page gives an empty map with warnings.
    """
    if not html.strip():
        return SectionMap(origin=origin, warnings=["empty page"], parser=PARSER)
    return _section_map(LexborHTMLParser(html), origin)


def _section_map(tree: LexborHTMLParser, origin: Origin) -> SectionMap:
    warnings = []
    if not is_latexml(tree):
        warnings.append("not a LaTeXML page (no ltx_document or ltx_page_main)")
    tree.strip_tags(["annotation", "annotation-xml"])
    for note in tree.css(".ltx_title .ltx_note"):
        note.decompose()
    bibliography = _bibliography(tree)

    anchors = tree.css("cite a[href]")
    cited = _cited(anchors)
    missing = Counter(ident for ident in cited if ident not in bibliography)
    if not cited:
        warnings.append("no citations found (no ltx_cite links to #bib.* entries)")
    elif missing:
        warnings.append(
            f"{sum(missing.values())} citations point at {len(missing)} bibliography entries missing from the page"
            " (damaged or truncated HTML)"
        )

    keys = _Keys()
    named: dict[str, list[str]] = {key: [] for node in tree.css(_UNIT_SELECTOR) if (key := keys.of(node))}
    if named:
        for anchor in anchors:
            if (key := keys.of(anchor)) is not None:
                named[key] += _cited([anchor])
    else:
        named = {MAIN_TEXT: _cited(a for a in anchors if keys.in_main_text(a))}

    sections: dict[str, list[Reference]] = {}
    for key, idents in named.items():
        refs = sections.setdefault(key, [])
        for ident in dict.fromkeys(idents):
            ref = bibliography.get(ident)
            if ref is not None and ref not in refs:
                refs.append(ref)
    sections = {k: v for k, v in sections.items() if v}
    return SectionMap(origin=origin, sections=sections, warnings=warnings, parser=PARSER)


def _cited(anchors: Iterable[LexborNode]) -> list[str]:
    """The bibliography ids that citation links target: `#bib.bib3` or `https://arxiv.org/html/ID#bib.bib3`."""
    fragments = ((a.attributes.get("href") or "").partition("#")[2] for a in anchors)
    return [f for f in fragments if f.startswith("bib.")]


# Sections by LaTeXML's classes: the tag names vary (section or div; h2 or, in older releases, h1).
_TOP = ("ltx_chapter", "ltx_section")
_UNITS = (*_TOP, "ltx_subsection", "ltx_subsubsection", "ltx_paragraph", "ltx_subparagraph")
_UNIT_SELECTOR = ", ".join(f".{c}" for c in _UNITS)
_SKIP_CLASSES = ("ltx_bibliography", "ltx_appendix", "ltx_index")
_APPENDIX_ID = re.compile(r"A\d+(?:\.|$)")  # LaTeXML numbers appendix parts A1, A1.SS2, ... (sections are S1)
_SKIP = re.compile(r"\b(?:references|acknowledge?ments?|about this document|appendix|appendices)\b", re.I)


class _Keys:
    """The section-map key that text at a node belongs to (PROTOCOL section 3), titles computed once.

    The outermost section or chapter is the top level; the first unit below it, whatever its level
    (subsection, or a paragraph directly under the section), is the second. Text at the top level
    belongs to the top key, text anywhere in a second-level unit to "<top> <second>".
    """

    def __init__(self) -> None:
        self._titles: dict[int, str] = {}

    def of(self, node: LexborNode) -> str | None:
        """The key, or None outside the sections, inside a skipped part, or under a heading without text."""
        units = _units_around(node)
        if not units or not any(c in _TOP for c in _classes(units[0])):
            return None
        titles = [self._title(unit) for unit in units[:2]]
        key = " ".join(titles)
        if not all(titles) or _SKIP.search(titles[0]) or "appendix" in key.lower():
            return None
        if len(titles) == 2 and _SKIP.search(titles[1]):
            return None
        return key

    def in_main_text(self, node: LexborNode) -> bool:
        """For a page without sections: False inside a skipped part or a unit with a skipped heading."""
        units = _units_around(node)
        return units is not None and not any(_SKIP.search(self._title(unit)) for unit in units)

    def _title(self, unit: LexborNode) -> str:
        if unit.mem_id not in self._titles:
            heading = next((child for child in unit.iter() if _is_title(child)), None)
            self._titles[unit.mem_id] = _clean(heading.text(separator="")) if heading is not None else ""
        return self._titles[unit.mem_id]


def _is_title(node: LexborNode) -> bool:
    """A unit's heading: `ltx_title` (also `ltx_title_section`, ...) on whichever tag this release uses."""
    return any(c == "ltx_title" or c.startswith("ltx_title_") for c in _classes(node))


def _classes(node: LexborNode) -> list[str]:
    return (node.attributes.get("class") or "").split()


def _units_around(node: LexborNode) -> list[LexborNode] | None:
    """The sectioning units that hold `node` (itself included), outermost first; None inside a skipped part."""
    units = []
    current: LexborNode | None = node
    while current is not None and current.is_element_node:
        classes = _classes(current)
        if any(c in _SKIP_CLASSES for c in classes) or _APPENDIX_ID.match(current.attributes.get("id") or ""):
            return None
        if any(c in _UNITS for c in classes):
            units.append(current)
        current = current.parent
    return units[::-1]


# Bibliography entries -----------------------------------------------------------------------


def _bibliography(tree: LexborHTMLParser) -> dict[str, Reference | None]:
    """Every `li.ltx_bibitem` by id, with or without the `ul.ltx_biblist` around it (damaged pages).

    A footnote that LaTeXML placed in the bibliography (REVTeX does) is there as None: it is not a
    cited work, and a citation of it is not a citation of a missing entry either.
    """
    entries: dict[str, Reference | None] = {}
    for item in tree.css("li.ltx_bibitem"):
        ident = item.attributes.get("id")
        if ident and ident not in entries:
            entries[ident] = _reference(item)
    return entries


_PROSE = re.compile(r"\b(?:is|are|was|were|we|our|that|can|has|have|be|been|use|used|see|note|here)\b", re.I)


def _is_note(text: str, doi: str | None, arxiv_id: str | None) -> bool:
    """A footnote, not a work: prose of five words or more that names no year, DOI or arXiv id."""
    return (
        not (doi or arxiv_id or re.search(rf"\b{_YEAR}\b", text))
        and len(text.split()) >= 5
        and _PROSE.search(text) is not None
    )


def _reference(item: LexborNode) -> Reference | None:
    """One entry: its text without the label, its title, and the arXiv id and DOI it names (None: a footnote).

    An entry without a title of its own (most physics and astronomy styles) keeps its whole text as
    title, marked `untitled`: it stays readable and distinct from its neighbours, and is resolved by
    its DOI or by the whole reference string, never by a fragment.
    """
    blocks = [b for node in item.css(".ltx_bibblock") if (b := _clean(node.text(separator="")))]
    if not blocks:  # older LaTeXML: the entry is plain text after its label
        for tag in item.css(".ltx_tag"):
            tag.decompose()
        blocks = [_clean(item.text(separator=""))]
    text = " ".join(blocks)
    emphasized = [_clean(e.text(separator="")) for e in item.css(".ltx_bibblock .ltx_font_italic")]
    links = [a.attributes.get("href") or "" for a in item.css("a[href]")]
    doi = next((d for link in links if "doi" in link.lower() and (d := normalize_doi(link))), None)
    doi = doi or normalize_doi(text)
    arxiv_id = _arxiv_id(text, links, doi)
    if _is_note(text, doi, arxiv_id):
        return None
    title = reference_title(blocks, emphasized)
    return Reference(title=title or text, text=text, arxiv_id=arxiv_id, doi=doi, untitled=not title)


_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.I)
_CORR = re.compile(r"\bCoRR\b[^/]{0,20}abs/(\S+?)[,.;]?(?:\s|$)")


def _arxiv_id(text: str, links: list[str], doi: str | None) -> str | None:
    """From an arXiv link, an arXiv DOI (10.48550/arXiv.ID), "arXiv:ID" or DBLP's "CoRR, abs/ID"."""
    for link in links:
        if found := normalize_arxiv_id(link):
            return found
    if doi and (m := _ARXIV_DOI.match(doi)) and (found := normalize_arxiv_id(m.group(1))):
        return found
    if found := find_arxiv_id(text):
        return found
    m = _CORR.search(text)
    return normalize_arxiv_id(m.group(1)) if m else None


# Reference titles ----------------------------------------------------------------------------

_YEAR = r"(?:1[5-9]|20)\d\d[a-z]?"
_YEAR_ONLY = re.compile(rf"\s*\(?{_YEAR}\)?[.,]?\s*")
_QUOTED = re.compile(r"[“\"]([^”\"]{8,}?)[”\"]")
_PAREN_YEAR = re.compile(rf"^(?P<who>[^()\d]{{2,400}}?)[\s,.]*\({_YEAR}\)[.,:]?\s+(?P<rest>.+)$")
_BARE_YEAR = re.compile(rf"^(?P<who>[^()\d]{{2,400}}?)[,.]\s*{_YEAR}[.,:]\s+(?P<rest>.+)$")
_COLON = re.compile(r"^(?P<who>[^:\d]{2,400}?\b[A-Z]\.):\s+(?P<rest>.+)$")
_INITIALS = r"[A-Z][a-z]?\.(?:\s?-?\s?[A-Z][a-z]?\.)*"
_PARTICLES = r"(?:(?:de|da|del|der|den|di|du|dos|la|le|van|von|ter)\s+)*"
_LETTERS = r"[\w'’´`¨ˇ˘˝˜\-]"  # with the spacing accents of TeX's \' \` \" \v \u \H \~ ("Mikusin´ski")
_SURNAME = rf"[A-Z]{_LETTERS}+(?:\s+[A-Z]{_LETTERS}+)?"
_NAME_ITEM = re.compile(rf"\s*(?:and\s+)?(?:{_INITIALS}\s+{_PARTICLES}{_SURNAME}|et\s+al\.)\s*(?:,|\s+and\b)")
_FULL_NAME = rf"[A-Z][a-z]+(?:\s+{_INITIALS})?\s+{_PARTICLES}[A-Z]{_LETTERS}+"
# Authors with full first names: only as a list joined by "and" (a lone "Deep Learning," is a title).
_FULL_NAMES = re.compile(rf"^(?:{_FULL_NAME},\s+)*{_FULL_NAME},?\s+and\s+{_FULL_NAME}\s*,\s*")
_SENTENCE_END = re.compile(r"(?<![\s.\-][A-Z])(?<!^[A-Z])\.(?=\s|$)|[?!](?=\s|$)")
_TRAILING_YEAR = re.compile(rf"(?:[,.]\s*|\s*\(){_YEAR}(?:[–-](?:\d{{4}})?)?\)?[.,]?$")
_TRAILING_PUBLISHER = re.compile(rf"\s*\([^()]*{_YEAR}\)\.?$")
_VOLUME_PAGE = r"\s\d+[A-Z]?(?:\(\d+\))?\s*[,:]\s*[A-Z]?\d+"  # " 518, 179", " 31(3):264", " 104, L201109"
_VENUE = re.compile(rf"^[^\d,]+?{_VOLUME_PAGE}\b")
_TRAILING_VENUE = re.compile(rf",\s+[^\d,]+?{_VOLUME_PAGE}\S*$")
_NOT_TITLE = re.compile(r"^(?:arxiv|in[\s:]|proc\b|proceedings|preprint|e-print|doi|https?:|vol\.|pp\.)", re.I)
_PUBLISHER = re.compile(
    r"\b(?:Press|Publish\w*|Verlag|Springer|Wiley|Elsevier|Birkh\w+|Dover|CRC|Prentice|McGraw|Addison|"
    r"Academic|North-Holland|World Scientific|Inc|Ltd|GmbH|Editions?|Éditions?)\b"
)
# Where a comma-separated single-block entry's title ends: a journal with volume and page (its
# abbreviation's periods included), a publisher, a series, a volume, "in" a book or a thesis.
_VENUE_AFTER_COMMA = re.compile(
    rf",\s+(?=[^,]*?{_VOLUME_PAGE}|[^,]*{_PUBLISHER.pattern}|[^,]*\b(?:Lecture Notes|Series|Texts in)\b|"
    r"vol\.|[Ii]n\s|Ph\.?\s?D|preprint|arXiv)"
)
# After "Authors, 1999," in astronomy: a journal with volume and page, "in press", a thesis or
# "in Book, ed. Editors": the entry names no title of its own.
_NO_TITLE_AFTER_YEAR = re.compile(
    r"^(?:[^,]{2,120},\s*\d+[A-Z]?\s*,\s*[A-Z]?\d+|.*\bin press\b|(?:Ph\.?\s?D\.?|Master'?s|Diploma)\b|in\s|"
    r"submitted|accepted|private communication)",
    re.I,
)


def reference_title(blocks: Sequence[str], emphasized: Sequence[str] = ()) -> str:
    """The title of a bibliography entry, or "" when the entry names none of its own.

    `blocks` are the entry's `ltx_bibblock` texts; `emphasized` its italic texts. In order:
    1. LaTeXML's blocks: authors / title / venue gives the middle one, year suffix ("2004b") cut;
       a block that is only a year is passed over; a two-block "Authors, Title." / "Publisher,
       Year." book gives the title from the first block;
    2. a quoted title (IEEE `A. Author, “Title,” in Venue`, ACM, APS with titles);
    3. author-year styles: what follows "Authors (1999)", "Authors, 1995," or "Authors. 2020.";
       astronomy's "Authors, 1995, Journal, 12, 345" (or in press, a thesis, "in Book, ed. ...")
       names no title: "";
    4. LNCS "Author, A., Author, B.: Title. In: ...";
    5. an author list ("J. R. Name", or full names joined by "and"): what follows it, an italic
       book title if it starts there, up to the first comma that starts a journal, publisher,
       series or "in" (so "Title, Int. J. Lattices 7, 11" gives "Title", not "Title, Int");
    6. the sentence after the authors (natbib "Authors. Title. Venue."), like upstream's split.
    A candidate from free text must look like a title (two words of three letters or more, not
    mostly digits, not a venue such as "arXiv preprint"); a one-word title ("Causality") is taken
    from a block of its own, or when a publisher or address follows it. Title-less physics and
    astronomy entries ("S. Sachdev, Rev. Mod. Phys. 75, 913 (2003).") give "".
    """
    blocks = [b for b in blocks if b.strip()]
    if len(blocks) >= 2 and (title := _from_blocks(blocks)):
        return title
    for candidate in _candidates(" ".join(blocks), emphasized):
        if candidate is None:
            return ""
        text, loose = candidate
        if (title := _tidy(text)) and (_titleish(title) if loose else _plausible(title)):
            return title
    return ""


def _from_blocks(blocks: list[str]) -> str:
    rest = [b for b in blocks[1:] if not _YEAR_ONLY.fullmatch(b)]
    if len(blocks) == 2 and rest and _is_publisher(rest[0]):
        return _titleish(_tidy(_after_names(blocks[0])))
    if len(blocks) == 3 and len(rest) == 2:
        return _titleish(_tidy(rest[0]))
    if len(rest) >= 2 or (rest and len(blocks) == 2):
        title = _tidy(_first_sentence(rest[0]))
        return title if _plausible(title) else ""
    return ""


def _is_publisher(block: str) -> bool:
    """ "Corvid Press, 1998." or "Springer, Berlin, 2001.": a short block naming a publisher."""
    return bool(_PUBLISHER.search(block)) and len(block) < 120 and not _QUOTED.search(block)


def _after_names(block: str) -> str:
    """A first block's title after its authors: "A. Name, Title", "Name and Name, Title", "Name. Title"."""
    if (rest := _after_initials(block)) or (rest := _after_full_names(block)):
        return rest
    if len(sentences := [s for s in _sentences(block) if s.strip()]) >= 2:
        return sentences[1]
    return block.partition(", ")[2]


def _candidates(text: str, emphasized: Sequence[str]) -> Iterator[tuple[str, bool] | None]:
    """(candidate, loose) in order of trust; None means "this entry names no title".

    A loose candidate may be one word: its place, not its look, says it is a title.
    """
    if m := _QUOTED.search(text):
        yield m.group(1), False
    for pattern in (_PAREN_YEAR, _BARE_YEAR, _COLON):
        if m := pattern.match(text):
            if pattern is not _COLON and _NO_TITLE_AFTER_YEAR.match(m.group("rest")):
                yield None
            yield _first_sentence(m.group("rest")), False
    if (rest := _after_initials(text)) or (rest := _after_full_names(text)):
        for italic in emphasized:
            if italic and rest.startswith(italic) and not rest[len(italic) :].lstrip()[:1].isdigit():
                yield italic, False  # an IEEE book title; an italic journal name is followed by its volume
        rest = _TRAILING_PUBLISHER.sub("", rest)
        if _VENUE.match(rest):
            yield None  # "A. Name, Phys. Rev. Lett. 81, 2514 (1998)."
        elif m := _VENUE_AFTER_COMMA.search(rest):
            yield rest[: m.start()], False
        else:
            yield _first_sentence(rest), False
    sentences = [s for s in _sentences(text) if s.strip()]
    for i, sentence in enumerate(sentences[1:3], start=1):
        if _YEAR_ONLY.fullmatch(sentence):
            continue
        following = " ".join(sentences[i + 1 :])
        # "Judea Pearl. Causality. Corvid Press, 2009.": one word, where a title stands.
        yield sentence, len(sentence.split()) == 1 and bool(_PUBLISHER.search(following) or "://" in following)
        break


def _after_initials(text: str) -> str | None:
    """What follows a leading list of "J. R. Name" authors, or None when the entry starts otherwise."""
    pos = count = 0
    while m := _NAME_ITEM.match(text, pos):
        pos, count = m.end(), count + 1
    return text[pos:].strip() if count else None


def _after_full_names(text: str) -> str | None:
    m = _FULL_NAMES.match(text)
    return text[m.end() :].strip() if m else None


def _sentences(text: str) -> list[str]:
    """`text` cut after each full stop that does not end an initial; "?" and "!" stay with their sentence."""
    pieces, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        pieces.append(text[start : m.end() if m.group() in "?!" else m.start()])
        start = m.end()
    return [*pieces, text[start:]]


def _first_sentence(text: str) -> str:
    return _sentences(text)[0]


def _strip(text: str) -> str:
    return text.strip().strip(",.;: ").strip()


def _tidy(candidate: str) -> str:
    """A candidate without a trailing ", Journal 12, 345" or ", 2001"."""
    return _strip(_TRAILING_YEAR.sub("", _TRAILING_VENUE.sub("", _strip(candidate))))


def _titleish(title: str) -> str:
    """`title` if it can be a title at all (a word, not a year, venue or link), else ""."""
    if not re.search(r"[^\W\d_]{2,}", title) or _NOT_TITLE.match(title) or _VENUE.match(title):
        return ""
    return title if "://" not in title else ""


def _plausible(title: str) -> bool:
    words = re.findall(r"[^\W\d_]{3,}", title)
    digits = sum(c.isdigit() for c in title)
    return (
        len(words) >= 2
        and digits * 2 < sum(c.isalpha() for c in title)
        and "://" not in title
        and not _NOT_TITLE.match(title)
        and not _VENUE.match(title)
    )


def parse_latexml(html: str, origin: Origin) -> SectionMap | None:
    """The section map of a LaTeXML page, or None when the page is something else (ar5iv's abs redirect)."""
    tree = LexborHTMLParser(html)
    return _section_map(tree, origin) if is_latexml(tree) else None
