"""Upstream data layer: every public file the benchmark reads, by URL and checksum.

A file is named by its mirror path ``<owner>__<repo>/<path in repo>`` (the layout of a local
mirror and of the download cache). Resolution order for a declared file:

1. a local mirror directory: ``--mirror DIR`` or the ``VLMBENCH_MIRROR`` environment variable;
2. the download cache: ``$VLMBENCH_CACHE/upstream`` (default ``~/.cache/vlmbench/upstream``);
3. a download from ``https://raw.githubusercontent.com/<repository>/<commit>/<path>`` into the
   cache (progress bar; written to a temporary name, verified, then renamed).

Every file is checked against its declared sha256 before it is used; a mismatch or a missing
file raises :class:`UpstreamError` with one line naming the file and how to fix it. Nothing in
this module parses file contents: see :mod:`benchmark.data.groundtruth` and
:mod:`benchmark.datasets`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from benchmark.data._toml import load_toml

log = logging.getLogger(__name__)

MIRROR_ENV = "VLMBENCH_MIRROR"
CACHE_ENV = "VLMBENCH_CACHE"
OFFLINE_ENV = "VLMBENCH_OFFLINE"
URL_ENV = "VLMBENCH_UPSTREAM_URL"  # another host serving <repository>/<commit>/<path>
RAW_GITHUB = "https://raw.githubusercontent.com"
_DECLARATIONS = Path(__file__).with_name("upstream.toml")


class UpstreamError(RuntimeError):
    """An upstream file is missing, corrupted or undeclared (message: one line, with the fix)."""


@dataclass(frozen=True)
class UpstreamFile:
    repository: str  # "owner/name"
    commit: str
    path: str  # path inside the repository
    sha256: str
    bytes: int

    @property
    def key(self) -> str:
        """Mirror-relative path, the file's name everywhere in this project."""
        return f"{self.repository.replace('/', '__')}/{self.path}"

    @property
    def url(self) -> str:
        return self.url_at(RAW_GITHUB)

    def url_at(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{self.path}"


@cache
def declared_files() -> dict[str, UpstreamFile]:
    """All declared upstream files, by key."""
    spec = load_toml(_DECLARATIONS)
    commits = {r["name"]: r["commit"] for r in spec["repository"]}
    files = {}
    for entry in spec["file"]:
        f = UpstreamFile(
            repository=entry["repository"],
            commit=commits[entry["repository"]],
            path=entry["path"],
            sha256=entry["sha256"],
            bytes=int(entry["bytes"]),
        )
        files[f.key] = f
    return files


def cache_root() -> Path:
    """Root of every cache this project writes (upstream files, feature packs, embeddings)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vlmbench"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class DataLayer:
    """Resolves declared upstream files to verified local paths.

    ``mirror``: a directory laid out as ``<owner>__<repo>/<path>``; defaults to
    ``$VLMBENCH_MIRROR``. ``cache``: the download cache; defaults to ``cache_root()/upstream``.
    ``online``: whether a missing file may be downloaded (default: unless ``VLMBENCH_OFFLINE``).
    ``base_url``: where downloads come from (default ``$VLMBENCH_UPSTREAM_URL`` or GitHub raw).
    """

    def __init__(
        self,
        mirror: str | Path | bool | None = None,
        cache: str | Path | None = None,
        online: bool | None = None,
        base_url: str | None = None,
    ) -> None:
        self.base_url = base_url or os.environ.get(URL_ENV) or RAW_GITHUB
        if mirror is None:  # False or "" means: no mirror, even if the variable is set
            mirror = os.environ.get(MIRROR_ENV) or None
        self.mirror = Path(mirror).expanduser() if mirror else None
        self.cache = Path(cache).expanduser() if cache else cache_root() / "upstream"
        self.online = (not os.environ.get(OFFLINE_ENV)) if online is None else online
        self._verified: dict[str, Path] = {}
        if self.mirror is not None and not self.mirror.is_dir():
            raise UpstreamError(
                f"mirror directory {self.mirror} does not exist "
                f"(set {MIRROR_ENV} or --mirror to a directory laid out as <owner>__<repo>/<path>)"
            )

    def describe(self) -> dict[str, str | None]:
        return {"mirror": str(self.mirror) if self.mirror else None, "cache": str(self.cache)}

    def declared(self, key: str) -> UpstreamFile:
        try:
            return declared_files()[key]
        except KeyError:
            raise UpstreamError(
                f"{key!r} is not a declared upstream file (declare it in benchmark/data/upstream.toml)"
            ) from None

    def path(self, key: str) -> Path:
        """Local, checksum-verified path of a declared file (inside the conformance check's
        :func:`benchmark.data.perturb.perturbed`, a copy with the target's truth garbled)."""
        from benchmark.data import perturb

        return perturb.serve(key, self._resolve(key))

    def _resolve(self, key: str) -> Path:
        if key in self._verified:
            return self._verified[key]
        f = self.declared(key)
        candidates = []
        if self.mirror is not None:
            candidates.append(self.mirror / key)
        candidates.append(self.cache / key)
        for p in candidates:
            if p.is_file():
                self._check(f, p)
                self._verified[key] = p
                return p
        if not self.online:
            where = " or ".join(str(p) for p in candidates)
            raise UpstreamError(
                f"upstream file {key} is missing (looked in {where}); offline: point "
                f"{MIRROR_ENV}/--mirror at a mirror holding it, or unset {OFFLINE_ENV} to "
                f"download {f.url}"
            )
        p = self._download(f)
        self._verified[key] = p
        return p

    def read_text(self, key: str) -> str:
        return self.path(key).read_text(encoding="utf-8")

    def verify(self, keys: list[str] | None = None) -> list[tuple[str, str]]:
        """Check declared files; returns ``(key, problem)`` pairs, empty when all is well.

        Never downloads: it reports what is present and correct.
        """
        problems = []
        for key in keys if keys is not None else sorted(declared_files()):
            f = self.declared(key)
            locations = ([self.mirror / key] if self.mirror else []) + [self.cache / key]
            found = next((p for p in locations if p.is_file()), None)
            if found is None:
                problems.append((key, "missing"))
                continue
            try:
                self._check(f, found)
            except UpstreamError as err:
                problems.append((key, str(err)))
        return problems

    def pull(self, keys: list[str] | None = None) -> list[Path]:
        """Make every declared file (or ``keys``) available locally."""
        return [self.path(k) for k in (keys if keys is not None else sorted(declared_files()))]

    @staticmethod
    def _check(f: UpstreamFile, p: Path) -> None:
        digest = sha256_of(p)
        if digest != f.sha256:
            raise UpstreamError(
                f"checksum mismatch for {f.key} at {p}: sha256 {digest[:12]}… expected "
                f"{f.sha256[:12]}… (delete the file and re-fetch it from {f.url})"
            )

    def _download(self, f: UpstreamFile) -> Path:
        from tqdm.auto import tqdm

        from benchmark.progress import bars_enabled

        dest = self.cache / f.key
        dest.parent.mkdir(parents=True, exist_ok=True)
        url = f.url_at(self.base_url)
        log.info("downloading %s", url)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=60) as resp,
                tqdm(total=f.bytes, unit="B", unit_scale=True, desc=Path(f.path).name,
                     disable=not bars_enabled()) as bar,
            ):
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            self._check(f, Path(tmp))
            os.replace(tmp, dest)
        except (urllib.error.URLError, OSError) as err:
            raise UpstreamError(
                f"could not download {f.key} from {url} ({err}); offline: set {MIRROR_ENV} "
                f"or --mirror to a local mirror"
            ) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest
