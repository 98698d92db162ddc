"""``extract model-labels`` end to end on tiny random-init towers and synthetic wnid folders:
records against a direct computation, resume, refusals before any work, then ``mll`` ranking
the models from those packs through ``run``."""

from __future__ import annotations

import functools
import json
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from benchmark.cli import main  # noqa: E402
from benchmark.extract import model_labels_cmd, models  # noqa: E402
from benchmark.features.model_labels import KIND, NODES, decode_texts  # noqa: E402
from benchmark.features.store import FeatureStore  # noqa: E402
from methods.mll import graph as mll_graph  # noqa: E402
from methods.mll.graph import SemanticGraph, imagenet_wnids  # noqa: E402

pytestmark = pytest.mark.torch

MODELS = ("RN50:openai", "RN101:openai", "ViT-B-32:openai")  # mll-zoo ids: tiny towers here
SAMPLES = ("imagenet1k", "imagenet-a")
TENCH, GOLDFISH, STINGRAY = "n01440764", "n01443537", "n01498041"
VISION = dict(image_size=32, patch_size=8, width=32, layers=1, head_width=16)
TEXT = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)
TOKENIZE = functools.partial(open_clip.tokenize, context_length=TEXT["context_length"])


def tiny_clip(model_id: str):
    torch.manual_seed(zlib.crc32(model_id.encode()))
    return open_clip.CLIP(embed_dim=16, vision_cfg=VISION, text_cfg=TEXT).eval()


@pytest.fixture(scope="module")
def graph():
    """4 nodes: three ImageNet classes and a hyponym-only node borrowing from two of them."""
    classes = imagenet_wnids("imagenet1k")
    c = {w: classes.index(w) for w in (TENCH, GOLDFISH, STINGRAY)}
    return SemanticGraph(
        ids=(TENCH, GOLDFISH, STINGRAY, "n09999999"),
        names=("tench.n.01", "goldfish.n.01", "stingray.n.01", "fish.n.99"),
        captions=("tench which is a fish", "goldfish which is a small golden fish",
                  "stingray which is a ray with a venomous spine", "fish which is any fish"),
        classes=classes,
        node_classes=((c[TENCH],), (c[GOLDFISH],), (c[STINGRAY],), ()),
        image_parents=((), (), (), (0, 1)),
        edges=((0, 3), (1, 3)),
    )


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    layout = {"imagenet1k": {TENCH: 3, GOLDFISH: 3, STINGRAY: 2}, "imagenet-a": {STINGRAY: 2}}
    for sample, classes in layout.items():
        for wnid, n in classes.items():
            folder = root / sample / "test" / wnid
            folder.mkdir(parents=True)
            for k in range(n):
                arr = rng.integers(0, 256, (28 + k, 36, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{k}.png")
    return root


@pytest.fixture
def loads(monkeypatch, graph):
    calls = []

    def fake_load_model(model_id, random_init=False, device="cpu", cache_dir=None):
        calls.append(model_id)
        preprocess = open_clip.image_transform(VISION["image_size"], is_train=False)
        return models.LoadedModel(model_id, tiny_clip(model_id), preprocess, TOKENIZE,
                                  random_init)

    monkeypatch.setattr(models, "load_model", fake_load_model)
    monkeypatch.setattr(mll_graph, "semantic_graph", lambda: graph)
    return calls


@pytest.fixture
def cli(images_dir, tmp_path):
    features = tmp_path / "features"

    def run(*extra, models=MODELS):
        argv = ["extract", "model-labels", "--images-dir", str(images_dir), "--features-dir",
                str(features), "--samples", ",".join(SAMPLES), "--images-per-node", "3",
                "--batch-size", "2", "--no-progress", "--models", ",".join(models)]
        return main([*argv, *extra])

    run.store = FeatureStore(features)
    run.features = features
    return run


def test_packs_hold_the_towers_embeddings_of_the_plan(cli, loads, images_dir, graph, capsys):
    assert cli("--random-init") == 0
    assert loads == list(MODELS)
    err = capsys.readouterr().err
    assert "4 nodes, 9 images" in err and "s per 1000 images" in err
    store = cli.store
    for model in MODELS:
        m = store.manifest(KIND, model)
        params = m["extractor"]["params"]
        assert params["images_per_node"] == 3 and params["random_init"] is True
        assert params["samples"] == list(SAMPLES) and params["graph"] == graph.digest
        assert sorted(m["records"]) == sorted([NODES, *SAMPLES])
        nodes = store.read(KIND, model, NODES)
        assert decode_texts(nodes["node_captions"]) == graph.captions
        assert list(nodes["node_ids"]) == list(graph.ids)
        # tench 3, goldfish 3, stingray 2 + 1 (ImageNet-A) capped at 3, fish: 3 // 2 from each
        assert np.diff(nodes["node_offsets"]).tolist() == [3, 3, 3, 2]
        assert nodes["sample_offsets"].tolist() == [0, 8, 9]

        tower = tiny_clip(model)
        with torch.no_grad():
            text = tower.encode_text(TOKENIZE(list(graph.captions)))
        text = torch.nn.functional.normalize(text, dim=-1).numpy()
        assert nodes["text"].dtype == np.float16
        np.testing.assert_allclose(nodes["text"], text, atol=2e-3)

        rec = store.read(KIND, model, "imagenet1k")
        ids = list(rec["image_ids"])
        assert ids == sorted(ids) and len(ids) == 8
        preprocess = open_clip.image_transform(32, is_train=False)
        x = torch.stack([preprocess(Image.open(images_dir / "imagenet1k" / i).convert("RGB"))
                         for i in ids])
        with torch.no_grad():
            image = torch.nn.functional.normalize(tower.encode_image(x), dim=-1).numpy()
        np.testing.assert_allclose(rec["image"], image, atol=2e-3)
        assert rec.meta["plan_digest"] == nodes.meta["plan_digest"]
        assert store.read(KIND, model, "imagenet-a")["image"].shape == (1, 16)


def test_rerun_does_no_work(cli, loads, capsys):
    assert cli("--random-init") == 0
    before = [(cli.store.pack_dir(KIND, m) / "manifest.json").read_bytes() for m in MODELS]
    loads.clear()
    capsys.readouterr()
    assert cli("--random-init") == 0
    assert loads == [] and "nothing to do" in capsys.readouterr().out
    assert before == [(cli.store.pack_dir(KIND, m) / "manifest.json").read_bytes()
                      for m in MODELS]


def test_interrupted_run_completes_only_the_missing_records(cli, loads, monkeypatch):
    real = model_labels_cmd.embed_images
    calls = []

    def killed_on_second_sample(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(model_labels_cmd, "embed_images", killed_on_second_sample)
    with pytest.raises(KeyboardInterrupt):
        cli("--random-init", models=MODELS[:1])
    assert cli.store.datasets(KIND, MODELS[0]) == ["imagenet1k", "nodes"]
    first = (cli.store.pack_dir(KIND, MODELS[0]) / "imagenet1k.npz").read_bytes()
    calls.clear()
    monkeypatch.setattr(model_labels_cmd, "embed_images", real)
    counted = []
    monkeypatch.setattr(model_labels_cmd, "embed_captions",
                        lambda *a, **k: counted.append(1))  # the nodes record is not redone
    assert cli("--random-init", models=MODELS[:1]) == 0
    assert counted == [] and cli.store.datasets(KIND, MODELS[0]) == sorted([NODES, *SAMPLES])
    assert (cli.store.pack_dir(KIND, MODELS[0]) / "imagenet1k.npz").read_bytes() == first


def test_other_parameters_are_refused_before_any_work(cli, loads, capsys):
    assert cli("--random-init", models=MODELS[:1]) == 0
    loads.clear()
    capsys.readouterr()
    assert cli("--random-init", "--images-per-node", "2", models=MODELS[:1]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "images_per_node" in err and "plan" in err and loads == []


def test_real_loaders_fail_with_one_line_before_any_model_loads(loads, tmp_path, capsys):
    argv = ["extract", "model-labels", "--random-init", "--models", MODELS[0],
            "--data-dir", str(tmp_path / "empty"), "--features-dir", str(tmp_path / "f")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "'imagenet1k'" in err and "--images-dir" in err
    assert "4 more sample dataset(s) unavailable too" in err
    assert loads == []


def test_class_folders_must_be_wnids(loads, tmp_path, capsys):
    folder = tmp_path / "images" / "imagenet1k" / "test" / "tench"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "0.png")
    argv = ["extract", "model-labels", "--random-init", "--models", MODELS[0], "--samples",
            "imagenet1k", "--images-dir", str(tmp_path / "images"), "--features-dir",
            str(tmp_path / "f")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not an ImageNet wnid" in err and loads == []


def test_mll_ranks_the_extracted_models(cli, loads, tmp_path, capsys):
    assert cli("--random-init") == 0
    argv = ["run", "--methods", "mll", "--protocol", "mll", "--models", ",".join(MODELS),
            "--datasets", "stl10,mnist", "--seeds", "1", "--no-progress", "--features-dir",
            str(cli.features)]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    assert "--allow-random-init" in capsys.readouterr().err
    assert main([*argv, "--allow-random-init", "--out", str(tmp_path / "run")]) == 0
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert set(preds["model"]) == set(MODELS) and set(preds["target"]) == {"stl10", "mnist"}
    assert np.isfinite(preds["score"]).all()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "mll" in json.dumps(run)


# -- the minizoo world's concept graph (Protocol.concepts = "minizoo") -----------------------
MZ_MODELS = ("MZ-RN-1-8:dark_s0", "MZ-ViT-2-32-p8:all_s0")  # minizoo ids: tiny towers here


def test_minizoo_protocol_labels_on_the_worlds_concept_graph(loads, tmp_path, capsys):
    from benchmark.minizoo import concepts

    features, images = tmp_path / "features", tmp_path / "images"
    argv = ["extract", "model-labels", "--protocol", "minizoo", "--random-init",
            "--images-per-node", "2", "--batch-size", "16", "--no-progress",
            "--images-dir", str(images), "--features-dir", str(features),
            "--models", ",".join(MZ_MODELS)]
    assert main(argv) == 0
    assert loads == list(MZ_MODELS)  # the world's graph: WordNet is never asked
    err = capsys.readouterr().err
    assert "minizoo concepts, 59 nodes, 98 images (mz_concepts 98)" in err
    g = mll_graph.concept_graph(mll_graph.concept_source("minizoo"))
    store = FeatureStore(features)
    for model in MZ_MODELS:
        params = store.manifest(KIND, model)["extractor"]["params"]
        assert params["concepts"] == "minizoo" and params["world_seed"] == 0
        assert params["graph"] == g.digest and params["samples"] == [concepts.SAMPLE]
        nodes = store.read(KIND, model, NODES)
        assert decode_texts(nodes["node_captions"]) == g.captions
        assert nodes.meta["samples"] == [concepts.SAMPLE]
        counts = np.diff(nodes["node_offsets"])
        leaf = np.isin(np.asarray(g.ids), g.classes)
        assert (counts[leaf] == 2).all() and (counts[~leaf] == 2).all()
        rec = store.read(KIND, model, concepts.SAMPLE)
        assert rec["image"].shape == (98, 16) and np.isfinite(rec["image"]).all()
        tower = tiny_clip(model)  # the node images through the model's own tower
        ids = list(rec["image_ids"])
        preprocess = open_clip.image_transform(32, is_train=False)
        x = torch.stack([preprocess(Image.open(images / concepts.SAMPLE / i).convert("RGB"))
                         for i in ids[:4]])
        with torch.no_grad():
            emb = torch.nn.functional.normalize(tower.encode_image(x), dim=-1).numpy()
        np.testing.assert_allclose(rec["image"][:4], emb, atol=2e-3)
    # the feature loader assembles the pack from the samples its nodes record names
    from benchmark.features.kinds import LoadContext
    from benchmark.features.model_labels import load_model_labels

    arrays, meta = load_model_labels(
        LoadContext(data=None, store=store, allow_random_init=True), MZ_MODELS[0])
    assert arrays["image"].shape == (98, 16) and meta["samples"] == (concepts.SAMPLE,)
    loads.clear()
    assert main(argv) == 0 and loads == []  # resumed: nothing to do
    capsys.readouterr()
    # --concepts overrides the protocol's: WordNet's sample datasets are asked for
    assert main([*argv, "--concepts", "wordnet", "--samples", "imagenet1k"]) == 2
    assert "'imagenet1k'" in capsys.readouterr().err and loads == []
