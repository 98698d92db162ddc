"""Is the minizoo a ranking task? Measured on its ground-truth packs (no torch).

``python -m benchmark.minizoo.properties [--features-dir DIR]`` prints, per target, the best
and worst model's top-1, their spread, chance, and the number of distinct winners -- the
non-degeneracy properties of issue 12 (spread >= 0.15 on every target, >= 4 winners).
"""

from __future__ import annotations

import argparse

import pandas as pd


def ground_truth(store=None, models=None) -> pd.DataFrame:
    """models x datasets top-1 from the ground-truth packs (NaN where absent)."""
    from benchmark.data.zoo import MINIZOO_12
    from benchmark.features.store import FeatureStore

    store = store or FeatureStore()
    rows = {}
    for m in models or MINIZOO_12:
        rows[m] = {d: float(store.read("ground-truth", m, d)["acc1"])
                   for d in store.datasets("ground-truth", m)}
    return pd.DataFrame(rows).T


def spread(gt: pd.DataFrame) -> pd.DataFrame:
    from benchmark.minizoo import world

    rows = []
    for d in [c for c in gt.columns if c in world.TASKS]:
        col = gt[d].dropna()
        rows.append({"target": d, "best": col.idxmax(), "best_acc1": col.max(),
                     "worst_acc1": col.min(), "spread": col.max() - col.min(),
                     "chance": 1 / len(world.TASKS[d].classes)})
    return pd.DataFrame(rows)


#: issue 12's thresholds (change the mixtures when they fail, never these)
MIN_SPREAD = 0.15
MIN_WINNERS = 4
MAX_INB_NDCG5 = 0.9
#: "random stays near chance": its NDCG@5 within this of a uniformly random ranking's mean
RANDOM_TOLERANCE = 0.1


def chance_ndcg(gt: pd.DataFrame, targets, k: int = 5, draws: int = 200, seed: int = 0) -> float:
    """Mean NDCG@k of uniformly random rankings (Monte Carlo, fixed seed), mean over targets."""
    import numpy as np

    from benchmark.core.metrics import ndcg_at_k

    rng = np.random.default_rng(seed)
    out = []
    for t in targets:
        truth = gt[t].dropna()
        vals = [ndcg_at_k(pd.Series(rng.permutation(len(truth)).astype(float), truth.index),
                          truth, k) for _ in range(draws)]
        out.append(float(np.mean(vals)))
    return float(np.mean(out))


def verify(gt: pd.DataFrame, ndcg5: dict[str, float] | None = None) -> dict:
    """The non-degeneracy properties on a ground-truth matrix (models x datasets) and, when
    given, the mean NDCG@5 of ``inb`` and ``random``: a JSON-able dict with ``failures`` (one
    line each; empty when the zoo is a ranking task)."""
    t = spread(gt)
    fails = [f"{r.target}: best - worst top-1 = {r.spread:.3f} < {MIN_SPREAD}"
             for r in t.itertuples() if r.spread < MIN_SPREAD]
    winners = int(t["best"].nunique())
    if winners < MIN_WINNERS:
        fails.append(f"only {winners} distinct best models (need >= {MIN_WINNERS})")
    out = {"targets": t.round(4).to_dict(orient="records"), "winners": winners,
           "min_spread": float(t["spread"].min())}
    ndcg5 = ndcg5 or {}
    if "inb" in ndcg5:
        out["inb_ndcg5"] = round(float(ndcg5["inb"]), 4)
        if ndcg5["inb"] >= MAX_INB_NDCG5:
            fails.append(f"inb NDCG@5 = {ndcg5['inb']:.3f} >= {MAX_INB_NDCG5}: the side "
                         "dataset alone ranks the zoo")
    if "random" in ndcg5:
        chance = chance_ndcg(gt, list(t["target"]))
        out["random_ndcg5"], out["chance_ndcg5"] = round(float(ndcg5["random"]), 4), round(chance, 4)
        if abs(ndcg5["random"] - chance) > RANDOM_TOLERANCE:
            fails.append(f"random NDCG@5 = {ndcg5['random']:.3f}, chance {chance:.3f}: "
                         f"more than {RANDOM_TOLERANCE} apart")
    out["failures"] = fails
    return out


def main(argv=None) -> int:
    from benchmark.features.store import FeatureStore

    p = argparse.ArgumentParser()
    p.add_argument("--features-dir")
    a = p.parse_args(argv)
    gt = ground_truth(FeatureStore(a.features_dir) if a.features_dir else None)
    t = spread(gt)
    print(t.round(3).to_string(index=False))
    for line in verify(gt)["failures"]:
        print(f"FAILS: {line}")
    print(f"distinct winners: {t['best'].nunique()}; targets with spread >= 0.15: "
          f"{int((t['spread'] >= 0.15).sum())}/{len(t)}; top-1 range "
          f"{gt.min().min():.2f}-{gt.max().max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
