"""Command line: one module per command, each a thin layer over the library.

    python -m benchmark run --methods inb,avgrank,random [--protocol dcd48] [--seeds 10]
    python -m benchmark list methods|protocols|models|datasets|features|embedders
    python -m benchmark leaderboard [--rerun] [--check]
    python -m benchmark check methods.inb:ImageNetBaseline
    python -m benchmark data verify|pull
    python -m benchmark extract <kind> ...
    python -m benchmark zoo train|build minizoo

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int`` and is listed
in :data:`COMMANDS`; it is imported when the parser is built, so it keeps heavy imports (torch)
inside ``run``. Shared helpers live in :mod:`benchmark.cli.common`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, help), in the order ``--help`` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("benchmark.cli.run", "run methods on a protocol (leave-one-dataset-out)"),
    "list": ("benchmark.cli.listing", "list methods, protocols, models, datasets, features"),
    "check": ("benchmark.cli.check", "conformance checks of selectors (names or module:Class)"),
    "data": ("benchmark.cli.data", "upstream files: verify checksums or pull them"),
    "leaderboard": ("benchmark.cli.leaderboard", "regenerate leaderboard/*.md from results"),
    "extract": ("benchmark.cli.extract", "extraction stage (needs the [extract] extra: torch)"),
    "sweep": ("benchmark.cli.sweep", "a method's metrics over a grid of its parameters (+ heatmap)"),
    "sample-efficiency": ("benchmark.cli.sample_efficiency",
                          "metrics vs number of images (+ plot)"),
    "proxy-reliability": ("benchmark.cli.proxy_reliability",
                          "DCD Table 1: task-distance proxies vs per-model accuracy gaps (+ plot)"),
    "seed-boxplots": ("benchmark.cli.seed_boxplots", "per-seed box plots of a run's metrics (DCD Fig. 5)"),
    "upstream-gap": ("benchmark.cli.upstream_gap",
                     "upstream code's number reproduced, then decomposed into its artefacts"),
    "performance-prediction": ("benchmark.cli.performance_prediction",
                               "LOVM's second task: L1 of each model's predicted top-1"),
    "fidelity": ("benchmark.cli.fidelity",
                 "upstream code's numbers reproduced next to the clean protocol's (fidelity.md)"),
    "compare": ("benchmark.cli.compare", "two results directories: means, differences, paired tests"),
    "features": ("benchmark.cli.features", "feature packs: export, import (verified), origin"),
    "score": ("benchmark.cli.score", "score submitted predictions against a protocol"),
    "release": ("benchmark.cli.release", "freeze protocols, ground truth and pinned packs"),
    "zoo": ("benchmark.cli.zoo", "train / build the miniature zoo (minizoo protocol)"),
}


def prog_name(argv0: str | None = None) -> str:
    """``vlm-bench`` when run as the console script, else ``python -m benchmark``."""
    import os

    base = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    return "vlm-bench" if base.removesuffix(".exe") == "vlm-bench" else "python -m benchmark"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from benchmark.cli.common import HelpFormatter

    parser = argparse.ArgumentParser(prog=prog or prog_name(),
                                     description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details; show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=HelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from benchmark.cli.common import one_line_errors

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except one_line_errors() as err:
        if args.verbose:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
