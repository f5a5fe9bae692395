"""The paper's metrics on hand-checkable run trees, and dataset files read strictly."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import anyio
import pytest

from pasa_mcp.eval import EvalQuery, average, crawled, load_dataset, metrics, run_queries, score_trees


def node(title: str, score: float, children: dict[str, list[dict]] | None = None) -> dict:
    return {"title": title, "select_score": score, "child": children or {}}


TREE = {
    "title": "question",
    "select_score": -1,
    "child": {
        "q1": [
            node("Answer One", 0.9, {"2 Related Work": [node("Answer Two", 0.4), node("Noise A", 0.8)]}),
            node("Noise B", 0.2),
        ],
        "q2": [node("answer one!", 0.3), node("Noise C", 0.6)],
    },
}
ANSWERS = ["Answer One", "Answer Two", "Answer Three", "Answer Four"]


def test_crawled_papers_dedupe_by_title_key_keeping_the_best_score() -> None:
    assert crawled(TREE) == [("answerone", 0.9), ("noisea", 0.8), ("noisec", 0.6), ("answertwo", 0.4), ("noiseb", 0.2)]


def test_metrics_follow_the_papers_definitions() -> None:
    m = metrics(TREE, ANSWERS)
    assert m["crawler_recall"] == 2 / 4  # answer one and two were touched
    assert m["precision"] == 1 / 3  # selected: answer one, noise a, noise c
    assert m["recall"] == 1 / 4
    assert m["recall@20"] == m["recall@50"] == m["recall@100"] == 2 / 4


def test_recall_at_k_counts_only_the_top_k() -> None:
    many = {"child": {"q": [node(f"Noise {chr(65 + i)}{chr(65 + j)}", 0.9) for i in range(5) for j in range(5)]}}
    many["child"]["q"].append(node("Answer One", 0.1))
    m = metrics(many, ANSWERS)
    assert m["recall@20"] == 0 and m["recall@50"] == 1 / 4
    assert m["precision"] == 0 and m["crawler_recall"] == 1 / 4


def test_nothing_selected_means_zero_precision() -> None:
    assert metrics({"child": {}}, ANSWERS)["precision"] == 0.0


def test_average_over_queries() -> None:
    rows = [metrics(TREE, ANSWERS), metrics({"child": {}}, ANSWERS)]
    assert average(rows)["crawler_recall"] == 0.25


def record(qid: str, published: str = "20240115") -> dict:
    return {
        "qid": qid,
        "question": f"question {qid}",
        "answer": ["Answer One"],
        "source_meta": {"published_time": published},
    }


def test_datasets_load_with_the_end_date_a_week_before_publication(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(record(q)) for q in ("a", "b")) + "\n\n")
    queries = load_dataset(path)
    assert [q.qid for q in queries] == ["a", "b"]
    assert queries[0].end_date == date(2024, 1, 8)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "d.jsonl:2"),
        (json.dumps({"question": "x"}), "answer"),
        (json.dumps(record("x", "2024")), "published"),
    ],
)
def test_a_bad_dataset_line_is_an_error_naming_it(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record("ok")) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=problem):
        load_dataset(path)


@pytest.mark.anyio
async def test_runs_are_saved_resumed_and_rescored(tmp_path: Path) -> None:
    queries = [EvalQuery.model_validate(record(q)) for q in ("a", "b", "c")]
    ran: list[str] = []

    async def search(query: EvalQuery) -> dict:
        ran.append(query.qid)
        await anyio.lowlevel.checkpoint()
        return {"tree": {"child": {"q": [node("Answer One", 0.9 if query.qid != "b" else 0.1)]}}}

    (tmp_path / "c.json").write_text(json.dumps({"tree": {"child": {}}}))  # saved by an earlier, interrupted run
    scores = await run_queries(queries, search, tmp_path, concurrency=2)
    assert sorted(ran) == ["a", "b"]
    assert scores["a"]["recall"] == 1 and scores["b"]["recall"] == 0 and scores["c"]["crawler_recall"] == 0
    assert score_trees(queries, tmp_path) == scores
    (tmp_path / "a.json").unlink()
    with pytest.raises(FileNotFoundError, match="no saved run for 1 queries"):
        score_trees(queries, tmp_path)
