"""``benchmark seed-boxplots``: per-seed box plots of a run (see :mod:`benchmark.studies.seed_boxplots`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="a results directory of `benchmark run` (holds scores.csv)")
    p.add_argument("--metrics", default="ndcg@5,tau@5,ndcg@3,ndcg@7", help="name@k, comma-separated")
    p.add_argument("--out", help="output .png (default RESULTS/seed_boxplots.png)")


def run(args) -> int:
    import pandas as pd

    from benchmark.studies.seed_boxplots import per_seed, plot

    src = Path(args.results) / "scores.csv"
    if not src.is_file():
        raise UsageError(f"{src}: not found (expected a results directory of `benchmark run`)")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    table = per_seed(pd.read_csv(src), metrics)
    missing = sorted(set(metrics) - set(table["metric"]))
    if missing:
        raise UsageError(f"metric(s) not in {src}: {', '.join(missing)}")
    out = Path(args.out) if args.out else Path(args.results) / "seed_boxplots.png"
    protocol = pd.read_csv(src, nrows=1)["protocol"].iloc[0]
    plot(table, metrics, out, title=f"{protocol}: per-seed means over targets")
    table.to_csv(out.with_suffix(".csv"), index=False)
    print(f"wrote {out}")
    return 0
