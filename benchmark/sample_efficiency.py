"""``benchmark sample-efficiency``: a method's metric against the number of unlabeled images.

    python -m benchmark sample-efficiency dcd --n-source 1,5,10,25,50,100 [--n-target 5,25|same]

Varies the method's ``n_source_images`` over ``--n-source``; ``--n-target`` adds
``n_target_images`` as a second axis (the product), or ``same`` ties it to ``n_source_images``
(the paper's 1..100 study); without it ``n_target_images`` keeps its default. Runs, outputs
(``sample_efficiency.csv``, ``scores.csv``, ``sample_efficiency.png``, ``.json``) and options as
in :mod:`benchmark.sweep`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmark.cli import CLIError
from benchmark.sweep import (
    _finish,
    _prepare,
    add_common_arguments,
    parse_fixed,
    parse_values,
    plot_sample_efficiency,
    run_points,
)

SOURCE, TARGET = "n_source_images", "n_target_images"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("--n-source", required=True, metavar="N1,N2,...",
                   help="numbers of images per source task (e.g. 1,5,10,25,50,100)")
    p.add_argument("--n-target", metavar="N1,N2,...|same",
                   help="numbers of target images (a second axis), or 'same' as --n-source")


def _counts(flag: str, text: str) -> list[int]:
    try:
        values = parse_values(text)
    except ValueError as err:
        raise CLIError(f"{flag} {err}") from None
    if not all(isinstance(v, (int, float)) and float(v).is_integer() and v >= 1 for v in values):
        raise CLIError(f"{flag} {text!r}: expected positive integers (e.g. 1,5,10,25)")
    return [int(v) for v in values]


def points(n_source: list[int], n_target: list[int] | str | None) -> list[dict[str, Any]]:
    """Grid points: n_target outer (one line each), n_source inner."""
    if n_target is None:
        return [{SOURCE: n} for n in n_source]
    if n_target == "same":
        return [{SOURCE: n, TARGET: n} for n in n_source]
    return [{SOURCE: s, TARGET: t} for t in n_target for s in n_source]


def run(args) -> int:
    started = time.perf_counter()
    n_source = _counts("--n-source", args.n_source)
    n_target: list[int] | str | None = None
    if args.n_target:
        n_target = "same" if args.n_target.strip() == "same" else _counts("--n-target",
                                                                           args.n_target)
    fixed = parse_fixed(args.set)
    both = {SOURCE, *([TARGET] if n_target is not None else [])} & set(fixed)
    if both:
        raise CLIError(f"parameter(s) both varied and fixed: {sorted(both)}")
    harness, seeds, metric = _prepare(args)
    res = run_points(harness, args.method, points(n_source, n_target), fixed, seeds,
                     progress=not args.no_progress)
    hue = TARGET if isinstance(n_target, list) else None
    return _finish(res, args, "sample_efficiency",
                   lambda p: plot_sample_efficiency(res, metric, p, SOURCE, hue), started,
                   {"n_source": n_source, "n_target": n_target})
