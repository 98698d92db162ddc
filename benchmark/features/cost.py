"""Estimated GPU-hours of missing feature records: a lookup in ``extraction_cost.csv``.

The table (one row per architecture, GPU-hours of one model for each kind at the default
extraction settings on the 21 ``dcd48`` datasets) is the one of ``docs/extraction_cost.md``,
written by ``perf/estimate_extraction.py``: **an estimate from CPU timings, not a measurement
on a GPU** (expect 2x either way). Pure and light (no torch): the evaluation stage uses it to
say what a missing set of records would cost.

A record of a per-dataset kind costs the model's figure / 21 (/ 22 for ground truth, which
also covers ImageNet-1k); a model-labels pack is per model (its records are shared by every
target), so it costs the model's figure once. Models whose architecture has no row (custom
or synthetic towers) have no estimate and are reported as such.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

COST_FILE = Path(__file__).with_name("extraction_cost.csv")
#: records per model that the table's figure covers (the 21 dcd48 datasets; + ImageNet-1k)
UNITS_PER_MODEL = {"conductance": 21, "text-features": 21, "class-stats": 21,
                   "ground-truth": 22}
PER_MODEL_KINDS = frozenset({"model-labels"})  # one pack per model, whatever the target


@lru_cache(maxsize=1)
def table() -> Mapping[str, Mapping[str, float]]:
    """architecture -> kind -> GPU-hours of one model (all its records of that kind)."""
    lines = [ln for ln in COST_FILE.read_text().splitlines() if ln and not ln.startswith("#")]
    return {row.pop("architecture"): {k: float(v) for k, v in row.items()}
            for row in csv.DictReader(lines)}


def architecture(model: str) -> str:
    """The row of ``model`` (``ARCH:pretrained``): ``ARCH``, or ``BLIP-base`` / ``BEIT3-large``
    for SWAB's retrieval towers (``BLIP:retrieval_base_coco``)."""
    arch, _, pretrained = model.partition(":")
    if arch in ("BLIP", "BEIT3"):
        size = pretrained.split("_")[1] if pretrained.count("_") >= 1 else pretrained
        return f"{arch}-{size}"
    return arch


def gpu_hours(kind: str, pairs: Iterable[tuple[str, str]]) -> tuple[float, list[str]]:
    """Estimated GPU-hours of the ``(model, dataset)`` records of ``kind``, and the models
    without an estimate (no row for their architecture, or a kind the table does not cover)."""
    rows = table()
    hours, unknown = 0.0, []
    models: dict[str, int] = {}
    for model, _ in pairs:
        models[model] = models.get(model, 0) + 1
    for model, n in models.items():
        per_model = rows.get(architecture(model), {}).get(kind)
        if per_model is None:
            unknown.append(model)
        elif kind in PER_MODEL_KINDS:
            hours += per_model
        else:
            hours += per_model * n / UNITS_PER_MODEL[kind]
    return hours, unknown
