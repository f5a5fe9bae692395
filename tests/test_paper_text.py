"""Reading a recorded LaTeXML page (arXiv 1706.03762 via ar5iv): sections under the names get_paper
uses, math as TeX instead of MathML's three renderings, paragraphs and headings in order."""

from __future__ import annotations

from pasa_mcp.paper_text import parse_sections, render, top_level
from tests.conftest import FIXTURES


def page() -> str:
    return (FIXTURES / "arxiv_html" / "ar5iv_1706.03762_arXiv-html_feedback.html").read_text()


def test_sections_are_named_like_the_section_map_and_nest() -> None:
    sections = parse_sections(page())
    assert top_level(sections)[:4] == ["Abstract", "1 Introduction", "2 Background", "3 Model Architecture"]
    assert "3 Model Architecture 3.2 Attention" in sections and "3 Model Architecture 3.2 Attention" not in top_level(
        sections
    )
    whole = render(sections["3 Model Architecture"], markdown=True)
    sub = render(sections["3 Model Architecture 3.2 Attention"], markdown=True)
    assert whole.startswith("## 3 Model Architecture\n\n") and sub.startswith("### 3.2 Attention\n\n")
    assert sub in whole  # a section's text includes its subsections
    assert "#### 3.2.1 Scaled Dot-Product Attention" in sub


def test_math_reads_as_tex() -> None:
    text = render(parse_sections(page())["3 Model Architecture 3.2 Attention"], markdown=False)
    assert r"$$\mathrm{Attention}(Q,K,V)=\mathrm{softmax}(\frac{QK^{T}}{\sqrt{d_{k}}})V$$" in text
    assert "queries and keys of dimension $d_{k}$, and values of dimension $d_{v}$" in text
    assert "italic_" not in text and "𝑑" not in text  # no MathML presentation or content text
    assert "$$ (1)" in text and not text.startswith("#")
