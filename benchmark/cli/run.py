"""``python -m benchmark run --methods ...``: methods on a protocol, results written to a directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.cli.common import add_data_options, csv_list, parse_param, parse_seeds
from benchmark.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.core.protocol import DEFAULT_PROTOCOL

    p.add_argument("--methods", required=True, help="comma-separated names or module:Class")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    p.add_argument("--seeds", help="number of seeds (default: the protocol's 10) or a list")
    p.add_argument("--models", help="restrict the protocol's zoo to these model ids")
    p.add_argument("--datasets", help="restrict the protocol's datasets (targets and sources)")
    p.add_argument("--out", help="results directory (default results/<protocol>/<timestamp>)")
    p.add_argument("--set", action="append", metavar="METHOD.PARAM=VALUE",
                   help="override a parameter of a requested method (repeatable)")
    p.add_argument("--tau-variant", choices=["clean", "lovm"])
    p.add_argument("--ndcg-ideal", choices=["intersection", "truth_topk"])
    p.add_argument("--features-dir", help="feature pack directory (default $VLMBENCH_FEATURES "
                   "or ~/.cache/vlmbench/features)")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="skip methods whose features are missing instead of failing")
    p.add_argument("--common-candidates", action="store_true",
                   help="rank, on every target, only the models all requested methods cover")
    p.add_argument("--allow-partial", action="store_true",
                   help="rank only the models that have a method's features (coverage reported)")
    p.add_argument("--allow-random-init", action="store_true",
                   help="accept feature packs extracted with --random-init (smoke tests)")
    p.add_argument("--no-progress", action="store_true")
    add_data_options(p)


def run(args) -> int:
    from benchmark.api import evaluate
    from benchmark.core import results

    names = csv_list(args.methods)
    if not names:
        raise UsageError("--methods is empty (e.g. --methods inb,avgrank,random)")
    overrides: dict[str, dict] = {}
    for item in args.set or []:
        method, name, value = parse_param(item)
        overrides.setdefault(method, {})[name] = value
    if args.protocol == "minizoo":
        # the synthetic zoo is trained and extracted here, on demand (resumable; seconds
        # when everything is present): python -m benchmark zoo build minizoo
        from benchmark.minizoo import pipeline

        pipeline.ensure(csv_list(args.models) or None, features_dir=args.features_dir,
                        progress=not args.no_progress,
                        datasets=csv_list(args.datasets) or None)
    res = evaluate(
        names, args.protocol, parse_seeds(args.seeds), params=overrides,
        models=csv_list(args.models) or None, datasets=csv_list(args.datasets) or None,
        tau_variant=args.tau_variant, ndcg_ideal=args.ndcg_ideal,
        features_dir=args.features_dir, mirror=args.mirror, offline=args.offline or None,
        skip_unavailable=args.skip_unavailable, allow_partial=args.allow_partial,
        allow_random_init=args.allow_random_init, common_candidates=args.common_candidates,
        progress=not args.no_progress,
    )
    out = Path(args.out) if args.out else results.default_out_dir(res.protocol)
    res.save(out, extra={"command": " ".join(sys.argv)})
    print(summary(res))
    print(f"wrote {out} ({res.provenance['wall_time_s']:.1f} s)")
    return 0


def summary(result) -> str:
    from tabulate import tabulate

    from benchmark.report.leaderboard import method_coverage, summarize

    table = summarize(result.scores)
    if table.empty:
        return "(no scores)"
    table.insert(len(table.columns) - 1, "coverage",
                 table["method"].map(method_coverage(result.coverage)).fillna(""))
    return tabulate(table, headers="keys", tablefmt="github", showindex=False)
