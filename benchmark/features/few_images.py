r"""The few-image kinds: a few test images of a dataset seen through one model (issue 14).

Written by ``python -m benchmark extract few-images`` (:mod:`benchmark.extract.few_images_cmd`)
into one feature pack per model (pack kind ``few-images``), one record per (model, dataset): a
seeded sample of ``K`` test images, the **same images for every model** (same ``--seed``, same
images). Arrays of a record (``n`` images, ``D`` the model's embedding width, ``C`` classes in
the catalog's order)::

    embeddings  f32  [n, D]  unit image embeddings (the model's image tower, its eval transform)
    logits      f32  [n, C]  zero-shot logits ``100 * <x, w_c>`` with the CLIP_benchmark
                             classifier ``w_c`` (templates x class name, unit embeddings
                             averaged, renormalised; :mod:`benchmark.extract.zeroshot`). The
                             scale is CLIP_benchmark's fixed 100 for every model (OpenAI CLIP's
                             learned scale), not each model's own temperature, so that
                             confidences compare across models; the model's own scale, when it
                             has one, is in the metadata (``logit_scale``)
    labels      i64  [n]     the images' catalog class indices (**labels**)

Two kinds read that one pack, so that a method states which setting it is in:

- ``few-images`` (unlabelled setting): the records **without** ``labels``, for sources and
  target alike (:func:`load_unlabelled`); the zero-shot confidence selectors (``zs-maxprob``,
  ``zs-entropy``) never hold a label. A label-free kind still drops the image ids (their
  folders are class names) from the target's part, as every kind does;
- ``few-labelled-images`` (labelled setting; :attr:`FeatureKind.target_labels`): the records
  **with** ``labels``, the target's included (:func:`load_labelled`). A few labelled images of
  the target is a different and stronger setting than the language-only methods' (class names
  only) -- the labels of the sampled images are an input of the setting, declared as such by
  the kind and marked on every leaderboard page (``‡``); what no view ever carries is the
  target's *accuracy table* (the ground truth the selectors are scored against). The
  transferability scores (``leep``, ``nce``, ``h-score``, ``logme``) are in this setting.

Importing this module never imports torch.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from benchmark.features.store import FeaturePackError, Record

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.features.kinds import LoadContext, Records

PACK = "few-images"  # the pack both kinds read
UNLABELLED = "few-images"
LABELLED = "few-labelled-images"
ARRAYS: tuple[str, ...] = ("embeddings", "logits", "labels")
#: the arrays of the unlabelled kind
UNLABELLED_ARRAYS: tuple[str, ...] = ("embeddings", "logits")
#: CLIP_benchmark's logit scale (module docstring)
LOGIT_SCALE = 100.0


def _as(record: Record, kind: str, arrays=None) -> Record:
    arrays = dict(record.arrays) if arrays is None else arrays
    return Record(kind, record.model, record.dataset, MappingProxyType(arrays), record.meta)


def load_unlabelled(ctx: LoadContext, models: list[str], datasets: list[str]) -> Records:
    """Every present record, without ``labels`` (strict kind: absent ones block)."""
    from benchmark.features.kinds import load_packs

    return {k: _as(r, UNLABELLED, {a: v for a, v in r.arrays.items() if a != "labels"})
            for k, r in load_packs(PACK, ctx, models, datasets).items()}


def load_labelled(ctx: LoadContext, models: list[str], datasets: list[str]) -> Records:
    """Every present record, with ``labels`` (the labelled setting; module docstring)."""
    from benchmark.features.kinds import load_packs

    return {k: _as(r, LABELLED) for k, r in load_packs(PACK, ctx, models, datasets).items()}


def check_record(record: Record, n_classes: int, labelled: bool = False) -> None:
    """Raise :class:`FeaturePackError` unless ``record`` has consistent arrays for
    ``n_classes`` classes (``labelled``: ``labels`` too, in ``0..n_classes-1``)."""
    where = f"{record.kind} record of {record.model} on {record.dataset}"
    need = ARRAYS if labelled else UNLABELLED_ARRAYS
    missing = [a for a in need if a not in record.arrays]
    if missing:
        raise FeaturePackError(f"{where} lacks {missing}; re-extract it")
    emb, logits = record["embeddings"], record["logits"]
    if emb.ndim != 2 or len(emb) < 1 or logits.shape != (len(emb), n_classes):
        raise FeaturePackError(
            f"{where}: embeddings {emb.shape} and logits {logits.shape} do not fit "
            f"{n_classes} classes; re-extract it")
    if not (np.all(np.isfinite(emb)) and np.all(np.isfinite(logits))):
        raise FeaturePackError(f"{where}: non-finite embeddings or logits; re-extract it")
    if labelled:
        y = record["labels"]
        if y.shape != (len(emb),) or y.dtype.kind not in "iu" or y.min() < 0 \
                or y.max() >= n_classes:
            raise FeaturePackError(f"{where}: labels {y.shape} outside 0..{n_classes - 1}")


def make_arrays(embeddings, logits, labels) -> dict[str, np.ndarray]:
    """The arrays of a record with the dtypes of the module docstring."""
    return {"embeddings": np.asarray(embeddings, dtype=np.float32),
            "logits": np.asarray(logits, dtype=np.float32),
            "labels": np.asarray(labels, dtype=np.int64)}


def mock_record(model: str, dataset: str, n_classes: int, rng: np.random.Generator,
                dim: int = 8, n: int = 12, labelled: bool = True) -> Record:
    """A random record: unit embeddings near their class's unit weight, ``100 *`` cosines."""
    weights = rng.normal(size=(n_classes, dim))
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    labels = rng.integers(0, n_classes, size=n)
    emb = weights[labels] + rng.normal(scale=rng.uniform(0.5, 2.0), size=(n, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    arrays = make_arrays(emb, LOGIT_SCALE * emb @ weights.T, labels)
    if not labelled:
        del arrays["labels"]
    ids = [f"class{int(c)}/{i:05d}.png" for i, c in enumerate(labels)]
    return Record.make(LABELLED if labelled else UNLABELLED, model, dataset, arrays,
                       {"image_ids": ids, "n_images": n, "source": "mock"})


def _mock(models, datasets, rng, infos, labelled: bool) -> Records:
    if infos is None:
        from benchmark.core.check import mock_universe

        _, infos = mock_universe()
    out: Records = {}
    for j, model in enumerate(models):
        for d in datasets:
            c = len(infos[d].classnames) if d in infos else 4
            out[(model, d)] = mock_record(model, d, c, rng, dim=6 + 2 * (j % 3),
                                          labelled=labelled)
    return out


def mock_unlabelled(models: list[str], datasets: list[str], rng: np.random.Generator,
                    infos=None) -> Records:
    """Random ``few-images`` records (no labels) for the conformance check."""
    return _mock(models, datasets, rng, infos, labelled=False)


def mock_labelled(models: list[str], datasets: list[str], rng: np.random.Generator,
                  infos=None) -> Records:
    """Random ``few-labelled-images`` records for the conformance check."""
    return _mock(models, datasets, rng, infos, labelled=True)


__all__ = ["ARRAYS", "LABELLED", "LOGIT_SCALE", "PACK", "UNLABELLED", "UNLABELLED_ARRAYS",
           "check_record", "load_labelled", "load_unlabelled", "make_arrays", "mock_labelled",
           "mock_record", "mock_unlabelled"]
