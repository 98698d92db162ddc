"""Command line: the README's commands, one-line errors, atomic and reproducible results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core import results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*argv):
    return main([*argv])


def test_run_writes_tidy_results_with_provenance(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli("run", "--methods", "inb,avgrank,random", "--protocol", "lovm", "--seeds", "3",
                   "--out", str(out), "--no-progress") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted((*results.FILES, results.MARKER, "timings.csv"))
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["method", "protocol", "seed", "target", "metric", "k", "value"]
    assert set(scores["method"]) == {"inb", "avgrank", "random"}
    assert set(scores["seed"]) == {0, 1, 2}
    assert scores["target"].nunique() == 22
    run = json.loads((out / "run.json").read_text())
    assert run["protocol"]["name"] == "lovm" and len(run["protocol"]["zoo"]) == 35
    assert run["methods"]["inb"]["class"] == "methods.inb:ImageNetBaseline"
    assert len(run["methods"]["inb"]["params_hash"]) == 12
    assert run["versions"]["numpy"] and run["git"]["commit"]
    assert run["protocol"]["metrics"]["tau_variant"] == "clean"
    assert "wrote" in capsys.readouterr().out


def test_two_runs_give_byte_identical_scores(tmp_path):
    for name in ("a", "b"):
        run_cli("run", "--methods", "random,avgrank", "--protocol", "swab", "--seeds", "2",
                "--out", str(tmp_path / name), "--no-progress")
    for f in ("scores.csv", "predictions.csv", "coverage.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_existing_results_dir_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    assert run_cli("run", "--methods", "inb", "--out", str(out), "--no-progress") == 2
    assert "already exists" in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--methods", "inbb"], "unknown method 'inbb'; did you mean 'inb'?"),
        (["run", "--methods", "inb", "--protocol", "dcd49"], "unknown protocol 'dcd49'"),
        (["run", "--methods", "inb", "--models", "ViT-B-32:laion2b_e61"],
         "unknown model 'ViT-B-32:laion2b_e61'; did you mean 'ViT-B-32:laion2b_e16'"),
        (["run", "--methods", "nope.mod:Cls"], "cannot import 'nope.mod:Cls'"),
        (["run", "--methods", "inb", "--seeds", "x"], "--seeds 'x'"),
        (["run", "--methods", "inb", "--set", "inb.alpha"], "expected METHOD.PARAM=VALUE"),
        (["run", "--methods", "inb", "--set", "dcd.beta=2"], "not in --methods"),
        (["run", "--methods", "inb", "--set", "inb.beta=2"],
         "unknown parameter 'beta' for method 'inb' (valid: none)"),
    ],
)
def test_bad_input_is_one_line_error(argv, message, capsys, tmp_path):
    assert run_cli(*argv, "--out", str(tmp_path / "o"), "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_missing_mirror_file_is_a_clear_error(tmp_path, capsys, mirror):
    partial = tmp_path / "mirror"
    shutil.copytree(mirror, partial)
    (partial / "YCaigogogo__SWAB/LOVM/eval_table.csv").unlink()
    code = run_cli("run", "--methods", "inb", "--mirror", str(partial), "--offline",
                   "--out", str(tmp_path / "o"), "--no-progress")
    err = capsys.readouterr().err
    assert code == 2 and "YCaigogogo__SWAB/LOVM/eval_table.csv is missing" in err
    assert len(err.strip().splitlines()) == 1


def test_corrupted_mirror_file_is_a_checksum_error(tmp_path, capsys, mirror):
    partial = tmp_path / "mirror"
    shutil.copytree(mirror, partial)
    with open(partial / "orrzohar__LOVM/LOVM/eval_table.csv", "a") as fh:
        fh.write("999,zeroshot_classification,cars,X y,X,y,0.1,0.1,0.1\n")
    code = run_cli("run", "--methods", "inb", "--protocol", "lovm", "--mirror", str(partial),
                   "--offline", "--out", str(tmp_path / "o"), "--no-progress")
    err = capsys.readouterr().err
    assert code == 2 and "checksum mismatch for orrzohar__LOVM/LOVM/eval_table.csv" in err
    assert run_cli("data", "verify", "--mirror", str(partial), "--offline") == 1


def test_data_verify_ok(capsys):
    assert run_cli("data", "verify", "--offline") == 0
    assert "152/152 upstream files present and verified" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["methods", "protocols", "models", "datasets", "features",
                                  "embedders"])
def test_list(what, capsys):
    assert run_cli("list", what) == 0
    out = capsys.readouterr().out
    expected = {"methods": "avgrank", "protocols": "dcd48 (default)",
                "models": "EVA01-g-14:laion400m_s11b_b41k", "datasets": "imagenet1k",
                "features": "conductance", "embedders": "minilm"}[what]
    assert expected in out


def test_check_command(capsys):
    assert run_cli("check", "methods.inb:ImageNetBaseline", "random") == 0
    out = capsys.readouterr().out
    assert out.count("PASS") == 18 and "FAIL" not in out and "SKIP" not in out


def test_set_overrides_reach_the_selector_and_run_json(tmp_path):
    out = tmp_path / "r"
    assert run_cli("run", "--methods", "tests.test_cli:_Scaled", "--protocol", "lovm",
                   "--seeds", "1", "--set", "scaled.factor=-1", "--out", str(out),
                   "--no-progress") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["scaled"]["params"] == {"factor": -1}


from methods.base import Selector  # noqa: E402


class _Scaled(Selector):
    name = "scaled"

    def __init__(self, factor: float = 1.0):
        self.factor = factor

    def score(self, target):
        return target.imagenet.reindex(list(target.candidates)) * self.factor


def test_python_dash_m_entry_point(tmp_path):
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "benchmark", "run", "--methods", "inb",
                           "--protocol", "lovm", "--seeds", "1", "--out", str(tmp_path / "r"),
                           "--no-progress"], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "| inb" in proc.stdout


def test_datasets_option_restricts_the_protocol(tmp_path):
    out = tmp_path / "r"
    assert run_cli("run", "--methods", "avgrank", "--protocol", "lovm", "--datasets",
                   "cars,dtd,mnist", "--seeds", "1", "--out", str(out), "--no-progress") == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["target"]) == {"cars", "dtd", "mnist"}
    run = json.loads((out / "run.json").read_text())
    assert run["protocol"]["datasets"] == ["cars", "dtd", "mnist"]


def test_evaluation_stage_never_imports_torch(tmp_path):
    """The light stage (published data, no missing features) must not pay for torch."""
    code = (
        "import sys\n"
        "from benchmark.cli import main\n"
        f"rc = main(['run', '--methods', 'inb,avgrank,random,modelgpt', '--protocol', 'lovm',"
        f" '--seeds', '2', '--out', {str(tmp_path / 'r')!r}, '--no-progress'])\n"
        "assert rc == 0\n"
        "heavy = [m for m in ('torch', 'open_clip', 'captum', 'sentence_transformers') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
