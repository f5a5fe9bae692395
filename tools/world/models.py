"""The scripted PaSa models: what the simulated crawler writes and what the simulated selector scores.

The crawler reads the prompt it was sent (PROTOCOL sections 1 and 2): for `generate_query` it writes
`[Search]` queries from the question's topic and aspect words; for `select_section` it expands exactly
the offered sections that cite a paper answering the question. The selector reads the raw
`get_selected` prompt and returns P(True) from ground-truth relevance, plus deterministic noise in
logit space, as a proper distribution over a small fake vocabulary in which "True" has a fixed id.
"""

from __future__ import annotations

import ast
import json
import math
import re
import zlib
from functools import cache
from random import Random
from statistics import NormalDist

from pasa_mcp.papers import title_key
from pasa_mcp.protocol import prompts

from .corpus import Corpus, Paper, unit
from .engines import title_match
from .layout import layout_of

CRAWLER_MODEL = "sim-pasa-7b-crawler"
SELECTOR_MODEL = "sim-pasa-7b-selector"
MAX_MODEL_LEN = 32768
TRUE_ID = 2514  # the fake vocabulary's id of "True" (learned by clients through /tokenize)

# The fake vocabulary: every token a simulated model can emit at the decision step, with the share
# of the non-"True" probability mass each one gets. The shares sum to 1, so the distribution is proper.
_OTHERS = {
    "False": 0.84,
    " False": 0.05,
    " True": 0.03,
    "false": 0.02,
    "true": 0.01,
    "Yes": 0.01,
    "No": 0.01,
    "\n": 0.01,
    " ": 0.01,
    "The": 0.005,
    "**": 0.005,
}
VOCAB = {
    "True": TRUE_ID,
    "False": 4049,
    " True": 3007,
    " False": 3557,
    "false": 3849,
    "true": 1866,
    "Yes": 9454,
    "No": 2753,
    "\n": 198,
    " ": 220,
    "The": 785,
    "**": 334,
}
_BY_ID = {v: k for k, v in VOCAB.items()}
_PIECE = re.compile(r"\s?[A-Za-z]+|\s?\d{1,3}|\s?[^\sA-Za-z\d]|\s+")


class PromptError(ValueError):
    """A prompt the scripted model was not written for (the service answers 400 with this message)."""


def pieces(text: str) -> list[str]:
    """The fake tokenizer: words with their leading space, digits in threes, punctuation, spaces."""
    return _PIECE.findall(text)


def token_id(piece: str) -> int:
    return VOCAB.get(piece, 10_000 + zlib.crc32(piece.encode()) % 140_000)


def token_text(tid: int) -> str | None:
    return _BY_ID.get(tid)


@cache
def _template(name: str) -> re.Pattern[str]:
    """The template as a regex capturing its fields (a field used twice must repeat its first value)."""
    pattern, seen = [], set()
    for i, part in enumerate(re.split(r"\{(\w+)\}", prompts()[name])):
        if i % 2 == 0:
            pattern.append(re.escape(part))
        else:
            pattern.append(f"(?P={part})" if part in seen else f"(?P<{part}>.*?)")
            seen.add(part)
    return re.compile("".join(pattern) + r"\s*", re.DOTALL)


def parse_prompt(name: str, text: str) -> dict[str, str] | None:
    m = _template(name).fullmatch(text.strip())
    return m.groupdict() if m else None


# Crawler ------------------------------------------------------------------------------------------

_QUESTION_WORDS = frozenset(
    "which what could would you me give find list papers paper studies study research work works approaches "
    "looking am i please some any that the a an of on for in to with and or is are using use done been has "
    "have context about proposing address apply applies".split()
)


def crawler_reply(corpus: Corpus, text: str, rng: Random | None) -> str:
    """The crawler's answer to a chat prompt; `rng` set means sampling (temperature > 0)."""
    if (fields := parse_prompt("generate_query", text)) is not None:
        queries = search_queries(corpus, fields["user_query"], rng)
        return "".join(f"[Search] {q}\n" for q in queries) + "[StopSearch]"
    if (fields := parse_prompt("select_section", text)) is not None:
        names = _section_names(fields["sections"])
        paper = corpus.find_title(fields["title"]) or _fuzzy(corpus, fields["title"])
        chosen = expand_choice(corpus, paper, fields["user_query"], names)
        return "".join(f"[Expand] {n}\n" for n in chosen) + "[StopExpand]"
    raise PromptError("the simulated crawler only answers the generate_query and select_section prompts")


def _fuzzy(corpus: Corpus, title: str) -> Paper | None:
    found = title_match(corpus, title)
    return found[0] if found else None


def _section_names(raw: str) -> list[str]:
    text = raw.strip()
    if text.startswith("dict_keys(") and text.endswith(")"):
        text = text[len("dict_keys(") : -1]  # the upstream inference script's rendering
        value = ast.literal_eval(text)
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PromptError(f"Sections is not a JSON list of names: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PromptError("Sections must be a list of section names")
    return value


def search_queries(corpus: Corpus, question: str, rng: Random | None = None) -> list[str]:
    """Queries from the question's topic and aspect phrases (or its content words if it names no topic)."""
    named = corpus.mentions(question)
    if named is None:
        words = [w for w in re.findall(r"[A-Za-z][\w-]*", question.lower()) if w not in _QUESTION_WORDS]
        if not words:
            raise PromptError("the user query has no words to search for")
        pool = [" ".join(words[:6]), " ".join(words[:6]) + " survey", " ".join(words[-3:])]
    else:
        t, a = named
        noun = t.split()[-1]
        if a is None:
            pool = [t, f"{t} survey", f"{t} methods benchmark", f"recent advances in {t}", f"{t} theory"]
        else:
            pool = [
                f"{t} {a}",
                f"{t} for {a} survey",
                f"{noun} for {a}",
                f"{t} applied to {a} benchmark",
                f"{t} methods",
            ]
        if rng is not None:
            pool += [f"{a or t} review", f"{t} state of the art", f"{a or noun} {t.split()[0]}"]
    pool = list(dict.fromkeys(pool))
    if rng is None:
        return pool
    rng.shuffle(pool)
    return pool[: rng.randint(3, 6)]


def section_targets(corpus: Corpus, paper: Paper) -> dict[str, set[int]]:
    """What the paper's section map holds: its HTML sections, or all references without full text."""
    if paper.arxiv_html or paper.ar5iv:
        return layout_of(corpus, paper).section_map()
    return {"References": set(paper.refs)}


def expand_choice(corpus: Corpus, paper: Paper | None, question: str, names: list[str]) -> list[str]:
    """The offered section names to expand: those citing at least one answer to the question."""
    if paper is None:  # an unknown paper: fall back on the usual suspects
        return [n for n in names if re.search(r"related|background", n, re.IGNORECASE)]
    by_key = {title_key(k): v for k, v in section_targets(corpus, paper).items()}
    if not paper.arxiv_html and not paper.ar5iv:
        by_key["references"] = set(paper.refs)
    chosen = []
    for name in names:
        targets = by_key.get(title_key(name), set())
        if any(corpus.relevance(question, corpus.papers[t]) == 2 for t in targets):
            chosen.append(name)
    return chosen


# Selector -----------------------------------------------------------------------------------------


def p_true(corpus: Corpus, question: str, paper: Paper | None, title: str, noise: float) -> float:
    """P(True): high for answers, low for near misses, lower still otherwise; noise in logit units."""
    level = corpus.relevance(question, paper) if paper is not None else 0
    u = unit("selector", corpus.seed, title_key(title), question)
    p = (0.005 + 0.03 * u, 0.08 + 0.3 * u, 0.75 + 0.2 * u)[level]
    if noise:
        z = NormalDist().inv_cdf(min(max(unit("noise", corpus.seed, title_key(title), question), 1e-9), 1 - 1e-9))
        p = 1 / (1 + math.exp(-(math.log(p / (1 - p)) + noise * z)))
    return min(max(p, 1e-6), 1 - 1e-6)


def selector_probability(corpus: Corpus, prompt: str, noise: float) -> float:
    fields = parse_prompt("get_selected", prompt) or parse_prompt("get_value", prompt)
    if fields is None:
        raise PromptError("the simulated selector only scores the get_selected (or get_value) prompt")
    title = fields["title"].strip()
    paper = corpus.find_title(title) or _fuzzy(corpus, title)
    return p_true(corpus, fields["user_query"], paper, title, noise)


def distribution(p: float) -> dict[str, float]:
    """Log-probabilities of the whole fake vocabulary (they sum to 1 in probability), best first."""
    probs = {"True": p, **{tok: share * (1 - p) for tok, share in _OTHERS.items()}}
    return {tok: math.log(pr) for tok, pr in sorted(probs.items(), key=lambda kv: -kv[1])}


def reason(p: float) -> str:
    verdict = "satisfies" if p > 0.5 else "does not satisfy"
    return f"\nReason: Simulated judgement: the paper {verdict} the requirements of the user query."
