"""Leaderboard releases: protocols, ground truth and pinned packs frozen under a version.

``python -m benchmark release VERSION`` writes ``leaderboard/releases/VERSION/``:

- ``release.json``: the vlmbench version, and per protocol its definition (description, zoo,
  datasets, ground-truth sources, seeds, metric settings, notes) and its protocol hash
  (:func:`benchmark.core.submission.protocol_hash`); the pack checksums ``runs.toml`` pins;
- ``<protocol>-ground-truth.csv``: every ground-truth cell the protocol reads (``model,
  dataset, acc1, source``; the targets and ImageNet-1k).

A submission made against a release is scored against its frozen ground truth
(``score --release VERSION``), so it stays comparable after the live protocol changes. Loading
a release recomputes the hash from the frozen files and refuses a release whose files were
edited.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd

from benchmark.core.metrics import MetricConfig
from benchmark.core.protocol import Protocol, ProtocolData
from benchmark.data.groundtruth import COLUMNS, GroundTruth
from benchmark.errors import UsageError

RELEASES_DIR = Path(__file__).resolve().parents[2] / "leaderboard" / "releases"
_VERSION = re.compile(r"^v?\d+(\.\d+){0,2}([a-z0-9.-]*)$")


def release_dir(version: str, root: Path | None = None) -> Path:
    if not _VERSION.match(version):
        raise UsageError(f"release version {version!r}: expected e.g. v1, v1.0 or 2026.12")
    return (root or RELEASES_DIR) / version


def make_release(version: str, pdatas: list[ProtocolData], pinned: list[str],
                 root: Path | None = None) -> Path:
    from benchmark import __version__
    from benchmark.core.results import write_dir
    from benchmark.core.submission import protocol_hash

    out = release_dir(version, root)
    if out.exists():
        raise UsageError(f"release {version} exists ({out}); a release is never rewritten")
    protocols, writers = {}, {}
    for pd_ in pdatas:
        p = pd_.protocol
        protocols[p.name] = {
            "hash": protocol_hash(pd_), "description": p.description, "zoo": list(p.zoo),
            "datasets": list(p.datasets), "gt_sources": list(p.gt_sources),
            "seeds": list(p.seeds), "metrics": dataclasses.asdict(p.metrics),
            "notes": list(p.notes), "ground_truth": f"{p.name}-ground-truth.csv"}
        table = pd_.ground_truth.table[COLUMNS].sort_values(["model", "dataset"])
        writers[f"{p.name}-ground-truth.csv"] = (
            lambda path, t=table: t.to_csv(path, index=False))
    info = {"version": version, "vlmbench": __version__, "protocols": protocols,
            "pinned_packs": sorted(pinned)}
    text = json.dumps(info, indent=1, sort_keys=True) + "\n"
    writers["release.json"] = lambda path: path.write_text(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_dir(out, writers)


def read_release(version: str, root: Path | None = None) -> dict:
    d = release_dir(version, root)
    path = d / "release.json"
    if not path.is_file():
        have = sorted(p.name for p in d.parent.iterdir()) if d.parent.is_dir() else []
        raise UsageError(f"no release {version!r} ({path} missing; releases: "
                         f"{', '.join(have) or 'none'})")
    return json.loads(path.read_text())


def load_release_protocol(version: str, name: str, root: Path | None = None) -> ProtocolData:
    """The protocol ``name`` as frozen in release ``version`` (hash re-checked)."""
    from benchmark.core.submission import protocol_hash

    info = read_release(version, root)
    if name not in info["protocols"]:
        raise UsageError(f"release {version} has no protocol {name!r} (has "
                         f"{', '.join(sorted(info['protocols']))})")
    p = info["protocols"][name]
    proto = Protocol(name, p["description"], tuple(p["zoo"]), tuple(p["datasets"]),
                     tuple(p["gt_sources"]), tuple(p["seeds"]),
                     MetricConfig(**{**p["metrics"], "ks": tuple(p["metrics"]["ks"])}),
                     tuple(p["notes"]))
    table = pd.read_csv(release_dir(version, root) / p["ground_truth"],
                        dtype={"model": str, "dataset": str, "source": str})
    pdata = ProtocolData(proto, GroundTruth(table))
    if protocol_hash(pdata) != p["hash"]:
        raise UsageError(f"release {version}: {p['ground_truth']} or release.json was edited "
                         f"(protocol hash {protocol_hash(pdata)[:12]}, recorded {p['hash'][:12]})")
    return pdata
