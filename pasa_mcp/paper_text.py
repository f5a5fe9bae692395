"""A paper's text to read: the sections of its LaTeXML page (arxiv.org/html, then ar5iv) as blocks
of Markdown-ready text, math as its TeX source, kept in the store once fetched.

Section names are those `get_paper` lists (the sectioning units of latexml.py: each section's
title, and "<section> <unit>" for the units one level below it), plus "Abstract" and every section
a section map leaves out for lack of citations (a conclusion, an appendix): a reader may want any
of them. A section's text includes its subsections, under their own headings.
"""

from __future__ import annotations

from typing import Literal

import anyio
from selectolax.lexbor import LexborHTMLParser, LexborNode

from .config import Settings
from .net import Net, SourceRejected
from .papers import Paper
from .store import Store

Kind = Literal["h2", "h3", "h4", "h5", "h6", "p", "math", "caption"]
Block = tuple[Kind, str]
Sections = dict[str, list[Block]]
ABSTRACT = "Abstract"
_TAGS = {"p": "p", "li": "p", "table": "math", "figcaption": "caption"}


def _clean(text: str) -> str:
    return " ".join(text.split())


def _with_tex(node: LexborNode) -> None:
    """Every formula in `node` replaced by its TeX source ($...$ inline, $$...$$ displayed)."""
    for math in node.css("math"):
        tex = _clean(math.attributes.get("alttext") or "")
        math.replace_with(f"$${tex}$$" if math.attributes.get("display") == "block" else f"${tex}$")


def _block(node: LexborNode) -> Block | None:
    kind = _TAGS.get(node.tag)
    if kind is None:
        return None
    if kind == "math":
        # The formula, then its number: "(1)" sits before it in the table. The tree is read twice
        # (a section and its subsection), so it is read here without being changed.
        tags = [tag for t in node.css(".ltx_tag_equation") if (tag := _clean(t.text()))]
        text = _clean(node.text(separator=" "))
        for tag in tags:
            text = text.replace(tag, "", 1).strip()
        return ("math", f"{text} {' '.join(tags)}".strip()) if text else None
    text = _clean(node.text(separator=""))
    return (kind, text) if text else None  # type: ignore[return-value]


# Units as latexml.py tells them, by LaTeXML's classes: tags vary (section or div, h2 or h1).
_TOP = ("ltx_chapter", "ltx_section")
_UNITS = (*_TOP, "ltx_subsection", "ltx_subsubsection", "ltx_paragraph", "ltx_subparagraph")
_TOP_SELECTOR = ", ".join(f".{c}" for c in _TOP)
_UNIT_SELECTOR = ", ".join(f".{c}" for c in _UNITS)
_TEXT = (
    '[class*="ltx_title"], .ltx_para > p, .ltx_para > table.ltx_equation, .ltx_para > table.ltx_equationgroup,'
    " figcaption, li.ltx_bibitem"
)


def _classes(node: LexborNode) -> list[str]:
    return (node.attributes.get("class") or "").split()


def _is_unit(node: LexborNode) -> bool:
    return any(c in _UNITS for c in _classes(node))


def _is_title(node: LexborNode) -> bool:
    return any(c == "ltx_title" or c.startswith("ltx_title_") for c in _classes(node))


def _unit_above(node: LexborNode) -> LexborNode | None:
    current = node.parent
    while current is not None and current.is_element_node:
        if _is_unit(current):
            return current
        current = current.parent
    return None


def _title(unit: LexborNode) -> str:
    heading = next((child for child in unit.iter() if _is_title(child)), None)
    return _clean(heading.text(separator="")) if heading is not None else ""


def _levels_below(node: LexborNode, unit: LexborNode) -> int:
    """How many units lie between `node`'s own unit and `unit` (0 when they are the same)."""
    levels, current = 0, node
    while current is not None and current.mem_id != unit.mem_id:
        levels += 1
        current = _unit_above(current)
    return levels


def _unit_blocks(unit: LexborNode, level: int) -> list[Block]:
    """A unit's text in document order, its own heading and its subunits' headings one level down each."""
    blocks: list[Block] = []
    for node in unit.css(_TEXT):
        if _is_title(node):
            owner = node.parent
            if owner is not None and _is_unit(owner) and (text := _clean(node.text(separator=""))):
                depth = level + _levels_below(owner, unit)
                blocks.append((f"h{min(depth, 6)}", text))  # type: ignore[arg-type]
        elif (block := _block(node)) is not None:
            blocks.append(block)
    return blocks


def parse_sections(html: str) -> Sections:
    """The readable sections of a LaTeXML page; empty for a page that is not LaTeXML or has no text."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(["annotation", "annotation-xml"])
    for note in tree.css(".ltx_note, .ltx_role_footnote"):
        note.decompose()
    if tree.body is not None:
        _with_tex(tree.body)
    sections: Sections = {}
    if abstract := tree.css_first(".ltx_abstract"):
        paragraphs = [b for p in abstract.css("p") if (b := _block(p))]
        if paragraphs:
            sections[ABSTRACT] = [("h2", ABSTRACT), *paragraphs]
    for top in tree.css(_TOP_SELECTOR):
        if _unit_above(top) is not None or not (title := _title(top)):
            continue  # a section inside a chapter is read with its chapter
        sections[title] = _unit_blocks(top, 2)
        for unit in top.css(_UNIT_SELECTOR):
            above = _unit_above(unit)
            if above is not None and above.mem_id == top.mem_id and (subtitle := _title(unit)):
                sections[f"{title} {subtitle}"] = _unit_blocks(unit, 3)
    return sections


def top_level(sections: Sections) -> list[str]:
    """The sections that are not subsections (each includes its subsections): what reading "all" reads."""
    return [name for name, blocks in sections.items() if blocks and blocks[0][0] == "h2"]


def render(blocks: list[Block], markdown: bool) -> str:
    """Blocks as Markdown (headings, italic captions, displayed math) or as plain text with the same math."""
    lines = []
    for kind, text in blocks:
        if kind[0] == "h":
            lines.append(("#" * int(kind[1]) + " " if markdown else "") + text)
        elif kind == "math":
            lines.append(text if text.startswith("$$") else f"$${text}$$")
        elif kind == "caption":
            lines.append(f"*{text}*" if markdown else text)
        else:
            lines.append(text)
    return "\n\n".join(lines)


class PaperText:
    """Readable full texts: the store first, then arXiv's LaTeXML HTML."""

    def __init__(self, net: Net, settings: Settings, store: Store) -> None:
        self.net, self.settings, self.store = net, settings, store

    async def sections(self, paper: Paper) -> tuple[str, Sections] | None:
        """(origin, sections) of the paper's HTML full text; None when arXiv has none for it."""
        cached = await self.store.call(self.store.get_full_text, paper.key)
        if cached is not None:
            return cached
        if not paper.arxiv_id:
            return None
        sites = [("arxiv_html", self.settings.arxiv_html_url), ("ar5iv", self.settings.ar5iv_url)]
        for host, base in sites:
            try:
                response = await self.net.request(host, "GET", f"{base.rstrip('/')}/{paper.arxiv_id}")
            except SourceRejected as exc:
                if exc.status in (404, 410):
                    continue
                raise
            # Parsing a large page takes tens of milliseconds: keep it off the event loop.
            if found := await anyio.to_thread.run_sync(parse_sections, response.text):
                await self.store.call(self.store.put_full_text, paper.key, host, found)
                return host, found
        return None
