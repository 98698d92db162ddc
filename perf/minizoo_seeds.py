"""How much the minizoo main table moves with the world seed (issue 12, item 8; not in CI).

    python perf/minizoo_seeds.py                       # world seeds 0,1,2, the whole zoo
    python perf/minizoo_seeds.py --seeds 0,1 --models MZ-ViT-2-32-p8:all,MZ-RN-1-8:dark,\
MZ-ViT-2-32-p8:clean --datasets mz_colour,mz_background,mz_count --steps 80 --out /tmp/mzs

For every world seed N it builds that zoo (``zoo build minizoo --seed N``: protocol ``minizoo``
for 0, ``minizoo-sN`` otherwise; trained, imaged and extracted into the usual caches,
resumable: a second call costs seconds) and runs the minizoo leaderboard's methods
(``leaderboard/runs.toml [protocol.minizoo]``) with 3 selector seeds. It prints and writes
``<out>.csv`` (one row per method: NDCG@5, Sum@5, acc@1, regret@1 per world seed, and their
mean and std over world seeds) and ``<out>.md`` (that table, Kendall tau-b between the method
orderings by Sum@5 of each pair of world seeds, the best method per seed, and the ground-truth
properties of each zoo, :func:`benchmark.minizoo.properties.verify`). Default ``<out>``:
``perf/minizoo_seeds``. Cost: ~20 min per zoo on 2 quiet cores (mostly training).

``--steps`` overrides every model's training steps: a reduced functional check only, recorded
in the output (the numbers of such a run say nothing about the real zoo; use its own
``VLMBENCH_WEIGHTS``, since a checkpoint's steps are checked against its manifest).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
#: (metric, k, column label) of the study's table; RANK_BY orders the methods
METRICS = (("ndcg", 5, "NDCG@5"), ("sum", 5, "Sum@5"), ("acc", 1, "acc@1"),
           ("regret", 1, "regret@1"))
RANK_BY = "Sum@5"
SELECTOR_SEEDS = (0, 1, 2)


def leaderboard_methods() -> list[str]:
    from benchmark.data._toml import load_toml

    return list(load_toml(REPO / "leaderboard" / "runs.toml")["protocol"]["minizoo"]["methods"])


def per_method(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per method: each METRICS column, mean over targets, then over selector seeds."""
    from benchmark.report.leaderboard import seed_means

    means = seed_means(scores)
    rows = []
    for method, mine in means.groupby("method"):
        row = {"method": method}
        for metric, k, label in METRICS:
            v = mine[(mine["metric"] == metric) & (mine["k"] == k)]["value"].to_numpy(float)
            row[label] = float(v.mean()) if len(v) and np.all(np.isfinite(v)) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def kendall_tau_b(x, y) -> float:
    """Kendall tau-b of two equally long score vectors (ties in either count as in scipy)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    conc = disc = tx = ty = 0
    for i, j in combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    denom = np.sqrt((conc + disc + tx) * (conc + disc + ty))
    return float((conc - disc) / denom) if denom else float("nan")


def aggregate(table: pd.DataFrame, rank_by: str = RANK_BY) -> dict[str, pd.DataFrame]:
    """The study's summaries from ``table`` (columns ``zoo_seed``, ``method`` and the METRICS
    labels; one row per world seed and method; a pure function).

    - ``wide``: one row per method, ``<label> s<N>`` per world seed, ``<label> mean`` and
      ``<label> std`` (population std, ddof=0, over the seeds where the method has a number),
      ordered by the mean of ``rank_by``, best first;
    - ``tau``: per pair of world seeds, Kendall tau-b between the methods' ``rank_by`` values
      (= between the two method orderings) on the methods both seeds score;
    - ``best``: per world seed, the method with the highest ``rank_by``.
    """
    labels = [c for _, _, c in METRICS if c in table.columns]
    seeds = sorted(int(s) for s in table["zoo_seed"].unique())
    wide = pd.DataFrame({"method": sorted(table["method"].unique())})
    for label in labels:
        piv = table.pivot(index="method", columns="zoo_seed", values=label).reindex(wide["method"])
        for s in seeds:
            wide[f"{label} s{s}"] = piv[s].to_numpy(float)
        vals = piv[seeds].to_numpy(float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a method no seed scores: NaN
            wide[f"{label} mean"] = np.nanmean(vals, axis=1)
            wide[f"{label} std"] = np.nanstd(vals, axis=1)
    key = wide[f"{rank_by} mean"].fillna(-np.inf)
    wide = wide.iloc[np.lexsort((wide["method"].to_numpy(), -key.to_numpy()))]
    wide = wide.reset_index(drop=True)
    piv = table.pivot(index="method", columns="zoo_seed", values=rank_by)
    taus = []
    for a, b in combinations(seeds, 2):
        both = piv[[a, b]].dropna()
        taus.append({"seed_a": a, "seed_b": b, "methods": len(both),
                     "tau": kendall_tau_b(both[a], both[b]) if len(both) >= 2 else np.nan})
    best = []
    for s in seeds:
        col = piv[s].dropna()
        top = col[col == col.max()].index if len(col) else []
        best.append({"zoo_seed": s, "best": ", ".join(sorted(top)),
                     rank_by: float(col.max()) if len(col) else np.nan})
    return {"wide": wide, "tau": pd.DataFrame(taus, columns=["seed_a", "seed_b", "methods", "tau"]),
            "best": pd.DataFrame(best)}


def model_ids(models: list[str] | None, seed: int) -> list[str] | None:
    """``ARCH:mixture`` (or ``ARCH:mixture_sK``) -> the ids of world ``seed``."""
    if not models:
        return None
    out = []
    for m in models:
        arch, _, tag = m.partition(":")
        name, sep, k = tag.rpartition("_s")
        out.append(f"{arch}:{(name if sep and k.isdigit() else tag)}_s{seed}")
    return out


def one_zoo(seed: int, methods, models, datasets, features_dir, progress: bool) -> dict:
    from benchmark.api import evaluate
    from benchmark.core.protocol import minizoo_name
    from benchmark.features.store import FeatureStore
    from benchmark.minizoo import pipeline, properties, train, zoo

    ids = model_ids(models, seed)
    t0 = time.perf_counter()
    stages = pipeline.ensure(ids, world_seed=seed, features_dir=features_dir, progress=progress,
                             datasets=datasets)
    build_s = time.perf_counter() - t0
    chosen = [zoo.find(m)[0] for m in ids] if ids else list(zoo.MODELS)
    steps = {}
    for m in chosen:
        man = json.loads(train.paths(m, seed)[1].read_text())
        if int(man["steps"]) != m.mixture.steps:
            raise SystemExit(f"{m.id(seed)}: its checkpoint was trained {man['steps']} steps, "
                             f"not {m.mixture.steps} (--steps needs its own VLMBENCH_WEIGHTS)")
        steps[m.id(seed)] = int(man["steps"])
    t0 = time.perf_counter()
    res = evaluate(methods, minizoo_name(seed), SELECTOR_SEEDS, models=ids, datasets=datasets,
                   features_dir=features_dir, skip_unavailable=True, progress=False)
    run_s = time.perf_counter() - t0
    table = per_method(res.scores)
    table.insert(0, "zoo_seed", seed)
    gt = properties.ground_truth(FeatureStore(features_dir), [m.id(seed) for m in chosen])
    if datasets:
        gt = gt[[c for c in gt.columns if c in set(datasets)]]
    nd = dict(zip(table["method"], table["NDCG@5"], strict=True))
    props = properties.verify(gt, {k: v for k, v in nd.items() if k in ("inb", "random")})
    return {"table": table, "properties": props, "skipped": sorted(set(methods) - set(res.methods)),
            "build_s": build_s, "run_s": run_s, "stages": stages, "steps": steps}


def fmt(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.3f}"


def markdown(agg: dict, runs: dict[int, dict], meta: dict) -> str:
    from tabulate import tabulate

    wide = agg["wide"]
    seeds = sorted(runs)
    head = ["method"]
    rows = []
    for _, r in wide.iterrows():
        row = [r["method"]]
        for _, _, label in METRICS:
            row += [fmt(r[f"{label} s{s}"]) for s in seeds]
            row.append(f"{fmt(r[f'{label} mean'])} ± {fmt(r[f'{label} std'])}")
        rows.append(row)
    for _, _, label in METRICS:
        head += [f"{label} s{s}" for s in seeds] + [f"{label} mean ± std"]
    out = [
        "# minizoo over world seeds (perf/minizoo_seeds.py)", "",
        f"- command: `{meta['command']}`",
        f"- world seeds {', '.join(map(str, seeds))}; selector seeds "
        f"{', '.join(map(str, SELECTOR_SEEDS))}; metrics: mean over targets, then over selector "
        "seeds; ± = population std (ddof=0) over world seeds",
        f"- models: {meta['models']}; datasets: {meta['datasets']}",
        f"- training steps: {meta['steps']}",
        f"- host: {meta['host']}; wall time {meta['wall_s']:.0f} s ("
        + "; ".join(f"s{s}: build {runs[s]['build_s']:.0f} s, run {runs[s]['run_s']:.0f} s"
                    for s in seeds) + "; a build is resumable: seconds when present)",
        "", "## Main table per world seed", "",
        tabulate(rows, headers=head, tablefmt="github", disable_numparse=True), "",
        f"## How much the ranking of methods moves (Kendall tau-b of the orderings by {RANK_BY})",
        "", tabulate([[f"s{t.seed_a} vs s{t.seed_b}", t.methods, fmt(t.tau)]
                      for t in agg["tau"].itertuples()],
                     headers=["pair", "methods", "tau"], tablefmt="github",
                     disable_numparse=True), "",
        "## Best method per world seed", "",
        tabulate([[f"s{b['zoo_seed']}", b["best"], fmt(b[RANK_BY])]
                  for _, b in agg["best"].iterrows()],
                 headers=["world seed", "best", RANK_BY], tablefmt="github",
                 disable_numparse=True), "",
        "## Ground-truth properties per world seed (benchmark/minizoo/properties.py verify)", "",
    ]
    prow = []
    for s in seeds:
        p = runs[s]["properties"]
        prow.append([f"s{s}", p["winners"], fmt(p["min_spread"]), fmt(p.get("inb_ndcg5", np.nan)),
                     fmt(p.get("random_ndcg5", np.nan)), fmt(p.get("chance_ndcg5", np.nan)),
                     "; ".join(p["failures"]) or "none"])
    out += [tabulate(prow, headers=["world seed", "distinct winners", "min spread", "inb NDCG@5",
                                    "random NDCG@5", "chance NDCG@5", "failures"],
                     tablefmt="github", disable_numparse=True), ""]
    skipped = {s: runs[s]["skipped"] for s in seeds if runs[s]["skipped"]}
    if skipped:
        out += ["Methods without features (not scored): " + "; ".join(
            f"s{s}: {', '.join(sorted(v))}" for s, v in skipped.items()), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="world seeds (default %(default)s)")
    p.add_argument("--models", help="a subset of the zoo, ARCH:mixture (the world seed is added)")
    p.add_argument("--datasets", help="a subset of the minizoo targets")
    p.add_argument("--methods", help="default: leaderboard/runs.toml [protocol.minizoo]")
    p.add_argument("--steps", type=int,
                   help="training steps of every model (functional check only; recorded)")
    p.add_argument("--features-dir")
    p.add_argument("--out", default=str(REPO / "perf" / "minizoo_seeds"),
                   help="output prefix: <out>.csv and <out>.md (default %(default)s)")
    p.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    models = [m.strip() for m in (a.models or "").split(",") if m.strip()] or None
    datasets = [d.strip() for d in (a.datasets or "").split(",") if d.strip()] or None
    methods = [m.strip() for m in a.methods.split(",")] if a.methods else leaderboard_methods()
    if a.steps:
        from dataclasses import replace

        from benchmark.minizoo import train, zoo

        fast = tuple(replace(m, mixture=replace(m.mixture, steps=a.steps)) for m in zoo.MODELS)
        zoo.MODELS = train.MODELS = fast
    from benchmark.minizoo import zoo
    from benchmark.report import measured

    t0 = time.perf_counter()
    runs = {}
    for s in seeds:
        print(f"world seed {s}: building and running ...", file=sys.stderr, flush=True)
        runs[s] = one_zoo(s, methods, models, datasets, a.features_dir, a.progress)
        print(f"world seed {s}: build {runs[s]['build_s']:.0f} s, run {runs[s]['run_s']:.0f} s",
              file=sys.stderr, flush=True)
    table = pd.concat([r["table"] for r in runs.values()], ignore_index=True)
    agg = aggregate(table)
    steps = sorted({v for r in runs.values() for v in r["steps"].values()})
    meta = {"command": "python perf/minizoo_seeds.py " + " ".join(argv or sys.argv[1:]),
            "models": ", ".join(models) if models else f"the whole zoo ({len(zoo.MODELS)})",
            "datasets": ", ".join(datasets) if datasets else "all 13 targets",
            "steps": ("/".join(map(str, steps)) + (f" (--steps {a.steps}: a reduced functional "
                      "check, not the zoo's numbers)" if a.steps else " (the zoo's own)")),
            "host": measured.host(), "wall_s": time.perf_counter() - t0}
    text = markdown(agg, runs, meta)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    agg["wide"].round(4).to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
