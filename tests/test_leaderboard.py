"""Leaderboard: aggregation rules, deterministic rendering, the freshness check."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from benchmark import leaderboard
from benchmark.harness import SCORE_COLUMNS


def _scores(rows):
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def test_mean_over_targets_then_mean_std_over_seeds():
    rows = []
    for seed, (a, b) in enumerate([(0.2, 0.4), (0.6, 0.8)]):
        rows += [("m", "p", seed, "t1", "ndcg", 5, a), ("m", "p", seed, "t2", "ndcg", 5, b)]
    means = leaderboard.seed_means(_scores(rows))
    assert means["value"].tolist() == pytest.approx([0.3, 0.7])
    table = leaderboard.summarize(_scores(rows), columns=[("ndcg", 5)])
    assert table.loc[0, "NDCG@5"] == f"{0.5:.3f} ± {np.std([0.3, 0.7]):.3f}"


def test_a_missing_target_makes_the_mean_missing_not_a_subset_average():
    rows = [("a", "p", 0, "t1", "ndcg", 5, 0.5), ("a", "p", 0, "t2", "ndcg", 5, 0.7),
            ("b", "p", 0, "t1", "ndcg", 5, 0.9)]  # b lacks t2
    table = leaderboard.summarize(_scores(rows), columns=[("ndcg", 5)]).set_index("method")
    assert table.loc["a", "NDCG@5"] == "0.600 ± 0.000"
    assert table.loc["b", "NDCG@5"] == "—"


def test_negative_zero_is_rendered_as_zero():
    assert leaderboard._fmt(-0.0000001, 0.0) == "0.000 ± 0.000"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("lb")
    spec = {"protocol": {"lovm": {"seeds": 2, "methods": ["inb", "random"]},
                         "dcd48": {"seeds": 2, "methods": ["inb", "tests.test_harness:_NeedsConductance"]}}}
    leaderboard.rerun(spec, root, data)
    return spec, root, leaderboard.render_all(spec, root)


def test_render_is_deterministic_and_complete(rendered):
    spec, root, files = rendered
    assert set(files) == {"README.md", "lovm.md", "dcd48.md"}
    assert files == leaderboard.render_all(spec, root)
    dcd = files["dcd48.md"]
    assert "## Reported in the literature (not computed here)" in dcd
    assert "| DCD      |    0.402 |    0.707 |    0.752 | 0.365 |" in dcd
    assert "needs conductance features" in dcd  # a method without packs is listed, not scored
    assert "| **all**" in dcd and "983/1008" in dcd
    assert "train split" in dcd
    assert "Seeds: 2 (0, 1)" in files["lovm.md"]
    assert "τ variant = `clean`" in files["lovm.md"]
    for text in files.values():
        assert "/tmp" not in text and "20" + "26-" not in text  # no paths, no dates


def test_check_mode_detects_a_stale_leaderboard(rendered, tmp_path, monkeypatch, capsys):
    spec, root, files = rendered
    monkeypatch.setattr(leaderboard, "load_spec", lambda: spec)
    out = tmp_path / "md"
    out.mkdir()
    args = argparse.Namespace(results=str(root), rerun=False, check=False, out=str(out),
                              mirror=None, offline=True)
    assert leaderboard.main(args) == 0
    args.check = True
    assert leaderboard.main(args) == 0
    (out / "lovm.md").write_text((out / "lovm.md").read_text().replace("inb", "INB", 1))
    assert leaderboard.main(args) == 1
    assert "leaderboard is stale: lovm.md" in capsys.readouterr().err
