"""Feature kinds: how the harness obtains each kind of feature a selector may ``require``.

A kind knows where its records come from (feature packs written by ``python -m benchmark
extract``, or published files read through the data layer), the command that makes missing
ones, and how to fabricate random records of the right shape for the conformance check
(``benchmark check``). Adding a kind = one :class:`FeatureKind` entry in :data:`KINDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.data.upstream import DataLayer
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
    mock: Callable[[list[str], list[str], np.random.Generator], Records]
    # partial: records exist for some models only by nature (published for a subset); the
    # uncovered models are not candidates for the method, and coverage says so
    partial: bool = False

    def command(self, models: Iterable[str], datasets: Iterable[str]) -> str:
        return self.extract.format(models=",".join(models), datasets=",".join(datasets))


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
        for d in datasets:
            if d in have:
                out[(model, d)] = ctx.store.read(kind, model, d)
    return out


def _mock_conductance(models: list[str], datasets: list[str], rng: np.random.Generator) -> Records:
    out: Records = {}
    for m in models:
        n_blocks = int(rng.integers(3, 7))  # blocks differ between models, as in real zoos
        for d in datasets:
            values = rng.gamma(2.0, 1.0, size=(30, n_blocks)) * rng.uniform(0.5, 2, n_blocks)
            out[(m, d)] = Record.make("conductance", m, d, {"values": values})
    return out


def _lazy(module: str, attr: str) -> Callable:
    """``module.attr``, imported on first call: kind modules import this one (no cycle)."""

    def call(*args):
        return getattr(importlib.import_module(module), attr)(*args)

    call.__qualname__ = f"{module}.{attr}"
    return call


KINDS: dict[str, FeatureKind] = {
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
    # MLL (methods/mll/selector.py): per-model labels on the WordNet graph + the target's class captions
    "model-labels": FeatureKind(
        name="model-labels",
        description="MLL model labels: image embeddings of the WordNet nodes' images and text "
        "embeddings of their captions, per model (feature packs), with the targets' captions",
        needs="needs model labels",
        extract="python -m benchmark extract model-labels --models {models}",
        load=_lazy("benchmark.features.model_labels", "load"),
        mock=_lazy("benchmark.features.model_labels", "mock"),
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
    ),
}


def extractable(model: str) -> bool:
    """Whether the extraction stage can load ``model`` (open_clip models only)."""
    from benchmark.data.zoo import NON_OPENCLIP

    return model not in NON_OPENCLIP


def get_kind(name: str) -> FeatureKind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown feature kind {name!r} (valid: {', '.join(KINDS)})") from None


def register(kind: FeatureKind) -> None:
    """Add a kind (used by method modules that ship their own feature kinds)."""
    KINDS[kind.name] = kind


def group_missing(pairs: Iterable[tuple[str, str]]) -> Mapping[str, list[str]]:
    """model -> missing datasets, for one line per model in error messages."""
    out: dict[str, list[str]] = {}
    for m, d in pairs:
        out.setdefault(m, []).append(d)
    return out
