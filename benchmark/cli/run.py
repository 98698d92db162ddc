"""``python -m benchmark run --methods ...``: methods on a protocol, results written to a directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.cli.common import (
    add_data_options,
    add_grid_options,
    add_progress_option,
    add_results_option,
    csv_list,
    nested_methods,
    parse_param,
    parse_seeds,
)
from benchmark.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.core.protocol import DEFAULT_PROTOCOL

    p.add_argument("--methods", required=True,
                   help="comma-separated registry names (`list methods`), module:Class or "
                   "path/to/file.py:Class")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                   help="a protocol name (`list protocols`) or a protocol TOML file")
    p.add_argument("--seeds", help="number of seeds (default: the protocol's, 10) or a list "
                   "(0,3,7); deterministic methods run once whatever the count")
    p.add_argument("--models", help="restrict the protocol's zoo to these model ids "
                   "(default: the whole zoo)")
    p.add_argument("--datasets", help="restrict the protocol's datasets, targets and sources "
                   "(default: all of them)")
    add_results_option(p)
    p.add_argument("--out", metavar="DIR",
                   help="write this run to DIR exactly (default ROOT/<protocol>/<timestamp>, "
                   "ROOT from --results)")
    p.add_argument("--set", action="append", metavar="METHOD.PARAM=VALUE",
                   help="override a parameter of a requested method (repeatable); METHOD is "
                   "its --methods name, its `name` attribute or its class name")
    p.add_argument("--tau-variant", choices=["clean", "lovm"],
                   help="Kendall tau@k: clean tau-b on the top-k intersection, or LOVM's code "
                   "(default: the protocol's, clean unless it says otherwise)")
    p.add_argument("--ndcg-ideal", choices=["intersection", "truth_topk"],
                   help="NDCG@k's ideal ranking: of the top-k intersection, or the true top k "
                   "(default: the protocol's, intersection unless it says otherwise)")
    p.add_argument("--features-dir", help="feature pack directory (default $VLMBENCH_FEATURES, "
                   "else $VLMBENCH_CACHE/features, else ~/.cache/vlmbench/features)")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="skip methods whose features are missing instead of failing")
    p.add_argument("--common-candidates", action="store_true",
                   help="rank, on every target, only the models all requested methods cover")
    p.add_argument("--allow-partial", action="store_true",
                   help="rank only the models that have a method's features (coverage reported)")
    p.add_argument("--allow-random-init", action="store_true",
                   help="accept feature packs extracted with --random-init (smoke tests)")
    p.add_argument("--list-missing", action="store_true",
                   help="when features are missing, also print one extract command per "
                   "(kind, model) (the error itself is a short summary)")
    add_grid_options(p)
    add_progress_option(p)
    add_data_options(p)


def run(args) -> int:
    from benchmark.core import results
    from benchmark.core.harness import MissingFeaturesError
    from benchmark.core.protocol import get_protocol, minizoo_seed

    names = csv_list(args.methods)
    if not names:
        raise UsageError("--methods is empty (e.g. --methods inb,avgrank,random)")
    overrides: dict[str, dict] = {}
    for item in args.set or []:
        method, name, value = parse_param(item)
        overrides.setdefault(method, {})[name] = value
    names, overrides = nested_methods(names, args.grid, args.select, args.select_metric,
                                      overrides)
    seeds = parse_seeds(args.seeds)
    out = Path(args.out) if args.out else results.default_out_dir(
        get_protocol(args.protocol).name, Path(args.results))
    with results.reserve(out):  # before computing: exists, unwritable or busy -> one line
        world_seed = minizoo_seed(get_protocol(args.protocol))
        if world_seed is not None:
            # a synthetic zoo (minizoo, minizoo-sN) is trained and extracted here, on demand
            # (resumable; seconds when everything is present): zoo build minizoo [--seed N]
            from benchmark.minizoo import pipeline

            pipeline.ensure(csv_list(args.models) or None, world_seed=world_seed,
                            features_dir=args.features_dir, progress=not args.no_progress,
                            datasets=csv_list(args.datasets) or None)
        try:
            res = _evaluate(args, names, seeds, overrides)
        except MissingFeaturesError as err:
            if args.list_missing:
                print("\n".join(err.listing))
            raise
        res.save(out, extra={"command": " ".join(sys.argv)})
    print(summary(res))
    print(f"wrote {out} ({res.provenance['wall_time_s']:.1f} s)")
    return 0


def _evaluate(args, names, seeds, overrides):
    """``benchmark.evaluate`` with this command's options (its errors are the API's)."""
    from benchmark.api import evaluate

    return evaluate(
        names, args.protocol, seeds, params=overrides,
        models=csv_list(args.models) or None, datasets=csv_list(args.datasets) or None,
        tau_variant=args.tau_variant, ndcg_ideal=args.ndcg_ideal,
        features_dir=args.features_dir, mirror=args.mirror, offline=args.offline or None,
        skip_unavailable=args.skip_unavailable, allow_partial=args.allow_partial,
        allow_random_init=args.allow_random_init, common_candidates=args.common_candidates,
        progress=not args.no_progress,
    )


def summary(result) -> str:
    from tabulate import tabulate

    from benchmark.report.leaderboard import (
        RANKING_COLUMNS,
        method_coverage,
        outcome_frame,
        partial_methods,
        summarize,
    )

    table = summarize(result.scores, RANKING_COLUMNS)
    if table.empty:
        return "(no scores)"
    table.insert(len(table.columns) - 1, "coverage",
                 table["method"].map(method_coverage(result.coverage)).fillna(""))
    text = tabulate(table, headers="keys", tablefmt="github", showindex=False,
                    disable_numparse=True)
    if result.scores["metric"].eq("acc").any():
        outcome, note = outcome_frame(result.scores, set(partial_methods(result.coverage)))
        text += ("\n\nWhat a user gets (regret vs the best of all the target's candidates):\n"
                 + tabulate(outcome, headers="keys", tablefmt="github", showindex=False,
                            disable_numparse=True) + "\n" + note)
    from benchmark.report.leaderboard import cost_frame

    cost = cost_frame(dict(result.provenance.get("methods", {})), result.timings)
    if not cost.empty:
        text += ("\n\nCost of selecting (wall time per target fold; timings.csv):\n"
                 + tabulate(cost, headers="keys", tablefmt="github", showindex=False,
                            disable_numparse=True))
    return text
