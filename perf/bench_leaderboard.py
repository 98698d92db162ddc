"""Wall time of ``leaderboard --rerun --check`` (the four published-data pages), before vs now.

    python perf/bench_leaderboard.py                 # HEAD vs cf09552 (before the speed-up)
    python perf/bench_leaderboard.py --before REV --repeat 2

Each revision is checked out into a temporary git worktree and timed in one run of this
script, on the same machine, with the same warm caches (``VLMBENCH_CACHE``: the first, untimed,
pass fills the MiniLM embedding cache). Needs ``VLMBENCH_MIRROR``. Prints the wall times and
the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(checkout: Path, cache: Path) -> float:
    with tempfile.TemporaryDirectory() as results:
        env = {**os.environ, "VLMBENCH_CACHE": str(cache), "PYTHONPATH": str(checkout),
               "MPLBACKEND": "Agg"}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmark", "leaderboard", "--rerun", "--check",
             "--results", str(Path(results) / "lb")],
            cwd=checkout, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # 1: a page differs (e.g. an older revision's pages)
        raise SystemExit(f"{checkout}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="cf09552")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    cache = Path(os.environ.get("VLMBENCH_CACHE") or tempfile.mkdtemp(prefix="vlmbench-"))
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for name, rev in (("before", args.before), ("now", "HEAD")):
            path = Path(tmp) / name
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                            str(path), rev], check=True)
            trees[name] = path
        try:
            timed(trees["now"], cache)  # warm the embedding cache (untimed)
            walls = {name: min(timed(path, cache) for _ in range(args.repeat))
                     for name, path in trees.items()}
        finally:
            for path in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(path)], check=False)
    load = os.getloadavg()[0]
    print(f"leaderboard --rerun --check, warm caches, load average {load:.1f}:")
    for name, wall in walls.items():
        print(f"  {name:6s} ({args.before if name == 'before' else 'HEAD'}): {wall:6.1f} s")
    print(f"  speed-up: {walls['before'] / walls['now']:.1f}x")


if __name__ == "__main__":
    main()
