"""Per-seed box plots of the main metrics (the DCD paper's Fig. 5).

For every method of a results directory (``scores.csv`` of ``benchmark run``) and every metric
``name@k``: per seed, the mean over targets (exactly the leaderboard's per-seed value), then one
box per method over the seeds. Deterministic methods give one value repeated (a flat box).

    python -m benchmark seed-boxplots RESULTS_DIR [--metrics ndcg@5,tau@5] [--out FILE.png]
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@5", "tau@5", "ndcg@3", "ndcg@7")


def per_seed(scores: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Long table (method, seed, metric, value): the mean over targets per seed."""
    s = scores.assign(name=scores["metric"] + "@" + scores["k"].astype(str))
    s = s[s["name"].isin(list(metrics))]
    out = s.groupby(["method", "seed", "name"], sort=True)["value"].mean().reset_index()
    return out.rename(columns={"name": "metric"})


def plot(table: pd.DataFrame, metrics: Sequence[str], path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted(table["method"].unique())
    fig, axes = plt.subplots(1, len(metrics), figsize=(0.6 + 0.45 * len(methods) * len(metrics)
                                                       + 1.5, 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        t = table[table["metric"] == metric]
        ax.boxplot([t.loc[t["method"] == m, "value"].to_numpy() for m in methods])
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=60, ha="right", fontsize=7)
        ax.set_title(metric)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
