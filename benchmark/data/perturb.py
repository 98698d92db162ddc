"""The target's truth, perturbed wherever the library hands it out (for ``benchmark check``).

The conformance check (:mod:`benchmark.core.check`) scores a selector twice on a fold: once
as usual, once with the held-out target's truth replaced by garbage *everywhere the library can
read it*, and requires identical scores. Inside :func:`perturbed`, the library serves garbage
for the target ``t``:

- **upstream files** (:meth:`benchmark.data.upstream.DataLayer.path`, hence ``read_text``, the
  ground-truth tables, ``get_protocol(...).load(...)``): every CSV file is served as a copy in
  which ``t``'s truth is random: in tables with a ``dataset`` column, the :data:`TRUTH_COLUMNS`
  of ``t``'s rows; in open_clip's wide tables (``name``, ``pretrained``), ``t``'s column (as
  ``datasets/registry.toml`` names it) and the ``Average ...`` columns;
- **feature packs** (:meth:`benchmark.features.store.FeatureStore.read`, hence every kind's
  loader and the ``packs`` ground-truth source): in ``t``'s records, the arrays of
  :data:`LABEL_ARRAYS` (every array of a ground-truth pack; the image/label statistics of a
  class-stats record) and the metadata of :data:`LABEL_META` (image ids, whose folders are
  class names).

Outside :func:`perturbed` (the default) nothing changes: one ``None`` test per read. What it
cannot cover: a program that opens files on its own (``open(mirror / ...)``), or one that tests
whether a perturbation is active; those are deliberate, and code review of submissions is the
guard (README, "Leakage").
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: accuracy columns of the row tables (LOVM's / SWAB's eval tables, LOVM's features table)
TRUTH_COLUMNS = ("acc1", "acc5", "mean_per_class_recall")
#: per record kind, the arrays derived from the dataset's labels or images (None: all arrays)
LABEL_ARRAYS: dict[str, tuple[str, ...] | None] = {
    "ground-truth": None,
    "class-stats": ("class_acc", "class_count", "image_mean", "image_center", "image_std"),
}
#: metadata of any record that reveals labels (image ids are paths ``<class folder>/<file>``)
LABEL_META = ("image_ids", "classes_without_images")


@dataclass
class _Perturbation:
    target: str
    seed: int
    workdir: Path
    wide_column: str | None = None  # the target's column in wide (model x dataset) tables
    served: dict[str, Path | None] = field(default_factory=dict)

    def rng(self, *salt: object) -> np.random.Generator:
        return np.random.default_rng(
            [self.seed, *(zlib.crc32(str(s).encode()) for s in (self.target, *salt))])


_ACTIVE: _Perturbation | None = None  # process-wide: threads of a selector see it too


def active_target() -> str | None:
    """The dataset whose truth is perturbed right now (None: nothing is perturbed)."""
    return _ACTIVE.target if _ACTIVE is not None else None


@contextmanager
def perturbed(target: str, seed: int = 0, wide_column: str | None = None) -> Iterator[None]:
    """Within the block, the library serves garbage for ``target``'s truth (module docstring).

    ``wide_column``: the target's column name in wide model x dataset tables (open_clip's
    results table), which the caller resolves from the dataset registry."""
    global _ACTIVE
    if _ACTIVE is not None:
        raise RuntimeError("perturbations do not nest")
    workdir = Path(tempfile.mkdtemp(prefix="vlmbench-perturbed-"))
    _ACTIVE = _Perturbation(str(target), int(seed), workdir, wide_column)
    try:
        yield
    finally:
        _ACTIVE = None
        shutil.rmtree(workdir, ignore_errors=True)


# -- upstream files ---------------------------------------------------------------------------
def perturb_csv(text: str, target: str, rng: np.random.Generator,
                wide_column: str | None = None) -> str | None:
    """``text`` with ``target``'s truth replaced by uniform garbage; None when it holds none."""
    import pandas as pd

    try:
        df = pd.read_csv(io.StringIO(text))
    except Exception:  # not a table: nothing to perturb
        return None
    changed = False
    if "dataset" in df.columns:
        rows = (df["dataset"].astype(str) == target).to_numpy()
        for col in (c for c in TRUTH_COLUMNS if c in df.columns):
            if rows.any():
                df[col] = df[col].astype(float)
                df.loc[rows, col] = rng.uniform(size=int(rows.sum()))
                changed = True
    if {"name", "pretrained"} <= set(df.columns):
        wide = [c for c in df.columns if (wide_column is not None and c == wide_column)
                or str(c).lower().startswith("average")]
        for col in wide:
            values = pd.to_numeric(df[col], errors="coerce")
            present = values.notna().to_numpy()
            df[col] = np.where(present, rng.uniform(size=len(df)), np.nan)
            changed = True
    return df.to_csv(index=False) if changed else None


def serve(key: str, path: Path) -> Path:
    """The file the data layer hands out for ``key`` (``path``: the verified original)."""
    p = _ACTIVE
    if p is None or not key.endswith(".csv"):
        return path
    if key not in p.served:
        text = perturb_csv(path.read_text(encoding="utf-8"), p.target, p.rng("file", key),
                           p.wide_column)
        copy = None
        if text is not None:
            copy = p.workdir / key
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(text, encoding="utf-8")
        p.served[key] = copy
    return p.served[key] or path


# -- feature-pack records ---------------------------------------------------------------------
def garbage_like(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random values of ``a``'s shape and dtype (strings are kept: class names, not truth)."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return rng.uniform(size=a.shape).astype(a.dtype)
    if a.dtype.kind in "iu":
        return rng.integers(0, 10, size=a.shape).astype(a.dtype)
    if a.dtype.kind == "b":
        return rng.integers(0, 2, size=a.shape).astype(bool)
    return a


def perturb_record_parts(
    kind: str, dataset: str, arrays: Mapping[str, Any], meta: Mapping[str, Any],
    target: str, rng: np.random.Generator,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(arrays, meta)`` of a record with its label-derived parts garbled when it is
    ``target``'s (:data:`LABEL_ARRAYS`, :data:`LABEL_META`)."""
    arrays, meta = dict(arrays), dict(meta)
    if dataset != target:
        return arrays, meta
    if kind in LABEL_ARRAYS:
        names = LABEL_ARRAYS[kind]
        for name in (list(arrays) if names is None else [n for n in names if n in arrays]):
            arrays[name] = garbage_like(arrays[name], rng)
    for key in (k for k in LABEL_META if k in meta):
        value = meta[key]
        if isinstance(value, (list, tuple)):
            meta[key] = [f"garbage{int(rng.integers(1 << 30))}/x" for _ in value]
        else:
            meta[key] = int(rng.integers(0, 10))
    return arrays, meta


def record(kind: str, model: str, dataset: str, arrays: dict[str, Any],
           meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What :meth:`FeatureStore.read` hands out: unchanged unless a perturbation is active."""
    p = _ACTIVE
    if p is None or dataset != p.target:
        return arrays, meta
    return perturb_record_parts(kind, dataset, arrays, meta, p.target,
                                p.rng("record", kind, model))


__all__ = ["LABEL_ARRAYS", "LABEL_META", "TRUTH_COLUMNS", "active_target", "garbage_like",
           "perturb_csv", "perturb_record_parts", "perturbed", "record", "serve"]
