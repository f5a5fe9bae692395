"""arXiv categories as a search filter: `cs.LG`, `math.PR`, `hep-th`, or a whole archive such as `cs`.

A filter keeps a paper listed in any of its categories (cross-lists count, as on arXiv); an archive
names itself and every category under it (`cs` keeps `cs.LG`, `astro-ph` keeps `astro-ph.CO`). The
arXiv API and the local index filter as they search; the other sources cannot, so their papers are
dropped afterwards where their arXiv categories are known (`NOT_FILTERED` says so in the results).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# archive (`cs`, `hep-th`, `q-bio`) and optionally `.SUBJECT` (`LG`, `stat-mech`, `comp-ph`)
_FORM = re.compile(r"[a-z]+(?:-[a-z]+)?(?:\.[a-z]+(?:-[a-z]+)?)?", re.IGNORECASE)
MAX_CATEGORIES = 20
NOT_FILTERED = "cannot search by category: its papers are dropped where their arXiv categories are known to differ"


def parse_categories(values: Iterable[str] | None) -> list[str]:
    """Categories in arXiv's spelling (`cs.lg` -> `cs.LG`), each once; a bad one is a one-line ValueError."""
    found: list[str] = []
    for raw in values or ():
        value = raw.strip()
        if not _FORM.fullmatch(value):
            raise ValueError(
                f"not an arXiv category: {raw!r} (write one like cs.LG, math.PR, hep-th, or cs for all of cs)"
            )
        archive, _, subject = value.partition(".")
        spelled = archive.lower() + (f".{subject.upper() if len(subject) == 2 else subject.lower()}" if subject else "")
        if spelled not in found:
            found.append(spelled)
    if len(found) > MAX_CATEGORIES:
        raise ValueError(f"at most {MAX_CATEGORIES} categories, got {len(found)}")
    return found


def split_categories(text: str) -> list[str]:
    """A comma-separated list (the CLI's `--categories cs.LG,stat.ML`), checked by `parse_categories`."""
    return parse_categories(part for part in text.split(",") if part.strip())


def in_categories(categories: Sequence[str], wanted: Sequence[str]) -> bool:
    """True when any of a paper's categories is wanted, or lies under a wanted archive (case-insensitive)."""
    have = [c.lower() for c in categories]
    return any(c == w or c.startswith(w + ".") for w in (w.lower() for w in wanted) for c in have)


def kept(categories: Sequence[str], wanted: Sequence[str]) -> bool:
    """A paper passes a filter unless its categories are known and none is wanted."""
    return not wanted or not categories or in_categories(categories, wanted)


def arxiv_clause(wanted: Sequence[str]) -> str:
    """The arXiv API's `cat:` terms for a filter, OR-ed: an archive also as `cat:ARCHIVE.*`."""
    terms = [t for w in wanted for t in ([f"cat:{w}"] if "." in w else [f"cat:{w}", f"cat:{w}.*"])]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"
