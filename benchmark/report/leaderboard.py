"""Leaderboard: results -> Markdown and PNG figures, as a pure function of the stored runs.

Aggregation (``metrics.md``): for every method and seed, the mean over the protocol's
evaluated targets; then mean ± std (ddof=0) over seeds. A method missing any target of the
run shows "—" for that mean, never an average over a subset. Output is deterministic (sorted
rows, fixed decimals, no dates or paths, byte-stable PNGs), so CI regenerates it and fails on a
diff (``python -m benchmark leaderboard --rerun --check``).

Significance (:mod:`benchmark.report.analysis`): each full-coverage method against the best one
(first by Sum@5), per metric, over the targets, on the per-target mean over seeds: two-sided
Wilcoxon signed-rank (the ▲/▼/= marks, p < 0.05) and a paired sign-flip permutation test;
win/tie/loss and a bootstrap CI of the mean over targets.

Coverage. A method that ranks only part of the candidates (``modelgpt``: the models with text
features) solves a different task than one ranking all of them: it is marked † with its
coverage, gets no marks and is never "best" in the main table. When a protocol has such a
method, ``rerun`` also runs all its methods with ``common_candidates=True`` (every method
ranks, on each target, only the models every method covers) and the page shows that second,
like-for-like table, with significance.

Which runs make up the leaderboard is declared in ``leaderboard/runs.toml``: ``[protocol.X]``
(methods, seeds) and ``[analysis.X]`` (sensitivity sweeps and sample-efficiency runs, drawn
only when declared and run).

Exports: ``leaderboard --export DIR`` writes every protocol's main table (and its
like-for-like table) as ``DIR/<protocol>-main.csv`` / ``.tex`` (and ``-common``); the LaTeX
needs ``\\usepackage{booktabs,amssymb}``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark import __version__
from benchmark.core.results import seed_means
from benchmark.report import analysis

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
LEADERBOARD_DIR = ROOT / "leaderboard"
RUNS_FILE = LEADERBOARD_DIR / "runs.toml"
FIGURES = "figures"
RANKING_COLUMNS = [("ndcg", 3), ("ndcg", 5), ("ndcg", 7), ("tau", 5), ("recall", 5), ("sum", 5)]
# the main table: ranking metrics plus what a user gets (issue 19); Sum@5 stays last (order)
MAIN_COLUMNS = [("ndcg", 3), ("ndcg", 5), ("ndcg", 7), ("tau", 5), ("recall", 5), ("acc", 1),
                ("regret", 1), ("sum", 5)]
# the outcome table (second table on every page, and `run`'s second summary)
OUTCOME_COLUMNS = [("acc", 1), ("acc", 3), ("acc", 5), ("regret", 1), ("regret", 3),
                   ("nregret", 1), ("hit", 1), ("hit", 3), ("regret_tol", 1), ("hit_tol", 1)]
NOISE_COLUMNS = [("se", 1)]  # only on targets whose test-split size is known
# MLL's reuse metric, beside acc@1 where the run has it (per-image predictions: minizoo)
ENSEMBLE_COLUMN = ("ens", 3)
RANK_BY = ("sum", 5)  # the table's order, "best", the CI and win/tie/loss
LABELS = {"ndcg": "NDCG", "tau": "τ", "recall": "R", "sum": "Sum", "acc": "acc",
          "regret": "regret", "nregret": "nregret", "hit": "hit", "regret_tol": "regret~",
          "hit_tol": "hit~", "se": "SE(acc)", "ens": "ens"}
LOWER_IS_BETTER = {"regret", "nregret", "regret_tol", "se"}
DECIMALS = 3
DAGGER = "†"
#: a method in the labelled-target setting (a few target images WITH labels; stronger than the
#: language-only methods' class names): marked on every page
DDAGGER = "‡"
LABELLED_NOTE = (f"{DDAGGER} Labelled target: the method sees a few target images *with their "
                 "labels* (feature kind `few-labelled-images`), a different and stronger setting "
                 "than the language-only methods (class names only) and the unlabelled-image "
                 "ones; compare it with them knowing that.")


def labelled_methods(names, run_meta: dict | None = None) -> set[str]:
    """The methods among ``names`` in the labelled-target setting: a required feature kind
    hands the target's labels (:attr:`benchmark.features.kinds.FeatureKind.target_labels`).
    Run metadata says what a method required; a method that did not run (a ``needs`` row) is
    looked up in the method registry."""
    from benchmark.features.kinds import labelled_target

    out = set()
    for name in names:
        meta = (run_meta or {}).get(name, {}).get("methods", {}).get(name)
        if meta is not None:
            requires = meta.get("requires", ())
        else:
            try:
                from methods import resolve

                requires = resolve(name)[1].requires
            except Exception:  # an unknown or unimportable method: nothing to mark
                requires = ()
        if labelled_target(requires):
            out.add(name)
    return out


def _bare(label: str) -> str:
    """A method's name from its rendered label (without the † / ‡ marks)."""
    for mark in (DDAGGER, DAGGER):
        label = label.removesuffix(f" {mark}")
    return label

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


def _fmt(mean: float, std: float | None = None) -> str:
    if mean is None or not np.isfinite(mean):
        return "—"
    mean = round(float(mean), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if std is None:
        return f"{mean:.{DECIMALS}f}"
    return f"{mean:.{DECIMALS}f} ± {round(float(std), DECIMALS) + 0.0:.{DECIMALS}f}"


def summarize(scores: pd.DataFrame, columns=MAIN_COLUMNS) -> pd.DataFrame:
    """Plain table: one row per method, "mean ± std over seeds" per metric column.

    Rows are ordered by the last column's mean (Sum@5 by default), best first; missing last.
    A method whose numbers do not change with the seed (a deterministic method, or a single
    seed) is shown without "± std" and with ``seeds`` "1 (deterministic)" / "1".
    (The run summary of ``benchmark run``; the leaderboard pages use :func:`main_table`.)
    """
    means = seed_means(scores)
    out, keys = [], []
    for method in sorted(means["method"].unique()):
        mine = means[means.method == method]
        n_seeds = int(mine["seed"].nunique())
        fixed = bool(mine.groupby(["metric", "k"])["value"].nunique(dropna=False).max() <= 1)
        row = {"method": method}
        key = np.inf
        for metric, k in columns:
            v = mine[(mine.metric == metric) & (mine.k == k)]
            vals = v["value"].to_numpy(float)
            if len(vals) == 0 or not np.all(np.isfinite(vals)):
                row[_label(metric, k)] = "—"
                key = np.inf
            else:
                row[_label(metric, k)] = _fmt(vals.mean(), None if fixed else vals.std(ddof=0))
                key = -round(float(vals.mean()), DECIMALS)
        row["seeds"] = ("1 (deterministic)" if n_seeds > 1 else "1") if fixed else str(n_seeds)
        out.append(row)
        keys.append((key, method))
    order = sorted(range(len(out)), key=lambda i: keys[i])
    return pd.DataFrame([out[i] for i in order]).reset_index(drop=True)


def per_dataset(scores: pd.DataFrame, metric: str = "ndcg", k: int = 5) -> pd.DataFrame:
    """target x method: mean over seeds of one metric."""
    return analysis.target_matrix(scores, metric, k).map(lambda v: _fmt(v))


def method_coverage(coverage: pd.DataFrame) -> dict[str, str]:
    out = {}
    if coverage.empty:
        return out
    for method, g in coverage.groupby("method"):
        got, full = int(g["candidates"].sum()), int(g["protocol_candidates"].sum())
        out[method] = "all candidates" if got == full else f"{got}/{full} candidate cells"
    return out


def partial_methods(coverage: pd.DataFrame) -> list[str]:
    """Methods that rank fewer than all of the protocol's candidates on some target."""
    if coverage.empty:
        return []
    short = coverage[coverage["candidates"] < coverage["protocol_candidates"]]
    return sorted(short["method"].unique())


def outcome_frame(scores: pd.DataFrame, partial=frozenset(), labelled=frozenset(),
                  columns=OUTCOME_COLUMNS, noise=NOISE_COLUMNS) -> tuple[pd.DataFrame, str]:
    """What a user gets from each method's choice: "mean ± std over seeds" of the mean over
    targets, rows in the order of acc@1 (best first). ``~`` columns: models within binomial
    noise of the best count as ties (only where the test-split size is known); SE(acc) is a mean
    over those targets only; the second return value says which."""
    means = seed_means(scores) if not scores.empty else pd.DataFrame(
        columns=["method", "seed", "metric", "k", "value"])
    has_ens = not scores.empty and bool((scores["metric"] == ENSEMBLE_COLUMN[0]).any())
    if has_ens and ENSEMBLE_COLUMN not in columns:
        columns = [columns[0], ENSEMBLE_COLUMN, *columns[1:]]
    noisy = scores[scores["metric"].isin([m for m, _ in noise])]
    n_known = sorted(noisy["target"].unique()) if not noisy.empty else []
    nmeans = seed_means(noisy) if not noisy.empty else means.iloc[:0]
    out = []
    for method in sorted(means["method"].unique()):
        row = {"method": (f"{method} {DAGGER}" if method in partial else method)
               + (f" {DDAGGER}" if method in labelled else "")}
        key = np.inf
        for (metric, k), src in [(c, means) for c in columns] + [(c, nmeans) for c in noise]:
            vals = src[(src.method == method) & (src.metric == metric)
                       & (src.k == k)]["value"].to_numpy(float)
            ok = len(vals) > 0 and np.all(np.isfinite(vals))
            row[_label(metric, k)] = _fmt(vals.mean(), vals.std(ddof=0)) if ok else "—"
            if (metric, k) == columns[0] and ok:
                key = -round(float(vals.mean()), DECIMALS)
        out.append(((method in partial, key, method), row))
    frame = pd.DataFrame([r for _, r in sorted(out, key=lambda x: x[0])])
    n_all = scores["target"].nunique() if not scores.empty else 0
    note = (f"`~` columns: a chosen model whose accuracy is within binomial noise of the best "
            f"(best - acc <= 1.96 sqrt(b(1-b)/n + a(1-a)/n), n = the test-split size) counts as "
            f"a best (regret 0, hit 1). n is known (`test_size` in datasets/registry.toml) on "
            f"{len(n_known)} of {n_all} targets; on the others no tie is counted. SE(acc)@1 = "
            f"sqrt(a(1-a)/n) of the model ranked first, mean over those {len(n_known)} targets"
            + (f"; missing: {', '.join(sorted(set(scores['target']) - set(n_known)))}."
               if len(n_known) < n_all else "."))
    if has_ens:
        ens_targets = scores.loc[scores["metric"] == ENSEMBLE_COLUMN[0], "target"].nunique()
        note += (f" ens@3 (MLL's reuse, Table 2 'k = 3'): top-1 accuracy of the entropy-weighted "
                 f"ensemble of the method's top 3 models (MLL's reuse.py: sum of softmax(logits) "
                 f"/ entropy; one task-level top 3 for every class, where MLL selects per "
                 f"class), from the per-image predictions of the ground-truth packs; on "
                 f"{ens_targets} of {n_all} targets.")
    return frame, note


def cost_frame(methods: dict, timings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per method: what selecting needs from the target (the selector's ``target_needs``) and,
    when ``timings`` is given, its measured wall time per fold (fit + score of one target)."""
    rows = []
    for name in sorted(methods):
        row = {"method": name, "needs from the target": methods[name].get("target_needs",
                                                                            "not declared")}
        if timings is not None:
            t = timings.loc[timings["method"] == name, "seconds"].to_numpy(float)
            row["s / target (mean)"] = f"{t.mean():.3f}" if len(t) else "—"
            row["s / target (max)"] = f"{t.max():.3f}" if len(t) else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def cost_section(runs) -> list[str]:
    """Measured wall time of selecting, per method (fit + score of one target, this machine).
    Wall times differ on every rerun, so the table sits in a host-dependent block that
    ``leaderboard --check`` compares by its row labels only (:mod:`benchmark.report.measured`)."""
    from benchmark.report.measured import HOST_BEGIN, HOST_END

    chosen: dict[str, object] = {}
    for run in runs:
        for method in run.scores["method"].unique():
            chosen[method] = run
    timed = {m: r for m, r in chosen.items() if getattr(r, "timings", None) is not None}
    if not timed:
        return []
    rows = []
    for m, r in sorted(timed.items()):
        t = r.timings.loc[r.timings["method"] == m, "seconds"].to_numpy(float)
        if len(t):
            rows.append([m, f"{t.mean():.4f}", f"{t.max():.4f}", f"{t.sum():.2f}"])
    if not rows:
        return []
    return ["## Cost of selecting (wall time)", "",
            "Fit on the sources + score of the held-out target, per fold, measured by the "
            "leaderboard's rerun on the machine that made this page (seconds; the extraction "
            "of feature packs is not included). Not compared by `leaderboard --check`.", "",
            HOST_BEGIN,
            tabulate(rows, headers=["method", "s / target (mean)", "s / target (max)",
                                    "s in all"], tablefmt="github", disable_numparse=True),
            HOST_END, ""]


def outcome_section(scores: pd.DataFrame, partial=frozenset(), run_meta=None,
                    labelled=frozenset()) -> list[str]:
    if scores.empty or not scores["metric"].isin(["acc"]).any():
        return []
    frame, note = outcome_frame(scores, partial, labelled)
    if run_meta:  # the cost of selecting: deterministic text only (wall times vary per rerun)
        needs = {}
        for method, meta in run_meta.items():
            needs[method] = meta.get("methods", {}).get(method, {}).get("target_needs", "—")
        frame.insert(1, "needs from the target", [
            needs.get(_bare(m), "—") for m in frame["method"]])
    return [
        "## What a user gets (outcome metrics)", "",
        "acc@k: the best true accuracy among the method's top k (acc@1 = the model ranked "
        "first); regret@k = best - acc@k, with best = the best of *all* the target's candidates "
        f"(a {DAGGER} partial-coverage method is charged for the models it cannot rank); nregret = "
        "regret / best; hit@k = 1 if a best model is in the top k. Mean ± std over seeds of the "
        "mean over targets; rows by acc@1.", "",
        _md(frame), "", f"- {note}", *([f"- {LABELLED_NOTE}"] if labelled else []), ""]


# -- the main table -----------------------------------------------------------------------
@dataclass
class Row:
    method: str
    status: str  # "best", "full", "partial" (†), "needs" (not run)
    coverage: str
    seeds: int
    mean: dict = field(default_factory=dict)  # (metric, k) -> mean over seeds (NaN: missing)
    std: dict = field(default_factory=dict)
    vs_best: dict = field(default_factory=dict)  # (metric, k) -> analysis.Paired
    ci: tuple[float, float] = (float("nan"), float("nan"))
    labelled: bool = False  # labelled-target setting (‡)


@dataclass
class Table:
    rows: list[Row]
    best: str | None
    targets: list[str]
    columns: list = field(default_factory=lambda: list(MAIN_COLUMNS))
    matrices: dict = field(default_factory=dict)  # (metric, k) -> target x method, seed means


def main_table(scores: pd.DataFrame, coverage: pd.DataFrame, needs: dict[str, str] | None = None,
               partial: set[str] | frozenset = frozenset(), columns=MAIN_COLUMNS) -> Table:
    """Rows: full-coverage methods by Sum@5 (best first, missing means last), then the
    ``partial`` ones (†) by Sum@5, then methods that could not run (``needs``)."""
    columns = list(columns)
    targets = sorted(scores["target"].unique()) if not scores.empty else []
    cov = method_coverage(coverage)
    means = seed_means(scores) if not scores.empty else pd.DataFrame(
        columns=["method", "seed", "metric", "k", "value"])
    matrices = {c: analysis.target_matrix(scores, *c).reindex(targets) for c in columns}
    rank_col = RANK_BY if RANK_BY in columns else columns[-1]
    rows = []
    by_method = dict(list(means.groupby("method", sort=False)))
    for method in sorted(means["method"].unique()):
        m = by_method[method]
        row = Row(method, "partial" if method in partial else "full", cov.get(method, ""),
                  int(m["seed"].nunique()))
        # each (metric, k)'s values in row order, as m[(m.metric == metric) & (m.k == k)]
        cells = {key: g["value"].to_numpy(float)
                 for key, g in m.groupby(["metric", "k"], sort=False)}
        for metric, k in columns:
            vals = cells.get((metric, k), np.zeros(0))
            ok = len(vals) > 0 and np.all(np.isfinite(vals))
            row.mean[(metric, k)] = float(vals.mean()) if ok else float("nan")
            row.std[(metric, k)] = float(vals.std(ddof=0)) if ok else float("nan")
        if np.isfinite(row.mean[rank_col]):
            row.ci = analysis.bootstrap_ci(matrices[rank_col][method].to_numpy(float))
        rows.append(row)

    def key(r: Row):
        v = r.mean[rank_col]
        return (r.status == "partial", not np.isfinite(v),
                -round(v, DECIMALS) if np.isfinite(v) else 0.0, r.method)

    rows.sort(key=key)
    best = next((r for r in rows if r.status == "full" and np.isfinite(r.mean[rank_col])), None)
    if best is not None:
        best.status = "best"
        for r in rows:
            if r.status != "full" or not np.isfinite(r.mean[rank_col]):
                continue
            for c in columns:
                if np.isfinite(r.mean[c]):
                    r.vs_best[c] = analysis.paired(matrices[c], r.method, best.method)
    for method, reason in sorted((needs or {}).items()):
        rows.append(Row(method, "needs", reason, 0,
                        {c: float("nan") for c in columns}, {c: float("nan") for c in columns}))
    return Table(rows, best.method if best else None, targets, columns, matrices)


def _cell(r: Row, c) -> str:
    text = _fmt(r.mean.get(c, float("nan")), r.std.get(c, float("nan")))
    if c in r.vs_best:
        mark = r.vs_best[c].mark()
        if c[0] in LOWER_IS_BETTER:  # the test says "higher"; for a regret lower is better
            mark = {"▲": "▼", "▼": "▲"}.get(mark, mark)
        text += f" {mark}"
    return text


def _wtl(r: Row, rank_col) -> str:
    if r.status == "best":
        return "best"
    p = r.vs_best.get(rank_col)
    return f"{p.wins}/{p.ties}/{p.losses}" if p else "—"


def _ci(r: Row) -> str:
    lo, hi = r.ci
    return f"[{_fmt(lo)}, {_fmt(hi)}]" if np.isfinite(lo) else "—"


def _method_label(r: Row) -> str:
    label = f"{r.method} {DAGGER}" if r.status == "partial" else r.method
    return f"{label} {DDAGGER}" if r.labelled else label


def table_frame(table: Table) -> pd.DataFrame:
    """The rendered cells (Markdown and LaTeX share them)."""
    rank_col = RANK_BY if RANK_BY in table.columns else table.columns[-1]
    rl = _label(*rank_col)
    rows = []
    for r in table.rows:
        row = {"method": _method_label(r)}
        row.update({_label(*c): _cell(r, c) for c in table.columns})
        row[f"{rl} 95% CI"] = _ci(r)
        row[f"W/T/L ({rl})"] = _wtl(r, rank_col)
        row["coverage"] = r.coverage
        row["seeds"] = r.seeds
        rows.append(row)
    return pd.DataFrame(rows)


def pvalue_frame(table: Table) -> pd.DataFrame:
    """Per method and metric: "Wilcoxon p / permutation p" against the best."""
    rows = []
    for r in table.rows:
        if not r.vs_best:
            continue
        row = {"method": r.method}
        for c in table.columns:
            p = r.vs_best.get(c)
            row[_label(*c)] = (f"{analysis.format_p(p.wilcoxon.pvalue)} / "
                               f"{analysis.format_p(p.permutation.pvalue)}") if p else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def numeric_frame(table: Table) -> pd.DataFrame:
    """The main table as numbers (CSV export)."""
    rank_col = RANK_BY if RANK_BY in table.columns else table.columns[-1]
    rows = []
    for r in table.rows:
        row: dict[str, Any] = {"method": r.method, "status": r.status, "coverage": r.coverage,
                               "seeds": r.seeds}
        for c in table.columns:
            name = f"{c[0]}@{c[1]}"
            p = r.vs_best.get(c)
            row[f"{name}_mean"] = r.mean.get(c)
            row[f"{name}_std"] = r.std.get(c)
            row[f"{name}_mark"] = p.mark() if p else ""
            row[f"{name}_p_wilcoxon"] = p.wilcoxon.pvalue if p else None
            row[f"{name}_p_permutation"] = p.permutation.pvalue if p else None
        name = f"{rank_col[0]}@{rank_col[1]}"
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = r.ci
        p = r.vs_best.get(rank_col)
        row["wins"], row["ties"], row["losses"] = (p.wins, p.ties, p.losses) if p else (None,) * 3
        rows.append(row)
    return tidy_numbers(pd.DataFrame(rows), ["seeds", "wins", "ties", "losses"])


def tidy_numbers(frame: pd.DataFrame, counts: list[str]) -> pd.DataFrame:
    """Counts as nullable integers; floats rounded to 6 decimals without a negative zero."""
    frame = frame.copy()
    for c in frame.columns:
        if c in counts:
            frame[c] = pd.array([None if v is None or v != v else int(v) for v in frame[c]],
                                dtype="Int64")
        elif frame[c].dtype == object and frame[c].map(
                lambda v: v is None or isinstance(v, float)).all():
            frame[c] = frame[c].astype(float)
        if frame[c].dtype == float:
            frame[c] = frame[c].round(6) + 0.0
    return frame


def _md(frame: pd.DataFrame) -> str:
    return tabulate(frame, headers="keys", tablefmt="github", showindex=False,
                    disable_numparse=True) if not frame.empty else "(no results)"


def _significance_notes(table: Table, what: str) -> list[str]:
    rank_col = RANK_BY if RANK_BY in table.columns else table.columns[-1]
    rl = _label(*rank_col)
    n = len(table.targets)
    lines = [
        f"- ▲ / ▼: significantly better / worse than the best method (`{table.best}`, first by "
        f"{rl}{what}); = : no significant difference. Test: two-sided **Wilcoxon signed-rank** "
        f"over the {n} targets, paired on the per-target mean over seeds, p < {analysis.ALPHA} "
        "(zero differences dropped; exact null distribution up to "
        f"{analysis.EXACT_MAX_N} non-zero differences, conditional on ties, else the normal "
        "approximation). Not corrected for multiple comparisons. The p-values, and those of a "
        "paired sign-flip **permutation test** of the mean difference, are in the next table.",
        f"- {rl} 95% CI: percentile bootstrap over the targets ({analysis.BOOTSTRAP_RESAMPLES} "
        "resamples, seed 0) of the mean over targets.",
        f"- W/T/L: targets on which the method's {rl} is above / within "
        f"{analysis.TIE_TOL} of / below the best's.",
    ]
    return lines


def _pvalue_block(table: Table, anchor: str) -> list[str]:
    frame = pvalue_frame(table)
    if frame.empty:
        return []
    return [
        f"Paired tests against `{table.best}`{anchor}: Wilcoxon signed-rank p / permutation p "
        f"(sign flips of the per-target differences; exact up to {analysis.EXACT_MAX_N} non-zero "
        f"differences, else {analysis.PERMUTATION_RESAMPLES} Monte Carlo resamples, seed 0).",
        "", _md(frame), ""]


def _methods_png(table: Table, title: str) -> bytes:
    """Bars of NDCG@5 and Sum@5 per method with their 95% bootstrap CI over targets."""
    from benchmark.report import plots

    cols = [c for c in (("ndcg", 5), RANK_BY) if c in table.columns]
    rows = []
    for r in table.rows:
        if r.status == "needs":
            continue
        row = {"label": _method_label(r) + (" (best)" if r.status == "best" else ""),
               "style": {"best": "best", "partial": "partial"}.get(r.status, "full")}
        for c in cols:
            mean = r.mean.get(c, float("nan"))
            ci = (analysis.bootstrap_ci(table.matrices[c][r.method].to_numpy(float))
                  if np.isfinite(mean) else (float("nan"), float("nan")))
            row[_label(*c)] = (mean, *ci)
        rows.append(row)
    return plots.methods_figure(rows, [_label(*c) for c in cols], title)


# -- one protocol page --------------------------------------------------------------------
def split_runs(runs) -> tuple[list, list]:
    """(main runs, like-for-like runs): the latter carry ``"common_candidates": true``."""
    main = [r for r in runs if not r.run.get("common_candidates")]
    common = [r for r in runs if r.run.get("common_candidates")]
    return main, common


def render_protocol(runs, protocol_name: str, needs: dict[str, str] | None = None,
                    analysis_entry: dict | None = None, analysis_root: Path | None = None,
                    site: dict | None = None) -> tuple[str, dict[str, bytes]]:
    """Markdown and figures (``figures/<name>.png`` -> bytes) of one protocol; ``site``, when
    given, is filled with the same tables as plain data for the HTML page."""
    from benchmark.core.protocol import get_protocol
    from benchmark.report import plots

    protocol = get_protocol(protocol_name)
    main_runs, common_runs = split_runs(runs)
    scores, coverage, run_meta = _latest_per_method(main_runs)
    figures: dict[str, bytes] = {}
    seeds = sorted(scores["seed"].unique()) if not scores.empty else []
    metric_cfg = next(iter(run_meta.values()))["protocol"]["metrics"] if run_meta else {}
    partial = set(partial_methods(coverage))
    table = main_table(scores, coverage, needs, partial)
    labelled = labelled_methods([r.method for r in table.rows], run_meta)
    for r in table.rows:
        r.labelled = r.method in labelled
    n_cells, n_zoo_cells = _cells(coverage, protocol)
    n_targets = len(table.targets)
    lines = [
        f"# Leaderboard: `{protocol.name}`",
        "",
        f"{protocol.description}. Leave-one-dataset-out: every target dataset is held out once;",
        "a method sees the other datasets' ground truth and never the target's.",
        "",
        f"- Protocol: `{protocol.name}`, leave-one-dataset-out over {n_targets} evaluated "
        f"targets (of {len(protocol.datasets)}); {len(protocol.zoo)} models.",
        f"- Ground truth: {', '.join(protocol.gt_sources)} (per cell, first source that "
        "publishes it; see coverage below).",
        f"- Metrics: NDCG ideal = `{metric_cfg.get('ndcg_ideal', '?')}`, τ variant = "
        f"`{metric_cfg.get('tau_variant', '?')}` (Kendall tau-b on the top-k intersection); "
        "R@k = top-k recall; Sum = NDCG@5 + τ@5; acc@1 = true accuracy of the model ranked "
        "first, regret@1 = best candidate's accuracy - acc@1 (lower is better; ▲ = "
        "significantly lower regret).",
        f"- Seeds: {len(seeds)} ({', '.join(map(str, seeds))}); cells are mean ± std over seeds "
        "of the mean over targets.",
        f"- Coverage: {n_cells} of the {n_zoo_cells} (model, target) cells have ground truth "
        "(the candidates); "
        + (f"{', '.join(f'`{m}`' for m in sorted(partial))} rank fewer ({DAGGER}, their "
           "coverage column)." if partial else "every method ranks all of them."),
        f"- Significance: ▲/▼/= against the best method, Wilcoxon signed-rank over targets "
        f"(p < {analysis.ALPHA}); permutation p, win/tie/loss and bootstrap CIs alongside.",
        *([f"- Protocol hash: `{protocol_hash_of(run_meta)}` (zoo, datasets, ground truth, "
            "metric settings; a submission must match it: `python -m benchmark score`)."]
          if protocol_hash_of(run_meta) else []),
        *_origin_lines(run_meta),
        f"- Produced by vlmbench {__version__} (`python -m benchmark leaderboard --rerun`).",
        "",
        "## Results (computed by this code)",
        "",
        _md(table_frame(table)),
        "",
    ]
    if table.best:
        lines += _significance_notes(table, ", among full-coverage methods")
    lines += parameter_lines(run_meta)
    if partial:
        lines.append(
            f"- {DAGGER} Partial coverage: ranks only the candidates it has features for (its "
            "coverage column), a different task from ranking all of them; so it gets no marks and "
            "is never the best here. It is compared like for like in "
            "[On the models every method covers](#on-the-models-every-method-covers).")
    if labelled:
        lines.append(f"- {LABELLED_NOTE}")
    lines.append("")
    lines += _pvalue_block(table, "")
    lines += _submitted_block(run_meta)
    lines += outcome_section(scores, partial, run_meta, labelled)
    lines += cost_section(main_runs)
    if not scores.empty:
        name = f"{FIGURES}/{protocol.name}-methods.png"
        figures[name] = _methods_png(table, f"{protocol.name}: mean over targets, 95% bootstrap CI")
        lines += [f"![{protocol.name}: methods, mean over targets with 95% bootstrap CI]"
                  f"({name})", ""]
    if partial:
        kept: dict = {}
        lines += _common_section(common_runs, protocol, partial, figures, kept)
    if protocol.measured_here:
        lines += measured_section(run_meta)
    if protocol_name == "mll" and not scores.empty:
        from benchmark.report import mll_compare

        lines += mll_compare.markdown(scores)
    if protocol_name in REPORTED:
        rep = REPORTED[protocol_name]
        lines += ["## Reported in the literature (not computed here)", "",
                  f"Source: {rep['source']}.", ""]
        cols = [(m, k) for m, k in RANKING_COLUMNS
                if any((m, k) in r for r in rep["rows"].values())]
        rows = [[name] + [_fmt(r.get(c)) if c in r else "—" for c in cols]
                for name, r in rep["rows"].items()]
        lines += [tabulate(rows, headers=["method"] + [_label(*c) for c in cols],
                           tablefmt="github"), ""]
    if not scores.empty:
        matrix = analysis.target_matrix(scores, "ndcg", 5)
        matrix.columns = [(f"{m} {DAGGER}" if m in partial else m)
                          + (f" {DDAGGER}" if m in labelled else "") for m in matrix.columns]
        lines += ["## NDCG@5 per target (mean over seeds)", "",
                  tabulate(matrix.map(lambda v: _fmt(v)), headers="keys", tablefmt="github",
                           disable_numparse=True), ""]
        name = f"{FIGURES}/{protocol.name}-ndcg5-per-target.png"
        figures[name] = plots.heatmap_figure(matrix, f"{protocol.name}: NDCG@5 per target "
                                             "(mean over seeds)", "NDCG@5")
        lines += [f"![{protocol.name}: NDCG@5 per target and method]({name})", ""]
    if analysis_entry is not None:
        lines += _analysis_section(protocol.name, analysis_entry, analysis_root, figures)
    lines += ["## Coverage", ""]
    lines += [_coverage_table(run_meta, coverage, protocol), ""]
    if protocol.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in protocol.notes] + [""]
    if site is not None:
        site.update(_site_protocol(protocol, table, kept.get("table") if partial else None,
                                   run_meta, coverage, figures, seeds, metric_cfg,
                                   (n_cells, n_zoo_cells), partial, kept if partial else {}))
    return "\n".join(lines), figures


def measured_section(run_meta: dict) -> list[str]:
    """Where a measured protocol (minizoo) was made, with which settings, and whether it is a
    ranking task (the properties its rerun checked)."""
    from benchmark.report.measured import HOST_PREFIX

    rec = next((m["measured_here"] for m in run_meta.values() if m.get("measured_here")), None)
    if not rec:
        return []
    props = rec["properties"]
    rows = [[t["target"], t["best"], _fmt(t["best_acc1"]), _fmt(t["worst_acc1"]),
             _fmt(t["spread"]), _fmt(t["chance"])] for t in props["targets"]]
    out = ["## Is it a ranking task?", "",
           "Ground truth measured on the trained checkpoints (`extract ground-truth`): per "
           "target the best and worst model's top-1. Issue 12's properties: best - worst >= "
           "0.15 on every target, >= 4 distinct best models, `inb` NDCG@5 < 0.9, `random` "
           "near chance; `leaderboard --check` fails when one does not hold.", "",
           tabulate(rows, headers=["target", "best model", "best top-1", "worst top-1",
                                   "spread", "chance"], tablefmt="github",
                    disable_numparse=True), "",
           f"- Distinct best models: {props['winners']}; smallest spread "
           f"{_fmt(props['min_spread'])}."]
    if "inb_ndcg5" in props:
        out.append(f"- `inb` NDCG@5 {_fmt(props['inb_ndcg5'])} (must stay < 0.9).")
    if "random_ndcg5" in props:
        out.append(f"- `random` NDCG@5 {_fmt(props['random_ndcg5'])}; a uniformly random "
                   f"ranking's mean {_fmt(props['chance_ndcg5'])}.")
    fails = props.get("failures", [])
    out.append("- Properties: " + ("all hold." if not fails else "FAIL: " + "; ".join(fails)))
    st = rec.get("settings", {})
    out += ["", "## How it was made", "",
            f"{HOST_PREFIX}{rec['host']} (training is deterministic on one machine, not "
            "bit-identical across CPUs; CI checks this page's structure and properties, not its "
            "digits).",
            *[f"- {k}: {v}" for k, v in st.items()], ""]
    return out


def protocol_hash_of(run_meta: dict) -> str | None:
    """The protocol hash the runs recorded (all runs of a page share it, or None)."""
    hashes = {r.get("protocol_hash") or r.get("protocol", {}).get("hash")
              for r in run_meta.values()}
    hashes.discard(None)
    return hashes.pop() if len(hashes) == 1 else None


def _site_table(table: Table, title: str, note: str = "") -> dict:
    """A main table as plain data for :mod:`benchmark.report.html`."""
    from benchmark.core.submission import is_submitted

    rank_col = RANK_BY if RANK_BY in table.columns else table.columns[-1]
    rl = _label(*rank_col)
    cols = [{"label": "method"}, {"label": "kind", "badge": True}]
    cols += [{"label": _label(*c), "type": "num"} for c in table.columns]
    cols += [{"label": f"{rl} 95% CI", "type": "num"}, {"label": f"W/T/L ({rl})"},
             {"label": "coverage"}, {"label": "seeds", "type": "num"}]
    rows = []
    for r in table.rows:
        kind = ("needs" if r.status == "needs" else
                "submitted" if is_submitted(r.method) else "computed")
        cells = [_method_label(r), kind]
        cells += [(_cell(r, c), r.mean.get(c)) for c in table.columns]
        cells += [(_ci(r), r.ci[0]), _wtl(r, rank_col), r.coverage,
                  (str(r.seeds), r.seeds if r.status != "needs" else None)]
        rows.append({"method": r.method, "kind": kind, "status": r.status, "cells": cells})
    return {"title": title, "note": note, "columns": cols, "rows": rows}


def _site_protocol(protocol, table, common, run_meta, coverage, figures, seeds, metric_cfg,
                   cells, partial, kept) -> dict:
    from benchmark.features.transfer import imported_packs

    tables = [_site_table(table, "Results", "Cells: mean ± std over seeds of the mean over "
                          "targets; ▲/▼/= against the best full-coverage method (Wilcoxon "
                          f"signed-rank over targets, p < {analysis.ALPHA}); {DAGGER}: partial "
                          "coverage, never best."
                          + (f" {LABELLED_NOTE}" if any(r.labelled for r in table.rows)
                             else ""))]
    if common is not None:
        t = _site_table(common, "On the models every method covers",
                        f"Every method re-run on the models all of them cover: "
                        f"{kept['cells']} of the {kept['full']} candidate cells.")
        t["id"] = "common"
        tables.append(t)
    reported = None
    if protocol.name in REPORTED:
        rep = REPORTED[protocol.name]
        rcols = [c for c in MAIN_COLUMNS if any(c in r for r in rep["rows"].values())]
        reported = {"source": rep["source"],
                    "columns": [{"label": "method"}, {"label": "kind", "badge": True}]
                    + [{"label": _label(*c), "type": "num"} for c in rcols],
                    "rows": [{"method": n, "kind": "reported", "status": "",
                              "cells": [n, "reported"] + [(_fmt(r.get(c)), r.get(c)) for c in rcols]}
                             for n, r in rep["rows"].items()]}
    cov_rows = []
    if not coverage.empty:
        first = coverage.drop_duplicates("target").set_index("target")
        for t in protocol.datasets:
            cov_rows.append((t, f"{int(first.loc[t, 'protocol_candidates'])}/{len(protocol.zoo)}"
                             if t in first.index else f"0/{len(protocol.zoo)} (not evaluated)"))
    methods_rows = []
    for m, r in sorted(run_meta.items()):
        d = r.get("methods", {}).get(m, {})
        params = json.dumps(d.get("params", {}), sort_keys=True, default=repr)
        methods_rows.append({"method": m, "kind": "submitted" if r.get("submitted") else
                             "computed", "cells": [m, d.get("class", ""), params,
                                                   d.get("params_hash", ""),
                                                   ", ".join(d.get("requires", [])) or "—"]})
    subs = submitted_meta(run_meta)
    imported = sorted({p for r in run_meta.values() for p in imported_packs(r)})
    phash = protocol_hash_of(run_meta)
    prov = [
        ("protocol hash", phash or "—"),
        ("zoo / targets", f"{len(protocol.zoo)} models, {len(protocol.datasets)} datasets"),
        ("ground truth", ", ".join(protocol.gt_sources)),
        ("metrics", f"NDCG ideal {metric_cfg.get('ndcg_ideal', '?')}, τ variant "
                    f"{metric_cfg.get('tau_variant', '?')}, k in {metric_cfg.get('ks', '?')}"),
        ("seeds", f"{len(seeds)} ({', '.join(map(str, seeds))})"),
        ("candidate cells", f"{cells[0]} of {cells[1]} (model, target) cells have ground truth"),
        ("feature packs", (f"{len(imported)} imported (pinned by checksum): "
                           + ", ".join(imported)) if imported else
         "none imported (only what this code rebuilds)"),
        ("produced by", f"vlmbench {__version__}, python -m benchmark leaderboard --rerun"),
    ]
    return {
        "name": protocol.name, "description": protocol.description, "tables": tables,
        "reported": reported, "coverage": cov_rows, "provenance": prov,
        "coverage_note": f"{cells[0]} of the {cells[1]} (model, target) cells have ground "
                         "truth (the candidates).",
        "methods": {"columns": [{"label": "method"}, {"label": "class"}, {"label": "parameters"},
                                {"label": "params hash"}, {"label": "needs"}],
                    "rows": methods_rows} if methods_rows else None,
        "submitted": {"columns": [{"label": "method"}, {"label": "paper / code", "link": True},
                                  {"label": "date"}, {"label": "protocol hash"},
                                  {"label": "predictions sha256"}, {"label": "description"}],
                      "rows": [{"method": m, "kind": "submitted",
                                "cells": [m, s["link"], s["date"], s["protocol_hash"][:12],
                                          s["predictions_sha256"][:12],
                                          s.get("description") or "—"]}
                               for m, s in subs.items()]} if subs else None,
        "notes": list(protocol.notes),
        "figures": sorted(figures),
    }


def submitted_meta(run_meta: dict) -> dict[str, dict]:
    """method -> the ``submitted`` block of its run (submitted rows only)."""
    return {m: r["submitted"] for m, r in sorted(run_meta.items()) if r.get("submitted")}


def _origin_lines(run_meta: dict) -> list[str]:
    from benchmark.features.transfer import imported_packs

    lines = []
    subs = submitted_meta(run_meta)
    if subs:
        lines.append(
            f"- Submitted: {len(subs)} row(s) marked *(submitted)* were computed elsewhere and "
            "scored here from their predictions, with the same metrics, tests and CIs (protocol "
            "hash checked; provenance under [Submitted predictions](#submitted-predictions)).")
    imported = sorted({p for r in run_meta.values() for p in imported_packs(r)})
    if imported:
        lines.append(
            f"- Imported feature packs: {len(imported)} ({', '.join(f'`{p}`' for p in imported[:6])}"
            f"{', ...' if len(imported) > 6 else ''}), made elsewhere and pinned by checksum in "
            "`runs.toml`; their checksums prove integrity, not how they were computed.")
    return lines


def _submitted_block(run_meta: dict) -> list[str]:
    subs = submitted_meta(run_meta)
    if not subs:
        return []
    rows = [(m, s["link"], s["date"], s["protocol_hash"][:12], s["predictions_sha256"][:12],
             s.get("description", "") or "—") for m, s in subs.items()]
    return ["## Submitted predictions", "",
            "Computed elsewhere, scored by this code (`python -m benchmark score`); accepted "
            "submissions live in `leaderboard/submissions/<protocol>/<method>/`.", "",
            tabulate(rows, headers=["method", "paper / code", "date", "protocol hash",
                                    "predictions sha256", "description"], tablefmt="github",
                     disable_numparse=True), ""]


def _cells(coverage: pd.DataFrame, protocol) -> tuple[int, int]:
    zoo_cells = len(protocol.zoo) * len(protocol.datasets)
    if coverage.empty:
        return 0, zoo_cells
    first = coverage.drop_duplicates("target")
    return int(first["protocol_candidates"].sum()), zoo_cells


def _common_section(common_runs, protocol, partial: set[str], figures: dict,
                    kept: dict | None = None) -> list[str]:
    lines = ["## On the models every method covers", ""]
    scores, coverage, _ = _latest_per_method(common_runs)
    if scores.empty:
        return lines + ["(no like-for-like run in the results: `python -m benchmark leaderboard "
                        "--rerun` makes one)", ""]
    full = int(coverage.drop_duplicates("target")["protocol_candidates"].sum())
    per_target = coverage.groupby("target")["candidates"].min()
    cells = int(per_target.sum())
    n_targets = int(scores["target"].nunique())
    table = main_table(scores, coverage)
    if kept is not None:
        kept.update(table=table, cells=cells, full=full)
    lines += [
        f"{', '.join(f'`{m}`' for m in sorted(partial))} rank only part of the candidates. Here "
        "every method was re-run with `common_candidates=True`: on each target it ranks only "
        f"the models every method covers — **{cells} of the {full} candidate cells**, "
        f"{n_targets} targets evaluated (a target needs at least 2 common candidates). Like for "
        "like: every method is eligible as best and marked.",
        "",
        _md(table_frame(table)),
        "",
    ]
    if table.best:
        lines += _significance_notes(table, ", on the common candidates") + [""]
    lines += _pvalue_block(table, " on the common candidates")
    name = f"{FIGURES}/{protocol.name}-common-methods.png"
    figures[name] = _methods_png(table, f"{protocol.name}, common candidates ({cells} "
                                 f"cells): mean over targets, 95% bootstrap CI")
    lines += [f"![{protocol.name}: methods on the common candidates]({name})", ""]
    return lines


def parameter_choice(run_meta: dict) -> dict[str, str]:
    """Method -> how its parameters were chosen: ``declared defaults`` (the registry's fixed
    values and the class defaults), ``nested`` (:mod:`methods.nested`: in each fold, on its
    sources) or ``submitted`` (not known). Nothing on a clean protocol is chosen on the test
    targets; that happens only on the reproduction protocols (``leaderboard/fidelity.md``)."""
    out = {}
    for m, meta in run_meta.items():
        desc = meta.get("methods", {}).get(m)
        if desc is None:
            out[m] = "submitted"
        elif str(desc.get("class", "")).startswith("methods.nested:"):
            p = desc.get("params", {})
            grid = ", ".join(f"{k} in {v}" for k, v in dict(p.get("grid") or {}).items())
            out[m] = f"nested ({grid}; {p.get('metric', 'sum@5')})"
        else:
            out[m] = "declared defaults"
    return out


def parameter_lines(run_meta: dict) -> list[str]:
    choice = parameter_choice(run_meta)
    if not choice:
        return []
    nested = {m: c for m, c in choice.items() if c.startswith("nested")}
    plain = sorted(m for m, c in choice.items() if c == "declared defaults")
    line = ("- Parameters: " + (f"declared defaults for {', '.join(f'`{m}`' for m in plain)} "
                                "(the registry's fixed values, `python -m benchmark list "
                                "methods`)" if plain else "")
            + "".join(f"; `{m}`: chosen by nested leave-one-source-out in each fold on its "
                      f"sources only, {c[len('nested '):]}" for m, c in sorted(nested.items()))
            + ". None is chosen on the test targets (test-target choices appear only on the "
            "reproduction protocols: [fidelity.md](fidelity.md)).")
    return [line]


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
    if not scores:  # no runs yet (a fresh clone): empty tables that still have their columns
        from benchmark.core.harness import SCORE_COLUMNS

        return (pd.DataFrame(columns=SCORE_COLUMNS),
                pd.DataFrame(columns=["method", "target", "candidates", "protocol_candidates",
                                      "uncovered"]), {})
    return pd.concat(scores), pd.concat(coverage), meta


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


# -- sensitivity and sample efficiency ([analysis.<protocol>] in runs.toml) ---------------
ANALYSIS_KINDS = ("sweeps", "sample_efficiency")


def _analysis_title(kind: str, item: dict) -> str:
    if kind == "sweeps":
        names = [p.partition("=")[0].strip() for p in item.get("param", [])]
        return f"`{item['method']}` sensitivity to {' × '.join(names) or '?'}"
    tgt = item.get("n_target")
    extra = "" if not tgt else (", n_target = n_source" if tgt == "same" else
                                f", n_target in {{{tgt}}}")
    return f"`{item['method']}` sample efficiency (n_source in {{{item.get('n_source')}}}{extra})"


def _analysis_section(protocol: str, entry: dict, root: Path | None, figures: dict) -> list[str]:
    lines = ["## DCD sensitivity and sample efficiency", ""]
    declared = [(kind, i, item) for kind in ANALYSIS_KINDS
                for i, item in enumerate(entry.get(kind, []))]
    if not declared:
        return lines + [
            f"No sensitivity or sample-efficiency runs are declared for `{protocol}` "
            f"(`[analysis.{protocol}]` in `leaderboard/runs.toml` is empty): DCD needs "
            "conductance feature packs (`python -m benchmark extract conductance ...`), which "
            "do not exist for this leaderboard yet. Once they do, declare the runs there and "
            "`leaderboard --rerun` adds the β/γ heatmap and the sample-efficiency curve here.",
            ""]
    for kind, i, item in declared:
        title = _analysis_title(kind, item)
        lines += [f"### {title}", ""]
        out = root / f"{kind}-{i}" if root is not None else None
        if out is None or not (out / "item.json").is_file():
            lines += ["Declared but not run (`python -m benchmark leaderboard --rerun`).", ""]
            continue
        info = json.loads((out / "item.json").read_text())
        if info.get("skipped"):
            lines += [f"Declared but not run: {info['skipped']}.", ""]
            continue
        lines += _analysis_body(protocol, kind, i, item, info, pd.read_csv(out / "table.csv"),
                                figures)
    return lines


def _analysis_body(protocol, kind, i, item, info, table, figures) -> list[str]:
    from benchmark.report import plots

    metric = info["metric"]
    params = list(info["params"])
    seeds = info["seeds"]
    shown = table[params].astype(str)
    shown[metric] = [_fmt(m, s) for m, s in zip(table[metric], table[f"{metric}_std"],
                                                 strict=True)]
    lines = [f"{metric}, mean ± std over {len(seeds)} seed(s) of the mean over targets.", "",
             _md(shown), ""]
    name = f"{FIGURES}/{protocol}-{'sweep' if kind == 'sweeps' else 'sample-efficiency'}-{i}.png"
    title = f"{info['method']} on {protocol}: {metric} (mean over {len(seeds)} seeds)"
    if kind == "sweeps" and len(params) in (1, 2):
        figures[name] = plots.sweep_figure(table, params, metric, title)
    elif kind == "sample_efficiency":
        from benchmark.studies.sample_efficiency import SOURCE, TARGET

        hue = TARGET if TARGET in params and item.get("n_target") not in (None, "same") else None
        figures[name] = plots.sample_efficiency_figure(table, SOURCE, hue, metric, title)
    if name in figures:
        lines += [f"![{title}]({name})", ""]
    return lines


def run_analyses(protocol_name: str, entry: dict, out: Path, data) -> None:
    """Run the declared sweeps / sample-efficiency curves of one protocol into ``out``."""
    from benchmark.core.harness import Harness, MissingFeaturesError, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.features.kinds import get_kind
    from benchmark.studies.sample_efficiency import points as se_points
    from benchmark.studies.sweep import (
        grid_points,
        parse_fixed,
        parse_grid,
        parse_metric,
        run_points,
    )

    for kind in ANALYSIS_KINDS:
        for i, item in enumerate(entry.get(kind, [])):
            protocol = get_protocol(protocol_name)
            seeds = tuple(range(int(item.get("seeds", len(protocol.seeds)))))
            metric = "{}@{}".format(*parse_metric(item.get("metric", "ndcg@5"),
                                                  protocol.metrics.ks))
            if kind == "sweeps":
                points = grid_points(parse_grid(item["param"]))
            else:
                n_t = item.get("n_target")
                n_source = [int(v) for v in str(item["n_source"]).split(",")]
                points = se_points(n_source, n_t if n_t in (None, "same") else
                                   [int(v) for v in str(n_t).split(",")])
            harness = Harness.from_data(protocol, data)
            info: dict[str, Any] = {"kind": kind, "method": item["method"], "metric": metric,
                                    "seeds": list(seeds), "params": list(points[0])}
            d = out / f"{kind}-{i}"
            d.mkdir(parents=True, exist_ok=True)
            from benchmark.core.results import MARKER

            (d / MARKER).write_text("analysis item written by vlmbench\n")
            try:
                res = run_points(harness, item["method"], points, parse_fixed(item.get("set")),
                                 seeds, progress=False)
            except MissingFeaturesError:
                cls = resolve_methods([item["method"]])[0].cls
                info["skipped"] = "; ".join(get_kind(k).needs for k in cls.requires)
            else:
                res.table.to_csv(d / "table.csv", index=False)
            (d / "item.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


# -- regeneration ------------------------------------------------------------------------
def load_spec(path: Path = RUNS_FILE) -> dict:
    from benchmark.data._toml import load_toml

    return load_toml(path)


def pinned_packs(spec: dict) -> list[str]:
    """Manifest sha256 of the imported packs the leaderboard may read (``[packs] pinned``)."""
    pinned = spec.get("packs", {}).get("pinned", [])
    if not isinstance(pinned, list) or not all(isinstance(p, str) for p in pinned):
        raise ValueError("leaderboard/runs.toml: [packs] pinned must be a list of sha256 strings")
    return list(pinned)


def _rerun_protocol(name: str, entry: dict, out_root: Path, data, pins=()) -> str:
    from benchmark.core import results
    from benchmark.core.harness import Harness, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.features.transfer import PinnedStore, packs_used

    protocol = get_protocol(name).with_options(seeds=tuple(range(int(entry["seeds"]))))
    if protocol.measured_here:  # trained and extracted here, on demand (resumable)
        from benchmark.core.protocol import minizoo_seed
        from benchmark.minizoo import pipeline

        pipeline.ensure(progress=False, world_seed=minizoo_seed(protocol) or 0)
    store = PinnedStore(pins=pins)  # imported packs only when runs.toml pins them
    harness = Harness.from_data(protocol, data, store)
    methods = resolve_methods(list(entry["methods"]))
    res = harness.run(methods, skip_unavailable=True, progress=False)
    kinds = [k for m in methods if m.name not in res.skipped for k in m.cls.requires]
    from benchmark.core.submission import protocol_hash

    used = packs_used(store, kinds, protocol.zoo)
    extra = {"protocol_hash": protocol_hash(harness.pdata),
             **({"feature_packs": used} if used else {})}
    if protocol.measured_here:
        extra["measured_here"] = measured_record(harness.pdata.ground_truth.matrix, res.scores)
    results.write(res, out_root / name / "run", extra=extra)
    if partial_methods(res.coverage):
        common = harness.run(methods, skip_unavailable=True, progress=False,
                             common_candidates=True)
        results.write(common, out_root / name / "common",
                      extra={"common_candidates": True, **extra})
    return name


def measured_record(gt: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """What a measured protocol's run records beside its scores: the host, the protocol's
    cheaper extraction and training settings, and the ranking-task properties."""
    from benchmark.minizoo import pipeline, properties
    from benchmark.report import measured

    nd = scores[(scores["metric"] == "ndcg") & (scores["k"] == 5)]
    nd = nd.groupby(["method", "seed"])["value"].mean().groupby("method").mean().to_dict()
    return {"host": measured.host(), "settings": pipeline.settings_record(),
            "properties": properties.verify(gt, nd)}


RUN_DIRS = ("run", "common")  # the results directories rerun writes under <root>/<protocol>/
PREDICTION_DIR = "prediction"  # <root>/<protocol>/prediction: [prediction.<protocol>] of runs.toml
PREDICTION_FILES = ("table.csv", "skipped.json")
ANALYSIS_FILES = ("table.csv", "item.json")


def foreign_entries(root: Path) -> list[Path]:
    """What under a leaderboard results root this code did not write (so never deletes):
    anything but the root marker, ``<protocol>/{run,common}`` results directories,
    ``<protocol>/analysis/<kind>-<i>/`` items and the hidden temporaries of killed writes."""
    from benchmark.core.results import MARKER, is_ours

    foreign: list[Path] = []
    for top in sorted(Path(root).iterdir()):
        if top.name == MARKER and top.is_file():
            continue
        if not top.is_dir() or top.is_symlink():
            foreign.append(top)
            continue
        for d in sorted(top.iterdir()):
            if (d.name in RUN_DIRS or d.name.startswith("submitted-")
                    or (d.name.startswith(".") and d.is_dir())):
                if not is_ours(d):  # also a killed write's .run.XXXX (marker first)
                    foreign.append(d)
            elif d.name == PREDICTION_DIR and is_ours(d, PREDICTION_FILES):
                continue
            elif d.name == "analysis" and d.is_dir() and not d.is_symlink():
                foreign += [i for i in sorted(d.iterdir()) if not (
                    i.name.split("-")[0] in ANALYSIS_KINDS
                    and is_ours(i, ANALYSIS_FILES, legacy=("item.json",)))]
            else:
                foreign.append(d)
    return foreign


def _remove_owned(root: Path) -> None:
    """Delete a results root whose every entry :func:`foreign_entries` accepts (checked again
    here); file by file, so nothing written meanwhile by someone else is lost."""
    from benchmark.core.results import ResultsDirError

    left = foreign_entries(root)
    if left:
        raise ResultsDirError(f"{left[0]} appeared in the old results root meanwhile; it was "
                              f"kept in {root}")
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    root.rmdir()


def rerun_root(spec: dict, root: Path, data) -> None:
    """Compute the leaderboard runs and put them at ``root``, replacing an earlier rerun.

    Refused (one line, before computing) when ``root`` holds anything this code did not write
    (:func:`foreign_entries`) or another rerun holds it. The runs are computed into a hidden
    sibling, then swapped in: an interrupted rerun leaves the old root intact.
    """
    import shutil
    import tempfile

    from benchmark.core.results import MARKER, ResultsDirError, exclusive, sibling_temp

    root = Path(root)
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise ResultsDirError(f"--results {root} is not a directory; give a results root")
    if root.exists():
        foreign = foreign_entries(root)
        if foreign:
            raise ResultsDirError(
                f"--results {root}: {foreign[0]} was not written by vlmbench; refusing to "
                f"replace that root (move it away or choose another --results)")
    tmp = sibling_temp(root, f".{root.name}.new.", "--results")
    try:
        with exclusive(root.parent / f".{root.name}.lock", f"results root {root}"):
            (tmp / MARKER).write_text("leaderboard results root written by vlmbench\n")
            rerun(spec, tmp, data)
            if root.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old.", dir=root.parent))
                os.rename(root, old / root.name)
                os.rename(tmp, root)
                _remove_owned(old / root.name)
                old.rmdir()
            else:
                os.rename(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)  # created above by this call


SUBMISSIONS_DIR = LEADERBOARD_DIR / "submissions"


def score_submissions(name: str, out_root: Path, data, submissions: Path = SUBMISSIONS_DIR
                      ) -> list[Path]:
    """Score every accepted submission of protocol ``name`` (``submissions/<name>/<method>/``)
    into ``out_root/<name>/submitted-<method>``; a submission that no longer matches the
    protocol (its hash) fails the regeneration with one line."""
    from benchmark.core import results, submission
    from benchmark.core.protocol import get_protocol

    d = Path(submissions) / name
    if not d.is_dir():
        return []
    pdata = None
    written = []
    for sub in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if pdata is None:
            pdata = get_protocol(name).load(data)
        res, run_json = submission.score_submission(sub / "predictions.csv", pdata)
        if run_json["submitted"]["method"] != sub.name:
            raise ValueError(f"{sub}: directory name differs from its method "
                             f"{run_json['submitted']['method']!r}")
        run_json.pop("date")  # the leaderboard's inputs are dated by their submission
        written.append(results.write(res, out_root / name / f"submitted-{sub.name}", run=run_json))
    return written


def workers() -> int:
    """Processes for independent protocol runs: ``$VLMBENCH_WORKERS``, else up to 2 cores."""
    import os

    env = os.environ.get("VLMBENCH_WORKERS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"VLMBENCH_WORKERS={env!r}: expected a positive integer")
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def rerun(spec: dict, out_root: Path, data, submissions: Path = SUBMISSIONS_DIR) -> None:
    """Run every protocol of the spec into ``out_root/<protocol>/run``; when some method has
    partial coverage, again with ``common_candidates=True`` into ``.../common``; then the
    declared analyses into ``.../analysis``.

    Protocols are independent: with more than one worker (:func:`workers`) they run in
    separate processes; every run is deterministic, so the results do not depend on it.
    """
    items = list(spec["protocol"].items())
    pins = tuple(pinned_packs(spec))
    n = min(workers(), len(items))
    if n > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(n, mp_context=mp.get_context("fork")) as pool:
            for done in [pool.submit(_rerun_protocol, name, entry, out_root, data, pins)
                         for name, entry in items]:
                done.result()
    else:
        for name, entry in items:
            _rerun_protocol(name, entry, out_root, data, pins)
    for name, _ in items:
        score_submissions(name, out_root, data, submissions)
    for name, entry in spec.get("prediction", {}).items():
        run_prediction(name, entry, out_root / name / PREDICTION_DIR, data)
    for name, entry in spec.get("analysis", {}).items():
        run_analyses(name, entry, out_root / name / "analysis", data)


def run_prediction(protocol_name: str, entry: dict, out: Path, data) -> None:
    """LOVM's performance-prediction task for ``entry["methods"]`` on one protocol (first
    seed), as ``benchmark performance-prediction`` computes it, into ``out``."""
    from benchmark.core.harness import Harness, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.core.results import MARKER
    from benchmark.studies import performance_prediction as pp

    protocol = get_protocol(protocol_name)
    protocol = protocol.with_options(seeds=protocol.seeds[:1])
    table, skipped = pp.run(Harness.from_data(protocol, data),
                            resolve_methods(list(entry["methods"])))
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("performance prediction written by vlmbench\n")
    table.to_csv(out / "table.csv", index=False)
    (out / "skipped.json").write_text(json.dumps(skipped, indent=2, sort_keys=True) + "\n")


def prediction_section(protocol_name: str, entry: dict, root: Path) -> list[str]:
    """The page's "Performance prediction (L1)" section from ``root`` (:func:`run_prediction`)."""
    from benchmark.studies import performance_prediction as pp

    lines = ["## Performance prediction (L1)", ""]
    if not (root / "table.csv").is_file():
        return lines + [f"Declared for {', '.join(entry.get('methods', []))} but not run "
                        "(`python -m benchmark leaderboard --rerun`).", ""]
    table = pd.read_csv(root / "table.csv")
    skipped = json.loads((root / "skipped.json").read_text())
    return lines + pp.markdown(table, skipped, protocol_name)


def _needs(entry: dict, runs) -> dict[str, str]:
    from benchmark.features.kinds import get_kind

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
    return needs


def leaderboard_runs(results_root: Path, name: str) -> list:
    """The runs of one protocol: ``<root>/<name>/run``, ``.../common`` and the scored
    submissions ``.../submitted-<method>`` only. Anything else
    there (a stray or concurrent run directory, a killed write's temporary) is ignored with a
    warning: it can never replace a method's row."""
    from benchmark.core import results

    d = Path(results_root) / name
    if not d.is_dir():
        return []
    names = [*RUN_DIRS, *sorted(p.name for p in d.glob("submitted-*") if p.is_dir())]
    stray = sorted(p.parent for p in d.rglob("run.json") if p.parent.name not in names
                   and "analysis" not in p.relative_to(d).parts)
    for p in stray:
        log.warning("ignoring %s: not a run the leaderboard wrote (only %s/{run,common,"
                    "submitted-*})", p, d)
    return [results.read(d / r) for r in names if (d / r / "run.json").is_file()]


def render_all(spec: dict, results_root: Path) -> dict[str, str | bytes]:
    """File name (relative to ``leaderboard/``) -> content: Markdown (str) for every protocol
    of the spec and the index, PNG bytes for the figures."""

    files: dict[str, str | bytes] = {}
    index_rows, site = [], []
    for name, entry in spec["protocol"].items():
        runs = leaderboard_runs(results_root, name)
        main_runs, common_runs = split_runs(runs)
        analysis_entry = spec.get("analysis", {}).get(name)
        page: dict = {}
        text, figures = render_protocol(runs, name, _needs(entry, main_runs), analysis_entry,
                                        results_root / name / "analysis", page)
        if page:
            site.append(page)
        if name in spec.get("prediction", {}):
            section = "\n".join(prediction_section(name, spec["prediction"][name],
                                                   results_root / name / PREDICTION_DIR))
            head, sep, tail = text.partition("## Coverage\n")
            text = head + section + "\n" + sep + tail if sep else text + "\n" + section + "\n"
        files[f"{name}.md"] = text
        files.update(figures)
        scores, coverage, _ = _latest_per_method(main_runs)
        if scores.empty:
            continue
        partial = set(partial_methods(coverage))
        table = main_table(scores, coverage, partial=partial)
        top = next((r for r in table.rows if r.status == "best"), None)
        common = "—"
        c_scores, c_cov, _ = _latest_per_method(common_runs)
        if partial and not c_scores.empty:
            c_table = main_table(c_scores, c_cov)
            cells = int(c_cov.groupby("target")["candidates"].min().sum())
            common = f"{c_table.best} ({cells} cells)" if c_table.best else "—"
        index_rows.append((
            f"[{name}]({name}.md)", top.method if top else "—",
            _fmt(top.mean[("ndcg", 5)], top.std[("ndcg", 5)]) if top else "—",
            _fmt(top.mean[RANK_BY], top.std[RANK_BY]) if top else "—",
            ", ".join(f"{m} {DAGGER}" for m in sorted(partial)) or "—", common))
    index = [
        "# vlmbench leaderboards",
        "",
        "Generated by `python -m benchmark leaderboard --rerun`; do not edit by hand.",
        f"Produced by vlmbench {__version__}. Browse them in [index.html](index.html) (static: "
        "protocol tabs, sortable columns, provenance).",
        "",
        tabulate(index_rows, headers=["protocol", "best method (Sum@5, full coverage)",
                                      "its NDCG@5", "its Sum@5", "partial coverage",
                                      "best on the common candidates"], tablefmt="github"),
        "",
        f"{DAGGER} Methods that rank only part of the candidates (e.g. only the models with "
        "text features) are never named best against methods that rank all of them; each "
        "protocol page compares them like for like on the models every method covers.",
        "",
    ]
    files["README.md"] = "\n".join(index)
    from benchmark.report.html import render_page

    head = ["protocol", "best method (Sum@5, full coverage)", "its NDCG@5", "its Sum@5",
            "partial coverage", "best on the common candidates"]
    overview = {"columns": [{"label": h, "type": "num" if h.startswith("its") else "text"}
                            for h in head],
                "rows": [{"method": r[0].split("]")[0].lstrip("["), "kind": "computed",
                          "cells": [r[0].split("]")[0].lstrip("["), r[1],
                                    (r[2], _mean_of(r[2])), (r[3], _mean_of(r[3])), r[4], r[5]]}
                         for r in index_rows]}
    files["index.html"] = render_page(site, overview, __version__)
    return files


def _mean_of(cell: str) -> float | None:
    try:
        return float(cell.split(" ")[0])
    except ValueError:
        return None


# -- export -------------------------------------------------------------------------------
def latex_escape(text: str) -> str:
    out = str(text).replace("\\", "\0")  # backslashes last, after the braces are escaped
    for a, b in (("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}")):
        out = out.replace(a, b)
    out = out.replace("\0", r"\textbackslash{}")
    for a, b in (("±", r"$\pm$"), ("▲", r"$\blacktriangle$"), ("▼", r"$\blacktriangledown$"),
                 ("τ", r"$\tau$"), ("—", "--"), ("−", "-"), (DAGGER, r"$^\dagger$"),
                 ("×", r"$\times$")):
        out = out.replace(a, b)
    return out


def latex_table(frame: pd.DataFrame, caption: str, bold_first: int | None = None) -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs,amssymb}``)."""
    cols = list(frame.columns)
    lines = [f"% {caption}",
             f"% Generated by vlmbench {__version__}; needs \\usepackage{{booktabs,amssymb}}.",
             "\\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", "\\toprule",
             " & ".join(latex_escape(c) for c in cols) + " \\\\", "\\midrule"]
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = [latex_escape(v) for v in row]
        if bold_first is not None and i == bold_first:
            cells[0] = f"\\textbf{{{cells[0]}}}"
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def export_tables(spec: dict, results_root: Path, out: Path) -> list[Path]:
    """``<protocol>-main.csv/.tex`` (and ``-common``) for every protocol with results."""

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, entry in spec["protocol"].items():
        runs = leaderboard_runs(results_root, name)
        main_runs, common_runs = split_runs(runs)
        scores, coverage, _ = _latest_per_method(main_runs)
        if scores.empty:
            continue
        partial = set(partial_methods(coverage))
        tables = {"main": main_table(scores, coverage, _needs(entry, main_runs), partial)}
        c_scores, c_cov, _ = _latest_per_method(common_runs)
        if partial and not c_scores.empty:
            tables["common"] = main_table(c_scores, c_cov)
        for which, table in tables.items():
            stem = out / f"{name}-{which}"
            numeric_frame(table).to_csv(stem.with_suffix(".csv"), index=False,
                                        float_format="%.6f")
            best = next((i for i, r in enumerate(table.rows) if r.status == "best"), None)
            what = "main table" if which == "main" else "on the models every method covers"
            stem.with_suffix(".tex").write_text(latex_table(
                table_frame(table), f"vlmbench leaderboard {name}, {what}", best))
            written += [stem.with_suffix(".csv"), stem.with_suffix(".tex")]
    return written


def measured_protocols(spec: dict) -> list[str]:
    """The spec's protocols trained and measured on this host (``Protocol.measured_here``)."""
    from benchmark.core.protocol import get_protocol

    return [n for n in spec["protocol"] if get_protocol(n).measured_here]


def measured_failures(spec: dict, results_root: Path) -> list[str]:
    """``<protocol>: <property>`` for every ranking-task property a measured protocol's rerun
    found failing (a page can regenerate fine and still describe a degenerate zoo)."""
    from benchmark.report.measured import property_failures

    out = []
    for name in measured_protocols(spec):
        main_runs, _ = split_runs(leaderboard_runs(results_root, name))
        _, _, run_meta = _latest_per_method(main_runs)
        out += [f"{name}: {f}" for f in property_failures(run_meta)]
    return out


def _stale_figures(out: Path, files: dict) -> list[str]:
    fig_dir = out / FIGURES
    if not fig_dir.is_dir():
        return []
    return sorted(f"{FIGURES}/{p.name}" for p in fig_dir.glob("*.png")
                  if f"{FIGURES}/{p.name}" not in files)


def check(files: dict, out: Path, measured_protocols=()) -> list[str]:
    """Names of the files under ``out`` that differ from ``files`` (or should not exist).

    Pages of ``measured_protocols`` (trained and measured on this host) are compared by
    structure only (:mod:`benchmark.report.measured`), their figures by existence."""
    from benchmark.report import measured, plots

    stale = []
    for name, content in files.items():
        path = out / name
        if measured_protocols and measured.is_measured_figure(name, measured_protocols):
            if not path.is_file():
                stale.append(name)
                sys.stdout.write(f"{name}: missing\n")
            continue
        if measured_protocols and isinstance(content, str) and path.is_file() and \
                measured.same(name, path.read_text(), content, measured_protocols):
            continue
        if isinstance(content, bytes):
            current = path.read_bytes() if path.is_file() else b""
            fresh, how = plots.same_figure(current, content)
            if not fresh:
                stale.append(name)
                sys.stdout.write(f"{name}: figure differs from the regenerated one\n")
            elif how != "identical bytes":
                sys.stdout.write(f"{name}: {how}\n")
            continue
        current = path.read_text() if path.is_file() else ""
        if current != content and not measured.same_but_host_blocks(current, content):
            stale.append(name)
            diff = difflib.unified_diff(current.splitlines(), content.splitlines(),
                                        f"{path} (committed)", "regenerated", lineterm="")
            sys.stdout.write("\n".join(list(diff)[:40]) + "\n")
    for name in _stale_figures(out, files):
        stale.append(name)
        sys.stdout.write(f"{name}: no longer generated\n")
    return stale
