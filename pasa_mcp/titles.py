"""Title matching: when a found paper is the work a citation names.

A remote or full-text candidate is accepted only when `titles_match`: the normalised titles
(Unicode folded, accents and braces dropped, lower case, runs of anything but letters and digits as
one space) or PaSa's title keys are equal, or their rapidfuzz ratio reaches FUZZY_THRESHOLD. At 95 it
admits a typo or a dropped word in a long title, and rejects "Attention is not all you need" for
"Attention is all you need" (92.6) and "... for image restoration" for "... for image recognition"
(90.9). A work found by a whole reference string is accepted when `reference_matches`: its year and
its first author's surname are in the entry. Used by the resolver, every title-searching source and
the local index alike, so one rule decides everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from rapidfuzz import fuzz

from .papers import Paper, title_key

FUZZY_THRESHOLD = 95.0  # rapidfuzz ratio (0-100) of normalised titles


def normalize_title(title: str) -> str:
    """Lower case words of letters and digits; BibTeX's case-protecting braces ("{BERT}") dropped."""
    folded = unicodedata.normalize("NFKD", title.replace("{", "").replace("}", ""))
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def title_similarity(a: str, b: str) -> float:
    """Rapidfuzz ratio (0-100) of the normalised titles."""
    return fuzz.ratio(normalize_title(a), normalize_title(b))


def titles_match(a: str, b: str) -> bool:
    """True when two titles name the same paper (see the module docstring for the rule)."""
    na, nb = normalize_title(a), normalize_title(b)
    if not na or not nb:
        return False
    if na == nb or title_key(a) == title_key(b):
        return True
    return fuzz.ratio(na, nb, score_cutoff=FUZZY_THRESHOLD) > 0


def reference_matches(text: str, paper: Paper) -> bool:
    """True when `paper`, found by the whole reference string `text`, is the work it names."""
    if paper.published is None or not paper.authors:
        return False
    folded = normalize_title(text)
    surname = normalize_title(paper.authors[0]).rpartition(" ")[2]
    year = rf"\b{paper.published.year}[a-z]?\b"  # "2018a" in author-year styles
    return (
        bool(surname) and re.search(rf"\b{re.escape(surname)}\b", folded) is not None and bool(re.search(year, folded))
    )


def best_match(title: str, candidates: Sequence[Paper]) -> Paper | None:
    """The candidate whose title matches `title` best, or None when none matches."""
    matching = [p for p in candidates if titles_match(title, p.title)]
    return max(matching, key=lambda p: title_similarity(title, p.title), default=None)
