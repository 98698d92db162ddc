"""Leaderboard: results -> Markdown, as a pure function of the scores tables.

Aggregation (``metrics.md``): for every method and seed, the mean over the protocol's
evaluated targets; then mean ± std (ddof=0) over seeds. A method missing any target of the
run shows "—" for that mean, never an average over a subset. Output is deterministic (sorted
rows, fixed decimals, no dates or paths), so CI regenerates it and fails on a diff
(``python -m benchmark leaderboard --rerun --check``).

Which runs make up the leaderboard is declared in ``leaderboard/runs.toml``.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark import __version__

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
LEADERBOARD_DIR = ROOT / "leaderboard"
RUNS_FILE = LEADERBOARD_DIR / "runs.toml"
MAIN_COLUMNS = [("ndcg", 3), ("ndcg", 5), ("ndcg", 7), ("tau", 5), ("recall", 5), ("sum", 5)]
LABELS = {"ndcg": "NDCG", "tau": "τ", "recall": "R", "sum": "Sum"}
DECIMALS = 3

# Published numbers of the DCD paper (48 models x 21 datasets, 10 seeds): reported, not computed.
REPORTED = {
    "dcd48": {
        "source": "DCD paper (Model-Specific Task Similarity for VLM Selection via Layer "
        "Conductance), main table; 48 models x 21 datasets, 10 seeds",
        "rows": {
            "INB": {("ndcg", 5): 0.539, ("tau", 5): 0.268, ("ndcg", 3): 0.384, ("ndcg", 7): 0.651},
            "AvgRank": {("ndcg", 5): 0.524, ("tau", 5): 0.254, ("ndcg", 3): 0.386,
                        ("ndcg", 7): 0.699},
            "ModelGPT": {("ndcg", 5): 0.544, ("tau", 5): 0.267, ("ndcg", 3): 0.386,
                         ("ndcg", 7): 0.702},
            "SWAB": {("ndcg", 5): 0.616, ("tau", 5): 0.318, ("ndcg", 3): 0.393,
                     ("ndcg", 7): 0.691},
            "DCD": {("ndcg", 5): 0.707, ("tau", 5): 0.365, ("ndcg", 3): 0.402,
                    ("ndcg", 7): 0.752},
        },
    }
}


def _label(metric: str, k: int) -> str:
    return f"{LABELS[metric]}@{k}"


def seed_means(scores: pd.DataFrame) -> pd.DataFrame:
    """(method, seed, metric, k) -> mean over targets; NaN if the method misses a target."""
    targets = sorted(scores["target"].unique())
    rows = []
    for (method, seed, metric, k), g in scores.groupby(["method", "seed", "metric", "k"]):
        values = g.set_index("target")["value"].reindex(targets)
        rows.append((method, seed, metric, k, values.mean(skipna=False)))
    return pd.DataFrame(rows, columns=["method", "seed", "metric", "k", "value"])


def _fmt(mean: float, std: float | None = None) -> str:
    if mean is None or not np.isfinite(mean):
        return "—"
    mean = round(float(mean), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if std is None:
        return f"{mean:.{DECIMALS}f}"
    return f"{mean:.{DECIMALS}f} ± {round(float(std), DECIMALS) + 0.0:.{DECIMALS}f}"


def summarize(scores: pd.DataFrame, columns=MAIN_COLUMNS) -> pd.DataFrame:
    """Main table: one row per method, "mean ± std over seeds" per metric column.

    Rows are ordered by the last column's mean (Sum@5 by default), best first; missing last.
    """
    means = seed_means(scores)
    out, keys = [], []
    for method in sorted(means["method"].unique()):
        row = {"method": method}
        key = np.inf
        for metric, k in columns:
            v = means[(means.method == method) & (means.metric == metric) & (means.k == k)]
            vals = v["value"].to_numpy(float)
            if len(vals) == 0 or not np.all(np.isfinite(vals)):
                row[_label(metric, k)] = "—"
                key = np.inf
            else:
                row[_label(metric, k)] = _fmt(vals.mean(), vals.std(ddof=0))
                key = -round(float(vals.mean()), DECIMALS)
        row["seeds"] = int(means.loc[means.method == method, "seed"].nunique())
        out.append(row)
        keys.append((key, method))
    order = sorted(range(len(out)), key=lambda i: keys[i])
    return pd.DataFrame([out[i] for i in order]).reset_index(drop=True)


def per_dataset(scores: pd.DataFrame, metric: str = "ndcg", k: int = 5) -> pd.DataFrame:
    """target x method: mean over seeds of one metric."""
    s = scores[(scores.metric == metric) & (scores.k == k)]
    table = s.groupby(["target", "method"])["value"].mean().unstack("method")
    return table.sort_index().map(lambda v: _fmt(v))


def render_protocol(runs, protocol_name: str, needs: dict[str, str] | None = None) -> str:
    """Markdown for one protocol from its stored runs (latest run per method wins)."""
    from benchmark.protocol import get_protocol

    protocol = get_protocol(protocol_name)
    scores, coverage, run_meta = _latest_per_method(runs)
    seeds = sorted(scores["seed"].unique()) if not scores.empty else []
    metric_cfg = next(iter(run_meta.values()))["protocol"]["metrics"] if run_meta else {}
    lines = [
        f"# Leaderboard: `{protocol.name}`",
        "",
        f"{protocol.description}. Leave-one-dataset-out: every target dataset is held out once;",
        "a method sees the other datasets' ground truth and never the target's.",
        "",
        f"- Ground truth: {', '.join(protocol.gt_sources)} (per cell, first source that "
        "publishes it; see coverage below).",
        f"- Metrics: NDCG ideal = `{metric_cfg.get('ndcg_ideal', '?')}`, τ variant = "
        f"`{metric_cfg.get('tau_variant', '?')}` (Kendall tau-b on the top-k intersection); "
        "R@k = top-k recall; Sum = NDCG@5 + τ@5.",
        f"- Seeds: {len(seeds)} ({', '.join(map(str, seeds))}); cells are mean ± std over seeds "
        "of the mean over targets.",
        f"- Produced by vlmbench {__version__} (`python -m benchmark leaderboard --rerun`).",
        "",
        "## Results (computed by this code)",
        "",
    ]
    main = summarize(scores)
    cov_note = method_coverage(coverage)
    if not main.empty:
        main.insert(len(main.columns) - 1, "coverage", main["method"].map(cov_note).fillna(""))
    for method, reason in sorted((needs or {}).items()):
        row = {c: "—" for c in main.columns} if not main.empty else {}
        row.update({"method": method, "coverage": reason, "seeds": 0})
        main = pd.concat([main, pd.DataFrame([row])], ignore_index=True)
    lines.append(tabulate(main, headers="keys", tablefmt="github", showindex=False)
                 if not main.empty else "(no results)")
    lines.append("")
    if protocol_name in REPORTED:
        rep = REPORTED[protocol_name]
        lines += ["## Reported in the literature (not computed here)", "",
                  f"Source: {rep['source']}.", ""]
        cols = [(m, k) for m, k in MAIN_COLUMNS if any((m, k) in r for r in rep["rows"].values())]
        rows = [[name] + [_fmt(r.get(c)) if c in r else "—" for c in cols]
                for name, r in rep["rows"].items()]
        lines += [tabulate(rows, headers=["method"] + [_label(*c) for c in cols],
                           tablefmt="github"), ""]
    if not scores.empty:
        lines += ["## NDCG@5 per target (mean over seeds)", "",
                  tabulate(per_dataset(scores), headers="keys", tablefmt="github"), ""]
    lines += ["## Coverage", ""]
    lines += [_coverage_table(run_meta, coverage, protocol), ""]
    if protocol.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in protocol.notes] + [""]
    return "\n".join(lines)


def _latest_per_method(runs):
    scores, coverage, meta = [], [], {}
    chosen: dict[str, object] = {}
    for run in runs:  # sorted by path: later runs override earlier ones
        for method in run.scores["method"].unique():
            chosen[method] = run
    for method, run in sorted(chosen.items()):
        scores.append(run.scores[run.scores.method == method])
        coverage.append(run.coverage[run.coverage.method == method])
        meta[method] = run.run
    if not scores:
        return pd.DataFrame(), pd.DataFrame(), {}
    return pd.concat(scores), pd.concat(coverage), meta


def method_coverage(coverage: pd.DataFrame) -> dict[str, str]:
    out = {}
    if coverage.empty:
        return out
    for method, g in coverage.groupby("method"):
        got, full = int(g["candidates"].sum()), int(g["protocol_candidates"].sum())
        out[method] = "all candidates" if got == full else f"{got}/{full} candidate cells"
    return out


def _coverage_table(run_meta, coverage, protocol) -> str:
    if coverage.empty:
        return "(no runs)"
    first = coverage.drop_duplicates("target").set_index("target")
    zoo = len(protocol.zoo)
    rows = []
    for t in protocol.datasets:
        if t in first.index:
            rows.append((t, f"{int(first.loc[t, 'protocol_candidates'])}/{zoo}"))
        else:
            rows.append((t, f"0/{zoo} (not evaluated: fewer than 2 candidates)"))
    total = sum(int(first.loc[t, "protocol_candidates"]) for t in protocol.datasets
                if t in first.index)
    rows.append(("**all**", f"{total}/{zoo * len(protocol.datasets)}"))
    return tabulate(rows, headers=["target", "candidates / zoo"], tablefmt="github")


# -- regeneration ------------------------------------------------------------------------
def load_spec(path: Path = RUNS_FILE) -> dict:
    from benchmark._toml import load_toml

    return load_toml(path)


def rerun(spec: dict, out_root: Path, data) -> None:
    """Run every protocol of the spec into ``out_root/<protocol>``."""
    from benchmark import results
    from benchmark.harness import Harness, resolve_methods
    from benchmark.protocol import get_protocol

    for name, entry in spec["protocol"].items():
        protocol = get_protocol(name).with_options(seeds=tuple(range(int(entry["seeds"]))))
        harness = Harness.from_data(protocol, data)
        methods = resolve_methods(list(entry["methods"]))
        res = harness.run(methods, skip_unavailable=True, progress=False)
        results.write(res, out_root / name / "run")


def render_all(spec: dict, results_root: Path) -> dict[str, str]:
    """File name -> Markdown content, for every protocol in the spec plus the index."""
    from benchmark import results
    from benchmark.providers import get_kind

    files, index_rows = {}, []
    for name, entry in spec["protocol"].items():
        runs = results.find_runs(results_root / name)
        needs = {}
        for run in runs:
            needs.update(run.run.get("skipped", {}))
        ran = {m for r in runs for m in r.scores["method"].unique()}
        needs = {m: r for m, r in needs.items() if m not in ran}
        for m in entry.get("methods", []):
            if m not in ran and m not in needs:
                import methods as registry

                _, cls, _ = registry.resolve(m)
                needs[m] = "; ".join(get_kind(k).needs for k in cls.requires) or "not run"
        files[f"{name}.md"] = render_protocol(runs, name, needs)
        scores, _, _ = _latest_per_method(runs)
        if not scores.empty:
            top = summarize(scores).iloc[0]
            index_rows.append((f"[{name}]({name}.md)", top["method"], top[_label("ndcg", 5)],
                               top[_label("sum", 5)]))
    index = [
        "# vlmbench leaderboards",
        "",
        "Generated by `python -m benchmark leaderboard --rerun`; do not edit by hand.",
        "",
        tabulate(index_rows, headers=["protocol", "best method (Sum@5)", "its NDCG@5",
                                      "its Sum@5"], tablefmt="github"),
        "",
    ]
    files["README.md"] = "\n".join(index)
    return files


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results/leaderboard",
                   help="results root holding <protocol>/<run> directories")
    p.add_argument("--rerun", action="store_true",
                   help="first run leaderboard/runs.toml into --results (replacing it)")
    p.add_argument("--check", action="store_true",
                   help="do not write; fail if leaderboard/*.md differ from the regenerated ones")
    p.add_argument("--out", default=str(LEADERBOARD_DIR), help="where the Markdown goes")


def main(args: argparse.Namespace) -> int:
    import shutil

    from benchmark.data import DataLayer

    spec = load_spec()
    root = Path(args.results)
    if args.rerun:
        if root.exists():
            shutil.rmtree(root)
        rerun(spec, root, DataLayer(mirror=args.mirror, online=False if args.offline else None))
    files = render_all(spec, root)
    out = Path(args.out)
    if args.check:
        stale = []
        for name, text in files.items():
            current = (out / name).read_text() if (out / name).is_file() else ""
            if current != text:
                stale.append(name)
                diff = difflib.unified_diff(current.splitlines(), text.splitlines(),
                                            f"{out / name} (committed)", "regenerated", lineterm="")
                sys.stdout.write("\n".join(list(diff)[:40]) + "\n")
        if stale:
            print(f"leaderboard is stale: {', '.join(stale)}; run `python -m benchmark "
                  "leaderboard --rerun` and commit the result", file=sys.stderr)
            return 1
        print(f"leaderboard up to date ({len(files)} files)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        from benchmark.features import atomic_write_bytes

        atomic_write_bytes(out / name, text.encode())
    print(f"wrote {', '.join(sorted(files))} to {out}")
    return 0
