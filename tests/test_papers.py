"""arXiv ids, DOIs and title keys on the forms found in the wild; merging records of one work."""

from __future__ import annotations

from datetime import date

import pytest

from pasa_mcp.papers import Paper, find_arxiv_id, normalize_arxiv_id, normalize_doi, paper_ref, title_key

ID_FORMS = [
    ("2401.01234", "2401.01234"),
    ("2401.01234v3", "2401.01234"),
    ("1706.03762", "1706.03762"),
    ("0704.0001", "0704.0001"),  # the first new-style id (4 digits after the dot until 2014)
    ("arXiv:2104.12255v1", "2104.12255"),
    ("ARXIV: 1605.08386", "1605.08386"),
    ("  2401.01234 \n", "2401.01234"),
    ("hep-th/9901001", "hep-th/9901001"),
    ("hep-th/9901001v2", "hep-th/9901001"),
    ("arXiv:math.GT/0309136", "math.GT/0309136"),
    ("math.gt/0309136v1", "math.GT/0309136"),
    ("cond-mat/0011001", "cond-mat/0011001"),
    ("https://arxiv.org/abs/1706.03762", "1706.03762"),
    ("http://arxiv.org/abs/1706.03762v5", "1706.03762"),
    ("https://www.arxiv.org/abs/1706.03762", "1706.03762"),
    ("arxiv.org/abs/1706.03762", "1706.03762"),
    ("https://arxiv.org/pdf/2401.01234v2.pdf", "2401.01234"),
    ("https://arxiv.org/pdf/2401.01234", "2401.01234"),
    ("https://arxiv.org/html/2401.01234v1", "2401.01234"),
    ("https://arxiv.org/html/2401.01234v1#S2", "2401.01234"),
    ("https://arxiv.org/abs/2401.01234?context=cs", "2401.01234"),
    ("http://export.arxiv.org/abs/1605.08386v1", "1605.08386"),
    ("https://ar5iv.labs.arxiv.org/html/1706.03762", "1706.03762"),
    ("https://ar5iv.org/abs/1706.03762", "1706.03762"),
    ("http://arxiv.org/abs/hep-ex/0307015v1", "hep-ex/0307015"),
    ("https://arxiv.org/pdf/hep-th/9901001v3", "hep-th/9901001"),
]

NOT_IDS = [
    "",
    None,
    "abc",
    "2413.12345",  # month 13
    "2400.12345",  # month 00
    "1706.037",  # too short
    "1706.037621",  # too long
    "https://example.org/abs/1706.03762",
    "https://arxiv.org/list/cs.CL/recent",
    "10.48550/arXiv.1706.03762",
    "Attention is all you need",
]


@pytest.mark.parametrize(("text", "expected"), ID_FORMS)
def test_arxiv_ids_are_normalised_without_version(text: str, expected: str) -> None:
    assert normalize_arxiv_id(text) == expected


@pytest.mark.parametrize("text", NOT_IDS)
def test_text_that_is_not_an_arxiv_id_gives_none(text: str | None) -> None:
    assert normalize_arxiv_id(text) is None


def test_arxiv_ids_are_found_inside_bibliography_text() -> None:
    assert find_arxiv_id("A. Vaswani et al. Attention is all you need. arXiv:1706.03762v5, 2017.") == "1706.03762"
    assert find_arxiv_id("Preprint, arXiv preprint arXiv: hep-th/9901001.") == "hep-th/9901001"
    assert find_arxiv_id("see https://arxiv.org/abs/2401.01234v2 for details") == "2401.01234"
    assert find_arxiv_id("In NeurIPS 2017, pages 5998-6008.") is None


TITLE_KEYS = [
    ("Attention Is All You Need", "attentionisallyouneed"),
    ("  Attention is all you need. ", "attentionisallyouneed"),
    ("BERT: Pre-training of Deep Bidirectional Transformers", "bertpretrainingofdeepbidirectionaltransformers"),
    ("GPT-4 Technical Report (2023)", "gpttechnicalreport"),
    ("Schrödinger bridges", "schrödingerbridges"),
    ("$\\alpha$-divergence", "alphadivergence"),
    ("", ""),
]


@pytest.mark.parametrize(("title", "key"), TITLE_KEYS)
def test_title_key_keeps_letters_only_lower_case(title: str, key: str) -> None:
    assert title_key(title) == key


def test_dois_lose_resolver_prefixes_and_case() -> None:
    assert normalize_doi("https://doi.org/10.1371/journal.pone.0000030") == "10.1371/journal.pone.0000030"
    assert normalize_doi("doi:10.1145/3448016.3452841.") == "10.1145/3448016.3452841"
    assert normalize_doi("10.48550/arXiv.1706.03762") == "10.48550/arxiv.1706.03762"
    assert normalize_doi("no doi here") is None


def test_identity_prefers_arxiv_then_doi_then_title() -> None:
    assert Paper(title="X", arxiv_id="arXiv:1706.03762v2", doi="10.1/x").key == "arxiv:1706.03762"
    assert Paper(title="X", doi="https://doi.org/10.1000/X").key == "doi:10.1000/x"
    assert Paper(title="X", arxiv_id="not an id", doi="none").key == "title:x"
    assert Paper(title="Attention  is all\nyou need").key == "title:attentionisallyouneed"
    assert Paper(title="Attention  is all\nyou need").title == "Attention is all you need"


def test_records_of_one_work_merge_keeping_the_best_of_each() -> None:
    from_s2 = Paper(title="Attention is All you Need", doi="10.5555/3295222", authors=["A. Vaswani"], sources=["s2"])
    from_arxiv = Paper(
        title="Attention Is All You Need",
        arxiv_id="1706.03762",
        abstract="The dominant sequence transduction models are based on recurrent networks.",
        published=date(2017, 6, 12),
        sources=["arxiv"],
    )
    assert from_s2.same_work(from_arxiv)
    merged = from_s2.merge(from_arxiv)
    assert merged.key == "arxiv:1706.03762"
    assert merged.doi == "10.5555/3295222"
    assert merged.authors == ["A. Vaswani"]
    assert merged.abstract.startswith("The dominant")
    assert merged.published == date(2017, 6, 12)
    assert merged.sources == ["s2", "arxiv"]


def test_different_arxiv_ids_are_different_works_even_with_one_title() -> None:
    a = Paper(title="Introduction", arxiv_id="2101.00001")
    b = Paper(title="Introduction", arxiv_id="2101.00002")
    assert not a.same_work(b)


def test_user_typed_references_map_to_identity_fields() -> None:
    assert paper_ref("arxiv:1706.03762v3") == {"arxiv": "1706.03762"}
    assert paper_ref("https://arxiv.org/abs/1706.03762") == {"arxiv": "1706.03762"}
    assert paper_ref("doi:10.1/x") == {"doi": "10.1/x"}
    assert paper_ref("https://doi.org/10.1371/journal.pone.0000030") == {"doi": "10.1371/journal.pone.0000030"}
    assert paper_ref("Attention is all you need") == {"title": "attentionisallyouneed"}


def test_a_section_maps_cited_works_count_once_in_the_first_section_citing_them() -> None:
    from pasa_mcp.papers import Reference, SectionMap

    lstm = Reference(title="Long short-term memory", arxiv_id=None, doi="10.1162/neco.1997.9.8.1735")
    smap = SectionMap(
        origin="arxiv_html",
        sections={
            "1 Introduction": [lstm, Reference(title="Adam", arxiv_id="1412.6980")],
            "2 Related Work": [
                Reference(title="Long Short-Term Memory", doi="10.1162/neco.1997.9.8.1735"),
                Reference(title="Dropout"),
            ],
        },
    )
    assert [(s, r.title) for s, r in smap.cited(["2 Related Work", "1 Introduction"])] == [
        ("2 Related Work", "Long Short-Term Memory"),
        ("2 Related Work", "Dropout"),
        ("1 Introduction", "Adam"),
    ]


def test_two_works_with_one_title_but_different_entries_stay_two() -> None:
    from pasa_mcp.papers import Reference, SectionMap

    first = Reference(title="Causality", text="Ansel Porter. Causality. Corvid Press, 1998.")
    second = Reference(title="Causality", text="Maria Quill. Causality. Lattice Publishers, 2011.")
    again = Reference(title="Causality", text="Ansel Porter. Causality. Corvid Press, 1998.")
    smap = SectionMap(origin="ar5iv", sections={"1 Intro": [first, second], "2 More": [again]})
    assert [r.text for _, r in smap.cited(["1 Intro", "2 More"])] == [first.text, second.text]
