"""The shared extraction driver (benchmark/extract/units.py): units, shards, plans, groups.

Shards must partition the unit list exactly (SLURM job arrays run them independently), be
contiguous per model (each model loaded once per shard), and not depend on the store (a shard
re-run after completion does nothing). The driver writes records as it goes, skips what is
present, reports one failed unit without stopping the others, and refuses a pack made with
other parameters before any work.
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import pytest

from benchmark.extract import units
from benchmark.extract.units import Job, Unit, execute_group, make_units, plan_units, shard
from benchmark.features.store import Extractor, FeatureStore

MODELS = [f"M{i}:w" for i in range(7)]
DATASETS = [f"d{j}" for j in range(5)]


# -- shards ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_models, n_datasets, n", [(7, 5, 1), (7, 5, 3), (7, 5, 8), (2, 4, 3),
                                                      (3, 1, 5), (1, 21, 4), (48, 21, 48)])
def test_shards_partition_the_units_exactly(n_models, n_datasets, n):
    all_units = make_units("k", [f"M{i}:w" for i in range(n_models)],
                           [f"d{j}" for j in range(n_datasets)])
    shards = [shard(all_units, i, n) for i in range(n)]
    flat = [u for s in shards for u in s]
    assert sorted(flat) == sorted(all_units)  # every unit once: no loss, no overlap
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    ranked = sorted(all_units)
    for s in shards:  # contiguous in (kind, model, dataset) order, input order kept
        if s:
            start = ranked.index(min(s))
            assert sorted(s) == ranked[start:start + len(s)]
            assert s == [u for u in all_units if u in set(s)]
        # a shard spans at most ceil(size / units per model) + 1 models: each loaded once
        assert len({u.model for u in s}) <= -(-len(s) // n_datasets) + 1


def test_shards_depend_on_the_units_not_on_their_order():
    all_units = make_units("k", MODELS, DATASETS)
    shuffled = list(all_units)
    random.Random(0).shuffle(shuffled)
    for i in range(4):
        assert set(shard(all_units, i, 4)) == set(shard(shuffled, i, 4))


@pytest.mark.parametrize("text, expected", [("0/1", (0, 1)), ("3/8", (3, 8)), ("7/8", (7, 8))])
def test_parse_shard(text, expected):
    assert units.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "-1/4", "1", "a/b", "1/0", "2/"])
def test_parse_shard_refuses_bad_specs(text):
    with pytest.raises(ValueError, match="--shard"):
        units.parse_shard(text)


def test_groups_are_per_model_in_input_order_and_split_on_request():
    us = make_units("k", ["A:x", "B:x"], ["d1", "d2", "d3"])
    assert units.group_units(us) == [us[:3], us[3:]]
    assert units.group_units(us, 2) == [us[:2], us[2:3], us[3:5], us[5:]]


# -- a torch-free job --------------------------------------------------------------------------
class CountingJob(Job):
    """Record = the unit's position; ``bad`` datasets fail (a unit error), ``fatal`` ones
    raise an error that stops the group; loads and computes are counted."""

    kind = "toy"
    unit_errors = (ValueError,)

    def __init__(self, store_root, bad=(), fatal=(), seed=0):
        args = argparse.Namespace(no_progress=True, device="cpu", seed=seed)
        super().__init__(args, Extractor("toy", "1", {"seed": seed}), store_root)
        self.bad, self.fatal = set(bad), set(fatal)
        self.loads, self.computed = [], []

    @property
    def device(self):
        return "cpu"

    def load(self, model):
        self.loads.append(model)
        return model

    def compute(self, state, unit):
        self.computed.append(unit)
        if unit.dataset in self.bad:
            raise ValueError(f"{unit.dataset} is broken")
        if unit.dataset in self.fatal:
            raise RuntimeError("the tower exploded")
        return {"v": np.asarray([len(self.computed)])}, {"n_images": 3}


def test_execute_group_writes_skips_and_reports(tmp_path):
    job = CountingJob(tmp_path, bad={"d1"})
    group = make_units("toy", ["A:x"], ["d0", "d1", "d2"])
    out = execute_group(job, group)
    assert [o.status for o in out] == ["written", "failed", "written"]
    assert out[1].error == "d1 is broken" and out[0].n_images == 3
    store = FeatureStore(tmp_path)
    assert store.datasets("toy", "A:x") == ["d0", "d2"]
    job2 = CountingJob(tmp_path)
    out = execute_group(job2, group)  # a retry: what is written is never computed again
    assert [o.status for o in out] == ["present", "written", "present"]
    assert job2.computed == [group[1]] and job2.loads == ["A:x"]
    job3 = CountingJob(tmp_path)
    assert [o.status for o in execute_group(job3, group)] == ["present"] * 3
    assert job3.loads == []  # nothing to do: the model is not even loaded


def test_a_fatal_error_stops_the_group_but_keeps_what_was_written(tmp_path):
    job = CountingJob(tmp_path, fatal={"d1"})
    with pytest.raises(RuntimeError, match="exploded"):
        execute_group(job, make_units("toy", ["A:x"], ["d0", "d1", "d2"]))
    assert FeatureStore(tmp_path).datasets("toy", "A:x") == ["d0"]


def test_plan_skips_present_and_recomputes_corrupted_records(tmp_path):
    store = FeatureStore(tmp_path)
    job = CountingJob(tmp_path)
    execute_group(job, make_units("toy", ["A:x"], ["d0", "d1"]))
    (store.pack_dir("toy", "A:x") / "d1.npz").write_bytes(b"garbage")
    plan = plan_units("toy", ["A:x", "B:x"], ["d0", "d1"], store, job.extractor)
    assert plan.todo == (Unit("toy", "A:x", "d1"), Unit("toy", "B:x", "d0"),
                         Unit("toy", "B:x", "d1"))
    assert plan.present == 1 and len(plan.units) == 4


def test_plan_refuses_other_parameters_before_any_work(tmp_path):
    from benchmark.errors import UsageError

    store = FeatureStore(tmp_path)
    execute_group(CountingJob(tmp_path, seed=0), make_units("toy", ["A:x"], ["d0"]))
    other = CountingJob(tmp_path, seed=1)
    with pytest.raises(UsageError, match=r"was made with other seed: \{'seed': 0\}"):
        plan_units("toy", ["B:x", "A:x"], ["d0", "d1"], store, other.extractor)
    assert other.loads == [] and store.datasets("toy", "B:x") == []


def test_a_shard_is_cut_before_looking_at_the_store(tmp_path):
    store = FeatureStore(tmp_path)
    job = CountingJob(tmp_path)
    before = plan_units("toy", MODELS, DATASETS, store, job.extractor, (1, 3))
    execute_group(job, [u for u in make_units("toy", MODELS, DATASETS) if u.model == "M0:w"])
    after = plan_units("toy", MODELS, DATASETS, store, job.extractor, (1, 3))
    assert after.units == before.units  # progress elsewhere never moves units between shards


def test_local_backend_runs_every_unit_once(tmp_path):
    job = CountingJob(tmp_path, bad={"d3"})
    todo = make_units("toy", MODELS[:3], DATASETS)
    out = units.run_units(todo, job, "local", progress=False)
    assert sorted(o.unit for o in out) == sorted(todo)
    assert sorted(job.computed) == sorted(todo) and job.loads == MODELS[:3]
    assert sum(o.status == "failed" for o in out) == 3


# -- SLURM-style shards through the command line -----------------------------------------------
def test_cli_shards_partition_the_work_and_rerun_does_nothing(tmp_path, capsys):
    from benchmark.cli import main
    from tests.extract.test_ground_truth_cmd import gt_argv, make_images, tiny_config

    pytest.importorskip("open_clip")
    config = tiny_config(tmp_path)
    datasets = ["pcam", "renderedsst2", "mnist", "stl10"]
    images = make_images(tmp_path / "img", {"pcam": 2, "renderedsst2": 2, "mnist": 10,
                                            "stl10": 10}, per_class=3)
    models = ["vlmbench-tiny:a", "vlmbench-tiny:b"]
    features = tmp_path / "sharded"
    store = FeatureStore(features)
    assert main(gt_argv(images, features, config, models, datasets, "--shard", "1/3",
                        "--dry-run")) == 0
    out = capsys.readouterr().out  # sorted units: a/mnist a/pcam | a/renderedsst2 a/stl10 b/mnist
    assert "3 of 3 records (shard 1/3) to extract" in out
    assert "vlmbench-tiny:a: renderedsst2, stl10" in out and "vlmbench-tiny:b: mnist" in out
    assert not features.exists() or not any(features.rglob("*.npz"))
    wrote = []
    for i in range(3):
        capsys.readouterr()
        assert main(gt_argv(images, features, config, models, datasets, "--shard", f"{i}/3")) == 0
        out = capsys.readouterr().out
        wrote.append(int(out.split("wrote ")[1].split()[0]))
    assert wrote == [2, 3, 3]  # 8 units cut into 3 contiguous blocks
    records = {(m, d) for m in models for d in store.datasets("ground-truth", m)}
    assert records == {(m, d) for m in models for d in datasets}
    manifests = [(store.pack_dir("ground-truth", m) / "manifest.json").read_bytes()
                 for m in models]
    for i in range(3):  # a shard re-run after completion: nothing to do, nothing rewritten
        capsys.readouterr()
        assert main(gt_argv(images, features, config, models, datasets, "--shard", f"{i}/3")) == 0
        assert "nothing to do" in capsys.readouterr().out
    assert manifests == [(store.pack_dir("ground-truth", m) / "manifest.json").read_bytes()
                         for m in models]
    # the sharded packs hold what one unsharded run computes (random weights seeded by id)
    assert main(gt_argv(images, tmp_path / "whole", config, models, datasets)) == 0
    whole = FeatureStore(tmp_path / "whole")
    for m in models:
        for d in datasets:
            a, b = whole.read("ground-truth", m, d), store.read("ground-truth", m, d)
            assert set(a.arrays) == set(b.arrays)
            for name in a.arrays:
                np.testing.assert_array_equal(a[name], b[name])
        assert len(json.loads(manifests[models.index(m)])["records"]) == len(datasets)
    assert main(gt_argv(images, features, config, models, datasets, "--shard", "3/3")) == 2
    assert "0 <= I < N" in capsys.readouterr().err
