"""Caches of the minizoo never serve another world's pixels or a retrained model's packs."""

import json

from benchmark.minizoo import pipeline, train, world
from benchmark.minizoo.zoo import MODELS


def test_the_world_fingerprint_changes_with_the_renderer(monkeypatch):
    first = world.fingerprint()
    assert world.fingerprint() == first and len(first) == 64
    world.fingerprint.cache_clear()
    monkeypatch.setitem(world._SIZE_PX, "small", world._SIZE_PX["small"] + 2)
    try:
        assert world.fingerprint() != first
    finally:
        world.fingerprint.cache_clear()


def test_the_training_pool_cache_is_keyed_by_the_world(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMBENCH_CACHE", str(tmp_path))
    train.pool(0, 4)
    names = [p.name for p in (tmp_path / "minizoo").iterdir()]
    assert names == [f"pool-s0-n4-{world.fingerprint()[:16]}.npz"]


def test_packs_of_a_retrained_model_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMBENCH_WEIGHTS", str(tmp_path / "w"))
    m = MODELS[0]
    ckpt, man = train.paths(m, 0)
    man.parent.mkdir(parents=True)
    man.write_text(json.dumps({"sha256": "a" * 64}))
    feats = tmp_path / "f"
    from benchmark.features.store import FeatureStore

    pack = FeatureStore(feats).pack_dir("ground-truth", m.id(0))
    pack.mkdir(parents=True)
    # packs present, no record of what they were made from: cannot be trusted
    assert pipeline.drop_stale_packs([m], 0, str(feats)) == [m.id(0)] and not pack.exists()
    pack.mkdir(parents=True)
    assert pipeline.drop_stale_packs([m], 0, str(feats)) == [] and pack.exists()
    man.write_text(json.dumps({"sha256": "b" * 64}))  # retrained
    assert pipeline.drop_stale_packs([m], 0, str(feats)) == [m.id(0)] and not pack.exists()


def test_a_checkpoint_of_another_recipe_is_not_trained(tmp_path, monkeypatch):
    from dataclasses import replace

    from benchmark.minizoo.zoo import Mixture, ZooModel

    monkeypatch.setenv("VLMBENCH_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("VLMBENCH_WEIGHTS", str(tmp_path / "w"))
    tiny = ZooModel(MODELS[0].tower, Mixture("unittest", pool=16, steps=1, batch=4))
    train.train_one(tiny, 0, progress=False)
    assert train.is_trained(tiny, 0)
    longer = replace(tiny, mixture=replace(tiny.mixture, steps=2))  # same id, new recipe
    assert longer.id(0) == tiny.id(0) and not train.is_trained(longer, 0)
    _, man = train.paths(tiny, 0)
    m = json.loads(man.read_text())
    man.write_text(json.dumps({**m, "world": "0" * 64}))  # trained on another world
    assert not train.is_trained(tiny, 0)
