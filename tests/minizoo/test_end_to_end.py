"""The whole minizoo chain on a reduced zoo, from an empty cache: train -> images ->
ground truth -> features -> `run --protocol minizoo` (every stage through the real code)."""

import json

import pytest

MODELS = "MZ-RN-1-8:dark_s0,MZ-ViT-2-32-p8:all_s0"
DATASETS = "mz_count,mz_colour,mz_background"


@pytest.mark.slow
def test_run_on_a_reduced_minizoo_from_an_empty_cache(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    from dataclasses import replace

    from benchmark.cli import main
    from benchmark.minizoo import train, zoo
    from benchmark.minizoo.properties import ground_truth, spread

    # the chain, not the zoo's quality: 80 steps a model (the leaderboard's CI step builds
    # the real zoo and checks its properties)
    fast = tuple(replace(m, mixture=replace(m.mixture, steps=80)) for m in zoo.MODELS)
    monkeypatch.setattr(zoo, "MODELS", fast)
    monkeypatch.setattr(train, "MODELS", fast)
    monkeypatch.setenv("VLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VLMBENCH_WEIGHTS", raising=False)
    monkeypatch.delenv("VLMBENCH_DATA", raising=False)
    feats = tmp_path / "features"
    out = tmp_path / "run"
    rc = main(["run", "--protocol", "minizoo", "--methods", "dcd,swab,inb,random,zs-maxprob,leep",
               "--models", MODELS, "--datasets", DATASETS, "--features-dir", str(feats),
               "--seeds", "1", "--no-progress", "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "run.json").read_text())
    import pandas as pd

    scores = pd.read_csv(out / "scores.csv")  # MLL's top-3 ensemble, from the packs' logits
    ens = scores[scores["metric"] == "ens"]
    assert set(ens["target"]) == set(DATASETS.split(",")) and ens["value"].between(0, 1).all()
    from benchmark.features.store import FeatureStore

    gt = ground_truth(FeatureStore(feats), MODELS.split(","))
    t = spread(gt)
    assert set(t["target"]) == set(DATASETS.split(","))
    # trained, not random: the background task (the largest pixel mass) is learned first
    assert gt["mz_background"].max() > 0.5
