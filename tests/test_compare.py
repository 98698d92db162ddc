"""``benchmark compare RUN_A RUN_B`` (benchmark/report/compare.py) on hand-built results directories."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.harness import SCORE_COLUMNS
from benchmark.core.results import read
from benchmark.report import analysis
from benchmark.report.compare import compare

TARGETS = ["t1", "t2", "t3", "t4", "t5", "t6"]


def _write_run(path, values: dict[str, list[float]], seeds=(0,), candidates=None,
               protocol="lovm", extra=None):
    """A results directory: ndcg@5 per target for each method (same value for every seed)."""
    path.mkdir(parents=True)
    rows, cov = [], []
    for method, vals in values.items():
        for seed in seeds:
            for t, v in zip(TARGETS, vals, strict=False):
                if v is not None:
                    rows.append((method, protocol, seed, t, "ndcg", 5, v + 0.01 * seed))
        for t in TARGETS:
            got = (candidates or {}).get(method, 10)
            cov.append((method, t, got, 10, ""))
    pd.DataFrame(rows, columns=SCORE_COLUMNS).to_csv(path / "scores.csv", index=False)
    pd.DataFrame(columns=["method", "seed", "target", "model", "score"]).to_csv(
        path / "predictions.csv", index=False)
    pd.DataFrame(cov, columns=["method", "target", "candidates", "protocol_candidates",
                               "uncovered"]).to_csv(path / "coverage.csv", index=False)
    meta = {"protocol": {"name": protocol, "metrics": {"ndcg_ideal": "intersection"}},
            **(extra or {})}
    (path / "run.json").write_text(json.dumps(meta))
    return path


@pytest.fixture
def runs(tmp_path):
    a = _write_run(tmp_path / "A", {"inb": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
                                    "old": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}, seeds=(0, 1))
    b = _write_run(tmp_path / "B", {"inb": [0.9, 0.8, 0.7, 0.9, 0.6, None],
                                    "new": [0.3] * 6}, candidates={"inb": 8})
    return a, b


def test_compare_pairs_targets_both_runs_have(runs):
    table, notes = compare(read(runs[0]), read(runs[1]), [("ndcg", 5)])
    inb = table.set_index("method").loc["inb"]
    a = [0.505] * 5  # mean over seeds 0 and 1 of 0.5 and 0.51
    b = [0.9, 0.8, 0.7, 0.9, 0.6]
    assert inb["n_targets"] == 5
    assert inb["mean_a"] == pytest.approx(0.505) and inb["mean_b"] == pytest.approx(0.78)
    assert inb["delta"] == pytest.approx(0.78 - 0.505)
    assert inb["p_wilcoxon"] == pytest.approx(analysis.wilcoxon(b, a).pvalue)
    assert inb["p_wilcoxon"] == pytest.approx(2 / 32)  # all five positive, exact
    assert inb["p_permutation"] == pytest.approx(2 / 32)
    assert (inb["wins"], inb["ties"], inb["losses"]) == (5, 0, 0)
    assert inb["mark"] == "="  # 0.0625 is not < 0.05
    only = table.set_index("method").loc[["old", "new"]]
    assert only["n_targets"].tolist() == [0, 0] and only["delta"].isna().all()
    assert any("inb: coverage differs (A all candidates, B 48/60 candidate cells)" in n
               for n in notes)
    assert any("inb: 1 target(s) in one run only (t6)" in n for n in notes)


def test_compare_command_writes_csv_and_latex(runs, tmp_path, capsys):
    csv, tex = tmp_path / "c.csv", tmp_path / "c.tex"
    rc = main(["compare", str(runs[0]), str(runs[1]), "--metrics", "ndcg@5",
               "--csv", str(csv), "--latex", str(tex)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| ndcg@5   | inb      | 0.505 | 0.780 | 0.275 =" in out
    assert "| ndcg@5   | new      | —     | —     | —" in out
    back = pd.read_csv(csv)
    assert list(back.columns) == ["metric", "method", "n_targets", "mean_a", "mean_b", "delta",
                                  "p_wilcoxon", "p_permutation", "wins", "ties", "losses",
                                  "mark"]
    assert back.loc[back.method == "inb", "wins"].item() == 5
    text = tex.read_text()
    assert "\\begin{tabular}" in text and "\\toprule" in text and "\\bottomrule" in text
    assert "inb & 0.505 & 0.780 & 0.275 = & 5 & 0.062 & 0.062 & 5/0/0 \\\\" in text
    assert "B - A" in text and "−" not in text


def test_compare_flags_different_protocols_and_common_candidates(tmp_path):
    a = _write_run(tmp_path / "A", {"inb": [0.5] * 6})
    b = _write_run(tmp_path / "B", {"inb": [0.5] * 6}, protocol="swab",
                   extra={"common_candidates": True})
    table, notes = compare(read(a), read(b), [("ndcg", 5), ("tau", 5)])
    assert "different protocols: A is lovm, B is swab" in notes
    assert "one run ranks only the common candidates (common_candidates=True)" in notes
    assert "tau@5: in neither run" in notes
    row = table.iloc[0]
    assert row["p_wilcoxon"] == 1.0 and (row["wins"], row["ties"], row["losses"]) == (0, 6, 0)


def test_bad_metric_is_a_one_line_error(runs, capsys):
    assert main(["compare", str(runs[0]), str(runs[1]), "--metrics", "ndcg5"]) == 2
    assert "--metrics 'ndcg5': expected METRIC@K" in capsys.readouterr().err
