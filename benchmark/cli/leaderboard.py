"""``python -m benchmark leaderboard``: regenerate (or check) leaderboard/*.md from results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.cli.common import add_data_options, add_deprecated, add_results_option
from benchmark.report import leaderboard
from benchmark.report.leaderboard import FIGURES, LEADERBOARD_DIR

DEFAULT_RESULTS = "results/leaderboard"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_results_option(p, DEFAULT_RESULTS, "the leaderboard's runs, ROOT/<protocol>/<run>; "
                       "computed first when there are none yet (a fresh clone)")
    p.add_argument("--rerun", action="store_true",
                   help="first run leaderboard/runs.toml into --results (replacing an earlier rerun "
                   "there; a root holding anything else is refused)")
    p.add_argument("--check", action="store_true",
                   help="do not write; fail if the pages in --pages differ from the "
                   "regenerated ones")
    p.add_argument("--pages", metavar="DIR", default=str(LEADERBOARD_DIR),
                   help="where the Markdown pages and figures go")
    add_deprecated(p, "--out", "--pages", dest="pages")
    p.add_argument("--export", metavar="DIR",
                   help="also write every protocol's main table as DIR/<protocol>-main.csv and "
                   ".tex (and -common for the like-for-like table)")
    add_data_options(p)


def run(args: argparse.Namespace) -> int:
    from benchmark.data.upstream import DataLayer
    from benchmark.features.store import atomic_write_bytes
    from benchmark.report import plots

    plots.reuse(sorted((Path(args.pages) / FIGURES).glob("*.png")))
    spec = leaderboard.load_spec()
    root = Path(args.results)
    if not args.rerun and not any(root.rglob("run.json")):
        print(f"no runs under {root} yet: computing leaderboard/runs.toml's runs first (as "
              "--rerun; about a minute, later calls reuse them)", file=sys.stderr)
        args.rerun = True
    if args.rerun:  # refuses a root holding anything it did not write; never rmtree
        leaderboard.rerun_root(spec, root, DataLayer(mirror=args.mirror,
                                                     online=False if args.offline else None))
    files = leaderboard.render_all(spec, root)
    out = Path(args.pages)
    if getattr(args, "export", None):
        written = leaderboard.export_tables(spec, root, Path(args.export))
        print(f"exported {len(written)} files to {args.export}")
    if args.check:
        stale = leaderboard.check(files, out, leaderboard.measured_protocols(spec))
        failing = leaderboard.measured_failures(spec, root)
        for line in failing:
            print(f"not a ranking task: {line}", file=sys.stderr)
        if failing:
            return 1
        if stale:
            print(f"leaderboard is stale: {', '.join(stale)}; run `python -m benchmark "
                  "leaderboard --rerun` and commit the result", file=sys.stderr)
            return 1
        print(f"leaderboard up to date ({len(files)} files)")
        return 0
    (out / FIGURES).mkdir(parents=True, exist_ok=True)
    for name in leaderboard._stale_figures(out, files):
        (out / name).unlink()
    for name, content in files.items():
        atomic_write_bytes(out / name, content if isinstance(content, bytes) else content.encode())
    print(f"wrote {len(files)} files to {out}")
    return 0
