"""What a selector may see: a :class:`TrainView` of the sources and a :class:`TargetView`.

What the views guarantee (README, "Leakage"; tested by ``benchmark check``):

- :class:`TargetView` has no accuracy and no label-derived field: the target's metadata (id,
  name, domain, task, class names, templates), its candidate models, side information
  (ImageNet-1k accuracy) and the target's part of its feature records (no per-class
  accuracies, no image ids whose folders are class names; ``FeatureKind.target_part``).
- :class:`TrainView` holds ground truth of the source datasets only (the harness builds it from
  a table from which the target's rows were removed), and features of the sources only.
- :class:`FeatureView` refuses any dataset outside the view (``LeakageError``).

Arrays and series handed out are read-only copies, so a selector cannot write through a view.
The views are not a sandbox: Python code can still reach other objects or read files on its
own. That a selector takes no such path, by accident, through the library, is what the
conformance check verifies (:mod:`benchmark.core.check`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import numpy as np
import pandas as pd

from benchmark.data.catalog import DatasetInfo
from benchmark.data.groundtruth import GroundTruth
from benchmark.features.store import FeaturePackError, Record


class LeakageError(PermissionError):
    """A selector asked for data its view does not grant."""


def _salt(*keys: object) -> list[int]:
    return [zlib.crc32(str(k).encode()) for k in keys]


def _scalars(records: list[Record], name: str) -> np.ndarray:
    """``float(record[name])`` of each record, one size-1 array each (else an error)."""
    arrays = [rec.arrays.get(name) for rec in records]
    if all(a is not None for a in arrays):  # the usual case: 0-d numeric arrays, at C speed
        try:
            values = np.array(arrays)
        except ValueError:
            values = None
        if values is not None and values.shape == (len(records),) and values.dtype.kind in "biuf":
            return values.astype(float)
    return np.fromiter((float(np.asarray(rec[name]).reshape(())) for rec in records), float,
                       len(records))  # raises on a missing or non-scalar array


class DenseTable:
    """Scalar fields of a feature kind as ``models x datasets`` arrays, built lazily per field."""

    def __init__(self, records: Mapping[tuple[str, str], Record]) -> None:
        self._records = records
        self._models = sorted({m for m, _ in records})
        self._datasets = sorted({d for _, d in records})
        self._mi = {m: i for i, m in enumerate(self._models)}
        self._di = {d: j for j, d in enumerate(self._datasets)}
        self._fields: dict[str, np.ndarray] = {}
        self._where: tuple[np.ndarray, np.ndarray] | None = None
        self._pos: dict[tuple, np.ndarray] = {}

    def _field(self, name: str) -> np.ndarray:
        if name not in self._fields:
            if self._where is None:  # (row, column) of every record, in records order
                self._where = (
                    np.fromiter((self._mi[m] for m, _ in self._records), np.intp,
                                len(self._records)),
                    np.fromiter((self._di[d] for _, d in self._records), np.intp,
                                len(self._records)))
            values = _scalars(list(self._records.values()), name)
            arr = np.full((len(self._models) + 1, len(self._datasets) + 1), np.nan)
            arr[self._where] = values
            arr.setflags(write=False)
            self._fields[name] = arr  # last row / column: NaN for unknown models / datasets
        return self._fields[name]

    def _positions(self, ids: Sequence[str], where: dict[str, int]) -> np.ndarray:
        key = (id(where), tuple(ids))
        if key not in self._pos:
            self._pos[key] = np.fromiter((where.get(x, -1) for x in ids), dtype=np.intp,
                                         count=len(ids))
        return self._pos[key]

    def take(self, name: str, models: Sequence[str], datasets: Sequence[str]) -> np.ndarray:
        arr = self._field(name)
        mi, di = self._positions(models, self._mi), self._positions(datasets, self._di)
        return arr.take(mi, axis=0).take(di, axis=1)  # -1 picks the NaN row / column


@dataclass(frozen=True)
class FeatureView:
    """Records of one feature kind, for the datasets a view grants."""

    kind: str
    datasets: frozenset[str]
    records: Mapping[tuple[str, str], Record]  # (model, dataset) -> record
    # Dense scalar fields over ALL the kind's records (built once per run by the harness);
    # :meth:`scalar_array` hands out only this view's datasets.
    dense: DenseTable | None = field(default=None, compare=False, repr=False)

    def scalar_array(self, name: str, models: Sequence[str], datasets: Sequence[str]
                     ) -> np.ndarray:
        """``[len(models), len(datasets)]`` values of one scalar field (NaN: no record)."""
        bad = [d for d in datasets if d not in self.datasets]
        if bad:
            raise LeakageError(f"{self.kind} features of {bad[0]!r} are not part of this view")
        if self.dense is not None:
            return self.dense.take(name, models, datasets)
        out = np.full((len(models), len(datasets)), np.nan)
        mi = {m: i for i, m in enumerate(models)}
        di = {d: j for j, d in enumerate(datasets)}
        for (m, d), rec in self.records.items():
            if m in mi and d in di:
                out[mi[m], di[d]] = float(np.asarray(rec[name]).reshape(()))
        return out

    def scalar(self, name: str, models: Sequence[str], datasets: Sequence[str]) -> pd.DataFrame:
        """models x datasets frame of one scalar field (NaN where a record is missing)."""
        return pd.DataFrame(self.scalar_array(name, models, datasets), index=list(models),
                            columns=list(datasets))

    def get(self, model: str, dataset: str) -> Record:
        if dataset not in self.datasets:
            raise LeakageError(f"{self.kind} features of {dataset!r} are not part of this view")
        try:
            return self.records[(model, dataset)]
        except KeyError:
            raise FeaturePackError(f"no {self.kind} features for {model} on {dataset}") from None

    def has(self, model: str, dataset: str) -> bool:
        return dataset in self.datasets and (model, dataset) in self.records

    def models(self, dataset: str) -> list[str]:
        return sorted(m for (m, d) in self.records if d == dataset and d in self.datasets)

    def restrict(self, datasets: set[str] | frozenset[str]) -> FeatureView:
        keep = frozenset(datasets) & self.datasets
        recs = {k: r for k, r in self.records.items() if k[1] in keep}
        return FeatureView(self.kind, keep, MappingProxyType(recs))


@dataclass(frozen=True, kw_only=True)
class _View:
    protocol: str
    seed: int
    imagenet: pd.Series  # side information: ImageNet-1k top-1 per model
    features: Mapping[str, FeatureView]

    def feature(self, kind: str) -> FeatureView:
        try:
            return self.features[kind]
        except KeyError:
            raise LeakageError(
                f"feature kind {kind!r} was not declared in the selector's `requires`"
            ) from None


@dataclass(frozen=True, kw_only=True)
class TrainView(_View):
    """The source side of one leave-one-dataset-out fold."""

    sources: tuple[DatasetInfo, ...]
    models: tuple[str, ...]  # the protocol's zoo
    ground_truth: GroundTruth  # sources only

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.sources)

    def rng(self, *salt: object) -> np.random.Generator:
        return np.random.default_rng([self.seed, *_salt("train", *salt)])

    @cached_property
    def accuracy(self) -> pd.DataFrame:
        """models x sources accuracy (NaN where a model has no published cell)."""
        m = self.ground_truth.matrix.reindex(index=list(self.models), columns=list(self.source_ids))
        return m

    @cached_property
    def ranks(self) -> pd.DataFrame:
        """models x sources rank among the models with a cell (1 = best, ties averaged)."""
        return self.rank_columns(self.accuracy)

    @staticmethod
    def rank_columns(accuracy: pd.DataFrame) -> pd.DataFrame:
        # pandas' average ranks equal scipy's rankdata(method="average"); NaN cells stay NaN
        return accuracy.rank(axis=0, ascending=False, method="average")


@dataclass(frozen=True, kw_only=True)
class TargetView(_View):
    """The target side of one fold: metadata, candidates, features. No accuracies."""

    dataset: DatasetInfo
    candidates: tuple[str, ...]

    def rng(self, *salt: object) -> np.random.Generator:
        """Generator determined by (seed, target, salt): independent of fold order."""
        return np.random.default_rng([self.seed, *_salt("target", self.dataset.id, *salt)])
