"""Tests of benchmark/studies/proxy_reliability.py (DCD Table 1, our reading)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from benchmark.studies.proxy_reliability import (
    dcd_distances,
    pair_spearman,
    reliability_table,
    wide,
)
from methods.dcd import dcd, normalize_profile


def test_pair_spearman_hand_case():
    ds = ["a", "b", "c"]
    acc = {"a": 0.1, "b": 0.4, "c": 0.9}
    dist = np.array([[0, 1, 3], [1, 0, 2], [3, 2, 0.0]])
    # pairs (a,b), (a,c), (b,c): distances 1, 3, 2; gaps 0.3, 0.8, 0.5 -> same order
    rho, n = pair_spearman(acc, ds, dist)
    assert (rho, n) == (pytest.approx(1.0), 3)
    acc["c"] = np.nan  # one pair left: undefined
    assert np.isnan(pair_spearman(acc, ds, dist)[0])


def test_dcd_distances_are_symmetrised_dcd():
    prof = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([3.0, 1.0, 1.0]),
            "c": np.array([1.0, 1.0, 1.0])}
    ids, d = dcd_distances(prof, beta=2.0)
    p = {k: normalize_profile(v) for k, v in prof.items()}
    want = (float(dcd(p["a"], p["b"], 2.0)) + float(dcd(p["b"], p["a"], 2.0))) / 2
    assert ids == ["a", "b", "c"] and d[0, 1] == pytest.approx(want) == d[1, 0]
    assert np.allclose(np.diag(d), 0) and np.allclose(d, d.T)


def test_reliability_table_per_model_and_mean():
    acc = pd.DataFrame({"a": [0.1, 0.5], "b": [0.4, 0.5], "c": [0.9, 0.2], "d": [0.3, 0.7]},
                       index=["m1", "m2"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    ids = list(acc.columns)
    t = reliability_table(acc, {"p": lambda m: (ids, dist), "none": lambda m: None})
    assert list(t["model"]) == ["m1", "m2"] and set(t["proxy"]) == {"p"}
    iu = np.triu_indices(4, 1)
    for m in ("m1", "m2"):
        v = acc.loc[m].to_numpy()
        want = spearmanr(dist[iu], np.abs(v[:, None] - v[None])[iu])[0]
        assert t.set_index("model").loc[m, "spearman"] == pytest.approx(want)
    assert wide(t).loc["mean", "p"] == pytest.approx(t["spearman"].mean())


def test_model_agreement_and_families():
    from benchmark.studies.proxy_reliability import family, model_agreement

    assert family("ViT-B-32:openai") == "ViT" and family("convnext_base_w:laion") == "convnext"
    ids = ["a", "b", "c", "d"]
    d1 = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0.0]])
    d2 = d1 * 2  # same order -> 1
    d3 = np.where(np.eye(4) > 0, 0, 10 - d1)  # reversed order -> -1
    a = model_agreement({"ViT-x:1": (ids, d1), "RN50:1": (ids, d3), "ViT-y:1": (ids, d2)})
    assert list(a.index) == ["RN50:1", "ViT-x:1", "ViT-y:1"]  # grouped by family
    assert a.loc["ViT-x:1", "ViT-y:1"] == pytest.approx(1.0)
    assert a.loc["ViT-x:1", "RN50:1"] == pytest.approx(-1.0)
