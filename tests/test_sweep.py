"""Tests of ``benchmark sweep`` and ``benchmark sample-efficiency`` (benchmark/studies/sweep.py,
benchmark/studies/sample_efficiency.py): grid syntax, aggregation against a direct harness run, the
files written (atomically), and the command lines on the mock universe."""

from __future__ import annotations

import json
import math
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.check import mock_universe
from benchmark.core.harness import Harness, MethodRun, resolve_methods
from benchmark.features.kinds import LoadContext, get_kind
from benchmark.features.store import FeatureStore
from benchmark.studies.sample_efficiency import points as se_points
from benchmark.studies.sweep import (
    check_param_names,
    grid_points,
    parse_fixed,
    parse_grid,
    parse_metric,
    parse_values,
    run_points,
    write_dir,
)
from methods.dcd import DCDSelector

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------------- grid syntax


def test_parse_values_ranges_and_lists() -> None:
    assert parse_values("1.5:3.5:5") == [1.5, 2.0, 2.5, 3.0, 3.5]
    assert parse_values("1:100:4") == [1, 34, 67, 100]
    assert all(isinstance(v, int) for v in parse_values("1:100:4"))
    assert parse_values("1:2:3") == [1.0, 1.5, 2.0]  # integer ends, non-integral steps
    assert parse_values("0:1:1") == [0]
    assert parse_values("1,10,100") == [1, 10, 100]
    assert parse_values("0.5, inf") == [0.5, math.inf]
    assert parse_values("sum,max") == ["sum", "max"]
    assert parse_values("null,25") == [None, 25]
    assert parse_values("zscore") == ["zscore"]


@pytest.mark.parametrize("spec", ["1:2", "a:b:3", "1:2:0", "1:2:x", ",", "1:2:3:4"])
def test_parse_values_rejects(spec) -> None:
    with pytest.raises(ValueError):
        parse_values(spec)


def test_parse_grid_and_points() -> None:
    grid = parse_grid(["beta=1:2:2", "gamma=0,10", "normalize=sum"])
    assert grid == {"beta": [1, 2], "gamma": [0, 10], "normalize": ["sum"]}
    assert grid_points(grid) == [  # first axis slowest
        {"beta": 1, "gamma": 0, "normalize": "sum"}, {"beta": 1, "gamma": 10, "normalize": "sum"},
        {"beta": 2, "gamma": 0, "normalize": "sum"}, {"beta": 2, "gamma": 10, "normalize": "sum"},
    ]
    for bad in (["beta"], ["=1,2"], ["beta="], ["beta=1", "beta=2"]):
        with pytest.raises(ValueError):
            parse_grid(bad)
    assert parse_fixed(["gamma=10", "normalize=max"]) == {"gamma": 10, "normalize": "max"}


def test_param_names_and_metric_are_checked() -> None:
    check_param_names("dcd", DCDSelector, ["beta", "n_source_images"])
    with pytest.raises(ValueError, match="did you mean 'beta'"):
        check_param_names("dcd", DCDSelector, ["bta"])
    assert parse_metric("sum@5", (3, 5, 7)) == ("sum", 5)
    for bad in ("ndcg@4", "ndcg", "foo@5"):
        with pytest.raises(ValueError, match="--metric"):
            parse_metric(bad, (3, 5, 7))


def test_sample_efficiency_points() -> None:
    assert se_points([1, 5], None) == [{"n_source_images": 1}, {"n_source_images": 5}]
    assert se_points([1, 5], "same") == [{"n_source_images": 1, "n_target_images": 1},
                                         {"n_source_images": 5, "n_target_images": 5}]
    assert se_points([1, 5], [2, 3])[1:3] == [{"n_source_images": 5, "n_target_images": 2},
                                              {"n_source_images": 1, "n_target_images": 3}]


# -------------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def harness() -> Harness:
    pdata, infos = mock_universe()
    feats = {"conductance": get_kind("conductance").mock(
        list(pdata.protocol.zoo), list(pdata.protocol.datasets), np.random.default_rng(3))}
    return Harness(pdata, infos, LoadContext(None, FeatureStore("/nonexistent")), features=feats)


def test_run_points_matches_direct_runs(harness) -> None:
    points = grid_points({"gamma": [0.0, 50.0], "beta": [1.0]})
    res = run_points(harness, "dcd", points, fixed={"n_source_images": 5}, seeds=(0, 1),
                     progress=False)
    assert list(res.table["point"]) == [0, 1]
    assert res.params == ("gamma", "beta")
    assert res.fixed == {"n_source_images": 5}
    for i, point in enumerate(points):
        run = MethodRun("x", DCDSelector, MappingProxyType({"n_source_images": 5, **point}))
        direct = harness.run([run], seeds=(0, 1), progress=False).scores
        s = direct[(direct.metric == "ndcg") & (direct.k == 5)]
        per_seed = s.groupby("seed")["value"].mean()  # mean over targets, then over seeds
        row = res.table.iloc[i]
        assert row["ndcg@5"] == pytest.approx(per_seed.mean())
        assert row["ndcg@5_std"] == pytest.approx(per_seed.std(ddof=0))
        assert row["seeds"] == 2
        long = res.scores[res.scores.point == i]
        assert (long["gamma"] == point["gamma"]).all()
        np.testing.assert_allclose(long["value"].to_numpy(), direct["value"].to_numpy())
    # gamma = 0 is AvgRank (uniform source weights): the sweep reproduces AvgRank's numbers
    avg = harness.run(resolve_methods(["avgrank"]), seeds=(0,), progress=False).scores
    s = avg[(avg.metric == "ndcg") & (avg.k == 5)]
    assert res.table.iloc[0]["ndcg@5"] == pytest.approx(s["value"].mean())


def test_run_points_rejects_unknown_parameter(harness) -> None:
    with pytest.raises(ValueError, match="no parameter 'gama'"):
        run_points(harness, "dcd", [{"gama": 1}], progress=False)


def test_write_dir_is_atomic(tmp_path) -> None:
    def boom(path):
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_dir(tmp_path / "out", {"a.csv": lambda p: p.write_text("x"), "b.png": boom})
    assert list(tmp_path.iterdir()) == []  # no half-written output, no temporary leftovers
    write_dir(tmp_path / "out", {"a.csv": lambda p: p.write_text("x")})
    with pytest.raises(FileExistsError):
        write_dir(tmp_path / "out", {"a.csv": lambda p: p.write_text("y")})
    assert (tmp_path / "out" / "a.csv").read_text() == "x"


# ----------------------------------------------------------------------- command lines


def _cli(*argv, seeds: str = "1") -> int:
    return main([*argv, "--mock", "--seeds", seeds, "--no-progress"])


def test_sweep_command(tmp_path, capsys) -> None:
    out = tmp_path / "sweep"
    assert _cli("sweep", "dcd", "--param", "beta=1.5:3.5:2", "--param", "gamma=0,10",
                "--set", "n_source_images=10", "--out", str(out), seeds="2") == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".vlmbench", "scores.csv", "sweep.csv", "sweep.json", "sweep.png"]
    table = pd.read_csv(out / "sweep.csv")
    assert table[["beta", "gamma"]].values.tolist() == [[1.5, 0], [1.5, 10], [3.5, 0], [3.5, 10]]
    assert {"ndcg@5", "ndcg@5_std", "tau@5", "sum@5", "recall@5", "ndcg@3"} <= set(table)
    # gamma = 0 ignores beta: same numbers for both betas
    assert table.loc[0, "ndcg@5"] == pytest.approx(table.loc[2, "ndcg@5"])
    assert (out / "sweep.png").read_bytes()[:8] == PNG_MAGIC
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["method"] == "dcd" and meta["grid"] == {"beta": [1.5, 3.5], "gamma": [0, 10]}
    assert meta["fixed_params"] == {"n_source_images": 10} and meta["seeds"] == [0, 1]
    assert "± " in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]  # no temporary directory left
    # an existing output directory is never overwritten
    assert _cli("sweep", "dcd", "--param", "gamma=0", "--out", str(out)) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("params", [["gamma=0,1,10"], ["beta=1,2", "gamma=10", "normalize=sum,max"]])
def test_sweep_plots_one_and_three_parameters(tmp_path, params) -> None:
    args = [a for p in params for a in ("--param", p)]
    assert _cli("sweep", "dcd", *args, "--out", str(tmp_path / "o")) == 0
    assert (tmp_path / "o" / "sweep.png").read_bytes()[:8] == PNG_MAGIC


def test_sweep_command_errors(tmp_path, capsys) -> None:
    assert _cli("sweep", "dcd", "--param", "bta=1,2", "--out", str(tmp_path / "a")) == 2
    assert "did you mean 'beta'" in capsys.readouterr().err
    assert _cli("sweep", "dcd", "--param", "gamma=1,2", "--set", "gamma=3",
                "--out", str(tmp_path / "b")) == 2
    assert "both swept and fixed" in capsys.readouterr().err
    assert _cli("sweep", "dcd", "--param", "gamma=1", "--metric", "ndcg@4",
                "--out", str(tmp_path / "c")) == 2
    assert not any(tmp_path.iterdir())


def test_sample_efficiency_command(tmp_path, capsys) -> None:
    out = tmp_path / "se"
    assert _cli("sample-efficiency", "dcd", "--n-source", "1,100", "--n-target", "2,25",
                "--metric", "sum@5", "--out", str(out)) == 0
    table = pd.read_csv(out / "sample_efficiency.csv")
    assert table[["n_source_images", "n_target_images"]].values.tolist() == [
        [1, 2], [100, 2], [1, 25], [100, 25]]
    assert (out / "sample_efficiency.png").read_bytes()[:8] == PNG_MAGIC
    assert json.loads((out / "sample_efficiency.json").read_text())["metric"] == "sum@5"
    # fewer source images change the draw, so the numbers differ (the mock packs hold 30)
    assert table.loc[0, "sum@5"] != pytest.approx(table.loc[1, "sum@5"])
    out2 = tmp_path / "same"
    assert _cli("sample-efficiency", "dcd-jsd", "--n-source", "3,30", "--n-target", "same",
                "--out", str(out2)) == 0
    t2 = pd.read_csv(out2 / "sample_efficiency.csv")
    assert (t2["n_source_images"] == t2["n_target_images"]).all()
    assert _cli("sample-efficiency", "dcd", "--n-source", "0,5", "--out", str(tmp_path / "x")) == 2
    assert "positive integers" in capsys.readouterr().err
    assert _cli("sample-efficiency", "avgrank", "--n-source", "5",
                "--out", str(tmp_path / "y")) == 2
    assert "no parameter 'n_source_images'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def lovm():
    from benchmark.core.protocol import get_protocol
    from benchmark.data.upstream import DataLayer, UpstreamError

    try:
        get_protocol("lovm").load(DataLayer(online=False))
    except UpstreamError as err:
        pytest.skip(f"upstream files not available offline (set VLMBENCH_MIRROR): {err}")
    return get_protocol("lovm")


def test_sweep_on_random_packs_of_a_real_protocol(tmp_path, capsys, lovm) -> None:
    from benchmark.features.store import Extractor

    models = list(lovm.zoo[:3])
    store = FeatureStore(tmp_path / "features")
    rng = np.random.default_rng(0)
    for m in models:
        blocks = int(rng.integers(3, 8))
        for d in lovm.datasets:
            store.write("conductance", m, d, {"values": rng.gamma(2.0, 1.0, (12, blocks))},
                        Extractor("test", "0", {"random_init": True}))
    args = ["sample-efficiency", "dcd", "--protocol", "lovm", "--models", ",".join(models),
            "--n-source", "5", "--seeds", "1", "--offline", "--no-progress",
            "--features-dir", str(store.root)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "--allow-random-init" in capsys.readouterr().err
    assert main([*args, "--allow-random-init", "--out", str(tmp_path / "b")]) == 0
    scores = pd.read_csv(tmp_path / "b" / "scores.csv")
    assert set(scores["target"]) == set(lovm.datasets)
    assert set(scores["n_source_images"]) == {5}


def test_sweep_without_packs_names_the_extract_commands(tmp_path, capsys, lovm) -> None:
    empty = tmp_path / "features"
    empty.mkdir()
    rc = main(["sweep", "dcd", "--protocol", "lovm", "--param", "gamma=1,10", "--offline",
               "--features-dir", str(empty), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "dcd needs features" in err
    assert "python -m benchmark extract all --protocol lovm --kinds conductance" in err
    assert not (tmp_path / "o").exists()
