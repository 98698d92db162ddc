"""Feature packs: what the extraction stage computes, as verified numpy records.

Layout (one directory per (kind, model), under ``$VLMBENCH_CACHE/features`` by default)::

    <root>/<kind>/<model slug>/manifest.json
    <root>/<kind>/<model slug>/<dataset>.npz

``manifest.json`` (schema version :data:`SCHEMA_VERSION`) holds the kind, the model id, the
extractor (name, version, parameters -- e.g. ``n_steps``, ``random_init``), the code version,
and one entry per dataset record: file name, sha256 of the file, array shapes, and free-form
metadata (e.g. the image ids a conductance record was computed on). A record exists only when
the manifest lists it with a matching checksum: a file without an entry (a crash between the
two writes) is ignored and overwritten, never trusted. Record files and the manifest are
written to a temporary name and renamed (atomic on POSIX), record first, so extraction is
resumable record by record. Values are plain ``.npz`` (``allow_pickle=False``): no pickle.

Pure numpy/json: importing this module never imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from benchmark.data.upstream import cache_root

SCHEMA_VERSION = 1
FEATURES_ENV = "VLMBENCH_FEATURES"


class FeaturePackError(RuntimeError):
    """A feature pack is missing, malformed, corrupted or inconsistent (one-line message)."""


def features_root() -> Path:
    env = os.environ.get(FEATURES_ENV)
    return Path(env).expanduser() if env else cache_root() / "features"


def model_slug(model: str) -> str:
    """Filesystem-safe, reversible name of a model id (``ARCH:pretrained`` -> ``ARCH__pretrained``)."""
    if "__" in model or "/" in model:
        raise ValueError(f"model id {model!r} may not contain '__' or '/'")
    return model.replace(":", "__")


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on a pack directory: concurrent writers (workers) update one manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: single writer assumed
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Record:
    """Features of one (kind, model, dataset): named arrays plus metadata, read-only."""

    kind: str
    model: str
    dataset: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise FeaturePackError(
                f"{self.kind} record of {self.model} on {self.dataset} has no array {name!r} "
                f"(has {sorted(self.arrays)})"
            ) from None

    @classmethod
    def make(cls, kind: str, model: str, dataset: str, arrays: Mapping[str, Any], meta=None):
        frozen = MappingProxyType({k: _frozen(v) for k, v in arrays.items()})
        return cls(kind, model, dataset, frozen, MappingProxyType(dict(meta or {})))


@dataclass(frozen=True)
class Extractor:
    """Identity of what produced a pack; two packs are interchangeable only if these match."""

    name: str
    version: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": dict(self.params)}


class FeatureStore:
    """Reads and writes feature packs under ``root`` (default :func:`features_root`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else features_root()

    def pack_dir(self, kind: str, model: str) -> Path:
        return self.root / kind / model_slug(model)

    # -- manifest -------------------------------------------------------------------------
    def manifest(self, kind: str, model: str) -> dict[str, Any] | None:
        path = self.pack_dir(kind, model) / "manifest.json"
        if not path.is_file():
            return None
        try:
            m = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise FeaturePackError(f"malformed manifest {path}: {err}") from None
        if m.get("schema_version") != SCHEMA_VERSION:
            raise FeaturePackError(
                f"{path} has schema version {m.get('schema_version')!r}, this code reads "
                f"{SCHEMA_VERSION}; re-extract the pack"
            )
        if m.get("kind") != kind or m.get("model") != model:
            raise FeaturePackError(f"{path} describes ({m.get('kind')}, {m.get('model')})")
        return m

    def datasets(self, kind: str, model: str) -> list[str]:
        m = self.manifest(kind, model)
        return sorted(m["records"]) if m else []

    def has(self, kind: str, model: str, dataset: str) -> bool:
        m = self.manifest(kind, model)
        if not m or dataset not in m["records"]:
            return False
        f = self.pack_dir(kind, model) / m["records"][dataset]["file"]
        return f.is_file()

    def extractor(self, kind: str, model: str) -> Extractor | None:
        m = self.manifest(kind, model)
        if not m:
            return None
        e = m["extractor"]
        return Extractor(e["name"], e["version"], e.get("params", {}))

    # -- write ----------------------------------------------------------------------------
    def write(
        self,
        kind: str,
        model: str,
        dataset: str,
        arrays: Mapping[str, np.ndarray],
        extractor: Extractor,
        meta: Mapping[str, Any] | None = None,
        code_version: str = "",
    ) -> Path:
        """Write one record atomically, then list it in the manifest (atomically)."""
        if not arrays:
            raise ValueError("a record needs at least one array")
        with locked(self.pack_dir(kind, model)):
            return self._write_locked(kind, model, dataset, arrays, extractor, meta, code_version)

    def _write_locked(self, kind, model, dataset, arrays, extractor, meta, code_version) -> Path:
        m = self.manifest(kind, model)
        if m is None:
            m = {
                "schema_version": SCHEMA_VERSION,
                "kind": kind,
                "model": model,
                "extractor": extractor.as_dict(),
                "code_version": code_version,
                "records": {},
            }
        elif m["extractor"] != json.loads(json.dumps(extractor.as_dict())):
            raise FeaturePackError(
                f"{kind} pack of {model} was made by {m['extractor']}, not "
                f"{extractor.as_dict()}; delete {self.pack_dir(kind, model)} or use another "
                f"--features-dir to keep both"
            )
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        payload = buf.getvalue()
        fname = f"{dataset}.npz"
        atomic_write_bytes(self.pack_dir(kind, model) / fname, payload)
        m["records"][dataset] = {
            "file": fname,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "shapes": {k: list(np.shape(v)) for k, v in arrays.items()},
            "meta": dict(meta or {}),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        manifest = json.dumps(m, indent=1, sort_keys=True).encode()
        atomic_write_bytes(self.pack_dir(kind, model) / "manifest.json", manifest)
        return self.pack_dir(kind, model) / fname

    # -- read -----------------------------------------------------------------------------
    def read(self, kind: str, model: str, dataset: str) -> Record:
        m = self.manifest(kind, model)
        if not m or dataset not in m["records"]:
            raise FeaturePackError(f"no {kind} record for {model} on {dataset} in {self.root}")
        entry = m["records"][dataset]
        path = self.pack_dir(kind, model) / entry["file"]
        try:
            payload = path.read_bytes()
        except OSError:
            raise FeaturePackError(f"{path} listed in its manifest but unreadable") from None
        if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise FeaturePackError(
                f"checksum mismatch for {path}; delete it and re-run the extract command"
            )
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = dict(entry.get("meta", {}))
        meta["extractor"] = m["extractor"]
        return Record.make(kind, model, dataset, arrays, meta)

    def missing(
        self, kind: str, models: Iterable[str], datasets: Iterable[str]
    ) -> list[tuple[str, str]]:
        datasets = list(datasets)
        out = []
        for model in models:
            have = set(self.datasets(kind, model))
            out += [(model, d) for d in datasets if d not in have]
        return out
