"""``python -m benchmark check SELECTOR...``: conformance checks of selectors."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("selectors", nargs="+", metavar="SELECTOR",
                   help="registry names (`list methods`), module:Class or "
                   "path/to/file.py:Class; each runs the conformance checks (parameters, "
                   "fit/score contract, determinism, leakage) in seconds")
    from benchmark.cli.common import add_grid_options

    add_grid_options(p)


def run(args) -> int:
    from benchmark.cli.common import nested_methods
    from benchmark.core.check import check_selector

    failed = 0
    for target in args.selectors:
        grid = [g for g in args.grid or [] if g.partition("=")[0].rpartition(".")[0] == target]
        [method], params = nested_methods([target], grid, args.select if grid else None,
                                          args.select_metric, {})
        given = params.get(getattr(method, "name", None), {}) if isinstance(method, type) else {}
        for r in check_selector(method, given or None):
            mark = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
            label = method.name if isinstance(method, type) else target
            print(f"{mark}  {label}: {r.check}" + (f" -- {r.detail}" if r.detail else ""))
            failed += not r.passed
    return 1 if failed else 0
