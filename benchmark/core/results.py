"""Results on disk: a tidy long table plus the provenance of the run that made it.

A results directory holds

- ``scores.csv``: exactly the columns ``method, protocol, seed, target, metric, k, value``
  (metric in ``ndcg, tau, recall, sum`` at the ranking k and ``acc, regret, nregret, hit,
  regret_tol, hit_tol, se`` at the outcome k, and ``ens`` at k = 3 where the ground-truth packs
  hold per-image predictions; one row per method, seed, target, metric and k);
- ``predictions.csv``: ``method, seed, target, model, score`` (what each selector returned);
- ``coverage.csv``: per method and target, how many of the protocol's candidates it scored;
- ``timings.csv``: ``method, seed, target, seconds`` -- wall time of each fold (fit + score;
  one seed for deterministic methods); optional when reading (older runs lack it);
- ``run.json``: the resolved configuration (protocol, metric variants, seeds, methods with
  their parameters and parameter hash), package versions, git commit, date, data sources.

The directory is written under a temporary name and renamed into place: a crash never leaves
a half-written results directory. Every directory this code creates holds the marker file
:data:`MARKER`; code that deletes or replaces results (``leaderboard --rerun``) touches only
marked directories (or the exact layout older versions wrote) and refuses anything else.
:func:`reserve` claims an output directory before any computation: it refuses an existing one,
an unwritable parent, and a second run on the same directory (an exclusive lock held until the
results are written).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.harness import SCORE_COLUMNS, RunResult
from benchmark.errors import UsageError

FILES = ("scores.csv", "predictions.csv", "coverage.csv", "run.json")
OPTIONAL_FILES = ("timings.csv",)  # written when recorded; older runs lack them
MARKER = ".vlmbench"  # in every directory this code creates: "ours, may be replaced"


class ResultsDirError(UsageError):
    """A path that is not a (readable) results directory, or an output that cannot be used."""


def is_ours(path: Path, allowed: tuple[str, ...] = (*FILES, *OPTIONAL_FILES),
            legacy: tuple[str, ...] | None = None) -> bool:
    """``path`` is a directory this code created and holds nothing else: only files named in
    ``allowed`` (plus :data:`MARKER`), and the marker -- or, for results written before the
    marker existed, every file of ``legacy`` (default :data:`FILES`)."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    names = set()
    for e in path.iterdir():
        if not e.is_file() or e.is_symlink() or e.name not in (*allowed, MARKER):
            return False
        names.add(e.name)
    return MARKER in names or set(legacy if legacy is not None else FILES) <= names


@contextmanager
def exclusive(lock_path: Path, what: str):
    """A non-blocking exclusive lock (``flock`` on ``lock_path``), removed on exit: a second
    holder is refused at once with a one-line :class:`ResultsDirError` naming ``what``."""
    import fcntl

    lock_path = Path(lock_path)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsDirError(f"{what} is being written by another run (lock {lock_path}); "
                                  "wait for it or choose another directory") from None
        try:  # the file we locked may have been removed by its previous holder meanwhile
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            raise ResultsDirError(f"{what} was just written by another run; choose another "
                                  "directory")
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def check_out(out: Path) -> Path:
    """Refuse (one line) an output directory that exists or whose parent is not writable."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise ResultsDirError(f"output directory {out} already exists; choose another --out "
                              "(results are never overwritten)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.probe."):
            pass
    except OSError as err:
        raise ResultsDirError(f"--out {out}: cannot write in {out.parent} "
                              f"({err.strerror or err}); choose a writable directory") from None
    return out


@contextmanager
def reserve(out: Path):
    """Claim ``out`` for one run, before computing: :func:`check_out`, and no other run may
    hold it. Yields ``out``; the lock is held until the block ends (write the results inside
    it). Temporaries of earlier, killed writes of ``out`` (marked ours) are removed."""
    out = check_out(out)
    with exclusive(out.parent / f".{out.name}.lock", f"output directory {out}"):
        if out.exists():
            raise ResultsDirError(f"output directory {out} already exists; choose another --out")
        stale = re.compile(rf"^\.{re.escape(out.name)}\.[a-z0-9_]{{8}}$")
        for p in out.parent.iterdir():
            if stale.match(p.name) and is_ours(p):
                shutil.rmtree(p)  # a killed write of this very out: ours, no live writer
        yield out


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
    tmp = sibling_temp(out, f".{out.name}.", "--out", "; choose a writable directory")
    try:
        (tmp / MARKER).write_text("written by vlmbench; `leaderboard --rerun` may replace it\n")
        for name, write_file in writers.items():
            write_file(tmp / name)
        try:
            os.rename(tmp, out)  # never onto a non-empty directory (unlike rmtree + move)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                raise FileExistsError(f"output directory {out} was created by someone else "
                                      "while this run computed; choose another --out") from None
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def sibling_temp(path: Path, prefix: str, flag: str, hint: str = "") -> Path:
    """A hidden temporary directory beside ``path`` (so the final ``os.rename`` stays on one
    file system); an unwritable parent is a one-line :class:`ResultsDirError` naming ``flag``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    except OSError as err:
        raise ResultsDirError(f"{flag} {path}: cannot write in {path.parent} "
                              f"({err.strerror or err}){hint}") from None


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
    if not path.is_dir():
        raise ResultsDirError(f"{path} is not a results directory (no such directory); give "
                              "one written by `benchmark run` (scores.csv, run.json, ...)")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise ResultsDirError(f"{path} is not a results directory (missing {', '.join(missing)}); "
                              "give one written by `benchmark run`")
    try:
        scores = pd.read_csv(path / "scores.csv")
        coverage = pd.read_csv(path / "coverage.csv", keep_default_na=False)
        run = json.loads((path / "run.json").read_text())
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ResultsDirError(f"{path} is not a readable results directory ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if list(scores.columns) != SCORE_COLUMNS:
        raise ResultsDirError(f"{path}/scores.csv has columns {list(scores.columns)}, "
                              f"expected {SCORE_COLUMNS}")
    if not isinstance(run, dict) or not isinstance(run.get("protocol"), dict):
        raise ResultsDirError(f"{path}/run.json has no protocol object: not a results directory")
    timings = pd.read_csv(path / "timings.csv") if (path / "timings.csv").is_file() else None
    return StoredRun(path, scores, coverage, run, timings)


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
