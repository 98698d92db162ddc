r"""The ``class-stats`` feature kind: per-class statistics of a model on a dataset (SWAB).

Written by ``python -m benchmark extract class-stats`` (:mod:`benchmark.extract.class_stats_cmd`)
into feature packs, one record per (model, dataset); read here (strict kind: a run that needs
them fails fast listing the extract commands). Everything SWAB's full method needs from images
(its ``calc_ptm_stats_in_hist_task.py``: class-level accuracy and modality-gap vectors), plus
the model's own text embeddings that its gap-corrected ModelGPT features are computed from.

Arrays of a record (``C`` classes in the catalog's order, ``D`` the model's embedding width,
``N`` captions)::

    classnames       <U   [C]     the catalog's class names the record was made for
    class_acc        f32  [C]     zero-shot top-1 accuracy per class on the sampled test images
                                  (NaN for a class without a sampled image)
    class_count      i32  [C]     sampled images per class
    image_mean       f32  [C, D]  mean of the unit image embeddings of each class (NaN row: none)
    image_center     f32  [D]     mean of all sampled unit image embeddings
    image_std        f32  [D]     their per-coordinate std (ddof = 1, as torch.std)
    text_weights     f32  [C, D]  zero-shot weights: unit prompt embeddings averaged over the
                                  templates, renormalised (the model's own text tower)
    captions         f16  [N, D]  unit embeddings of SWAB's LLM captions, class by class
    caption_offsets  i64  [C+1]   captions of class i are rows offsets[i]:offsets[i+1]
    text_center      f32  [D]     mean of the captions' unit embeddings (computed in f32)
    text_std         f32  [D]     their per-coordinate std (ddof = 1)

Modality-gap vectors (SWAB's ``cal_gap_dict``; :func:`gap_vectors`): images and zero-shot
weights are z-scored with their own dataset statistics, and the gap of class ``i`` is the mean
over its images of ``z(x) - z(w_i)``, which by linearity is

    g_i = (image_mean_i - image_center) / image_std - (w_i - text_center) / text_std.

What a target sees (:func:`target_record`, the harness's target views): the text-derived
arrays :data:`TARGET_ARRAYS` only -- class names, the model's zero-shot weights and caption
embeddings with their statistics, all that SWAB's gap correction of the target needs. The
per-class accuracies and image statistics (:data:`SOURCE_ONLY_ARRAYS`, measured on the
dataset's labelled images) and the image ids are the sources' only: a target's would hand its
ground truth to the selector.

Captions are stored in float16 (half the size of float32; the features computed from them
move by ~1e-3 relative): about 70 MB per 512-d model for LOVM's 22 datasets.

Importing this module never imports torch.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from benchmark.features.store import FeaturePackError, Record

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.features.kinds import LoadContext, Records

KIND = "class-stats"
ARRAYS: tuple[str, ...] = (
    "classnames", "class_acc", "class_count", "image_mean", "image_center", "image_std",
    "text_weights", "captions", "caption_offsets", "text_center", "text_std",
)  # fmt: skip
#: what a target view holds: text-derived (the model's text tower, class names, captions)
TARGET_ARRAYS: tuple[str, ...] = (
    "classnames", "text_weights", "captions", "caption_offsets", "text_center", "text_std",
)  # fmt: skip
#: label- or image-derived: sources only
SOURCE_ONLY_ARRAYS: tuple[str, ...] = tuple(a for a in ARRAYS if a not in TARGET_ARRAYS)


def load(ctx: LoadContext, models: list[str], datasets: list[str]) -> Records:
    """Every present pack record of ``models x datasets`` (strict kind: absent ones block)."""
    from benchmark.features.kinds import load_packs

    return load_packs(KIND, ctx, models, datasets)


def target_record(record: Record) -> Record:
    """The target's part of a record: :data:`TARGET_ARRAYS` and no image ids (module docstring)."""
    from benchmark.data.perturb import LABEL_META

    arrays = {k: v for k, v in record.arrays.items() if k in TARGET_ARRAYS}
    meta = {k: v for k, v in record.meta.items() if k not in LABEL_META}
    return Record(record.kind, record.model, record.dataset, MappingProxyType(arrays),
                  MappingProxyType(meta))


def check_record(record: Record, classnames: tuple[str, ...] | list[str],
                 target: bool = False) -> None:
    """Raise :class:`FeaturePackError` unless ``record`` is complete and made for ``classnames``
    (``target``: a target's part, :data:`TARGET_ARRAYS` only)."""
    missing = [a for a in (TARGET_ARRAYS if target else ARRAYS) if a not in record.arrays]
    where = f"{KIND} record of {record.model} on {record.dataset}"
    if missing:
        raise FeaturePackError(f"{where} lacks {missing}; re-extract it")
    names = [str(c) for c in record["classnames"]]
    if names != [str(c) for c in classnames]:
        raise FeaturePackError(
            f"{where} was extracted for other class names ({len(names)} classes, the catalog "
            f"has {len(classnames)}); re-extract it"
        )
    c = len(names)
    d = record["text_weights"].shape[-1]
    shapes = {
        "class_acc": (c,), "class_count": (c,), "image_mean": (c, d), "image_center": (d,),
        "image_std": (d,), "text_weights": (c, d), "caption_offsets": (c + 1,),
        "text_center": (d,), "text_std": (d,),
    }  # fmt: skip
    if target:
        shapes = {k: v for k, v in shapes.items() if k in TARGET_ARRAYS}
    bad = {k: record[k].shape for k, s in shapes.items() if record[k].shape != s}
    offsets = record["caption_offsets"]
    if bad or record["captions"].ndim != 2 or record["captions"].shape[1] != d:
        raise FeaturePackError(f"{where}: inconsistent shapes {bad or record['captions'].shape}")
    if offsets[0] != 0 or offsets[-1] != len(record["captions"]) or np.any(np.diff(offsets) < 1):
        raise FeaturePackError(f"{where}: caption offsets do not give every class a caption")


def gap_vectors(record: Record) -> np.ndarray:
    """``[C, D]`` modality-gap vectors (module docstring); NaN rows for classes without images."""
    img_std = np.asarray(record["image_std"], dtype=np.float64)
    txt_std = np.asarray(record["text_std"], dtype=np.float64)
    z_img = (record["image_mean"] - record["image_center"]) / np.where(img_std > 0, img_std, 1.0)
    z_txt = (record["text_weights"] - record["text_center"]) / np.where(txt_std > 0, txt_std, 1.0)
    return np.asarray(z_img, dtype=np.float64) - np.asarray(z_txt, dtype=np.float64)


def make_arrays(
    classnames, class_acc, class_count, image_mean, image_center, image_std, text_weights,
    captions, caption_offsets, text_center, text_std,
) -> dict[str, np.ndarray]:
    """The arrays of a record with the dtypes of the module docstring."""
    return {
        "classnames": np.asarray([str(c) for c in classnames], dtype=np.str_),
        "class_acc": np.asarray(class_acc, dtype=np.float32),
        "class_count": np.asarray(class_count, dtype=np.int32),
        "image_mean": np.asarray(image_mean, dtype=np.float32),
        "image_center": np.asarray(image_center, dtype=np.float32),
        "image_std": np.asarray(image_std, dtype=np.float32),
        "text_weights": np.asarray(text_weights, dtype=np.float32),
        "captions": np.asarray(captions, dtype=np.float16),
        "caption_offsets": np.asarray(caption_offsets, dtype=np.int64),
        "text_center": np.asarray(text_center, dtype=np.float32),
        "text_std": np.asarray(text_std, dtype=np.float32),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def mock_record(model: str, dataset: str, classnames, rng: np.random.Generator,
                dim: int = 8) -> Record:
    """A random record of the right shapes (unit embeddings, accuracies in [0, 1])."""
    c = len(classnames)
    counts = rng.integers(2, 4, size=c)
    images = _unit(rng.normal(size=(c, 5, dim)))
    weights = _unit(rng.normal(size=(c, dim)))
    captions = _unit(weights[np.repeat(np.arange(c), counts)] + rng.normal(size=(counts.sum(), dim)))
    flat = images.reshape(-1, dim)
    arrays = make_arrays(
        classnames, rng.uniform(0, 1, size=c), np.full(c, 5), images.mean(axis=1),
        flat.mean(axis=0), flat.std(axis=0, ddof=1), weights, captions,
        np.concatenate([[0], np.cumsum(counts)]), captions.mean(axis=0),
        captions.std(axis=0, ddof=1),
    )
    return Record.make(KIND, model, dataset, arrays, {"source": "mock"})


def mock(models: list[str], datasets: list[str], rng: np.random.Generator,
         infos=None) -> Records:
    """Random records for ``models x datasets``, for the conformance check.

    Class names come from ``infos`` (dataset -> DatasetInfo), by default the check's mock
    universe (:func:`benchmark.core.check.mock_universe`), so records match the metadata
    selectors see; other datasets get 4 generic classes. Widths differ between models, as in
    real zoos.
    """
    if infos is None:
        from benchmark.core.check import mock_universe

        _, infos = mock_universe()
    out: Records = {}
    for j, model in enumerate(models):
        dim = 6 + 2 * (j % 3)
        for d in datasets:
            names = infos[d].classnames if d in infos else tuple(f"class {i}" for i in range(4))
            out[(model, d)] = mock_record(model, d, names, rng, dim=dim)
    return out


__all__ = ["ARRAYS", "KIND", "SOURCE_ONLY_ARRAYS", "TARGET_ARRAYS", "check_record",
           "gap_vectors", "load", "make_arrays", "mock", "mock_record", "target_record"]
