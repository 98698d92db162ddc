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

What is left (needs the minizoo feature kind, not merged here)
-------------------------------------------------------------
1. A feature kind ``few-images`` in :data:`benchmark.features.kinds.KINDS`: per (model,
   dataset) ``embeddings [n, d]``, ``logits [n, C]`` of ``n`` sampled test images and, for the
   sources only or for the labelled setting, ``labels [n]``; its ``for_target`` drops
   ``labels`` (the label-free view) -- the labelled setting needs a second kind
   (``few-labelled-images``) whose target part keeps them, declared as such on every page.
2. Selectors (one module-level class each, registry lines ``zs-maxprob``, ``zs-entropy``,
   ``leep``, ``nce``, ``h-score``, ``logme``): ``score(target)`` = the function above on the
   target's record of each candidate; no ``fit`` state beyond parameters. Mark the labelled
   ones ``stochastic = True`` when the image sample depends on the seed.
3. On the published zoos they then report the missing pack (as ``dcd`` does) by the kind's
   ``needs`` string.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax

__all__ = ["mean_max_softmax", "neg_entropy", "leep", "nce", "h_score", "logme", "log_evidence"]


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
