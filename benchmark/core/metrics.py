"""Ranking metrics of a model-selection method on one target dataset.

Every metric is a pure function of two series over the same model index: ``scores`` (the
selector's output, higher = better) and ``truth`` (ground-truth accuracy on the target).

Conventions (``../shared/docs/methods/metrics.md``):

- Ranks: 1 = best; ties share the average rank (``scipy.stats.rankdata``).
- Top-k sets: order by value descending, ties broken by model id ascending, so every metric is
  deterministic and independent of input order. With ``k > n`` the top-k set is all n models.
  ``P_k`` = predicted top-k, ``T_k`` = true top-k, ``I_k = P_k ∩ T_k``.

Metrics:

- ``recall_at_k`` (LOVM, SWAB): ``|P_k ∩ T_k| / min(k, n)``.
- ``kendall_tau_at_k`` (LOVM, SWAB, DCD): Kendall's tau-b (scipy) between the predicted scores
  and the true accuracies of the models in ``I_k``; 0 when ``|I_k| < 2`` or when either side is
  constant on ``I_k`` (tau-b is undefined there). ``variant="lovm"`` reproduces LOVM's code
  (``LOVM/lovm.py:get_k_tau``): within ``I_k`` both sides are turned into descending average
  ranks truncated to int, tau-b on those, and 0 unless ``|I_k| > 2``.
- ``ndcg_at_k`` (DCD paper, App. F.2, our reconstruction): relevance ``rel(m) = k + 1 - r(m)``
  with ``r`` the true rank among all candidates; ``DCG = sum_i rel(m_i) / log2(i + 1)`` over
  ``I_k`` in predicted order (i = 1..|I_k|); ``ideal="intersection"`` (default): IDCG = the same
  sum over ``I_k`` in true order; ``ideal="truth_topk"``: IDCG over all of ``T_k`` in true order
  (top models the prediction missed are penalised). 0 when ``|I_k| < 2``.
- ``sum_at_k`` = NDCG@k + tau@k (the DCD paper's headline; LOVM/SWAB use R@5 + tau@5).

Outcome metrics (issue 19: what a user gets by taking the method's choice), at
``MetricConfig.outcome_ks`` (default 1, 3, 5). ``best`` = the highest ground-truth accuracy among
*all* the target's candidates (not only those the method scored: a partial-coverage method is
charged for the models it cannot rank). ``a_k`` = the highest true accuracy among ``P_k``.

- ``acc`` (``acc_at_k``): ``a_k``; ``acc@1`` is the accuracy of the model ranked first, ``acc@k``
  the best of the top k (the user tries k models and keeps the best).
- ``regret`` (``regret_at_k``): ``best - a_k`` (>= 0; 0 iff ``P_k`` holds a best model).
- ``nregret``: ``(best - a_k) / best`` (relative regret; 0 when ``best`` is 0).
- ``hit``: 1 if ``P_k`` holds a model with accuracy ``best``, else 0.

Ground-truth noise, from the target's test-split size ``n`` (``test_size`` in
``datasets/registry.toml``). Accuracies are treated as binomial proportions over ``n`` test
images:

- ``se``: the binomial standard error ``sqrt(a_k (1 - a_k) / n)`` of ``a_k`` (absent when ``n``
  is unknown).
- ``regret_tol``: ``regret``, but 0 when the chosen model is within noise of the best:
  ``best - a_k <= 1.96 * sqrt(best (1 - best) / n + a_k (1 - a_k) / n)`` (a two-sided 95% test
  of the two accuracies as independent proportions; on a shared test split this is
  conservative, i.e. counts more ties).
- ``hit_tol``: 1 if ``hit`` or the chosen model ties the best in that sense.

When ``n`` is unknown no tie can be established: ``regret_tol = regret`` and
``hit_tol = hit`` there (so ``regret_tol <= regret`` on every target and their means compare).

Reuse (MLL's protocol, Tan et al. ICML 2025, Table 2 "k = 3"), only where per-image zero-shot
predictions of the candidates exist (ground-truth packs of extractor version 2: ``minizoo``):

- ``ens`` at ``k = ENSEMBLE_K = 3`` (:func:`ensemble_accuracy`): top-1 accuracy on the target's
  test split of the ensemble of the method's top 3 models, combined as MLL's ``reuse.py`` does.
  Per model ``m`` and image ``x``: ``p_m(x) = softmax(logits_m(x))`` over the target's classes
  (logits ``100 cos``, CLIP's scale), weight ``w_m(x) = 1 / H_2(p_m(x))`` (the inverse of the
  prediction's entropy in bits: confident members count more; ``0 log 0 = 0``, ``H`` floored at
  1e-12), and the ensemble predicts ``argmax_c sum_{m in S_c} w_m(x) p_m(x)_c``. MLL selects the
  set ``S_c`` *per class* (its top-3 models by the class-level reuse metric); a method here
  returns one task-level ranking, so ``S_c`` = its top 3 for every class (what
  :func:`ensemble_predict` computes with ``members=None``; a per-class ``members`` mask gives
  MLL's general form). Differences to MLL's script: the ground-truth prompts (LOVM templates,
  not MLL's single template) and ties broken by model id (:func:`top_k`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata

METRICS = ("ndcg", "tau", "recall", "sum")
OUTCOME_METRICS = ("acc", "regret", "nregret", "hit")
NOISE_METRICS = ("se", "regret_tol", "hit_tol")
ALL_METRICS = METRICS + OUTCOME_METRICS + NOISE_METRICS  # every protocol's
#: only where per-image predictions of the candidates exist (minizoo); at k = ENSEMBLE_K
REUSE_METRICS = ("ens",)
ENSEMBLE_K = 3
ENTROPY_FLOOR = 1e-12
TIE_Z = 1.96


def _check(scores: pd.Series, truth: pd.Series) -> None:
    if set(scores.index) != set(truth.index):
        raise ValueError(
            f"scores and truth must cover the same models ({len(scores)} vs {len(truth)}; "
            f"e.g. {sorted(set(scores.index) ^ set(truth.index))[:3]})"
        )
    if scores.index.has_duplicates:
        raise ValueError("scores has duplicated model ids")
    if not np.all(np.isfinite(scores.to_numpy(dtype=float))):
        raise ValueError("scores must be finite")


def order(values: pd.Series) -> list[str]:
    """Model ids by value descending, ties by id ascending."""
    ids = np.asarray(values.index, dtype=str)
    v = values.to_numpy(dtype=float)
    return list(ids[np.lexsort((ids, -v))])


def top_k(values: pd.Series, k: int) -> list[str]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return order(values)[:k]


def true_ranks(truth: pd.Series) -> pd.Series:
    """Rank of every model by accuracy: 1 = best, ties averaged."""
    return pd.Series(rankdata(-truth.to_numpy(dtype=float), method="average"), index=truth.index)


def _intersection(scores: pd.Series, truth: pd.Series, k: int) -> tuple[list[str], list[str]]:
    """(I_k in predicted order, T_k in true order)."""
    _check(scores, truth)
    t_k = top_k(truth, k)
    in_truth = set(t_k)
    return [m for m in top_k(scores, k) if m in in_truth], t_k


def recall_at_k(scores: pd.Series, truth: pd.Series, k: int = 5) -> float:
    i_k, t_k = _intersection(scores, truth, k)
    return len(i_k) / len(t_k)


def kendall_tau_at_k(
    scores: pd.Series, truth: pd.Series, k: int = 5, variant: str = "clean"
) -> float:
    i_k, _ = _intersection(scores, truth, k)
    if variant == "clean":
        if len(i_k) < 2:
            return 0.0
        pred, true = scores[i_k].to_numpy(float), truth[i_k].to_numpy(float)
    elif variant == "lovm":
        if len(i_k) <= 2:
            return 0.0
        pred = np.trunc(rankdata(-scores[i_k].to_numpy(float), method="average"))
        true = np.trunc(rankdata(-truth[i_k].to_numpy(float), method="average"))
    else:
        raise ValueError(f"unknown tau variant {variant!r} (valid: 'clean', 'lovm')")
    tau = kendalltau(pred, true).statistic
    return 0.0 if np.isnan(tau) else float(tau)


def ndcg_at_k(
    scores: pd.Series, truth: pd.Series, k: int = 5, ideal: str = "intersection"
) -> float:
    if ideal not in ("intersection", "truth_topk"):
        raise ValueError(f"unknown NDCG ideal {ideal!r} (valid: 'intersection', 'truth_topk')")
    i_k, t_k = _intersection(scores, truth, k)
    if len(i_k) < 2:
        return 0.0
    rel = k + 1 - true_ranks(truth)

    def dcg(models: list[str]) -> float:
        gains = rel[models].to_numpy(float)
        return float(np.sum(gains / np.log2(np.arange(2, len(models) + 2))))

    in_pred = set(i_k)
    ideal_models = t_k if ideal == "truth_topk" else [m for m in t_k if m in in_pred]
    best = dcg(ideal_models)
    return dcg(i_k) / best if best != 0 else 0.0  # all-zero gains (heavy ties): no signal


def sum_at_k(scores: pd.Series, truth: pd.Series, k: int = 5, **variants: str) -> float:
    return ndcg_at_k(scores, truth, k, ideal=variants.get("ideal", "intersection")) + (
        kendall_tau_at_k(scores, truth, k, variant=variants.get("variant", "clean"))
    )


def acc_at_k(scores: pd.Series, truth: pd.Series, k: int = 1) -> float:
    """Highest true accuracy among the predicted top-k."""
    _check(scores, truth)
    return float(truth[top_k(scores, k)].max())


def regret_at_k(scores: pd.Series, truth: pd.Series, k: int = 1,
                best: float | None = None) -> float:
    """``best - acc@k``; ``best`` defaults to the best of ``truth`` (pass the best of all the
    target's candidates when ``scores`` covers only part of them)."""
    best = float(truth.max()) if best is None else float(best)
    return best - acc_at_k(scores, truth, k)


def binomial_se(acc: float, n: int) -> float:
    """Standard error of an accuracy measured on ``n`` test images."""
    if n < 1:
        raise ValueError(f"test size must be >= 1, got {n}")
    return float(np.sqrt(acc * (1.0 - acc) / n))


def within_noise(best: float, acc: float, n: int, z: float = TIE_Z) -> bool:
    """Whether ``acc`` ties ``best`` given binomial noise on ``n`` test images."""
    return best - acc <= z * float(np.sqrt(best * (1 - best) / n + acc * (1 - acc) / n))


@dataclass(frozen=True)
class MetricConfig:
    """Which metrics a run reports, at which cut-offs, with which variants."""

    ks: tuple[int, ...] = (3, 5, 7)
    ndcg_ideal: str = "intersection"
    tau_variant: str = "clean"
    outcome_ks: tuple[int, ...] = (1, 3, 5)

    def __post_init__(self) -> None:
        if self.ndcg_ideal not in ("intersection", "truth_topk"):
            raise ValueError(f"unknown NDCG ideal {self.ndcg_ideal!r}")
        if self.tau_variant not in ("clean", "lovm"):
            raise ValueError(f"unknown tau variant {self.tau_variant!r}")

    def evaluate(self, scores: pd.Series, truth: pd.Series, best: float | None = None,
                 n_test: int | None = None) -> list[tuple[str, int, float]]:
        """``(metric, k, value)`` for every metric and k.

        ``best``: the best true accuracy among all the target's candidates (default: the best
        of ``truth``); ``n_test``: the target's test-split size (adds the noise metrics).

        Computed by :func:`evaluate_arrays` (numpy, no pandas per metric); equal to the
        reference functions above (``tests/test_metrics.py`` checks it on random inputs).
        """
        _check(scores, truth)
        ids = np.asarray(scores.index, dtype=str)
        return evaluate_arrays(ids, scores.to_numpy(dtype=float),
                               truth.reindex(scores.index).to_numpy(dtype=float), self,
                               best_acc=best, n_test=n_test)

    def describe(self) -> str:
        return (f"NDCG ideal={self.ndcg_ideal}; tau variant={self.tau_variant}; "
                f"k in {list(self.ks)}; outcome k in {list(self.outcome_ks)}")

    def valid_ks(self, metric: str) -> tuple[int, ...]:
        return self.ks if metric in METRICS else self.outcome_ks


# -- the fast path -----------------------------------------------------------------------
def _desc_ranks(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Average descending rank of each of ``values`` among ``among`` (1 = largest)."""
    greater = (among[None, :] > values[:, None]).sum(axis=1)
    equal = (among[None, :] == values[:, None]).sum(axis=1)
    return 1.0 + greater + (equal - 1) / 2.0


def _tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two short vectors, computed as scipy does (bit for bit); NaN -> 0."""
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    tot = len(i)
    con_minus_dis = int(np.sum(dx * dy))
    xtie, ytie = int(np.sum(dx == 0)), int(np.sum(dy == 0))
    if xtie == tot or ytie == tot:
        return 0.0
    tau = con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    return float(np.minimum(1.0, max(-1.0, tau)))


def evaluate_arrays(ids: np.ndarray, scores: np.ndarray, truth: np.ndarray,
                    cfg: MetricConfig, best_acc: float | None = None,
                    n_test: int | None = None) -> list[tuple[str, int, float]]:
    """:meth:`MetricConfig.evaluate` on aligned arrays (ids, scores, true accuracies)."""
    pred_order = np.lexsort((ids, -scores))
    true_order = np.lexsort((ids, -truth))
    rows = []
    for k in cfg.ks:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        t_k = true_order[:k]
        in_truth = np.zeros(len(ids), dtype=bool)
        in_truth[t_k] = True
        i_k = pred_order[:k][in_truth[pred_order[:k]]]  # I_k in predicted order
        n_i = len(i_k)
        recall = n_i / len(t_k)
        # NDCG
        if n_i < 2:
            ndcg = 0.0
        else:
            def dcg(models: np.ndarray, k=k) -> float:
                gains = k + 1 - _desc_ranks(truth[models], truth)
                return float(np.sum(gains / np.log2(np.arange(2, len(models) + 2))))

            if cfg.ndcg_ideal == "truth_topk":
                ideal = t_k
            else:
                in_pred = np.zeros(len(ids), dtype=bool)
                in_pred[i_k] = True
                ideal = t_k[in_pred[t_k]]
            best = dcg(ideal)
            ndcg = dcg(i_k) / best if best != 0 else 0.0
        # tau
        if cfg.tau_variant == "clean":
            tau = 0.0 if n_i < 2 else _tau_b(scores[i_k], truth[i_k])
        else:
            if n_i <= 2:
                tau = 0.0
            else:
                ps, ts = scores[i_k], truth[i_k]
                tau = _tau_b(np.trunc(_desc_ranks(ps, ps)), np.trunc(_desc_ranks(ts, ts)))
        rows += [("ndcg", k, ndcg), ("tau", k, tau), ("recall", k, recall),
                 ("sum", k, ndcg + tau)]
    return rows + outcome_arrays(pred_order, truth, cfg.outcome_ks, best_acc, n_test)


def outcome_arrays(pred_order: np.ndarray, truth: np.ndarray, ks, best: float | None = None,
                   n_test: int | None = None) -> list[tuple[str, int, float]]:
    """Outcome (and, with ``n_test``, noise) metrics from the predicted order."""
    top = float(truth.max())
    best = top if best is None else float(best)
    if best < top:
        raise ValueError(f"best={best} is below the best scored accuracy {top}")
    running = np.maximum.accumulate(truth[pred_order])  # a_k for k = 1..n
    rows = []
    for k in ks:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        a = float(running[min(k, len(running)) - 1])
        regret = best - a
        hit = float(a >= best)
        rows += [("acc", k, a), ("regret", k, regret),
                 ("nregret", k, regret / best if best > 0 else 0.0), ("hit", k, hit)]
        tie = n_test is not None and within_noise(best, a, n_test)
        rows += [("regret_tol", k, 0.0 if tie else regret), ("hit_tol", k, float(hit or tie))]
        if n_test is not None:
            rows.append(("se", k, binomial_se(a, n_test)))
    return rows


# -- reuse: MLL's ensemble of the top models --------------------------------------------
def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def ensemble_predict(logits, members: np.ndarray | None = None) -> np.ndarray:
    """MLL's entropy-weighted ensemble (module docstring): predicted class ``[N]``.

    ``logits``: one ``[N, C]`` array per member model (the same N images in the same order);
    ``members``: ``[M, C]`` booleans, whether model m is in class c's set ``S_c`` (default: every
    model for every class). A class no member votes for scores 0."""
    stack = np.stack([np.asarray(x, np.float64) for x in logits])  # [M, N, C]
    if stack.ndim != 3 or stack.shape[0] == 0 or stack.shape[2] == 0:
        raise ValueError(f"ensemble_predict needs M >= 1 arrays [N, C], got {stack.shape}")
    n_models, _, n_classes = stack.shape
    mask = (np.ones((n_models, n_classes), bool) if members is None
            else np.asarray(members, bool))
    if mask.shape != (n_models, n_classes):
        raise ValueError(f"members must be [{n_models}, {n_classes}], got {mask.shape}")
    p = _softmax(stack)
    plogp = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    weight = 1.0 / np.maximum(-plogp.sum(axis=2, keepdims=True), ENTROPY_FLOOR)  # [M, N, 1]
    combined = (p * weight * mask[:, None, :]).sum(axis=0)
    return np.argmax(combined, axis=1)


def ensemble_accuracy(logits, labels: np.ndarray, members: np.ndarray | None = None) -> float:
    """Top-1 accuracy of :func:`ensemble_predict` against the true ``labels`` ``[N]``."""
    y = np.asarray(labels)
    pred = ensemble_predict(logits, members)
    if len(y) != len(pred) or len(y) == 0:
        raise ValueError(f"{len(y)} labels for {len(pred)} predictions")
    return float(np.mean(pred == y))


def top_k_ensemble_accuracy(scores: pd.Series, logits_of, labels: np.ndarray,
                            k: int = ENSEMBLE_K) -> float:
    """``ens@k``: :func:`ensemble_accuracy` of the top ``k`` models of ``scores`` (ties by id),
    ``logits_of(model)`` giving each one's ``[N, C]`` logits on the target's test images."""
    chosen = top_k(scores, k)
    return ensemble_accuracy([logits_of(m) for m in chosen], labels)
