"""``python -m benchmark compare RUN_A RUN_B``: two results directories, paired tests."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from benchmark.report import analysis
from benchmark.report.compare import DEFAULT_METRICS, _parse_metrics, compare, display_frame


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="results directory (scores.csv, run.json, ...)")
    p.add_argument("run_b", metavar="RUN_B", help="results directory compared with RUN_A")
    p.add_argument("--metrics", default=DEFAULT_METRICS,
                   help=f"comma-separated METRIC@K (default {DEFAULT_METRICS})")
    p.add_argument("--csv", metavar="FILE", help="also write the numbers as CSV")
    p.add_argument("--latex", metavar="FILE", help="also write a booktabs LaTeX table")


def run(args: argparse.Namespace) -> int:
    from benchmark.core import results
    from benchmark.report.leaderboard import latex_table

    run_a, run_b = results.read(Path(args.run_a)), results.read(Path(args.run_b))
    table, notes = compare(run_a, run_b, _parse_metrics(args.metrics))
    shown = display_frame(table)
    print(f"A = {args.run_a}\nB = {args.run_b}")
    print(tabulate(shown, headers="keys", tablefmt="github", showindex=False,
                   disable_numparse=True))
    print(f"B − A: mean over the shared targets of the per-target mean over seeds; ▲/▼: B "
          f"significantly above/below A (two-sided Wilcoxon signed-rank, p < {analysis.ALPHA}); "
          f"W/T/L tie tolerance {analysis.TIE_TOL}.")
    for note in notes:
        print(f"note: {note}")
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.6f")
        print(f"wrote {args.csv}")
    if args.latex:
        Path(args.latex).write_text(latex_table(shown, "vlmbench compare: B - A"))
        print(f"wrote {args.latex}")
    return 0
