"""`python -m tools.bench.index`: the local paper index on a generated corpus (issue 10's targets).

Generates an arXiv metadata snapshot of N synthetic papers (JSON lines as arXiv publishes it: every
field present, titles and abstracts with their line breaks, about 4 authors and 2 versions a paper,
a third with a DOI and a journal reference; titles of about 9 words, abstracts of about 163 words
or 1,080 characters, a third of them English function words, the rest drawn from a Zipf-distributed
vocabulary of 60,000 words, so posting lists look like a real corpus's; the 27 arXiv abstracts in
../shared/fixtures/arxiv_atom average 166 words, 1,090 characters, 34% function words), then
measures the import (`pasa-mcp index import-arxiv`'s library call), search latency (p50/p99 over
generated queries), the time to resolve 50 cited titles (a fifth of them written differently:
lower case, a dropped word, a typo), and the index's size on disk against the raw title and
abstract text. The corpus is **synthetic**: the numbers measure the engine, not arXiv.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pasa_mcp.index.db import LocalIndex
from pasa_mcp.index.resolve import LocalResolver
from pasa_mcp.index.snapshot import import_snapshot
from pasa_mcp.papers import Reference

TARGETS = {"import_per_s": 20_000, "search_p50_ms": 20, "search_p99_ms": 150, "resolve_50_ms": 50, "size_ratio": 2.0}
_SYLLABLES = "ka ro mi te lu no va si de pa zu fe gi ho ba tor len mar vis quo an el is ur om".split()
# English function words with their rough frequency per 1,000 words of arXiv abstracts: about a third
# of an abstract's words (a fifth of a title's) are these, the most frequent terms of any real corpus.
_FUNCTION_FREQ = {
    "the": 60, "of": 35, "to": 25, "and": 28, "a": 20, "in": 22, "for": 12, "we": 10, "is": 10, "that": 8,
    "this": 8, "with": 8, "on": 7, "by": 6, "as": 6, "are": 6, "an": 4, "be": 4, "from": 4, "our": 4,
    "can": 4, "which": 3, "using": 3, "it": 3, "its": 2, "at": 2, "has": 2, "have": 2, "into": 1, "not": 1,
}  # fmt: skip
_FUNCTION, _FUNCTION_WEIGHTS = list(_FUNCTION_FREQ), list(_FUNCTION_FREQ.values())
ABSTRACT_FUNCTION_SHARE, TITLE_FUNCTION_SHARE = 0.35, 0.2
_AUTHOR_COUNTS = (1, 2, 2, 3, 3, 4, 4, 5, 6, 8)  # about 4 authors a paper


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def generate(path: Path, papers: int, seed: int = 1) -> dict[str, Any]:
    """Write a synthetic snapshot; returns its raw title+abstract bytes and a sample of titles."""
    rng = random.Random(seed)
    vocab = vocabulary(rng, 60_000)
    weights = [1 / (rank + 10) for rank in range(len(vocab))]  # Zipf-like, flattened at the head
    cum = [0.0] * len(vocab)
    total = 0.0
    for i, w in enumerate(weights):
        total += w
        cum[i] = total

    def words(k: int, function_share: float) -> list[str]:
        content = rng.choices(vocab, cum_weights=cum, k=k)
        return [rng.choices(_FUNCTION, _FUNCTION_WEIGHTS)[0] if rng.random() < function_share else w for w in content]

    # Abstracts are drawn as phrases of 6 words from a pool (drawing 160 words per paper would take
    # longer than the import being measured); titles word by word, so each is distinct.
    phrases = [" ".join(words(6, ABSTRACT_FUNCTION_SHARE)) for _ in range(200_000)]
    people = [f"{chr(65 + i % 26)}. {w.capitalize()}" for i, w in enumerate(vocab[5000:7000])]
    licenses = [
        None,
        "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
        "http://creativecommons.org/licenses/by/4.0/",
    ]
    raw = 0
    sample: list[str] = []
    with path.open("w", encoding="utf-8") as f:
        for n in range(papers):
            year, month = 2007 + n * 18 // papers, 1 + n % 12
            arxiv_id = f"{year % 100:02d}{month:02d}.{n % 100_000:05d}"
            title = " ".join(words(rng.randint(5, 13), TITLE_FUNCTION_SHARE)).capitalize()
            abstract = " ".join(rng.choices(phrases, k=rng.randint(16, 38))) + "."
            raw += len(title.encode()) + len(abstract.encode())
            if n % max(1, papers // 2000) == 0:
                sample.append(title)
            names = rng.sample(people, rng.choice(_AUTHOR_COUNTS))
            in_journal = rng.random() < 0.35
            venue = f"J. Sim. Res. {rng.randint(1, 99)}, {rng.randint(1, 9999)} ({year})" if in_journal else None
            row = {
                "id": arxiv_id,
                "submitter": names[0],
                "authors": names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1],
                "title": _wrapped(title, 70, "\n  "),  # arXiv's metadata keeps the submission's line breaks
                "comments": f"{rng.randint(4, 40)} pages, {rng.randint(1, 12)} figures",
                "journal-ref": venue,
                "doi": f"10.5555/sim.{year}.{n}" if in_journal else None,
                "report-no": None,
                "categories": rng.choice(["cs.CL", "cs.LG stat.ML", "cs.CV", "math.OC", "hep-th"]),
                "license": rng.choice(licenses),
                "abstract": "  " + _wrapped(abstract, 78, "\n") + "\n",
                "versions": [
                    {"version": f"v{v}", "created": f"Mon, {2 + v} {_month(month)} {year} 10:00:00 GMT"}
                    for v in range(1, rng.randint(1, 3) + 1)
                ],
                "update_date": f"{year}-{month:02d}-02",
                "authors_parsed": [[name[3:], name[:2], ""] for name in names],
            }
            f.write(json.dumps(row) + "\n")
    return {"raw_bytes": raw, "titles": sample, "vocab": vocab}


def _wrapped(text: str, width: int, newline: str) -> str:
    """`text` broken at spaces into lines of at most about `width` characters."""
    lines, start = [], 0
    while len(text) - start > width and (cut := text.rfind(" ", start, start + width)) > start:
        lines.append(text[start:cut])
        start = cut + 1
    lines.append(text[start:])
    return newline.join(lines)


def _remove(index_path: Path) -> None:
    """An index from an earlier run: its SQLite files and its tantivy folder."""
    for old in index_path.parent.glob(index_path.name + "*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def _cpu() -> float:
    """CPU seconds of this process so far, all its threads (tantivy's indexing and merging too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _month(m: int) -> str:
    return "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[m - 1]


def _variant(rng: random.Random, title: str) -> str:
    words = title.split()
    kind = rng.randrange(3)
    if kind == 0:
        return title.lower()
    if kind == 1 and len(words) > 5:
        del words[rng.randrange(len(words))]
        return " ".join(words)
    i = rng.randrange(len(words))
    w = words[i]
    words[i] = w[:-2] + w[-1] + w[-2] if len(w) > 3 else w
    return " ".join(words)


def measure(index_path: Path, snapshot: Path, generated: dict[str, Any], queries: int, seed: int = 2) -> dict[str, Any]:
    rng = random.Random(seed)
    index = LocalIndex(index_path)
    start, cpu = time.perf_counter(), _cpu()
    counts = import_snapshot(index, snapshot)
    imported, import_cpu = time.perf_counter() - start, _cpu() - cpu
    vocab = generated["vocab"]
    # Queries as a crawler writes them: 2-5 words, mostly mid-frequency, sometimes a very common one.
    texts = [
        " ".join(rng.choice(vocab[: 200 if rng.random() < 0.2 else 20_000]) for _ in range(rng.randint(2, 5)))
        for _ in range(queries)
    ]
    timings = []
    for text in texts:
        t0 = time.perf_counter()
        index.search(text, limit=10)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    resolver = LocalResolver(index)
    resolve_ms = []
    for _ in range(5):
        titles = rng.sample(generated["titles"], 50)
        refs = [Reference(title=_variant(rng, t) if rng.random() < 0.2 else t) for t in titles]
        t0 = time.perf_counter()
        found = resolver.resolve(refs)
        resolve_ms.append((time.perf_counter() - t0) * 1000)
        resolved = sum(p is not None for p in found)
    index.close()
    size = sum(p.stat().st_size for p in index_path.parent.glob(index_path.name + "*") if p.is_file())
    size += sum(p.stat().st_size for p in index.text_path.iterdir() if p.is_file())
    return {
        "papers": counts["added"],
        "import_s": round(imported, 1),
        "import_per_s": round(counts["added"] / imported),
        "import_cpu_s": round(import_cpu, 1),  # every thread's: other processes on the machine do not count
        "import_per_cpu_s": round(counts["added"] / import_cpu),
        "search_p50_ms": round(statistics.median(timings), 2),
        "search_p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
        "search_max_ms": round(timings[-1], 2),
        "resolve_50_ms": round(statistics.median(resolve_ms), 2),
        "resolved_of_50": resolved,
        "index_bytes": size,
        "raw_bytes": generated["raw_bytes"],
        "size_ratio": round(size / generated["raw_bytes"], 2),
    }


async def source_recall(papers: int, questions: int, work: Path, seed: int = 7) -> dict[str, Any]:
    """Search recall of each source on the world's planted questions (a **simulation**): the share of a
    question's answers that its five crawler queries find, 10 results each, before its end date."""
    import anyio

    from pasa_mcp.app import open_app
    from pasa_mcp.config import Settings
    from pasa_mcp.eval import EvalQuery
    from tools.world import World
    from tools.world.exports import write_snapshot
    from tools.world.models import search_queries

    names = ["google", "arxiv", "semantic_scholar", "openalex", "local"]
    found: dict[str, list[float]] = {name: [] for name in names}
    async with World.start(seed=seed, papers=papers, time_scale=0.005, latency=False) as world:
        index_path = work / f"world-{seed}-{papers}.sqlite3"

        def build() -> None:
            _remove(index_path)
            index = LocalIndex(index_path)
            write_snapshot(world.corpus, work / "world-snapshot.jsonl")
            import_snapshot(index, work / "world-snapshot.jsonl")
            index.close()

        await anyio.to_thread.run_sync(build)
        paths = {"store_path": work / "recall-store.sqlite3", "index_path": index_path, "state_dir": work / "state"}
        settings = Settings(**world.settings(), **paths)  # pacing files of a world's ports stay with the bench
        async with open_app(settings) as pasa:
            for row in world.queries[:questions]:
                before = EvalQuery.model_validate(row).end_date
                answers = set(row["answer_arxiv_id"])
                for name in names:
                    (source,) = pasa.sources([name])
                    hits: set[str] = set()
                    for query in search_queries(world.corpus, row["question"])[:5]:
                        hits |= {p.arxiv_id for p in await source.search(query, limit=10, before=before) if p.arxiv_id}
                    found[name].append(len(hits & answers) / len(answers))
    return {name: round(statistics.mean(values), 4) for name, values in found.items()} | {"questions": questions}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.index", description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("bench-out/index"), help="where the corpus and index go")
    parser.add_argument("--out", type=Path, default=Path("bench-out/index.json"))
    parser.add_argument("--recall", type=int, metavar="QUESTIONS", help="instead: each source's search recall")
    parser.add_argument("--world-papers", type=int, default=20_000, help="world size for --recall")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.recall:
        import anyio

        recall = anyio.run(source_recall, args.world_papers, args.recall, args.work)
        print("search recall of the planted answers (simulation):", json.dumps(recall))
        args.out.write_text(json.dumps(recall, indent=2) + "\n", encoding="utf-8")
        return
    snapshot, index_path = args.work / f"snapshot-{args.papers}.jsonl", args.work / f"index-{args.papers}.sqlite3"
    _remove(index_path)
    t0 = time.perf_counter()
    generated = generate(snapshot, args.papers)
    print(f"generated {args.papers} synthetic papers in {time.perf_counter() - t0:.0f} s: {snapshot}", flush=True)
    result = measure(index_path, snapshot, generated, args.queries)
    result["targets"] = TARGETS
    for name, target in TARGETS.items():
        at_least = name == "import_per_s"
        ok = result[name] >= target if at_least else result[name] <= target
        verdict = "ok" if ok else "MISSED"
        print(f"{name:>14}: {result[name]:>10} (target {'>=' if at_least else '<='} {target}) {verdict}")
    print(json.dumps({k: v for k, v in result.items() if k != "targets"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
