"""Tests of benchmark/studies/seed_boxplots.py (per-seed means over targets)."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark.studies.seed_boxplots import per_seed, plot


def test_per_seed_mean_over_targets(tmp_path):
    rows = [("a", 0, "t1", "ndcg", 5, 0.2), ("a", 0, "t2", "ndcg", 5, 0.6),
            ("a", 1, "t1", "ndcg", 5, 1.0), ("a", 1, "t2", "ndcg", 5, 0.0),
            ("a", 0, "t1", "ndcg", 3, 9.0)]
    s = pd.DataFrame(rows, columns=["method", "seed", "target", "metric", "k", "value"])
    t = per_seed(s, ["ndcg@5"])
    assert list(t["value"]) == pytest.approx([0.4, 0.5]) and set(t["metric"]) == {"ndcg@5"}
    plot(t, ["ndcg@5"], tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 0
