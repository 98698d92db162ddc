r"""MLL -- Model Label Learning (Tan, Zhou, Li, Guo. *Vision-Language Model Selection and Reuse
for Downstream Adaptation*, ICML 2025; code ``LAMDASZ-ML/MLL``), as a task-level ranking.

Offline, once per model (``python -m benchmark extract model-labels``): the model label of
``m`` is, for every image ``x`` of every node of the concept graph (:mod:`methods.mll.graph`:
WordNet; for ``minizoo`` its world's vocabulary, :mod:`benchmark.minizoo.concepts`),
the cosine of ``m``'s image embedding ``f_m(x)`` with ``m``'s text embedding ``t_m(u)`` of
every node caption ``u`` (Eq. 2-4 of docs/methods/mll.md); the pack stores ``f_m`` and ``t_m``
(:mod:`benchmark.features.model_labels`).

Selection for a target with classes ``Y`` (numpy; the numbers are those of docs/methods/mll.md):

1. Class embedding: ``e_y = normalise(mean_{c in captions(y)} phi(c))`` and node embedding
   ``g_v = phi(caption_v)``, ``phi`` the unit-norm text embedder (``embedder``, MiniLM by
   default; MLL: OpenAI text-embedding-3-large), through :func:`benchmark.features.embedders.embed_texts`
   (cached on disk, labels ``mll-nodes`` and ``mll-captions:<target>``).
2. ``a_{y,v} = 100 <e_y, g_v>`` over the nodes that hold images.
3. ``N_k(y)`` = the ``k`` nodes of largest ``a_{y,v}`` (MLL's ``topk(5)``; ties -> lower node
   index); ``k`` larger than the number of nodes takes them all.
4. Transfer matrix ``Z`` (nodes x classes): ``z_{v,y} = a_{y,v}`` if ``v in N_k(y)``, else 0.
   Selected nodes ``V_s = U_y N_k(y)``.
5. Node precision of ``m`` restricted to the selected nodes (Eq. 5):
   ``p_{m,v} = (1/|X_v|) sum_{x in X_v} 1[argmax_{u in V_s} <f_m(x), t_m(u)> = v]``,
   ``v in V_s``; ties of the argmax go to the lowest node index (torch's and numpy's argmax).
6. Class score ``p_{m,y} = sum_{v in V_s} p_{m,v} z_{v,y}``.
7. Reuse metric ``r_{m,y} = alpha p_{m,y} + (1 - alpha) mean_{y'} p_{m,y'}``, ``alpha = 0.7``.
8. Task score ``s_m = mean_y r_{m,y}`` -- which equals ``mean_y p_{m,y}`` for every ``alpha``
   (and also for MLL's code, whose second term averages over the *other* classes): ``alpha``
   changes which models the paper's reuse step ensembles per class, not this ranking.

Differences from MLL's code, and why
------------------------------------
- MLL's ``selection.py`` cannot run as published (``get_embedding`` receives a list, the node
  mask indexes target classes with node ids); the steps above follow the paper and
  docs/methods/mll.md. Its reuse metric is computed from an F1 table; Eq. 5's precision is
  what the spec and the paper's selection use.
- A class's 10 captions are embedded one by one and averaged (MLL's helper would embed one
  string); MiniLM reads 256 tokens, and a class's captions joined are up to ~600.
- Node captions are "{name} which is {definition}" for the models and the text embedder alike
  (MLL's ``label.py`` gives the models the definition alone).
- Targets without published MLL captions use prompt templates (``caption_source``).

Models with a pack are candidates; every candidate's pack must come from the same graph and
image plan (``plan_digest``), else the score is an error naming the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from benchmark.features.model_labels import KIND
from benchmark.features.store import FeaturePackError, Record
from methods.base import Selector, TargetView, TrainView

log = logging.getLogger(__name__)

CHUNK_ROWS = 8192  # image rows per product: bounds memory at CHUNK_ROWS x |V_s| floats


# -- the equations (pure numpy) --------------------------------------------------------------
def class_embeddings(caption_embeddings: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """Step 1: ``e_y = normalise(mean of the unit caption embeddings of y)``; ``[C, d]``."""
    emb = np.asarray(caption_embeddings, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    if np.any(counts < 1) or counts.sum() != len(emb):
        raise ValueError(f"caption counts {counts.tolist()[:5]}... do not cover {len(emb)} rows")
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mean = np.add.reduceat(emb, offsets, axis=0) / counts[:, None]
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def transfer_matrix(class_emb: np.ndarray, node_emb: np.ndarray, k: int,
                    eligible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2-4: ``(Z [V, C], selected node indices, ascending)``.

    ``z_{v,y} = 100 <e_y, g_v>`` for the ``k`` most similar eligible nodes of class ``y``
    (ties -> lower node index), 0 elsewhere; ineligible nodes (no images) are never chosen.
    """
    a = 100.0 * np.asarray(class_emb, dtype=np.float64) @ np.asarray(node_emb, np.float64).T
    n_nodes = a.shape[1]
    ok = np.ones(n_nodes, bool) if eligible is None else np.asarray(eligible, bool)
    candidates = np.flatnonzero(ok)
    if len(candidates) == 0:
        raise ValueError("no node holds an image: nothing to match the target's classes with")
    kk = min(int(k), len(candidates))
    z = np.zeros((n_nodes, a.shape[0]))
    chosen = set()
    for y in range(a.shape[0]):
        order = candidates[np.argsort(-a[y, candidates], kind="stable")[:kk]]
        z[order, y] = a[y, order]
        chosen.update(order.tolist())
    return z, np.asarray(sorted(chosen), dtype=np.int64)


def node_precision(image: np.ndarray, text: np.ndarray, node_offsets: np.ndarray,
                   node_images: np.ndarray, selected: Sequence[int]) -> np.ndarray:
    """Step 5 (Eq. 5): ``p_{m,v}`` for ``v in selected`` (ascending node indices).

    Only the images of the selected nodes against the captions of the selected nodes are
    computed (float32 products of the stored embeddings), in chunks of :data:`CHUNK_ROWS`.
    """
    sel = np.asarray(selected, dtype=np.int64)
    if len(sel) == 0:
        return np.zeros(0)
    if np.any(np.diff(sel) <= 0):
        raise ValueError("selected nodes must be ascending and distinct")
    counts = node_offsets[sel + 1] - node_offsets[sel]
    if np.any(counts < 1):
        raise ValueError(f"selected nodes without images: {sel[counts < 1][:5].tolist()}")
    rows = np.concatenate([node_images[node_offsets[v]:node_offsets[v + 1]] for v in sel])
    owner = np.repeat(np.arange(len(sel)), counts)
    t = np.asarray(text[sel], dtype=np.float32)
    hits = np.empty(len(rows), dtype=bool)
    for start in range(0, len(rows), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        x = np.asarray(image[rows[start:stop]], dtype=np.float32)
        hits[start:stop] = np.argmax(x @ t.T, axis=1) == owner[start:stop]
    return np.bincount(owner, weights=hits, minlength=len(sel)) / counts


def class_scores(p_nodes: np.ndarray, z_selected: np.ndarray) -> np.ndarray:
    """Step 6: ``p_{m,y} = sum_v p_{m,v} z_{v,y}`` (``z_selected``: rows of the selected nodes)."""
    return np.asarray(p_nodes, dtype=np.float64) @ np.asarray(z_selected, dtype=np.float64)


def reuse_metric(p_classes: np.ndarray, alpha: float) -> np.ndarray:
    """Step 7: ``r_{m,y} = alpha p_{m,y} + (1 - alpha) mean_{y'} p_{m,y'}``."""
    p = np.asarray(p_classes, dtype=np.float64)
    return alpha * p + (1.0 - alpha) * p.mean()


def task_score(r_classes: np.ndarray) -> float:
    """Step 8: ``s_m = mean_y r_{m,y}``."""
    return float(np.mean(r_classes))


# -- the selector ----------------------------------------------------------------------------
def _validate(k: Any, alpha: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"mll: k must be a positive integer, got {k!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"mll: alpha must be in [0, 1], got {alpha!r}")


def _shared_structure(records: Mapping[str, Record]) -> Record:
    """The first record, after checking that every candidate's labels share graph and plan."""
    items = list(records.items())
    first_model, first = items[0]
    for model, rec in items[1:]:
        if rec.meta.get("plan_digest") != first.meta.get("plan_digest") or not np.array_equal(
                rec["node_ids"], first["node_ids"]):
            raise FeaturePackError(
                f"{KIND} packs of {first_model} and {model} were made on different graphs or "
                f"image plans; re-extract them with the same sample datasets, "
                f"--images-per-node and --seed"
            )
    return first


class MLL(Selector):
    """MLL's selection as a ranking: mean over the target's classes of the reuse metric."""

    name = "mll"
    target_needs = "class names (LLM captions, text embedder); no images, no labels"
    requires = (KIND,)
    citation = (
        "Tan, Zhou, Li, Guo. Vision-Language Model Selection and Reuse for Downstream "
        "Adaptation. ICML 2025"
    )
    stochastic = False

    def __init__(self, k: int = 5, alpha: float = 0.7, embedder: Any = "minilm") -> None:
        self.k = k
        self.alpha = alpha
        self.embedder = embedder

    def fit(self, train: TrainView) -> MLL:
        _validate(self.k, self.alpha)  # no source data is used: the labels are the model side
        return self

    def transfer(self, record: Record, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        """``(Z, selected)`` of a target from one record (every candidate's agree)."""
        from benchmark.features.embedders import embed_texts

        node_emb = embed_texts(list(record.meta["node_captions"]), self.embedder,
                               label="mll-nodes")
        captions = record.meta["class_captions"]
        flat = [c for caps in captions for c in caps]
        cap_emb = embed_texts(flat, self.embedder, label=f"mll-captions:{dataset}")
        class_emb = class_embeddings(cap_emb, [len(c) for c in captions])
        eligible = np.diff(record["node_offsets"]) > 0
        return transfer_matrix(class_emb, node_emb, self.k, eligible)

    def score(self, target: TargetView) -> pd.Series:
        _validate(self.k, self.alpha)
        view = target.feature(KIND)
        cands = list(target.candidates)
        records = {m: view.get(m, target.dataset.id) for m in cands}
        if not records:
            return pd.Series(dtype=float)
        first = _shared_structure(records)
        z, selected = self.transfer(first, target.dataset.id)
        z_sel = z[selected]
        scores = {}
        for m, rec in records.items():
            p_v = node_precision(rec["image"], rec["text"], rec["node_offsets"],
                                 rec["node_images"], selected)
            scores[m] = task_score(reuse_metric(class_scores(p_v, z_sel), self.alpha))
        log.debug("mll on %s: %d classes, %d selected nodes", target.dataset.id, z.shape[1],
                  len(selected))
        return pd.Series(scores, dtype=float).reindex(cands)


__all__ = ["MLL", "class_embeddings", "class_scores", "node_precision", "reuse_metric",
           "task_score", "transfer_matrix"]
