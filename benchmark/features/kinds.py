"""Feature kinds: how the harness obtains each kind of feature a selector may ``require``.

A kind knows where its records come from (feature packs written by ``python -m benchmark
extract``, or published files read through the data layer), the command that makes missing
ones, and how to fabricate random records of the right shape for the conformance check
(``benchmark check``). Adding a kind = one :class:`FeatureKind` entry in :data:`KINDS`.

The kinds are fixed at start-up: :data:`KINDS` is read-only and :func:`register` refuses, so
no module imported later (a method's, a submission's) can add a kind whose loader serves
accuracies, or replace one. A kind says which part of a record a **target** may see
(:attr:`FeatureKind.for_target`): never a label-derived field (per-class accuracies, image ids
whose folders are class names); the rest of the record is for the sources.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from benchmark.data.perturb import LABEL_META
from benchmark.data.upstream import DataLayer
from benchmark.errors import UsageError
from benchmark.features.store import FeaturePackError, FeatureStore, Record


@dataclass(frozen=True)
class LoadContext:
    data: DataLayer
    store: FeatureStore
    allow_random_init: bool = False


Records = dict[tuple[str, str], Record]


@dataclass(frozen=True)
class FeatureKind:
    name: str
    description: str
    needs: str  # leaderboard label when absent, e.g. "needs conductance features"
    extract: str  # the command that writes missing records ({models}, {datasets} filled in)
    load: Callable[[LoadContext, list[str], list[str]], Records]
    # mock(models, datasets, rng, infos=None): random records; ``infos`` (dataset -> DatasetInfo)
    # gives real class names when the check runs on real datasets
    mock: Callable[..., Records]
    # partial: records exist for some models only by nature (published for a subset); the
    # uncovered models are not candidates for the method, and coverage says so
    partial: bool = False
    # the part of a record a target view holds (default: without LABEL_META metadata)
    for_target: Callable[[Record], Record] | None = None
    # arrays that hold strings (class names, ids); every other array must hold numbers
    string_arrays: tuple[str, ...] = ()
    # the target's part carries labels of a few of its images: a method requiring this kind
    # is in the labelled-target setting (a stronger one), marked on every leaderboard page
    target_labels: bool = False
    # the pack (and ``extract`` subcommand) the records come from, when not ``name``: kinds
    # that read one pack differently (few-images / few-labelled-images)
    pack: str = ""

    @property
    def pack_kind(self) -> str:
        """The pack kind (``extract`` subcommand) that makes this kind's records."""
        return self.pack or self.name

    def target_part(self, record: Record) -> Record:
        """What a selector sees of ``record`` when its dataset is the held-out target."""
        return (self.for_target or without_label_meta)(record)

    def command(self, models: Iterable[str], datasets: Iterable[str]) -> str:
        return self.extract.format(models=",".join(models), datasets=",".join(datasets))


def without_label_meta(record: Record) -> Record:
    """``record`` without the metadata that reveals labels (:data:`LABEL_META`)."""
    if not any(k in record.meta for k in LABEL_META):
        return record
    meta = {k: v for k, v in record.meta.items() if k not in LABEL_META}
    return Record(record.kind, record.model, record.dataset, record.arrays,
                  MappingProxyType(meta))


def check_numeric(record: Record, string_arrays: Iterable[str] = ()) -> None:
    """Refuse (one line) a record whose arrays hold strings where numbers are expected."""
    allowed = set(string_arrays)
    for name, a in record.arrays.items():
        if name not in allowed and a.dtype.kind not in "biuf":
            raise FeaturePackError(
                f"{record.kind} record of {record.model} on {record.dataset}: array {name!r} "
                f"holds {a.dtype} values, expected numbers; re-extract it")


def load_packs(kind: str, ctx: LoadContext, models: list[str], datasets: list[str]) -> Records:
    """Every present record of ``kind`` for ``models x datasets`` (absent ones are skipped)."""
    out: Records = {}
    for model in models:
        have = set(ctx.store.datasets(kind, model))
        if not have & set(datasets):
            continue
        extractor = ctx.store.extractor(kind, model)
        if extractor and extractor.params.get("random_init") and not ctx.allow_random_init:
            raise FeaturePackError(
                f"the {kind} pack of {model} was extracted with --random-init (a smoke test, "
                f"not real features); pass --allow-random-init to use it anyway"
            )
        strings = KINDS[kind].string_arrays if kind in KINDS else ()
        for d in datasets:
            if d in have:
                out[(model, d)] = rec = ctx.store.read(kind, model, d)
                check_numeric(rec, strings)
    return out


def _mock_conductance(models: list[str], datasets: list[str], rng: np.random.Generator,
                      infos=None) -> Records:
    """Random conductance records; their metadata, as a pack's, names the images (``<class
    folder>/<file>``, class names from ``infos`` when given)."""
    out: Records = {}
    for m in models:
        n_blocks = int(rng.integers(3, 7))  # blocks differ between models, as in real zoos
        for d in datasets:
            values = rng.gamma(2.0, 1.0, size=(30, n_blocks)) * rng.uniform(0.5, 2, n_blocks)
            names = infos[d].classnames if infos and d in infos else ("a", "b")
            ids = [f"{names[i % len(names)]}/{i:05d}.png" for i in range(30)]
            out[(m, d)] = Record.make("conductance", m, d, {"values": values},
                                      {"image_ids": ids, "n_images": 30, "source": "mock"})
    return out


def _lazy(module: str, attr: str) -> Callable:
    """``module.attr``, imported on first call: kind modules import this one (no cycle)."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__qualname__ = f"{module}.{attr}"
    return call


_KINDS: dict[str, FeatureKind] = {
    "conductance": FeatureKind(
        name="conductance",
        description="per-image block conductance vectors c_m(x) (DCD), from feature packs",
        needs="needs conductance features",
        extract="python -m benchmark extract conductance --models {models} --datasets {datasets}",
        load=lambda ctx, models, datasets: load_packs("conductance", ctx, models, datasets),
        mock=_mock_conductance,
    ),
    # ModelGPT (LOVM): published CSV rows (the 6 text columns only), else packs; the module
    # is imported when used (it imports this one)
    "text-features": FeatureKind(
        name="text-features",
        description="LOVM's 6 ModelGPT text features per (model, dataset): its published CSV "
        "(text columns only), else feature packs",
        needs="needs text features",
        extract="python -m benchmark extract text-features --models {models} --datasets {datasets}",
        load=_lazy("benchmark.features.text_features", "load"),
        mock=_lazy("benchmark.features.text_features", "mock"),
        partial=True,
    ),
    # MLL (methods/mll/selector.py): per-model labels on the concept graph + the target's class captions
    "model-labels": FeatureKind(
        name="model-labels",
        description="MLL model labels: image embeddings of the concept graph's node images "
        "(WordNet; minizoo: its world's vocabulary) and text embeddings of their captions, per "
        "model (feature packs), with the targets' captions",
        needs="needs model labels",
        extract="python -m benchmark extract model-labels --models {models}",
        load=_lazy("benchmark.features.model_labels", "load"),
        mock=_lazy("benchmark.features.model_labels", "mock"),
        string_arrays=("node_ids", "image_ids"),
    ),
    # SWAB's full method (methods/swab/selectors.py): per-class statistics of each model, from packs only
    "class-stats": FeatureKind(
        name="class-stats",
        description="per-class zero-shot accuracy, mean image embedding and text embeddings "
        "(SWAB's class-level ranks and modality gaps), from feature packs",
        needs="needs class-stats features",
        extract="python -m benchmark extract class-stats --models {models} --datasets {datasets}",
        load=_lazy("benchmark.features.class_stats", "load"),
        mock=_lazy("benchmark.features.class_stats", "mock"),
        # a target sees the text-derived fields only (SWAB's gap correction of the target);
        # per-class accuracies and image statistics are the sources'
        for_target=_lazy("benchmark.features.class_stats", "target_record"),
        string_arrays=("classnames",),
    ),
    # issue 14, few-image methods (benchmark/features/few_images.py): one pack, two kinds
    "few-images": FeatureKind(
        name="few-images",
        description="image embeddings and zero-shot logits of a few seeded test images per "
        "(model, dataset), without their labels (unlabelled setting), from feature packs",
        needs="needs few-images features",
        extract="python -m benchmark extract few-images --models {models} --datasets {datasets}",
        load=_lazy("benchmark.features.few_images", "load_unlabelled"),
        mock=_lazy("benchmark.features.few_images", "mock_unlabelled"),
    ),
    "few-labelled-images": FeatureKind(
        name="few-labelled-images",
        description="the few-images records with the images' labels, the target's included "
        "(labelled-target setting), from the few-images packs",
        needs="needs few-images features",
        extract="python -m benchmark extract few-images --models {models} --datasets {datasets}",
        load=_lazy("benchmark.features.few_images", "load_labelled"),
        mock=_lazy("benchmark.features.few_images", "mock_labelled"),
        target_labels=True,
        pack="few-images",
    ),
}
#: the feature kinds, fixed at start-up (read-only)
KINDS: Mapping[str, FeatureKind] = MappingProxyType(_KINDS)


def extractable(model: str) -> bool:
    """Whether the extraction stage can load ``model``: open_clip models, and SWAB's BLIP /
    BEiT-3 retrieval models (``benchmark.extract.towers``; all 48 of ``dcd48``)."""
    from benchmark.data.zoo import NON_OPENCLIP, TOWER_MODELS

    return model not in NON_OPENCLIP or model in TOWER_MODELS



def labelled_target(requires: Iterable[str]) -> bool:
    """Whether a method requiring ``requires`` sees labels of the target's images (the
    labelled-target setting, :attr:`FeatureKind.target_labels`)."""
    return any(k in KINDS and KINDS[k].target_labels for k in requires)


def get_kind(name: str) -> FeatureKind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown feature kind {name!r} (valid: {', '.join(KINDS)})") from None


def register(kind: FeatureKind) -> None:
    """Refused: the kinds are fixed at start-up (a kind registered by a module imported later
    could serve anything, accuracies included). A new kind is an entry of ``KINDS`` in this
    file, reviewed like any other code."""
    raise UsageError(
        f"feature kind {getattr(kind, 'name', kind)!r}: feature kinds are fixed at start-up "
        f"({', '.join(KINDS)}); add a kind to KINDS in benchmark/features/kinds.py instead of "
        f"registering it at run time")


def group_missing(pairs: Iterable[tuple[str, str]]) -> Mapping[str, list[str]]:
    """model -> missing datasets, for one line per model in error messages."""
    out: dict[str, list[str]] = {}
    for m, d in pairs:
        out.setdefault(m, []).append(d)
    return out
