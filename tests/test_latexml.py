"""Section maps from every recorded LaTeXML page in shared/fixtures/arxiv_html, plus synthetic edge cases."""

from __future__ import annotations

import re
import time

import pytest
from conftest import fixture_text

from pasa_mcp.latexml import MAIN_TEXT, is_latexml, parse_page, parse_section_map, reference_title
from pasa_mcp.papers import SectionMap

ATTENTION = "ar5iv_1706.03762_arXiv-html_feedback.html"
PRETTIFIED = "ar5iv_1808.08002_prettified_arXiv-html_feedback.html"
TRUNCATED = "ar5iv_1904.07818_zzhilin-Ar5iv-ReportFunction_TRUNCATED.html"
ASTRO = "latexml_AstroML-Zhoolideh-Haghighi_arXiv-view-as-html_temp.html"
LETTER = "latexml_SSH-superconductivity_arXiv-view-as-html_updated_sample.html"
PAGES = [ATTENTION, PRETTIFIED, TRUNCATED, ASTRO, LETTER]


def page(name: str) -> SectionMap:
    return parse_page(fixture_text("arxiv_html", name), "ar5iv")


def by_title(section_map: SectionMap, key: str) -> dict[str, object]:
    return {ref.title: ref for ref in section_map.sections[key]}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_gives_clean_keys_without_skipped_sections_or_empty_values(name: str) -> None:
    section_map = page(name)
    assert section_map.sections
    for key, refs in section_map.sections.items():
        assert key == " ".join(key.split()) and key, f"unclean key {key!r}"
        assert not re.search(r"references|acknowledg|appendix|about this document", key, re.I)
        assert refs, f"{key} cites nothing but was kept"
        titles = [ref.title for ref in refs]
        assert len(titles) == len(set(titles)), f"repeated titles in {key}"
        assert all(ref.text and "\n" not in ref.text for ref in refs)


# The keys of the 1706.03762 page, in page order, as in the crawler's training data (PROTOCOL section 3):
# "5 Training" and "6 Results" cite nothing in their own text, so only their subsections have keys;
# 3.3, 5.2, 7 Conclusion and the appendix-like "Attention Visualizations" cite nothing.
ATTENTION_SECTIONS = [
    "1 Introduction",
    "2 Background",
    "3 Model Architecture",
    "3 Model Architecture 3.1 Encoder and Decoder Stacks",
    "3 Model Architecture 3.2 Attention",
    "3 Model Architecture 3.4 Embeddings and Softmax",
    "3 Model Architecture 3.5 Positional Encoding",
    "4 Why Self-Attention",
    "5 Training 5.1 Training Data and Batching",
    "5 Training 5.3 Optimizer",
    "5 Training 5.4 Regularization",
    "6 Results 6.1 Machine Translation",
    "6 Results 6.2 Model Variations",
    "6 Results 6.3 English Constituency Parsing",
]


def test_attention_is_all_you_need_sections_and_citations() -> None:
    section_map = page(ATTENTION)
    assert section_map.warnings == []
    assert list(section_map.sections) == ATTENTION_SECTIONS
    titles = section_map.titles()
    # First-citation order: hochreiter1997, then gruEval14, then sutskever14 ...
    assert titles["1 Introduction"][:3] == [
        "Long short-term memory",
        "Empirical evaluation of gated recurrent neural networks on sequence modeling",
        "Sequence to sequence learning with neural networks",
    ]
    assert "Long short-term memory" not in titles["2 Background"]
    assert titles["5 Training 5.3 Optimizer"] == ["Adam: A method for stochastic optimization"]
    # The top-level key holds only the section's own text, before 3.1: one group of three ids (every
    # id counts, where the training data kept the first) and one single citation.
    assert titles["3 Model Architecture"] == [
        "Learning phrase representations using rnn encoder-decoder for statistical machine translation",
        "Neural machine translation by jointly learning to align and translate",
        "Sequence to sequence learning with neural networks",
        "Generating sequences with recurrent neural networks",
    ]
    # 3.2's citations all sit in its h4 subsubsections (3.2.1, 3.2.3): the h3 key includes them.
    assert titles["3 Model Architecture 3.2 Attention"] == [
        "Neural machine translation by jointly learning to align and translate",
        "Massive exploration of neural machine translation architectures",
        "Google’s neural machine translation system: Bridging the gap between human and machine translation",
        "Convolutional sequence to sequence learning",
    ]
    # 5.4's citations sit in its paragraphs ("Residual Dropout", "Label Smoothing"): counted for 5.4.
    assert "Rethinking the inception architecture for computer vision" in titles["5 Training 5.4 Regularization"]
    # "Layer normalization" is cited only in 3.1: its section's own text does not hold it.
    assert "Layer normalization" in titles["3 Model Architecture 3.1 Encoder and Decoder Stacks"]
    assert "Layer normalization" not in titles["3 Model Architecture"]
    # The two-block entry (no venue block) still gives its title, without the year.
    assert (
        "Gradient flow in recurrent nets: the difficulty of learning long-term dependencies"
        in titles["4 Why Self-Attention"]
    )


def test_attention_references_keep_text_and_arxiv_ids() -> None:
    refs = by_title(page(ATTENTION), "3 Model Architecture 3.1 Encoder and Decoder Stacks")
    layer_norm = refs["Layer normalization"]
    assert layer_norm.arxiv_id == "1607.06450"  # "arXiv preprint arXiv:1607.06450"
    assert layer_norm.text.startswith("Jimmy Lei Ba, Jamie Ryan Kiros, and Geoffrey E Hinton. Layer normalization.")
    assert refs["Deep residual learning for image recognition"].arxiv_id is None
    bahdanau = by_title(page(ATTENTION), "3 Model Architecture")[
        "Neural machine translation by jointly learning to align and translate"
    ]
    assert bahdanau.arxiv_id == "1409.0473"  # DBLP's "CoRR, abs/1409.0473"


def test_parse_section_map_is_the_titles_of_parse_page() -> None:
    html = fixture_text("arxiv_html", ATTENTION)
    assert parse_section_map(html) == parse_page(html).titles()


def test_prettified_page_gives_the_names_a_normal_page_would() -> None:
    html = fixture_text("arxiv_html", PRETTIFIED)
    started = time.perf_counter()
    section_map = parse_page(html, "ar5iv")
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"2.5 MB page took {elapsed:.2f} s"
    assert list(section_map.sections) == [
        "I Introduction",
        "II Polynomial Chaos Expansions",
        "II Polynomial Chaos Expansions II-A Spectral Decomposition and The Wiener-Askey Scheme",
        "II Polynomial Chaos Expansions II-B Expansion of Stochastic Differential Nonlinear Equations",
        "III Control Design III-A Stability of Stochastic Dynamical Systems",
        "III Control Design III-B Optimal Control Design",
        "III Control Design III-C Nonlinear Suboptimal Control",
        "III Control Design III-D Implementation",
        "IV Aircraft Model",
    ]
    intro = by_title(section_map, "I Introduction")
    tol = intro[
        "Multivariate spline-based adaptive control of high-performance aircraft with aerodynamic uncertainties"
    ]
    # The whole IEEE entry, with the prettifier's " ," gone.
    assert tol.text == (
        "H. J. Tol, C. C. de Visser, L. G. Sun, E. van Kampen, and Q. P. Chu, “Multivariate spline-based adaptive"
        " control of high-performance aircraft with aerodynamic uncertainties,” Journal of Guidance and Control,"
        " vol. 39, no. 4, pp. 781–800, Jan. 2016."
    )
    # MathML in a title reads as its visible symbols, not as TeX source plus annotations.
    assert "Robust h ∞ autopilot design for agile missile with time-varying parameters" in intro
    aircraft = section_map.titles()["IV Aircraft Model"]
    assert "Fundamentals of Aerodynamics" in aircraft  # IEEE book: the italic title, no quotes
    assert "On nonlinear dynamics and an optimal control design to a longitudinal flight" in aircraft


def test_truncated_page_gives_a_partial_map_and_says_what_is_missing() -> None:
    section_map = page(TRUNCATED)
    # Section 4's four citations all point at entries the damage removed, so it has nothing to offer.
    assert list(section_map.sections) == [
        "1 Introduction",
        "2 The OneMax Problem",
        "3 Elitist (1+1) Unbiased Algorithms",
    ]
    assert section_map.warnings == [
        "49 citations point at 25 bibliography entries missing from the page (damaged or truncated HTML)"
    ]
    titles = section_map.titles()
    assert "Parameter control in evolutionary algorithms: Trends and challenges" in titles["1 Introduction"]
    assert titles["3 Elitist (1+1) Unbiased Algorithms"] == [
        "Interpolating local and global search by controlling the variance of standard bit mutation"
    ]


def test_author_year_page_sections_and_titles() -> None:
    section_map = page(ASTRO)
    keys = list(section_map.sections)
    assert len(keys) == 9
    assert keys[:2] == ["1 Introduction", "2 Review; Popular Classification Algorithms 2.1 Linear regression"]
    assert keys[-1] == "3 Data"  # 4 Classification metrics, 5 Results, 6 Summary cite nothing
    titles = section_map.titles()
    assert titles["1 Introduction"][:2] == ["Data clustering: a review", "A review of machine learning"]
    assert titles["2 Review; Popular Classification Algorithms 2.4 Support Vector Machines (SVMs)"] == [
        "The Nature of Statistical Learning Theory"
    ]
    assert titles["3 Data"] == ["The selection of RR Lyrae stars using single-epoch data"]
    # An astronomy entry has no title: the whole entry stands in, and its DOI is kept for resolution.
    (efron,) = section_map.sections["2 Review; Popular Classification Algorithms 2.1 Linear regression"]
    assert efron.title == efron.text == "Efron B., Tibshirani R., 1991, Sci, 253, 390. doi:10.1126/science.253.5018.390"
    assert efron.doi == "10.1126/science.253.5018.390"


def test_letter_without_sections_is_one_main_text_section_without_the_appendix() -> None:
    section_map = page(LETTER)
    assert list(section_map.sections) == [MAIN_TEXT]
    refs = section_map.sections[MAIN_TEXT]
    assert len(refs) == 83  # of 86 entries, three are cited only in the appendix
    texts = [ref.text for ref in refs]
    assert texts[0] == "B. Keimer, S. A. Kivelson, M. R. Norman, S. Uchida, and J. Zaanen, Nature 518, 179 (2015)."
    assert refs[0].doi == "10.1038/nature14165"  # from the entry's doi.org link
    assert not any("Phys. Rev. Lett. 68, 2830" in text for text in texts)  # appendix-only citation
    assert "Theory of Superconductivity" in [ref.title for ref in refs]
    wang = next(ref for ref in refs if "arXiv:2211.02031" in ref.text)
    assert (wang.arxiv_id, wang.doi) == ("2211.02031", "10.48550/arxiv.2211.02031")


def latexml(body: str) -> str:
    return f'<html><body><div class="ltx_page_main"><article class="ltx_document">{body}</article></div></body></html>'


BIB = """<section class="ltx_bibliography" id="bib"><h2 class="ltx_title">References</h2><ul class="ltx_biblist">
<li class="ltx_bibitem" id="bib.bib1"><span class="ltx_tag">[1]</span><span class="ltx_bibblock">A. One.</span>
  <span class="ltx_bibblock">First cited work.</span><span class="ltx_bibblock">Venue, 2020.</span></li>
<li class="ltx_bibitem" id="bib.bib2"><span class="ltx_bibblock">B. Two.</span>
  <span class="ltx_bibblock">Second cited work.</span><span class="ltx_bibblock">Venue, 2021.</span></li>
<li class="ltx_bibitem" id="bib.bib3"><span class="ltx_bibblock">C. Three.</span>
  <span class="ltx_bibblock">Third cited work.</span><span class="ltx_bibblock">Venue, 2022.</span></li>
</ul></section>"""


def section(ident: str, title: str, body: str, level: str = "h2", cls: str = "ltx_section") -> str:
    return f'<section id="{ident}" class="{cls}"><{level} class="ltx_title">{title}</{level}>{body}</section>'


def cite(href: str) -> str:
    return f'<cite class="ltx_cite">[<a class="ltx_ref" href="{href}">n</a>]</cite>'


def test_absolute_and_relative_bib_links_both_count() -> None:
    html = latexml(
        section(
            "S1",
            "1 Intro",
            f"<p>As shown {cite('https://arxiv.org/html/2401.01234v2#bib.bib2')}"
            f" and {cite('#bib.bib1')}, again {cite('#bib.bib2')}.</p>",
        )
        + BIB
    )
    assert parse_section_map(html) == {"1 Intro": ["Second cited work", "First cited work"]}


def test_skip_rules_match_whole_words_and_appendix_keys() -> None:
    html = latexml(
        section("S1", "1 Learning from Human Preferences", f"<p>{cite('#bib.bib1')}</p>")
        + section(
            "S2",
            "2 Method",
            f"<p>{cite('#bib.bib2')}</p>"
            + section("S2.SS1", "2.1 Prior references", f"<p>{cite('#bib.bib3')}</p>", "h3", "ltx_subsection"),
        )
        + section("Sx1", "Acknowledgements", f"<p>{cite('#bib.bib1')}</p>")
        + section("Sx2", "About this document", f"<p>{cite('#bib.bib1')}</p>")
        + section("Sx3", "Appendix B Proofs", f"<p>{cite('#bib.bib1')}</p>")
        + section("A1", "A More experiments", f"<p>{cite('#bib.bib1')}</p>", cls="ltx_appendix")
        + section("S3", "<span> </span>", f"<p>{cite('#bib.bib1')}</p>")
        + BIB
    )
    assert parse_section_map(html) == {
        "1 Learning from Human Preferences": ["First cited work"],
        "2 Method": ["Second cited work"],  # the skipped subsection's citations go nowhere
    }


def test_training_format_top_key_has_own_text_only_and_any_unit_below_nests_as_a_subsection() -> None:
    deep = section("S1.SS1.SSS1", "1.1.1 Deeper", f"<p>{cite('#bib.bib3')}</p>", "h4", "ltx_subsubsection")
    html = latexml(
        section(
            "S1",
            "1 Method",
            f"<p>Own text {cite('#bib.bib1')}.</p>"
            + section("S1.SS1", "1.1 Part", f"<p>{cite('#bib.bib2')}</p>{deep}", "h3", "ltx_subsection"),
        )
        + section(
            "S2",
            "2 Results",
            "<p>No citation in the own text.</p>"
            + section("S2.SS1", "2.1 Main", f"<p>{cite('#bib.bib1')}</p>", "h3", "ltx_subsection"),
        )
        + section(
            "S3",
            "3 Discussion",
            section("S3.P1", "Limits.", f"<p>{cite('#bib.bib2')}</p>", "h5", "ltx_paragraph")
            + section("S3.P2", "Outlook.", f"<p>{cite('#bib.bib3')}</p>", "h5", "ltx_paragraph"),
        )
        + BIB
    )
    assert parse_section_map(html) == {
        "1 Method": ["First cited work"],
        "1 Method 1.1 Part": ["Second cited work", "Third cited work"],
        "2 Results 2.1 Main": ["First cited work"],
        "3 Discussion Limits.": ["Second cited work"],
        "3 Discussion Outlook.": ["Third cited work"],
    }


def test_appendix_subsections_are_not_sections_of_their_own() -> None:
    appendix = section(
        "A1",
        "Appendix A Proofs",
        section("A1.SS1", "A.1 Lemma", f"<p>{cite('#bib.bib2')}</p>", "h3", "ltx_subsection"),
        cls="ltx_appendix",
    )
    html = latexml(section("S1", "1 Intro", f"<p>{cite('#bib.bib1')}</p>") + appendix + BIB)
    assert parse_section_map(html) == {"1 Intro": ["First cited work"]}


def older_unit(tag: str, ident: str, unit: str, title: str, body: str) -> str:
    """Older LaTeXML: every title is an h1, told apart only by its ltx_title_<unit> class."""
    return f'<{tag} id="{ident}" class="ltx_{unit}"><h1 class="ltx_title ltx_title_{unit}">{title}</h1>{body}</{tag}>'


@pytest.mark.parametrize("tag", ["section", "div"])  # div: the XHTML output
def test_older_latexml_headings_are_recognised_by_their_classes(tag: str) -> None:
    para = older_unit(tag, "S2.SS1.P1", "paragraph", "Detail.", f"<p>{cite('#bib.bib3')}</p>")
    sub = older_unit(tag, "S2.SS1", "subsection", "2.1 Setting", f"<p>{cite('#bib.bib2')}</p>{para}")
    html = latexml(
        '<h1 class="ltx_title ltx_title_document">A Paper</h1>'
        + older_unit(tag, "S1", "section", "1 Introduction", f"<p>{cite('#bib.bib1')}</p>")
        + older_unit(tag, "S2", "section", "2 Model", f"<p>{cite('#bib.bib1')}</p>{sub}")
        + BIB.replace("<section", f"<{tag}").replace("</section>", f"</{tag}>").replace("h2", "h1")
    )
    assert parse_section_map(html) == {
        "1 Introduction": ["First cited work"],
        "2 Model": ["First cited work"],
        "2 Model 2.1 Setting": ["Second cited work", "Third cited work"],
    }


def test_heading_math_and_footnotes_are_left_out_of_keys() -> None:
    title = (
        '<span class="ltx_tag">4.1 </span><math alttext="\\alpha"><semantics><mi>α</mi>'
        '<annotation encoding="application/x-tex">\\alpha</annotation></semantics></math> bounds'
        '<span class="ltx_note ltx_role_footnote"><sup class="ltx_note_mark">1</sup>'
        '<span class="ltx_note_outer">A footnote.</span></span>'
    )
    html = latexml(section("S4", "4 Analysis", section("S4.SS1", title, f"<p>{cite('#bib.bib1')}</p>", "h3")) + BIB)
    assert list(parse_section_map(html)) == ["4 Analysis 4.1 α bounds"]


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n",
        "not html at all",
        "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>",
        "\x00\x01\x02<<<>>>",
        "<html><body><cite><a href='#bib.bib1'>1</a></cite></body></html>",
    ],
)
def test_garbage_gives_an_empty_map_with_a_warning(html: str) -> None:
    section_map = parse_page(html)
    assert section_map.sections == {}
    assert section_map.warnings
    assert parse_section_map(html) == {}


def test_latexml_is_told_by_its_markers_not_by_the_host() -> None:
    assert all(is_latexml(fixture_text("arxiv_html", name)) for name in PAGES)
    assert not is_latexml("<html><body><a href='https://ar5iv.labs.arxiv.org/html/1706.03762'>ar5iv</a></body></html>")


@pytest.mark.parametrize(
    ("blocks", "title"),
    [
        # IEEE: the quoted title
        (
            ["A. Vaswani, N. Shazeer, and N. Parmar, “Attention is all you need,” in Advances in NeurIPS, 2017."],
            "Attention is all you need",
        ),
        # natbib / ACL in one block: authors. year. title. venue.
        (
            ["Ashish Vaswani and Noam Shazeer. 2017. Attention is all you need. In Advances in NeurIPS."],
            "Attention is all you need",
        ),
        (["Jimmy Lei Ba and Geoffrey E Hinton. Layer normalization. arXiv preprint, 2016."], "Layer normalization"),
        (["Ashish Vaswani et al. Is attention all you need? In NeurIPS, 2017."], "Is attention all you need?"),
        # LNCS: "Surname, I.: Title. In: ..."
        (
            ["Vaswani, A., Shazeer, N.: Attention is all you need. In: NeurIPS. pp. 1–9 (2017)"],
            "Attention is all you need",
        ),
        # Springer / astronomy author-year
        (
            ["Vaswani A, Shazeer N (2017) Attention is all you need. Adv Neural Inf Process Syst 30:5998–6008"],
            "Attention is all you need",
        ),
        (["Smith, J. and Doe, J. (2020). A study of things. Journal of Stuff, 12(3):45–67."], "A study of things"),
        (
            ["Vapnik, V., 1995, The Nature of Statistical Learning Theory. Springer Verlag."],
            "The Nature of Statistical Learning Theory",
        ),
        (
            ["Murthy, (1998), A Multi-Disciplinary Survey, Data Mining and Knowledge Discovery 2: 345–389."],
            "A Multi-Disciplinary Survey",
        ),
        # APS with and without titles, and books
        (["Y. LeCun, Y. Bengio, and G. Hinton, Deep learning, Nature 521, 436 (2015)."], "Deep learning"),
        (["B. Keimer and J. Zaanen, Nature 518, 179 (2015)."], ""),
        (["I. Esterlis and D. J. Scalapino, npj Quantum Materials 3, 59 (2018a)."], ""),
        (["H.-X. Wang and H. Yao, arXiv e-prints, arXiv:2211.02031 (2022a)."], ""),
        (["J. R. Schrieffer, Theory of Superconductivity (W. A. Benjamin, 1964)."], "Theory of Superconductivity"),
        (["Sur P., Candès E. J., 2019, PNAS, 116, 14516. doi:10.1073/pnas.1810420116"], ""),
        # LaTeXML blocks: authors / title / venue, and the year-only second block
        (["Kaiming He and Jian Sun.", "Deep residual learning.", "In CVPR, 2016."], "Deep residual learning"),
        (
            ["Kaiming He and Jian Sun.", "2016.", "Deep residual learning for images.", "In CVPR."],
            "Deep residual learning for images",
        ),
        (
            ["Eric Jones et al.", "SciPy: Open source scientific tools for Python, 2001–."],
            "SciPy: Open source scientific tools for Python",
        ),
    ],
)
def test_reference_title_styles(blocks: list[str], title: str) -> None:
    assert reference_title(blocks) == title


def test_reference_title_uses_an_italic_book_title_after_ieee_authors() -> None:
    text = ["J. D. Anderson, Fundamentals of Aerodynamics, 5th ed. McGraw-Hill Education, 2010."]
    assert reference_title(text, ["Fundamentals of Aerodynamics"]) == "Fundamentals of Aerodynamics"
    # An italic journal name is followed by its volume: not a title.
    aps = ["P. W. Anderson, Science 235, 1196 (1987)."]
    assert reference_title(aps, ["Science"]) == ""


# Bibliography styles seen on real pages, each with entries written for these tests (invented
# authors, titles, journals and publishers): what the title is, or "" where the entry names none.
@pytest.mark.parametrize(
    ("blocks", "title"),
    [
        # a middle block that is only a year is not the title; a year suffix does not spoil one
        (["Maria Quill and Tomas Berg.", "2006.", "Proceedings of the Workshop on Lattices."], ""),
        (
            ["Maria Quill and Tomas Berg.", "Folded lattices and their duals, 2004b.", "Journal of Lattices, 3:1–9."],
            "Folded lattices and their duals",
        ),
        # two-block books: "Authors, Title." / "Publisher, Year."
        (["Ansel Porter, Harmonic sieves in small fields.", "Corvid Press, 1998."], "Harmonic sieves in small fields"),
        (["Ansel Porter and Maria Quill, Sieve theory.", "Lattice Publishers, 2001."], "Sieve theory"),
        # one-word titles
        (["Ansel Porter.", "Sieves.", "Corvid Press, 2001."], "Sieves"),
        (["Ansel Porter. Sieves. Corvid University Press, 2001."], "Sieves"),
        (["Nimbus Labs. Nimbus.io. https://nimbus.io, 2024."], "Nimbus.io"),
        # single-block comma styles: the journal (abbreviated or not), series or publisher is cut off
        (
            ["A. Porter and B. Quill, Harmonic sieves in small fields, Phys. Rev. Lett. 116, 125 (2000)."],
            "Harmonic sieves in small fields",
        ),
        (
            ["A. Porter, Gaussian copulas on folded lattices, Int. J. Lattice Theory 7, 11–19 (2003)."],
            "Gaussian copulas on folded lattices",
        ),
        (["A. Porter, Harmonic sieves, Lecture Notes in Lattices, vol. 12, Corvid, Berlin, 1999."], "Harmonic sieves"),
        (["A. Porter, The theory of sieves, Corvid Press, Oxford, 1999."], "The theory of sieves"),
        # author lists with a spacing accent or full first names
        (
            ["J. Mikusin´ski and R. Sikorski, The elementary theory of sieves, Rozprawy Lat. 12, 1–54 (1957)."],
            "The elementary theory of sieves",
        ),
        (
            ["Ansel Porter and Maria Quill, Harmonic sieves in small fields, J. Lattices 5, 1–9 (2001)."],
            "Harmonic sieves in small fields",
        ),
        # author-year entries without a title (astronomy)
        (["Porter A. B., Quill M., 2001, Monthly Notices of the Lattice Society, 321, 45."], ""),
        (["Porter A. B., 2003, Lattice Journal Letters, in press"], ""),
        (["Porter A. B., 1999, PhD Thesis, University of Corvid"], ""),
        (["Porter A. B., 2005, in Sieves Across Fields, ed. M. Quill, T. Berg (Corvid: Lattice Press), 123"], ""),
        # APS entries without a title, dotted multi-word journal abbreviations
        (["A. Porter, J. Phys. Soc. Lat. 75, 014703 (2006)."], ""),
        (["A. Porter and B. Quill, Proc. Natl. Acad. Lat. U.S.A. 101, 125 (2004)."], ""),
        (["Ansel Porter and Maria Quill, Phys. Rev. Lett. 116, 125 (2000)."], ""),
    ],
)
def test_reference_titles_in_the_styles_of_real_bibliographies(blocks: list[str], title: str) -> None:
    assert reference_title(blocks) == title


def bibitem(ident: str, *blocks: str) -> str:
    spans = "".join(f'<span class="ltx_bibblock">{b}</span>' for b in blocks)
    return f'<li class="ltx_bibitem" id="{ident}"><span class="ltx_tag">[{ident[-1]}]</span>{spans}</li>'


def test_footnotes_in_the_bibliography_are_not_cited_works_and_untitled_entries_stay_whole() -> None:
    entries = [
        bibitem("bib.bib1", "Note that the sieve we use here is the coarse one."),
        bibitem("bib.bib2", "Porter A. B., Quill M., 2001, Monthly Notices of the Lattice Society, 321, 45."),
        bibitem("bib.bib3", "Ansel Porter.", "Causality.", "Corvid Press, 1998."),
        bibitem("bib.bib4", "Maria Quill.", "Causality.", "Lattice Publishers, 2011."),
    ]
    cites = "".join(cite(f"#bib.bib{i}") for i in range(1, 5))
    html = latexml(
        section("S1", "1 Intro", f"<p>{cites}</p>")
        + f'<section class="ltx_bibliography"><ul class="ltx_biblist">{"".join(entries)}</ul></section>'
    )
    section_map = parse_page(html)
    assert section_map.warnings == []  # the footnote is not a missing entry either
    refs = section_map.sections["1 Intro"]
    assert [(r.title, r.untitled) for r in refs] == [
        ("Porter A. B., Quill M., 2001, Monthly Notices of the Lattice Society, 321, 45.", True),
        ("Causality", False),
        ("Causality", False),  # a different book with the same title: not merged
    ]
    assert refs[0].title == refs[0].text
