"""How the harness's cost grows with the zoo and the number of datasets (synthetic protocol).

    python perf/bench_scale.py                    # the grid below + the 1000 x 200 point
    python perf/bench_scale.py --quick            # a smaller grid
    python perf/bench_scale.py --before 6da5e8b   # also: that revision vs HEAD at 1000 x 200,
                                                  # in one run (no grid, no plot)
    python perf/bench_scale.py --blas-threads 1   # BLAS limited to one thread (threadpoolctl)

A synthetic protocol (random accuracies with a per-model skill, random text features for
ModelGPT) of M models x D datasets runs ``inb,avgrank,modelgpt`` leave-one-dataset-out (one
seed: all three are deterministic). Prints the wall time per point and writes
``perf/scale.png`` (wall time against models and against datasets) and ``perf/scale.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmark.core.harness import Harness, resolve_methods  # noqa: E402
from benchmark.core.metrics import MetricConfig  # noqa: E402
from benchmark.core.protocol import SIDE_DATASET, Protocol, ProtocolData  # noqa: E402
from benchmark.data.catalog import DatasetInfo  # noqa: E402
from benchmark.data.groundtruth import COLUMNS, GroundTruth  # noqa: E402
from benchmark.features import text_features  # noqa: E402
from benchmark.features.kinds import LoadContext  # noqa: E402
from benchmark.features.store import FeatureStore  # noqa: E402

METHODS = ["inb", "avgrank", "modelgpt"]


def synthetic(n_models: int, n_datasets: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    models = tuple(f"Syn-{i}:s{seed}" for i in range(n_models))
    datasets = tuple(f"syn{i}" for i in range(n_datasets))
    skill = rng.normal(size=n_models)
    rows = []
    for d in datasets:
        acc = 1 / (1 + np.exp(-(skill + rng.normal(scale=0.8, size=n_models))))
        rows += [(m, d, float(a), "synthetic") for m, a in zip(models, acc, strict=True)]
    side = 1 / (1 + np.exp(-(skill + rng.normal(scale=0.5, size=n_models))))
    rows += [(m, SIDE_DATASET, float(a), "synthetic") for m, a in zip(models, side, strict=True)]
    protocol = Protocol(name=f"synthetic-{n_models}x{n_datasets}", description="scale benchmark",
                        zoo=models, datasets=datasets, gt_sources=("synthetic",), seeds=(0,),
                        metrics=MetricConfig())
    infos = {d: DatasetInfo(id=d, name=d, domain="synthetic", task="classification",
                            classnames=("a", "b"), templates=("a photo of a {c}.",))
             for d in datasets}
    feats = {text_features.KIND: text_features.mock(list(models), list(datasets), rng)}
    gt = GroundTruth(pd.DataFrame(rows, columns=COLUMNS))
    return ProtocolData(protocol, gt), infos, feats


def time_point(n_models: int, n_datasets: int, methods=METHODS) -> dict:
    pdata, infos, feats = synthetic(n_models, n_datasets)
    ctx = LoadContext(data=None, store=FeatureStore(tempfile.mkdtemp()))
    started = time.perf_counter()
    harness = Harness(pdata, infos, ctx, features=feats, allow_partial=True)
    result = harness.run(resolve_methods(methods), progress=False)
    wall = time.perf_counter() - started
    assert set(result.scores["method"]) == set(methods)
    return {"models": n_models, "datasets": n_datasets, "folds": n_datasets * len(methods),
            "wall_s": round(wall, 2), "load_avg": round(os.getloadavg()[0], 1)}


def time_revisions(before: str, n_models: int, n_datasets: int, blas: int | None) -> None:
    """The same point timed at ``before`` and at HEAD (each in a temporary git worktree, one
    fresh process each, one after the other), with the load average around each."""
    repo = HERE.parent
    code = ("import json, sys; sys.path.insert(0, 'perf'); import bench_scale; "
            "import sklearn.linear_model; from threadpoolctl import threadpool_limits\n"
            f"with threadpool_limits({blas}, user_api='blas'):\n"
            f"    print(json.dumps(bench_scale.time_point({n_models}, {n_datasets})))")
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rev in (("before", before), ("now", "HEAD")):
            tree = Path(tmp) / name
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-q",
                            str(tree), rev], check=True)
            try:
                load = os.getloadavg()[0]
                proc = subprocess.run([sys.executable, "-c", code], cwd=tree, check=True,
                                      env={**os.environ, "PYTHONPATH": str(tree)},
                                      capture_output=True, text=True)
                walls[name] = json.loads(proc.stdout.strip().splitlines()[-1])["wall_s"]
                print(f"  {name:6s} ({rev}): {walls[name]:7.1f} s  (load average {load:.1f} "
                      f"before, {os.getloadavg()[0]:.1f} after)", flush=True)
            finally:
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                                str(tree)], check=False)
    print(f"  speed-up: {walls['before'] / walls['now']:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--before", metavar="REV",
                    help="time REV and HEAD at --point in one run instead of the grid")
    ap.add_argument("--point", default="1000,200", help="models,datasets for --before")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS threads while timing (default: the library default)")
    args = ap.parse_args()
    import sklearn.linear_model  # noqa: F401  (every BLAS loaded before limiting them)
    from threadpoolctl import threadpool_limits

    if args.before:
        m, d = (int(x) for x in args.point.split(","))
        print(f"{m} models x {d} datasets, {','.join(METHODS)} leave-one-out, BLAS threads "
              f"{args.blas_threads or 'default'}:")
        time_revisions(args.before, m, d, args.blas_threads)
        return
    if args.quick:
        grid = [(100, 20), (200, 20), (100, 40)]
    else:
        grid = [(125, 50), (250, 50), (500, 50), (1000, 50), (1000, 25), (1000, 100),
                (1000, 200)]
    rows = []
    for m, d in grid:
        with threadpool_limits(args.blas_threads, user_api="blas"):
            row = time_point(m, d)
        rows.append(row)
        print(f"{m:5d} models x {d:4d} datasets: {row['wall_s']:7.2f} s "
              f"({row['folds']} folds, {row['folds'] / row['wall_s']:.1f} folds/s, load average "
              f"{row['load_avg']})", flush=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(HERE / "scale.csv", index=False)
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
        by_m = frame[frame["datasets"] == 50].sort_values("models")
        by_d = frame[frame["models"] == 1000].sort_values("datasets")
        axes[0].plot(by_m["models"], by_m["wall_s"], "o-")
        axes[0].set(xlabel="models (50 datasets)", ylabel="wall time (s)",
                    title="inb,avgrank,modelgpt vs zoo size")
        axes[1].plot(by_d["datasets"], by_d["wall_s"], "o-")
        axes[1].set(xlabel="datasets (1000 models)", ylabel="wall time (s)",
                    title="vs number of datasets")
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.savefig(HERE / "scale.png", dpi=100)
        print(f"wrote {HERE / 'scale.png'}")


if __name__ == "__main__":
    main()
