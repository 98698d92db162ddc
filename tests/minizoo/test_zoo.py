"""The miniature zoo: registry consistency, checkpoints as ordinary open_clip checkpoints."""

from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.core.protocol import get_protocol
from benchmark.data.catalog import _registry_path, entry
from benchmark.data.zoo import MINIZOO_12
from benchmark.minizoo import world
from benchmark.minizoo.datasets import metadata_files
from benchmark.minizoo.zoo import MODELS, Mixture, ZooModel, zoo_ids


def test_protocol_zoo_and_targets_are_the_minizoo_ones():
    p = get_protocol("minizoo")
    assert p.zoo == MINIZOO_12 == zoo_ids(0)
    assert len(MODELS) >= 12 and len(p.zoo) == len(set(p.zoo))
    assert p.datasets == world.TARGETS and p.side_dataset == world.SIDE
    assert p.gt_sources == ("packs",)
    assert entry(world.SIDE)["side_info_only"] is True
    assert {m.tower.family for m in MODELS} == {"vit", "resnet"}


def test_committed_metadata_is_what_the_world_generates():
    root = _registry_path().parent
    for rel, text in metadata_files().items():
        assert (root / rel).read_text() == text, f"regenerate: python -m benchmark zoo write-metadata ({rel})"


@pytest.fixture
def weights(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VLMBENCH_WEIGHTS", str(tmp_path / "weights"))
    return tmp_path / "weights"


def test_checkpoint_roundtrip_through_the_real_loader_and_determinism(weights):
    torch = pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from benchmark.extract.models import load_model
    from benchmark.minizoo import train

    tiny = ZooModel(MODELS[0].tower, Mixture("unittest", pool=32, steps=2, batch=8))
    man = train.train_one(tiny, 0, progress=False)
    ckpt, _ = train.paths(tiny, 0)
    first = man["sha256"]
    assert train.is_trained(tiny, 0) and man["mixture"]["name"] == "unittest"
    loaded = load_model(tiny.id(0))  # the path published weights take
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert not loaded.random_init
    ckpt.unlink()
    assert train.train_one(tiny, 0, progress=False)["sha256"] == first  # same bytes here
    other = replace(tiny, mixture=replace(tiny.mixture, name="unittest2"))
    assert train.train_one(other, 0, progress=False)["sha256"] != first


def test_missing_local_checkpoint_is_not_a_silent_random_init(weights):
    pytest.importorskip("open_clip")
    from benchmark.extract.models import ModelLoadError, load_model
    from benchmark.minizoo import train

    train.write_configs()
    with pytest.raises(ModelLoadError):
        load_model(MINIZOO_12[0])
    assert Path(weights / "model_configs").is_dir()
