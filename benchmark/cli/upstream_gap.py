"""``python -m benchmark upstream-gap [--scores G,C,INB] [--protocol lovm-upstream]``.

The upstream code's number for ModelGPT, reproduced on a reproduction protocol (feature subset
chosen on the test targets, ImageNet-1k a target, LOVM's tau), then each artefact removed in
turn down to the clean protocol. Thin layer over :mod:`benchmark.studies.upstream_gap`.
"""

from __future__ import annotations

import argparse

from benchmark.cli.common import add_data_options, csv_list, data_layer
from benchmark.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="lovm-upstream",
                   help="reproduction protocol (lovm-upstream; swab-upstream with --scores INB "
                   "only: SWAB's ModelGPT inputs are not public)")
    p.add_argument("--scores", action="append",
                   help="a score set of LOVM's eval.sh, e.g. G,C,INB (repeatable; default "
                   "G,C,INB and C,G)")
    p.add_argument("--out", help="also write the markdown table to this file")
    add_data_options(p)


def run(args) -> int:
    from benchmark.studies import upstream_gap as u

    sets = args.scores or ["G,C,INB", "G,C"]
    for s in sets:
        bad = [g for g in csv_list(s) if g not in u.LOVM_GROUPS]
        if bad:
            raise UsageError(f"unknown score group {bad[0]!r} in {s!r} "
                             f"(valid: {', '.join(u.LOVM_GROUPS)})")
    if args.protocol == "swab-upstream" and args.scores and all(s == "INB" for s in sets):
        pass  # SWAB's own code prints INB from public data; its ModelGPT inputs are not public
    elif args.protocol != "lovm-upstream":
        raise UsageError(f"upstream-gap runs ModelGPT on LOVM's published features: protocol "
                         f"lovm-upstream only (swab-upstream: --scores INB), not "
                         f"{args.protocol!r}")
    data = data_layer(args)
    rows = [r for s in sets for r in u.decompose(data, s, args.protocol)]
    text = u.markdown(rows, args.protocol)
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0
