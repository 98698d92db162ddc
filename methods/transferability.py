r"""Few-image scores of issue 14 (part 2): zero-shot confidence and transferability estimators.

Pure numpy functions, implemented from the papers (no maintained library implements them) and
tested on hand-computed cases (``tests/methods/test_transferability.py``). The selectors that
use them need a feature kind that does not exist yet -- per (model, dataset): image embeddings
and zero-shot logits of a few target images -- which the minizoo work provides; see "What is
left" below. Notation: ``n`` images, ``d`` embedding width, ``C`` classes.

Label-free (zero-shot confidence; the target's *unlabelled* images):

- :func:`mean_max_softmax`: ``(1/n) sum_i max_c softmax(l_i)_c``;
- :func:`neg_entropy`: ``(1/n) sum_i sum_c p_ic log p_ic`` with ``p_i = softmax(l_i)``
  (higher = more confident).

Label-based (SWAB's table reports them as baselines; they need *labelled* target images, a
different and stronger setting than the language-only methods):

- :func:`leep` (Nguyen et al., ICML 2020): ``theta_i`` = the model's zero-shot class
  distribution over the ``Z`` "source" labels (here: the prompts' classes), empirical joint
  ``P(y, z) = (1/n) sum_{i: y_i = y} theta_iz``, ``P(y | z) = P(y, z) / P(z)``, score
  ``(1/n) sum_i log sum_z P(y_i | z) theta_iz``;
- :func:`nce` (Tran et al., ICCV 2019): hard source labels ``z_i = argmax theta_i``, score
  ``-H(Y | Z) = sum_{y,z} P(y, z) log P(y | z)`` (empirical). Fed with zero-shot *pseudo*
  labels as ``y`` it degenerates (``y = z``: ``H = 0`` for every model), hence true labels;
- :func:`h_score` (Bao et al., ICIP 2019): ``tr(cov(f)^+ cov_y(E[f | y]))`` on the image
  embeddings ``f`` (``^+``: pseudo-inverse; covariances with ``1/n``);
- :func:`logme` (You et al., ICML 2021): per class ``k``, the maximum over ``alpha, beta > 0``
  of the log evidence of Bayesian linear regression of the one-hot column ``y_k`` on ``f``,
  divided by ``n``, averaged over classes; maximised by the paper's fixed-point iteration
  ``gamma = sum_j beta s_j / (alpha + beta s_j)``, ``alpha = gamma / |m|^2``,
  ``beta = (n - gamma) / |f m - y|^2`` (``s_j`` eigenvalues of ``f^T f``).

How SWAB computed them: its repository (github.com/YCaigogogo/SWAB, fetched) holds no code for
these baselines, and the paper text we could retrieve does not say how the few images, the
"source" distribution or the features were chosen. So they follow the original papers, read
for a CLIP model as below (our reading; say so when citing numbers):

- the "source" model of LEEP / NCE is the zero-shot classifier itself: ``theta_i =
  softmax(l_i / T)`` over the target's own classes (``l = 100 cos``, CLIP_benchmark's scale,
  :mod:`benchmark.features.few_images`; ``T = 1``), ``z_i = argmax l_i``;
- H-score and LogME take the unit image embeddings ``f`` (what a linear probe would see);
- :func:`h_score` with few images is degenerate: when ``n - 1 <= d`` the centred embeddings
  span the whole centred sample space and ``tr(cov(f)^+ cov(E[f|y])) = (#classes seen) - 1``
  for every model (only float noise differs). :func:`h_score_shrunk` is the regularised
  H-score of Ibrahim et al. ("Newer is not always better: rethinking transferability metrics",
  WACV 2023): ``cov(f)`` shrunk to ``(1 - a) cov(f) + a (tr cov(f) / d) I`` with Ledoit-Wolf's
  ``a``, and ``cov(E[f|y])`` scaled by ``1 - a``; registered as ``h-score-shrunk``.

Selectors
---------
One class per score below the functions; the registry names are ``zs-maxprob``,
``zs-entropy`` (feature kind ``few-images``: the target's unlabelled images) and ``leep``,
``nce``, ``h-score``, ``h-score-shrunk``, ``logme`` (kind ``few-labelled-images``: a few
*labelled* target images, the stronger setting, marked ``‡`` on the leaderboard). Each scores
a candidate by the function on the target's record of that candidate -- the same seeded images
for every model (``extract few-images --seed``) -- and uses no source dataset; no ``fit``
state; deterministic (the sample is fixed at extraction, so not ``stochastic``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import log_softmax, softmax

from benchmark.features.few_images import LABELLED, UNLABELLED, check_record
from methods.base import Selector, TargetView

__all__ = ["mean_max_softmax", "neg_entropy", "leep", "nce", "h_score", "h_score_shrunk", "logme",
           "log_evidence", "ZeroShotMaxProb", "ZeroShotEntropy", "LEEP", "NCE", "HScore",
           "HScoreShrunk", "LogME"]


def mean_max_softmax(logits: np.ndarray) -> float:
    """``(1/n) sum_i max_c softmax(l_i)_c``."""
    return float(softmax(np.asarray(logits, dtype=float), axis=1).max(axis=1).mean())


def neg_entropy(logits: np.ndarray) -> float:
    """``(1/n) sum_i sum_c p_ic log p_ic`` (minus the mean prediction entropy)."""
    lp = log_softmax(np.asarray(logits, dtype=float), axis=1)
    return float((np.exp(lp) * lp).sum(axis=1).mean())


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    return np.unique(y, return_inverse=True)[1]


def leep(probs: np.ndarray, y: np.ndarray) -> float:
    """LEEP of source-label distributions ``probs [n, Z]`` (rows sum to 1) for labels ``y``."""
    theta = np.asarray(probs, dtype=float)
    n = len(theta)
    yi = _labels(y, n)
    joint = np.zeros((yi.max() + 1, theta.shape[1]))
    np.add.at(joint, yi, theta)
    joint /= n
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)  # P(y | z)
    return float(np.mean(np.log(np.einsum("iz,iz->i", cond[yi], theta))))


def nce(source_labels: np.ndarray, y: np.ndarray) -> float:
    """NCE ``-H(Y | Z)`` of hard source labels ``z`` and target labels ``y`` (empirical)."""
    z = np.asarray(source_labels)
    n = len(z)
    yi, zi = _labels(y, n), _labels(z, n)
    joint = np.zeros((yi.max() + 1, zi.max() + 1))
    np.add.at(joint, (yi, zi), 1.0 / n)
    pz = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log((joint / pz)[nz])).sum())


def h_score(features: np.ndarray, y: np.ndarray) -> float:
    """H-score ``tr(cov(f)^+ cov(E[f | y]))`` (covariances with ``1/n``)."""
    f = np.asarray(features, dtype=float)
    n = len(f)
    yi = _labels(y, n)
    fc = f - f.mean(axis=0)
    cov_f = fc.T @ fc / n
    means = np.zeros((yi.max() + 1, f.shape[1]))
    np.add.at(means, yi, fc)
    means /= np.bincount(yi)[:, None]
    g = means[yi]  # E[f | y_i], centred
    cov_g = g.T @ g / n
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-10) @ cov_g))


def h_score_shrunk(features: np.ndarray, y: np.ndarray) -> float:
    """Regularised H-score (Ibrahim et al., WACV 2023): Ledoit-Wolf shrinkage ``a`` of
    ``cov(f)`` towards ``(tr cov(f) / d) I``, ``tr(((1-a) cov(f) + a mu I)^-1 (1-a) cov(E[f|y]))``."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    f = np.asarray(features, dtype=float)
    n, d = f.shape
    yi = _labels(y, n)
    fc = f - f.mean(axis=0)
    cov_f = fc.T @ fc / n
    a = float(ledoit_wolf_shrinkage(fc, assume_centered=True)) if n > 1 else 1.0
    mu = float(np.trace(cov_f)) / d
    means = np.zeros((yi.max() + 1, d))
    np.add.at(means, yi, fc)
    means /= np.bincount(yi)[:, None]
    g = means[yi]
    cov_g = g.T @ g / n
    shrunk = (1 - a) * cov_f + a * mu * np.eye(d)
    if mu <= 0:  # every embedding equal: no spread, nothing separates the classes
        return 0.0
    return float(np.trace(np.linalg.solve(shrunk, (1 - a) * cov_g)))


def log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """Log evidence of Bayesian linear regression ``t ~ N(f w, 1/beta)``, ``w ~ N(0, 1/alpha)``."""
    f = np.asarray(features, dtype=float)
    t = np.asarray(target, dtype=float)
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    resid = float(np.sum((f @ m - t) ** 2))
    _, logdet = np.linalg.slogdet(a)
    return float(n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                 - beta / 2 * resid - alpha / 2 * float(m @ m) - logdet / 2)


def _logme_one(f: np.ndarray, t: np.ndarray, max_iter: int = 100, tol: float = 1e-5
               ) -> tuple[float, float, float]:
    n = len(f)
    u, s, vt = np.linalg.svd(f, full_matrices=False)
    sig = s ** 2
    ut = u.T @ t
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma = float(np.sum(beta * sig / (alpha + beta * sig)))
        m = vt.T @ (beta * s * ut / (alpha + beta * sig))
        resid = float(np.sum((f @ m - t) ** 2))
        new_alpha = gamma / max(float(m @ m), 1e-300)
        new_beta = (n - gamma) / max(resid, 1e-300)
        done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return log_evidence(f, t, alpha, beta) / n, alpha, beta


def logme(features: np.ndarray, y: np.ndarray, max_iter: int = 100, tol: float = 1e-5) -> float:
    """LogME: mean over classes of the maximised log evidence per image (one-hot targets)."""
    f = np.asarray(features, dtype=float)
    yi = _labels(y, len(f))
    onehot = np.eye(yi.max() + 1)[yi]
    return float(np.mean([_logme_one(f, onehot[:, k], max_iter, tol)[0]
                          for k in range(onehot.shape[1])]))


# -- the selectors -------------------------------------------------------------------------
_UNLABELLED_NEEDS = ("a few unlabelled target images (20 by default and on minizoo): one forward pass per "
                     "image and candidate, and the text tower on the class prompts; no labels")
_LABELLED_NEEDS = ("LABELLED target images (stronger setting than language-only): a few "
                   "target images WITH their labels (20 by default and on minizoo), one forward pass per image "
                   "and candidate, and the text tower on the class prompts")


class _FewImageScore(Selector):
    """Score = a function of each candidate's few-image record of the target (no sources)."""

    kind = UNLABELLED

    def _record(self, target: TargetView, model: str):
        rec = target.feature(self.kind).get(model, target.dataset.id)
        check_record(rec, len(target.dataset.classnames), labelled=self.kind == LABELLED)
        return rec

    def _value(self, record) -> float:
        raise NotImplementedError

    def score(self, target: TargetView) -> pd.Series:
        return pd.Series({m: self._value(self._record(target, m)) for m in target.candidates},
                         dtype=float).reindex(list(target.candidates))


class _ZeroShot(_FewImageScore):
    requires = (UNLABELLED,)
    target_needs = _UNLABELLED_NEEDS

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def _logits(self, record) -> np.ndarray:
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"{self.name}: temperature must be > 0, got {self.temperature!r}")
        return np.asarray(record["logits"], dtype=float) / float(self.temperature)


class ZeroShotMaxProb(_ZeroShot):
    """Mean max-softmax of the zero-shot predictions on the target's few unlabelled images."""

    name = "zs-maxprob"
    citation = "Hendrycks & Gimpel, A baseline for detecting misclassified ... examples, ICLR 2017"

    def _value(self, record) -> float:
        return mean_max_softmax(self._logits(record))


class ZeroShotEntropy(_ZeroShot):
    """Minus the mean entropy of the zero-shot predictions (higher = more confident)."""

    name = "zs-entropy"
    citation = "prediction entropy as a confidence score (label-free baseline)"

    def _value(self, record) -> float:
        return neg_entropy(self._logits(record))


class _Labelled(_FewImageScore):
    kind = LABELLED
    requires = (LABELLED,)
    target_needs = _LABELLED_NEEDS


class LEEP(_Labelled):
    """LEEP of the zero-shot class distribution for the few labelled target images."""

    name = "leep"
    citation = "Nguyen et al., LEEP: a new measure to evaluate transferability, ICML 2020"

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    _logits = _ZeroShot._logits

    def _value(self, record) -> float:
        return leep(softmax(self._logits(record), axis=1), record["labels"])


class NCE(_Labelled):
    """NCE of the zero-shot hard predictions for the few labelled target images."""

    name = "nce"
    citation = "Tran et al., Transferability and hardness of supervised classification tasks, ICCV 2019"

    def _value(self, record) -> float:
        return nce(np.argmax(np.asarray(record["logits"]), axis=1), record["labels"])


class HScore(_Labelled):
    """H-score of the image embeddings (degenerate with few images: module docstring)."""

    name = "h-score"
    citation = "Bao et al., An information-theoretic approach to transferability, ICIP 2019"

    def _value(self, record) -> float:
        return h_score(record["embeddings"], record["labels"])


class HScoreShrunk(_Labelled):
    """Regularised (Ledoit-Wolf shrinkage) H-score of the image embeddings."""

    name = "h-score-shrunk"
    citation = ("Ibrahim et al., Newer is not always better: rethinking transferability "
                "metrics, WACV 2023")

    def _value(self, record) -> float:
        return h_score_shrunk(record["embeddings"], record["labels"])


class LogME(_Labelled):
    """LogME of the image embeddings for the one-hot labels of the few target images."""

    name = "logme"
    citation = "You et al., LogME: practical assessment of pre-trained models, ICML 2021"

    def _value(self, record) -> float:
        return logme(record["embeddings"], record["labels"])
