"""Where a paper cites what: its sections, its bibliography, and how each cited title is written.

A layout is a pure function of (corpus seed, paper), built on demand and cached. Its rules keep the
section map unambiguous (PROTOCOL section 3): a section with subsections cites only inside them, so
every cited reference belongs to a leaf key (`"2 Related Work"` or `"2 Related Work 2.1 ..."`).
Appendix citations are never in the map, as the client skips appendix keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from . import vocab
from .corpus import Corpus, Paper, title_case

_VARIANTS = ("sentence", "lower", "punct", "abbrev", "typo", "subtitle")
_VARIANT_WEIGHTS = (30, 10, 15, 15, 20, 10)


@dataclass
class Section:
    tag: str  # "2", "2.1", "A" (appendix) or "" (unnumbered)
    title: str
    kind: str  # "section", "subsection", "appendix" or "acknowledgments"
    groups: list[list[int]] = field(default_factory=list)  # bibliography numbers cited per sentence
    children: list[Section] = field(default_factory=list)

    @property
    def heading(self) -> str:
        """The heading's text as LaTeXML renders it (tag, then title)."""
        if self.kind == "appendix":
            return f"Appendix {self.tag} {self.title}"
        return f"{self.tag} {self.title}" if self.tag else self.title

    def cited(self) -> list[int]:
        return [n for group in self.groups for n in group]


@dataclass
class BibItem:
    target: int | None  # the corpus paper, or None for a work outside the corpus
    authors: str
    title: str  # as written in this bibliography (possibly a variant of the real title)
    venue: str
    year: int
    label: str  # author-year label, e.g. "Weber et al., 2019"
    findable: bool | None = None  # set by reach.findable: can the world's services resolve it?


@dataclass
class Layout:
    sections: list[Section]
    bib: list[BibItem]
    numeric: bool  # "[3]" citations, else "(Weber et al., 2019)"
    blocks: int  # ltx_bibblock spans per item: 3 (authors/title/venue) or 1 (all in one)
    absolute: bool  # citation links written as absolute URLs

    def section_map(self, keep: Callable[[BibItem], bool] | None = None) -> dict[str, set[int]]:
        """Leaf section keys (PROTOCOL section 3) -> corpus papers they cite (those `keep` accepts)."""
        keys: dict[str, set[int]] = {}
        for s in self.sections:
            if s.kind != "section":
                continue
            leaves = [(f"{s.heading} {c.heading}", c) for c in s.children] if s.children else [(s.heading, s)]
            for key, node in leaves:
                if node.cited():
                    items = [self.bib[n - 1] for n in node.cited()]
                    keys[key] = {i.target for i in items if i.target is not None and (keep is None or keep(i))}
        return keys


def layout_of(corpus: Corpus, paper: Paper) -> Layout:
    """The paper's layout, built once per corpus."""
    found = corpus.layouts.get(paper.idx)
    if found is None:
        found = corpus.layouts[paper.idx] = _build(corpus, paper)
    assert isinstance(found, Layout)
    return found


def _build(corpus: Corpus, paper: Paper) -> Layout:
    rng = Random(f"layout:{corpus.seed}:{paper.idx}")
    topic = corpus.topics[paper.topic]
    cell, near, other = [], [], []
    for r in paper.refs:
        q = corpus.papers[r]
        if paper.aspect is not None and (q.topic, q.aspect) == (paper.topic, paper.aspect):
            cell.append(r)
        elif q.topic == paper.topic:
            near.append(r)
        else:
            other.append(r)
    externals = [-1 - i for i in range(len(paper.externals))]  # placeholders until numbered
    rng.shuffle(cell)
    rng.shuffle(near)
    split_cell, split_near = round(len(cell) * 0.3), round(len(near) * 0.4)
    intro = cell[:split_cell] + near[:split_near] + externals[:1]
    related_cell, related_near = cell[split_cell:], near[split_near:]
    method_refs, data_refs = other[: len(other) // 2] + externals[1:], other[len(other) // 2 :]
    baselines = rng.sample(near, min(2, len(near))) + (rng.sample(cell, 1) if cell and rng.random() < 0.3 else [])
    appendix_only = [r for r in related_near if rng.random() < 0.05]
    related_near = [r for r in related_near if r not in appendix_only]

    t_name = title_case(topic.alias if paper.hidden else topic.phrase)
    a_name = title_case(vocab.ASPECTS[paper.aspect][1 if paper.hidden else 0]) if paper.aspect is not None else ""
    plan: list[tuple[str, str, list[tuple[str, list[int]]] | list[int]]] = [("section", "Introduction", intro)]
    related_title = rng.choice((*vocab.RELATED_TITLES, "Background"))
    if len(related_cell) + len(related_near) >= 6 and rng.random() < 0.5:
        subs = [(t_name, related_near), (a_name or "Applications", related_cell)]
        plan.append(("section", related_title, subs))
    elif related_cell or related_near:
        plan.append(("section", related_title, related_near + related_cell))
    method_subs = rng.sample(vocab.METHOD_SUBSECTIONS, rng.randint(2, 3))
    chunks = [method_refs[i :: len(method_subs)] for i in range(len(method_subs))]
    plan.append(("section", rng.choice(vocab.METHOD_TITLES), list(zip(method_subs, chunks, strict=True))))
    exp_subs = rng.sample(vocab.EXPERIMENT_SUBSECTIONS, rng.randint(2, 4))
    exp_refs = {name: [] for name in exp_subs}
    exp_refs[exp_subs[0]] = data_refs
    exp_refs["Baselines" if "Baselines" in exp_refs else exp_subs[-1]] += baselines
    plan.append(("section", "Experiments", [(name, exp_refs[name]) for name in exp_subs]))
    plan.append(("section", "Conclusion", []))
    if rng.random() < 0.5:
        plan.append(("acknowledgments", "Acknowledgments", []))
    if appendix_only or rng.random() < 0.2:
        extra = rng.sample(near, min(1, len(near)))
        plan.append(
            ("appendix", rng.choice(("Additional Results", "Proofs", "Hyperparameters")), appendix_only + extra)
        )

    numeric = rng.random() < 0.7
    order: list[int] = []  # references in order of first citation
    for _, _, content in plan:
        items = [r for _, refs in content for r in refs] if content and isinstance(content[0], tuple) else content
        order += [r for r in items if r not in order]
    order += [r for r in paper.refs + externals if r not in order]
    bib = [_bib_item(corpus, paper, r, rng) for r in order]
    if not numeric:
        perm = sorted(range(len(bib)), key=lambda i: (bib[i].label, i))
        bib = [bib[i] for i in perm]
        order = [order[i] for i in perm]
    number = {r: i + 1 for i, r in enumerate(order)}

    def groups(refs: list[int]) -> list[list[int]]:
        out, i = [], 0
        while i < len(refs):
            size = rng.randint(1, 3)
            out.append([number[r] for r in refs[i : i + size]])
            i += size
        return out

    sections: list[Section] = []
    count = 0
    for kind, title, content in plan:
        if kind == "section":
            count += 1
            tag = str(count)
        else:
            tag = "A" if kind == "appendix" else ""
        section = Section(tag, title, kind)
        if content and isinstance(content[0], tuple):
            section.children = [
                Section(f"{tag}.{i + 1}", name, "subsection", groups(refs)) for i, (name, refs) in enumerate(content)
            ]
        else:
            section.groups = groups(content)
        sections.append(section)
    return Layout(sections, bib, numeric, 3 if rng.random() < 0.8 else 1, rng.random() < 0.3)


def _bib_item(corpus: Corpus, paper: Paper, ref: int, rng: Random) -> BibItem:
    if ref < 0:
        names = [f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.LAST_NAMES)}" for _ in range(rng.randint(1, 3))]
        year = rng.randint(1990, paper.published.year)
        return BibItem(
            None, _authors(names, rng), paper.externals[-1 - ref], "Technical report", year, _label(names, year)
        )
    q = corpus.papers[ref]
    title = q.title
    if rng.random() < corpus.spec.variant_share:
        title = variant(title, corpus.topics[q.topic].phrase, rng)
    year = q.published.year
    if q.arxiv_id and (q.venue is None or rng.random() < 0.5):
        if rng.random() < 0.5:
            venue = f"arXiv preprint arXiv:{q.arxiv_id}"
        elif "/" not in q.arxiv_id and rng.random() < 0.5:
            venue = f"CoRR, abs/{q.arxiv_id}"
        else:
            venue = "arXiv preprint"
    else:
        venue = q.venue or "Preprint"
        if q.doi and rng.random() < 0.3:
            venue += f", doi:{q.doi}"
    return BibItem(ref, _authors(q.authors, rng), title, venue, year, _label(q.authors, year))


def _authors(names: list[str], rng: Random) -> str:
    if rng.random() < 0.5:
        names = [f"{n[0]}. {n.split()[-1]}" for n in names]
    if len(names) > 1:
        return ", ".join(names[:-1]) + ", and " + names[-1]
    return names[0]


def _label(names: list[str], year: int) -> str:
    last = [n.split()[-1] for n in names]
    if len(last) == 1:
        return f"{last[0]}, {year}"
    if len(last) == 2:
        return f"{last[0]} and {last[1]}, {year}"
    return f"{last[0]} et al., {year}"


def variant(title: str, phrase: str, rng: Random) -> str:
    """The title as another bibliography might write it: case, punctuation, abbreviation, typo, subtitle."""
    kind = rng.choices(_VARIANTS, _VARIANT_WEIGHTS)[0]
    if kind == "sentence":
        return title[:1] + title[1:].lower()
    if kind == "lower":
        return title.lower()
    if kind == "punct":
        return title.replace("-", " ").replace(":", "").replace(",", "")
    full = title_case(phrase)
    if kind == "abbrev" and full in title:
        return title.replace(full, "".join(w[0] for w in full.replace("-", " ").split()).upper())
    if kind == "subtitle" and ": " in title:
        return title.split(": ", 1)[1]
    words = title.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return title.lower()
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if w[j] != w[j + 1] else w[:j] + w[j + 1 :]
    return " ".join(words)
