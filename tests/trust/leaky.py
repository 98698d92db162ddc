"""Selectors that leak the held-out target's truth, one per path; ``benchmark check`` must fail
each. Fixtures of tests/trust/test_leakage.py (not collected: no ``test_`` prefix).

Each falls back to an honest answer (ImageNet accuracy) when its path yields nothing, as an
honest method with a bug would: the check must notice the leak itself, not a crash.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import zlib

import numpy as np
import pandas as pd

from methods.base import Selector

_SEEN: dict[str, pd.Series] = {}  # filled in fit, read in score: state across folds
_FIRST: dict[str, pd.Series] = {}


def j(model: str) -> int:
    return zlib.crc32(model.encode()) % 7


def _fallback(target) -> pd.Series:
    return target.imagenet.reindex(list(target.candidates)).fillna(0.0)


def _answer(target, truth: pd.Series | None) -> pd.Series:
    if truth is None:
        return _fallback(target)
    cands = list(target.candidates)
    return truth.reindex(cands).astype(float).fillna(0.0)


class ModuleStateOracle(Selector):
    """Accuracies of every source seen so far, kept at module level (latest wins)."""

    name = "leaky-module-state"

    def fit(self, train):
        for d in train.source_ids:
            _SEEN[d] = train.accuracy[d]
        return self

    def score(self, target):
        return _answer(target, _SEEN.get(target.dataset.id))


class FirstSeenOracle(Selector):
    """The same, first value wins (``setdefault``)."""

    name = "leaky-first-seen"

    def fit(self, train):
        for d in train.source_ids:
            _FIRST.setdefault(d, train.accuracy[d])
        return self

    def score(self, target):
        return _answer(target, _FIRST.get(target.dataset.id))


class DataLayerOracle(Selector):
    """Re-reads the ground truth through the library's own data layer."""

    name = "leaky-data-layer"

    def score(self, target):
        from benchmark.core.protocol import get_protocol
        from benchmark.data.upstream import DataLayer

        try:
            gt = get_protocol(target.protocol).load(DataLayer()).ground_truth
            return _answer(target, gt.column(target.dataset.id))
        except Exception:  # the mock universe's datasets are not in the tables
            return _fallback(target)


class TableOracle(Selector):
    """Reads LOVM's table through the data layer and parses it itself."""

    name = "leaky-table"

    def score(self, target):
        import io

        from benchmark.data.groundtruth import LOVM_TABLE
        from benchmark.data.upstream import DataLayer

        df = pd.read_csv(io.StringIO(DataLayer().read_text(LOVM_TABLE)))
        rows = df[df["dataset"] == target.dataset.id]
        if rows.empty:
            return _fallback(target)
        truth = pd.Series(rows["acc1"].to_numpy(float),
                          index=[f"{a}:{p}" for a, p in zip(rows["model"], rows["pretrained"],
                                                            strict=True)])
        return _answer(target, truth)


class PackOracle(Selector):
    """Reads the target's ground-truth packs through the feature store."""

    name = "leaky-packs"

    def score(self, target):
        from benchmark.features.store import FeaturePackError, FeatureStore

        store, truth = FeatureStore(), {}
        for m in target.candidates:
            with contextlib.suppress(FeaturePackError):
                truth[m] = float(store.read("ground-truth", m, target.dataset.id)["acc1"])
        return _answer(target, pd.Series(truth) if truth else None)


class ClassAccOracle(Selector):
    """The sanctioned API: the target's per-class accuracies from its class-stats record."""

    name = "leaky-class-acc"
    requires = ("class-stats",)

    def score(self, target):
        view = target.feature("class-stats")
        return pd.Series({m: float(np.nanmean(view.get(m, target.dataset.id)["class_acc"]))
                          for m in target.candidates})


class FolderOracle(Selector):
    """Class folders of the target's images from its conductance records' metadata."""

    name = "leaky-folders"
    requires = ("conductance",)

    def score(self, target):
        view = target.feature("conductance")
        out = {}
        for m in target.candidates:
            ids = view.get(m, target.dataset.id).meta["image_ids"]
            folders = [i.split("/")[0] for i in ids]  # the labels of the sampled images
            out[m] = float(sum(zlib.crc32(f.encode()) % 97 for f in folders)) * (1 + j(m))
        return pd.Series(out, dtype=float)


class FrameOracle(Selector):
    """Walks up the call stack to the harness."""

    name = "leaky-frames"

    def score(self, target):
        from benchmark.core.harness import Harness

        f = sys._getframe()
        while f is not None:
            h = f.f_locals.get("self")
            if isinstance(h, Harness):
                return _answer(target, h.pdata.targets_gt.column(target.dataset.id))
            f = f.f_back
        return _fallback(target)


class GcOracle(Selector):
    """Scans the heap for ground truth that has the target."""

    name = "leaky-gc"

    def score(self, target):
        from benchmark.data.groundtruth import GroundTruth

        for o in gc.get_objects():
            if isinstance(o, GroundTruth) and target.dataset.id in set(o.table["dataset"]):
                return _answer(target, o.column(target.dataset.id))
        return _fallback(target)
