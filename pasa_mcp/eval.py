"""The paper's evaluation (PROTOCOL section 6) over AutoScholarQuery / RealScholarQuery-style files.

A dataset is JSON lines with `question`, `answer` (titles), `source_meta.published_time`
(YYYYMMDD) and `qid`. Each query runs with `end_date` = published time minus 7 days; its run tree is
saved as `<qid>.json`, so `score_trees` can recompute every metric later without running anything.
Titles are compared by PaSa's title key (letters only, lower case).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field, ValidationError

from .errors import plain_errors
from .papers import title_key

K_VALUES = (20, 50, 100)
METRICS = ("crawler_recall", "precision", "recall", "recall@20", "recall@50", "recall@100")


class SourceMeta(BaseModel):
    published_time: str = Field(pattern=r"^\d{8}$")


class EvalQuery(BaseModel):
    qid: str
    question: str = Field(min_length=1)
    answer: list[str] = Field(min_length=1)
    answer_arxiv_id: list[str] = Field(default_factory=list)
    source_meta: SourceMeta

    @property
    def end_date(self) -> date:
        """The run's date bound: publication minus 7 days, as in the paper."""
        return datetime.strptime(self.source_meta.published_time, "%Y%m%d").date() - timedelta(days=7)


def load_dataset(path: Path) -> list[EvalQuery]:
    """Read a dataset file; a bad line is an error naming the line, never silently skipped."""
    queries: list[EvalQuery] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                record["qid"] = str(record.get("qid", number))
                queries.append(EvalQuery.model_validate(record))
            except ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a dataset record: {plain_errors(exc)}") from None
            except (json.JSONDecodeError, AttributeError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a dataset record: {exc}") from None
    if not queries:
        raise ValueError(f"{path}: no queries in the file")
    return queries


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for children in node.get("child", {}).values():
        for child in children:
            yield child
            yield from _walk(child)


def crawled(tree: dict[str, Any]) -> list[tuple[str, float]]:
    """Every paper in a run tree as (title key, best score), best score first."""
    best: dict[str, float] = {}
    for node in _walk(tree):
        key = title_key(node.get("title", ""))
        if key:
            best[key] = max(best.get(key, -1.0), float(node.get("select_score", -1)))
    return sorted(best.items(), key=lambda item: -item[1])


def metrics(tree: dict[str, Any], answers: list[str], threshold: float = 0.5) -> dict[str, float]:
    """Crawler recall, precision, recall and recall@k of one run against its answer titles.

    Precision of a run that selected nothing is 0.
    """
    wanted = {title_key(a) for a in answers} - {""}
    papers = crawled(tree)
    found = {key for key, _ in papers}
    selected = {key for key, score in papers if score > threshold}
    result = {
        "crawler_recall": len(found & wanted) / len(wanted),
        "precision": len(selected & wanted) / len(selected) if selected else 0.0,
        "recall": len(selected & wanted) / len(wanted),
    }
    for k in K_VALUES:
        result[f"recall@{k}"] = len({key for key, _ in papers[:k]} & wanted) / len(wanted)
    return result


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: sum(r[name] for r in rows) / len(rows) for name in METRICS} if rows else {}


def score_trees(queries: list[EvalQuery], out_dir: Path) -> dict[str, dict[str, float]]:
    """Metrics per qid from the trees saved in `out_dir` (queries without a tree are reported missing)."""
    scores: dict[str, dict[str, float]] = {}
    missing = []
    for query in queries:
        path = out_dir / f"{query.qid}.json"
        if not path.exists():
            missing.append(query.qid)
            continue
        scores[query.qid] = metrics(json.loads(path.read_text(encoding="utf-8"))["tree"], query.answer)
    if missing:
        raise FileNotFoundError(f"no saved run for {len(missing)} queries in {out_dir}: {', '.join(missing[:10])}")
    return scores


SearchFn = Callable[[EvalQuery], Awaitable[dict[str, Any]]]
INCOMPLETE = ("failed", "partial", "cancelled")


async def _incomplete(path: anyio.Path) -> bool:
    return json.loads(await path.read_text(encoding="utf-8")).get("status") in INCOMPLETE


async def run_queries(
    queries: list[EvalQuery],
    search: SearchFn,
    out_dir: Path,
    *,
    concurrency: int = 4,
    on_done: Callable[[EvalQuery, dict[str, float]], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Run `search` (a deep search returning the result as JSON data) on every query not yet saved.

    Complete saved runs are kept: an interrupted evaluation resumes where it stopped. A saved run that
    failed or lost steps (`failed`, `partial`) is run again; the store's caches make that quick.
    """
    await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    limiter = anyio.Semaphore(concurrency)

    async def one(query: EvalQuery) -> None:
        path = anyio.Path(out_dir / f"{query.qid}.json")
        if not await path.exists() or await _incomplete(path):
            async with limiter:
                result = await search(query)
            tmp = path.with_suffix(".tmp")
            await tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
            await tmp.replace(path)
        if on_done is not None:
            tree = json.loads(await path.read_text(encoding="utf-8"))["tree"]
            on_done(query, metrics(tree, query.answer))

    async with anyio.create_task_group() as tg:
        for query in queries:
            tg.start_soon(one, query)
    return score_trees(queries, out_dir)
