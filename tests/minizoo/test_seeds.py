"""The seed-spread study (issue 12, item 8): protocols of other world seeds, their own image
roots, and perf/minizoo_seeds.py's aggregation (a pure function, on a hand-made table)."""

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from benchmark.core.protocol import (
    MINIZOO_TARGETS,
    PROTOCOLS,
    get_protocol,
    minizoo_name,
    minizoo_protocol,
    minizoo_seed,
)
from benchmark.data.zoo import MINIZOO_12, minizoo_ids
from benchmark.minizoo.zoo import zoo_ids

REPO = Path(__file__).resolve().parents[2]


def test_seed_protocols_are_the_same_minizoo_on_another_world():
    for n in (1, 2):
        p = get_protocol(f"minizoo-s{n}")
        assert p is PROTOCOLS[f"minizoo-s{n}"] and p.name == minizoo_name(n)
        assert p.zoo == zoo_ids(n) == minizoo_ids(n)
        assert all(m.endswith(f"_s{n}") for m in p.zoo)
        assert f"world seed {n}, for the seed-spread study" in p.description
        assert p.measured_here and p.concepts == "minizoo" and minizoo_seed(p) == n
        base = get_protocol("minizoo")
        for f in ("datasets", "gt_sources", "seeds", "side_dataset", "metrics", "notes"):
            assert getattr(p, f) == getattr(base, f), f
    # any other seed resolves on demand (zoo build --seed 5); seed 0 has one name only
    assert get_protocol("minizoo-s5").zoo == zoo_ids(5)
    with pytest.raises(KeyError):
        get_protocol("minizoo-s0")
    assert minizoo_seed(get_protocol("dcd48")) is None


def test_seed_zero_is_minizoo_exactly_as_before():
    p = get_protocol("minizoo")
    assert p == minizoo_protocol(0)
    assert (p.name, p.zoo, p.datasets, p.gt_sources, p.seeds, p.side_dataset) == (
        "minizoo", MINIZOO_12, MINIZOO_TARGETS, ("packs",), (0, 1, 2), "mz_broad")
    assert p.description == ("SYNTHETIC: 12 tiny open_clip models trained here x 13 tasks of "
                             "a synthetic world (python -m benchmark zoo train minizoo)")
    assert p.measured_here and p.concepts == "minizoo" and minizoo_seed(p) == 0
    assert p.citation == "benchmark/minizoo (issue 12)" and len(p.notes) == 2


def test_seed_protocols_stay_out_of_the_leaderboard():
    from benchmark.data._toml import load_toml

    spec = load_toml(REPO / "leaderboard" / "runs.toml")
    assert "minizoo" in spec["protocol"]
    assert not [n for n in spec["protocol"] if n.startswith("minizoo-s")]


def test_two_world_seeds_write_their_images_to_different_roots(tmp_path, monkeypatch):
    from benchmark.extract import loaders
    from benchmark.minizoo import datasets

    monkeypatch.setenv("VLMBENCH_DATA", str(tmp_path))
    assert datasets.data_root(0) == tmp_path  # seed 0's layout is unchanged
    assert datasets.data_root(1) == tmp_path / "minizoo-s1"
    task = ["mz_colour"]
    assert datasets.write_images(0, tasks=task) == task
    assert datasets.write_images(1, tasks=task) == task
    assert datasets.write_images(0, tasks=task) == [] == datasets.write_images(1, tasks=task)
    stamps = [json.loads((datasets.data_root(n) / "mz_colour" / "minizoo.json").read_text())
              for n in (0, 1)]
    assert [s["world_seed"] for s in stamps] == [0, 1]
    a = loaders.open_dataset("mz_colour", datasets.data_root(0))  # the registry's folder: loader
    b = loaders.open_dataset("mz_colour", datasets.data_root(1))
    assert len(a) == len(b) == datasets.per_class("mz_colour") * 8
    fa = sorted((tmp_path / "mz_colour" / "test").rglob("*.png"))
    fb = sorted((tmp_path / "minizoo-s1" / "mz_colour" / "test").rglob("*.png"))
    assert len(fa) == len(fb) and fa[0].read_bytes() != fb[0].read_bytes()


def test_the_pipeline_passes_the_seed_protocol_and_its_image_root(tmp_path, monkeypatch):
    """The real commands' options parse what the pipeline passes (only their run is faked)."""
    import importlib
    import sys
    import types

    from benchmark.minizoo import datasets, pipeline

    monkeypatch.setenv("VLMBENCH_DATA", str(tmp_path))
    seen = {}
    fakes = {}
    for kind, name in pipeline.MODULES.items():
        real = importlib.import_module(name)
        fakes[kind] = f"_fake_extract_{kind.replace('-', '_')}"
        monkeypatch.setitem(sys.modules, fakes[kind], types.SimpleNamespace(
            add_arguments=real.add_arguments,
            run=lambda args, kind=kind: seen.__setitem__(kind, args) or 0))
    monkeypatch.setattr(pipeline, "MODULES", fakes)
    ids = list(zoo_ids(1)[:2])
    for kind in ("ground-truth", "text-features", "model-labels"):
        assert pipeline.extract(kind, ids, world_seed=1, datasets=["mz_colour"]) == 0
    gt, text, labels = seen["ground-truth"], seen["text-features"], seen["model-labels"]
    assert gt.protocol == text.protocol == labels.protocol == "minizoo-s1"
    assert gt.data_dir == labels.data_dir == str(datasets.data_root(1))
    assert gt.datasets == "mz_colour,mz_broad" and gt.models == ",".join(ids)
    assert not hasattr(text, "data_dir")  # text-features reads no image
    pipeline.extract("ground-truth", list(zoo_ids(0)[:2]), datasets=["mz_colour"])
    assert seen["ground-truth"].protocol == "minizoo" and seen["ground-truth"].data_dir is None


def _script():
    spec = importlib.util.spec_from_file_location("minizoo_seeds", REPO / "perf" /
                                                  "minizoo_seeds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_aggregation_on_a_hand_made_table():
    mod = _script()
    sums = {0: {"a": 3.0, "b": 2.0, "c": 1.0},  # a > b > c
            1: {"a": 1.0, "b": 3.0, "c": 2.0},  # b > c > a
            2: {"a": 3.0, "b": 2.0, "c": 1.0}}  # as seed 0
    rows = [{"zoo_seed": s, "method": m, "NDCG@5": v / 10, "Sum@5": v, "acc@1": 0.5,
             "regret@1": 0.1 * v} for s, d in sums.items() for m, v in d.items()]
    rows.append({"zoo_seed": 1, "method": "d", "NDCG@5": math.nan, "Sum@5": math.nan,
                 "acc@1": math.nan, "regret@1": math.nan})  # a method seed 1 could not run
    agg = mod.aggregate(pd.DataFrame(rows))
    wide = agg["wide"].set_index("method")
    # order by mean Sum@5: b (7/3) = a (7/3) -> by name, then c (4/3), d (none) last
    assert list(agg["wide"]["method"]) == ["a", "b", "c", "d"]
    assert wide.loc["a", "Sum@5 s1"] == 1.0 and wide.loc["a", "Sum@5 mean"] == pytest.approx(7 / 3)
    assert wide.loc["a", "Sum@5 std"] == pytest.approx(math.sqrt(8 / 9))  # ddof=0
    assert wide.loc["c", "regret@1 mean"] == pytest.approx(0.4 / 3)
    assert math.isnan(wide.loc["d", "Sum@5 mean"])
    # pairs (a,b), (a,c) discordant and (b,c) concordant between seeds 0 and 1: (1 - 2) / 3
    tau = {(t.seed_a, t.seed_b): (t.methods, t.tau) for t in agg["tau"].itertuples()}
    assert tau[(0, 1)] == (3, pytest.approx(-1 / 3))
    assert tau[(0, 2)] == (3, pytest.approx(1.0))
    assert tau[(1, 2)] == (3, pytest.approx(-1 / 3))
    assert list(agg["best"]["best"]) == ["a", "b", "a"]
    assert list(agg["best"]["Sum@5"]) == [3.0, 3.0, 3.0]


def test_kendall_tau_b_matches_scipy_with_ties():
    from scipy.stats import kendalltau

    mod = _script()
    x, y = [1, 2, 2, 3, 5, 4], [2, 1, 3, 3, 4, 6]
    assert mod.kendall_tau_b(x, y) == pytest.approx(kendalltau(x, y).statistic)
    assert mod.model_ids(["MZ-RN-1-8:dark", "MZ-ViT-2-32-p8:all_s0"], 2) == [
        "MZ-RN-1-8:dark_s2", "MZ-ViT-2-32-p8:all_s2"]


def test_extract_commands_find_a_seed_world_without_data_dir(tmp_path, monkeypatch):
    """``extract ... --protocol minizoo-sN`` alone reads that world's images, never seed 0's."""
    import argparse

    from benchmark.extract.units import data_dir_of
    from benchmark.minizoo import datasets

    monkeypatch.setenv("VLMBENCH_DATA", str(tmp_path))
    ns = argparse.Namespace
    assert data_dir_of(ns(protocol="minizoo-s1", data_dir=None)) == str(datasets.data_root(1))
    assert data_dir_of(ns(protocol="minizoo-s3", data_dir=None)) == str(datasets.data_root(3))
    assert data_dir_of(ns(protocol="minizoo", data_dir=None)) is None  # the default root
    assert data_dir_of(ns(protocol="dcd48", data_dir=None)) is None
    assert data_dir_of(ns(protocol="minizoo-s1", data_dir="/x")) == "/x"
