"""LaTeXML pages (arxiv.org/html, ar5iv) as section maps: which references each section cites.

The crawler was trained on maps built from arXiv's LaTeXML HTML, so the keys follow that recipe:
every h2 section title, and "<h2 title> <h3 title>" for each subsection. Where the recipe was loose
or wrong, this module decides as follows (and tests hold it to that):

- A citation counts for every section that contains it: one in "3.2 Attention" counts for
  "3 Model Architecture 3.2 Attention" and for "3 Model Architecture" too, because the section's
  text includes its subsections (expanding a section should follow all of it). "Own text" in the
  protocol is the heading's own text: an h2 whose title is empty gives no key. h4 and deeper have no
  keys; their citations count for the h3 and h2 around them.
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
    "Origin",
    "is_latexml",
    "parse_latexml",
    "parse_page",
    "parse_section_map",
    "reference_title",
]

Origin = Literal["arxiv_html", "ar5iv"]
MAIN_TEXT = "Main Text"

_LATEXML = '.ltx_document, .ltx_page_main, meta[name="generator"][content^="LaTeXML"]'
_SKIP = re.compile(r"\b(?:references|acknowledge?ments?|about this document|appendix|appendices)\b", re.I)
_SKIP_CLASSES = ("ltx_bibliography", "ltx_appendix")
_APPENDIX_ID = re.compile(r"A\d+(?:\.|$)")  # LaTeXML numbers appendix parts A1, A1.SS2, ... (sections are S1)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
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
        return SectionMap(origin=origin, warnings=["empty page"])
    return _section_map(LexborHTMLParser(html), origin)


def _section_map(tree: LexborHTMLParser, origin: Origin) -> SectionMap:
    warnings = []
    if not is_latexml(tree):
        warnings.append("not a LaTeXML page (no ltx_document or ltx_page_main)")
    tree.strip_tags(["annotation", "annotation-xml"])
    for note in tree.css(", ".join(f"{h} .ltx_note" for h in _HEADINGS)):
        note.decompose()
    bibliography = _bibliography(tree)

    cited = _cited(tree.css("cite a[href]"))
    missing = Counter(ident for ident in cited if ident not in bibliography)
    if not cited:
        warnings.append("no citations found (no ltx_cite links to #bib.* entries)")
    elif missing:
        warnings.append(
            f"{sum(missing.values())} citations point at {len(missing)} bibliography entries missing from the page"
            " (damaged or truncated HTML)"
        )

    if groups := list(_keyed_sections(tree)):
        named = [(key, _cited(node.css("cite a[href]"))) for key, node in groups]
    else:
        named = [(MAIN_TEXT, _cited(a for a in tree.css("cite a[href]") if not _in_skipped(a)))]

    sections: dict[str, list[Reference]] = {}
    for key, idents in named:
        refs = sections.setdefault(key, [])
        seen = {ref.title for ref in refs}
        for ident in dict.fromkeys(idents):
            ref = bibliography.get(ident)
            if ref is not None and ref.title not in seen:
                seen.add(ref.title)
                refs.append(ref)
    return SectionMap(origin=origin, sections={k: v for k, v in sections.items() if v}, warnings=warnings)


def _cited(anchors: Iterable[LexborNode]) -> list[str]:
    """The bibliography ids that citation links target: `#bib.bib3` or `https://arxiv.org/html/ID#bib.bib3`."""
    fragments = ((a.attributes.get("href") or "").partition("#")[2] for a in anchors)
    return [f for f in fragments if f.startswith("bib.")]


def _heading(section: LexborNode) -> LexborNode | None:
    for child in section.iter():
        if child.tag in _HEADINGS:
            return child
    return None


def _title(heading: LexborNode) -> str:
    return _clean(heading.text(separator=""))


def _skipped(section: LexborNode) -> bool:
    classes = (section.attributes.get("class") or "").split()
    if any(c in classes for c in _SKIP_CLASSES) or _APPENDIX_ID.match(section.attributes.get("id") or ""):
        return True
    heading = _heading(section)
    return heading is not None and bool(_SKIP.search(_title(heading)))


def _keyed_sections(tree: LexborHTMLParser) -> Iterator[tuple[str, LexborNode]]:
    """(key, section element) in document order: each h2 section, then its h3 subsections."""
    for h2 in tree.css("section > h2"):
        section = h2.parent
        title = _title(h2)
        if section is None or not title or _skipped(section):
            continue
        yield title, section
        for h3 in section.css("section > h3"):
            subtitle = _title(h3)
            key = f"{title} {subtitle}"
            if subtitle and h3.parent is not None and not _SKIP.search(key):
                yield key, h3.parent


def _in_skipped(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "section" and _skipped(parent):
            return True
        parent = parent.parent
    return False


# Bibliography entries -----------------------------------------------------------------------


def _bibliography(tree: LexborHTMLParser) -> dict[str, Reference]:
    """Every `li.ltx_bibitem` by id, with or without the `ul.ltx_biblist` around it (damaged pages)."""
    entries: dict[str, Reference] = {}
    for item in tree.css("li.ltx_bibitem"):
        ident = item.attributes.get("id")
        if ident and ident not in entries:
            entries[ident] = _reference(item)
    return entries


def _reference(item: LexborNode) -> Reference:
    """One entry: its text without the label, its title, and the arXiv id and DOI it names.

    An entry without a recognisable title (most physics and astronomy styles) keeps its whole text
    as title, so it stays readable and distinct from its neighbours; its DOI is what resolves it.
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
    return Reference(
        title=reference_title(blocks, emphasized) or text,
        text=text,
        arxiv_id=_arxiv_id(text, links, doi),
        doi=doi,
    )


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
_QUOTED = re.compile(r"[“\"]([^”\"]{8,}?)[”\"]")
_PAREN_YEAR = re.compile(rf"^(?P<who>[^()\d]{{2,400}}?)[\s,.]*\({_YEAR}\)[.,:]?\s+(?P<rest>.+)$")
_BARE_YEAR = re.compile(rf"^(?P<who>[^()\d]{{2,400}}?)[,.]\s*{_YEAR}[.,:]\s+(?P<rest>.+)$")
_COLON = re.compile(r"^(?P<who>[^:\d]{2,400}?\b[A-Z]\.):\s+(?P<rest>.+)$")
_INITIALS = r"[A-Z][a-z]?\.(?:\s?-?\s?[A-Z][a-z]?\.)*"
_PARTICLES = r"(?:(?:de|da|del|der|den|di|du|dos|la|le|van|von|ter)\s+)*"
_SURNAME = r"[A-Z][\w'’\-]+(?:\s+[A-Z][\w'’\-]+)?"
_NAME_ITEM = re.compile(rf"\s*(?:and\s+)?(?:{_INITIALS}\s+{_PARTICLES}{_SURNAME}|et\s+al\.)\s*(?:,|\s+and\b)")
_SENTENCE_END = re.compile(r"(?<![\s.\-][A-Z])(?<!^[A-Z])\.(?=\s|$)|[?!](?=\s|$)")
_TRAILING_YEAR = re.compile(rf"(?:[,.]\s*|\s*\(){_YEAR}(?:[–-](?:\d{{4}})?)?\)?[.,]?$")
_TRAILING_PUBLISHER = re.compile(rf"\s*\([^()]*{_YEAR}\)\.?$")
_VOLUME_PAGE = r"\s\d+[A-Z]?(?:\(\d+\))?\s*[,:]\s*[A-Z]?\d+"  # " 518, 179", " 31(3):264", " 104, L201109"
_VENUE = re.compile(rf"^[^\d,]+?{_VOLUME_PAGE}\b")
_TRAILING_VENUE = re.compile(rf",\s+[^\d,]+?{_VOLUME_PAGE}\S*$")
_NOT_TITLE = re.compile(r"^(?:arxiv|in[\s:]|proc\b|proceedings|preprint|e-print|doi|https?:|vol\.|pp\.)", re.I)


def reference_title(blocks: Sequence[str], emphasized: Sequence[str] = ()) -> str:
    """The title of a bibliography entry, or "" when none can be told apart from authors and venue.

    `blocks` are the entry's `ltx_bibblock` texts; `emphasized` its italic texts. In order:
    1. three blocks (LaTeXML's authors / title / venue): the second, as upstream;
    2. other multi-block entries: the second block (the third if the second is a year), its first
       sentence without a trailing year;
    3. a quoted title (IEEE `A. Author, “Title,” in Venue`, ACM, APS with titles);
    4. author-year styles: what follows "Authors (1999)", "Authors, 1995," or "Authors. 2020.";
    5. LNCS "Author, A., Author, B.: Title. In: ...";
    6. an author list of initials and surnames (IEEE, APS): what follows it, an italic book title
       if it starts there, cut before ", in", a journal-volume-page tail or a (publisher, year);
    7. the sentence after the authors (natbib "Authors. Title. Venue."), like upstream's split.
    A candidate must look like a title (two words of three letters or more, not mostly digits, not
    a venue such as "arXiv preprint"); else the next rule is tried. Title-less physics and astronomy
    entries ("S. Sachdev, Rev. Mod. Phys. 75, 913 (2003).") give "".
    """
    if len(blocks) == 3 and (title := _strip(blocks[1])):
        return title
    if len(blocks) >= 2:
        block = blocks[2] if re.fullmatch(rf"\(?{_YEAR}\)?\.?", blocks[1]) and len(blocks) > 2 else blocks[1]
        if _plausible(title := _tidy(_first_sentence(block))):
            return title
    for candidate in _candidates(" ".join(blocks), emphasized):
        if _plausible(title := _tidy(candidate)):
            return title
    return ""


def _candidates(text: str, emphasized: Sequence[str]) -> Iterator[str]:
    if m := _QUOTED.search(text):
        yield m.group(1)
    for pattern in (_PAREN_YEAR, _BARE_YEAR, _COLON):
        if m := pattern.match(text):
            yield _first_sentence(m.group("rest"))
    if rest := _after_initials(text):
        for italic in emphasized:
            if italic and rest.startswith(italic) and not rest[len(italic) :].lstrip()[:1].isdigit():
                yield italic  # an IEEE book title; an italic journal name is followed by its volume
        rest = re.split(r",\s+[Ii]n\s", _TRAILING_PUBLISHER.sub("", rest), maxsplit=1)[0]
        if not _VENUE.match(rest):
            yield _first_sentence(rest)
    for sentence in _sentences(text)[1:3]:
        if not re.fullmatch(rf"\s*\(?{_YEAR}\)?\s*", sentence):
            yield sentence
            break


def _after_initials(text: str) -> str | None:
    """What follows a leading list of "J. R. Name" authors, or None when the entry starts otherwise."""
    pos = count = 0
    while m := _NAME_ITEM.match(text, pos):
        pos, count = m.end(), count + 1
    return text[pos:].strip() if count else None


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
