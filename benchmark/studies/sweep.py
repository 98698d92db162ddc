"""Sensitivity analyses of any registered method: parameter sweeps and sample-efficiency curves.

    python -m benchmark sweep dcd --param beta=1.5:3.5:5 --param gamma=1,10,100 [--protocol lovm]
    python -m benchmark sample-efficiency dcd --n-source 1,5,10,25,50,100 [--n-target same]

A grid is the product of ``--param NAME=SPEC`` axes over the method's constructor parameters;
``SPEC`` is ``start:stop:num`` (``numpy.linspace``; integers when start and stop are integers
and every value is integral) or ``v1,v2,...`` (each parsed as JSON, then as a float -- ``inf``
works --, else kept as a string). ``--set NAME=VALUE`` fixes a parameter for every point.

Every grid point is one leave-one-dataset-out run of the harness, with the same
:class:`~benchmark.core.harness.Harness` (ground truth and features are loaded once). Per point:
for every seed the mean over targets, then mean and std (ddof=0) over seeds, exactly as the
leaderboard aggregates. ``--mock`` runs on the conformance check's mock universe (random ground
truth and features) to try a method without data.

Outputs, written to ``--out DIR`` under a temporary name and renamed (never half-written):

- ``<name>.csv``: one row per grid point: the parameters, then ``<metric>@<k>`` (mean over
  seeds) and ``<metric>@<k>_std`` for every metric and k, and ``seeds``;
- ``scores.csv``: the long per-(point, seed, target, metric, k) table behind it;
- ``<name>.png``: ``sweep``: a heatmap of ``--metric`` (two parameters; small multiples over
  any further ones; a line plot for one parameter); ``sample-efficiency``: ``--metric``
  against the number of source images, one line per number of target images;
- ``<name>.json``: method, fixed parameters, grid, protocol, seeds, versions, git commit.
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.results import write_dir

log = logging.getLogger(__name__)
DEFAULT_METRIC = "ndcg@5"


# -- grid syntax --------------------------------------------------------------------------
def _scalar(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_values(spec: str) -> list[Any]:
    """``'1.5:3.5:5'`` -> linspace; ``'1,10,100'`` -> those values; ``'x'`` -> ``['x']``."""
    if ":" in spec and "," not in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise ValueError(f"{spec!r}: a range is start:stop:num (e.g. 1.5:3.5:5)")
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(f"{spec!r}: start and stop must be numbers, num an integer") from None
        if num < 1:
            raise ValueError(f"{spec!r}: num must be >= 1")
        values = np.linspace(start, stop, num)
        ints = all(_is_int_text(p) for p in parts[:2]) and np.all(values == np.round(values))
        return [int(v) for v in values] if ints else [float(v) for v in values]
    values = [_scalar(v) for v in spec.split(",") if v.strip()]
    if not values:
        raise ValueError(f"{spec!r}: no values")
    return values


def _is_int_text(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``['beta=1:2:3', 'gamma=1,10']`` -> ``{'beta': [1.0, 1.5, 2.0], 'gamma': [1, 10]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name or not spec.strip():
            raise ValueError(f"--param {item!r}: expected NAME=start:stop:num or NAME=v1,v2,...")
        if name in grid:
            raise ValueError(f"--param {name} given twice")
        try:
            grid[name] = parse_values(spec)
        except ValueError as err:
            raise ValueError(f"--param {name}={err}") from None
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The product of the axes, first axis slowest."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def parse_fixed(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set NAME=VALUE`` items -> parameters."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {item!r}: expected NAME=VALUE (e.g. gamma=10)")
        out[name.strip()] = _scalar(value)
    return out


def check_param_names(method: str, cls: type, names: Sequence[str]) -> None:
    valid = cls._param_names()
    for n in names:
        if n not in valid:
            close = difflib.get_close_matches(n, valid, n=2, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"{method} has no parameter {n!r}{hint} "
                             f"(valid: {', '.join(valid) or 'none'})")


def parse_metric(text: str, ks: Sequence[int],
                 outcome_ks: Sequence[int] = (1, 3, 5)) -> tuple[str, int]:
    """``METRIC@K``: a ranking metric at one of ``ks`` or an outcome metric (acc, regret, ...)
    at one of ``outcome_ks``."""
    from benchmark.core.metrics import METRICS, NOISE_METRICS, OUTCOME_METRICS

    outcome = OUTCOME_METRICS + tuple(m for m in NOISE_METRICS if m != "se")
    valid = [f"{m}@{k}" for m in METRICS for k in ks]
    valid += [f"{m}@{k}" for m in outcome for k in outcome_ks]
    if text not in valid or not _is_int_text(text.partition("@")[2]):
        raise ValueError(f"--metric {text!r}: expected one of {', '.join(valid)}")
    name, _, k = text.partition("@")
    return name, int(k)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def point_label(method: str, point: Mapping[str, Any]) -> str:
    return f"{method}[" + ",".join(f"{k}={_fmt(v)}" for k, v in point.items()) + "]"


# -- running ------------------------------------------------------------------------------
@dataclass
class SweepResult:
    method: str
    protocol: str
    params: tuple[str, ...]  # the varied parameters, in grid order
    fixed: Mapping[str, Any]  # registry + --set parameters, before the point's values
    points: list[dict[str, Any]]
    table: pd.DataFrame  # one row per point
    scores: pd.DataFrame  # point, <params>, method, protocol, seed, target, metric, k, value
    seeds: tuple[int, ...]


def summarize_points(scores: pd.DataFrame, points: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per point: its parameters, mean and std over seeds of the mean over targets."""
    from benchmark.core.results import seed_means

    rows = []
    for i, point in enumerate(points):
        row: dict[str, Any] = {"point": i, **point}
        s = scores[scores["point"] == i]
        means = seed_means(s) if not s.empty else pd.DataFrame(columns=["metric", "k", "value"])
        for (metric, k), g in means.groupby(["metric", "k"], sort=True):
            vals = g["value"].to_numpy(float)
            row[f"{metric}@{k}"] = float(vals.mean())
            row[f"{metric}@{k}_std"] = float(vals.std(ddof=0))
        row["seeds"] = int(s["seed"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def run_points(
    harness,
    method: str,
    points: list[dict[str, Any]],
    fixed: Mapping[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run ``method`` once per point (its parameters over the fixed ones) on one harness."""
    from tqdm.auto import tqdm

    from benchmark.core.harness import MethodRun, resolve_methods

    base = resolve_methods([method], {method: dict(fixed or {})})[0]
    names = list(dict.fromkeys(k for p in points for k in p))
    check_param_names(method, base.cls, [*names, *(fixed or {})])
    seeds = tuple(seeds if seeds is not None else harness.protocol.seeds)
    harness.check_available([base], skip_unavailable=False)  # fail fast, with the commands
    frames = []
    from benchmark.progress import bars_enabled, stage

    stage(f"{method} on {harness.protocol.name}: {len(points)} point(s)", progress)
    bar = tqdm(points, desc=f"{method} on {harness.protocol.name}", unit="point",
               disable=not bars_enabled(progress))
    for i, point in enumerate(bar):
        label = point_label(method, point)
        bar.set_postfix_str(label, refresh=False)
        run = MethodRun(label, base.cls, MappingProxyType({**base.params, **point}))
        res = harness.run([run], seeds=seeds, progress=False)
        s = res.scores.copy()
        s.insert(0, "point", i)
        for j, (k, v) in enumerate(point.items()):
            s.insert(1 + j, k, [v] * len(s))
        frames.append(s)
    bar.close()
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return SweepResult(method, harness.protocol.name, tuple(names), dict(base.params), points,
                       summarize_points(scores, points), scores, seeds)


# -- plots --------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(res: SweepResult, metric: str) -> str:
    return (f"{res.method} on {res.protocol}: {metric} "
            f"(mean over {len(res.seeds)} seed{'s' if len(res.seeds) != 1 else ''})")


def plot_sweep(res: SweepResult, grid: Mapping[str, Sequence[Any]], metric: str, path: Path):
    """Heatmap of the first two parameters (one panel per combination of the others)."""
    plt = _pyplot()
    names = list(grid)
    col = res.table[metric].to_numpy(float)
    std = res.table[f"{metric}_std"].to_numpy(float)
    if len(names) == 1:
        xs = [_fmt(v) for v in grid[names[0]]]
        fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(xs) + 2), 3.6))
        ax.errorbar(range(len(xs)), col, yerr=std, marker="o", capsize=3)
        ax.set_xticks(range(len(xs)), xs)
        ax.set_xlabel(names[0])
        ax.set_ylabel(metric)
        ax.set_title(_title(res, metric), fontsize=9)
        ax.grid(alpha=0.3)
    else:
        rows_name, cols_name, rest = names[0], names[1], names[2:]
        panels = list(itertools.product(*(range(len(grid[n])) for n in rest)))
        n_r, n_c = len(grid[rows_name]), len(grid[cols_name])
        ncols = min(len(panels), 3)
        nrows = math.ceil(len(panels) / ncols)
        w, h = max(4.0, 0.9 * n_c + 2.0), max(3.0, 0.55 * n_r + 1.6)
        fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
        finite = col[np.isfinite(col)]
        vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        # the table's points are the grid's product in order: index arithmetic finds a cell
        shape = [len(grid[n]) for n in names]
        cube, cube_std = col.reshape(shape), std.reshape(shape)
        for ax, panel in zip(axes.flat, panels, strict=False):
            cell = (slice(None), slice(None), *panel)
            mat, mstd = cube[cell], cube_std[cell]
            im = ax.imshow(mat, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto",
                           origin="lower")
            for (r, c), v in np.ndenumerate(mat):
                if np.isfinite(v):
                    ax.text(c, r, f"{v:.3f}\n±{mstd[r, c]:.3f}", ha="center", va="center",
                            fontsize=7, color="white" if v < (vmin + vmax) / 2 else "black")
            ax.set_xticks(range(n_c), [_fmt(v) for v in grid[cols_name]])
            ax.set_yticks(range(n_r), [_fmt(v) for v in grid[rows_name]])
            ax.set_xlabel(cols_name)
            ax.set_ylabel(rows_name)
            if rest:
                ax.set_title(", ".join(f"{n}={_fmt(grid[n][i])}" for n, i in
                                       zip(rest, panel, strict=True)), fontsize=8)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        fig.colorbar(im, ax=axes.ravel().tolist(), label=metric, shrink=0.9)
        fig.suptitle(_title(res, metric), fontsize=9, y=1.02 if rest else 0.98)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_sample_efficiency(res: SweepResult, metric: str, path: Path, x: str, hue: str | None):
    """``metric`` (mean ± std over seeds) against ``x``; one line per value of ``hue``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    t = res.table
    groups = [(None, t)] if hue is None else list(t.groupby(hue, sort=False, dropna=False))
    for key, g in groups:
        g = g.sort_values(x)
        xs, ys, sd = g[x].to_numpy(float), g[metric].to_numpy(float), g[f"{metric}_std"]
        label = None if hue is None else f"{hue}={_fmt(key)}"
        ax.plot(xs, ys, marker="o", label=label)
        ax.fill_between(xs, ys - sd.to_numpy(float), ys + sd.to_numpy(float), alpha=0.2)
    xs_all = t[x].to_numpy(float)
    if xs_all.min() > 0 and xs_all.max() / xs_all.min() >= 10:
        ax.set_xscale("log")
    ax.set_xticks(sorted(set(xs_all)), [_fmt(v) for v in sorted(set(t[x]))])
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(_title(res, metric), fontsize=9)
    ax.grid(alpha=0.3)
    if hue is not None:
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# -- writing ------------------------------------------------------------------------------
def provenance(res: SweepResult, kind: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    from benchmark.core import results

    return {
        "analysis": kind,
        "method": res.method,
        "fixed_params": dict(res.fixed),
        "varied": list(res.params),
        "points": res.points,
        "protocol": res.protocol,
        "seeds": list(res.seeds),
        "git": results.git_commit(),
        "versions": results.versions(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        **extra,
    }


def write_outputs(res: SweepResult, out: Path, name: str, plot: Callable[[Path], None],
                  extra: Mapping[str, Any]) -> Path:
    def dump_json(p: Path) -> None:
        p.write_text(json.dumps(provenance(res, name, extra), indent=2, sort_keys=True,
                                default=repr) + "\n")

    return write_dir(out, {
        f"{name}.csv": lambda p: res.table.to_csv(p, index=False),
        "scores.csv": lambda p: res.scores.to_csv(p, index=False),
        f"{name}.png": plot,
        f"{name}.json": dump_json,
    })
