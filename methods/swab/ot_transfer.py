r"""Optimal transport between the classes of datasets (SWAB's "bridge"), as numpy functions.

SWAB (Yi et al., NeurIPS 2024; ``YCaigogogo/SWAB``,
``pred_ptm_stats_in_target_task_with_ot.py``, read not copied) relates a target dataset ``t``
to source datasets ``S`` through the text of their class names only:

1. **Class embeddings** (:func:`class_embeddings`): for class ``c`` of dataset ``d``,
   ``e_{d,c} = (1/T) Σ_τ f(template_τ with {c} -> c)``, the mean over ``d``'s prompt templates
   of a sentence embedder's unit vectors (SWAB: all-mpnet-base-v2; default here ``minilm``).
   Computed through :mod:`benchmark.features.embedders`'s disk cache, once per (embedder, dataset).
2. **Filtering** (:func:`kept_classes`): class ``(s, c)`` of a source is kept iff
   ``max_j cos(e_{s,c}, e_{t,j}) > thres`` (strict, as SWAB). ``K`` = the kept classes, in
   source order then class order.
3. **Plan** (:func:`transport_plan`): ``x̂ = x / ||x||``; ``S = K̂ T̂ᵀ``; cost
   ``C = exp(k (1 - S))``, or ``C = 1 - S`` when ``k = -1``; marginals ``a = 1/|K|``,
   ``b = 1/n_t``; ``P = ot.emd(a, b, C)`` when ``m = 1``, else
   ``P = ot.partial.partial_wasserstein(a, b, C, m=m)`` (total mass ``m``).
4. **Masses** (:class:`ClassTransport`): row mass ``w_k = Σ_j P_kj``; mass of source dataset
   ``s``: ``W_s = Σ_{k in s} w_k``.

Consumers of a plan (:meth:`ClassTransport.transfer_scores`,
:meth:`ClassTransport.transfer_vectors`):

- scores ``R`` (models x rows of ``K``, NaN = unknown): SWAB sums ``(R P)_{mj}`` over the target
  classes, i.e. ``Σ_k w_k R_{mk}``; here ``Σ_k w_k R_{mk} / Σ_{k: R_{mk} known} w_k``, the same
  order when nothing is missing (the denominator is then the constant ``m``), and a weighted
  average over the known rows otherwise (NaN when no known row has mass);
- vectors ``G`` (rows x D): SWAB predicts ``Ĝ = n_t Pᵀ G`` (its gap vectors); rows with a NaN
  vector are dropped and their mass is given back in proportion to the rest, column by column,
  which equals ``n_t Pᵀ G`` when nothing is missing.

POT is imported when a plan is computed (not at module import): on import it probes for torch,
which costs seconds, so its torch backend is disabled for that import unless torch is loaded.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.data.catalog import DatasetInfo
    from benchmark.features.embedders import Embedder, TextEmbeddingCache

log = logging.getLogger(__name__)

#: SWAB's defaults (``--thres``, ``--m``, ``--transform_k`` of its scripts).
DEFAULT_THRES = 0.5
DEFAULT_MASS = 0.9
DEFAULT_K = 1.0
CLASS_LABEL = "swab-class:{dataset}"  # label of the cache entries (for people reading it)


def _ot():
    """POT, imported without its torch backend when torch is not already loaded."""
    if "ot" not in sys.modules and "torch" not in sys.modules:
        key = "POT_BACKEND_DISABLE_PYTORCH"
        old = os.environ.get(key)
        os.environ[key] = "1"
        try:
            import ot
            import ot.partial  # noqa: F401
        finally:
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
    import ot
    import ot.partial  # noqa: F401

    return ot


# -- class embeddings ------------------------------------------------------------------------
_MEMO: dict[tuple, np.ndarray] = {}


def _identity(embedder: str | Embedder) -> str:
    from benchmark.features.embedders import get_embedder

    return (get_embedder(embedder) if isinstance(embedder, str) else embedder).identity


def class_embeddings(
    info: DatasetInfo,
    embedder: str | Embedder = "minilm",
    cache: TextEmbeddingCache | None = None,
) -> np.ndarray:
    """``[n_classes, dim]`` float64: per class, the mean of its prompts' unit embeddings.

    The prompts (every template with ``{c}`` replaced, class by class) are embedded through
    :func:`benchmark.features.embedders.embed_texts`: computed once, with a progress bar, then read from the
    disk cache (label ``swab-class:<dataset>``); also memoised in the process.
    """
    from benchmark.features.embedders import embed_texts

    if not info.classnames or not info.templates:
        raise ValueError(f"{info.id}: no class names or no templates to embed")
    key = (_identity(embedder), info.id, tuple(info.classnames), tuple(info.templates))
    if key not in _MEMO:
        prompts = [p for c in info.classnames for p in info.prompts(c)]
        vecs = embed_texts(prompts, embedder, cache=cache, label=CLASS_LABEL.format(dataset=info.id))
        n, t = len(info.classnames), len(info.templates)
        emb = np.asarray(vecs, dtype=np.float64).reshape(n, t, -1).mean(axis=1)
        emb.setflags(write=False)  # shared: the same object for every caller (see _similarity)
        _MEMO[key] = emb
    return _MEMO[key]


# -- pure functions --------------------------------------------------------------------------
def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (float64; a zero row stays zero)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Cosine similarities ``[n_source, n_target]``."""
    return normalize_rows(source) @ normalize_rows(target).T


def kept_classes(source: np.ndarray, target: np.ndarray, thres: float) -> np.ndarray:
    """Boolean mask of the source classes whose best cosine to a target class exceeds ``thres``."""
    if len(source) == 0:
        return np.zeros(0, dtype=bool)
    return similarity(source, target).max(axis=1) > thres


def cost_matrix(source: np.ndarray, target: np.ndarray, k: float = DEFAULT_K) -> np.ndarray:
    """``exp(k (1 - S))``, or ``1 - S`` when ``k = -1`` (S = cosine similarities)."""
    s = similarity(source, target)
    return 1.0 - s if k == -1 else np.exp(k * (1.0 - s))


def transport_plan(
    source: np.ndarray, target: np.ndarray, m: float = DEFAULT_MASS, k: float = DEFAULT_K
) -> np.ndarray:
    """OT plan ``[n_source, n_target]`` between uniform marginals; total mass ``m``."""
    if len(source) == 0 or len(target) == 0:
        raise ValueError("transport_plan needs at least one source and one target class")
    return _plan(similarity(source, target), m=m, k=k)


def _plan(sim: np.ndarray, m: float = DEFAULT_MASS, k: float = DEFAULT_K) -> np.ndarray:
    """The plan of :func:`transport_plan` from the cosine similarities ``[n_s, n_t]``."""
    n_s, n_t = sim.shape
    if n_s == 0 or n_t == 0:
        raise ValueError("transport_plan needs at least one source and one target class")
    if not 0 < m <= 1:
        raise ValueError(f"transported mass m must be in (0, 1], got {m}")
    ot = _ot()
    a, b = np.full(n_s, 1.0 / n_s), np.full(n_t, 1.0 / n_t)
    cost = np.ascontiguousarray(1.0 - sim if k == -1 else np.exp(k * (1.0 - sim)))
    plan = ot.emd(a, b, cost) if m == 1 else ot.partial.partial_wasserstein(a, b, cost, m=m)
    return np.asarray(plan, dtype=np.float64)


@dataclass(frozen=True)
class ClassTransport:
    """A plan from the kept source classes (rows) to the target's classes (columns)."""

    plan: np.ndarray  # [n_rows, n_target]
    datasets: tuple[str, ...]  # source dataset of each row
    classes: tuple[int, ...]  # index of each row's class within its dataset

    @property
    def n_target(self) -> int:
        return self.plan.shape[1]

    @property
    def row_mass(self) -> np.ndarray:
        return self.plan.sum(axis=1)

    def mass_per_source(self) -> dict[str, float]:
        """``W_s``: mass transported from each source dataset's kept classes (sources in order)."""
        out: dict[str, float] = {}
        for d, w in zip(self.datasets, self.row_mass, strict=True):
            out[d] = out.get(d, 0.0) + float(w)
        return out

    def rows_of(self, dataset: str) -> list[int]:
        return [i for i, d in enumerate(self.datasets) if d == dataset]

    def transfer_scores(self, values: np.ndarray) -> np.ndarray:
        """``Σ_k w_k R_mk / Σ_{k known} w_k`` per row of ``values`` ``[models, n_rows]``."""
        r = np.atleast_2d(np.asarray(values, dtype=np.float64))
        if r.shape[1] != len(self.datasets):
            raise ValueError(f"values have {r.shape[1]} columns, the plan {len(self.datasets)} rows")
        w = self.row_mass
        known = np.isfinite(r)
        num = np.where(known, r, 0.0) @ w
        den = known.astype(np.float64) @ w
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def transfer_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """``n_t Pᵀ G`` ``[n_target, D]``; NaN rows of ``G`` dropped, their mass given back."""
        g = np.asarray(vectors, dtype=np.float64)
        if g.shape[0] != len(self.datasets):
            raise ValueError(f"vectors have {g.shape[0]} rows, the plan {len(self.datasets)}")
        ok = np.isfinite(g).all(axis=1)
        p = self.plan
        col = p.sum(axis=0)  # mass received by each target class
        col_ok = p[ok].sum(axis=0)
        scale = np.divide(col, col_ok, out=np.zeros_like(col), where=col_ok > 0)
        return self.n_target * (p[ok].T @ g[ok]) * scale[:, None]


_SIM: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """:func:`similarity`, memoised for the read-only arrays of :func:`class_embeddings`.

    A pure function of two immutable arrays: the memo (which keeps both alive, so their ids
    stay theirs) changes no result, only how often the same product is computed.
    """
    if source.flags.writeable or target.flags.writeable:
        return similarity(source, target)
    key = (id(source), id(target))
    hit = _SIM.get(key)
    if hit is None or hit[0] is not source or hit[1] is not target:
        hit = (source, target, similarity(source, target))
        _SIM[key] = hit
    return hit[2]


def bridge(
    sources: Mapping[str, np.ndarray],
    target: np.ndarray,
    thres: float = DEFAULT_THRES,
    m: float = DEFAULT_MASS,
    k: float = DEFAULT_K,
) -> ClassTransport | None:
    """Filter every source's classes against ``target``, then transport; None if none is kept.

    ``sources``: dataset id -> class embeddings ``[n_classes, dim]`` (in the order given).
    The similarities used to filter are the ones the cost is made of (computed once).
    """
    target = np.asarray(target, dtype=np.float64)
    shared = not target.flags.writeable and all(
        not np.asarray(e).flags.writeable for e in sources.values())
    key = (tuple((d, id(e)) for d, e in sources.items()), id(target), thres, m, k)
    if shared and key in _BRIDGES and _BRIDGES[key][0] == [*sources.values(), target]:
        return _BRIDGES[key][1]
    sims, datasets, classes = [], [], []
    for d, emb in sources.items():
        emb = np.asarray(emb, dtype=np.float64)
        if len(emb) == 0:
            continue
        s = _similarity(emb, target)
        keep = np.flatnonzero(s.max(axis=1) > thres)  # = kept_classes(emb, target, thres)
        sims.append(s[keep])
        datasets += [d] * len(keep)
        classes += keep.tolist()
    out = None
    if datasets:
        plan = _plan(np.concatenate(sims), m=m, k=k)
        plan.setflags(write=False)
        out = ClassTransport(plan, tuple(datasets), tuple(int(c) for c in classes))
    if shared:  # the same inputs (immutable, kept alive here) give the same plan
        _BRIDGES[key] = (_Same([*sources.values(), target]), out)
    return out


class _Same(list):
    """A list compared by identity of its items (the memo's guard against reused ids)."""

    def __eq__(self, other) -> bool:
        return len(self) == len(other) and all(a is b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


_BRIDGES: dict[tuple, tuple[_Same, ClassTransport | None]] = {}


__all__ = [
    "ClassTransport",
    "bridge",
    "class_embeddings",
    "cost_matrix",
    "kept_classes",
    "normalize_rows",
    "similarity",
    "transport_plan",
]
