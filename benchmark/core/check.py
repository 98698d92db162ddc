"""``check_selector``: the conformance suite every selector passes (cf. sklearn's check_estimator).

Runs in seconds on two small universes: a **mock** one (random ground truth, synthetic dataset
metadata), so a contributor can check a method without data, and a **real slice** of a
protocol (:data:`REAL_SLICE`: real datasets, real published ground truth, read through the
data layer), on which re-reading the truth through the library would find what it looks for.
Features of every kind the selector requires are random records of the right shapes (with the
datasets' real class names). Checks, in this order:

1. ``__init__`` stores its parameters: ``get_params()`` returns what was passed; no learned
   (``_``-suffixed) attribute exists before ``fit``.
2. ``fit`` returns ``self``; ``score`` returns finite floats indexed exactly by the candidates,
   including a target where some zoo models are not candidates.
3. No state survives from one fold to the next, three ways: (a) the folds in two orders give
   identical scores (the first fold of the check runs before the selector ever saw its
   target as a source); (b) a target's truth replaced by garbage wherever it is a *source*
   (every other fold), the target scored last, gives its usual scores; (c) the module-level
   and class-level state of the selector's own code (mutable containers, rebound globals) is
   unchanged by fit/score (a memo of a pure function, ``functools.cache``, is not state).
4. Deterministic per seed (two fresh instances, same seed: identical scores); a selector that
   is not ``stochastic`` gives identical scores for different seeds.
5. Leakage, on the mock universe and on the real slice: the scores are identical when the
   target's truth is replaced by garbage *everywhere the library can hand it out* -- the
   harness's ground truth, the target's feature records (label-derived arrays and image ids,
   even those a target view should never carry), and, while the selector runs, the upstream
   tables read through the data layer (``get_protocol(...).load(...)``) and every feature-pack
   record (:mod:`benchmark.data.perturb`). No unperturbed copy of the truth is reachable
   (frames, ``gc``) while the perturbed folds run.
6. ``fit`` and ``score`` leave the views' data unchanged.

Protocols that reproduce upstream code on purpose (:data:`benchmark.core.protocol.REPRODUCTION_PROTOCOLS`,
by exact name) are exempt from 3 and 5 when passed as ``protocol``; nothing else is.
Not covered: a selector that reads files on its own, or detects the check; code review is the
guard for those (README, "Leakage").
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import itertools
import logging
import sys
import traceback
import zlib
from dataclasses import dataclass, field
from types import BuiltinFunctionType, FunctionType, MappingProxyType, ModuleType
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.harness import Harness, MethodRun, resolve_methods
from benchmark.core.metrics import MetricConfig
from benchmark.core.protocol import (
    SIDE_DATASET,
    Protocol,
    ProtocolData,
    get_protocol,
    is_reproduction,
)
from benchmark.data import perturb
from benchmark.data.catalog import DatasetInfo
from benchmark.data.groundtruth import COLUMNS, GroundTruth
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import FeatureStore, Record

N_MODELS, N_DATASETS = 9, 5
GARBAGE_SEED = 99
# garbage differs from one check to the next: state filled with one check's garbage cannot
# pass for the next check's
_CALLS = itertools.count()


@dataclass(frozen=True)
class RealSlice:
    """A small slice of a real protocol the leakage checks also run on."""

    protocol: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]


REAL_SLICE = RealSlice(
    protocol="lovm",
    models=("RN50:openai", "RN101:openai", "ViT-B-32:openai", "ViT-B-16:openai",
            "ViT-L-14:openai", "ViT-B-32:laion400m_e31"),
    datasets=("pcam", "mnist", "stl10", "eurosat"),
)


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    detail: str = ""
    skipped: bool = False


# -- universes --------------------------------------------------------------------------------
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
    t.loc[mask, "acc1"] = np.random.default_rng(seed + GARBAGE_SEED).uniform(size=int(mask.sum()))
    return ProtocolData(pdata.protocol, GroundTruth(t))


class _Universe:
    """Protocol, metadata and ground truth of one universe, the truth held compressed.

    Harnesses are built on demand and dropped after use, so that while a perturbed fold runs
    no DataFrame of the unperturbed truth exists for a selector to find (``gc``, frames).
    """

    def __init__(self, name: str, pdata: ProtocolData, infos: dict[str, DatasetInfo],
                 data=None, garbage_seed: int = GARBAGE_SEED) -> None:
        self.name = name
        self.garbage_seed = garbage_seed
        self.protocol = pdata.protocol
        self.infos = infos
        self.data = data
        self._blob = zlib.compress(pdata.ground_truth.table.to_csv(index=False).encode())
        self.targets = pdata.evaluable_targets()

    def pdata(self, garbage: str | None = None) -> ProtocolData:
        table = pd.read_csv(io.BytesIO(zlib.decompress(self._blob)), keep_default_na=False,
                            dtype={"model": str, "dataset": str, "source": str})
        pdata = ProtocolData(self.protocol, GroundTruth(table))
        return pdata if garbage is None else _with_garbage_target(pdata, garbage,
                                                                  self.garbage_seed)

    def features(self, run: MethodRun, garbage: str | None = None) -> dict[str, dict]:
        rng = np.random.default_rng(1234)
        models, datasets = list(self.protocol.zoo), list(self.protocol.datasets)
        out = {}
        for kind in run.cls.requires:
            recs = get_kind(kind).mock(models, datasets, rng, infos=self.infos)
            if garbage is not None:  # the target's label-derived parts, garbled
                g = np.random.default_rng([self.garbage_seed, zlib.crc32(kind.encode())])
                for key, r in list(recs.items()):
                    if key[1] == garbage:
                        arrays, meta = perturb.perturb_record_parts(
                            kind, garbage, r.arrays, r.meta, garbage, g)
                        recs[key] = Record.make(kind, r.model, r.dataset, arrays, meta)
            out[kind] = recs
        return out

    def harness(self, run: MethodRun, store: FeatureStore, garbage: str | None = None) -> Harness:
        ctx = LoadContext(data=self.data, store=store)
        return Harness(self.pdata(garbage), self.infos, ctx,
                       features=self.features(run, garbage))


def mock_universe(seed: int = 0) -> tuple[ProtocolData, dict[str, DatasetInfo]]:
    """The mock universe the checks run on (for tests of selectors)."""
    return _mock_protocol(seed)


@functools.lru_cache(maxsize=4)
def _real_slice_parts(mirror: str | None, spec: RealSlice) -> tuple[bytes, tuple]:
    """The slice's ground truth (compressed CSV) and metadata, read once per process."""
    from benchmark.data.catalog import Catalog
    from benchmark.data.upstream import DataLayer

    data = DataLayer(mirror=mirror or None)
    protocol = (get_protocol(spec.protocol).restrict_zoo(list(spec.models))
                .restrict_datasets(list(spec.datasets)))
    table = protocol.load(data).ground_truth.table
    catalog = Catalog(data)
    infos = tuple((d, catalog.info(d)) for d in protocol.datasets)
    return zlib.compress(table.to_csv(index=False).encode()), infos


def real_universe(data=None, spec: RealSlice = REAL_SLICE,
                  garbage_seed: int = GARBAGE_SEED) -> _Universe:
    """The real slice as a universe (raises ``UpstreamError`` when its files are missing)."""
    from benchmark.data.upstream import DataLayer

    data = data or DataLayer()
    mirror = str(data.mirror) if data.mirror else None
    blob, infos = _real_slice_parts(mirror, spec)
    protocol = (get_protocol(spec.protocol).restrict_zoo(list(spec.models))
                .restrict_datasets(list(spec.datasets)))
    table = pd.read_csv(io.BytesIO(zlib.decompress(blob)), keep_default_na=False,
                        dtype={"model": str, "dataset": str, "source": str})
    uni = _Universe(f"real slice of {spec.protocol}", ProtocolData(protocol, GroundTruth(table)),
                    dict(infos), data, garbage_seed)
    del table
    return uni


# -- state of the selector's own code ---------------------------------------------------------
_OPAQUE = (ModuleType, FunctionType, BuiltinFunctionType, type, functools._lru_cache_wrapper,
           functools.partial, property, staticmethod, classmethod, functools.cached_property,
           logging.Logger)
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), frozenset, range)


def _signature(value: Any, depth: int = 0) -> Any:
    """A shallow fingerprint of ``value``: identity, and for containers their contents."""
    if isinstance(value, (*_OPAQUE, *_IMMUTABLE)):
        return id(value)
    if isinstance(value, np.ndarray):
        blob = value.tobytes() if value.nbytes <= 1 << 24 else b""
        return (id(value), value.shape, hashlib.sha1(blob).hexdigest())
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return (id(value), value.shape)
    if depth >= 3:
        return id(value)
    if isinstance(value, dict | MappingProxyType):
        items = list(value.items())[:10_000]
        return (id(value), len(value),
                tuple((_signature(k, 3), _signature(v, depth + 1)) for k, v in items))
    if isinstance(value, list | tuple | set):
        items = list(value)[:10_000]
        return (id(value), len(value), tuple(_signature(v, depth + 1) for v in items))
    if hasattr(value, "__dict__"):
        return (id(value), _signature(vars(value), depth + 1))
    return id(value)


def _owned_state(cls: type) -> dict[str, Any]:
    """Fingerprints of the module globals and class attributes of the selector's own code
    (its classes and their modules, outside :mod:`benchmark` and :mod:`methods.base`)."""
    classes = [c for c in cls.__mro__
               if c is not object and not c.__module__.startswith(("benchmark.", "builtins"))
               and c.__module__ != "methods.base"]
    out: dict[str, Any] = {}
    for mod in dict.fromkeys(sys.modules.get(c.__module__) for c in classes):
        if mod is None:
            continue
        for name, value in list(vars(mod).items()):
            if not name.startswith("__"):
                out[f"{mod.__name__}.{name}"] = _signature(value)
    for c in classes:
        for name, value in list(vars(c).items()):
            if not name.startswith("__"):
                out[f"{c.__module__}.{c.__qualname__}.{name}"] = _signature(value)
    return out


# -- the checks -------------------------------------------------------------------------------
@dataclass
class _Context:
    run: MethodRun
    store: FeatureStore
    baseline: dict[str, dict[str, pd.Series]] = field(default_factory=dict)  # universe -> t -> s


def _assert_same(a: pd.Series, b: pd.Series, what: str) -> None:
    pd.testing.assert_series_equal(a, b, check_exact=True, obj=what)


def _fold(h: Harness, run: MethodRun, target: str, seed: int = 0,
          garbage: str | None = None, garbage_seed: int = GARBAGE_SEED) -> pd.Series:
    """One fold with a fresh selector; inside :func:`perturb.perturbed` when ``garbage``."""
    if garbage is None:
        return h.score_fold(run, target, seed)
    from benchmark.data.catalog import registry

    wide = registry().get(garbage, {}).get("openclip")
    with perturb.perturbed(garbage, garbage_seed, wide_column=wide):
        return h.score_fold(run, target, seed)


def _leakage(uni: _Universe, cx: _Context) -> None:
    """Scores on each target with its truth garbled everywhere == the honest scores."""
    if uni.name not in cx.baseline:  # the honest pass, then the harness is dropped
        h = uni.harness(cx.run, cx.store)
        cx.baseline[uni.name] = {t: _fold(h, cx.run, t) for t in uni.targets}
        del h
    honest = cx.baseline[uni.name]
    gc.collect()  # the honest harness is gone, cycles included
    for t in uni.targets:
        garbage = uni.harness(cx.run, cx.store, garbage=t)
        got = _fold(garbage, cx.run, t, garbage=t, garbage_seed=uni.garbage_seed)
        del garbage
        _assert_same(honest[t], got, f"scores on {t} ({uni.name}) with its truth replaced by "
                     "garbage wherever the library hands it out")


def check_selector(method: str | type, params: dict[str, Any] | None = None, data=None,
                   protocol: str | None = None, real: bool = True) -> list[CheckResult]:
    """Run the conformance checks on a registry name, ``module:Class`` path or class.

    ``data``: the data layer of the real slice (default: ``DataLayer()``); ``real=False`` skips
    the real slice. ``protocol``: a reproduction protocol (exact name) exempts the selector
    from the fold-state and leakage checks; any other value changes nothing.
    """
    import tempfile

    results: list[CheckResult] = []

    def attempt(name: str, fn, skip_on: tuple[type[BaseException], ...] = ()) -> None:
        try:
            fn()
            results.append(CheckResult(name, True))
        except skip_on as err:  # the data a check needs is missing: reported as skipped
            results.append(CheckResult(name, True, f"skipped: {err}", skipped=True))
        except Exception as err:  # a failing check is reported, never raised
            detail = f"{type(err).__name__}: {err}"
            tb = traceback.extract_tb(err.__traceback__)
            if tb:
                detail += f" ({tb[-1].filename.split('/')[-1]}:{tb[-1].lineno})"
            results.append(CheckResult(name, False, detail))

    try:
        if isinstance(method, type):
            run = MethodRun(method.name or method.__name__, method,
                            MappingProxyType(dict(params or {})))
        else:
            run = resolve_methods([method], {method: params or {}})[0]
    except Exception as err:  # an import that fails (e.g. registers a feature kind) fails
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        return [CheckResult("imports and resolves", False, f"{type(err).__name__}: {msg}")]
    exempt = protocol is not None and is_reproduction(protocol)
    garbage_seed = GARBAGE_SEED + next(_CALLS)
    mock = _Universe("mock universe", *_mock_protocol(), garbage_seed=garbage_seed)
    targets = list(mock.targets)
    state_before = _owned_state(run.cls)

    with tempfile.TemporaryDirectory() as tmp:
        cx = _Context(run, FeatureStore(tmp))
        forward: dict[str, pd.Series] = {}

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
            h = mock.harness(run, cx.store)
            for t in targets:  # includes mock1, where one zoo model is not a candidate
                forward[t] = h.score_fold(run, t, seed=0)

        def fold_orders():
            h = mock.harness(run, cx.store)
            if len(forward) < len(targets):
                raise AssertionError("not run: the contract check failed")
            for t in reversed(targets):
                _assert_same(forward[t], h.score_fold(run, t, seed=0),
                             f"scores on {t}, folds in reverse order vs in order (state kept "
                             "from one fold to the next, or not deterministic?)")

        def truth_as_source():
            for t in targets[:1]:
                garbage = mock.harness(run, cx.store, garbage=t)
                for other in (u for u in targets if u != t):
                    _fold(garbage, run, other, garbage=t, garbage_seed=garbage_seed)
                del garbage
                h = mock.harness(run, cx.store)
                _assert_same(forward[t], h.score_fold(run, t, seed=0),
                             f"scores on {t} after folds where {t}'s truth, as a source, was "
                             "garbage (state kept from one fold to the next?)")

        def deterministic():
            # two fresh instances with one seed: the contract's pass and this one (the fold
            # orders check compares a third); seeds 0 and 1 for a non-stochastic selector
            if len(forward) < len(targets):
                raise AssertionError("not run: the contract check failed")
            h = mock.harness(run, cx.store)
            for t in targets if not run.cls.stochastic else targets[:1]:
                seed = 0 if run.cls.stochastic else 1
                what = (f"two fresh instances, seed 0, on {t}" if run.cls.stochastic else
                        f"scores on {t} for seeds 0 and 1 (the selector is not declared "
                        "stochastic)")
                _assert_same(forward[t], h.score_fold(run, t, seed), what)

        def no_target_leakage():
            cx.baseline["mock universe"] = dict(forward)
            _leakage(mock, cx)

        def no_target_leakage_real():
            _leakage(real_universe(data, garbage_seed=garbage_seed), cx)

        def views_unchanged():
            h = mock.harness(run, cx.store)
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

        def owned_state_unchanged():
            after = _owned_state(run.cls)
            changed = sorted(k for k in set(state_before) | set(after)
                             if state_before.get(k) != after.get(k))
            if changed:
                raise AssertionError(
                    f"fit/score changed module- or class-level state {changed[:3]}: state must "
                    "not survive a fold (keep it on the instance; memoise pure functions with "
                    "functools.cache)")

        attempt("init stores parameters only", init_stores_params)
        attempt("fit returns self; score indexed by candidates, finite", fit_score_contract)
        state_checks = [
            ("no state across folds: folds in two orders, same scores", fold_orders),
            ("no state across folds: target's truth garbage as a source, same scores",
             truth_as_source),
        ]
        leak_checks = [
            ("no leakage: garbage target truth everywhere, same scores (mock)",
             no_target_leakage),
            (f"no leakage: garbage target truth everywhere, same scores ({REAL_SLICE.protocol} "
             f"slice)", no_target_leakage_real),
        ]

        def exempted(name: str) -> None:
            results.append(CheckResult(name, True, f"exempt: reproduction protocol {protocol}",
                                       skipped=True))

        for name, fn in state_checks:
            exempted(name) if exempt else attempt(name, fn)
        attempt("deterministic per seed", deterministic)
        for name, fn in leak_checks:
            if exempt:
                exempted(name)
            elif fn is no_target_leakage_real and not real:
                results.append(CheckResult(name, True, "skipped (real=False)", skipped=True))
            elif fn is no_target_leakage_real:
                from benchmark.data.upstream import UpstreamError

                attempt(name, fn, skip_on=(UpstreamError,))
            else:
                attempt(name, fn)
        attempt("views unchanged by fit/score", views_unchanged)
        if exempt:
            exempted("no module- or class-level state changed by fit/score")
        else:
            attempt("no module- or class-level state changed by fit/score", owned_state_unchanged)
    return results


__all__ = ["REAL_SLICE", "CheckResult", "RealSlice", "check_selector", "mock_universe",
           "real_universe"]
