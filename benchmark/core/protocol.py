"""Protocols: which models compete on which target datasets, under which ground truth.

A :class:`Protocol` is a frozen value: zoo, target datasets, ground-truth sources (in order of
preference, per cell), seeds, metric variants, and coverage notes. Leave-one-dataset-out: every
dataset of the protocol is the target once (:meth:`Protocol.folds`), the others are its
sources. A model without a published cell on a target is not a candidate there (never filled).
ImageNet-1k accuracy is side information (the INB baseline, ModelGPT's IN-score), never a target.

Named protocols:

- ``dcd48`` (default): SWAB's 43 models + the DCD paper's 5 extra open_clip models, on LOVM's
  23 datasets minus ``imagenet1k`` and ``clevr_count_all`` (21).
- ``lovm``: LOVM's 35 models on its 23 datasets minus ``imagenet1k`` (LOVM's table).
- ``swab``: SWAB's 43 models on the same 22 datasets (SWAB's table).
- ``mll``: MLL's 49 models on MLL's 17 targets, where open_clip's docs or LOVM publish top-1.
- ``lovm-upstream``, ``swab-upstream``: REPRODUCTION protocols (:data:`REPRODUCTION_PROTOCOLS`):
  what ``orrzohar/LOVM`` and ``YCaigogogo/SWAB`` compute, leakage included -- all 23 datasets
  (ImageNet-1k a target and a source as well as INB's side information), LOVM's tau, R@5, one
  seed. Never in the main leaderboard tables; ``python -m benchmark upstream-gap`` decomposes
  their numbers into the artefacts (:mod:`benchmark.studies.upstream_gap`).

Custom protocols: a TOML file (:func:`load_protocol_file`; ``--protocol path/to/my.toml``
wherever a protocol name is accepted) with the fields of :data:`PROTOCOL_FILE_FIELDS`, e.g. a
zoo with a new model whose ground truth comes from a ground-truth pack (``gt_sources`` with
``"packs"``; ``python -m benchmark extract ground-truth``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.metrics import MetricConfig
from benchmark.data import zoo
from benchmark.data.catalog import unknown_message
from benchmark.data.groundtruth import GroundTruth, assemble
from benchmark.data.upstream import DataLayer

SIDE_DATASET = "imagenet1k"
DEFAULT_SEEDS = tuple(range(10))
#: Protocols that reproduce upstream code on purpose, leakage included (ImageNet-1k both side
#: information and a target, feature subsets chosen on the test targets). The ONLY exemption
#: from the leakage guards (:func:`is_reproduction`): by exact name, nowhere else.
REPRODUCTION_PROTOCOLS = frozenset({"lovm-upstream", "swab-upstream"})


def is_reproduction(name: str) -> bool:
    """Whether protocol ``name`` is exempt from the leakage guards (:data:`REPRODUCTION_PROTOCOLS`)."""
    return name in REPRODUCTION_PROTOCOLS


def validate_seeds(seeds, what: str = "seeds") -> tuple[int, ...]:
    """``seeds`` as a tuple of distinct integers >= 0, at least one; else ``ValueError``
    naming the bad value."""
    import operator

    values = []
    for x in tuple(seeds):
        try:
            if isinstance(x, bool):
                raise TypeError
            values.append(operator.index(x))
        except TypeError:
            raise ValueError(f"{what}: seed {x!r} is not an integer") from None
    if not values:
        raise ValueError(f"{what}: no seed given (e.g. 10 for seeds 0..9, or 0,1,2)")
    for v in values:
        if v < 0:
            raise ValueError(f"{what}: seed {v} is negative (seeds are integers >= 0)")
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{what}: seed {dupes[0]} listed twice (each seed once)")
    return tuple(values)

LOVM_DATASETS = (
    "cars", "cifar100", "clevr_closest_object_distance", "clevr_count_all", "country211",
    "diabetic_retinopathy", "dmlab", "dtd", "eurosat", "fer2013", "flowers", "gtsrb",
    "imagenet1k", "kitti_closest_vehicle_distance", "mnist", "pcam", "pets", "renderedsst2",
    "resisc45", "stl10", "sun397", "svhn", "voc2007",
)  # fmt: skip
LOVM_TARGETS = tuple(d for d in LOVM_DATASETS if d != SIDE_DATASET)
DCD_TARGETS = tuple(d for d in LOVM_TARGETS if d != "clevr_count_all")
MLL_TARGETS = (
    "cifar100", "country211", "dtd", "food101", "mnist", "pets", "renderedsst2", "cars", "stl10",
    "ucf101", "pcam", "flowers", "fer2013", "resisc45", "gtsrb",
    "clevr_closest_object_distance", "dmlab",
)  # fmt: skip

#: the 13 target tasks of the synthetic world (benchmark/minizoo/world.py TARGETS)
MINIZOO_TARGETS = (
    "mz_colour", "mz_pattern", "mz_size", "mz_count", "mz_position", "mz_background",
    "mz_colour_lowlight", "mz_colour_noise", "mz_pattern_invert", "mz_background_invert",
    "mz_size_blur", "mz_count_blur", "mz_background_noise",
)  # fmt: skip

FER_NOTE = "SWAB evaluated FER2013 on the train split (its eval_table.csv), not the test split."
SVHN_NOTE = (
    "open_clip's SVHN column (used for models outside LOVM/SWAB) disagrees with LOVM and "
    "CLIP_benchmark by up to 21 points on shared models; kept, but compare SVHN with care."
)


@dataclass(frozen=True)
class Fold:
    target: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    zoo: tuple[str, ...]
    datasets: tuple[str, ...]  # targets; each is a source for the others
    gt_sources: tuple[str, ...]  # per cell, the first source that publishes it
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    metrics: MetricConfig = field(default_factory=MetricConfig)
    notes: tuple[str, ...] = ()
    citation: str = ""
    #: the broad side dataset (INB's and ModelGPT's "ImageNet" score), never a target
    side_dataset: str = SIDE_DATASET
    #: models trained and ground truth measured on this machine (minizoo): numbers are not
    #: bit-identical across hosts, so the leaderboard check compares structure, not digits
    measured_here: bool = False
    #: MLL's concept graph (methods.mll.graph.CONCEPT_SOURCES): WordNet, or minizoo's world
    concepts: str = "wordnet"

    def folds(self) -> list[Fold]:
        return [
            Fold(t, tuple(d for d in self.datasets if d != t)) for t in self.datasets
        ]

    def with_options(self, **changes) -> Protocol:
        if "seeds" in changes:
            changes["seeds"] = validate_seeds(changes["seeds"])
        return replace(self, **changes)

    def restrict_zoo(self, models: list[str]) -> Protocol:
        """The same protocol on a subset of its zoo (zoo order kept); at least 2 models."""
        unknown = [m for m in models if m not in self.zoo]
        if unknown:
            raise KeyError(unknown_message("model", unknown[0], list(self.zoo)))
        keep = set(models)
        if len(keep) < 2:
            raise ValueError(f"a ranking needs at least 2 models, got {len(keep)} "
                             f"({', '.join(sorted(keep)) or 'none'})")
        return replace(self, zoo=tuple(m for m in self.zoo if m in keep))

    def restrict_datasets(self, datasets: list[str]) -> Protocol:
        """The same protocol on a subset of its datasets (each still held out in turn)."""
        unknown = [d for d in datasets if d not in self.datasets]
        if unknown:
            d = unknown[0]
            if d == self.side_dataset and not is_reproduction(self.name):
                raise ValueError(f"dataset {d!r} is side information (INB's and ModelGPT's "
                                 f"ImageNet score), never a target or source of {self.name}; "
                                 f"its datasets: {', '.join(self.datasets)}")
            raise KeyError(unknown_message("dataset", d, list(self.datasets)))
        keep = set(datasets)
        if len(keep) < 2:
            raise ValueError("leave-one-dataset-out needs at least 2 datasets")
        return replace(self, datasets=tuple(d for d in self.datasets if d in keep))

    def load(self, data: DataLayer, store=None, allow_random_init: bool = False) -> ProtocolData:
        """Resolve the ground truth (``store``, ``allow_random_init``: the ``packs`` source)."""
        gt = assemble(data, list(self.zoo), [*self.datasets, self.side_dataset], self.gt_sources,
                      store=store, allow_random_init=allow_random_init)
        return ProtocolData(self, gt)


@dataclass(frozen=True)
class ProtocolData:
    """A protocol with its ground truth resolved (held by the harness, never by a selector)."""

    protocol: Protocol
    ground_truth: GroundTruth  # targets + the side dataset

    @cached_property
    def targets_gt(self) -> GroundTruth:
        return self.ground_truth.restrict(datasets=list(self.protocol.datasets))

    @cached_property
    def imagenet(self) -> pd.Series:
        """ImageNet-1k top-1 per model (side information; NaN-free, may miss models); the
        protocol's own broad side dataset where it has one (minizoo)."""
        m = self.ground_truth.matrix
        side = self.protocol.side_dataset
        return m[side].dropna().rename(SIDE_DATASET) if side in m else pd.Series(dtype=float)

    def candidates(self, target: str) -> tuple[str, ...]:
        """Zoo models with a published cell on ``target`` (zoo order)."""
        return self._candidates.get(target, ())

    @cached_property
    def _candidates(self) -> dict[str, tuple[str, ...]]:
        m = self.targets_gt.matrix
        out = {}
        for d in m.columns:
            have = set(m.index[m[d].notna().to_numpy()])
            out[d] = tuple(x for x in self.protocol.zoo if x in have)
        return out

    def coverage(self) -> pd.DataFrame:
        """One row per target: candidates, zoo size, ground-truth sources, missing models."""
        rows = []
        t = self.targets_gt.table
        for d in self.protocol.datasets:
            cands = self.candidates(d)
            srcs = sorted(t.loc[t["dataset"] == d, "source"].unique())
            missing = [m for m in self.protocol.zoo if m not in set(cands)]
            rows.append(
                {
                    "target": d,
                    "candidates": len(cands),
                    "zoo": len(self.protocol.zoo),
                    "sources": ",".join(srcs),
                    "missing": ", ".join(missing),
                }
            )
        return pd.DataFrame(rows)

    def evaluable_targets(self) -> tuple[str, ...]:
        """Targets with at least two candidates (a ranking needs two)."""
        return tuple(d for d in self.protocol.datasets if len(self.candidates(d)) >= 2)


#: world seeds of the minizoo seed-spread study besides 0 (``minizoo-s<N>``, perf/minizoo_seeds.py);
#: measured here like ``minizoo`` but never in leaderboard/runs.toml
MINIZOO_SEED_STUDY = (1, 2)


def minizoo_name(world_seed: int) -> str:
    """``minizoo`` for world seed 0 (the protocol), ``minizoo-s<N>`` for the others."""
    return "minizoo" if int(world_seed) == 0 else f"minizoo-s{int(world_seed)}"


def minizoo_protocol(world_seed: int = 0) -> Protocol:
    """The minizoo protocol of one world seed: the same models, targets and settings, the zoo
    trained on that seed's world (``zoo.minizoo_ids``). Seed 0 is ``minizoo`` exactly."""
    n = int(world_seed)
    if n == 0:
        desc = ("SYNTHETIC: 12 tiny open_clip models trained here x 13 tasks of a "
                "synthetic world (python -m benchmark zoo train minizoo)")
    else:
        desc = (f"SYNTHETIC: minizoo on world seed {n}, for the seed-spread study "
                f"(perf/minizoo_seeds.py; python -m benchmark zoo build minizoo --seed {n})")
    return Protocol(
        name=minizoo_name(n),
        description=desc,
        zoo=zoo.MINIZOO_12 if n == 0 else zoo.minizoo_ids(n),
        datasets=MINIZOO_TARGETS,
        gt_sources=("packs",),
        seeds=(0, 1, 2),
        side_dataset="mz_broad",
        measured_here=True,
        concepts="minizoo",
        notes=(
            "A synthetic zoo: tiny CLIP models trained on this machine on a synthetic "
            "world (benchmark/minizoo); its numbers say nothing about published models.",
            "Ground truth measured by `extract ground-truth` on the trained checkpoints; "
            "mz_broad (colour x shape, all domains) plays ImageNet-1k's part.",
        ),
        citation="benchmark/minizoo (issue 12)",
    )


def minizoo_seed(protocol: Protocol) -> int | None:
    """The world seed of a minizoo protocol (``None``: not one)."""
    if protocol.name == "minizoo":
        return 0
    m = re.fullmatch(r"minizoo-s(\d+)", protocol.name)
    return int(m.group(1)) if m and protocol.measured_here else None



def _protocols() -> dict[str, Protocol]:
    lovm_cite = "Zohar et al., LOVM: Language-Only Vision Model Selection, NeurIPS 2023 D&B."
    swab_cite = "Yi et al., Bridge the Modality and Capability Gaps in VLM Selection, NeurIPS 2024."
    return {
        "dcd48": Protocol(
            name="dcd48",
            description="48 models (SWAB's 43 + 5 open_clip models) x 21 datasets (DCD paper)",
            zoo=zoo.DCD_48,
            datasets=DCD_TARGETS,
            gt_sources=("swab", "openclip"),
            notes=(
                FER_NOTE,
                "The 5 models outside SWAB's table (" + ", ".join(zoo.DCD_EXTRA_5) + ") take "
                "their ground truth from open_clip's results table, which has no FER2013, DMLab "
                "or Diabetic Retinopathy column and reports mean per-class recall (not top-1) "
                "on Flowers and Pets: they are not candidates on those 5 targets.",
                SVHN_NOTE,
            ),
            citation="Model-Specific Task Similarity for VLM Selection via Layer Conductance.",
        ),
        "lovm": Protocol(
            name="lovm",
            description="LOVM's 35 open_clip models x its 22 target datasets (LOVM's table)",
            zoo=zoo.LOVM_35,
            datasets=LOVM_TARGETS,
            gt_sources=("lovm",),
            citation=lovm_cite,
        ),
        "swab": Protocol(
            name="swab",
            description="SWAB's 43 models (LOVM's 35 + BLIP + BEiT-3) x 22 datasets (SWAB's table)",
            zoo=zoo.SWAB_43,
            datasets=LOVM_TARGETS,
            gt_sources=("swab",),
            notes=(FER_NOTE,),
            citation=swab_cite,
        ),
        "mll": Protocol(
            name="mll",
            description="MLL's 49 models x its 17 targets, where top-1 is published",
            zoo=zoo.MLL_49,
            datasets=MLL_TARGETS,
            gt_sources=("openclip", "lovm"),
            notes=(
                "Ground truth from open_clip's results table, then LOVM's table; MLL's own "
                "evaluation is not published. UCF101 has no published top-1 for these models: "
                "not evaluated. FER2013 and DMLab (absent from open_clip's table) and Flowers "
                "and Pets (open_clip reports mean per-class recall) cover only LOVM's models.",
                SVHN_NOTE,
            ),
            citation="Tan et al., Vision-Language Model Selection and Reuse for Downstream "
            "Adaptation (Model Label Learning), ICML 2025.",
        ),
        **{p.name: p for p in (minizoo_protocol(n) for n in (0, *MINIZOO_SEED_STUDY))},
        **{
            name: Protocol(
                name=name,
                description=f"REPRODUCTION of {repo}'s own code (leakage included): {zoo_desc} "
                            "x its 23 datasets, ImageNet-1k a target too; LOVM's tau, R@5",
                zoo=zoo_ids,
                datasets=LOVM_DATASETS,
                gt_sources=(gt,),
                seeds=(0,),
                metrics=MetricConfig(ks=(5,), tau_variant="lovm"),
                notes=(REPRODUCTION_NOTE, *extra),
                citation=cite,
            )
            for name, repo, zoo_desc, zoo_ids, gt, extra, cite in (
                ("lovm-upstream", "orrzohar/LOVM", "LOVM's 35 models", zoo.LOVM_35, "lovm",
                 (), lovm_cite),
                ("swab-upstream", "YCaigogogo/SWAB", "SWAB's 43 models", zoo.SWAB_43, "swab",
                 (FER_NOTE,), swab_cite),
            )
        },
    }


REPRODUCTION_NOTE = (
    "Reproduction protocol: reproduces the upstream code's numbers, NOT a clean evaluation. "
    "ImageNet-1k is a target and a source while also INB's and ModelGPT's side information "
    "(its truth reaches the selectors, as in the upstream code); numbers here are not "
    "comparable with the clean protocols (`python -m benchmark upstream-gap`)."
)
PROTOCOLS = _protocols()
DEFAULT_PROTOCOL = "dcd48"


def get_protocol(name: str) -> Protocol:
    """A named protocol, or the protocol a ``.toml`` file defines."""
    if str(name).endswith(".toml"):
        return load_protocol_file(name)
    if name not in PROTOCOLS and (m := re.fullmatch(r"minizoo-s([1-9][0-9]*)", str(name))):
        return minizoo_protocol(int(m.group(1)))  # any world seed of the seed-spread study
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(unknown_message("protocol", name, list(PROTOCOLS))) from None


# -- protocol files ---------------------------------------------------------------------------
class ProtocolFileError(ValueError):
    """A protocol file is unreadable or invalid (one line naming the file and the field)."""


#: field -> (required, what it holds)
PROTOCOL_FILE_FIELDS: dict[str, tuple[bool, str]] = {
    "name": (True, "short name, letters/digits/._- (results go to results/<name>/)"),
    "description": (False, "one line"),
    "zoo": (True, "list of model ids 'ARCH:pretrained'"),
    "datasets": (True, "list of >= 2 target dataset ids (`python -m benchmark list datasets`)"),
    "gt_sources": (True, "list of ground-truth sources, first publisher wins per cell"),
    "seeds": (False, "number of seeds (10 -> 0..9) or a list of seeds"),
    "notes": (False, "list of strings (coverage remarks shown with the results)"),
    "citation": (False, "string"),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def load_protocol_file(path: str | Path) -> Protocol:
    """The :class:`Protocol` of a TOML file; :class:`ProtocolFileError` (one line naming the
    bad field and value) when it is invalid."""
    from benchmark.data._toml import load_toml
    from benchmark.data.catalog import UnknownDatasetError, entry
    from benchmark.data.groundtruth import SOURCES

    path = Path(path)

    def bad(what: str) -> ProtocolFileError:
        return ProtocolFileError(f"protocol file {path}: {what}")

    if not path.is_file():
        raise bad("not found")
    try:
        raw = load_toml(path)
    except Exception as err:  # tomllib.TOMLDecodeError, OSError, UnicodeDecodeError
        raise bad(f"not valid TOML ({err})") from None
    for key in raw:
        if key not in PROTOCOL_FILE_FIELDS:
            raise bad(unknown_message("field", key, list(PROTOCOL_FILE_FIELDS)).replace(
                "; see `python -m benchmark list fields`", ""))
    for key, (required, what) in PROTOCOL_FILE_FIELDS.items():
        if required and key not in raw:
            raise bad(f"field {key!r} is missing ({what})")

    def strings(key: str, minimum: int = 1) -> tuple[str, ...]:
        value = raw[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad(f"field {key!r} must be a list of non-empty strings, got {value!r}")
        if len(value) < minimum:
            raise bad(f"field {key!r} needs at least {minimum} entr"
                      f"{'y' if minimum == 1 else 'ies'}, got {len(value)}")
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise bad(f"field {key!r} lists {dupes[0]!r} twice")
        return tuple(value)

    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad(f"field 'name' must be letters, digits, '.', '_' or '-', got {name!r}")
    if name in PROTOCOLS:
        raise bad(f"field 'name' {name!r} is a built-in protocol; choose another name")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise bad(f"field 'description' must be a string, got {description!r}")
    zoo = strings("zoo")
    for m in zoo:
        arch, sep, pretrained = m.partition(":")
        if not (arch and sep and pretrained) or "/" in m or "__" in m:
            raise bad(f"field 'zoo': model id {m!r} is not of the form 'ARCH:pretrained'")
    datasets = strings("datasets", minimum=2)
    for d in datasets:
        try:
            e = entry(d)
        except UnknownDatasetError as err:
            raise bad(f"field 'datasets': {err}") from None
        if e.get("side_info_only"):
            raise bad(f"field 'datasets': {d!r} is side information (INB), never a target")
    gt_sources = strings("gt_sources")
    for g in gt_sources:
        if g not in SOURCES:
            raise bad(f"field 'gt_sources': {unknown_message('source', g, list(SOURCES))}"
                      .replace("; see `python -m benchmark list sources`", ""))
    seeds = raw.get("seeds", len(DEFAULT_SEEDS))
    if isinstance(seeds, bool):
        seeds = None
    if isinstance(seeds, int) and seeds >= 1:
        seeds = tuple(range(seeds))
    elif (isinstance(seeds, list) and seeds and len(set(seeds)) == len(seeds)
          and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)):
        seeds = tuple(seeds)
    else:
        raise bad(f"field 'seeds' must be a count >= 1 or a list of distinct seeds >= 0, "
                  f"got {raw.get('seeds')!r}")
    notes: Any = raw.get("notes", [])
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise bad(f"field 'notes' must be a string or a list of strings, got {notes!r}")
    citation = raw.get("citation", "")
    if not isinstance(citation, str):
        raise bad(f"field 'citation' must be a string, got {citation!r}")
    return Protocol(
        name=name,
        description=description or f"custom protocol ({path.name})",
        zoo=zoo,
        datasets=datasets,
        gt_sources=gt_sources,
        seeds=seeds,
        notes=(*notes, f"Custom protocol defined in {path}."),
        citation=citation,
    )
