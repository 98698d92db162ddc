"""The leave-one-dataset-out harness: views in, scores out, metrics per fold.

For every method, seed and target ``t`` of a protocol:

1. ``TrainView``: the sources ``datasets - {t}``, their ground truth (built from a table with
   the target's rows removed), their features;
2. ``TargetView``: ``t``'s metadata, its candidates (models with a published cell on ``t`` and,
   for a method that requires features, with those features on ``t``), its features;
3. ``selector = make(method).fit(train)``; ``scores = selector.score(target)``;
4. the metrics of ``scores`` against ``t``'s ground truth, computed here, outside the selector;
   where the ground-truth packs of ``t``'s candidates hold per-image predictions (``minizoo``),
   also MLL's reuse metric ``ens@3`` (:func:`benchmark.core.metrics.top_k_ensemble_accuracy`).

A fresh selector is made for every fold. A method that is not ``stochastic`` is run for the
first seed only and its rows are repeated for the other seeds (its scores cannot depend on
the seed; ``benchmark check`` verifies it). Deterministic given the seeds.

A target view holds the target's part of each feature record only
(:meth:`benchmark.features.kinds.FeatureKind.target_part`: no per-class accuracies, no image
ids). ImageNet-1k, the side information every view carries, is never a target here, except in
the reproduction protocols (:data:`benchmark.core.protocol.REPRODUCTION_PROTOCOLS`). Bad run
parameters (duplicated or negative seeds, no target with two candidates) are refused before
any fold runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

import methods as method_registry
from benchmark.core.metrics import ENSEMBLE_K, top_k, top_k_ensemble_accuracy
from benchmark.core.protocol import (
    PROTOCOLS,
    Protocol,
    ProtocolData,
    is_reproduction,
    validate_seeds,
)
from benchmark.core.views import DenseTable, FeatureView, TargetView, TrainView
from benchmark.data.catalog import Catalog, DatasetInfo
from benchmark.data.groundtruth import GroundTruth
from benchmark.data.upstream import DataLayer
from benchmark.features.kinds import LoadContext, extractable, get_kind, group_missing
from benchmark.features.store import FeatureStore

log = logging.getLogger(__name__)
SCORE_COLUMNS = ["method", "protocol", "seed", "target", "metric", "k", "value"]


class MissingFeaturesError(RuntimeError):
    """Requested methods need features that are not in the cache.

    The message is short (what is missing, its estimated GPU-hours, the one command that
    extracts all of it, the way to scale it out, the minizoo command that runs now); the
    per-model commands are in :attr:`listing` (``run --list-missing`` prints them) and the
    missing records in :attr:`missing` (kind -> ``(model, dataset)`` pairs).
    """

    def __init__(self, message: str, listing: list[str] | None = None,
                 missing: Mapping[str, tuple] | None = None) -> None:
        super().__init__(message)
        self.listing = list(listing or [])
        self.missing = dict(missing or {})


class SelectorError(RuntimeError):
    """A selector returned something the harness cannot score."""


@dataclass(frozen=True)
class MethodRun:
    """A method as resolved for a run: registry name, class, parameters."""

    name: str
    cls: type
    params: Mapping

    @property
    def path(self) -> str:
        return f"{self.cls.__module__}:{self.cls.__qualname__}"

    @property
    def params_hash(self) -> str:
        blob = json.dumps({"class": self.path, "params": dict(self.params)}, sort_keys=True,
                          default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def make(self):
        return self.cls(**dict(self.params))

    def describe(self) -> dict:
        return {
            "class": self.path,
            "params": {k: v for k, v in self.params.items()},
            "params_hash": self.params_hash,
            "requires": list(self.cls.requires),
            "stochastic": bool(self.cls.stochastic),
            "citation": self.cls.citation,
            "target_needs": getattr(self.cls, "target_needs", "not declared"),
        }


def resolve_methods(names: list[str], overrides: Mapping[str, Mapping] | None = None):
    runs = []
    for n in names:
        display, cls, params = method_registry.resolve(n)
        # --set keys: the name given, the display name (the `name` attribute) or the class name
        given = next((overrides[k] for k in (n, display, cls.__name__) if k in (overrides or {})),
                     {})
        params = {**params, **dict(given)}
        valid = cls._param_names()
        bad = sorted(set(params) - set(valid))
        if bad:
            raise ValueError(f"unknown parameter {bad[0]!r} for method {display!r} "
                             f"(valid: {', '.join(valid) or 'none'})")
        runs.append(MethodRun(display, cls, MappingProxyType(params)))
    seen = [r.name for r in runs]
    dupes = {n for n in seen if seen.count(n) > 1}
    if dupes:
        raise ValueError(f"method(s) requested twice: {sorted(dupes)}")
    return runs


@dataclass
class RunResult:
    protocol: Protocol
    scores: pd.DataFrame  # SCORE_COLUMNS
    predictions: pd.DataFrame  # method, seed, target, model, score
    coverage: pd.DataFrame  # method, target, candidates, protocol_candidates, uncovered
    methods: list[MethodRun]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> reason
    timings: pd.DataFrame | None = None  # method, seed, target, seconds (fit + score)


class _Restricted(Mapping):
    """Read-only view of the records ``(model, dataset)`` whose dataset is in ``datasets``.

    Filters on access instead of copying: a fold's view of a large zoo costs nothing to build.
    """

    def __init__(self, records: Mapping, datasets: frozenset[str]) -> None:
        self._records, self._datasets = records, datasets
        self._keys: list | None = None

    def __getitem__(self, key):
        if key[1] not in self._datasets:
            raise KeyError(key)
        return self._records[key]

    def __contains__(self, key) -> bool:
        return key[1] in self._datasets and key in self._records

    def _all(self) -> list:
        if self._keys is None:
            self._keys = [k for k in self._records if k[1] in self._datasets]
        return self._keys

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class Harness:
    """Runs methods on one protocol. Holds ground truth; hands selectors only views."""

    def __init__(
        self,
        pdata: ProtocolData,
        infos: Mapping[str, DatasetInfo],
        ctx: LoadContext,
        features: Mapping[str, dict] | None = None,
        allow_partial: bool = False,
    ) -> None:
        side = pdata.protocol.side_dataset
        if side in pdata.protocol.datasets and not is_reproduction(pdata.protocol.name):
            raise ValueError(
                f"protocol {pdata.protocol.name}: {side} is side information (every "
                f"view's `imagenet`); as a target its truth would reach every selector. Only "
                f"the reproduction protocols may do this")
        self.allow_partial = allow_partial
        self.protocol = pdata.protocol
        self.pdata = pdata
        self.ctx = ctx
        self._infos = dict(infos)
        self._features: dict[str, dict] = dict(features or {})
        # Per-run caches of public, fold-independent values: a fold's views are the same for
        # every method and seed, so they are built once per (target, kinds).
        self._views: dict[tuple, FeatureView] = {}
        self._dense: dict[str, DenseTable] = {}
        self._by_dataset: dict[str, dict[str, dict]] = {}
        self._train_gt: dict[str, GroundTruth] = {}
        self._reuse: dict[str, tuple[np.ndarray, dict[str, np.ndarray], list[str]]] = {}
        self._frames: dict[str, pd.DataFrame] = {}  # zoo x datasets accuracy and ranks

    @classmethod
    def from_data(
        cls,
        protocol: Protocol,
        data: DataLayer,
        store: FeatureStore | None = None,
        allow_random_init: bool = False,
        allow_partial: bool = False,
    ) -> Harness:
        """The usual construction: ground truth and metadata through the data layer."""
        catalog = Catalog(data)
        infos = {d: catalog.info(d) for d in protocol.datasets}
        ctx = LoadContext(data, store or FeatureStore(), allow_random_init)
        pdata = protocol.load(data, ctx.store, allow_random_init)  # store: "packs" ground truth
        return cls(pdata, infos, ctx, allow_partial=allow_partial)

    # -- features -------------------------------------------------------------------------
    def features(self, kind: str) -> dict:
        if kind not in self._features:
            self._features[kind] = get_kind(kind).load(
                self.ctx, list(self.protocol.zoo), list(self.protocol.datasets)
            )
        return self._features[kind]

    def missing_records(self, method: MethodRun) -> dict[str, tuple[tuple[str, str], ...]]:
        """Kind -> the ``(model, dataset)`` records whose absence blocks ``method``.

        Strict kinds (conductance, ...) need a record for every candidate that can be
        extracted; models that cannot be (not open_clip: BLIP, BEiT-3) are simply not
        candidates for the method, as are all uncovered models of a ``partial`` kind (text
        features, published for LOVM's models only) or under ``allow_partial``. A method with
        no candidate on any target is always blocked (all its candidates' records listed).
        """
        out = {}
        targets = self.pdata.evaluable_targets()
        for kind in method.cls.requires:
            recs = self.features(kind)
            fk = get_kind(kind)
            wanted = [(m, d) for d in targets for m in self.pdata.candidates(d)]
            if fk.partial or self.allow_partial:
                if any(p in recs for p in wanted):
                    continue
                pairs = [p for p in wanted if extractable(p[0])] or wanted
            else:
                pairs = [p for p in wanted if p not in recs and extractable(p[0])]
            if pairs:
                out[kind] = tuple(pairs)
        return out

    def missing_features(self, method: MethodRun) -> list[str]:
        """One line per (kind, model) whose missing records block ``method``: its command."""
        lines = []
        targets = self.pdata.evaluable_targets()
        for kind, pairs in self.missing_records(method).items():
            fk = get_kind(kind)
            if fk.partial or self.allow_partial:
                lines.append(f"  {kind}: no records for any model of {self.protocol.name}: "
                             + fk.command(["MODEL,..."], targets))
                continue
            for model, datasets in group_missing(pairs).items():
                lines.append(
                    f"  {kind} for {model} on {len(datasets)} dataset(s): "
                    + fk.command([model], datasets)
                )
        return lines

    def check_available(self, methods: list[MethodRun], skip_unavailable: bool) -> dict[str, str]:
        """Fail fast (or skip, when asked) for methods whose features are missing."""
        skipped, blocked = {}, {}
        for m in methods:
            missing = self.missing_records(m)
            if not missing:
                continue
            if skip_unavailable:
                skipped[m.name] = "; ".join(get_kind(k).needs for k in missing)
                log.warning("skipping %s: %s", m.name, skipped[m.name])
            else:
                blocked[m.name] = missing
        if blocked:
            listing = []
            for m in methods:
                if m.name in blocked:
                    listing.append(f"{m.name} needs features that are not in "
                                   f"{self.ctx.store.root}:")
                    listing += self.missing_features(m)
            raise MissingFeaturesError(
                missing_message(self.protocol, blocked, [m.name for m in methods],
                                self.ctx.store.root, listing),
                listing=listing,
                missing={k: v for miss in blocked.values() for k, v in miss.items()})
        return skipped

    # -- views ----------------------------------------------------------------------------
    def candidates(self, method: MethodRun, target: str) -> tuple[str, ...]:
        cands = self.pdata.candidates(target)
        for kind in method.cls.requires:
            recs = self.features(kind)
            cands = tuple(m for m in cands if (m, target) in recs)
        return cands

    def _dense_table(self, kind: str) -> DenseTable:
        if kind not in self._dense:
            self._dense[kind] = DenseTable(self.features(kind))
        return self._dense[kind]

    def _records_of(self, kind: str, dataset: str) -> dict:
        """The records of ``kind`` on ``dataset`` (indexed by dataset once per run)."""
        if kind not in self._by_dataset:
            index: dict[str, dict] = {}
            for key, rec in self.features(kind).items():
                index.setdefault(key[1], {})[key] = rec
            self._by_dataset[kind] = index
        return self._by_dataset[kind].get(dataset, {})

    def _feature_views(self, kinds, datasets: frozenset[str],
                       target: bool = False) -> Mapping[str, FeatureView]:
        """Records of ``datasets``; for a target (``target``), the target's part of each.

        Built once per (kind, datasets, side) and run: the same for every method and seed.
        Only source views get the dense table of the full records; a target view gets a
        dense table of its own (target-part) records only.
        """
        views = {}
        for kind in kinds:
            key = (kind, datasets, target)
            if key not in self._views:
                part = get_kind(kind).target_part if target else None
                if target:
                    recs = {k: (part(r) if part else r) for d in datasets
                            for k, r in self._records_of(kind, d).items()}
                    self._views[key] = FeatureView(kind, datasets, MappingProxyType(recs),
                                                   dense=DenseTable(recs))
                else:
                    self._views[key] = FeatureView(
                        kind, datasets, _Restricted(self.features(kind), datasets),
                        dense=self._dense_table(kind))
            views[kind] = self._views[key]
        return MappingProxyType(views)

    def _sources_gt(self, target: str) -> GroundTruth:
        """The targets' ground truth without ``target``'s cells: ``restrict(datasets=sources)``
        (the sources are every other dataset of the protocol), by index."""
        if target not in self._train_gt:
            self._train_gt[target] = self.pdata.targets_gt.without(target)
        return self._train_gt[target]

    def _frame(self, name: str) -> pd.DataFrame:
        """zoo x datasets ``accuracy`` (as :attr:`TrainView.accuracy` builds it) or its
        ``ranks``, every target included: held here; a view gets its sources' ranks only."""
        if name not in self._frames:
            if name == "accuracy":
                self._frames[name] = self.pdata.targets_gt.matrix.reindex(
                    index=list(self.protocol.zoo), columns=list(self.protocol.datasets))
            else:  # ranks within a column do not depend on the other columns
                self._frames[name] = TrainView.rank_columns(self._frame("accuracy"))
        return self._frames[name]

    def train_view(self, target: str, seed: int, kinds=()) -> TrainView:
        sources = tuple(d for d in self.protocol.datasets if d != target)
        gt = self._sources_gt(target)
        assert target not in gt.matrix.columns, "target rows leaked into a TrainView"
        view = TrainView(
            protocol=self.protocol.name,
            seed=seed,
            imagenet=self.pdata.imagenet.copy(),
            features=self._feature_views(kinds, frozenset(sources)),
            sources=tuple(self._infos[d] for d in sources),
            models=self.protocol.zoo,
            ground_truth=gt,
        )
        # the view's ranks, equal to what it would compute from its ground truth (values and
        # memory layout, which numpy's reductions follow): a fresh copy of the sources' columns
        ranks = self._frame("ranks").reindex(columns=list(sources)).copy()
        assert target not in ranks.columns, "target column leaked into a TrainView"
        view.__dict__["ranks"] = ranks
        return view

    def target_view(self, target: str, seed: int, candidates, kinds=()) -> TargetView:
        return TargetView(
            protocol=self.protocol.name,
            seed=seed,
            imagenet=self.pdata.imagenet.copy(),
            features=self._feature_views(kinds, frozenset([target]), target=True),
            dataset=self._infos[target],
            candidates=tuple(candidates),
        )

    # -- reuse (per-image predictions of the ground-truth packs) ---------------------------
    def reuse_predictions(self, target: str) -> tuple[np.ndarray | None, dict[str, np.ndarray],
                                                      list[str]]:
        """``(labels, model -> logits, problems)`` on ``target``: the per-image predictions of
        the candidates whose ground-truth cell comes from a pack (``packs`` source), all on the
        same test images; ``problems``: one line per candidate left out (a pack without
        predictions names the command that adds them). Never seen by a selector."""
        if target in self._reuse:
            return self._reuse[target]
        from benchmark.data.groundtruth import pack_predictions
        from benchmark.features.store import FeaturePackError

        labels, ids, logits, problems = None, None, {}, []
        if "packs" in self.protocol.gt_sources:
            t = self.pdata.targets_gt.table
            packed = set(t.loc[(t["dataset"] == target) & (t["source"] == "packs"), "model"])
            for m in self.pdata.candidates(target):
                if m not in packed:
                    continue
                try:
                    p = pack_predictions(self.ctx.store, m, target)
                except FeaturePackError as err:
                    problems.append(str(err))
                    continue
                if labels is None:
                    labels, ids = p.labels, p.image_ids
                elif not np.array_equal(labels, p.labels) or ids != p.image_ids:
                    problems.append(f"the ground-truth record of {m} on {target} was computed "
                                    f"on other test images than the other candidates'")
                    continue
                logits[m] = p.logits
        self._reuse[target] = (labels, logits, problems)
        return self._reuse[target]

    def ensemble_metric(self, scores: pd.Series, target: str) -> float | None:
        """``ens@3`` of ``scores`` on ``target``, or None when a chosen model has no per-image
        predictions there."""
        labels, logits, _ = self.reuse_predictions(target)
        chosen = top_k(scores, ENSEMBLE_K)
        if labels is None or any(m not in logits for m in chosen):
            return None
        return top_k_ensemble_accuracy(scores, logits.__getitem__, labels, ENSEMBLE_K)

    # -- running --------------------------------------------------------------------------
    def score_fold(self, method: MethodRun, target: str, seed: int, candidates=None) -> pd.Series:
        kinds = method.cls.requires
        cands = self.candidates(method, target) if candidates is None else tuple(candidates)
        selector = method.make()
        fitted = selector.fit(self.train_view(target, seed, kinds))
        if fitted is not selector:
            raise SelectorError(f"{method.name}: fit() must return self")
        scores = selector.score(self.target_view(target, seed, cands, kinds))
        return validate_scores(method.name, target, scores, cands)

    def run(
        self,
        methods: list[MethodRun],
        seeds: tuple[int, ...] | None = None,
        skip_unavailable: bool = False,
        progress: bool = True,
        common_candidates: bool = False,
    ) -> RunResult:
        """All folds of all methods. ``common_candidates``: every method ranks, on each target,
        only the models every requested method covers (a like-for-like comparison)."""
        from tqdm.auto import tqdm

        seeds = validate_seeds(seeds if seeds is not None else self.protocol.seeds)
        targets = self.pdata.evaluable_targets()
        if not targets:
            raise ValueError(
                f"no target of {self.protocol.name} has 2 or more candidate models (zoo: "
                f"{len(self.protocol.zoo)} model(s)); a ranking needs at least 2")
        skipped = self.check_available(methods, skip_unavailable)
        active = [m for m in methods if m.name not in skipped]
        truth = {t: self.pdata.targets_gt.column(t) for t in targets}
        metric_cfg = self.protocol.metrics
        # regret is charged against the best of ALL the target's candidates
        best = {t: float(truth[t].reindex(self.pdata.candidates(t)).max()) for t in targets}
        n_test = {t: test_size(t) for t in targets}
        score_rows, pred_rows, cov_rows, time_rows = [], [], [], []
        no_ens: set[str] = set()
        total = sum(len(seeds) if m.cls.stochastic else 1 for m in active) * len(targets)
        from benchmark.progress import bars_enabled, stage

        stage(f"{self.protocol.name}: {total} fold(s) of {', '.join(m.name for m in active)} "
              f"on {len(targets)} targets", progress)
        bar = tqdm(total=total, desc=f"{self.protocol.name}", disable=not bars_enabled(progress),
                   unit="fold")
        shared = {t: set.intersection(*(set(self.candidates(m, t)) for m in active))
                  for t in targets} if common_candidates and active else None

        def cands_of(m, t):
            c = self.candidates(m, t)
            return tuple(x for x in c if x in shared[t]) if shared is not None else c

        for m in active:
            for t in targets:
                cands = cands_of(m, t)
                cov_rows.append((m.name, t, len(cands), len(self.pdata.candidates(t)),
                                 ", ".join(sorted(set(self.pdata.candidates(t)) - set(cands)))))
            run_seeds = seeds if m.cls.stochastic else seeds[:1]
            for seed in run_seeds:
                for t in targets:
                    bar.set_postfix_str(f"{m.name} seed={seed} {t}", refresh=False)
                    started = time.perf_counter()
                    s = self.score_fold(m, t, seed, cands_of(m, t))
                    time_rows.append((m.name, seed, t, time.perf_counter() - started))
                    bar.update()
                    if len(s) < 2:
                        continue
                    values = metric_cfg.evaluate(s, truth[t].reindex(s.index), best=best[t],
                                                 n_test=n_test[t])
                    ens = self.ensemble_metric(s, t)
                    if ens is not None:
                        values.append(("ens", ENSEMBLE_K, ens))
                    else:
                        no_ens.add(t)
                    rep = seeds if not m.cls.stochastic else (seed,)
                    for out_seed in rep:
                        score_rows += [(m.name, self.protocol.name, out_seed, t, *v) for v in values]
                        pred_rows += [(m.name, out_seed, t, model, float(x)) for model, x in s.items()]
        bar.close()
        if "packs" in self.protocol.gt_sources and no_ens:
            problems = [p for t in sorted(no_ens) for p in self.reuse_predictions(t)[2]]
            log.warning("ens@3 (top-3 ensemble) not computed on %d target(s) (%s)%s",
                        len(no_ens), ", ".join(sorted(no_ens)),
                        f": {problems[0]}" if problems else "")
        scores = pd.DataFrame(score_rows, columns=SCORE_COLUMNS)
        scores = scores.sort_values(["method", "seed", "target", "metric", "k"], kind="stable")
        preds = pd.DataFrame(pred_rows, columns=["method", "seed", "target", "model", "score"])
        preds = preds.sort_values(["method", "seed", "target", "model"], kind="stable")
        cov = pd.DataFrame(
            cov_rows, columns=["method", "target", "candidates", "protocol_candidates", "uncovered"]
        )
        timings = pd.DataFrame(time_rows, columns=["method", "seed", "target", "seconds"])
        return RunResult(self.protocol, scores.reset_index(drop=True),
                         preds.reset_index(drop=True), cov, methods, skipped, timings)


#: a per-model listing up to this many lines is the message itself (a pack or two missing)
SHORT_LISTING = 3
MINIZOO = "minizoo"


def missing_message(protocol: Protocol, blocked: Mapping[str, Mapping[str, tuple]],
                    requested: list[str], store_root, listing: list[str]) -> str:
    """The text of :class:`MissingFeaturesError`, at most ~10 lines whatever the zoo.

    ``blocked``: method -> kind -> missing ``(model, dataset)`` records. A listing of at most
    :data:`SHORT_LISTING` per-model commands is shown as it is; a longer one is summed up per
    kind (records, models x datasets, estimated GPU-hours from
    :mod:`benchmark.features.cost`), with the one command that extracts all of it for the
    protocol, the Ray / SLURM way, and the minizoo command that runs right now.
    """
    from benchmark.features.cost import PER_MODEL_KINDS, gpu_hours

    names = list(blocked)
    skip_hint = (f"--allow-partial to rank only the covered models, or --skip-unavailable to "
                 f"skip {', '.join(names)}")
    if len(listing) - len(names) <= SHORT_LISTING:
        return "\n".join([*listing, f"(make them with the commands above; or pass {skip_hint})"])
    kinds: dict[str, list] = {}  # kind -> pairs, in the order the methods require them
    for miss in blocked.values():
        for kind, pairs in miss.items():
            kind = get_kind(kind).pack_kind  # two kinds reading one pack: one line
            kinds.setdefault(kind, [])
            kinds[kind] += [p for p in pairs if p not in set(kinds[kind])]
    verb = "needs" if len(names) == 1 else "need"
    lines = [f"{', '.join(names)} {verb} features that are not in {store_root}:"]
    total, no_estimate = 0.0, set()
    for kind, pairs in kinds.items():
        models = dict.fromkeys(m for m, _ in pairs)
        datasets = dict.fromkeys(d for _, d in pairs)
        hours, unknown = gpu_hours(kind, pairs)
        total += hours
        no_estimate.update(unknown)
        what = (f"{len(models)} models" if kind in PER_MODEL_KINDS
                else f"{len(pairs)} records ({len(models)} models x {len(datasets)} datasets)")
        cost = (f"~{_hours(hours)} GPU-hours" if len(unknown) < len(models)
                else "no GPU-hour estimate")  # e.g. a kind the cost table lacks
        lines.append(f"  {kind}: {what} missing, {cost}")
    if len(kinds) > 1:
        lines.append(f"  all {len(kinds)} kinds: ~{_hours(total)} GPU-hours")
    note = f"; no estimate for {len(no_estimate)} model(s)" if no_estimate else ""
    lines.append("  (GPU-hours: an estimate from CPU timings, default settings, "
                 f"docs/extraction_cost.md{note})")
    command = f"python -m benchmark extract all --protocol {protocol.name} --kinds {','.join(kinds)}"
    named = PROTOCOLS.get(protocol.name)  # a run restricted by --models / --datasets: say so
    if named is not None and tuple(named.zoo) != tuple(protocol.zoo):
        command += f" --models {','.join(protocol.zoo)}"
    if named is not None and tuple(named.datasets) != tuple(protocol.datasets):
        command += f" --datasets {','.join(protocol.datasets)}"
    if any(not extractable(m) for m in protocol.zoo):
        command += " --skip-unextractable"
    lines += [
        f"extract all of it: {command}",
        "  scale out: the same with --backend ray (a Ray cluster) or with --shard "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT (a SLURM job array): docs/slurm.md",
    ]
    if protocol.name != MINIZOO:
        lines.append("runs right now (small CLIP models trained here, on CPU): "
                     f"python -m benchmark run --protocol {MINIZOO} --methods "
                     f"{','.join(requested)}")
    lines.append("per-model extract commands: run --list-missing (MissingFeaturesError.listing); "
                 f"or pass {skip_hint}")
    return "\n".join(lines)


def _hours(h: float) -> str:
    return f"{h:.0f}" if h >= 10 else f"{h:.1f}" if h >= 0.1 else f"{h:.2f}"


def test_size(dataset: str) -> int | None:
    """The target's test-split size from ``datasets/registry.toml`` (None: unknown/not listed)."""
    from benchmark.data.catalog import registry

    n = registry().get(dataset, {}).get("test_size")
    return int(n) if n is not None else None


def validate_scores(method: str, target: str, scores, candidates) -> pd.Series:
    if not isinstance(scores, pd.Series):
        raise SelectorError(f"{method}: score() must return a pandas Series, got {type(scores)}")
    if scores.index.has_duplicates:
        raise SelectorError(f"{method}: duplicated model ids in scores on {target}")
    got, want = set(scores.index), set(candidates)
    if got != want:
        extra, miss = sorted(got - want)[:3], sorted(want - got)[:3]
        raise SelectorError(
            f"{method}: scores on {target} must be indexed by the candidates exactly "
            f"(extra {extra}, missing {miss})"
        )
    values = pd.to_numeric(scores, errors="coerce").astype(float)
    if not np.all(np.isfinite(values.to_numpy())):
        bad = values[~np.isfinite(values.to_numpy())].index[:3].tolist()
        raise SelectorError(f"{method}: non-finite scores on {target} for {bad}")
    return values.reindex(list(candidates))
