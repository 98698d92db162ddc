"""Faults (issue 18, items 2-6): nothing deleted that the code did not write, no half-written
file after a crash or a kill, feature packs and ground truth refused when they cannot be
trusted, bad command lines refused before computing with one line (``error: ...``, exit 2).
Each test fails without the guard it names."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmark
from benchmark.cli import main
from benchmark.core import results
from benchmark.core.harness import SelectorError, validate_scores
from benchmark.data import groundtruth
from benchmark.extract.units import Job, execute_group, make_units
from benchmark.features.store import (
    Extractor,
    FeaturePackError,
    FeatureStore,
    atomic_write_bytes,
)
from benchmark.report import leaderboard as lb

ROOT = Path(__file__).resolve().parents[2]


def one_line_error(capsys, argv, *needles) -> str:
    """Run the CLI: exit 2, stderr exactly one line ``error: ...`` holding every needle."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def lovm_run():
    return benchmark.evaluate(["inb"], "lovm", seeds=1)


# -- results ownership ------------------------------------------------------------------------
def _fake_rerun(calls):
    def rerun(spec, out_root, data):  # what lb.rerun writes, without computing
        calls.append(out_root)
        results.write_dir(out_root / "lovm" / "run",
                          {f: (lambda p: p.write_text("x\n")) for f in results.FILES})
    return rerun


def test_rerun_refuses_a_root_holding_foreign_files_before_computing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lb, "rerun", _fake_rerun(calls))
    root = tmp_path / "mine"
    (root / "lovm").mkdir(parents=True)
    (root / "notes.txt").write_text("my thesis")
    (root / "lovm" / "draft.csv").write_text("keep me")
    before = tree(root)
    with pytest.raises(results.ResultsDirError, match="not written by vlmbench"):
        lb.rerun_root({}, root, None)
    assert tree(root) == before and calls == []  # nothing deleted, nothing computed


def test_cli_leaderboard_rerun_on_a_foreign_directory_is_one_line(tmp_path, capsys):
    root = tmp_path / "home"
    root.mkdir()
    (root / "photo.jpg").write_bytes(b"\xff\xd8")
    one_line_error(capsys, ["leaderboard", "--rerun", "--results", str(root), "--offline"],
                   "photo.jpg", "not written by vlmbench")
    assert (root / "photo.jpg").read_bytes() == b"\xff\xd8"


def test_rerun_replaces_only_its_own_root_and_leaves_no_temporaries(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lb, "rerun", _fake_rerun(calls))
    root = tmp_path / "lb"
    lb.rerun_root({}, root, None)
    assert (root / results.MARKER).is_file() and (root / "lovm" / "run" / "run.json").is_file()
    (root / "lovm" / "run" / "run.json").write_text("old\n")
    lb.rerun_root({}, root, None)  # a second rerun replaces the first
    assert (root / "lovm" / "run" / "run.json").read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lb"]  # no .lb.new / .old / .lock
    # a root written before the marker existed (exact layout of older versions) is replaced too
    (root / results.MARKER).unlink()
    (root / "lovm" / "run" / results.MARKER).unlink()
    lb.rerun_root({}, root, None)
    # ... but a results dir with one extra file is not ours any more
    (root / "lovm" / "run" / "mine.txt").write_text("x")
    with pytest.raises(results.ResultsDirError, match="mine.txt|run"):
        lb.rerun_root({}, root, None)


def test_an_interrupted_rerun_leaves_the_old_root_intact(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lb, "rerun", _fake_rerun(calls))
    root = tmp_path / "lb"
    lb.rerun_root({}, root, None)
    before = tree(root)

    def boom(spec, out_root, data):
        _fake_rerun(calls)(spec, out_root, data)
        raise KeyboardInterrupt

    monkeypatch.setattr(lb, "rerun", boom)
    with pytest.raises(KeyboardInterrupt):
        lb.rerun_root({}, root, None)
    assert tree(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lb"]


def test_two_reruns_on_one_root_the_second_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(lb, "rerun", _fake_rerun([]))
    root = tmp_path / "lb"
    with (results.exclusive(tmp_path / ".lb.lock", "results root"),  # a rerun in progress
          pytest.raises(results.ResultsDirError, match="another run")):
        lb.rerun_root({}, root, None)
    assert not root.exists()


def test_stray_run_directories_are_never_rendered(tmp_path, lovm_run):
    other = benchmark.evaluate(["random"], "lovm", seeds=1)
    lovm_run.save(tmp_path / "lovm" / "run")
    other.save(tmp_path / "lovm" / "zzz-stray")  # later by path: used to replace rows
    other.save(tmp_path / "lovm" / "run2" / "nested")
    (tmp_path / "lovm" / ".run.half").mkdir()  # a killed write
    runs = lb.leaderboard_runs(tmp_path, "lovm")
    assert [r.path.name for r in runs] == ["run"]
    assert set(runs[0].scores["method"]) == {"inb"}


# -- results directories: atomic, claimed before computing --------------------------------------
def test_a_failing_writer_leaves_nothing(tmp_path):
    def half(p):
        p.write_text("method,")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        results.write_dir(tmp_path / "r", {"scores.csv": half})
    assert list(tmp_path.iterdir()) == []


def test_a_directory_created_meanwhile_is_never_replaced(tmp_path):
    out = tmp_path / "r"

    def race(p):  # another run finishes first, while this one writes
        out.mkdir()
        (out / "scores.csv").write_text("theirs")
        p.write_text("ours")

    with pytest.raises(FileExistsError, match="created by someone else"):
        results.write_dir(out, {"scores.csv": race})
    assert (out / "scores.csv").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


KILL_WRITE = """
import os, signal, sys
from benchmark.core import results
from benchmark.features import store as st
real = os.rename if sys.argv[1] == "dir" else os.replace
def die(*a):
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "dir":
    os.rename = die
    results.write_dir(sys.argv[2] + "/r", {f: (lambda p: p.write_text("x")) for f in results.FILES})
else:
    os.replace = die
    s = st.FeatureStore(sys.argv[2])
    s.write("toy", "A:x", "d1", {"v": [2]}, st.Extractor("toy", "1", {}))
"""


def _killed(mode: str, where: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILL_WRITE, mode, str(where)], env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()


def test_a_run_killed_before_its_rename_leaves_no_results_dir(tmp_path, lovm_run):
    _killed("dir", tmp_path)
    assert not (tmp_path / "r").exists()
    (left,) = tmp_path.iterdir()  # the hidden temporary: marked ours, never read as a run
    assert left.name.startswith(".r.") and (left / results.MARKER).is_file()
    assert results.find_runs(tmp_path) == []
    lb_root = tmp_path / "root"
    (lb_root / "lovm").mkdir(parents=True)
    os.rename(left, lb_root / "lovm" / left.name)
    assert lb.foreign_entries(lb_root) == []  # a rerun may clean it up
    assert lb.leaderboard_runs(lb_root, "lovm") == []


def test_a_pack_write_killed_mid_way_leaves_the_old_record_and_is_cleaned(tmp_path):
    s = FeatureStore(tmp_path)
    s.write("toy", "A:x", "d0", {"v": np.asarray([1])}, Extractor("toy", "1", {}))
    before = tree(tmp_path)
    _killed("pack", tmp_path)
    pack = s.pack_dir("toy", "A:x")
    stale = [p for p in pack.iterdir() if p.name.endswith(".tmp")]
    assert stale  # the killed write's temporary ...
    assert s.datasets("toy", "A:x") == ["d0"] and int(s.read("toy", "A:x", "d0")["v"][0]) == 1
    assert {k: v for k, v in tree(tmp_path).items() if not k.endswith(".tmp")
            and ".lock" not in k} == {k: v for k, v in before.items() if ".lock" not in k}
    s.write("toy", "A:x", "d1", {"v": np.asarray([2])}, Extractor("toy", "1", {}))
    assert not any(p.name.endswith(".tmp") for p in pack.iterdir())  # ... removed by the next


def test_pack_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "f.npz"
    atomic_write_bytes(path, b"old")

    def crash(src, dst):
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.npz"]


def test_cli_run_checks_out_before_computing(tmp_path, capsys, monkeypatch):
    def no_compute(*a, **k):
        raise AssertionError("computed before --out was checked")

    monkeypatch.setattr(benchmark.api, "evaluate", no_compute)
    base = ["run", "--methods", "inb", "--protocol", "lovm", "--no-progress", "--out"]
    (tmp_path / "exists").mkdir()
    one_line_error(capsys, [*base, str(tmp_path / "exists")], "exists", "already exists")
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(capsys, [*base, str(blocker / "sub")], "--out", "writable")
    busy = tmp_path / "busy"
    with results.exclusive(tmp_path / ".busy.lock", f"output directory {busy}"):
        one_line_error(capsys, [*base, str(busy)], str(busy), "another run")


# -- validation before computing ----------------------------------------------------------------
@pytest.mark.parametrize("extra, needles", [
    (["--seeds", "1,1"], ["seed 1", "twice"]),
    (["--seeds", ","], ["no seed"]),
    (["--seeds", "-1"], ["-1"]),
    (["--seeds", "0,-2"], ["-2", "negative"]),
    (["--models", "RN50:openai"], ["RN50:openai", "at least 2 models"]),
    (["--datasets", "imagenet1k"], ["imagenet1k", "side information"]),
    (["--datasets", "nope"], ["nope"]),
    (["--methods", "../x:Y"], ["../x:Y", "package.module:Class"]),
    (["--methods", "/etc/passwd:Y"], ["/etc/passwd:Y"]),
])
def test_bad_run_arguments_are_one_line_before_computing(extra, needles, tmp_path, capsys,
                                                         monkeypatch):
    from benchmark.core import harness

    monkeypatch.setattr(harness.Harness, "run", lambda *a, **k: pytest.fail("computed"))
    argv = ["run", "--methods", "inb", "--protocol", "lovm", "--no-progress",
            "--out", str(tmp_path / "r")]
    if extra[0] == "--methods":
        argv[2] = extra[1]
        extra = []
    one_line_error(capsys, [*argv, *extra], *needles)
    assert not (tmp_path / "r").exists()
    assert list(tmp_path.iterdir()) == []  # no lock, no probe left


def test_compare_on_a_non_results_directory_is_one_line(tmp_path, capsys, lovm_run):
    good = lovm_run.save(tmp_path / "good")
    (tmp_path / "junk").mkdir()
    one_line_error(capsys, ["compare", str(tmp_path / "junk"), str(good)], "junk",
                   "not a results directory")
    one_line_error(capsys, ["compare", str(good), str(tmp_path / "nothing")], "nothing")
    (tmp_path / "bad").mkdir()
    for f in results.FILES:
        (tmp_path / "bad" / f).write_text("\x00garbage{")
    one_line_error(capsys, ["compare", str(good), str(tmp_path / "bad")], "bad")


def test_validate_scores_rejects_non_finite_scores():
    cands = ["a", "b", "c"]
    ok = validate_scores("m", "t", pd.Series([1.0, 2.0, 3.0], index=cands), cands)
    assert ok.tolist() == [1.0, 2.0, 3.0]
    for bad in (np.nan, np.inf, -np.inf, "high"):
        with pytest.raises(SelectorError, match="non-finite"):
            validate_scores("m", "t", pd.Series([1.0, bad, 3.0], index=cands, dtype=object),
                            cands)


# -- feature packs --------------------------------------------------------------------------------
def _pack(tmp_path, datasets=("d0", "d1"), params=None):
    s = FeatureStore(tmp_path)
    for i, d in enumerate(datasets):
        s.write("toy", "A:x", d, {"v": np.asarray([i])}, Extractor("toy", "1", params or {}))
    return s, s.pack_dir("toy", "A:x") / "manifest.json"


def _edit(manifest: Path, fn) -> None:
    m = json.loads(manifest.read_text())
    m = fn(m)
    manifest.write_text(json.dumps(m))


@pytest.mark.parametrize("file", ["../../../escape.npz", "/tmp/abs.npz", "d1.npz",
                                  "sub/d0.npz"])
def test_manifest_file_must_be_the_records_own_file(tmp_path, file):
    s, manifest = _pack(tmp_path / "store")
    (tmp_path / "escape.npz").write_bytes(s.pack_dir("toy", "A:x").joinpath("d1.npz").read_bytes())

    def point(m):
        m["records"]["d0"]["file"] = file
        return m

    _edit(manifest, point)
    with pytest.raises(FeaturePackError, match="a record is read from its own pack only"):
        s.read("toy", "A:x", "d0")


def test_a_record_file_copied_from_another_dataset_is_refused(tmp_path):
    s, manifest = _pack(tmp_path)
    pack = s.pack_dir("toy", "A:x")
    (pack / "d0.npz").write_bytes((pack / "d1.npz").read_bytes())
    _edit(manifest, lambda m: {**m, "records": {**m["records"], "d0": m["records"]["d1"]
                                                 | {"file": "d0.npz"}}})
    with pytest.raises(FeaturePackError, match="not written for this manifest entry"):
        s.read("toy", "A:x", "d0")


def test_random_init_edited_out_of_a_manifest_is_refused(tmp_path):
    s, manifest = _pack(tmp_path, params={"random_init": True})

    def lift(m):
        m["extractor"]["params"]["random_init"] = False
        return m

    _edit(manifest, lift)
    assert not s.extractor("toy", "A:x").params["random_init"]  # the manifest now says real ...
    with pytest.raises(FeaturePackError, match="manifest was edited"):
        s.read("toy", "A:x", "d0")  # ... but its records do not agree


@pytest.mark.parametrize("content, needle", [
    ("[]", "JSON object expected"),
    ("{not json", "malformed manifest"),
    (None, "'extractor' must be an object"),
    ("records-list", "'records' must be an object"),
])
def test_malformed_manifests_are_one_line_naming_the_file(tmp_path, content, needle):
    s, manifest = _pack(tmp_path)
    if content is None:
        _edit(manifest, lambda m: {k: v for k, v in m.items() if k != "extractor"})
    elif content == "records-list":
        _edit(manifest, lambda m: {**m, "records": []})
    else:
        manifest.write_text(content)
    with pytest.raises(FeaturePackError, match=needle) as err:
        s.read("toy", "A:x", "d0")
    assert str(manifest) in str(err.value) and "\n" not in str(err.value)


def test_a_corrupt_npz_with_a_matching_checksum_is_one_line(tmp_path):
    import hashlib

    s, manifest = _pack(tmp_path)
    path = s.pack_dir("toy", "A:x") / "d0.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _edit(manifest, lambda m: m | {"records": m["records"] | {
        "d0": m["records"]["d0"] | {"sha256": digest}}})
    with pytest.raises(FeaturePackError, match="not a valid .npz record") as err:
        s.read("toy", "A:x", "d0")
    assert str(path) in str(err.value)


def test_string_arrays_are_refused_where_numbers_are_expected():
    from benchmark.features.kinds import check_numeric
    from benchmark.features.store import Record

    rec = Record.make("conductance", "A:x", "d0", {"cond": np.asarray(["1.0", "2.0"])})
    with pytest.raises(FeaturePackError, match="'cond' holds <U3 values, expected numbers"):
        check_numeric(rec)


# -- ground truth --------------------------------------------------------------------------------
@pytest.mark.parametrize("acc", [5.0, -3.0, np.nan, np.inf])
def test_ground_truth_packs_outside_0_1_or_nan_are_refused(tmp_path, acc):
    s = FeatureStore(tmp_path)
    ex = Extractor("ground-truth", "1", {"random_init": False})
    s.write("ground-truth", "A:x", "cars", {"acc1": np.asarray(0.5)}, ex)
    s.write("ground-truth", "A:x", "dtd", {"acc1": np.asarray(acc)}, ex)
    with pytest.raises(FeaturePackError, match="top-1 of A:x on dtd .* in \\[0, 1\\]"):
        groundtruth.packs_table(None, ["A:x"], s)


def test_ground_truth_pack_with_a_string_accuracy_is_refused(tmp_path):
    s = FeatureStore(tmp_path)
    s.write("ground-truth", "A:x", "dtd", {"acc1": np.asarray("0.9")},
            Extractor("ground-truth", "1", {}))
    with pytest.raises(FeaturePackError, match="acc1 must be one number"):
        groundtruth.packs_table(None, ["A:x"], s)


def test_upstream_tables_are_checked_too(monkeypatch, data):
    real = groundtruth.SOURCES["lovm"]

    def broken(d):
        t = real(d).copy()
        t.loc[t.index[0], "acc1"] = 97.5  # a percentage where a fraction belongs
        return t

    monkeypatch.setitem(groundtruth.SOURCES, "lovm", broken)
    from benchmark.core.protocol import get_protocol

    with pytest.raises(FeaturePackError, match="ground-truth source 'lovm'.*97.5"):
        get_protocol("lovm").load(data)


# -- extraction ----------------------------------------------------------------------------------
class SlowJob(Job):
    kind = "toy"
    unit_errors = (ValueError,)
    computed: list = []

    def __init__(self, root):
        super().__init__(argparse.Namespace(no_progress=True, device="cpu"),
                         Extractor("toy", "1", {}), root)

    @property
    def device(self):
        return "cpu"

    def load(self, model):
        return model

    def compute(self, state, unit):
        SlowJob.computed.append(unit)
        time.sleep(0.15)
        return {"v": np.asarray([1])}, {}


def test_two_concurrent_extractions_compute_each_record_once(tmp_path):
    SlowJob.computed = []
    group = make_units("toy", ["A:x"], ["d0", "d1", "d2"])
    outs = [None, None]

    def work(i):
        outs[i] = execute_group(SlowJob(tmp_path), group)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(u.dataset for u in SlowJob.computed) == ["d0", "d1", "d2"]
    statuses = sorted(o.status for out in outs for o in out)
    assert statuses == ["present"] * 3 + ["written"] * 3


def test_a_killed_runs_temporary_is_removed_by_the_next_claim_of_that_out(tmp_path):
    _killed("dir", tmp_path)
    (left,) = tmp_path.iterdir()
    neighbour = tmp_path / ".r.mine"  # not a temporary of this code: kept
    neighbour.mkdir()
    with results.reserve(tmp_path / "r"):
        assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.mine"]


def test_sweep_checks_out_before_computing(tmp_path, capsys, monkeypatch):
    from benchmark.cli import sweep

    monkeypatch.setattr(sweep, "build_harness", lambda *a: pytest.fail("computed"))
    (tmp_path / "s").mkdir()
    one_line_error(capsys, ["sweep", "dcd", "--param", "beta=1,2", "--protocol", "lovm",
                            "--out", str(tmp_path / "s")], "already exists")
