"""The ``text-features`` feature kind: LOVM's six ModelGPT text features per (model, dataset).

Where a record comes from, in order of preference:

1. LOVM's published ``modelGPT/eval_table_features.csv`` (35 models x 23 datasets), read through
   the data layer. Only the six text columns of :data:`FEATURE_COLUMNS` are taken; the row's
   ``acc1``, ``acc5``, ``mean_per_class_recall`` (the target's ground truth) and ``IN-score``
   (side information, which selectors read from ``view.imagenet``) never enter a record.
2. Feature packs written by ``python -m benchmark extract text-features`` (any open_clip model;
   same definitions, :mod:`benchmark.extract.text_features`), for the pairs the CSV lacks.

A record holds one 0-d float array per feature, named as the CSV column (``record["text-f1"]``),
and ``meta["source"]`` (``"lovm-published"`` or ``"pack"``).

Importing this module never imports torch; ``load`` imports :mod:`benchmark.features.kinds` lazily so
that ``providers`` can reference this module from its ``KINDS`` table.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from benchmark.extract.text_features import FEATURE_COLUMNS  # numpy only, no torch
from benchmark.features.store import Record

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.features.kinds import LoadContext, Records

KIND = "text-features"
LOVM_FEATURES = "orrzohar__LOVM/modelGPT/eval_table_features.csv"

#: Feature groups as LOVM / SWAB name them ("INB" is side information, not a record field).
GROUPS: dict[str, tuple[str, ...]] = {
    "C": ("text-f1", "text-acc1"),
    "G": ("intraclass_sim", "inter_close", "intra_close", "superclass_metric"),
}


def make_record(model: str, dataset: str, values: dict[str, float], source: str, **meta) -> Record:
    missing = [c for c in FEATURE_COLUMNS if c not in values]
    if missing:
        raise ValueError(f"{KIND} of {model} on {dataset} lacks {missing}")
    arrays = {c: np.asarray(float(values[c]), dtype=np.float64) for c in FEATURE_COLUMNS}
    return Record.make(KIND, model, dataset, arrays, {"source": source, **meta})


def published_records(
    csv_text: str, models: Iterable[str] | None = None, datasets: Iterable[str] | None = None
) -> dict[tuple[str, str], Record]:
    """Records of LOVM's CSV (text columns only) for ``models x datasets`` (None = all)."""
    import pandas as pd

    df = pd.read_csv(io.StringIO(csv_text))
    need = {"model", "pretrained", "dataset", *FEATURE_COLUMNS}
    if need - set(df.columns):
        raise ValueError(f"{LOVM_FEATURES} lacks columns {sorted(need - set(df.columns))}")
    # select the text columns first: nothing else of the row is ever looked at again
    df = df[["model", "pretrained", "dataset", *FEATURE_COLUMNS]]
    keep_m = None if models is None else set(models)
    keep_d = None if datasets is None else set(datasets)
    out: dict[tuple[str, str], Record] = {}
    for row in df.itertuples(index=False):
        model, dataset = f"{row[0]}:{row[1]}", str(row[2])
        if (keep_m is not None and model not in keep_m) or (
            keep_d is not None and dataset not in keep_d
        ):
            continue
        if (model, dataset) in out:
            raise ValueError(f"{LOVM_FEATURES}: duplicated row for {model} on {dataset}")
        values = dict(zip(FEATURE_COLUMNS, row[3:], strict=True))
        if not all(np.isfinite(v) for v in values.values()):
            continue  # a blank cell: no record, so the model is not a candidate there
        out[(model, dataset)] = make_record(model, dataset, values, "lovm-published")
    return out


def load(ctx: LoadContext, models: list[str], datasets: list[str]) -> Records:
    """Published rows first, then feature packs for the (model, dataset) pairs still missing."""
    from benchmark.features.kinds import load_packs

    out = published_records(ctx.data.read_text(LOVM_FEATURES), models, datasets)
    rest = [m for m in models if any((m, d) not in out for d in datasets)]
    for key, rec in load_packs(KIND, ctx, rest, datasets).items():
        if key not in out:
            out[key] = Record.make(KIND, rec.model, rec.dataset, rec.arrays,
                                   {**rec.meta, "source": "pack"})
    return out


def mock(models: list[str], datasets: list[str], rng: np.random.Generator,
         infos=None) -> Records:
    """Random features of the right shape; the last model lacks them on the first dataset."""
    out: Records = {}
    for j, m in enumerate(models):
        for i, d in enumerate(datasets):
            if i == 0 and j == len(models) - 1:
                continue
            values = dict(zip(FEATURE_COLUMNS, rng.uniform(0.0, 1.0, len(FEATURE_COLUMNS)),
                              strict=True))
            out[(m, d)] = make_record(m, d, values, "mock")
    return out
