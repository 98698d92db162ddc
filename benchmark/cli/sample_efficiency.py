"""``benchmark sample-efficiency``: a method's metric against the number of unlabeled images.

    python -m benchmark sample-efficiency dcd --n-source 1,5,10,25,50,100 [--n-target 5,25|same]

Varies the method's ``n_source_images`` over ``--n-source``; ``--n-target`` adds
``n_target_images`` as a second axis (the product), or ``same`` ties it to ``n_source_images``
(the paper's 1..100 study); without it ``n_target_images`` keeps its default. Runs, outputs
(``sample_efficiency.csv``, ``scores.csv``, ``sample_efficiency.png``, ``.json``) and options as
in :mod:`benchmark.cli.sweep`.
"""

from __future__ import annotations

import argparse
import time

from benchmark.cli.sweep import _finish, _prepare, add_common_arguments, method_settings
from benchmark.errors import UsageError
from benchmark.studies.sample_efficiency import SOURCE, TARGET, counts, points
from benchmark.studies.sweep import parse_fixed, plot_sample_efficiency, run_points


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("--n-source", required=True, metavar="N1,N2,...",
                   help="numbers of images per source task (e.g. 1,5,10,25,50,100)")
    p.add_argument("--n-target", metavar="N1,N2,...|same",
                   help="numbers of target images (a second axis), or 'same' as --n-source")


def run(args) -> int:
    started = time.perf_counter()
    n_source = counts("--n-source", args.n_source)
    n_target: list[int] | str | None = None
    if args.n_target:
        n_target = "same" if args.n_target.strip() == "same" else counts("--n-target",
                                                                           args.n_target)
    fixed = parse_fixed(method_settings(args.method, args.set))
    both = {SOURCE, *([TARGET] if n_target is not None else [])} & set(fixed)
    if both:
        raise UsageError(f"parameter(s) both varied and fixed: {sorted(both)}")
    harness, seeds, metric = _prepare(args)
    res = run_points(harness, args.method, points(n_source, n_target), fixed, seeds,
                     progress=not args.no_progress)
    hue = TARGET if isinstance(n_target, list) else None
    return _finish(res, args, "sample_efficiency",
                   lambda p: plot_sample_efficiency(res, metric, p, SOURCE, hue), started,
                   {"n_source": n_source, "n_target": n_target})
