"""Tests of the issue-14 baselines: semantic transfer (methods/semantic.py) and matrix
completion (methods/completion.py). Expected values are written as the formulas of the module
docstrings; unit tests use a word-lookup embedder (no model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import methods
from benchmark.core.check import mock_universe
from benchmark.core.harness import Harness, MethodRun
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import FeatureStore
from methods.completion import (
    MatrixCompletion,
    hard_impute,
    predict_column,
    select_hyperparameters,
    truncated,
    zscore_columns,
)
from methods.semantic import (
    OwnTextSemanticTransfer,
    SemanticTransfer,
    cosine_distances,
    task_embedding,
)
from tests.methods._words import EMB, WORDS, WordEmbedder  # noqa: F401


@pytest.fixture(scope="module")
def mock_h() -> Harness:
    pdata, infos = mock_universe()
    zoo, ds = list(pdata.protocol.zoo), list(pdata.protocol.datasets)
    feats = {"class-stats": get_kind("class-stats").mock(zoo, ds, np.random.default_rng(3))}
    return Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")), features=feats)


def views(h: Harness, cls, target: str, **params):
    run = MethodRun(cls.name, cls, params)
    train = h.train_view(target, 0, cls.requires)
    tv = h.target_view(target, 0, h.candidates(run, target), cls.requires)
    return cls(**params).fit(train), train, tv


# ------------------------------------------------------------------ semantic transfer


def test_task_embedding_is_renormalised_mean_of_unit_rows():
    rows = np.array([[2.0, 0.0], [0.0, 3.0], [np.nan, 1.0]])  # NaN row ignored
    np.testing.assert_allclose(task_embedding(rows), [1 / math.sqrt(2), 1 / math.sqrt(2)])
    d = cosine_distances(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.6, 0.8]))
    np.testing.assert_allclose(d, [1 - 0.6, 1 - 0.8])
    with pytest.raises(ValueError):
        task_embedding(np.full((2, 2), np.nan))


def test_semantic_transfer_hand_computed(mock_h):
    target = "mock1"
    sel, train, tv = views(mock_h, SemanticTransfer, target, embedder=EMB, gamma=2.0)
    info = {d.id: d for d in train.sources}
    tgt_words = set(tv.dataset.classnames)

    def emb(names):
        v = np.zeros(len(WORDS))
        for c in names:
            v[WORDS.index(c)] += 1 / len(names)
        return v / np.linalg.norm(v)

    e_t = emb(tv.dataset.classnames)
    dist = {s: 1 - emb(info[s].classnames) @ e_t for s in train.source_ids}
    assert tgt_words  # the mock classes are words of WORDS
    got = sel.score(tv)
    for m in tv.candidates:
        row = train.ranks.loc[m]
        srcs = [s for s in train.source_ids if np.isfinite(row[s])]
        d = np.array([dist[s] for s in srcs])
        w = np.exp(-2.0 * (d - d.min()))
        w /= w.sum()
        assert got[m] == pytest.approx(-(w * row[srcs].to_numpy()).sum())
    ex = sel.explain(tv)
    assert ex["weight"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(ex.set_index("source")["distance"].reindex(list(dist)),
                               list(dist.values()))


def test_semantic_transfer_gamma_zero_is_avgrank(mock_h):
    sel, train, tv = views(mock_h, SemanticTransfer, "mock2", embedder=EMB, gamma=0.0)
    avg = -train.ranks.mean(axis=1).reindex(list(tv.candidates))
    pd.testing.assert_series_equal(sel.score(tv), avg, check_names=False)
    with pytest.raises(ValueError, match="gamma"):
        SemanticTransfer(embedder=EMB, gamma=-1).fit(train)


def test_own_text_uses_each_models_text_weights(mock_h):
    sel, train, tv = views(mock_h, OwnTextSemanticTransfer, "mock3", gamma=5.0)
    src_view, tgt_view = train.feature("class-stats"), tv.feature("class-stats")
    got = sel.score(tv)
    for m in tv.candidates:
        e_t = task_embedding(tgt_view.get(m, "mock3")["text_weights"])
        row = train.ranks.loc[m]
        srcs = [s for s in train.source_ids if np.isfinite(row[s]) and src_view.has(m, s)]
        d = np.array([1 - task_embedding(src_view.get(m, s)["text_weights"]) @ e_t for s in srcs])
        w = np.exp(-5.0 * (d - d.min()))
        w /= w.sum()
        assert got[m] == pytest.approx(-(w * row[srcs].to_numpy()).sum())
    # model-specific: the source distances differ between models
    a, b = tv.candidates[:2]
    assert sel.distances(tv, a) != sel.distances(tv, b)


# ------------------------------------------------------------------ matrix completion


def test_zscore_and_truncated_svd():
    a = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]])
    z = zscore_columns(a)
    np.testing.assert_allclose(z[:, 0], (np.array([1, 3, 5]) - 3) / math.sqrt(8 / 3))
    np.testing.assert_allclose(z[[0, 2], 1], [-1, 1])
    assert np.isnan(z[1, 1])
    m = np.outer([1.0, 2.0, 3.0], [1.0, -1.0]) + np.outer([0.0, 1.0, 0.0], [0.1, 0.1])
    np.testing.assert_allclose(truncated(m, 2), m, atol=1e-12)
    np.testing.assert_allclose(np.linalg.matrix_rank(truncated(m, 1)), 1)


def test_hard_impute_recovers_a_rank_one_cell():
    truth = np.outer([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, -1.0])
    z = truth.copy()
    z[2, 1] = np.nan
    filled = hard_impute(z, rank=1, n_iter=200)
    assert filled[2, 1] == pytest.approx(truth[2, 1], rel=1e-3)
    np.testing.assert_array_equal(np.delete(filled.ravel(), 7), np.delete(truth.ravel(), 7))


def test_predict_column_is_ridge_combination_of_low_rank_columns():
    z = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    x = np.eye(2)
    x_t = np.array([0.6, 0.8])
    lam = 0.5
    # full rank: Z_r = Z; K = I, alpha = k_t / (1 + lam)
    np.testing.assert_allclose(predict_column(z, x, x_t, 2, lam), z @ (x_t / 1.5))
    # identical side features for target and source 0, lam -> 0: the target copies source 0
    x2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(predict_column(z, x2, x2[0], 2, 1e-9), z[:, 0], atol=1e-6)


def test_selection_inside_fit_uses_sources_only(mock_h):
    sel, train, tv = views(mock_h, MatrixCompletion, "mock1", embedder=EMB)
    raw = train.accuracy.to_numpy(float)
    r, lam, cv = select_hyperparameters(raw, sel.x_, (1, 2, 3, 5), (0.1, 1.0, 10.0))
    assert (sel.rank_, sel.lam_) == (min(r, raw.shape[1]), lam)
    # the selected score is the best of the grid, each point a leave-one-source-out mean rho
    n = raw.shape[1]
    rhos = []
    for j in range(n):
        keep = [i for i in range(n) if i != j]
        pred = predict_column(zscore_columns(raw[:, keep]), sel.x_[keep], sel.x_[j],
                              min(r, n - 1), lam)
        ok = np.isfinite(raw[:, j])
        rhos.append(spearmanr(pred[ok], raw[ok, j])[0])
    assert cv == pytest.approx(np.mean(rhos))
    fixed, _, _ = views(mock_h, MatrixCompletion, "mock1", embedder=EMB, rank=2, lam=1.0)
    assert (fixed.rank_, fixed.lam_) == (2, 1.0)
    s = fixed.score(tv)
    assert list(s.index) == list(tv.candidates) and np.isfinite(s).all()


@pytest.mark.parametrize("bad", [{"rank": 0}, {"lam": 0.0}, {"lam": float("inf")}, {"n_iter": 0}])
def test_matrix_completion_refuses_bad_parameters(mock_h, bad):
    _, train, _ = views(mock_h, MatrixCompletion, "mock1", embedder=EMB)
    with pytest.raises(ValueError):
        MatrixCompletion(embedder=EMB, **bad).fit(train)


def test_registered():
    for name in ("semantic-transfer", "semantic-transfer-own", "matrix-completion"):
        assert name in methods.REGISTRY
        assert methods.make(name).get_params()


def test_spearman_is_scipys_statistic_bit_for_bit():
    """The cross-validation criterion is scipy's spearmanr statistic exactly (ties, NaNs)."""
    from scipy.stats import rankdata

    from methods.completion import _average_ranks, _spearman

    rng = np.random.default_rng(0)
    for n in (3, 5, 21, 48):
        for _ in range(50):
            a = rng.normal(size=n)
            b = np.round(rng.normal(size=n), 1)  # ties
            a[rng.random(n) < 0.1] = np.nan
            ok = np.isfinite(a) & np.isfinite(b)
            assert np.array_equal(_average_ranks(b), rankdata(b, method="average"))
            want = (float(spearmanr(a[ok], b[ok])[0])
                    if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0 else 0.0)
            assert _spearman(a, b) == want
