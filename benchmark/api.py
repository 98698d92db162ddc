"""The library API: one call runs methods on a protocol, one call renders the leaderboard.

    import benchmark
    res = benchmark.evaluate(["inb", "avgrank"], protocol="lovm", seeds=3)
    res.table()                      # mean ± std over seeds, one row per method
    res.outcome()                    # acc@1, regret@1, ... of each method's choice
    res.save("results/lovm/mine")   # scores.csv, predictions.csv, coverage.csv, run.json

The command line (:mod:`benchmark.cli`) is a thin wrapper over these functions: ``run`` is
:func:`evaluate` followed by :meth:`Results.save`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from benchmark.errors import UsageError

MethodLike = Any  # a registry name, "module:Class", a Selector subclass or a Selector instance


def _method_runs(methods: Sequence[MethodLike], params: Mapping[str, Mapping] | None):
    """Resolve names, classes and instances to the harness's :class:`MethodRun` list."""
    from benchmark.core.harness import MethodRun, resolve_methods
    from methods.base import Selector

    if isinstance(methods, (str, type, Selector)):
        methods = [methods]
    methods = list(methods)
    if not methods:
        raise UsageError("no methods given (e.g. methods=['inb', 'avgrank'])")
    runs, params = [], dict(params or {})
    for m in methods:
        if isinstance(m, str):
            runs.extend(resolve_methods([m], params))
            continue
        if isinstance(m, Selector):
            cls, given = type(m), m.get_params()
        elif isinstance(m, type) and issubclass(m, Selector):
            cls, given = m, {}
        else:
            raise UsageError(f"method {m!r} is neither a name, a Selector subclass nor a "
                             "Selector instance")
        name = cls.name or cls.__name__
        given = {**given, **dict(params.get(name, params.get(cls.__name__, {})))}
        bad = sorted(set(given) - set(cls._param_names()))
        if bad:
            raise UsageError(f"unknown parameter {bad[0]!r} for method {name!r} "
                             f"(valid: {', '.join(cls._param_names()) or 'none'})")
        runs.append(MethodRun(name, cls, MappingProxyType(given)))
    names = [r.name for r in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"method(s) requested twice: {dupes}")
    known = {*names, *(r.cls.__name__ for r in runs), *(m for m in methods if isinstance(m, str))}
    unknown = sorted(set(params) - known)
    if unknown:
        raise UsageError(f"--set / params name method(s) not in --methods: {unknown} (use a "
                         f"name from --methods, e.g. {names[0]}.PARAM=VALUE)")
    return runs


def _seeds(seeds: int | Iterable[int] | None) -> tuple[int, ...] | None:
    if seeds is None:
        return None
    if isinstance(seeds, int):
        if seeds < 1:
            raise UsageError(f"seeds={seeds}: need at least one seed")
        return tuple(range(seeds))
    return tuple(int(s) for s in seeds)


@dataclass(frozen=True)
class Results:
    """What a run produced: tidy tables plus provenance.

    ``scores``: one row per (method, protocol, seed, target, metric, k) with ``value``;
    ``predictions``: every score a method returned (method, seed, target, model, score);
    ``coverage``: per method and target, how many candidates it scored; ``provenance``: the
    resolved configuration, versions, git commit and date (``run.json``).
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame
    coverage: pd.DataFrame
    provenance: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    _run: Any = field(default=None, repr=False, compare=False)
    timings: pd.DataFrame | None = None  # method, seed, target, seconds (timings.csv)

    @property
    def protocol(self) -> str:
        return self.provenance.get("protocol", {}).get("name", "")

    @property
    def methods(self) -> list[str]:
        return sorted(self.scores["method"].unique()) if not self.scores.empty else []

    def table(self, metrics: Sequence[tuple[str, int]] | None = None) -> pd.DataFrame:
        """One row per method: "mean ± std over seeds" of the mean over targets per metric."""
        from benchmark.report.leaderboard import MAIN_COLUMNS, summarize

        return summarize(self.scores, list(metrics) if metrics else MAIN_COLUMNS)

    def outcome(self) -> pd.DataFrame:
        """One row per method: what a user gets from its choice (acc@k, regret@k against the
        best of all the target's candidates, nregret, hit@k, noise-tolerant ``~`` columns and
        the binomial SE of acc@1; ``ens@3``, MLL's top-3 ensemble, beside acc@1 when the run
        has it: minizoo); ``.attrs["note"]`` says on which targets the noise columns could use a
        test-split size, and how ens@3 is computed."""
        from benchmark.report.leaderboard import outcome_frame, partial_methods

        frame, note = outcome_frame(self.scores, set(partial_methods(self.coverage)))
        frame.attrs["note"] = note
        return frame

    def cost(self) -> pd.DataFrame:
        """Per method: what it needs from the target (its ``target_needs``) and the measured
        wall time per fold (fit + score on one target; mean and max over folds)."""
        from benchmark.report.leaderboard import cost_frame

        return cost_frame(self.provenance.get("methods", {}), self.timings)

    def per_target(self, metric: str = "ndcg", k: int = 5) -> pd.DataFrame:
        """target x method: mean over seeds of one metric."""
        from benchmark.report.leaderboard import per_dataset

        return per_dataset(self.scores, metric, k)

    def compare(self, other: Results, metrics: Sequence[tuple[str, int]] | str | None = None
                ) -> pd.DataFrame:
        """Paired comparison with ``other`` (B = other, A = self): means, B − A, p-values.

        The notes on what differs between the two runs are in ``.attrs["notes"]``.
        """
        from benchmark.report.compare import DEFAULT_METRICS, _parse_metrics, compare

        if metrics is None or isinstance(metrics, str):
            metrics = _parse_metrics(metrics or DEFAULT_METRICS)
        table, notes = compare(self._stored(), other._stored(), list(metrics))
        table.attrs["notes"] = notes
        return table

    def _stored(self):
        from benchmark.core.results import StoredRun

        return StoredRun(self.path or Path("."), self.scores, self.coverage, dict(self.provenance))

    def save(self, out: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the results directory atomically (refuses an existing one)."""
        from benchmark.core import results

        if self._run is None:
            raise UsageError("only the Results of evaluate() can be saved; a loaded results "
                             f"directory already is one ({self.path})")
        return results.write(self._run, Path(out), run={**self.provenance, **dict(extra or {})})

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """A results directory written by :meth:`save` or ``benchmark run``."""
        from benchmark.core import results

        stored = results.read(Path(path))
        preds = pd.read_csv(Path(path) / "predictions.csv")
        return cls(stored.scores, preds, stored.coverage, stored.run, Path(path),
                   timings=stored.timings)


def evaluate(
    methods: Sequence[MethodLike] | MethodLike,
    protocol: str = "dcd48",
    seeds: int | Iterable[int] | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    tau_variant: str | None = None,
    ndcg_ideal: str | None = None,
    features_dir: str | Path | None = None,
    mirror: str | Path | None = None,
    offline: bool | None = None,
    skip_unavailable: bool = False,
    allow_partial: bool = False,
    allow_random_init: bool = False,
    common_candidates: bool = False,
    progress: bool = False,
) -> Results:
    """Run ``methods`` leave-one-dataset-out on ``protocol``; nothing is written to disk.

    ``methods``: registry names (``"inb"``), ``"module:Class"`` paths, Selector subclasses or
    instances (an instance contributes its parameters; each fold gets a fresh copy).
    ``params``: ``{method name: {param: value}}`` overrides. ``seeds``: a count (``10`` means
    0..9) or explicit seeds; default the protocol's. ``protocol``: a name
    (``python -m benchmark list protocols``) or a protocol TOML file. The other options are the
    ``run`` command's flags of the same names. Features missing for a method raise
    :class:`benchmark.core.harness.MissingFeaturesError`: a short summary (the ``run``
    command's error), with ``.listing`` (one extract command per kind and model) and
    ``.missing`` (kind -> missing ``(model, dataset)`` records).
    """
    from benchmark.core.harness import Harness
    from benchmark.core.metrics import MetricConfig
    from benchmark.core.protocol import get_protocol
    from benchmark.data.upstream import DataLayer
    from benchmark.features.store import FeatureStore

    proto = get_protocol(protocol)
    if models:
        proto = proto.restrict_zoo(list(models))
    if datasets:
        proto = proto.restrict_datasets(list(datasets))
    chosen = _seeds(seeds)
    if chosen is not None:
        proto = proto.with_options(seeds=chosen)
    if tau_variant or ndcg_ideal:
        proto = proto.with_options(metrics=MetricConfig(
            ndcg_ideal=ndcg_ideal or proto.metrics.ndcg_ideal,
            tau_variant=tau_variant or proto.metrics.tau_variant,
        ))
    runs = _method_runs(methods, params)
    started = time.perf_counter()
    store = FeatureStore(features_dir) if features_dir else FeatureStore()
    data = DataLayer(mirror=mirror, online=False if offline else None)
    harness = Harness.from_data(proto, data, store, allow_random_init,
                                allow_partial=allow_partial)
    result = harness.run(runs, skip_unavailable=skip_unavailable, progress=progress,
                         common_candidates=common_candidates)
    from benchmark.core.submission import protocol_hash
    from benchmark.features.transfer import packs_used

    kinds = [k for m in runs if m.name not in result.skipped for k in m.cls.requires]
    extra = {"data": harness.ctx.data.describe(), "features_dir": str(store.root),
             "protocol_hash": protocol_hash(harness.pdata),
             "feature_packs": packs_used(store, kinds, proto.zoo),
             "wall_time_s": round(time.perf_counter() - started, 3)}
    from benchmark.core.results import provenance

    return Results(result.scores, result.predictions, result.coverage,
                   MappingProxyType(provenance(result, extra)), None, result,
                   timings=result.timings)


def score(
    predictions: str | Path,
    protocol: str = "dcd48",
    *,
    meta: str | Path | None = None,
    select: str | None = None,
    release: str | None = None,
    mirror: str | Path | None = None,
    offline: bool | None = None,
) -> Results:
    """Score predictions made elsewhere (``python -m benchmark score``): the same tidy tables
    and provenance as :func:`evaluate`, the method labelled ``NAME (submitted)``.

    ``meta``: the ``submission.toml`` (default: beside ``predictions``); ``select``: the method
    to take from a file holding several; ``release``: score against a frozen release. Refuses,
    one line, a protocol hash that does not match, unknown models or targets, missing
    candidates, duplicates and non-finite scores (:mod:`benchmark.core.submission`).
    """
    from benchmark.core import submission
    from benchmark.core.protocol import get_protocol
    from benchmark.core.release import load_release_protocol
    from benchmark.data.upstream import DataLayer

    if release:
        pdata = load_release_protocol(release, protocol)
    else:
        pdata = get_protocol(protocol).load(DataLayer(mirror=mirror,
                                                      online=False if offline else None))
    predictions = Path(predictions)
    result, run_json = submission.score_submission(
        predictions, pdata, Path(meta) if meta else None, select)
    return Results(result.scores, result.predictions, result.coverage,
                   MappingProxyType(run_json), None, result)


def leaderboard(
    results: str | Path = "results/leaderboard",
    *,
    rerun: bool = False,
    mirror: str | Path | None = None,
    offline: bool | None = None,
) -> dict[str, str | bytes]:
    """The leaderboard pages as ``{relative path: content}`` (Markdown text, PNG bytes).

    Renders ``leaderboard/runs.toml`` from the run directories under ``results``; with
    ``rerun=True`` the runs are computed first into ``results`` (``python -m benchmark
    leaderboard --rerun`` does the same and writes the files to ``leaderboard/``).
    """
    from benchmark.data.upstream import DataLayer
    from benchmark.report import leaderboard as lb

    spec = lb.load_spec()
    root = Path(results)
    if rerun:
        lb.rerun_root(spec, root, DataLayer(mirror=mirror, online=False if offline else None))
    elif not any(root.rglob("run.json")):
        raise UsageError(f"no runs under {root}: compute them first (rerun=True, or "
                         "`python -m benchmark leaderboard --rerun`)")
    return lb.render_all(spec, root)
