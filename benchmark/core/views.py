"""What a selector may see: a :class:`TrainView` of the sources and a :class:`TargetView`.

Leakage is prevented by construction:

- :class:`TargetView` has no accuracy of any kind: the target's metadata (id, name, domain,
  task, class names, templates), its candidate models, side information (ImageNet-1k accuracy)
  and the features of the target only.
- :class:`TrainView` holds ground truth of the source datasets only (the harness builds it from
  a table from which the target's rows were removed), and features of the sources only.
- :class:`FeatureView` refuses any dataset outside the view (``LeakageError``).

Arrays and series handed out are read-only copies, so a selector cannot write through a view.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from benchmark.data.catalog import DatasetInfo
from benchmark.data.groundtruth import GroundTruth
from benchmark.features.store import FeaturePackError, Record


class LeakageError(PermissionError):
    """A selector asked for data its view does not grant."""


def _salt(*keys: object) -> list[int]:
    return [zlib.crc32(str(k).encode()) for k in keys]


@dataclass(frozen=True)
class FeatureView:
    """Records of one feature kind, for the datasets a view grants."""

    kind: str
    datasets: frozenset[str]
    records: Mapping[tuple[str, str], Record]  # (model, dataset) -> record

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
        acc = self.accuracy
        out = pd.DataFrame(np.nan, index=acc.index, columns=acc.columns)
        for d in acc.columns:
            col = acc[d].dropna()
            out.loc[col.index, d] = rankdata(-col.to_numpy(float), method="average")
        return out


@dataclass(frozen=True, kw_only=True)
class TargetView(_View):
    """The target side of one fold: metadata, candidates, features. No accuracies."""

    dataset: DatasetInfo
    candidates: tuple[str, ...]

    def rng(self, *salt: object) -> np.random.Generator:
        """Generator determined by (seed, target, salt): independent of fold order."""
        return np.random.default_rng([self.seed, *_salt("target", self.dataset.id, *salt)])
