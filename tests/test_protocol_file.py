"""Custom protocols from TOML files (benchmark/core/protocol.py: load_protocol_file, get_protocol):
validation with one-line errors naming the field, and `run --protocol my.toml` ranking a new
model whose ground truth comes from a ground-truth pack (written here without torch)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.protocol import (
    DEFAULT_SEEDS,
    PROTOCOLS,
    ProtocolFileError,
    get_protocol,
    load_protocol_file,
)
from benchmark.features.store import FeatureStore

PUBLISHED = ["ViT-B-32:laion2b_e16", "RN50:openai", "ViT-B-16:openai"]
NEW = "my-arch:my-weights"
DATASETS = ["pcam", "renderedsst2", "mnist"]
VALID = {
    "name": "mine",
    "description": "three published models and a new one",
    "zoo": [*PUBLISHED, NEW],
    "datasets": DATASETS,
    "gt_sources": ["lovm", "packs"],
    "seeds": 2,
    "notes": ["the new model's ground truth comes from a ground-truth pack"],
}


def toml_text(fields: dict) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def write(tmp_path, fields: dict, name: str = "mine.toml"):
    path = tmp_path / name
    path.write_text(toml_text(fields))
    return path


def test_a_valid_file_is_a_protocol(tmp_path):
    path = write(tmp_path, VALID)
    p = load_protocol_file(path)
    assert p.name == "mine" and p.zoo == (*PUBLISHED, NEW) and p.datasets == tuple(DATASETS)
    assert p.gt_sources == ("lovm", "packs") and p.seeds == (0, 1)
    assert p.notes[0] == VALID["notes"][0] and str(path) in p.notes[-1]
    assert get_protocol(str(path)) == p
    assert [f.target for f in p.folds()] == DATASETS
    minimal = {k: VALID[k] for k in ("name", "zoo", "datasets", "gt_sources")}
    q = load_protocol_file(write(tmp_path, {**minimal, "seeds": [3, 5]}, "min.toml"))
    assert q.seeds == (3, 5) and q.description.startswith("custom protocol")
    assert load_protocol_file(write(tmp_path, minimal, "m2.toml")).seeds == DEFAULT_SEEDS


@pytest.mark.parametrize("change, message", [
    ({"zoo": None}, "field 'zoo' is missing"),
    ({"modelz": ["a:b"]}, "unknown field 'modelz'"),
    ({"dataset": DATASETS}, "did you mean 'datasets'"),
    ({"name": "dcd48"}, "'dcd48' is a built-in protocol"),
    ({"name": "my protocol"}, "field 'name' must be letters"),
    ({"zoo": ["ViT-B-32"]}, "model id 'ViT-B-32' is not of the form 'ARCH:pretrained'"),
    ({"zoo": "RN50:openai"}, "field 'zoo' must be a list of non-empty strings"),
    ({"zoo": ["RN50:openai", "RN50:openai"]}, "field 'zoo' lists 'RN50:openai' twice"),
    ({"datasets": ["pcam"]}, "field 'datasets' needs at least 2 entries"),
    ({"datasets": ["pcam", "mnst"]}, "did you mean 'mnist'"),
    ({"datasets": ["pcam", "imagenet1k"]}, "'imagenet1k' is side information"),
    ({"gt_sources": ["lovm", "pack"]}, "field 'gt_sources': unknown source 'pack'"),
    ({"seeds": 0}, "field 'seeds' must be a count >= 1"),
    ({"seeds": [1, 1]}, "field 'seeds' must be a count >= 1 or a list of distinct"),
    ({"notes": 3}, "field 'notes' must be a string or a list"),
])
def test_invalid_fields_are_one_line_errors(tmp_path, change, message, capsys):
    fields = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    path = write(tmp_path, fields)
    with pytest.raises(ProtocolFileError) as info:
        load_protocol_file(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text
    assert main(["run", "--protocol", str(path), "--methods", "inb", "--no-progress",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: protocol file") and message in err and err.count("\n") == 1


def test_unreadable_files(tmp_path):
    with pytest.raises(ProtocolFileError, match="not found"):
        get_protocol(str(tmp_path / "absent.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ProtocolFileError, match="not valid TOML"):
        load_protocol_file(bad)
    assert "mine" not in PROTOCOLS  # a file never registers a named protocol


def write_pack(features, datasets, acc: dict[str, float]) -> None:
    """Ground-truth records of NEW as `extract ground-truth` writes them (real weights)."""
    from benchmark.extract.ground_truth_cmd import KIND, make_extractor

    ex = make_extractor(argparse.Namespace(images_per_dataset=0, seed=0, random_init=False))
    store = FeatureStore(features)
    for d in datasets:
        arrays = {"acc1": np.asarray(acc[d]), "n_images": np.asarray(100),
                  "class_count": np.asarray([50, 50]), "class_correct": np.asarray([25, 25])}
        store.write(KIND, NEW, d, arrays, ex, {"n_images": 100})


def test_run_ranks_a_new_model_from_its_ground_truth_pack(tmp_path, capsys):
    acc = {"pcam": 0.9, "renderedsst2": 0.8, "mnist": 0.95, "imagenet1k": 0.99}
    write_pack(tmp_path / "f", [*DATASETS, "imagenet1k"], acc)
    path = write(tmp_path, VALID)
    assert main(["list", "models", "--protocol", str(path)]) == 0
    assert NEW in capsys.readouterr().out
    argv = ["run", "--protocol", str(path), "--methods", "inb,avgrank", "--no-progress",
            "--features-dir", str(tmp_path / "f"), "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    coverage = pd.read_csv(tmp_path / "run" / "coverage.csv")
    assert (coverage["candidates"] == 4).all()  # the new model is a candidate everywhere
    mine = preds[preds["model"] == NEW]
    assert len(mine) == 2 * 2 * len(DATASETS)  # methods x seeds x targets
    # INB ranks by ImageNet-1k: the pack's 0.99 beats every published model here
    inb = preds[preds["method"] == "inb"]
    top = inb.loc[inb.groupby(["seed", "target"])["score"].idxmax(), "model"]
    assert set(top) == {NEW}
    # avgrank: the mean rank on the sources -- the pack's accuracies are used, not ignored
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert set(scores["method"]) == {"inb", "avgrank"} and np.isfinite(scores["value"]).all()


def test_inb_without_imagenet_accuracy_is_a_clear_error(tmp_path, capsys):
    write_pack(tmp_path / "f", DATASETS, {"pcam": 0.9, "renderedsst2": 0.8, "mnist": 0.95})
    path = write(tmp_path, VALID)
    base = ["run", "--protocol", str(path), "--no-progress", "--features-dir",
            str(tmp_path / "f")]
    assert main([*base, "--methods", "inb", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "inb: no ImageNet-1k accuracy for" in err and NEW in err and err.count("\n") == 1
    assert main([*base, "--methods", "avgrank", "--out", str(tmp_path / "b")]) == 0
