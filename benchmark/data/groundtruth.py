"""Ground truth: published zero-shot top-1 accuracies as one long table.

Columns: ``model`` (open_clip id ``"ARCH:pretrained"``; BLIP / BEiT-3 as ``"BLIP:retrieval_base_coco"``,
``"BEIT3:retrieval_base_coco"``), ``dataset`` (catalog id), ``acc1`` (fraction in [0, 1]),
``source`` (which published table the cell comes from).

Sources (one function each; a cell is never invented or filled):

- ``lovm``: LOVM's ``LOVM/eval_table.csv`` (35 models x 23 datasets, CLIP_benchmark).
- ``swab``: SWAB's ``LOVM/eval_table.csv`` (43 models x 23 datasets: LOVM's 35 re-evaluated,
  plus 4 BLIP and 4 BEiT-3). SWAB evaluated FER2013 on the train split.
- ``openclip``: open_clip's ``docs/openclip_results.csv`` (121 models x 38 datasets), columns
  mapped to catalog ids by ``datasets/registry.toml``; a column that holds another metric than
  top-1 (Flowers, Pets: mean per-class recall) is never read.
- ``packs``: ground-truth packs measured here (``python -m benchmark extract ground-truth``,
  CLIP_benchmark's protocol) in the feature store of the run, for models no table covers.
  Packs made with ``--random-init`` are refused unless ``allow_random_init``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from benchmark.data.catalog import entry, registry, unknown_message
from benchmark.data.upstream import DataLayer
from benchmark.features.store import FeaturePackError, FeatureStore

LOVM_TABLE = "orrzohar__LOVM/LOVM/eval_table.csv"
SWAB_TABLE = "YCaigogogo__SWAB/LOVM/eval_table.csv"
OPENCLIP_TABLE = "mlfoundations__open_clip/docs/openclip_results.csv"
MLL_MODELS = "LAMDASZ-ML__MLL/MLL/model_hub_info.csv"
COLUMNS = ["model", "dataset", "acc1", "source"]


def model_id(arch: str, pretrained: str) -> str:
    """The one model id format: open_clip's ``"ARCH:pretrained"``."""
    return f"{arch}:{pretrained}"


def _read_csv(data: DataLayer, key: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(data.read_text(key)))


def _from_eval_table(df: pd.DataFrame, source: str) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "model": [model_id(a, p) for a, p in zip(df["model"], df["pretrained"], strict=True)],
            "dataset": df["dataset"].astype(str),
            "acc1": df["acc1"].astype(float),
            "source": source,
        }
    )
    dupes = out.duplicated(["model", "dataset"])
    if dupes.any():
        raise ValueError(f"{source}: duplicated (model, dataset) cells: {out[dupes].head(3)}")
    return out


def lovm_table(data: DataLayer) -> pd.DataFrame:
    return _from_eval_table(_read_csv(data, LOVM_TABLE), "lovm")


def swab_table(data: DataLayer) -> pd.DataFrame:
    return _from_eval_table(_read_csv(data, SWAB_TABLE), "swab")


def openclip_table(data: DataLayer) -> pd.DataFrame:
    """Top-1 columns of open_clip's results table, in long form (blank cells dropped)."""
    df = _read_csv(data, OPENCLIP_TABLE)
    rows = []
    for dataset, e in registry().items():
        if "openclip" not in e or e.get("openclip_metric") != "acc1":
            continue
        values = pd.to_numeric(df[e["openclip"]], errors="coerce")
        for arch, pre, v in zip(df["name"], df["pretrained"], values, strict=True):
            if np.isfinite(v):
                rows.append((model_id(arch, pre), dataset, float(v), "openclip"))
    return pd.DataFrame(rows, columns=COLUMNS)


def mll_models(data: DataLayer) -> list[str]:
    """The 49 models of MLL's model hub, in its order."""
    df = _read_csv(data, MLL_MODELS)
    return [model_id(a, p) for a, p in zip(df["name"], df["pretrained"], strict=True)]


PACKS_KIND = "ground-truth"


def packs_table(
    data: DataLayer | None = None,
    models: list[str] | None = None,
    store: FeatureStore | None = None,
    allow_random_init: bool = False,
) -> pd.DataFrame:
    """The ``acc1`` records of the ground-truth packs of ``models`` (default: every pack in
    ``store``, default the feature store) in long form, source ``packs``."""
    store = store or FeatureStore()
    if models is None:
        root = store.root / PACKS_KIND
        manifests = sorted(root.glob("*/manifest.json")) if root.is_dir() else []
        models = [json.loads(m.read_text())["model"] for m in manifests]
    rows = []
    for model in models:
        have = store.datasets(PACKS_KIND, model)
        if not have:
            continue
        extractor = store.extractor(PACKS_KIND, model)
        if extractor and extractor.params.get("random_init") and not allow_random_init:
            raise FeaturePackError(
                f"the {PACKS_KIND} pack of {model} was extracted with --random-init (a smoke "
                f"test, not real accuracies); pass --allow-random-init to use it anyway"
            )
        for d in have:
            acc = np.asarray(store.read(PACKS_KIND, model, d)["acc1"])
            if acc.shape != () or acc.dtype.kind not in "fiu":
                raise FeaturePackError(
                    f"{store.pack_dir(PACKS_KIND, model) / f'{d}.npz'}: acc1 must be one number, "
                    f"got a {acc.dtype} array of shape {acc.shape}; re-extract it")
            rows.append((model, d, float(acc), "packs"))
    table = pd.DataFrame(rows, columns=COLUMNS)
    check_accuracies(table, f"ground-truth packs in {store.root / PACKS_KIND}")
    return table


@dataclass(frozen=True)
class Predictions:
    """Per-image zero-shot predictions of one model on one dataset (a ground-truth pack)."""

    labels: np.ndarray  # int [N]: true class
    logits: np.ndarray  # float [N, C]: zero-shot logits (row-shifted: softmax/argmax unchanged)
    image_ids: tuple[str, ...] | None = None  # when the record was computed on a sample


def extract_command(model: str, dataset: str) -> str:
    return (f"python -m benchmark extract ground-truth --models {model} --datasets {dataset}")


def pack_predictions(store: FeatureStore, model: str, dataset: str) -> Predictions:
    """The per-image labels and logits of ``model``'s ground-truth record on ``dataset``.

    Records of extractor version 1 (counts only) or made with ``--no-logits`` have none: one
    line names the command that adds them (into a fresh ``--features-dir``, or after deleting
    the old pack: the extractor version differs)."""
    rec = store.read(PACKS_KIND, model, dataset)
    if "labels" not in rec.arrays or "logits" not in rec.arrays:
        raise FeaturePackError(
            f"the {PACKS_KIND} record of {model} on {dataset} has no per-image predictions "
            f"(an older pack, or --no-logits); re-extract it: {extract_command(model, dataset)}"
            f" (after deleting {store.pack_dir(PACKS_KIND, model)}, or into another "
            f"--features-dir)")
    labels = np.asarray(rec["labels"])
    logits = np.asarray(rec["logits"], dtype=np.float64)
    if (labels.ndim != 1 or logits.ndim != 2 or len(labels) != len(logits)
            or labels.dtype.kind not in "iu"):
        raise FeaturePackError(
            f"the {PACKS_KIND} record of {model} on {dataset}: labels {labels.dtype}"
            f"{list(labels.shape)} and logits {list(logits.shape)} do not match; re-extract it: "
            f"{extract_command(model, dataset)}")
    ids = rec.meta.get("image_ids")
    return Predictions(labels, logits, tuple(ids) if ids is not None else None)


def check_accuracies(table: pd.DataFrame, where: str) -> None:
    """Top-1 accuracies are finite fractions in [0, 1]: anything else (5.0, -3.0, NaN -- which
    would silently drop a cell) is refused with one line naming the first bad cell."""
    acc = pd.to_numeric(table["acc1"], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(acc) & (acc >= 0) & (acc <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = table.iloc[i]
        raise FeaturePackError(
            f"{where}: top-1 of {row['model']} on {row['dataset']} is {row['acc1']!r}; "
            f"accuracies must be finite fractions in [0, 1] ({int(bad.sum())} bad cell(s))")


SOURCES = {"lovm": lovm_table, "swab": swab_table, "openclip": openclip_table,
           "packs": packs_table}


@dataclass(frozen=True)
class GroundTruth:
    """A long table of accuracies; the only place a selector's target answer lives."""

    table: pd.DataFrame  # columns COLUMNS, unique (model, dataset)

    def __post_init__(self) -> None:
        missing = set(COLUMNS) - set(self.table.columns)
        if missing:
            raise ValueError(f"ground truth lacks columns {sorted(missing)}")
        if self.table.duplicated(["model", "dataset"]).any():
            raise ValueError("ground truth has duplicated (model, dataset) cells")

    @cached_property
    def _dataset_codes(self) -> tuple[np.ndarray, pd.Index]:
        codes, uniques = pd.factorize(self.table["dataset"])
        return codes, pd.Index(uniques)

    @cached_property
    def matrix(self) -> pd.DataFrame:
        """models x datasets accuracy matrix (NaN where no published cell)."""
        return self.table.pivot(index="model", columns="dataset", values="acc1")

    @property
    def models(self) -> list[str]:
        return sorted(self.table["model"].unique())

    def column(self, dataset: str) -> pd.Series:
        """Accuracy per model on one dataset (only published cells)."""
        if dataset not in self.matrix.columns:
            raise KeyError(unknown_message("dataset", dataset, list(self.matrix.columns)))
        return self.matrix[dataset].dropna()

    @classmethod
    def _subset_of(cls, table: pd.DataFrame) -> GroundTruth:
        """A GroundTruth of rows taken from a validated table: rows of a table with unique
        (model, dataset) cells are unique too, so the check is not repeated."""
        out = object.__new__(cls)
        object.__setattr__(out, "table", table)
        return out

    def restrict(self, models: list[str] | None = None, datasets: list[str] | None = None):
        t = self.table
        if models is not None:
            t = t[t["model"].isin(models)]
        if datasets is not None:
            t = t[t["dataset"].isin(datasets)]
        out = GroundTruth._subset_of(t.reset_index(drop=True))
        if "matrix" in self.__dict__:  # reuse the parent's pivot (a restriction of it)
            m = self.matrix
            if models is not None:
                m = m.loc[m.index.isin(models)]
            if datasets is not None:
                m = m.loc[:, m.columns.isin(datasets)]
            out.__dict__["matrix"] = m.dropna(how="all").dropna(axis=1, how="all")
        return out

    def without(self, dataset: str) -> GroundTruth:
        """All cells but ``dataset``'s: ``restrict(datasets=every other dataset)``, by index
        (the sources of a leave-one-dataset-out fold, once per target)."""
        codes, uniques = self._dataset_codes
        t = self.table
        if dataset in uniques:
            t = t[codes != uniques.get_loc(dataset)]
        out = GroundTruth._subset_of(t.reset_index(drop=True))
        if "matrix" in self.__dict__:
            m = self.matrix
            out.__dict__["matrix"] = (m.loc[:, m.columns != dataset]
                                      .dropna(how="all").dropna(axis=1, how="all"))
        return out


def assemble(
    data: DataLayer,
    models: list[str],
    datasets: list[str],
    sources: tuple[str, ...],
    exclude: frozenset[tuple[str, str]] = frozenset(),
    store: FeatureStore | None = None,
    allow_random_init: bool = False,
) -> GroundTruth:
    """Cells for ``models x datasets``, taking each from the first source that has it.

    ``exclude`` drops specific (model, dataset) cells a protocol declares unusable. ``store``
    and ``allow_random_init`` concern the ``packs`` source only.
    """
    for d in datasets:
        entry(d)  # unknown dataset -> clear error
    parts = []
    have: set[tuple[str, str]] = set(exclude)
    for name in sources:
        if name not in SOURCES:
            raise KeyError(unknown_message("ground-truth source", name, list(SOURCES)))
        if name == "packs":
            t = packs_table(data, list(models), store, allow_random_init)
        else:
            t = SOURCES[name](data)
        t = t[t["model"].isin(models) & t["dataset"].isin(datasets)]
        check_accuracies(t, f"ground-truth source {name!r}")
        keep = [(m, d) not in have for m, d in zip(t["model"], t["dataset"], strict=True)]
        t = t[np.asarray(keep, dtype=bool)]  # a plain [] would select no columns
        have.update(zip(t["model"], t["dataset"], strict=True))
        parts.append(t)
    table = pd.concat(parts, ignore_index=True).sort_values(["dataset", "model"])
    return GroundTruth(table.reset_index(drop=True))
