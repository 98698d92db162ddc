"""Shared fixtures: the upstream mirror, an isolated cache, offline everything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "upstream"

# Tests never touch the network nor the user's caches.
os.environ.setdefault("VLMBENCH_MIRROR", str(DEFAULT_MIRROR))
os.environ["VLMBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("vlmbench-cache")
    old = {k: os.environ.get(k) for k in ("VLMBENCH_CACHE", "VLMBENCH_FEATURES")}
    os.environ["VLMBENCH_CACHE"] = str(root)
    os.environ["VLMBENCH_FEATURES"] = str(root / "features")
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = Path(os.environ["VLMBENCH_MIRROR"])
    if not path.is_dir():
        pytest.fail(f"upstream mirror {path} missing: set VLMBENCH_MIRROR")
    return path


@pytest.fixture(scope="session")
def data(mirror):
    from benchmark.data.upstream import DataLayer

    return DataLayer(mirror=mirror, online=False)


@pytest.fixture(scope="session")
def catalog(data):
    from benchmark.data.catalog import Catalog

    return Catalog(data)


@pytest.fixture(scope="session")
def protocol_data(data):
    """name -> ProtocolData, loaded once per session."""
    from benchmark.core.protocol import get_protocol

    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = get_protocol(name).load(data)
        return cache[name]

    return get
