"""A paper's text to read: the sections of its LaTeXML page (arxiv.org/html, then ar5iv) as blocks
of Markdown-ready text, math as its TeX source, kept in the store once fetched.

Section names are those `get_paper` lists (each h2 title, and "<h2 title> <h3 title>" for a
subsection), plus "Abstract" and every section a section map leaves out for lack of citations
(a conclusion, an appendix): a reader may want any of them. A section's text includes its
subsections, under their own headings.
"""

from __future__ import annotations

from typing import Literal

import anyio
from selectolax.lexbor import LexborHTMLParser, LexborNode

from .config import Settings
from .net import Net, SourceRejected
from .papers import Paper
from .store import Store

Kind = Literal["h2", "h3", "h4", "p", "math", "caption"]
Block = tuple[Kind, str]
Sections = dict[str, list[Block]]
ABSTRACT = "Abstract"
_BLOCKS = (
    "h3, h4, .ltx_para > p, .ltx_para > table.ltx_equation, .ltx_para > table.ltx_equationgroup, figcaption,"
    " li.ltx_bibitem"
)
_TAGS = {"h3": "h3", "h4": "h4", "p": "p", "li": "p", "table": "math", "figcaption": "caption"}


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


def parse_sections(html: str) -> Sections:
    """The readable sections of a LaTeXML page; empty for a page that is not LaTeXML or has no text."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(["annotation", "annotation-xml"])
    for note in tree.css(".ltx_note, .ltx_role_footnote"):
        note.decompose()
    body = tree.body
    if body is not None:
        _with_tex(body)
    sections: Sections = {}
    if abstract := tree.css_first(".ltx_abstract"):
        paragraphs = [b for p in abstract.css("p") if (b := _block(p))]
        if paragraphs:
            sections[ABSTRACT] = [("h2", ABSTRACT), *paragraphs]
    for h2 in tree.css("section > h2"):
        section, title = h2.parent, _clean(h2.text(separator=""))
        if section is None or not title:
            continue
        blocks: list[Block] = [("h2", title)]
        for node in section.css(_BLOCKS):
            if (block := _block(node)) is not None:
                blocks.append(block)
        sections[title] = blocks
        for h3 in section.css("section > h3"):
            subtitle = _clean(h3.text(separator=""))
            if subtitle and h3.parent is not None:
                sections[f"{title} {subtitle}"] = [b for n in h3.parent.css(_BLOCKS) if (b := _block(n))]
    return sections


def top_level(sections: Sections) -> list[str]:
    """The sections that are not subsections (each includes its subsections): what reading "all" reads."""
    return [name for name, blocks in sections.items() if blocks and blocks[0][0] == "h2"]


def render(blocks: list[Block], markdown: bool) -> str:
    """Blocks as Markdown (headings, italic captions, displayed math) or as plain text with the same math."""
    lines = []
    for kind, text in blocks:
        if kind in ("h2", "h3", "h4"):
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
