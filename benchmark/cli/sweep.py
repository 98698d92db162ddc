"""``python -m benchmark sweep METHOD --param NAME=SPEC``: a method's metrics over a grid.

Thin layer over :mod:`benchmark.studies.sweep`; :mod:`benchmark.cli.sample_efficiency` reuses
its options and helpers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from benchmark.cli.common import (
    RESULTS_ROOT,
    add_data_options,
    add_progress_option,
    add_results_option,
    csv_list,
    data_layer,
    parse_seeds,
    warn_deprecated,
)
from benchmark.errors import UsageError
from benchmark.studies.sweep import (
    DEFAULT_METRIC,
    SweepResult,
    _fmt,
    grid_points,
    parse_fixed,
    parse_grid,
    parse_metric,
    plot_sweep,
    run_points,
    write_outputs,
)


# -- command line -------------------------------------------------------------------------
def add_common_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.core.protocol import DEFAULT_PROTOCOL

    p.add_argument("method", help="registry name (`list methods`), module:Class or "
                   "path/to/file.py:Class")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                   help="a protocol name (`list protocols`) or a protocol TOML file")
    p.add_argument("--models", help="restrict the protocol's zoo to these model ids "
                   "(default: the whole zoo)")
    p.add_argument("--mock", action="store_true",
                   help="run on the conformance check's mock universe (random data, no packs)")
    p.add_argument("--seeds", help="number of seeds (default: the protocol's) or a list")
    p.add_argument("--set", action="append", metavar="METHOD.PARAM=VALUE",
                   help="fix a parameter of the method for every point (repeatable), as in "
                   "`run --set`")
    p.add_argument("--metric", default=DEFAULT_METRIC, help="metric plotted")
    add_results_option(p, RESULTS_ROOT, "written to ROOT/<analysis>/<protocol>/<method>-<time>")
    p.add_argument("--out", metavar="DIR", help="write to DIR exactly instead (must not exist)")
    p.add_argument("--features-dir", help="feature pack directory (default $VLMBENCH_FEATURES, "
                   "else $VLMBENCH_CACHE/features, else ~/.cache/vlmbench/features)")
    p.add_argument("--allow-random-init", action="store_true",
                   help="accept feature packs extracted with --random-init (smoke tests)")
    add_progress_option(p)
    add_data_options(p)


def method_settings(method: str, items: list[str] | None) -> list[str]:
    """``--set METHOD.PARAM=VALUE`` items of the studied method -> ``PARAM=VALUE`` items.

    ``METHOD`` is the method as given, its ``name`` attribute or its class name. The old
    spelling ``--set PARAM=VALUE`` still works, with a deprecation line.
    """
    from methods import resolve

    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        owner, dot, name = key.rpartition(".")
        if not sep or not dot:
            warn_deprecated("sweep --set PARAM=VALUE", f"--set {method}.PARAM=VALUE (as in run)")
            out.append(item)
            continue
        display, cls, _ = resolve(method)
        if owner.strip() not in {method, display, cls.__name__}:
            raise UsageError(f"--set {item!r}: {owner!r} is not the studied method {method!r}")
        out.append(f"{name}={value}")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("--param", action="append", required=True, metavar="NAME=SPEC",
                   help="a grid axis: NAME=start:stop:num (linspace) or NAME=v1,v2,... "
                   "(repeatable; the grid is the product)")


def build_harness(args, method: str):
    """The harness of ``args.protocol`` (or of the mock universe with ``--mock``)."""
    from benchmark.core.harness import Harness, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.features.store import FeatureStore

    if args.mock:
        if args.models:
            raise UsageError("--models restricts a protocol's zoo; the mock universe has its own")
        from benchmark.core.check import mock_universe
        from benchmark.features.kinds import LoadContext, get_kind

        pdata, infos = mock_universe()
        rng = np.random.default_rng(1234)
        cls = resolve_methods([method])[0].cls
        feats = {k: get_kind(k).mock(list(pdata.protocol.zoo), list(pdata.protocol.datasets),
                                     rng) for k in cls.requires}
        ctx = LoadContext(data=None, store=FeatureStore(args.features_dir or tempfile.gettempdir()))
        return Harness(pdata, infos, ctx, features=feats)
    protocol = get_protocol(args.protocol)
    if args.models:
        protocol = protocol.restrict_zoo(csv_list(args.models))
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    return Harness.from_data(protocol, data_layer(args), store, args.allow_random_init)


def _default_out(kind: str, protocol: str, method: str, root: str = RESULTS_ROOT) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = method.replace(":", "_").replace("/", "_")
    return Path(root) / kind / protocol / f"{safe}-{stamp}"


def _prepare(args):
    seeds = parse_seeds(args.seeds)
    if args.out:  # before computing: an existing or unwritable --out is one line
        from benchmark.core.results import check_out

        check_out(Path(args.out))
    harness = build_harness(args, args.method)
    metric = parse_metric(args.metric, harness.protocol.metrics.ks,
                          harness.protocol.metrics.outcome_ks)
    return harness, seeds, f"{metric[0]}@{metric[1]}"


def _finish(res: SweepResult, args, name: str, plot, started: float, extra=None) -> int:
    out = Path(args.out) if args.out else _default_out(name.replace("_", "-"), res.protocol,
                                                       res.method, args.results)
    write_outputs(res, out, name, plot, {"metric": args.metric, "mock": bool(args.mock),
                                        "wall_time_s": round(time.perf_counter() - started, 3),
                                        **(extra or {})})
    from tabulate import tabulate

    shown = res.table[list(res.params)].map(_fmt)
    shown[args.metric] = [f"{m:.3f} ± {s:.3f}" for m, s in
                          zip(res.table[args.metric], res.table[f"{args.metric}_std"], strict=True)]
    shown["seeds"] = res.table["seeds"]
    print(tabulate(shown, headers="keys", tablefmt="github", showindex=False, disable_numparse=True))
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def run(args) -> int:
    """``benchmark sweep``."""
    started = time.perf_counter()
    grid = parse_grid(args.param)
    fixed = parse_fixed(method_settings(args.method, args.set))
    both = set(grid) & set(fixed)
    if both:
        raise UsageError(f"parameter(s) both swept and fixed: {sorted(both)}")
    harness, seeds, metric = _prepare(args)
    res = run_points(harness, args.method, grid_points(grid), fixed, seeds,
                     progress=not args.no_progress)
    return _finish(res, args, "sweep", lambda p: plot_sweep(res, grid, metric, p), started,
                   {"grid": grid})
