"""The library API: benchmark.evaluate / Results / benchmark.leaderboard, as the README shows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import benchmark
from benchmark.cli import main
from benchmark.errors import UsageError
from methods.base import Selector
from methods.inb import ImageNetBaseline


class MeanAccuracy(Selector):
    """Mean source accuracy, scaled: the parameter must reach every fold's fresh instance."""

    name = "mean-acc"

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def fit(self, train):
        self.mean_ = train.accuracy.mean(axis=1)
        return self

    def score(self, target):
        return self.weight * self.mean_.reindex(list(target.candidates))


def test_evaluate_accepts_names_classes_and_instances():
    res = benchmark.evaluate(["avgrank", ImageNetBaseline, MeanAccuracy(weight=2.0)],
                             protocol="lovm", seeds=2)
    assert isinstance(res, benchmark.Results)
    assert res.methods == ["avgrank", "inb", "mean-acc"]
    assert res.protocol == "lovm" and set(res.scores["seed"]) == {0, 1}


def test_same_method_twice_is_refused():
    with pytest.raises(UsageError, match="requested twice"):
        benchmark.evaluate(["inb", "inb"], protocol="lovm", seeds=1)


def test_instance_parameters_reach_the_folds_and_the_provenance():
    a = benchmark.evaluate([MeanAccuracy(weight=1.0)], protocol="lovm", seeds=1)
    b = benchmark.evaluate([MeanAccuracy(weight=3.0)], protocol="lovm", seeds=1)
    pa = a.predictions.set_index(["target", "model"])["score"]
    pb = b.predictions.set_index(["target", "model"])["score"]
    pd.testing.assert_series_equal(pa * 3.0, pb, check_exact=False, rtol=1e-12)
    assert b.provenance["methods"]["mean-acc"]["params"] == {"weight": 3.0}


def test_evaluate_equals_the_run_command(tmp_path):
    out = tmp_path / "cli"
    assert main(["run", "--methods", "inb,avgrank", "--protocol", "lovm", "--seeds", "2",
                 "--out", str(out), "--no-progress"]) == 0
    res = benchmark.evaluate(["inb", "avgrank"], protocol="lovm", seeds=2)
    cli_scores = pd.read_csv(out / "scores.csv")
    pd.testing.assert_frame_equal(res.scores.reset_index(drop=True)[cli_scores.columns],
                                  cli_scores, check_dtype=False)


def test_results_table_save_load_compare(tmp_path):
    res = benchmark.evaluate(["inb", "avgrank"], protocol="lovm", seeds=2,
                             params={"avgrank": {}})
    table = res.table()
    assert list(table["method"]) == ["inb", "avgrank"] or set(table["method"]) == {"inb",
                                                                                   "avgrank"}
    assert "NDCG@5" in table.columns
    assert res.per_target().shape == (22, 2)
    path = res.save(tmp_path / "r")
    run = json.loads((path / "run.json").read_text())
    assert run["protocol"]["name"] == "lovm" and run["seeds"] == [0, 1]
    back = benchmark.Results.load(path)
    pd.testing.assert_frame_equal(back.scores, res.scores.reset_index(drop=True),
                                  check_dtype=False)
    cmp = back.compare(res)
    assert set(cmp["method"]) == {"inb", "avgrank"}
    assert (cmp["delta"].abs() < 1e-12).all()  # a run compared with itself
    with pytest.raises(FileExistsError):
        res.save(path)


def test_bad_method_and_bad_params_are_one_line_errors():
    with pytest.raises(UsageError, match="unknown parameter 'beta' for method 'mean-acc'"):
        benchmark.evaluate([MeanAccuracy], protocol="lovm", params={"mean-acc": {"beta": 1}})
    with pytest.raises(UsageError, match="neither a name"):
        benchmark.evaluate([42], protocol="lovm")
    with pytest.raises(UsageError, match="not in --methods"):
        benchmark.evaluate(["inb"], protocol="lovm", params={"dcd": {"beta": 2}})


def test_importing_benchmark_stays_light():
    import subprocess
    import sys

    code = ("import sys, benchmark; benchmark.__version__; "
            "print(any(m in sys.modules for m in ('pandas', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_leaderboard_without_runs_says_what_to_do(tmp_path):
    with pytest.raises(UsageError, match="no runs under"):
        benchmark.leaderboard(tmp_path / "nothing")
