"""``--backend ray`` on a local Ray instance (2 CPUs, loopback) with tiny random-init towers:
8 units run by Ray workers that write the records themselves; a worker killed mid-run loses
only its unwritten records, and a re-run finishes exactly those (never a duplicate)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vlmbench[scale]')")
pytest.importorskip("open_clip")

from benchmark.cli import build_parser, main  # noqa: E402
from benchmark.extract import units  # noqa: E402
from benchmark.extract.ground_truth_cmd import GroundTruthJob, make_extractor  # noqa: E402
from benchmark.features.store import FeatureStore  # noqa: E402
from tests.extract.test_ground_truth_cmd import gt_argv, make_images, tiny_config  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.torch, pytest.mark.slow]

KIND = "ground-truth"
MODELS = ["vlmbench-tiny:a", "vlmbench-tiny:b"]
DATASETS = ["pcam", "renderedsst2", "mnist", "stl10"]  # 2 x 4 = 8 units


@pytest.fixture(scope="module")
def local_ray():
    started = units.ray_init(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-inputs")
    images = make_images(root / "img", {"pcam": 2, "renderedsst2": 2, "mnist": 10, "stl10": 10},
                         per_class=3)
    return images, tiny_config(root)


class KillingJob(GroundTruthJob):
    """The ground-truth job, but the first attempt at ``victim`` SIGKILLs its own worker; every
    finished computation is logged (one line per unit)."""

    def __init__(self, args, extractor, store_root, victim, marker, log) -> None:
        super().__init__(args, extractor, store_root)
        self.victim, self.marker, self.log = victim, str(marker), str(log)

    def compute(self, state, unit):
        if unit == self.victim and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        out = super().compute(state, unit)
        with open(self.log, "a") as fh:  # O_APPEND: one whole line per write
            fh.write(f"{unit.model} {unit.dataset}\n")
        return out


def test_ray_runs_8_units_like_the_local_backend(local_ray, inputs, tmp_path, capsys):
    images, config = inputs
    argv = gt_argv(images, tmp_path / "ray", config, MODELS, DATASETS, "--backend", "ray")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "8 of 8 records to extract" in out and "wrote 8 record(s)" in out
    assert main(argv) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(gt_argv(images, tmp_path / "local", config, MODELS, DATASETS)) == 0
    by_ray, local = FeatureStore(tmp_path / "ray"), FeatureStore(tmp_path / "local")
    for m in MODELS:
        assert by_ray.datasets(KIND, m) == sorted(DATASETS)
        for d in DATASETS:
            a, b = by_ray.read(KIND, m, d), local.read(KIND, m, d)
            for name in b.arrays:
                np.testing.assert_array_equal(a[name], b[name])


def test_killed_worker_then_rerun_finishes_only_the_missing_units(local_ray, inputs, tmp_path,
                                                                  capsys):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # KillingJob for workers
    images, config = inputs
    features = tmp_path / "f"
    args = build_parser().parse_args(gt_argv(images, features, config, MODELS, DATASETS))
    victim = units.Unit(KIND, MODELS[1], DATASETS[2])  # third unit of the second model
    log = tmp_path / "computed.log"
    job = KillingJob(args, make_extractor(args), features, victim, tmp_path / "killed", log)
    todo = units.make_units(KIND, MODELS, DATASETS)

    outcomes = units.run_units(todo, job, "ray", progress=False, max_retries=0)
    status = {o.unit: o.status for o in outcomes}
    assert sorted(status) == sorted(todo)
    failed = [o for o in outcomes if o.status == "failed"]
    assert [o.unit for o in failed] == [victim, units.Unit(KIND, MODELS[1], DATASETS[3])]
    assert all("worker died" in o.error for o in failed)  # Ray reported the kill
    store = FeatureStore(features)
    assert store.datasets(KIND, MODELS[0]) == sorted(DATASETS)
    assert store.datasets(KIND, MODELS[1]) == sorted(DATASETS[:2])  # finished ones kept
    first = {(m, d): store.manifest(KIND, m)["records"][d]["sha256"]
             for m in MODELS for d in store.datasets(KIND, m)}

    capsys.readouterr()
    argv = gt_argv(images, features, config, MODELS, DATASETS, "--backend", "ray")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 of 8 records to extract (6 present)" in out and "wrote 2 record(s)" in out
    records = {(m, d) for m in MODELS for d in store.datasets(KIND, m)}
    assert records == {(m, d) for m in MODELS for d in DATASETS}  # exactly the 8
    for m in MODELS:
        manifest = json.loads((store.pack_dir(KIND, m) / "manifest.json").read_text())
        assert len(manifest["records"]) == len(DATASETS)
        files = sorted(p.name for p in store.pack_dir(KIND, m).iterdir())
        assert files == sorted([".lock", ".locks", "manifest.json", *(f"{d}.npz" for d in DATASETS)])
        for d in DATASETS:
            store.read(KIND, m, d)  # checksum valid
    for key, sha in first.items():  # the first run's records were not redone
        assert store.manifest(KIND, key[0])["records"][key[1]]["sha256"] == sha
    computed = log.read_text().splitlines()
    assert len(computed) == len(set(computed)) == 6  # the killed attempt finished nothing
