"""Paper pages in the shape of LaTeXML output (arxiv.org/html and ar5iv), from a paper's layout.

Element names and classes follow the real pages (see shared/fixtures/arxiv_html): `article.ltx_document`,
`section.ltx_section` with `h2.ltx_title_section`, `section.ltx_subsection` with `h3`, paragraphs
with `cite.ltx_cite > a.ltx_ref[href=#bib.bibN]`, and `ul.ltx_biblist > li.ltx_bibitem` with
`span.ltx_bibblock`s. A comment in the head says the page is simulated.

Pages are compact (a few KB) unless `size` asks for more: then every section carries extra paragraphs
of LaTeXML-style text and inline MathML (no citations, so the section map is the same) until the page
reaches about that many bytes, as real pages do (0.3 to 2.5 MB), so parsing costs what it costs.
"""

from __future__ import annotations

import re
from html import escape
from random import Random

from .corpus import Corpus, Paper
from .layout import BibItem, Layout, Section, layout_of

_WITH_CITES = (
    "Prior work on {t} includes {c}.",
    "Several methods have been proposed for this problem {c}.",
    "Our setting follows {c}.",
    "Related ideas appear in {c}.",
    "This line of work was extended by {c}.",
    "We compare against {c}.",
    "Strong results were reported by {c}.",
)
_PLAIN = (
    "We describe the main components below.",
    "The details are given in this section.",
    "This section summarises our findings.",
    "We now turn to the evaluation.",
)


_FILLER = (
    '<div id="{sid}.f{n}" class="ltx_para"><p id="{sid}.f{n}.1" class="ltx_p">Let '
    '<math id="{sid}.f{n}.m1" class="ltx_Math" alttext="x_{{i}}\\in\\mathbb{{R}}^{{d}}" display="inline">'
    "<semantics><mrow><msub><mi>x</mi><mi>i</mi></msub><mo>∈</mo><msup><mi>ℝ</mi><mi>d</mi></msup></mrow>"
    '<annotation encoding="application/x-tex">x_{{i}}\\in\\mathbb{{R}}^{{d}}</annotation></semantics></math> '
    'denote the <span class="ltx_text ltx_font_italic">i</span>-th input, and let the loss be the mean of '
    '<math id="{sid}.f{n}.m2" class="ltx_Math" alttext="\\ell(f(x_{{i}}),y_{{i}})" display="inline"><semantics>'
    "<mrow><mi>ℓ</mi><mo>(</mo><mi>f</mi><mo>(</mo><msub><mi>x</mi><mi>i</mi></msub><mo>)</mo><mo>,</mo>"
    "<msub><mi>y</mi><mi>i</mi></msub><mo>)</mo></mrow>"
    '<annotation encoding="application/x-tex">\\ell(f(x_{{i}}),y_{{i}})</annotation></semantics></math> over the '
    "training set. We keep the remaining quantities fixed throughout and report the averages over five runs, "
    "with the standard deviation across seeds, in the tables of this section.</p></div>"
)


def page(corpus: Corpus, paper: Paper, *, url: str, ar5iv: bool, size: int = 0) -> str:
    """The HTML of `paper` as served at `url` (`ar5iv` selects that site's head and title style), of about
    `size` bytes when that is more than the compact page."""
    layout = layout_of(corpus, paper)
    parts = sum(1 + len(s.children) for s in layout.sections) or 1
    filler = max(0, size // (parts * len(_FILLER)))
    rng = Random(f"text:{corpus.seed}:{paper.idx}")
    topic = corpus.topics[paper.topic]
    phrase = topic.alias if paper.hidden else topic.phrase
    title = escape(paper.title)
    site = "ar5iv" if ar5iv else "arxiv.org/html"
    out = [
        '<!DOCTYPE html><html lang="en">',
        "<head>",
        '<meta http-equiv="content-type" content="text/html; charset=UTF-8">',
        f"<title>{f'[{paper.arxiv_id}] ' if ar5iv else ''}{title}</title>",
        f"<!-- Simulated by pasa-mcp tools/world in the shape of a LaTeXML page on {site}; not from arXiv. -->",
        f'<meta property="og:url" content="{escape(url)}">',
        '<meta name="generator" content="pasa-mcp tools/world (simulation)">',
        "</head>",
        "<body>",
        '<div class="ltx_page_main">',
        '<div class="ltx_page_content">',
        '<article class="ltx_document ltx_authors_1line">',
        f'<h1 class="ltx_title ltx_title_document">{title}</h1>',
        '<div class="ltx_authors">',
    ]
    for i, name in enumerate(paper.authors):
        sep = '<span class="ltx_author_before">, </span>' if i else ""
        out.append(
            f'<span class="ltx_creator ltx_role_author">{sep}<span class="ltx_personname">{escape(name)}</span></span>'
        )
    out += [
        "</div>",
        '<div class="ltx_abstract">',
        '<h6 class="ltx_title ltx_title_abstract">Abstract</h6>',
        f'<p id="id1.id1" class="ltx_p">{escape(paper.abstract)}</p>',
        "</div>",
    ]
    unnumbered = 0
    for section in layout.sections:
        if section.kind == "acknowledgments":
            unnumbered += 1
            sid = f"Sx{unnumbered}"
        elif section.kind == "appendix":
            sid = "A1"
        else:
            sid = f"S{section.tag}"
        out += _section(section, sid, layout, rng, phrase, url, filler)
    out += _bibliography(layout)
    out += [
        "</article>",
        "</div>",
        '<footer class="ltx_page_footer">',
        '<div class="ltx_page_logo">Simulated page: pasa-mcp tools/world</div>',
        "</footer>",
        "</div>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out)


def _section(
    section: Section, sid: str, layout: Layout, rng: Random, phrase: str, url: str, filler: int = 0
) -> list[str]:
    level = {"subsection": "subsection", "appendix": "appendix"}.get(section.kind, "section")
    h = "h3" if level == "subsection" else "h2"
    tag = f"Appendix {section.tag} " if level == "appendix" else f"{section.tag} " if section.tag else ""
    tag_html = f'<span class="ltx_tag ltx_tag_{level}">{tag}</span>' if tag else ""
    out = [
        f'<section id="{sid}" class="ltx_{level}">',
        f'<{h} class="ltx_title ltx_title_{level}">{tag_html}{escape(section.title)}</{h}>',
    ]
    sentences = [rng.choice(_WITH_CITES).format(t=phrase, c=_cite(g, layout, url)) for g in section.groups]
    if not sentences:
        sentences = [rng.choice(_PLAIN)]
    for i in range(0, len(sentences), 3):
        n = i // 3 + 1
        out.append(f'<div id="{sid}.p{n}" class="ltx_para">')
        out.append(f'<p id="{sid}.p{n}.1" class="ltx_p">{" ".join(sentences[i : i + 3])}</p>')
        out.append("</div>")
    out += [_FILLER.format(sid=sid, n=n) for n in range(1, filler + 1)]
    for k, child in enumerate(section.children, 1):
        out += _section(child, f"{sid}.SS{k}", layout, rng, phrase, url, filler)
    out.append("</section>")
    return out


def _cite(group: list[int], layout: Layout, url: str) -> str:
    base = url if layout.absolute else ""
    if layout.numeric:
        links = ", ".join(f'<a href="{base}#bib.bib{n}" title="" class="ltx_ref">{n}</a>' for n in group)
        return f'<cite class="ltx_cite ltx_citemacro_cite">[{links}]</cite>'
    links = "; ".join(
        f'<a href="{base}#bib.bib{n}" title="" class="ltx_ref">{escape(layout.bib[n - 1].label)}</a>' for n in group
    )
    return f'<cite class="ltx_cite ltx_citemacro_citep">({links})</cite>'


def _bibliography(layout: Layout) -> list[str]:
    out = [
        '<section id="bib" class="ltx_bibliography">',
        '<h2 class="ltx_title ltx_title_bibliography">References</h2>',
        '<ul class="ltx_biblist">',
    ]
    for n, item in enumerate(layout.bib, 1):
        mark = f"[{n}]" if layout.numeric else item.label.replace(", ", " (", 1) + ")"
        out.append(f'<li id="bib.bib{n}" class="ltx_bibitem">')
        out.append(f'<span class="ltx_tag ltx_role_refnum ltx_tag_bibitem">{escape(mark)}</span>')
        blocks = [escape(block) for block in _blocks(item, layout.blocks)]
        if n % 2:  # LaTeXML links \doi{} and arXiv ids in some bibliography styles: half the entries here
            blocks = [_IDENTIFIER.sub(_link, block) for block in blocks]
        out += [f'<span class="ltx_bibblock">{block}</span>' for block in blocks]
        out.append("</li>")
    out += ["</ul>", "</section>"]
    return out


_IDENTIFIER = re.compile(r"(doi:)(10\.\d{4,9}/[^\s,]+)|(arXiv:)([\w.\-/]+?)(?=,|\s|$)")


def _link(m: re.Match[str]) -> str:
    if m.group(1):
        href, text = f"https://doi.org/{m.group(2)}", m.group(0)
    else:
        href, text = f"https://arxiv.org/abs/{m.group(4)}", m.group(0)
    return f'<a href="{href}" title="" class="ltx_ref ltx_href">{text}</a>'


def _blocks(item: BibItem, count: int) -> list[str]:
    title = item.title if item.title.endswith(("?", "!", ".")) else item.title + "."
    parts = [f"{item.authors}.", title, f"{item.venue}, {item.year}."]
    return parts if count == 3 else [" ".join(parts)]
