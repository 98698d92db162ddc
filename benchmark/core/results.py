"""Results on disk: a tidy long table plus the provenance of the run that made it.

A results directory holds

- ``scores.csv``: exactly the columns ``method, protocol, seed, target, metric, k, value``
  (metric in ``ndcg, tau, recall, sum`` at the ranking k and ``acc, regret, nregret, hit,
  regret_tol, hit_tol, se`` at the outcome k; one row per method, seed, target, metric and k);
- ``predictions.csv``: ``method, seed, target, model, score`` (what each selector returned);
- ``coverage.csv``: per method and target, how many of the protocol's candidates it scored;
- ``timings.csv``: ``method, seed, target, seconds`` -- wall time of each fold (fit + score;
  one seed for deterministic methods); optional when reading (older runs lack it);
- ``run.json``: the resolved configuration (protocol, metric variants, seeds, methods with
  their parameters and parameter hash), package versions, git commit, date, data sources.

The directory is written under a temporary name and renamed into place: a crash never leaves
a half-written results directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.harness import SCORE_COLUMNS, RunResult

FILES = ("scores.csv", "predictions.csv", "coverage.csv", "run.json")
_PACKAGES = ("vlmbench", "numpy", "pandas", "scipy", "scikit-learn", "POT", "torch",
             "open_clip_torch", "captum", "sentence-transformers")


def git_commit(repo: Path | None = None) -> dict[str, Any]:
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=repo, capture_output=True, text=True, check=True,
            ).stdout.strip()
        )
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def provenance(result: RunResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    proto = result.protocol
    return {
        "protocol": {
            "name": proto.name,
            "description": proto.description,
            "zoo": list(proto.zoo),
            "datasets": list(proto.datasets),
            "gt_sources": list(proto.gt_sources),
            "notes": list(proto.notes),
            "metrics": dataclasses.asdict(proto.metrics),
        },
        "seeds": sorted(result.scores["seed"].unique().tolist()),
        "methods": {m.name: m.describe() for m in result.methods},
        "skipped": dict(result.skipped),
        "git": git_commit(),
        "versions": versions(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def default_out_dir(protocol: str, root: Path = Path("results")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / protocol / stamp


def write_dir(out: Path, writers: Mapping[str, Callable[[Path], None]]) -> Path:
    """Create ``out`` atomically: every file is written into a temporary sibling, then renamed.

    Refuses an existing ``out``; a failing writer leaves nothing behind.
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"output directory {out} already exists; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, write_file in writers.items():
            write_file(tmp / name)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def write(result: RunResult, out_dir: Path, extra: dict[str, Any] | None = None,
          run: Mapping[str, Any] | None = None) -> Path:
    """Write a results directory atomically; refuses to overwrite an existing one.

    ``run``: the provenance to store as ``run.json`` (default: :func:`provenance` now).
    """
    run = json.dumps(dict(run) if run is not None else provenance(result, extra), indent=2,
                     sort_keys=True, default=repr) + "\n"
    return write_dir(out_dir, {
        "scores.csv": lambda p: result.scores[SCORE_COLUMNS].to_csv(p, index=False),
        "predictions.csv": lambda p: result.predictions.to_csv(p, index=False),
        "coverage.csv": lambda p: result.coverage.to_csv(p, index=False),
        "run.json": lambda p: p.write_text(run),
        **({"timings.csv": lambda p: result.timings.to_csv(p, index=False)}
           if getattr(result, "timings", None) is not None else {}),
    })


@dataclasses.dataclass(frozen=True)
class StoredRun:
    path: Path
    scores: pd.DataFrame
    coverage: pd.DataFrame
    run: dict[str, Any]
    timings: pd.DataFrame | None = None  # timings.csv (None: not recorded)

    @property
    def protocol(self) -> str:
        return self.run["protocol"]["name"]


def read(path: Path) -> StoredRun:
    path = Path(path)
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not a results directory (missing {missing})")
    scores = pd.read_csv(path / "scores.csv")
    if list(scores.columns) != SCORE_COLUMNS:
        raise ValueError(f"{path}/scores.csv has columns {list(scores.columns)}, "
                         f"expected {SCORE_COLUMNS}")
    timings = pd.read_csv(path / "timings.csv") if (path / "timings.csv").is_file() else None
    return StoredRun(path, scores, pd.read_csv(path / "coverage.csv", keep_default_na=False),
                     json.loads((path / "run.json").read_text()), timings)


def find_runs(root: Path) -> list[StoredRun]:
    """Every results directory under ``root`` (sorted by path, i.e. by time within a protocol)."""
    root = Path(root)
    if not root.exists():
        return []
    return [read(p.parent) for p in sorted(root.rglob("run.json"))
            if not p.parent.name.startswith(".")]


def seed_means(scores: pd.DataFrame) -> pd.DataFrame:
    """(method, seed, metric, k) -> mean over targets; NaN if the method misses a target."""
    cols = ["method", "seed", "metric", "k", "value"]
    if scores.empty:
        return pd.DataFrame(columns=cols)
    targets = sorted(scores["target"].unique())
    keys = ["method", "seed", "metric", "k"]
    wide = scores.set_index([*keys, "target"])["value"].unstack("target")
    wide = wide.reindex(columns=targets).sort_index()
    out = wide.mean(axis=1, skipna=False).rename("value").reset_index()
    return out[cols]
