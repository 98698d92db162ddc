"""MLL on minizoo end to end: a reduced zoo (the 2 models and 3 targets of test_end_to_end,
trained briefly) -> ``run --protocol minizoo --methods mll`` extracts its model labels on the
world's concept graph (the pipeline's model-labels stage) and ranks the models."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tests.minizoo.test_end_to_end import DATASETS, MODELS


@pytest.mark.slow
def test_mll_ranks_a_reduced_minizoo_from_its_concept_graph(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    from benchmark.cli import main
    from benchmark.features.model_labels import KIND, NODES
    from benchmark.features.store import FeatureStore
    from benchmark.minizoo import concepts, pipeline, train, zoo

    # the chain, not the zoo's quality: a few steps a model on a small pool
    fast = tuple(replace(m, mixture=replace(m.mixture, steps=20, pool=256)) for m in zoo.MODELS)
    monkeypatch.setattr(zoo, "MODELS", fast)
    monkeypatch.setattr(train, "MODELS", fast)
    monkeypatch.setenv("VLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VLMBENCH_WEIGHTS", raising=False)
    monkeypatch.delenv("VLMBENCH_DATA", raising=False)
    assert "model-labels" in pipeline.MODULES and "model-labels" in pipeline.SETTINGS
    feats, out = tmp_path / "features", tmp_path / "run"
    rc = main(["run", "--protocol", "minizoo", "--methods", "mll,random", "--models", MODELS,
               "--datasets", DATASETS, "--features-dir", str(feats), "--seeds", "1",
               "--no-progress", "--out", str(out)])
    assert rc == 0
    store = FeatureStore(feats)
    for m in MODELS.split(","):
        params = store.manifest(KIND, m)["extractor"]["params"]
        assert params["concepts"] == "minizoo" and not params["random_init"]
        assert sorted(store.datasets(KIND, m)) == sorted([NODES, concepts.SAMPLE])
    preds = pd.read_csv(out / "predictions.csv")
    mll = preds[preds["method"] == "mll"]
    assert set(mll["target"]) == set(DATASETS.split(","))
    assert set(mll["model"]) == set(MODELS.split(",")) and np.isfinite(mll["score"]).all()
    assert mll["score"].between(0, 100).all()  # mean over classes of sum_v p_v z_v,y
    assert "mll" in json.dumps(json.loads((out / "run.json").read_text()))
