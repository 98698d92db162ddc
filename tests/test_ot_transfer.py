"""Optimal transport between datasets' classes (methods/swab/ot_transfer.py).

Toy embeddings with hand-checkable plans: identical class names put the mass on the diagonal,
a far source dataset gets no mass; the transfers are the spec's formulas; class embeddings go
through the text-embedding cache (a fake embedder, no model).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from benchmark.data.catalog import DatasetInfo
from benchmark.features.embedders import Embedder, TextEmbeddingCache
from methods.swab.ot_transfer import (
    ClassTransport,
    bridge,
    class_embeddings,
    cost_matrix,
    kept_classes,
    similarity,
    transport_plan,
)

E = np.eye(3)  # three target classes, mutually orthogonal


def test_importing_pot_does_not_import_torch_when_absent():
    import subprocess

    code = ("import sys; import methods.swab.ot_transfer as t; t._ot(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cost_matrix_formulas():
    src = np.array([[1.0, 0.0], [3.0, 4.0]])  # cosines to (1, 0): 1 and 0.6
    tgt = np.array([[2.0, 0.0]])
    s = np.array([[1.0], [0.6]])
    np.testing.assert_allclose(similarity(src, tgt), s)
    np.testing.assert_allclose(cost_matrix(src, tgt), np.exp(1 - s))
    np.testing.assert_allclose(cost_matrix(src, tgt, k=2.0), np.exp(2 * (1 - s)))
    np.testing.assert_allclose(cost_matrix(src, tgt, k=-1), 1 - s)


def test_filter_is_strictly_above_the_threshold():
    src = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    tgt = np.array([[1.0, 0.0]])
    assert kept_classes(src, tgt, 0.5).tolist() == [True, True, False]
    best = similarity(src, tgt)[1, 0]
    assert kept_classes(src, tgt, best).tolist() == [True, False, False]  # ">", not ">="
    assert kept_classes(np.zeros((0, 2)), tgt, 0.5).shape == (0,)


def test_identical_classes_put_the_mass_on_the_diagonal():
    np.testing.assert_allclose(transport_plan(E, E, m=1.0), np.eye(3) / 3, atol=1e-12)
    partial = transport_plan(E, E, m=0.9)
    assert partial.sum() == pytest.approx(0.9)
    assert np.allclose(partial - np.diag(np.diag(partial)), 0)  # nothing off the diagonal
    # permuted source classes: the plan follows the names, not the positions
    perm = [2, 0, 1]
    np.testing.assert_allclose(transport_plan(E[perm], E, m=1.0), np.eye(3)[perm] / 3, atol=1e-12)


def test_far_source_dataset_gets_no_mass():
    near = E + 0.01 * np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    far = np.array([[-1.0, 0.2, 0.0], [0.0, -1.0, 0.2], [0.2, 0.0, -1.0]])  # cos < 0.25
    # filtered out by the threshold: no row, no mass
    t = bridge({"near": near, "far": far}, E, thres=0.5, m=1.0)
    assert set(t.datasets) == {"near"} and t.mass_per_source() == pytest.approx({"near": 1.0})
    # kept (thres -1) but partial transport of half the mass takes the cheap (near) rows only:
    # each row holds 1/6, the 3 near rows hold exactly m = 0.5 at cost e^0
    t = bridge({"near": near, "far": far}, E, thres=-1.0, m=0.5)
    masses = t.mass_per_source()
    assert masses["near"] == pytest.approx(0.5) and masses["far"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(t.plan[:3], np.eye(3) / 6, atol=1e-12)
    assert t.datasets == ("near",) * 3 + ("far",) * 3 and t.classes == (0, 1, 2) * 2


def test_bridge_keeps_rows_in_source_then_class_order_and_none_when_nothing_kept():
    a = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    t = bridge({"a": a, "b": E[2:]}, E, thres=0.5, m=1.0)
    assert t.datasets == ("a", "a", "b") and t.classes == (0, 2, 0)
    assert bridge({"a": -E}, E, thres=0.5) is None


def test_transfer_scores_is_the_weighted_average_over_known_rows():
    plan = np.array([[0.3, 0.1], [0.0, 0.2], [0.1, 0.1]])  # row masses 0.4, 0.2, 0.2
    t = ClassTransport(plan, ("s1", "s1", "s2"), (0, 1, 0))
    r = np.array([[1.0, 0.5, 0.0], [0.0, np.nan, 1.0], [np.nan, np.nan, np.nan]])
    got = t.transfer_scores(r)
    assert got[0] == pytest.approx((0.4 * 1 + 0.2 * 0.5 + 0.2 * 0) / 0.8)
    assert got[1] == pytest.approx((0.4 * 0 + 0.2 * 1) / 0.6)
    assert np.isnan(got[2])
    # nothing missing: proportional to SWAB's sum_j (R P)_mj
    full = np.array([[3.0, 1.0, 2.0]])
    assert t.transfer_scores(full)[0] * plan.sum() == pytest.approx((full @ plan).sum())


def test_dataset_level_reduction_is_weighted_average_of_source_ranks():
    """Every kept class of s carries s's rank: the transfer is sum_s W_s r_s / sum_s W_s."""
    rng = np.random.default_rng(0)
    src = {"s1": rng.normal(size=(4, 5)), "s2": rng.normal(size=(3, 5)), "s3": rng.normal(size=(2, 5))}
    tgt = rng.normal(size=(3, 5))
    t = bridge(src, tgt, thres=-1.0, m=0.9)
    ranks = {"s1": np.array([0.0, 1.0, 0.5]), "s2": np.array([1.0, 0.0, 0.5]),
             "s3": np.array([0.5, 0.5, np.nan])}  # 3 models; model 2 has no cell on s3
    rows = np.stack([ranks[d] for d in t.datasets], axis=1)
    w = t.mass_per_source()
    assert sum(w.values()) == pytest.approx(0.9)
    got = t.transfer_scores(rows)
    for i in range(3):
        known = [s for s in ranks if np.isfinite(ranks[s][i])]
        expected = sum(w[s] * ranks[s][i] for s in known) / sum(w[s] for s in known)
        assert got[i] == pytest.approx(expected)


def test_transfer_vectors_is_swab_formula_and_renormalises_missing_rows():
    plan = np.array([[0.25, 0.0], [0.25, 0.25], [0.0, 0.25]])  # m = 1, n_t = 2
    t = ClassTransport(plan, ("a", "a", "b"), (0, 1, 0))
    g = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(t.transfer_vectors(g), 2 * plan.T @ g)  # SWAB: n_t P^T G
    g[2] = np.nan  # column 1 loses half its mass: the other half stands for it
    np.testing.assert_allclose(t.transfer_vectors(g), [[0.5, 0.5], [0.0, 1.0]])


class CountingEmbedder(Embedder):
    """3-d vectors: the class word picks the axis, the template adds a fixed offset."""

    name, dim = "fake-swab", 3
    AXES = {"cat": 0, "dog": 1, "car": 2}

    def __init__(self) -> None:
        self.calls = 0

    @property
    def identity(self) -> str:
        return "fake-swab v1 dim=3"

    def _embed_batch(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), 3))
        for i, t in enumerate(texts):
            out[i, next(a for w, a in self.AXES.items() if w in t)] = 1.0
            out[i] += [0.0, 0.0, 1.0] if t.startswith("art") else 0.0
        return out


def test_class_embeddings_average_templates_and_go_through_the_cache(tmp_path):
    from methods.swab import ot_transfer

    info = DatasetInfo("toy", "toy", "photo", "classification", ("cat", "dog"),
                       ("a photo of a {c}.", "art of a {c}."))
    emb, cache = CountingEmbedder(), TextEmbeddingCache(tmp_path)
    got = class_embeddings(info, emb, cache=cache)
    art_cat = np.array([1, 0, 1]) / math.sqrt(2)  # rows are unit-normalised by the embedder
    art_dog = np.array([0, 1, 1]) / math.sqrt(2)
    np.testing.assert_allclose(got, [(np.array([1, 0, 0]) + art_cat) / 2,
                                     (np.array([0, 1, 0]) + art_dog) / 2], atol=1e-6)
    assert emb.calls == 1
    labels = [e["label"] for e in cache.manifest(emb)["entries"].values()]
    assert labels == ["swab-class:toy"]
    ot_transfer._MEMO.clear()  # a new process: read back from disk, nothing embedded
    np.testing.assert_allclose(class_embeddings(info, emb, cache=cache), got)
    assert emb.calls == 1


def test_plan_arguments_are_checked():
    with pytest.raises(ValueError, match="mass m"):
        transport_plan(E, E, m=1.5)
    with pytest.raises(ValueError, match="at least one"):
        transport_plan(np.zeros((0, 3)), E)
