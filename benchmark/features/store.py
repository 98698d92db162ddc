"""Feature packs: what the extraction stage computes, as verified numpy records.

Layout (one directory per (kind, model), under ``$VLMBENCH_CACHE/features`` by default)::

    <root>/<kind>/<model slug>/manifest.json
    <root>/<kind>/<model slug>/<dataset>.npz

``manifest.json`` (schema version :data:`SCHEMA_VERSION`) holds the kind, the model id, the
extractor (name, version, parameters -- e.g. ``n_steps``, ``random_init``), the code version,
and one entry per dataset record: file name (always ``<dataset>.npz``, beside the manifest),
sha256 of the file, array shapes, and free-form metadata (e.g. the image ids a conductance
record was computed on). A record exists only when the manifest lists it with a matching
checksum: a file without an entry (a crash between the two writes) is ignored and overwritten,
never trusted. Record files and the manifest are written to a temporary name and renamed
(atomic on POSIX), record first, so extraction is resumable record by record; temporary files
of a killed write are removed by the next write to the pack. Values are plain ``.npz``
(``allow_pickle=False``): no pickle.

What a manifest says is bound to the records it lists: every record file also holds its
identity (:data:`IDENTITY_KEY`: kind, model, dataset and the extractor with its parameters),
covered by the file's checksum. A manifest edited afterwards (``random_init`` flipped to lift
the random-weights refusal, a record pointed at another dataset's file) no longer matches its
records and is refused; so are manifests whose ``file`` is not ``<dataset>.npz`` (absolute
paths, ``../``), malformed manifests and record files that are not valid ``.npz``, each with
one line naming the file.

Pure numpy/json: importing this module never imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from benchmark.data import perturb
from benchmark.data.upstream import cache_root

SCHEMA_VERSION = 2  # 2: records hold their identity (IDENTITY_KEY); schema-1 packs re-extract
FEATURES_ENV = "VLMBENCH_FEATURES"
IDENTITY_KEY = "__record__"  # reserved array name: JSON of kind, model, dataset, extractor
TMP_SUFFIX = ".tmp"
_STALE = re.compile(r"^\..+(\.tmp|\.(npz|json)\.[a-z0-9_]{8})$")  # ours, killed mid-write
LOCKS_DIR = ".locks"


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
    """Write ``payload`` to a temporary sibling (``.<name>.XXXXXXXX.tmp``), fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_write_bytes` left in ``directory``.

    Call it only while holding the directory's :func:`locked` lock: every write to a pack
    happens under that lock, so no temporary file there belongs to a live write.
    """
    removed = []
    if directory.is_dir():
        for p in directory.iterdir():
            if p.is_file() and _STALE.match(p.name):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


@contextmanager
def record_lock(directory: Path, name: str, blocking: bool = True) -> Iterator[bool]:
    """Exclusive lock on one record of a pack (``directory/.locks/<name>.lock``): yields
    whether it was acquired (always True when ``blocking``). Two extractions of one pack use
    it so that a record is computed by one of them only; the lock files stay (removing a lock
    file another process may be waiting on would break the exclusion)."""
    locks = directory / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: single writer assumed
            yield True
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise FeaturePackError(f"malformed manifest {path}: {err}") from None
        if not isinstance(m, dict):
            raise FeaturePackError(f"malformed manifest {path}: a JSON object expected, got "
                                   f"{type(m).__name__}; delete the pack and re-extract it")
        if m.get("schema_version") != SCHEMA_VERSION:
            raise FeaturePackError(
                f"{path} has schema version {m.get('schema_version')!r}, this code reads "
                f"{SCHEMA_VERSION}; re-extract the pack"
            )
        if m.get("kind") != kind or m.get("model") != model:
            raise FeaturePackError(f"{path} describes ({m.get('kind')}, {m.get('model')})")
        _check_manifest(m, path)
        return m

    def datasets(self, kind: str, model: str) -> list[str]:
        m = self.manifest(kind, model)
        return sorted(m["records"]) if m else []

    def record_path(self, kind: str, model: str, dataset: str, entry: Mapping[str, Any]) -> Path:
        """The file of a manifest entry: ``<dataset>.npz`` beside the manifest, nothing else."""
        if entry["file"] != f"{dataset}.npz":
            where = self.pack_dir(kind, model) / "manifest.json"
            raise FeaturePackError(
                f"{where}: the record of {dataset} names file {entry['file']!r}, not "
                f"'{dataset}.npz' (a record is read from its own pack only); re-extract it")
        return self.pack_dir(kind, model) / entry["file"]

    def has(self, kind: str, model: str, dataset: str) -> bool:
        m = self.manifest(kind, model)
        if not m or dataset not in m["records"]:
            return False
        return self.record_path(kind, model, dataset, m["records"][dataset]).is_file()

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
        if IDENTITY_KEY in arrays:
            raise ValueError(f"array name {IDENTITY_KEY!r} is reserved")
        with locked(self.pack_dir(kind, model)):
            remove_stale_temporaries(self.pack_dir(kind, model))
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
        identity = _identity(kind, model, dataset, m["extractor"])
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()},
                 **{IDENTITY_KEY: np.asarray(identity)})
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
        path = self.record_path(kind, model, dataset, entry)
        try:
            payload = path.read_bytes()
        except OSError:
            raise FeaturePackError(f"{path} listed in its manifest but unreadable") from None
        if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise FeaturePackError(
                f"checksum mismatch for {path}; delete it and re-run the extract command"
            )
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
            raise FeaturePackError(f"{path} is not a valid .npz record ({type(err).__name__}: "
                                   f"{err}); delete it and re-run the extract command") from None
        stored = arrays.pop(IDENTITY_KEY, None)
        expected = _identity(kind, model, dataset, m["extractor"])
        if stored is None or stored.shape != () or str(stored) != expected:
            raise FeaturePackError(
                f"{path} was not written for this manifest entry ({kind} of {model} on "
                f"{dataset}, extractor {m['extractor']}): the manifest was edited or the file "
                f"copied from elsewhere; delete the pack and re-run the extract command")
        meta = dict(entry.get("meta", {}))
        meta["extractor"] = m["extractor"]
        arrays, meta = perturb.record(kind, model, dataset, arrays, meta)
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


def _identity(kind: str, model: str, dataset: str, extractor: Mapping[str, Any]) -> str:
    """Canonical JSON of what a record file is: stored in it, compared with its manifest."""
    return json.dumps({"kind": kind, "model": model, "dataset": dataset,
                       "extractor": json.loads(json.dumps(extractor))}, sort_keys=True)


def _check_manifest(m: Mapping[str, Any], path: Path) -> None:
    """Refuse (one line) a manifest whose structure is not what :meth:`FeatureStore.write` makes."""

    def bad(what: str) -> FeaturePackError:
        return FeaturePackError(f"malformed manifest {path}: {what}; delete the pack and "
                                f"re-run the extract command")

    e = m.get("extractor")
    if not (isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("version"), str) and isinstance(e.get("params", {}), dict)):
        raise bad(f"'extractor' must be an object with name, version and params, got {e!r}")
    records = m.get("records")
    if not isinstance(records, dict):
        raise bad(f"'records' must be an object, got {type(records).__name__}")
    for dataset, entry in records.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)
                and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("meta", {}), dict)):
            raise bad(f"record {dataset!r} must have a file, a sha256 and a meta object")
