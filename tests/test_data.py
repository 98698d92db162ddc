"""Data layer: resolution order, checksums, clear errors, download into the cache."""

from __future__ import annotations

import http.server
import shutil
import threading
from functools import partial

import pytest

from benchmark.data.upstream import DataLayer, UpstreamError, declared_files, sha256_of

KEY = "orrzohar__LOVM/LOVM/datasets.txt"


def test_every_declared_file_is_in_the_mirror_with_the_right_checksum(data):
    assert data.verify() == []
    assert len(declared_files()) >= 150


def test_declared_urls_point_at_pinned_commits():
    f = declared_files()[KEY]
    assert f.url == (
        "https://raw.githubusercontent.com/orrzohar/LOVM/"
        "418cdcd282ae028cfd052c63b1ff42ffc729c186/LOVM/datasets.txt"
    )


def test_mirror_is_used_first(mirror):
    assert DataLayer(mirror=mirror, online=False).path(KEY) == mirror / KEY


def _partial_mirror(tmp_path, mirror, keys=(KEY,)):
    for k in keys:
        (tmp_path / k).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mirror / k, tmp_path / k)
    return tmp_path


def test_corrupted_file_is_a_checksum_error_naming_the_file(tmp_path, mirror):
    m = _partial_mirror(tmp_path / "m", mirror)
    (m / KEY).write_text("cars\n")
    layer = DataLayer(mirror=m, cache=tmp_path / "c", online=False)
    with pytest.raises(UpstreamError, match=r"checksum mismatch for orrzohar__LOVM/LOVM/datasets"):
        layer.path(KEY)
    problems = dict(layer.verify([KEY]))
    assert "checksum mismatch" in problems[KEY]


def test_missing_file_offline_is_a_clear_error(tmp_path):
    layer = DataLayer(mirror=tmp_path, cache=tmp_path / "c", online=False)
    with pytest.raises(UpstreamError) as err:
        layer.path(KEY)
    msg = str(err.value)
    assert KEY in msg and "VLMBENCH_MIRROR" in msg and "\n" not in msg
    assert layer.verify([KEY]) == [(KEY, "missing")]


def test_undeclared_file_is_refused(data):
    with pytest.raises(UpstreamError, match="not a declared upstream file"):
        data.path("someone__else/file.csv")


def test_missing_mirror_directory_is_refused(tmp_path):
    with pytest.raises(UpstreamError, match="does not exist"):
        DataLayer(mirror=tmp_path / "nope")


def test_cache_is_used_when_mirror_lacks_the_file(tmp_path, mirror):
    cache = _partial_mirror(tmp_path / "cache", mirror)
    layer = DataLayer(mirror=tmp_path, cache=cache, online=False)
    assert layer.path(KEY) == cache / KEY


@pytest.fixture
def http_mirror(mirror):
    """A local HTTP server laid out as raw.githubusercontent.com (<repo>/<commit>/<path>)."""
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    f = declared_files()[KEY]
    dest = root / f.repository / f.commit / f.path
    dest.parent.mkdir(parents=True)
    shutil.copy(mirror / KEY, dest)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, dest
    server.shutdown()
    shutil.rmtree(root)


def test_download_into_cache_verifies_and_is_atomic(tmp_path, http_mirror):
    base, _, _ = http_mirror
    layer = DataLayer(mirror=False, cache=tmp_path / "c", online=True, base_url=base)
    p = layer.path(KEY)
    assert p == tmp_path / "c" / KEY
    assert sha256_of(p) == declared_files()[KEY].sha256
    assert [x.name for x in p.parent.iterdir()] == ["datasets.txt"]  # no temp files left


def test_download_with_wrong_content_leaves_nothing(tmp_path, http_mirror):
    base, _, served = http_mirror
    served.write_text("tampered\n")
    layer = DataLayer(mirror=False, cache=tmp_path / "c", online=True, base_url=base)
    with pytest.raises(UpstreamError, match="checksum mismatch"):
        layer.path(KEY)
    assert not (tmp_path / "c" / KEY).exists()
    assert list((tmp_path / "c" / KEY).parent.iterdir()) == []
