"""Tests of the DCD selector (methods/dcd.py) and of its place in the harness and CLI.

Expected values are written as the formulas of ``docs/methods/dcd.md``; the theory of its
section 7 is checked as properties (target-sufficiency, asymmetry, softmax optimality against
a numerical optimiser, the tail-mass bound of Lemma D.1).
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import methods
from benchmark.core.check import check_selector, mock_universe
from benchmark.core.harness import Harness, MethodRun, MissingFeaturesError, resolve_methods
from benchmark.core.metrics import MetricConfig
from benchmark.core.protocol import Protocol, ProtocolData
from benchmark.data.catalog import DatasetInfo
from benchmark.data.groundtruth import COLUMNS, GroundTruth
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import Extractor, FeaturePackError, FeatureStore
from methods.dcd import (
    DCDSelector,
    cosine_distance,
    dcd,
    divergences,
    importance,
    jensen_shannon,
    normalize_profile,
    predict_rank,
    sample_images,
    source_weights,
    task_profile,
)

E = math.e
RANDOM_INIT = Extractor("test", "0", {"random_init": True})


# ---------------------------------------------------------------------- pure functions


def test_normalize_profile_formulas() -> None:
    phi = np.array([1.0, 3.0, 4.0])
    eps = 1e-8
    np.testing.assert_allclose(normalize_profile(phi), phi / (8 + eps))
    np.testing.assert_allclose(normalize_profile(phi, "max"), phi / (4 + eps))
    np.testing.assert_allclose(normalize_profile(phi, "zscore"),
                               (phi - 8 / 3) / (np.std(phi) + eps))
    # rows of a matrix are normalised independently (the source profiles of one model)
    np.testing.assert_allclose(normalize_profile(np.stack([phi, 2 * phi]))[1], phi / (8 + eps / 2))
    with pytest.raises(ValueError, match="unknown normalize"):
        normalize_profile(phi, "l2")


def test_importance_is_softmax_of_beta_p_without_overflow() -> None:
    p = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(importance(p, 2.0), np.exp(2 * p) / np.exp(2 * p).sum())
    w = importance(np.array([1000.0, 0.0]), 10.0)  # exp(10000) overflows without log-sum-exp
    np.testing.assert_allclose(w, [1.0, 0.0])
    np.testing.assert_allclose(importance(p, 0.0), np.full(3, 1 / 3))


def test_dcd_hand_value_and_asymmetry() -> None:
    p_t, p_s = np.array([0.1, 0.9]), np.array([0.5, 0.5])
    w_t = np.array([1, math.exp(1.6)]) / (1 + math.exp(1.6))  # softmax(2 * p_t), shifted by 0.2
    forward = w_t[0] * 0.4 / 0.1 + w_t[1] * 0.4 / 0.9
    assert dcd(p_s, p_t, beta=2.0) == pytest.approx(forward, rel=1e-7)
    backward = 0.5 * 0.4 / 0.5 + 0.5 * 0.4 / 0.5  # w(s) = (1/2, 1/2)
    assert dcd(p_t, p_s, beta=2.0) == pytest.approx(backward, rel=1e-7)
    assert abs(forward - backward) > 0.2  # DCD(s->t) != DCD(t->s)


def test_dcd_vectorised_over_sources() -> None:
    rng = np.random.default_rng(0)
    p_t, p_s = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5), size=4)
    np.testing.assert_allclose(dcd(p_s, p_t, 1.5), [dcd(row, p_t, 1.5) for row in p_s])
    with pytest.raises(ValueError, match="different lengths"):
        dcd(p_s[:, :3], p_t, 1.5)


@settings(max_examples=100, deadline=None)
@given(
    phi=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=12),
    scale=st.floats(0.1, 10.0),
    beta=st.floats(0.0, 20.0),
    normalize=st.sampled_from(["sum", "max", "zscore"]),
)
def test_target_sufficiency(phi, scale, beta, normalize) -> None:
    """p(s) == p(t) on every block -> DCD(s->t) = 0 (a rescaled source has the same profile)."""
    phi_t = np.asarray(phi)
    assert dcd(normalize_profile(phi_t, normalize), normalize_profile(phi_t, normalize),
               beta) == 0.0
    if normalize != "zscore":
        # a rescaled source has the same profile up to eps: with D = sum (or max) of phi_t,
        # p_l(s) / p_l(t) = s (D + eps) / (s D + eps), so delta_l <= eps |s - 1| / (s D)
        d = divergences(scale * phi_t[None], phi_t, "dcd", beta, normalize)
        total = phi_t.sum() if normalize == "sum" else phi_t.max()
        assert 0 <= d[0] <= 1e-8 * abs(scale - 1) / (scale * total) * (1 + 1e-6) + 1e-15


def test_dcd_zero_when_matching_on_the_important_blocks() -> None:
    # target mass sits on block 0; the source deviates only on block 2 -> DCD ~ w_2 * delta_2
    p_t = np.array([0.9, 0.09, 0.01])
    p_s = np.array([0.9, 0.09, 0.02])
    w = importance(p_t, 50.0)
    assert dcd(p_s, p_t, 50.0) == pytest.approx(w[2] * 1.0, rel=1e-6)
    assert dcd(p_s, p_t, 50.0) < 1e-15


def _objective(w: np.ndarray, p: np.ndarray, beta: float) -> float:
    w = np.clip(w, 0.0, None)
    ent = -np.sum(np.where(w > 0, w * np.log(np.maximum(w, 1e-300)), 0.0))
    return float(w @ p + ent / beta)


@pytest.mark.parametrize("beta", [0.5, 2.5, 10.0])
@pytest.mark.parametrize("n_blocks", [2, 4, 7])
def test_softmax_maximises_entropy_regularised_alignment(beta, n_blocks) -> None:
    rng = np.random.default_rng(n_blocks * 100 + int(beta * 10))
    p = rng.dirichlet(np.ones(n_blocks))
    best = _objective(importance(p, beta), p, beta)
    # closed form of the maximum: logsumexp(beta p) / beta
    assert best == pytest.approx(np.log(np.sum(np.exp(beta * p))) / beta, rel=1e-9)
    found = []
    for _ in range(5):
        res = minimize(
            lambda w: -_objective(w, p, beta), rng.dirichlet(np.ones(n_blocks)),
            method="SLSQP", bounds=[(0.0, 1.0)] * n_blocks,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        w = np.clip(res.x, 0, None)
        found.append(_objective(w / w.sum(), p, beta))
    assert best >= max(found) - 1e-9
    assert best - max(found) < 1e-5  # the optimiser reaches it: softmax is the maximiser
    for w in rng.dirichlet(np.ones(n_blocks), size=200):
        assert best >= _objective(w, p, beta)


@settings(max_examples=200, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
    beta=st.floats(0.0, 60.0),
    data=st.data(),
)
def test_lemma_d1_tail_mass_bound(p, beta, data) -> None:
    p = np.asarray(p)
    k = data.draw(st.integers(1, len(p) - 1))
    order = np.argsort(-p, kind="stable")
    delta = p[order[k - 1]] - p[order[k]]
    outside = importance(p, beta)[order[k:]].sum()
    bound = (len(p) - k) / k * np.exp(-beta * delta)
    assert outside <= bound + 1e-12


def test_large_beta_restricts_dcd_to_the_salient_block() -> None:
    p_t = np.array([0.2, 0.5, 0.3])
    p_s = np.array([0.4, 0.4, 0.2])
    restricted = abs(0.4 - 0.5) / 0.5  # delta on the top-1 block
    assert dcd(p_s, p_t, 500.0) == pytest.approx(restricted, rel=1e-7)
    assert abs(dcd(p_s, p_t, 1.0) - restricted) > 0.1


def test_source_weights() -> None:
    d = np.array([0.3, 0.1, 0.7])
    w = source_weights(d, 2.0)
    np.testing.assert_allclose(w, np.exp(-2 * d) / np.exp(-2 * d).sum())
    assert w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(source_weights(d, 0.0), np.full(3, 1 / 3))  # gamma = 0: uniform
    np.testing.assert_array_equal(source_weights(d, np.inf), [0.0, 1.0, 0.0])
    np.testing.assert_allclose(source_weights(d, 1e6), [0.0, 1.0, 0.0])  # no overflow / nan
    np.testing.assert_allclose(source_weights(d + 1e4, 3.0), source_weights(d, 3.0))
    np.testing.assert_array_equal(source_weights(np.array([0.2, 0.2, 0.5]), np.inf),
                                  [0.5, 0.5, 0.0])  # ties share the nearest mass
    with pytest.raises(ValueError, match="finite"):
        source_weights(np.array([0.1, np.nan]), 1.0)


@settings(max_examples=100, deadline=None)
@given(d=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=20), gamma=st.floats(0.0, 1e4))
def test_source_weights_sum_to_one(d, gamma) -> None:
    w = source_weights(np.asarray(d), gamma)
    assert np.all(w >= 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w[int(np.argmin(d))] == pytest.approx(w.max())  # the nearest source weighs most


def test_predict_rank_drops_missing_ranks_and_renormalises() -> None:
    w = np.array([0.5, 0.3, 0.2])
    assert predict_rank(w, np.array([1.0, 4.0, 2.0])) == pytest.approx(0.5 + 1.2 + 0.4)
    assert predict_rank(w, np.array([1.0, np.nan, 2.0])) == pytest.approx((0.5 + 0.4) / 0.7)
    assert math.isnan(predict_rank(w, np.full(3, np.nan)))


def test_symmetric_ablations() -> None:
    a, b = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    assert cosine_distance(a, b) == pytest.approx(1 - 1 / math.sqrt(2))
    assert cosine_distance(3 * b, b) == pytest.approx(0.0, abs=1e-8)
    p, q = np.exp(a) / np.exp(a).sum(), np.full(2, 0.5)
    m = (p + q) / 2
    jsd = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
    assert jensen_shannon(a, b) == pytest.approx(jsd)
    assert jensen_shannon(a, b) == pytest.approx(jensen_shannon(b, a))
    assert jensen_shannon(b, b) == pytest.approx(0.0, abs=1e-15)
    assert jensen_shannon(np.array([1e3, 0.0]), np.array([0.0, 1e3])) <= math.log(2) + 1e-12
    rows = np.stack([a, b])
    np.testing.assert_allclose(divergences(rows, b, "cosine"), [cosine_distance(a, b), 0.0],
                               atol=1e-8)
    np.testing.assert_allclose(divergences(rows, b, "jsd"),
                               [jensen_shannon(a, b), jensen_shannon(b, b)])
    with pytest.raises(ValueError, match="unknown similarity"):
        divergences(rows, b, "euclid")


def test_sample_images_without_replacement() -> None:
    values = np.arange(40.0).reshape(20, 2)
    rows = sample_images(values, 7, np.random.default_rng(0))
    assert rows.shape == (7, 2) and len(set(rows[:, 0])) == 7
    np.testing.assert_array_equal(sample_images(values, 500, np.random.default_rng(0)), values)
    np.testing.assert_array_equal(sample_images(values, None, np.random.default_rng(0)), values)
    np.testing.assert_allclose(task_profile(values, None, np.random.default_rng(0)),
                               values.mean(axis=0))


# ---------------------------------------------------------------- a hand-made universe

MODELS = ("Hand-A:x", "Hand-B:x", "Hand-C:x")
A, B, C = MODELS
DATASETS = ("tgt", "s1", "s2")
ACC = {  # s1 ranks A, B, C = 1, 2, 3; s2 ranks A, B, C = 3, 1, 2
    "tgt": {A: 0.6, B: 0.5, C: 0.4},
    "s1": {A: 0.9, B: 0.8, C: 0.7},
    "s2": {A: 0.5, B: 0.7, C: 0.6},
}
# constant rows: every draw of images gives the same profile, so the values are hand-checkable
PHI = {
    (A, "tgt"): [1, 3], (A, "s1"): [1, 1], (A, "s2"): [2, 6],
    (B, "tgt"): [1, 1, 2], (B, "s1"): [2, 1, 1], (B, "s2"): [1, 3, 2],
    (C, "tgt"): [1, 1], (C, "s1"): [3, 1],  # C has no conductance on s2
}  # fmt: skip


def universe(acc, datasets=DATASETS, models=MODELS) -> tuple[ProtocolData, dict]:
    rows = [(m, d, a, "test") for d, cells in acc.items() for m, a in cells.items()]
    protocol = Protocol(name="hand", description="hand example", zoo=tuple(models),
                        datasets=tuple(datasets), gt_sources=("test",), seeds=(0,),
                        metrics=MetricConfig())
    infos = {d: DatasetInfo(d, d, "photo", "image classification", ("a", "b"), ("{c}",))
             for d in datasets}
    return ProtocolData(protocol, GroundTruth(pd.DataFrame(rows, columns=COLUMNS))), infos


def write_packs(store: FeatureStore, phi, n_images: int = 4) -> None:
    for (m, d), v in phi.items():
        store.write("conductance", m, d, {"values": np.tile(np.asarray(v, float), (n_images, 1))},
                    RANDOM_INIT)


def hand_harness(tmp_path, acc=ACC, phi=PHI) -> Harness:
    store = FeatureStore(tmp_path / "features")
    write_packs(store, phi)
    pdata, infos = universe(acc)
    return Harness(pdata, infos, LoadContext(None, store, allow_random_init=True))


def dcd_run(**params) -> MethodRun:
    return MethodRun("dcd", DCDSelector, MappingProxyType(params))


def _softmin2(d1: float, d2: float, gamma: float) -> tuple[float, float]:
    a1, a2 = math.exp(-gamma * (d1 - min(d1, d2))), math.exp(-gamma * (d2 - min(d1, d2)))
    return a1 / (a1 + a2), a2 / (a1 + a2)


def test_hand_example_3_models_x_3_datasets(tmp_path) -> None:
    """Target tgt, beta = 2, gamma = 1, sum-normalised profiles, from feature packs on disk."""
    h = hand_harness(tmp_path)
    scores = h.score_fold(dcd_run(beta=2.0, gamma=1.0), "tgt", seed=0)
    # A: p(tgt) = (1/4, 3/4), w = (1, e)/(1 + e); p(s1) = (1/2, 1/2); p(s2) = p(tgt)
    w = np.array([1, E]) / (1 + E)
    d_s1, d_s2 = w[0] * (0.25 / 0.25) + w[1] * (0.25 / 0.75), 0.0
    pi1, pi2 = _softmin2(d_s1, d_s2, 1.0)
    r_a = pi1 * 1 + pi2 * 3
    # B: p(tgt) = (1/4, 1/4, 1/2), w = (1, 1, e^(1/2))/(2 + e^(1/2));
    #    p(s1) = (1/2, 1/4, 1/4); p(s2) = (1/6, 1/2, 1/3)
    w = np.array([1, 1, math.sqrt(E)]) / (2 + math.sqrt(E))
    d_s1 = w[0] * (0.25 / 0.25) + w[1] * 0 + w[2] * (0.25 / 0.5)
    d_s2 = w[0] * ((1 / 4 - 1 / 6) / 0.25) + w[1] * (0.25 / 0.25) + w[2] * ((1 / 2 - 1 / 3) / 0.5)
    pi1, pi2 = _softmin2(d_s1, d_s2, 1.0)
    r_b = pi1 * 2 + pi2 * 1
    # C: no conductance on s2 -> s2 dropped, all weight on s1 (rank 3)
    r_c = 3.0
    expected = pd.Series({A: -r_a, B: -r_b, C: -r_c})
    pd.testing.assert_series_equal(scores, expected[list(scores.index)], rtol=1e-6)
    assert r_b < r_a < r_c  # B is predicted best: its s2 (where B ranks 1) is nearer


def test_explain_weights_sum_to_one_and_drop_missing_sources(tmp_path) -> None:
    h = hand_harness(tmp_path)
    run = dcd_run(beta=2.0, gamma=1.0)
    sel = run.make().fit(h.train_view("tgt", 0, run.cls.requires))
    table = sel.explain(h.target_view("tgt", 0, h.candidates(run, "tgt"), run.cls.requires))
    assert table.groupby("model")["weight"].sum().to_dict() == pytest.approx(
        {A: 1.0, B: 1.0, C: 1.0})
    assert table.loc[table.model == C, "source"].tolist() == ["s1"]
    assert table.loc[(table.model == A) & (table.source == "s2"), "divergence"].item() \
        == pytest.approx(0.0, abs=1e-6)


def test_missing_source_rank_is_dropped(tmp_path) -> None:
    """B has no ground truth on s2: s2 is dropped for B; ranks on s2 are among A and C."""
    acc = {d: dict(cells) for d, cells in ACC.items()}
    del acc["s2"][B]
    h = hand_harness(tmp_path, acc=acc)
    scores = h.score_fold(dcd_run(beta=2.0, gamma=1.0), "tgt", seed=0)
    assert scores[B] == pytest.approx(-2.0)  # only s1 is left: B's rank there
    w = np.array([1, E]) / (1 + E)
    pi1, pi2 = _softmin2(w[0] + w[1] / 3, 0.0, 1.0)
    assert scores[A] == pytest.approx(-(pi1 * 1 + pi2 * 2))  # A ranks 2 of {A, C} on s2


def test_model_without_any_usable_source_is_ranked_last(tmp_path) -> None:
    phi = {k: v for k, v in PHI.items() if k[0] != C or k[1] == "tgt"}
    h = hand_harness(tmp_path, phi=phi)
    scores = h.score_fold(dcd_run(beta=2.0, gamma=1.0), "tgt", seed=0)
    assert scores[C] == -4.0  # the largest source rank (3) + 1
    assert scores.idxmin() == C


def test_block_count_mismatch_is_an_error(tmp_path) -> None:
    phi = dict(PHI)
    phi[(A, "tgt")] = [1, 3, 5]
    h = hand_harness(tmp_path, phi=phi)
    with pytest.raises(FeaturePackError, match="blocks"):
        h.score_fold(dcd_run(), "tgt", seed=0)


@pytest.mark.parametrize("params, match", [
    ({"normalize": "l1"}, "normalize"),
    ({"similarity": "euclid"}, "similarity"),
    ({"n_source_images": 0}, "n_source_images"),
    ({"n_target_images": 2.5}, "n_target_images"),
    ({"beta": -1.0}, "beta"),
    ({"gamma": float("nan")}, "gamma"),
])
def test_bad_parameters_fail_in_fit(tmp_path, params, match) -> None:
    h = hand_harness(tmp_path)
    sel = DCDSelector(**params)  # __init__ stores only
    with pytest.raises(ValueError, match=match):
        sel.fit(h.train_view("tgt", 0, ("conductance",)))


# ------------------------------------------------------------------ the mock universe


@pytest.fixture(scope="module")
def mock_harness() -> Harness:
    pdata, infos = mock_universe()
    feats = {"conductance": get_kind("conductance").mock(
        list(pdata.protocol.zoo), list(pdata.protocol.datasets), np.random.default_rng(7))}
    return Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")), features=feats)


def _fit(h: Harness, target: str, seed: int, **params) -> DCDSelector:
    return DCDSelector(**params).fit(h.train_view(target, seed, ("conductance",)))


def test_image_sampling_contract(mock_harness) -> None:
    """Source images: train.rng(model, dataset), min(n, available) without replacement."""
    h = mock_harness
    model, source = h.protocol.zoo[2], "mock3"
    train = h.train_view("mock0", 5, ("conductance",))
    values = np.asarray(train.feature("conductance").get(model, source)["values"])
    idx = np.sort(train.rng(model, source).choice(len(values), size=7, replace=False))
    sel = _fit(h, "mock0", 5, n_source_images=7)
    row = sel.sources_[model].index(source)
    np.testing.assert_allclose(sel.profiles_[model][row], values[idx].mean(axis=0))
    # the same draw in every fold where the dataset is a source (independent of fold order)
    other = _fit(h, "mock1", 5, n_source_images=7)
    np.testing.assert_array_equal(other.profiles_[model][other.sources_[model].index(source)],
                                  sel.profiles_[model][row])
    # another seed draws other images; n above the available count uses them all
    assert not np.allclose(_fit(h, "mock0", 6, n_source_images=7).profiles_[model][row],
                           sel.profiles_[model][row])
    np.testing.assert_allclose(_fit(h, "mock0", 5, n_source_images=1000).profiles_[model][row],
                               values.mean(axis=0))


def test_target_sampling_uses_target_rng(mock_harness) -> None:
    h = mock_harness
    run = dcd_run(n_target_images=3)
    sel = run.make().fit(h.train_view("mock2", 0, run.cls.requires))
    target = h.target_view("mock2", 0, h.candidates(run, "mock2"), run.cls.requires)
    m = target.candidates[0]
    values = np.asarray(target.feature("conductance").get(m, "mock2")["values"])
    idx = np.sort(target.rng(m).choice(len(values), size=3, replace=False))
    np.testing.assert_allclose(sel._target_profile(target, m), values[idx].mean(axis=0))


def test_gamma_zero_is_avgrank(mock_harness) -> None:
    h = mock_harness
    avg = resolve_methods(["avgrank"])[0]
    for t in h.protocol.datasets:  # mock1 has a model without a cell: dropped by both
        got = h.score_fold(dcd_run(gamma=0.0), t, seed=0)
        want = h.score_fold(avg, t, seed=0)
        pd.testing.assert_series_equal(got, want, rtol=1e-12, check_names=False)


@pytest.mark.parametrize("gamma", [np.inf, 1e7])
def test_large_gamma_picks_the_nearest_source(mock_harness, gamma) -> None:
    h = mock_harness
    run = dcd_run(gamma=gamma)
    sel = run.make().fit(h.train_view("mock4", 0, run.cls.requires))
    target = h.target_view("mock4", 0, h.candidates(run, "mock4"), run.cls.requires)
    table = sel.explain(target)
    nearest = table.loc[table.groupby("model")["divergence"].idxmin()].set_index("model")
    np.testing.assert_allclose(sel.score(target)[nearest.index], -nearest["rank"])
    np.testing.assert_allclose(table.groupby("model")["weight"].max(), 1.0)


def test_variants_registered_and_differ(mock_harness) -> None:
    for name, sim in [("dcd", "dcd"), ("dcd-cosine", "cosine"), ("dcd-jsd", "jsd")]:
        assert methods.make(name).get_params()["similarity"] == sim
    h = mock_harness
    runs = {n: resolve_methods([n])[0] for n in ("dcd", "dcd-cosine", "dcd-jsd")}
    scores = {n: h.score_fold(r, "mock3", 0) for n, r in runs.items()}
    assert not np.allclose(scores["dcd"], scores["dcd-cosine"])
    assert not np.allclose(scores["dcd"], scores["dcd-jsd"])
    # beta only enters DCD's block importance: the symmetric ablations ignore it
    for name in ("dcd-cosine", "dcd-jsd"):
        other = MethodRun(name, DCDSelector, MappingProxyType({**runs[name].params, "beta": 0.1}))
        pd.testing.assert_series_equal(h.score_fold(other, "mock3", 0), scores[name])
    beta = dcd_run(beta=0.1, gamma=50.0)
    assert not np.allclose(h.score_fold(beta, "mock3", 0),
                           h.score_fold(dcd_run(gamma=50.0), "mock3", 0))


@pytest.mark.parametrize("name", ["dcd", "dcd-cosine", "dcd-jsd"])
def test_conformance(name) -> None:
    failed = [r for r in check_selector(name) if not r.passed]
    assert not failed, failed


def _packs_from(h: Harness, root, skip=()) -> FeatureStore:
    store = FeatureStore(root)
    for (m, d), rec in h.features("conductance").items():
        if (m, d) not in skip:
            store.write("conductance", m, d, {"values": np.asarray(rec["values"])}, RANDOM_INIT)
    return store


def test_end_to_end_from_random_packs(tmp_path, mock_harness) -> None:
    """Packs on disk give the scores of the same records in memory; seeds change the draw."""
    store = _packs_from(mock_harness, tmp_path)
    with pytest.raises(FeaturePackError, match="random-init"):
        Harness(mock_harness.pdata, mock_harness._infos,
                LoadContext(None, store)).features("conductance")
    h = Harness(mock_harness.pdata, mock_harness._infos,
                LoadContext(None, store, allow_random_init=True))
    run = resolve_methods(["dcd"])[0]
    got = h.run([run], seeds=(0, 1), progress=False)
    want = mock_harness.run([run], seeds=(0, 1), progress=False)
    pd.testing.assert_frame_equal(got.predictions, want.predictions)
    pd.testing.assert_frame_equal(got.scores, want.scores)
    p = got.predictions.set_index(["seed", "target", "model"])["score"]
    assert not np.allclose(p.loc[0], p.loc[1])  # the seed draws other images
    assert set(got.scores["target"]) == set(mock_harness.protocol.datasets)


def test_missing_pack(tmp_path, mock_harness) -> None:
    """A missing (model, dataset) pack: the run fails fast (or skips); as a source it is dropped."""
    model = mock_harness.protocol.zoo[3]
    store = _packs_from(mock_harness, tmp_path, skip={(model, "mock2")})
    h = Harness(mock_harness.pdata, mock_harness._infos,
                LoadContext(None, store, allow_random_init=True))
    run = resolve_methods(["dcd"])[0]
    with pytest.raises(MissingFeaturesError) as err:
        h.run([run], seeds=(0,), progress=False)
    assert f"python -m benchmark extract conductance --models {model} --datasets mock2" \
        in str(err.value)
    assert h.run([run], seeds=(0,), skip_unavailable=True, progress=False).skipped == {
        "dcd": "needs conductance features"}
    assert model not in h.candidates(run, "mock2")  # not a candidate where it lacks a pack
    # as a source, mock2 is dropped for that model only; the other models are unaffected
    got, want = h.score_fold(run, "mock0", 0), mock_harness.score_fold(run, "mock0", 0)
    pd.testing.assert_series_equal(got.drop(model), want.drop(model))
    assert got[model] != pytest.approx(want[model])
    sel = DCDSelector().fit(h.train_view("mock0", 0, ("conductance",)))
    assert sel.sources_[model] == ("mock1", "mock3", "mock4")


# ------------------------------------------------------- CLI: packs missing (issue 5, part 3)


@pytest.fixture(scope="module")
def upstream() -> None:
    from benchmark.core.protocol import get_protocol
    from benchmark.data.upstream import DataLayer, UpstreamError

    try:
        for name in ("lovm", "dcd48"):
            get_protocol(name).load(DataLayer(online=False))
    except UpstreamError as err:
        pytest.skip(f"upstream files not available offline (set VLMBENCH_MIRROR): {err}")


def test_run_without_packs_fails_fast_with_extract_commands(tmp_path, capsys, upstream) -> None:
    """A short error (issue 12, item 7); the per-model commands behind --list-missing."""
    from benchmark.cli import main
    from benchmark.core.protocol import get_protocol

    empty = tmp_path / "features"
    empty.mkdir()
    argv = ["run", "--methods", "dcd,inb", "--protocol", "lovm", "--features-dir", str(empty),
            "--seeds", "1", "--no-progress", "--offline"]
    rc = main([*argv, "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert not (tmp_path / "out").exists()
    assert f"dcd needs features that are not in {empty}" in err
    zoo = get_protocol("lovm").zoo
    assert (f"  conductance: {len(zoo) * 22} records ({len(zoo)} models x 22 datasets) "
            "missing, ~") in err
    assert "python -m benchmark extract all --protocol lovm --kinds conductance" in err
    assert "--skip-unavailable" in err and len(err.splitlines()) <= 12
    rc = main([*argv, "--out", str(tmp_path / "out2"), "--list-missing"])
    out, err2 = capsys.readouterr()
    assert rc == 2 and err2 == err
    lines = [ln for ln in out.splitlines() if ln.startswith("  conductance for ")]
    assert len(lines) == len(zoo)  # one line per model (its missing datasets grouped)
    assert (f"  conductance for {zoo[0]} on 22 dataset(s): python -m benchmark extract "
            f"conductance --models {zoo[0]} --datasets cars,cifar100,") in out


def test_skip_unavailable_runs_the_others_and_leaderboard_says_why(tmp_path, upstream) -> None:
    from benchmark.cli import main
    from benchmark.core.results import read
    from benchmark.report import leaderboard

    empty = tmp_path / "features"
    empty.mkdir()
    out = tmp_path / "results" / "dcd48" / "run"
    rc = main(["run", "--methods", "dcd,inb", "--protocol", "dcd48", "--features-dir",
               str(empty), "--seeds", "1", "--out", str(out), "--no-progress", "--offline",
               "--skip-unavailable"])
    assert rc == 0
    run = read(out)
    assert set(run.scores["method"]) == {"inb"}
    assert run.run["skipped"] == {"dcd": "needs conductance features"}
    spec = {"protocol": {"dcd48": {"methods": ["inb", "dcd"], "seeds": 1}}}
    page = leaderboard.render_all(spec, tmp_path / "results")["dcd48.md"]
    dcd_row = next(ln for ln in page.splitlines() if ln.startswith("| dcd "))
    assert "needs conductance features" in dcd_row
    reported = page.split("## Reported in the literature")[1]
    assert "| DCD" in reported and "0.707" in reported  # next to the paper's numbers
