r"""SWAB: VLM selection with gap bridging (Yi et al., NeurIPS 2024), and its public-data reduction.

Paper: "Bridge the Modality and Capability Gaps in Vision-Language Model Selection"; code
``YCaigogogo/SWAB`` (``pred_ptm_stats_in_target_task_with_ot.py``, ``pred_ptm_rank.py``,
``calc_ptm_stats_in_hist_task.py``, ``LOVM/modelGPT/model_gpt_predictor.py``; read, not
copied). Spec: ``docs/methods/swab.md``.

Variants (one registry entry each, ``methods/__init__.py``)
------------------------------------------------------------
============  ======================  ===================================  =================================  ===============================
entry         class                   ranking 1                            ranking 2                          runs on
============  ======================  ===================================  =================================  ===============================
swab-text     :class:`SWABText`       ModelGPT, INB,C,G (LOVM's features)  OT transfer of *dataset* ranks     mirrored files
swab          :class:`SWABText`       alias of ``swab-text``               same                               same
swab-ot-text  :class:`RankTransfer`   --                                   OT transfer of *dataset* ranks     mirrored files
swab-full     :class:`SWAB`           ModelGPT, INB,GAP_C,GAP_G            OT transfer of *class* ranks       ``class-stats`` packs
swab-c        :class:`SWAB`           ModelGPT, INB,C,G                    OT transfer of *class* ranks       ``class-stats`` packs
swab-m        :class:`SWAB`           ModelGPT, INB,GAP_C,GAP_G            --                                 ``class-stats`` packs
swab-m-noinb  :class:`SWAB`           ModelGPT, GAP_C,GAP_G (no INB)       --                                 ``class-stats`` packs
swab-ot       ClassRankTransfer       --                                   OT transfer of *class* ranks       ``class-stats`` packs
============  ======================  ===================================  =================================  ===============================

``swab-full`` is the paper's method; ``swab-c`` and ``swab-m`` its ablations (SWAB-C: no
modality-gap correction; SWAB-M: no capability transfer). They need per-class statistics that
only images give (``python -m benchmark extract class-stats``). ``swab-text`` (and its alias
``swab``) is what runs from the published files alone: it is **not** the paper's method. It
keeps SWAB's structure (ModelGPT + OT capability transfer + Borda) but (1) transfers
*dataset-level* ranks, since per-class accuracies are not published, and (2) uses LOVM's
uncorrected text features (no modality-gap correction, which needs image embeddings) -- i.e.
SWAB-C with class ranks replaced by dataset ranks.

The bridge (:mod:`methods.swab.ot_transfer`)
-----------------------------------------
Fold with target ``t`` and sources ``S``. Class embeddings ``e_{d,c}`` (text embedder
``embedder``, prompt templates averaged); ``K`` = the source classes ``(s, c)`` with
``max_j cos(e_{s,c}, e_{t,j}) > thres``; ``P`` = OT plan from uniform mass on ``K`` to uniform
mass on ``t``'s ``n_t`` classes with cost ``exp(k (1 - cos))`` and total mass ``m`` (exact OT
when ``m = 1``, partial Wasserstein otherwise); row mass ``w_k = Σ_j P_kj``.

Ranking 2 (capability transfer)
-------------------------------
Candidates ``M`` (the target's). For each row ``k`` of ``K``, ``r_{m,k}`` is the normalised
rank of ``m`` among the candidates that have a value there::

    r_{m,k} = (rank↑_k(m) - 1) / (n_k - 1)   in [0, 1], 0 = worst, 1 = best (ties averaged)
    score2(m) = Σ_k w_k r_{m,k} / Σ_{k: r_{m,k} known} w_k

- class level (``SWAB``): the value is ``m``'s zero-shot accuracy on class ``c`` of ``s``;
- dataset level (``SWABText``, ``RankTransfer``): every kept class of ``s`` carries ``m``'s
  top-1 accuracy on ``s``, so ``r_{m,k} = r_{m,s}`` and the score is the weighted average of
  the source-dataset ranks with weights = the mass transported from each source,
  ``score2(m) = Σ_s W_s r_{m,s} / Σ_{s: known} W_s``, ``W_s = Σ_{k in s} w_k``.

SWAB computes ``Σ_j (R P)_{mj} = Σ_k w_k R_{mk}`` with ``R`` = ordinal ranks (0 = worst) among
all its 43 models, every model having every value. With every value present both are the same
ranking (``R = (n - 1) r`` and the denominator is the constant ``m``). The normalisation and
the renormalised weights only matter when values are missing (a model without a cell on a
source, a class without sampled images); a candidate with no known value at all is ranked
last by ranking 2.

Ranking 1 (ModelGPT, :class:`methods.modelgpt.ModelGPT` reused as is)
---------------------------------------------------------------------
``features`` as LOVM/SWAB name the groups: ``INB``, ``C``, ``G``, and SWAB's gap-corrected
``GAP_C`` (``z-gap-text-f1``, ``z-gap-text-acc1``) and ``GAP_G`` (``z-gap-intraclass_sim``,
``z-gap-inter_close``, ``z-gap-intra_close`` and the *uncorrected* ``superclass_metric``, as in
SWAB's ``FEATURES_SET``). Gap correction of model ``m`` on dataset ``d`` (SWAB's
``calc_model_stats_on_hist_task_text_sample``), from ``m``'s ``class-stats`` record:

1. predicted gap vectors of ``d``'s classes: ``Ĝ_d = n_d Pᵀ G`` with ``P`` the bridge from
   every dataset of the fold other than ``d`` (sources, never the target) to ``d``, mass
   ``gap_m`` (SWAB: 1), and ``G`` the rows' gap vectors of ``m``
   (:func:`benchmark.features.class_stats.gap_vectors`); zero vectors when no class is kept;
2. z-scoring with the statistics of ``d``'s captions: ``z(x) = (x - μ_cap) / σ_cap``;
   zero-shot weights ``z(w_i)``, captions ``ĉ = z(c) + ĝ_i`` for a caption ``c`` of class ``i``;
3. ``z-gap-text-acc1`` / ``-f1``: accuracy / macro-F1 of ``argmax_j (ĉ + σ ε) · z(w_j)``
   (``σ = gap_sigma``, SWAB: 0.15; ``ε`` standard normal; neither side is renormalised; the
   noise term ``σ ε z(W)ᵀ`` is drawn directly in its C-dimensional space,
   :func:`projected_noise`, same distribution at a fraction of the cost);
4. ``z-gap-intraclass_sim = mean_j max_{i≠j} z(w_i)·z(w_j)`` (diagonal zeroed, LOVM's rule);
   ``z-gap-inter_close = mean_i mean_{c in i} (ĉ/|ĉ|)·z(w_i)``;
   ``z-gap-intra_close = mean_i max_{j≠i} mean_{c in i} (ĉ/|ĉ|)·z(w_j)``.

The training rows (sources) get their gaps predicted the same way, from the other sources,
so the regression sees features of the kind it is applied to. The corrected values are handed
to ``ModelGPT`` under the uncorrected column names (a text-features view built from them), so
its regression, centring and checks are exactly ``modelgpt``'s.

Merge and fallback
------------------
Weighted Borda count over the candidates (``n`` of them): ``rank_j`` = rank of ``m`` by
ranking ``j`` (1 = best, ties averaged), ``score(m) = Σ_j weights_j (n + 1 - rank_j(m))``
(SWAB: ``Σ_j w_j (n - rank0_j)`` with 0-based ranks; weights ``(0.5, 0.5)``). When no source
class passes ``thres`` (no plan for the target), SWAB uses ranking 1 alone with uncorrected
features; ``RankTransfer`` then returns zeros (no information; SWAB's code does the same).
A ranking whose weight is 0 is not computed (``swab-m``: ``weights = (1, 0)``).

Differences from SWAB's code (deliberate or forced)
---------------------------------------------------
- Text embedder: ``minilm`` by default (offline-capable); SWAB used ``mpnet``
  (all-mpnet-base-v2), available as ``embedder="mpnet"`` when it is in the Hugging Face cache.
  ``thres = 0.5`` was set by SWAB for mpnet's similarities.
- Ranks: normalised, among the target's candidates, ties averaged (SWAB: ordinal ranks among
  its 43 models, ties broken by ``argsort`` order). Borda ties averaged likewise.
- ImageNet-1k is side information here, never a source or target (SWAB: both).
- Uncorrected features (``C``, ``G``, and ``superclass_metric`` in ``GAP_G``) come from the
  ``text-features`` kind: LOVM's published values (caption noise σ = 0.1), else packs; SWAB
  recomputed them with σ = 0.15. Models without text features (BLIP, BEiT-3, the 5 extra
  ``dcd48`` models until packs exist) are not candidates for the variants that use ranking 1.
- No feature-subset search by held-out score (SWAB's scripts evaluate every subset of the
  feature groups on the targets and report the best).
- Class statistics come from a sample of test images (``--images-per-dataset``; SWAB: all).
- Gap-correction noise is seeded per (model, dataset) from ``noise_seed`` (SWAB: one torch
  stream per run, 10 runs); the variants are deterministic.

Cost: as in SWAB, every fold recomputes the gap-corrected features of every (model, dataset)
(the gaps of a source are predicted without the held-out target): measured on synthetic
records of the real sizes (LOVM's 22 datasets, D = 512, 2 CPU cores), about 4 s per model
and fold, i.e. ~45 min for ``swab-full`` or ``swab-m`` on ``dcd48``'s 40 open_clip models;
``swab-c`` ~0.25 s per model and fold; ``swab-text`` seconds once the class names are embedded.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from numbers import Real
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from benchmark.extract.text_features import caption_noise, macro_f1  # numpy only
from benchmark.features.class_stats import KIND as CLASS_KIND
from benchmark.features.class_stats import check_record, gap_vectors
from benchmark.features.store import Record
from benchmark.features.text_features import KIND as TEXT_KIND
from methods.base import FeatureView, Selector, TargetView, TrainView
from methods.modelgpt import ModelGPT
from methods.swab.ot_transfer import (
    DEFAULT_K,
    DEFAULT_MASS,
    DEFAULT_THRES,
    ClassTransport,
    bridge,
    class_embeddings,
)

log = logging.getLogger(__name__)

CITATION = (
    "Yi, He, Zhan, Ye. Bridge the Modality and Capability Gaps in Vision-Language Model "
    "Selection, NeurIPS 2024."
)
DEFAULT_WEIGHTS = (0.5, 0.5)
SWAB_GAP_SIGMA = 0.15  # pred_ptm_rank.py: sigma = 0.15
#: corrected columns of each gap group (``superclass_metric`` of GAP_G stays uncorrected)
GAP_GROUPS: dict[str, tuple[str, ...]] = {
    "C": ("text-f1", "text-acc1"),
    "G": ("intraclass_sim", "inter_close", "intra_close"),
}
NO_INFORMATION = -1.0  # ranking-2 score of a candidate without any known value: ranked last


# -- pure functions ---------------------------------------------------------------------------
def normalized_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``(rank↑ - 1) / (n - 1)`` among the finite values (0 = worst, 1 = best, ties averaged).

    NaN where a value is missing, and everywhere when fewer than two values are known.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    n = int(ok.sum())
    if n >= 2:
        out[ok] = (rankdata(v[ok], method="average") - 1.0) / (n - 1.0)
    return out


def column_ranks(values: np.ndarray) -> np.ndarray:
    """:func:`normalized_ranks` of every column of ``values`` ``[models, rows]``."""
    v = np.asarray(values, dtype=np.float64)
    return np.stack([normalized_ranks(v[:, j]) for j in range(v.shape[1])], axis=1) \
        if v.shape[1] else v.copy()


def borda(rankings: Sequence[pd.Series], weights: Sequence[float]) -> pd.Series:
    """Weighted Borda count: ``Σ_j w_j (n + 1 - rank_j(m))``, rank 1 = highest score."""
    if len(rankings) != len(weights) or not rankings:
        raise ValueError("borda needs one weight per ranking")
    index = rankings[0].index
    n = len(index)
    total = np.zeros(n)
    for s, w in zip(rankings, weights, strict=True):
        x = s.reindex(index).to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError("borda: a ranking has missing or non-finite scores")
        total += float(w) * (n + 1 - rankdata(-x, method="average"))
    return pd.Series(total, index=index, dtype=float)


def projected_noise(zw: np.ndarray, counts: Sequence[int], names: Sequence[str], sigma: float,
                    seed: int) -> np.ndarray | float:
    """``σ ε zwᵀ`` ``[N, C]`` for ``ε`` standard normal ``[N, D]``, drawn at the lower cost.

    Its rows are ``N(0, σ² zw zwᵀ)``. When ``C <= D`` they are drawn as ``σ u R`` with ``u``
    standard normal ``[N, C]`` and ``Rᵀ R = zw zwᵀ`` (Cholesky; ``Λ^½ Vᵀ`` when singular):
    the same distribution with ``N C`` normals and an ``N C C`` product instead of ``N D`` and
    ``N D C``. The normals
    come from :func:`benchmark.extract.text_features.caption_noise` (class by class in sorted
    class-name order, seeded). ``sigma = 0``: no noise.
    """
    if not sigma:
        return 0.0
    c, d = zw.shape
    if c <= d:
        gram = zw @ zw.T
        try:
            r = np.linalg.cholesky(gram).T  # gram = L Lᵀ, R = Lᵀ
        except np.linalg.LinAlgError:  # singular (e.g. duplicate class names)
            lam, v = np.linalg.eigh(gram)
            r = np.sqrt(np.clip(lam, 0, None))[:, None] * v.T
        r = r.astype(np.float32)
        u = np.concatenate(caption_noise(names, list(counts), c, sigma, seed))
        return u.astype(np.float32) @ r
    eps = np.concatenate(caption_noise(names, list(counts), d, sigma, seed))
    return eps.astype(np.float32) @ zw.T.astype(np.float32)


def gap_text_features(
    record: Record, gaps: np.ndarray, sigma: float = SWAB_GAP_SIGMA, seed: int = 0
) -> dict[str, float]:
    """SWAB's gap-corrected C and G features of one (model, dataset) (module docstring, 2-4).

    ``record``: the ``class-stats`` record; ``gaps``: predicted gap vectors ``[C, D]``.
    Keys are the uncorrected column names (``text-f1``, ``text-acc1``, ``intraclass_sim``,
    ``inter_close``, ``intra_close``).
    """
    w = np.asarray(record["text_weights"], dtype=np.float64)
    c, d = w.shape
    gaps = np.asarray(gaps, dtype=np.float64)
    if gaps.shape != (c, d):
        raise ValueError(f"gaps have shape {gaps.shape}, expected {(c, d)}")
    if c < 2:
        raise ValueError(f"{record.model} on {record.dataset}: need at least 2 classes")
    center = np.asarray(record["text_center"], dtype=np.float64)
    std = np.asarray(record["text_std"], dtype=np.float64)
    std = np.where(std > 0, std, 1.0)  # a constant coordinate carries no information
    zw = (w - center) / std
    offsets = np.asarray(record["caption_offsets"], dtype=np.int64)
    counts = np.diff(offsets)
    labels = np.repeat(np.arange(c), counts)
    # float32 for the [N, D] arrays and the big product (captions are float16 anyway)
    f32 = np.float32
    zc = np.asarray(record["captions"], dtype=f32) - center.astype(f32)
    zc /= std.astype(f32)
    zc += gaps.astype(f32)[labels]
    base = (zc @ zw.T.astype(f32)).astype(np.float64)  # [N, C]
    logits = base + projected_noise(zw, counts, [str(x) for x in record["classnames"]], sigma,
                                    seed)
    pred = np.argmax(logits, axis=1)
    f1, acc = macro_f1(labels, pred), float(np.mean(pred == labels))
    cos = base / np.maximum(np.linalg.norm(zc, axis=1, keepdims=True), 1e-12)
    per_class = np.add.reduceat(cos, offsets[:-1], axis=0) / counts[:, None]  # [C, C]
    inter_close = float(np.mean(np.diag(per_class)))
    others = per_class + np.diag(np.full(c, -np.inf))
    intra_close = float(np.mean(others.max(axis=1)))
    sims = zw @ zw.T
    np.fill_diagonal(sims, 0.0)
    intraclass = float(sims.max(axis=0).mean())
    return {"text-f1": f1, "text-acc1": acc, "intraclass_sim": intraclass,
            "inter_close": inter_close, "intra_close": intra_close}


def split_features(features: Sequence[str] | str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(ModelGPT groups, corrected groups)``: ``GAP_C`` -> ``C`` corrected, ``GAP_G`` -> ``G``."""
    items = [f.strip() for f in features.split(",")] if isinstance(features, str) else \
        [str(f).strip() for f in features]
    items = [f for f in items if f]
    plain, corrected = [], []
    for f in items:
        base = f[4:] if f.startswith("GAP_") else f
        if f.startswith("GAP_"):
            if base not in GAP_GROUPS:
                raise ValueError(f"swab: unknown feature group {f!r} (valid: GAP_C, GAP_G)")
            corrected.append(base)
        if base in plain:
            raise ValueError(f"swab: feature group {base!r} requested twice (corrected and not)")
        plain.append(base)
    if not plain:
        raise ValueError("swab: no features selected")
    return tuple(plain), tuple(corrected)


def _validate(sel: Any, *, mass_params: Sequence[str] = ("m",)) -> tuple[float, float]:
    for name in mass_params:
        v = getattr(sel, name)
        if not isinstance(v, Real) or not 0 < v <= 1:
            raise ValueError(f"{sel.name}: {name} must be in (0, 1], got {v!r}")
    if not isinstance(sel.thres, Real) or not -1 <= sel.thres <= 1:
        raise ValueError(f"{sel.name}: thres must be a cosine in [-1, 1], got {sel.thres!r}")
    if not isinstance(sel.k, Real) or sel.k == 0:
        raise ValueError(f"{sel.name}: k must be a non-zero number (-1: cost 1 - cos), got {sel.k!r}")
    weights = getattr(sel, "weights", (0.0, 1.0))
    if (len(weights) != 2 or any(not isinstance(w, Real) or w < 0 for w in weights)
            or sum(weights) <= 0):
        raise ValueError(f"{sel.name}: weights must be two non-negative numbers, not both 0, "
                         f"got {weights!r}")
    return float(weights[0]), float(weights[1])


# -- selectors --------------------------------------------------------------------------------
class _Bridged:
    """The OT bridge shared by the selectors (needs ``embedder``, ``thres``, ``m``, ``k``)."""

    def _fit_bridge(self, train: TrainView) -> None:
        self.source_embeddings_ = {d.id: class_embeddings(d, self.embedder) for d in train.sources}

    def transport(self, target: TargetView, m: float | None = None) -> ClassTransport | None:
        """The plan from the kept source classes to the target's classes (None: none kept)."""
        tgt = class_embeddings(target.dataset, self.embedder)
        return bridge(self.source_embeddings_, tgt, thres=self.thres,
                      m=self.m if m is None else m, k=self.k)


class RankTransfer(_Bridged, Selector):
    """SWAB's ranking 2 alone, on dataset-level ranks (``swab-ot-text``): text + ground truth."""

    name = "swab-ot-text"
    target_needs = "class names (text embedder); no images, no labels"
    requires: tuple[str, ...] = ()
    citation = CITATION
    stochastic = False

    def __init__(
        self,
        embedder: Any = "minilm",
        thres: float = DEFAULT_THRES,
        m: float = DEFAULT_MASS,
        k: float = DEFAULT_K,
    ) -> None:
        self.embedder = embedder
        self.thres = thres
        self.m = m
        self.k = k

    def fit(self, train: TrainView) -> RankTransfer:
        _validate(self)
        self._fit_bridge(train)
        self.source_accuracy_ = train.accuracy.copy()
        return self

    def capability_scores(self, target: TargetView, transport: ClassTransport) -> pd.Series:
        """Ranking 2 on dataset-level ranks: ``Σ_s W_s r_{m,s} / Σ_{s known} W_s``."""
        cands = list(target.candidates)
        acc = self.source_accuracy_.reindex(index=cands)
        by_source = {s: normalized_ranks(acc[s].to_numpy(dtype=np.float64))
                     for s in dict.fromkeys(transport.datasets)}
        rows = np.stack([by_source[s] for s in transport.datasets], axis=1)
        scores = transport.transfer_scores(rows)
        return pd.Series(np.nan_to_num(scores, nan=NO_INFORMATION), index=cands, dtype=float)

    def score(self, target: TargetView) -> pd.Series:
        cands = list(target.candidates)
        transport = self.transport(target)
        if transport is None:
            log.info("%s: no source class within thres=%s of %s's classes: no information",
                     self.name, self.thres, target.dataset.id)
            return pd.Series(0.0, index=cands, dtype=float)
        return self.capability_scores(target, transport)


class SWABText(RankTransfer):
    """SWAB reduced to public data (``swab-text``): ModelGPT + dataset-level rank transfer."""

    name = "swab-text"
    target_needs = "class names (text embeddings of each model); no images, no labels"
    requires = (TEXT_KIND,)

    def __init__(
        self,
        features: Sequence[str] | str = ("INB", "C", "G"),
        regressor: str = "linear",
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        embedder: Any = "minilm",
        thres: float = DEFAULT_THRES,
        m: float = DEFAULT_MASS,
        k: float = DEFAULT_K,
    ) -> None:
        self.features = features
        self.regressor = regressor
        self.weights = weights
        self.embedder = embedder
        self.thres = thres
        self.m = m
        self.k = k

    def fit(self, train: TrainView) -> SWABText:
        super().fit(train)
        self.ranking1_ = ModelGPT(features=self.features, regressor=self.regressor).fit(train)
        return self

    def score(self, target: TargetView) -> pd.Series:
        w1, w2 = _validate(self)
        r1 = self.ranking1_.score(target)
        transport = self.transport(target) if w2 > 0 else None
        if transport is None:
            return borda([r1], [1.0])  # SWAB: ranking 1 alone when nothing is transported
        r2 = self.capability_scores(target, transport)
        return borda([r1, r2], [w1, w2])


class SWAB(_Bridged, Selector):
    """SWAB as published (``swab-full``; ablations ``swab-c``, ``swab-m``): needs class-stats."""

    name = "swab-full"
    target_needs = ("class names (text embeddings of each model; image statistics of the "
                    "sources only); no target images, no labels")
    requires = (TEXT_KIND, CLASS_KIND)
    citation = CITATION
    stochastic = False

    def __init__(
        self,
        features: Sequence[str] | str = ("INB", "GAP_C", "GAP_G"),
        regressor: str = "linear",
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        embedder: Any = "minilm",
        thres: float = DEFAULT_THRES,
        m: float = DEFAULT_MASS,
        k: float = DEFAULT_K,
        gap_m: float = 1.0,
        gap_sigma: float = SWAB_GAP_SIGMA,
        noise_seed: int = 0,
    ) -> None:
        self.features = features
        self.regressor = regressor
        self.weights = weights
        self.embedder = embedder
        self.thres = thres
        self.m = m
        self.k = k
        self.gap_m = gap_m
        self.gap_sigma = gap_sigma
        self.noise_seed = noise_seed

    # -- class statistics ------------------------------------------------------------------
    def _record(self, view: FeatureView, model: str, dataset: str, classnames) -> Record:
        key = (model, dataset)
        if key not in self._checked:
            rec = view.get(model, dataset)
            check_record(rec, classnames)
            self._checked[key] = rec
        return self._checked[key]

    def _gaps(self, model: str, dataset: str) -> np.ndarray:
        """Gap vectors of ``model`` on source ``dataset`` (NaN rows: classes without images)."""
        key = (model, dataset)
        if key not in self._gap_cache:
            info = self.source_infos_[dataset]
            self._gap_cache[key] = gap_vectors(
                self._record(self.source_stats_, model, dataset, info.classnames))
        return self._gap_cache[key]

    def _predicted_gaps(self, model: str, transport: ClassTransport | None,
                        shape: tuple[int, int]) -> np.ndarray:
        if transport is None:
            return np.zeros(shape)
        g = np.full((len(transport.datasets), shape[1]), np.nan)
        for d in dict.fromkeys(transport.datasets):
            if not self.source_stats_.has(model, d):
                continue
            vecs = self._gaps(model, d)
            if vecs.shape[1] != shape[1]:
                raise ValueError(f"{model}: class-stats of {d} have width {vecs.shape[1]}, "
                                 f"those of the dataset being corrected {shape[1]}")
            rows = transport.rows_of(d)
            g[rows] = vecs[[transport.classes[r] for r in rows]]
        return transport.transfer_vectors(g)

    def _corrected(self, text: Record, stats: Record, transport: ClassTransport | None) -> Record:
        gaps = self._predicted_gaps(text.model, transport, stats["text_weights"].shape)
        seed = zlib.crc32(f"{self.noise_seed}|{text.model}|{text.dataset}".encode())
        values = gap_text_features(stats, gaps, sigma=self.gap_sigma, seed=seed)
        keep = {c for g in self.corrected_ for c in GAP_GROUPS[g]}
        arrays = {**text.arrays, **{c: np.asarray(v, dtype=np.float64)
                                    for c, v in values.items() if c in keep}}
        return Record.make(TEXT_KIND, text.model, text.dataset, arrays,
                           {**text.meta, "gap_corrected": sorted(keep)})

    @staticmethod
    def _with_text(view, records: Mapping[tuple[str, str], Record]):
        fv = view.feature(TEXT_KIND)
        new = FeatureView(TEXT_KIND, fv.datasets, MappingProxyType(dict(records)))
        return replace(view, features=MappingProxyType({**view.features, TEXT_KIND: new}))

    # -- Selector API ----------------------------------------------------------------------
    def fit(self, train: TrainView) -> SWAB:
        self.weights_ = _validate(self, mass_params=("m", "gap_m"))
        plain, self.corrected_ = split_features(self.features)
        self._checked: dict[tuple[str, str], Record] = {}
        self._gap_cache: dict[tuple[str, str], np.ndarray] = {}
        self.source_infos_ = {d.id: d for d in train.sources}
        self._fit_bridge(train)
        self.source_stats_ = train.feature(CLASS_KIND)
        self.ranking1_plain_ = ModelGPT(features=plain, regressor=self.regressor).fit(train)
        if not self.corrected_ or self.weights_[0] == 0:
            self.ranking1_ = self.ranking1_plain_
            return self
        text = train.feature(TEXT_KIND)
        records = {}
        for s in train.source_ids:
            others = {d: e for d, e in self.source_embeddings_.items() if d != s}
            plan = bridge(others, self.source_embeddings_[s], thres=self.thres, m=self.gap_m,
                          k=self.k)
            for model in train.models:
                if text.has(model, s) and self.source_stats_.has(model, s):
                    stats = self._record(self.source_stats_, model, s,
                                         self.source_infos_[s].classnames)
                    records[(model, s)] = self._corrected(text.get(model, s), stats, plan)
        self.ranking1_ = ModelGPT(features=plain, regressor=self.regressor).fit(
            self._with_text(train, records))
        return self

    def _ranking1(self, target: TargetView) -> pd.Series:
        if not self.corrected_:
            return self.ranking1_.score(target)
        plan = self.transport(target, m=self.gap_m)
        t = target.dataset.id
        text, stats = target.feature(TEXT_KIND), target.feature(CLASS_KIND)
        records = {}
        for model in target.candidates:
            rec = stats.get(model, t)  # the target's part: text-derived arrays only
            check_record(rec, target.dataset.classnames, target=True)
            records[(model, t)] = self._corrected(text.get(model, t), rec, plan)
        return self.ranking1_.score(self._with_text(target, records))

    def capability_scores(self, target: TargetView, transport: ClassTransport) -> pd.Series:
        """Ranking 2 on class-level accuracies (module docstring)."""
        cands = list(target.candidates)
        acc = np.full((len(cands), len(transport.datasets)), np.nan)
        for d in dict.fromkeys(transport.datasets):
            rows = transport.rows_of(d)
            classes = [transport.classes[r] for r in rows]
            for i, model in enumerate(cands):
                if self.source_stats_.has(model, d):
                    rec = self._record(self.source_stats_, model, d,
                                       self.source_infos_[d].classnames)
                    acc[i, rows] = rec["class_acc"][classes]
        scores = transport.transfer_scores(column_ranks(acc))
        return pd.Series(np.nan_to_num(scores, nan=NO_INFORMATION), index=cands, dtype=float)

    def score(self, target: TargetView) -> pd.Series:
        w1, w2 = self.weights_
        transport = self.transport(target)
        if transport is None:
            log.info("%s: no source class within thres=%s of %s's classes: ranking 1 alone, "
                     "uncorrected features (SWAB's rule)", self.name, self.thres,
                     target.dataset.id)
            return borda([self.ranking1_plain_.score(target)], [1.0])
        rankings, weights = [], []
        if w1 > 0:
            rankings.append(self._ranking1(target))
            weights.append(w1)
        if w2 > 0:
            rankings.append(self.capability_scores(target, transport))
            weights.append(w2)
        return borda(rankings, weights)


class ClassRankTransfer(SWAB):
    """SWAB's ranking 2 alone at class level, the paper's "OT weighted rank" (``swab-ot``):
    the OT transfer of *class-level* source ranks (``capability_scores``); no ModelGPT, so no
    text features. Needs only ``class-stats`` packs (the sources' per-class accuracies; of
    the target, its class names). No plan for the target: zeros (no information, as
    ``RankTransfer``)."""

    name = "swab-ot"
    target_needs = "class names (text embedder); no images, no labels"
    requires = (CLASS_KIND,)

    def __init__(self, embedder: Any = "minilm", thres: float = DEFAULT_THRES,
                 m: float = DEFAULT_MASS, k: float = DEFAULT_K) -> None:
        self.embedder = embedder
        self.thres = thres
        self.m = m
        self.k = k

    def fit(self, train: TrainView) -> ClassRankTransfer:
        _validate(self)
        self._checked = {}
        self.source_infos_ = {d.id: d for d in train.sources}
        self._fit_bridge(train)
        self.source_stats_ = train.feature(CLASS_KIND)
        return self

    def score(self, target: TargetView) -> pd.Series:
        transport = self.transport(target)
        if transport is None:
            log.info("%s: no source class within thres=%s of %s's classes: no information",
                     self.name, self.thres, target.dataset.id)
            return pd.Series(0.0, index=list(target.candidates), dtype=float)
        return self.capability_scores(target, transport)


__all__ = [
    "CITATION",
    "ClassRankTransfer",
    "RankTransfer",
    "SWAB",
    "SWABText",
    "borda",
    "column_ranks",
    "gap_text_features",
    "normalized_ranks",
    "split_features",
]
