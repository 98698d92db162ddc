"""Hand-computed cases of the few-image scores (methods/transferability.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from methods.transferability import (
    h_score,
    leep,
    log_evidence,
    logme,
    mean_max_softmax,
    nce,
    neg_entropy,
)


def test_zero_shot_confidence():
    logits = np.array([[0.0, math.log(3)], [0.0, 0.0]])
    assert mean_max_softmax(logits) == pytest.approx((3 / 4 + 1 / 2) / 2)
    want = ((1 / 4) * math.log(1 / 4) + (3 / 4) * math.log(3 / 4) + math.log(1 / 2)) / 2
    assert neg_entropy(logits) == pytest.approx(want)
    assert neg_entropy(logits + 5) == pytest.approx(want)  # shift-invariant


def test_leep_hand_cases():
    assert leep(np.eye(2), [0, 1]) == pytest.approx(0.0)  # perfect source -> target map
    assert leep(np.full((2, 2), 0.5), [0, 1]) == pytest.approx(math.log(0.5))
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]])
    y = [0, 0, 1]
    joint = np.array([[1.4, 0.6], [0.1, 0.9]]) / 3
    cond = joint / joint.sum(axis=0)
    want = np.mean([math.log(cond[0] @ theta[0]), math.log(cond[0] @ theta[1]),
                    math.log(cond[1] @ theta[2])])
    assert leep(theta, y) == pytest.approx(want)


def test_nce_hand_cases_and_pseudo_label_degeneracy():
    assert nce([0, 0, 0, 0], [0, 0, 1, 1]) == pytest.approx(math.log(0.5))  # -H(Y)
    # z = (a, a, b, b), y = (0, 1, 1, 1): H(Y|Z) = 0.5 * H(1/2) + 0.5 * 0
    assert nce(["a", "a", "b", "b"], [0, 1, 1, 1]) == pytest.approx(0.5 * math.log(0.5))
    z = [2, 0, 1, 1, 0]
    assert nce(z, z) == pytest.approx(0.0)  # pseudo-labels = predictions: 0 for every model


def test_h_score_hand_cases():
    assert h_score(np.array([[0.0], [0.0], [2.0], [2.0]]), [0, 0, 1, 1]) == pytest.approx(1.0)
    assert h_score(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]) == pytest.approx(0.8)


def test_log_evidence_is_the_marginal_likelihood():
    rng = np.random.default_rng(0)
    f, t = rng.normal(size=(7, 3)), rng.normal(size=7)
    a, b = 0.7, 2.5
    cov = np.eye(7) / b + f @ f.T / a
    want = multivariate_normal(np.zeros(7), cov).logpdf(t)
    assert log_evidence(f, t, a, b) == pytest.approx(want)


def test_logme_reaches_the_maximum_evidence():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(30, 4))
    y = (f[:, 0] + 0.3 * rng.normal(size=30) > 0).astype(int)
    got = logme(f, y)
    per_class = []
    for k in (0, 1):
        t = (y == k).astype(float)
        res = minimize(lambda v, t=t: -log_evidence(f, t, math.exp(v[0]), math.exp(v[1])), [0.0, 0.0],
                       method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10})
        per_class.append(-res.fun / 30)
    assert got == pytest.approx(np.mean(per_class), abs=1e-5)
    # informative features score higher than noise
    assert got > logme(rng.normal(size=(30, 4)), y)


def test_h_score_shrunk_is_the_ledoit_wolf_regularised_h_score():
    from sklearn.covariance import LedoitWolf

    from methods.transferability import h_score_shrunk

    rng = np.random.default_rng(3)
    f = rng.normal(size=(9, 4))
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    fc = f - f.mean(axis=0)
    lw = LedoitWolf(assume_centered=True).fit(fc)
    means = np.stack([fc[y == k].mean(axis=0) for k in range(3)])[y]
    cov_g = means.T @ means / len(f)
    want = np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * cov_g))
    assert h_score_shrunk(f, y) == pytest.approx(want)
    assert h_score_shrunk(np.ones((4, 3)), [0, 1, 0, 1]) == 0.0  # no spread at all
