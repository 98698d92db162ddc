"""Issue 16: feature packs travel (export / verified import / origin), submitted predictions
(protocol hash, strict validation, identical scores on a round trip), releases, submissions on
the leaderboard."""

from __future__ import annotations

import json
import re
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core import submission
from benchmark.core.protocol import get_protocol
from benchmark.features.store import Extractor, FeaturePackError, FeatureStore
from benchmark.features.transfer import (
    PinnedStore,
    export_packs,
    import_packs,
    origin,
    packs_used,
)

MODELS = ["RN50:openai", "RN101:openai", "ViT-B-32:openai"]
DATASETS = ["cars", "dtd", "eurosat", "mnist"]
EXTRACTOR = Extractor("conductance", "test", {"n_steps": 4, "random_init": False})


def _conductance_store(root) -> FeatureStore:
    store = FeatureStore(root)
    rng = np.random.default_rng(0)
    for m in MODELS:
        for d in DATASETS:
            store.write("conductance", m, d, {"values": rng.gamma(2.0, 1.0, (8, 5))}, EXTRACTOR,
                        meta={"n_images": 8})
    return store


@pytest.fixture
def packs(tmp_path):
    return _conductance_store(tmp_path / "made-elsewhere")


@pytest.mark.parametrize("name", ["packs.tar.gz", "packs.zip", "packs.tar", "packdir"])
def test_export_import_round_trip_keeps_records_and_labels_origin(packs, tmp_path, name):
    dest = export_packs(packs, "conductance", MODELS, tmp_path / name)
    here = FeatureStore(tmp_path / "here")
    done = import_packs(dest, here)
    assert [(i.model, i.status) for i in done] == [(m, "imported") for m in MODELS]
    for m in MODELS:
        assert origin(packs, "conductance", m) == {"origin": "local"}
        o = origin(here, "conductance", m)
        assert o["origin"] == "imported" and o["source"] == str(dest)
        for d in DATASETS:
            np.testing.assert_array_equal(here.read("conductance", m, d)["values"],
                                          packs.read("conductance", m, d)["values"])
    again = import_packs(dest, here)  # idempotent
    assert {i.status for i in again} == {"already present"}
    assert not list(here.root.glob(".import-*"))  # staging removed


def test_archives_are_byte_reproducible(packs, tmp_path):
    a = export_packs(packs, "conductance", MODELS, tmp_path / "a.tar.gz").read_bytes()
    b = export_packs(packs, "conductance", MODELS, tmp_path / "b.tar.gz").read_bytes()
    assert a == b


def _tamper_tar(src, dst, member_suffix, change):
    with tarfile.open(src) as t, tarfile.open(dst, "w:gz") as out:
        for info in t.getmembers():
            data = t.extractfile(info).read()
            if info.name.endswith(member_suffix):
                data = change(data)
                info.size = len(data)
            out.addfile(info, __import__("io").BytesIO(data))


def _flip_byte(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


@pytest.mark.parametrize("member, change, message", [
    ("RN101__openai/dtd.npz", _flip_byte, "checksum mismatch for .*RN101__openai/dtd.npz"),
    ("RN50__openai/manifest.json",
     lambda b: b.replace(b'"random_init": false', b'"random_init": true'),
     "checksum mismatch for .*RN50__openai/manifest.json"),
    ("packs.json", lambda b: b"{not json", "malformed packs.json"),
])
def test_corrupted_export_is_refused_naming_the_file_and_nothing_is_imported(
        packs, tmp_path, member, change, message):
    good = export_packs(packs, "conductance", MODELS, tmp_path / "good.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    _tamper_tar(good, bad, member, change)
    here = FeatureStore(tmp_path / "here")
    with pytest.raises(FeaturePackError, match=message):
        import_packs(bad, here)
    assert [p.name for p in here.root.iterdir()] == []  # nothing half-imported


def test_unsafe_or_unlisted_members_and_conflicts_are_refused(packs, tmp_path, capsys):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(FeaturePackError, match="unsafe member path"):
        import_packs(evil, FeatureStore(tmp_path / "here"))
    # a different pack of the same (kind, model) already in the store
    dest = export_packs(packs, "conductance", MODELS[:1], tmp_path / "one.tar.gz")
    other = FeatureStore(tmp_path / "other")
    other.write("conductance", MODELS[0], "cars", {"values": np.ones((2, 2))}, EXTRACTOR)
    with pytest.raises(FeaturePackError, match="differs from the one in"):
        import_packs(dest, other)
    # the CLI prints one line
    assert main(["features", "import", str(tmp_path / "missing.tar.gz"),
                 "--features-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing.tar.gz does not exist" in err and "\n" not in err


def test_imported_conductance_packs_run_dcd_and_are_recorded(packs, tmp_path, data, capsys):
    archive = tmp_path / "cond.tar.gz"
    assert main(["features", "export", "conductance", "--models", ",".join(MODELS),
                 str(archive), "--features-dir", str(packs.root)]) == 0
    here = tmp_path / "here"
    assert main(["features", "import", str(archive), "--features-dir", str(here)]) == 0
    out = tmp_path / "run"
    assert main(["run", "--methods", "dcd,inb", "--protocol", "lovm", "--models",
                 ",".join(MODELS), "--datasets", ",".join(DATASETS), "--seeds", "1",
                 "--features-dir", str(here), "--out", str(out), "--no-progress"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["method"]) == {"dcd", "inb"}
    used = json.loads((out / "run.json").read_text())["feature_packs"]["conductance"]
    assert {m: u["origin"] for m, u in used.items()} == {m: "imported" for m in MODELS}
    # the leaderboard's store hides them unless pinned by manifest checksum
    assert PinnedStore(here).datasets("conductance", MODELS[0]) == []
    pins = [used[MODELS[0]]["manifest_sha256"]]
    assert PinnedStore(here, pins).datasets("conductance", MODELS[0]) == DATASETS
    assert packs_used(FeatureStore(here), ["conductance"], MODELS)[
        "conductance"][MODELS[1]]["origin"] == "imported"


# -- submissions ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lovm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sub") / "run"
    assert main(["run", "--methods", "inb,random", "--protocol", "lovm", "--seeds", "3",
                 "--out", str(out), "--no-progress"]) == 0
    return out


def _submit(dirpath, preds: pd.DataFrame, protocol="lovm", **meta):
    from benchmark.data.upstream import DataLayer

    dirpath.mkdir(parents=True, exist_ok=True)
    preds.to_csv(dirpath / "predictions.csv", index=False)
    pdata = get_protocol(protocol).load(DataLayer(online=False))
    text = submission.template(pdata, "random-resubmitted", "https://example.org/paper")
    for k, v in meta.items():
        text = "\n".join(f'{k} = "{v}"' if line.startswith(f"{k} =") else line
                         for line in text.splitlines()) + "\n"
    (dirpath / "submission.toml").write_text(text)
    return dirpath / "predictions.csv"


def test_round_trip_gives_identical_scores(lovm_run, tmp_path, capsys):
    preds = lovm_run / "predictions.csv"
    assert main(["score", str(preds), "--protocol", "lovm", "--select", "random", "--init",
                 "random-resubmitted", "--link", "https://example.org/code"]) == 0
    out = tmp_path / "scored"
    assert main(["score", str(preds), "--protocol", "lovm", "--select", "random",
                 "--out", str(out)]) == 0
    local = pd.read_csv(lovm_run / "scores.csv")
    local = local[local.method == "random"].drop(columns="method").reset_index(drop=True)
    sub = pd.read_csv(out / "scores.csv")
    assert set(sub["method"]) == {"random-resubmitted (submitted)"}
    pd.testing.assert_frame_equal(sub.drop(columns="method"), local)
    run = json.loads((out / "run.json").read_text())
    assert run["submitted"]["link"] == "https://example.org/code"
    assert run["protocol"]["hash"] == run["submitted"]["protocol_hash"]
    assert sorted(run) == sorted(["protocol", "seeds", "methods", "skipped", "submitted", "git",
                                  "versions", "date"])
    (lovm_run / "submission.toml").unlink()


def _preds(lovm_run):
    p = pd.read_csv(lovm_run / "predictions.csv")
    return p[p.method == "random"].drop(columns="method").reset_index(drop=True)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.assign(model=p["model"].where(p.index != 0, "NotAModel:x")),
     "unknown model 'NotAModel:x'"),
    (lambda p: p.assign(target=p["target"].where(p.index != 0, "imagenet_sketch")),
     "unknown target 'imagenet_sketch'"),
    (lambda p: p.drop(index=3), "candidate\\(s\\) not scored"),
    (lambda p: p[p.target != "dtd"], "no predictions on target\\(s\\) dtd"),
    (lambda p: p.assign(score=p["score"].where(p.index != 5, np.nan)), "non-finite score"),
    (lambda p: pd.concat([p, p.iloc[[7]]]), "duplicated row"),
    (lambda p: p.assign(seed=p["seed"].astype(float).where(p.index != 0, 0.5)),
     "seed 0.5 is not an integer"),
    (lambda p: p.rename(columns={"score": "value"}), "columns must be"),
])
def test_bad_predictions_are_one_line_errors(lovm_run, tmp_path, capsys, edit, message):
    path = _submit(tmp_path / "s", edit(_preds(lovm_run)))
    assert main(["score", str(path), "--protocol", "lovm", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("meta, message", [
    ({"protocol_hash": "0" * 64}, "protocol hash 000000000000 does not match lovm's"),
    ({"method": "inb"}, "is a computed method of this benchmark"),
    ({"link": "not a url"}, "must be an http"),
    ({"protocol": "swab"}, "made for protocol 'swab'"),
])
def test_bad_submission_metadata_is_refused(lovm_run, tmp_path, capsys, meta, message):
    path = _submit(tmp_path / "s", _preds(lovm_run), **meta)
    assert main(["score", str(path), "--protocol", "lovm", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_protocol_hash_changes_with_ground_truth_zoo_and_metrics(data):
    from benchmark.core.metrics import MetricConfig
    from benchmark.core.protocol import ProtocolData
    from benchmark.data.groundtruth import GroundTruth

    pdata = get_protocol("lovm").load(data)
    h = submission.protocol_hash(pdata)
    assert h == submission.protocol_hash(get_protocol("lovm").load(data))  # stable
    t = pdata.ground_truth.table.copy()
    t.loc[0, "acc1"] += 1e-6
    assert submission.protocol_hash(ProtocolData(pdata.protocol, GroundTruth(t))) != h
    p2 = pdata.protocol.with_options(metrics=MetricConfig(tau_variant="lovm"))
    assert submission.protocol_hash(ProtocolData(p2, pdata.ground_truth)) != h
    assert submission.protocol_hash(get_protocol("lovm").restrict_zoo(
        list(pdata.protocol.zoo[:-1])).load(data)) != h


def test_release_freezes_the_protocol_and_scores_against_it(lovm_run, tmp_path, data, capsys):
    from benchmark.core.release import load_release_protocol, make_release

    pdata = get_protocol("lovm").load(data)
    root = tmp_path / "releases"
    make_release("v1", [pdata], ["ab" * 32], root)
    frozen = load_release_protocol("v1", "lovm", root)
    assert submission.protocol_hash(frozen) == submission.protocol_hash(pdata)
    assert json.loads((root / "v1" / "release.json").read_text())["pinned_packs"] == ["ab" * 32]
    path = _submit(tmp_path / "s", _preds(lovm_run))
    res, _ = submission.score_submission(path, frozen)
    assert len(res.scores) > 0
    gt = root / "v1" / "lovm-ground-truth.csv"
    gt.write_text(gt.read_text().replace("0.", "0.9", 1))
    with pytest.raises(Exception, match="was edited"):
        load_release_protocol("v1", "lovm", root)


def test_leaderboard_scores_accepted_submissions_with_tests_and_provenance(
        lovm_run, tmp_path, data):
    from benchmark.core import results
    from benchmark.report import leaderboard as lb

    subs = tmp_path / "submissions"
    _submit(subs / "lovm" / "random-resubmitted", _preds(lovm_run))
    root = tmp_path / "results"
    written = lb.score_submissions("lovm", root, data, subs)
    assert [p.name for p in written] == ["submitted-random-resubmitted"]
    # the local run next to it, as rerun would have it
    import shutil

    shutil.copytree(lovm_run, root / "lovm" / "run")
    runs = results.find_runs(root / "lovm")
    text, _ = lb.render_protocol(runs, "lovm")
    row = next(ln for ln in text.splitlines() if ln.startswith("| random-resubmitted (submitted)"))
    local = next(ln for ln in text.splitlines() if ln.startswith("| random "))
    assert row.split("|")[2:8] == local.split("|")[2:8]  # same means, marks and CI
    assert "## Submitted predictions" in text and "https://example.org/paper" in text


def test_accept_copies_the_submission_for_the_leaderboard(lovm_run, tmp_path, monkeypatch,
                                                          capsys):
    from benchmark.report import leaderboard as lb

    monkeypatch.setattr(lb, "SUBMISSIONS_DIR", tmp_path / "submissions")
    path = _submit(tmp_path / "s", _preds(lovm_run))
    argv = ["score", str(path), "--protocol", "lovm", "--accept"]
    assert main([*argv, "--out", str(tmp_path / "o1")]) == 0
    dest = tmp_path / "submissions" / "lovm" / "random-resubmitted"
    assert sorted(p.name for p in dest.iterdir()) == ["predictions.csv", "submission.toml"]
    assert main([*argv, "--out", str(tmp_path / "o2")]) == 2  # accepted once only
    assert "was accepted already" in capsys.readouterr().err


def test_library_score_matches_the_cli(lovm_run, tmp_path):
    import benchmark

    path = _submit(tmp_path / "s", _preds(lovm_run))
    res = benchmark.score(path, "lovm")
    assert res.methods == ["random-resubmitted (submitted)"]
    assert res.provenance["submitted"]["protocol"] == "lovm"
    out = res.save(tmp_path / "saved")
    assert (out / "run.json").is_file()


def test_import_from_a_url(packs, tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    export_packs(packs, "conductance", MODELS[:2], tmp_path / "www" / "cond.tar.gz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cond.tar.gz"
    try:
        with pytest.raises(FeaturePackError, match="offline"):
            import_packs(url, FeatureStore(tmp_path / "a"))
        monkeypatch.delenv("VLMBENCH_OFFLINE")
        done = import_packs(url, FeatureStore(tmp_path / "a"))
        assert [i.status for i in done] == ["imported", "imported"]
        assert origin(FeatureStore(tmp_path / "a"), "conductance", MODELS[0])["source"] == url
    finally:
        server.shutdown()
