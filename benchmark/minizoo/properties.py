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


def main(argv=None) -> int:
    from benchmark.features.store import FeatureStore

    p = argparse.ArgumentParser()
    p.add_argument("--features-dir")
    a = p.parse_args(argv)
    gt = ground_truth(FeatureStore(a.features_dir) if a.features_dir else None)
    t = spread(gt)
    print(t.round(3).to_string(index=False))
    print(f"distinct winners: {t['best'].nunique()}; targets with spread >= 0.15: "
          f"{int((t['spread'] >= 0.15).sum())}/{len(t)}; top-1 range "
          f"{gt.min().min():.2f}-{gt.max().max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
