"""``python -m benchmark check SELECTOR...``: conformance checks of selectors."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("selectors", nargs="+", metavar="SELECTOR",
                   help="registry names (`list methods`), module:Class or "
                   "path/to/file.py:Class; each runs the conformance checks (parameters, "
                   "fit/score contract, determinism, leakage) in seconds")


def run(args) -> int:
    from benchmark.core.check import check_selector

    failed = 0
    for target in args.selectors:
        for r in check_selector(target):
            mark = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
            print(f"{mark}  {target}: {r.check}" + (f" -- {r.detail}" if r.detail else ""))
            failed += not r.passed
    return 1 if failed else 0
