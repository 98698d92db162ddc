"""``check_selector``: the conformance suite every selector passes (cf. sklearn's check_estimator).

Runs in seconds on a mock universe (random ground truth, synthetic dataset metadata, random
features of every kind the selector requires), so a contributor can check a new method
without data or feature packs. Checks:

1. ``__init__`` stores its parameters: ``get_params()`` returns what was passed; no learned
   (``_``-suffixed) attribute exists before ``fit``.
2. ``fit`` returns ``self``; ``score`` returns finite floats indexed exactly by the candidates,
   including a target where some zoo models are not candidates.
3. Deterministic per seed (two fresh instances, same seed: identical scores); a selector that
   is not ``stochastic`` gives identical scores for different seeds.
4. Leakage: the scores are identical when the target's ground truth is replaced by garbage.
5. ``fit`` and ``score`` leave the views' data unchanged.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.harness import Harness, MethodRun, resolve_methods
from benchmark.core.metrics import MetricConfig
from benchmark.core.protocol import SIDE_DATASET, Protocol, ProtocolData
from benchmark.data.catalog import DatasetInfo
from benchmark.data.groundtruth import COLUMNS, GroundTruth
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import FeatureStore

N_MODELS, N_DATASETS = 9, 5


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    detail: str = ""


def _mock_protocol(seed: int = 0) -> tuple[ProtocolData, dict[str, DatasetInfo]]:
    rng = np.random.default_rng(seed)
    models = tuple(f"Mock-{i}:v{i % 3}" for i in range(N_MODELS))
    datasets = tuple(f"mock{i}" for i in range(N_DATASETS))
    rows = []
    for d in datasets:
        skill = rng.normal(size=N_MODELS)
        for j, m in enumerate(models):
            if d == datasets[1] and j == 0:  # a model without a cell: not a candidate there
                continue
            rows.append((m, d, float(1 / (1 + np.exp(-skill[j]))), "mock"))
    rows += [(m, SIDE_DATASET, float(rng.uniform(0.2, 0.9)), "mock") for m in models]
    protocol = Protocol(
        name="mock", description="conformance universe", zoo=models, datasets=datasets,
        gt_sources=("mock",), seeds=(0, 1), metrics=MetricConfig(),
    )
    gt = GroundTruth(pd.DataFrame(rows, columns=COLUMNS))
    words = ["cat", "dog", "car", "tree", "boat", "house", "bird", "plane", "apple", "chair"]
    infos = {
        d: DatasetInfo(
            id=d, name=f"Mock dataset {i}", domain="photograph/picture",
            task="image classification",
            classnames=tuple(words[i: i + 3 + i % 2]),
            templates=("a photo of a {c}.", "a picture of the {c}."),
        )
        for i, d in enumerate(datasets)
    }
    return ProtocolData(protocol, gt), infos


def _with_garbage_target(pdata: ProtocolData, target: str, seed: int) -> ProtocolData:
    t = pdata.ground_truth.table.copy()
    mask = t["dataset"] == target
    t.loc[mask, "acc1"] = np.random.default_rng(seed + 99).uniform(size=int(mask.sum()))
    return ProtocolData(pdata.protocol, GroundTruth(t))


def _harness(pdata, infos, method: MethodRun, tmp_store) -> Harness:
    rng = np.random.default_rng(1234)
    ctx = LoadContext(data=None, store=tmp_store)
    features = {
        k: get_kind(k).mock(list(pdata.protocol.zoo), list(pdata.protocol.datasets), rng)
        for k in method.cls.requires
    }
    return Harness(pdata, infos, ctx, features=features)


def check_selector(method: str | type, params: dict[str, Any] | None = None) -> list[CheckResult]:
    """Run the conformance checks on a registry name, ``module:Class`` path or class."""
    import tempfile

    if isinstance(method, type):
        run = MethodRun(method.name or method.__name__, method, MappingProxyType(dict(params or {})))
    else:
        run = resolve_methods([method], {method: params or {}})[0]
    pdata, infos = _mock_protocol()
    results: list[CheckResult] = []

    def attempt(name: str, fn) -> None:
        try:
            fn()
            results.append(CheckResult(name, True))
        except Exception as err:  # a failing check is reported, never raised
            detail = f"{type(err).__name__}: {err}"
            tb = traceback.extract_tb(err.__traceback__)
            if tb:
                detail += f" ({tb[-1].filename.split('/')[-1]}:{tb[-1].lineno})"
            results.append(CheckResult(name, False, detail))

    with tempfile.TemporaryDirectory() as tmp:
        h = _harness(pdata, infos, run, FeatureStore(tmp))
        targets = list(pdata.protocol.datasets)

        def init_stores_params():
            sel = run.make()
            got = sel.get_params()
            for k, v in run.params.items():
                if k not in got or got[k] != v:
                    raise AssertionError(f"get_params()[{k!r}] = {got.get(k)!r}, passed {v!r}")
            learned = [a for a in vars(sel) if a.endswith("_") and not a.startswith("_")]
            if learned:
                raise AssertionError(f"learned attributes before fit: {learned}")

        def fit_score_contract():
            for t in targets:  # includes mock1, where one zoo model is not a candidate
                h.score_fold(run, t, seed=0)

        def deterministic():
            for t in targets:
                a, b = h.score_fold(run, t, 0), h.score_fold(run, t, 0)
                pd.testing.assert_series_equal(a, b, check_exact=True)
                if not run.cls.stochastic:
                    c = h.score_fold(run, t, 1)
                    pd.testing.assert_series_equal(a, c, check_exact=True, obj=(
                        "scores for seeds 0 and 1 (the selector is not declared stochastic)"))

        def no_target_leakage():
            for t in targets:
                garbage = _harness(_with_garbage_target(pdata, t, 0), infos, run, h.ctx.store)
                garbage._features = h._features
                pd.testing.assert_series_equal(
                    h.score_fold(run, t, 0), garbage.score_fold(run, t, 0), check_exact=True,
                    obj=f"scores on {t} with its ground truth replaced by garbage",
                )

        def views_unchanged():
            t = targets[0]
            train = h.train_view(t, 0, run.cls.requires)
            before = train.ground_truth.table.copy()
            imagenet = train.imagenet.copy()
            sel = run.make().fit(train)
            target = h.target_view(t, 0, h.candidates(run, t), run.cls.requires)
            sel.score(target)
            pd.testing.assert_frame_equal(before, train.ground_truth.table)
            pd.testing.assert_series_equal(imagenet, train.imagenet)
            pd.testing.assert_series_equal(imagenet, target.imagenet)

        attempt("init stores parameters only", init_stores_params)
        attempt("fit returns self; score indexed by candidates, finite", fit_score_contract)
        attempt("deterministic per seed", deterministic)
        attempt("no leakage: garbage target ground truth, same scores", no_target_leakage)
        attempt("views unchanged by fit/score", views_unchanged)
    return results


def mock_universe(seed: int = 0) -> tuple[ProtocolData, dict[str, DatasetInfo]]:
    """The mock universe the checks run on (for tests of selectors)."""
    return _mock_protocol(seed)


__all__ = ["CheckResult", "check_selector", "mock_universe"]
