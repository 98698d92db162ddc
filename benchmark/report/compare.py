"""``benchmark compare RUN_A RUN_B``: two results directories, method by method.

    python -m benchmark compare results/dcd48/A results/dcd48/B [--metrics ndcg@5,sum@5]
        [--csv FILE] [--latex FILE]

For every metric and every method present in both runs, on the targets both runs evaluated
for that method (paired): A's and B's mean over those targets of the per-target mean over
seeds, the difference B - A, and the paired tests of :mod:`benchmark.report.analysis` (two-sided
Wilcoxon signed-rank and sign-flip permutation test over targets), plus win/tie/loss of B
against A. Methods in only one run are listed with "—". Notes flag what makes the comparison
unlike (different protocols, metric variants, candidate coverage, targets).

``--csv FILE`` writes the numbers (unrounded to 6 decimals), ``--latex FILE`` a booktabs table
(``\\usepackage{booktabs,amssymb}``). The leaderboard's main tables are exported with
``python -m benchmark leaderboard --export DIR``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report import analysis

DEFAULT_METRICS = "ndcg@3,ndcg@5,ndcg@7,tau@5,recall@5,sum@5,acc@1,regret@1"


def _mark(mark: str, metric: str) -> str:
    """▲ = B better; for a regret (lower is better) the test's "higher" is worse."""
    from benchmark.report.leaderboard import LOWER_IS_BETTER

    return {"▲": "▼", "▼": "▲"}.get(mark, mark) if metric in LOWER_IS_BETTER else mark


def _parse_metrics(text: str) -> list[tuple[str, int]]:
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, at, k = item.partition("@")
        if not at or not k.isdigit():
            raise ValueError(f"--metrics {item!r}: expected METRIC@K (e.g. ndcg@5)")
        out.append((name, int(k)))
    return out


def compare(run_a, run_b, metrics: list[tuple[str, int]]) -> tuple[pd.DataFrame, list[str]]:
    """One row per (metric, method): the numbers; and notes on what differs between the runs."""
    from benchmark.report.leaderboard import method_coverage

    notes = []
    pa, pb = run_a.run["protocol"], run_b.run["protocol"]
    if pa["name"] != pb["name"]:
        notes.append(f"different protocols: A is {pa['name']}, B is {pb['name']}")
    if pa.get("metrics") != pb.get("metrics"):
        notes.append(f"different metric variants: A {pa.get('metrics')}, B {pb.get('metrics')}")
    if bool(run_a.run.get("common_candidates")) != bool(run_b.run.get("common_candidates")):
        notes.append("one run ranks only the common candidates (common_candidates=True)")
    cov_a, cov_b = method_coverage(run_a.coverage), method_coverage(run_b.coverage)
    methods_a, methods_b = set(run_a.scores["method"]), set(run_b.scores["method"])
    if not methods_a & methods_b:
        notes.append(f"no method in common (A: {', '.join(sorted(methods_a)) or 'none'}; B: "
                     f"{', '.join(sorted(methods_b)) or 'none'}): nothing to pair, so no "
                     "differences or tests")
    for m in sorted(methods_a & methods_b):
        if cov_a.get(m) != cov_b.get(m):
            notes.append(f"{m}: coverage differs (A {cov_a.get(m)}, B {cov_b.get(m)})")
    rows = []
    for metric, k in metrics:
        ma = analysis.target_matrix(run_a.scores, metric, k)
        mb = analysis.target_matrix(run_b.scores, metric, k)
        if ma.empty and mb.empty:
            notes.append(f"{metric}@{k}: in neither run")
            continue
        for m in sorted(methods_a | methods_b):
            row = {"metric": f"{metric}@{k}", "method": m, "n_targets": 0,
                   "mean_a": np.nan, "mean_b": np.nan, "delta": np.nan,
                   "p_wilcoxon": np.nan, "p_permutation": np.nan,
                   "wins": np.nan, "ties": np.nan, "losses": np.nan, "mark": ""}
            if m in ma.columns and m in mb.columns:
                both = pd.concat([ma[m].rename("a"), mb[m].rename("b")], axis=1).dropna()
                only = sorted(set(ma[m].dropna().index) ^ set(mb[m].dropna().index))
                if only and (metric, k) == metrics[0]:
                    notes.append(f"{m}: {len(only)} target(s) in one run only "
                                 f"({', '.join(only[:5])}{', ...' if len(only) > 5 else ''}); "
                                 "means and tests use the shared ones")
                p = analysis.paired(both, "b", "a")
                if p is not None:
                    row.update(n_targets=p.n_targets, mean_a=p.mean_b, mean_b=p.mean_a,
                               delta=p.delta, p_wilcoxon=p.wilcoxon.pvalue,
                               p_permutation=p.permutation.pvalue, wins=p.wins, ties=p.ties,
                               losses=p.losses, mark=_mark(p.mark(), metric))
            rows.append(row)
    from benchmark.report.leaderboard import tidy_numbers

    return tidy_numbers(pd.DataFrame(rows), ["n_targets", "wins", "ties", "losses"]), notes


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Rounded cells for the terminal and LaTeX."""
    from benchmark.report.leaderboard import _fmt

    def wtl(r):
        return "—" if pd.isna(r["wins"]) else \
            f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])}"

    return pd.DataFrame({
        "metric": table["metric"],
        "method": table["method"],
        "A": [_fmt(v) for v in table["mean_a"]],
        "B": [_fmt(v) for v in table["mean_b"]],
        "B − A": [(_fmt(v) + (f" {m}" if np.isfinite(v) else "")) if np.isfinite(v) else "—"
                  for v, m in zip(table["delta"], table["mark"], strict=True)],
        "targets": [str(int(n)) if not pd.isna(n) and n else "—" for n in table["n_targets"]],
        "Wilcoxon p": [analysis.format_p(p) for p in table["p_wilcoxon"]],
        "permutation p": [analysis.format_p(p) for p in table["p_permutation"]],
        "W/T/L (B vs A)": [wtl(r) for _, r in table.iterrows()],
    })
