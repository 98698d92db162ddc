"""``benchmark performance-prediction``: LOVM's second task, the L1 of predicted top-1.

    python -m benchmark performance-prediction [--protocol lovm] [--methods modelgpt,inb,avgrank]
    python -m benchmark performance-prediction --protocol lovm-upstream --upstream-scores G,C,INB

Thin layer over :mod:`benchmark.studies.performance_prediction`. ``--upstream-scores`` (on
``lovm-upstream`` only) reproduces LOVM's ``generate_results.py --pred_type model_pred``: the
feature subset with the lowest L1 chosen on the test targets, labelled so.
"""

from __future__ import annotations

import argparse

from benchmark.cli.common import add_data_options, csv_list, data_layer
from benchmark.errors import UsageError

DEFAULT_METHODS = "modelgpt,modelgpt-noinb,inb,avgrank"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="lovm",
                   help="a protocol name (`list protocols`); lovm-upstream for the reproduction")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help="methods that predict a value (others are listed as not reported)")
    p.add_argument("--upstream-scores", action="append", metavar="SET",
                   help="lovm-upstream only: LOVM's model_pred output for this eval.sh score set "
                   "(e.g. G,C,INB; repeatable), subset chosen on the test targets")
    p.add_argument("--no-subsets", action="store_true",
                   help="with --upstream-scores: all the set's features (LOVM's --no_subsets)")
    p.add_argument("--csv", help="also write the per-target table to this CSV file")
    add_data_options(p)


def run(args) -> int:
    from benchmark.core.harness import Harness, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.studies import performance_prediction as pp
    from benchmark.studies import upstream_gap as ug

    data = data_layer(args)
    if args.upstream_scores:
        if args.protocol != "lovm-upstream":
            raise UsageError("--upstream-scores reproduces LOVM's code: --protocol "
                             "lovm-upstream only")
        for s in args.upstream_scores:
            bad = [g for g in csv_list(s) if g not in ug.LOVM_GROUPS]
            if bad:
                raise UsageError(f"unknown score group {bad[0]!r} in {s!r} "
                                 f"(valid: {', '.join(ug.LOVM_GROUPS)})")
        print("| score set | features | LOVM's L1 | L1 (MAE) | chosen |\n|---|---|---|---|---|")
        for s in args.upstream_scores:
            r = pp.upstream(data, s, subsets=not args.no_subsets)
            print(f"| {s} | {'+'.join(r['features'])} | {r['l1_lovm']:.6f} | {r['l1']:.6f} | "
                  f"{r['label']} ({r['n_subsets']} subset(s)) |")
        return 0
    protocol = get_protocol(args.protocol)
    protocol = protocol.with_options(seeds=protocol.seeds[:1])
    harness = Harness.from_data(protocol, data)
    table, skipped = pp.run(harness, resolve_methods(csv_list(args.methods)))
    print("\n".join(pp.markdown(table, skipped, protocol.name)))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0
