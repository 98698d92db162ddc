"""LOVM's performance-prediction task (benchmark/studies/performance_prediction.py).

- the two L1 definitions on hand-computed numbers, LOVM's drop_duplicates;
- ModelGPT's value regression on a hand-made universe (error known exactly), INB, AvgRank;
- the reproduction of LOVM's own ``generate_results.py --pred_type model_pred`` output
  (``tests/fixtures/upstream_outputs.toml``, [[lovm_pred]], with the command) to 4 decimals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.core.harness import resolve_methods
from benchmark.data._toml import load_toml
from benchmark.studies import performance_prediction as pp
from tests.methods.test_modelgpt import universe

FIXTURE = load_toml(Path(__file__).parent / "fixtures" / "upstream_outputs.toml")
FAST = {"INB", "C"}


def test_l1_definitions_by_hand() -> None:
    pred = pd.Series({"a": 0.9, "b": 0.5, "c": 0.4, "d": 0.1})
    truth = pd.Series({"a": 0.7, "b": 0.8, "c": 0.4, "d": 0.3, "e": 0.99})  # e: not a candidate
    # errors +0.2, -0.3, 0, -0.2: MAE 0.7 / 4; LOVM's over the predicted top 2 (a, b):
    # |(0.2 - 0.3) / 2| = 0.05 (errors of opposite sign cancel)
    got = pp.l1_errors(pred, truth, k=2)
    assert got["l1"] == pytest.approx(0.175) and got["l1_lovm"] == pytest.approx(0.05)
    assert pp.l1_errors(pred, truth, k=5)["l1_lovm"] == pytest.approx(0.3 / 4)


def test_lovm_dedupe_keeps_the_first_in_csv_order() -> None:
    pred = pd.Series({"a": 0.5, "b": 0.7, "c": 0.5, "d": 0.7})
    got = pp.lovm_dedupe(pred, ["d", "c", "b", "a"])
    assert list(got.index) == ["d", "c"]


def test_modelgpt_value_regression_is_uncentred_and_exact() -> None:
    # acc(m, d) = k_d + 2 x0 - x1, k = 0, 1, 2 on the sources and 3 on the target; every
    # dataset has the same multiset of x, so the raw fit is 1 + 2 x0 - x1 exactly and every
    # prediction on the target is 2 too low: L1 = LOVM's L1 = 2
    h, models, xs, _ = universe(lambda i, x, inet: 2.0 * x[0] - 1.0 * x[1])
    run = resolve_methods(["modelgpt-noinb"])[0]
    pred = pp.predict_fold(h, run, "t")
    expect = pd.Series({m: 1 + 2 * xs[(m, "t")][0] - xs[(m, "t")][1] for m in models})
    np.testing.assert_allclose(pred.reindex(models), expect, atol=1e-9)
    table, skipped = pp.run(h, resolve_methods(["modelgpt-noinb", "random"]))
    assert skipped == {"random": "predicts no accuracy value (ranking only)"}
    assert table["l1"].iloc[0] == pytest.approx(2.0) and table["l1_lovm"].iloc[0] == pytest.approx(2.0)
    # the ranking path is unchanged: centred fit, same slope
    sel = run.make().fit(h.train_view("t", 0, run.cls.requires))
    np.testing.assert_allclose(sel.estimator_.coef_[:2], [2.0, -1.0], atol=1e-9)


def test_inb_and_avgrank_predictions() -> None:
    h, models, _, inet = universe(lambda i, x, inet: x[0])
    inb, avg = resolve_methods(["inb", "avgrank"])
    np.testing.assert_allclose(pp.predict_fold(h, inb, "t").reindex(models),
                               [inet[m] for m in models])
    acc = h.pdata.targets_gt.matrix.reindex(index=list(models), columns=["s1", "s2", "s3"])
    np.testing.assert_allclose(pp.predict_fold(h, avg, "t").reindex(models), acc.mean(axis=1))
    s = pp.summary(pp.run(h, [inb, avg])[0])
    assert list(s.columns) == [*pp.METRICS, "targets"] and set(s.index) == {"inb", "avgrank"}


def _rows():
    return [pytest.param(r, id=f"{r['scores']}-{'search' if r['subsets'] else 'all'}",
                         marks=() if r["scores"] in FAST else pytest.mark.slow)
            for r in FIXTURE["lovm_pred"]]


@pytest.mark.parametrize("row", _rows())
def test_matches_lovm_model_pred_output(row, data) -> None:
    got = pp.upstream(data, row["scores"], row["subsets"])
    assert "+".join(got["features"]) == row["features"]
    assert round(got["l1_lovm"], 4) == round(row["l1"], 4)


def test_leaderboard_section_from_a_hand_table(tmp_path) -> None:
    from benchmark.core.results import MARKER
    from benchmark.report import leaderboard as lb

    d = tmp_path / "lovm" / lb.PREDICTION_DIR
    d.mkdir(parents=True)
    (tmp_path / MARKER).write_text("root\n")
    (d / MARKER).write_text("prediction\n")
    pd.DataFrame([("a", "t1", 0.1, 0.05, 5), ("a", "t2", 0.3, 0.15, 5),
                  ("b", "t1", 0.2, 0.2, 5), ("b", "t2", 0.2, 0.0, 5)],
                 columns=["method", "target", "l1", "l1_lovm", "candidates"]
                 ).to_csv(d / "table.csv", index=False)
    (d / "skipped.json").write_text('{"random": "predicts no accuracy value (ranking only)"}')
    assert lb.foreign_entries(tmp_path) == []  # the rerun may replace this root
    text = "\n".join(lb.prediction_section("lovm", {"methods": ["a", "b", "random"]}, d))
    assert text.startswith("## Performance prediction (L1)")
    # means: a 0.2 / 0.1, b 0.2 / 0.1 (ties keep the groupby order)
    import re

    assert re.search(r"\| a +\| 0\.2000 +\| 0\.1000 +\| 2 ", text)
    assert re.search(r"\| b +\| 0\.2000 +\| 0\.1000 +\| 2 ", text)
    assert "`random`: predicts no accuracy value" in text
    empty = "\n".join(lb.prediction_section("lovm", {"methods": ["a"]}, tmp_path / "none"))
    assert "Declared for a but not run" in empty


@pytest.mark.slow
@pytest.mark.parametrize("row", FIXTURE["lovm_pred_grid"], ids=lambda r: f"{r['model']}-{r['scores']}")
def test_grid_searched_variant_matches_lovm_grid_search(row, data) -> None:
    got = pp.upstream(data, row["scores"], False, f"modelgpt-{row['model']}")
    assert got["l1_lovm"] == pytest.approx(row["l1"], abs=1e-6)  # fixture: 6 decimals
