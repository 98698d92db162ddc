"""Feature packs that travel: export to a directory or an archive, import with verification.

An export holds, beside the pack directories (``<kind>/<model slug>/manifest.json`` and
``<dataset>.npz``, exactly as in the store), an index ``packs.json``: the format version, the
exporting vlmbench version, and per pack its kind, model, the sha256 of its manifest and of
every record file, and its origin. Archives (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``) are
byte-reproducible: sorted members, zero mtimes and owners, no dates in the index.

Import (:func:`import_packs`, from a directory, an archive or an ``http(s)://`` URL when online)
unpacks into a staging directory inside the store, then verifies everything before anything
is moved: the index against the manifests, every manifest's structure, every record's checksum
and identity (the checks of :meth:`FeatureStore.read`), and that no listed pack conflicts with a
different pack already in the store. One failure refuses the whole import with one line naming
the file; the staging directory is removed, so nothing half-imported is left.

**Origin.** A pack's checksums are written by whoever made it: they prove the files were not
damaged in transit, not how they were computed. So every imported pack gets ``origin.json``
(``"origin": "imported"``, the source, the archive's sha256, the date); packs without it were
made on this machine (``"local"``). Runs record the origin of every pack they read
(:func:`packs_used`, in ``run.json``), the leaderboard page says when a protocol used imported
packs, and the CI leaderboard reads imported packs only when ``leaderboard/runs.toml`` pins them
by manifest checksum (:class:`PinnedStore`).

Pure numpy/json/stdlib: importing this module never imports torch.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from benchmark.data.groundtruth import PACKS_KIND
from benchmark.data.upstream import OFFLINE_ENV, sha256_of
from benchmark.features.store import FeaturePackError, FeatureStore, model_slug

INDEX = "packs.json"
ORIGIN_FILE = "origin.json"
FORMAT = "vlmbench-feature-packs"
FORMAT_VERSION = 1
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_STAGING = ".import-"


def kinds() -> tuple[str, ...]:
    """The pack kinds that can travel: every feature kind and measured ground truth."""
    from benchmark.features.kinds import KINDS

    return (*KINDS, PACKS_KIND)


def check_kind(kind: str, where: str = "") -> None:
    if kind not in kinds():
        raise FeaturePackError(f"{where}unknown pack kind {kind!r} (valid: {', '.join(kinds())})")


def manifest_sha256(store: FeatureStore, kind: str, model: str) -> str | None:
    path = store.pack_dir(kind, model) / "manifest.json"
    return sha256_of(path) if path.is_file() else None


def origin(store: FeatureStore, kind: str, model: str) -> dict[str, Any]:
    """Where a pack comes from: ``{"origin": "local"}`` or the ``origin.json`` an import wrote."""
    path = store.pack_dir(kind, model) / ORIGIN_FILE
    if not path.is_file():
        return {"origin": "local"}
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FeaturePackError(f"malformed {path}: {err}") from None
    if not isinstance(info, dict) or info.get("origin") != "imported":
        raise FeaturePackError(f"malformed {path}: expected an object with origin 'imported'")
    return info


def _is_archive(path: str | Path) -> bool:
    return str(path).endswith(ARCHIVE_SUFFIXES)


# -- export -------------------------------------------------------------------------------
def export_packs(store: FeatureStore, kind: str, models: Iterable[str], dest: str | Path) -> Path:
    """Write the ``kind`` packs of ``models`` to ``dest`` (a directory, or an archive by its
    suffix). Every record is verified (read) first; a model without a pack is refused."""
    check_kind(kind)
    models = list(models)
    if not models:
        raise FeaturePackError("no models given (--models A,B)")
    entries, files = [], []
    for model in models:
        m = store.manifest(kind, model)
        if not m or not m["records"]:
            raise FeaturePackError(f"no {kind} pack for {model} in {store.root}")
        for dataset in sorted(m["records"]):
            store.read(kind, model, dataset)  # checksums + identity, before anything is written
        rel = PurePosixPath(kind, model_slug(model))
        pack = store.pack_dir(kind, model)
        names = ["manifest.json", *(m["records"][d]["file"] for d in sorted(m["records"]))]
        if (pack / ORIGIN_FILE).is_file():
            names.append(ORIGIN_FILE)  # re-exported imports keep saying where they came from
        files += [(str(rel / n), pack / n) for n in names]
        entries.append({
            "kind": kind, "model": model, "path": str(rel),
            "manifest_sha256": manifest_sha256(store, kind, model),
            "records": {d: m["records"][d]["sha256"] for d in sorted(m["records"])},
            "extractor": m["extractor"], "origin": origin(store, kind, model)["origin"],
        })
    from benchmark import __version__

    index = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                        "vlmbench": __version__, "packs": entries},
                       indent=1, sort_keys=True).encode() + b"\n"
    dest = Path(dest)
    if _is_archive(dest):
        _write_archive(dest, index, files)
    else:
        if dest.exists() and any(dest.iterdir()):
            raise FeaturePackError(f"export directory {dest} is not empty; choose another")
        for rel, src in files:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
        (dest / INDEX).write_bytes(index)
    return dest


def _write_archive(dest: Path, index: bytes, files: list[tuple[str, Path]]) -> None:
    if dest.exists():
        raise FeaturePackError(f"{dest} already exists; choose another file name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    members = [(INDEX, index)] + [(rel, src.read_bytes()) for rel, src in sorted(files)]
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        if str(dest).endswith(".zip"):
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for rel, payload in members:
                    info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    z.writestr(info, payload)
        else:
            import gzip

            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
                for rel, payload in members:
                    info = tarfile.TarInfo(rel)
                    info.size, info.mtime, info.mode = len(payload), 0, 0o644
                    t.addfile(info, io.BytesIO(payload))
            data = raw.getvalue()
            if not str(dest).endswith(".tar"):
                data = gzip.compress(data, mtime=0)
            Path(tmp).write_bytes(data)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -- import -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Imported:
    kind: str
    model: str
    datasets: tuple[str, ...]
    status: str  # "imported" or "already present"


def _safe_member(name: str, where: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise FeaturePackError(f"{where}: unsafe member path {name!r}; refused")
    return p


def _unpack(source: Path, into: Path) -> None:
    where = str(source)
    try:
        if str(source).endswith(".zip"):
            with zipfile.ZipFile(source) as z:
                for info in z.infolist():
                    if info.is_dir():
                        continue
                    rel = _safe_member(info.filename, where)
                    (into / rel).parent.mkdir(parents=True, exist_ok=True)
                    (into / rel).write_bytes(z.read(info))
        else:
            with tarfile.open(source) as t:
                for info in t.getmembers():
                    if info.isdir():
                        continue
                    if not info.isfile():
                        raise FeaturePackError(f"{where}: member {info.name!r} is not a regular "
                                               "file (links are refused)")
                    rel = _safe_member(info.name, where)
                    (into / rel).parent.mkdir(parents=True, exist_ok=True)
                    fh = t.extractfile(info)
                    (into / rel).write_bytes(fh.read() if fh else b"")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise FeaturePackError(f"{where} is not a readable archive ({type(err).__name__}: "
                               f"{err})") from None


def _download(url: str, into: Path) -> Path:
    if os.environ.get(OFFLINE_ENV):
        raise FeaturePackError(f"cannot fetch {url}: offline ({OFFLINE_ENV} is set); download it "
                               "and import the file")
    name = PurePosixPath(url.split("?")[0]).name or "packs.tar.gz"
    path = into / name
    try:
        with urllib.request.urlopen(url, timeout=120) as resp, open(path, "wb") as fh:
            shutil.copyfileobj(resp, fh)
    except (urllib.error.URLError, OSError) as err:
        raise FeaturePackError(f"cannot fetch {url}: {err}") from None
    return path


def _read_index(root: Path, where: str) -> list[dict]:
    path = root / INDEX
    if not path.is_file():
        raise FeaturePackError(f"{where} has no {INDEX}: not a feature-pack export "
                               "(python -m benchmark features export makes one)")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FeaturePackError(f"malformed {INDEX} in {where}: {err}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise FeaturePackError(f"{INDEX} in {where} is not a {FORMAT} index")
    if index.get("format_version") != FORMAT_VERSION:
        raise FeaturePackError(f"{INDEX} in {where} has format version "
                               f"{index.get('format_version')!r}; this code reads {FORMAT_VERSION}")
    packs = index.get("packs")
    if not isinstance(packs, list) or not packs:
        raise FeaturePackError(f"{INDEX} in {where} lists no packs")
    for p in packs:
        if not (isinstance(p, dict) and all(isinstance(p.get(k), str) for k in
                                            ("kind", "model", "manifest_sha256"))
                and isinstance(p.get("records"), dict)):
            raise FeaturePackError(f"{INDEX} in {where}: malformed pack entry {p!r}")
    return packs


def import_packs(source: str | Path, store: FeatureStore) -> list[Imported]:
    """Verify and import every pack of an export (directory, archive or URL) into ``store``.

    All or nothing: the first problem raises :class:`FeaturePackError` naming the file, and
    the store is left as it was.
    """
    store.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=store.root))
    try:
        text = str(source)
        if text.startswith(("http://", "https://")):
            archive = _download(text, staging)
        else:
            archive = Path(source)
            if not archive.exists():
                raise FeaturePackError(f"{archive} does not exist")
        if archive.is_dir():
            unpacked, archive_sha = archive, None
        else:
            if not _is_archive(archive):
                raise FeaturePackError(f"{archive}: expected a directory or an archive "
                                       f"({', '.join(ARCHIVE_SUFFIXES)})")
            unpacked = staging / "unpacked"
            _unpack(archive, unpacked)
            archive_sha = sha256_of(archive)
        packs = _read_index(unpacked, text)
        plan = []
        try:
            for entry in packs:
                plan.append(_verify_pack(entry, unpacked, staging, store, text))
        except FeaturePackError as err:  # name members inside the export, not the staging copy
            msg = str(err.args[0]).replace(f"{unpacked}{os.sep}", "")
            raise FeaturePackError(msg if msg.startswith(("refused", text)) else
                                   f"{text}: {msg}") from None

        listed = {(e["kind"], model_slug(e["model"])) for e in packs}
        for manifest in sorted(unpacked.glob("*/*/manifest.json")):
            kind, slug = manifest.parent.parent.name, manifest.parent.name
            if (kind, slug) not in listed:
                raise FeaturePackError(f"{manifest} is not listed in {INDEX} of {text}; refused")
        date = datetime.now(timezone.utc).isoformat(timespec="seconds")
        out = []
        for entry, staged, status, datasets in plan:
            if status == "imported":
                prior = {}
                if (staged / ORIGIN_FILE).is_file():
                    prior = json.loads((staged / ORIGIN_FILE).read_text())
                info = {"origin": "imported", "source": text, "archive_sha256": archive_sha,
                        "manifest_sha256": entry["manifest_sha256"], "imported": date}
                if prior:
                    info["previous"] = prior
                (staged / ORIGIN_FILE).write_text(json.dumps(info, indent=1, sort_keys=True))
            out.append(Imported(entry["kind"], entry["model"], datasets, status))
        for (_, staged, status, _), imp in zip(plan, out, strict=True):
            if status == "imported":
                dest = store.pack_dir(imp.kind, imp.model)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.exists():  # an empty leftover (e.g. only a lock file): replaced
                    shutil.rmtree(dest)
                os.replace(staged, dest)
        return out
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify_pack(entry: dict, unpacked: Path, staging: Path, store: FeatureStore, where: str):
    kind, model = entry["kind"], entry["model"]
    check_kind(kind, f"{where}: ")
    src_store = FeatureStore(unpacked)
    src = src_store.pack_dir(kind, model)
    manifest_path = src / "manifest.json"
    if not manifest_path.is_file():
        raise FeaturePackError(f"{where}: {INDEX} lists the {kind} pack of {model} but "
                               f"{kind}/{model_slug(model)}/manifest.json is missing")
    if sha256_of(manifest_path) != entry["manifest_sha256"]:
        raise FeaturePackError(f"checksum mismatch for {manifest_path} (not the manifest "
                               f"{INDEX} lists); refused")
    m = src_store.manifest(kind, model)  # structure, schema version, kind and model
    if {d: r["sha256"] for d, r in m["records"].items()} != entry["records"]:
        raise FeaturePackError(f"{manifest_path}: its records differ from those {INDEX} "
                               "lists; refused")
    for dataset in sorted(m["records"]):
        try:
            src_store.read(kind, model, dataset)  # checksum, .npz validity, identity
        except FeaturePackError as err:
            raise FeaturePackError(f"refused {where}: {err.args[0].split(';')[0]}") from None
    datasets = tuple(sorted(m["records"]))
    have = store.pack_dir(kind, model) / "manifest.json"
    if have.is_file():
        if sha256_of(have) == entry["manifest_sha256"]:
            return entry, None, "already present", datasets
        raise FeaturePackError(
            f"the {kind} pack of {model} in {store.root} differs from the one in {where}; "
            f"import into another --features-dir or delete {store.pack_dir(kind, model)}")
    staged = staging / "packs" / kind / model_slug(model)
    staged.mkdir(parents=True)
    names = ["manifest.json", *(m["records"][d]["file"] for d in datasets)]
    if (src / ORIGIN_FILE).is_file():
        names.append(ORIGIN_FILE)
    for n in names:
        shutil.copyfile(src / n, staged / n)
    return entry, staged, "imported", datasets


# -- which packs a run used; which packs the CI leaderboard may use -----------------------
def packs_used(store: FeatureStore, kinds: Iterable[str], models: Iterable[str]) -> dict:
    """``{kind: {model: {"origin", "manifest_sha256"[, "source"]}}}`` for the packs present."""
    out: dict[str, dict] = {}
    models = list(models)
    for kind in sorted(set(kinds)):
        for model in models:
            try:
                sha = manifest_sha256(store, kind, model)
            except ValueError:  # a model id that cannot have a pack
                continue
            if sha is None:
                continue
            o = origin(store, kind, model)
            info = {"origin": o["origin"], "manifest_sha256": sha}
            if o.get("source"):
                info["source"] = o["source"]
            out.setdefault(kind, {})[model] = info
    return out


def imported_packs(run_meta: dict) -> list[str]:
    """``kind/model`` of every imported pack a run's ``run.json`` says it read."""
    used = run_meta.get("feature_packs") or {}
    return sorted(f"{kind}/{model}" for kind, per in used.items() for model, info in per.items()
                  if info.get("origin") == "imported")


class PinnedStore(FeatureStore):
    """A store that hides imported packs unless their manifest sha256 is in ``pins``.

    The CI leaderboard reads packs through it: only what CI can rebuild, or what
    ``leaderboard/runs.toml`` pins by checksum (``[packs] pinned = ["sha256", ...]``).
    """

    def __init__(self, root=None, pins: Iterable[str] = ()) -> None:
        super().__init__(root)
        self.pins = frozenset(pins)

    def manifest(self, kind: str, model: str):
        m = super().manifest(kind, model)
        if m is None or origin(self, kind, model)["origin"] != "imported":
            return m
        return m if manifest_sha256(self, kind, model) in self.pins else None
