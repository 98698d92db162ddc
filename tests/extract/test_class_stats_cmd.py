"""``extract class-stats`` end to end on tiny random-init towers and synthetic image folders,
then the full SWAB (``swab-full``, ``swab-c``, ``swab-m``) on those packs.

The records are checked against a direct computation with the same tower (labels mapped by
folder name, by number, or by position), the command resumes record by record and refuses
other parameters before any work, and the harness reads the packs (only with
``allow_random_init``) or fails fast naming the extract command.
"""

from __future__ import annotations

import functools
import json
import zlib

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from benchmark.cli import main  # noqa: E402
from benchmark.extract import models  # noqa: E402
from benchmark.extract.class_stats_cmd import label_map  # noqa: E402
from benchmark.features.store import FeaturePackError, FeatureStore  # noqa: E402

pytestmark = pytest.mark.torch

KIND = "class-stats"
MODELS = ("RN50:openai", "RN101:openai", "ViT-B-32:openai")  # LOVM models: tiny towers here
DATASETS = ("mnist", "stl10", "svhn")
N_IMAGES = 14  # of 20 per dataset: some classes get no image
VISION = dict(image_size=32, patch_size=8, width=32, layers=1, head_width=16)
TEXT = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)
TOKENIZE = functools.partial(open_clip.tokenize, context_length=TEXT["context_length"])


def tiny_clip(model_id: str):
    torch.manual_seed(zlib.crc32(model_id.encode()))  # each zoo id: its own random tower
    return open_clip.CLIP(embed_dim=16, vision_cfg=VISION, text_cfg=TEXT).eval()


def folder_names(dataset: str, classnames) -> list[str]:
    """mnist: its class names ("0".."9"); svhn: by name; stl10: opaque names, by position."""
    if dataset == "stl10":
        return [f"c{i:02d}" for i in range(len(classnames))]
    return list(classnames)


@pytest.fixture(scope="module")
def catalog(data):
    from benchmark.data.catalog import Catalog

    return Catalog(data)


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory, catalog):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for d in DATASETS:
        for name in folder_names(d, catalog.info(d).classnames):
            folder = root / d / "test" / name
            folder.mkdir(parents=True)
            for k in range(2):
                arr = rng.integers(0, 256, (28 + k, 36, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{k}.png")
    return root


@pytest.fixture
def loads(monkeypatch):
    calls = []

    def fake_load_model(model_id, random_init=False, device="cpu", cache_dir=None):
        calls.append(model_id)
        preprocess = open_clip.image_transform(VISION["image_size"], is_train=False)
        return models.LoadedModel(model_id, tiny_clip(model_id), preprocess, TOKENIZE,
                                  random_init)

    monkeypatch.setattr(models, "load_model", fake_load_model)
    return calls


@pytest.fixture(scope="module")
def packs(tmp_path_factory, images_dir):
    """The packs of MODELS x DATASETS, extracted once for the module."""
    root = tmp_path_factory.mktemp("features")
    mp = pytest.MonkeyPatch()
    mp.setattr(models, "load_model", lambda m, random_init=False, device="cpu", cache_dir=None:
               models.LoadedModel(m, tiny_clip(m), open_clip.image_transform(32, is_train=False),
                                  TOKENIZE, random_init))
    try:
        assert cli(images_dir, root, "--random-init") == 0
    finally:
        mp.undo()
    return FeatureStore(root)


def cli(images_dir, features, *extra, models=MODELS, datasets=DATASETS) -> int:
    return main(["extract", KIND, "--images-dir", str(images_dir), "--features-dir",
                 str(features), "--images-per-dataset", str(N_IMAGES), "--batch-size", "5",
                 "--no-progress", "--models", ",".join(models), "--datasets",
                 ",".join(datasets), *extra])


def test_label_map_rules():
    names = ("zero", "one", "two")
    assert label_map(None, names) is None  # registry loaders: labels index the catalog
    assert label_map(["one", "two", "zero"], names) == [1, 2, 0]  # by name
    assert label_map(["0", "10", "2"], [str(i) for i in range(11)]) == [0, 10, 2]
    assert label_map(["2", "0"], names) == [2, 0]  # by number
    assert label_map(["x", "y", "z"], names) == [0, 1, 2]  # exactly C folders: sorted order
    with pytest.raises(ValueError, match="neither"):
        label_map(["x", "y"], names)


def test_records_match_a_direct_computation(packs, images_dir, catalog):
    from benchmark.extract.text_features import encode_texts, zero_shot_weights
    from benchmark.features.class_stats import check_record

    m = packs.manifest(KIND, MODELS[0])
    assert m["extractor"]["params"]["random_init"] is True
    assert m["extractor"]["params"]["images_per_dataset"] == N_IMAGES
    assert sorted(m["records"]) == sorted(DATASETS)
    model = tiny_clip(MODELS[2])
    preprocess = open_clip.image_transform(32, is_train=False)
    for d in DATASETS:
        info = catalog.info(d)
        rec = packs.read(KIND, MODELS[2], d)
        check_record(rec, info.classnames)
        ids = rec.meta["image_ids"]
        assert len(ids) == N_IMAGES and rec.meta["source"] == f"folder:{d}/test"
        folders = folder_names(d, info.classnames)
        labels = np.array([folders.index(i.split("/")[1]) for i in ids])  # test/<class>/<file>
        with torch.no_grad():
            x = torch.stack([preprocess(Image.open(images_dir / d / i).convert("RGB"))
                             for i in ids])
            f = model.encode_image(x).float()
            f = (f / f.norm(dim=-1, keepdim=True)).numpy()
        t = len(info.templates)
        prompts = encode_texts(model, TOKENIZE, [p for c in info.classnames
                                                 for p in info.prompts(c)])
        w = zero_shot_weights([prompts[i * t:(i + 1) * t] for i in range(len(info.classnames))])
        np.testing.assert_allclose(rec["text_weights"], w, atol=1e-5)
        count = np.bincount(labels, minlength=len(w))
        np.testing.assert_array_equal(rec["class_count"], count)
        assert (count == 0).any()  # the NaN path is exercised
        pred = np.argmax(f @ w.T, axis=1)
        for c in range(len(w)):
            if count[c]:
                assert rec["class_acc"][c] == pytest.approx(np.mean(pred[labels == c] == c))
                np.testing.assert_allclose(rec["image_mean"][c], f[labels == c].mean(0),
                                           atol=1e-5)
            else:
                assert np.isnan(rec["class_acc"][c]) and np.isnan(rec["image_mean"][c]).all()
        np.testing.assert_allclose(rec["image_std"], f.std(axis=0, ddof=1), atol=1e-5)
        caps = catalog.captions(d)
        first = encode_texts(model, TOKENIZE, caps[info.classnames[0]])
        np.testing.assert_allclose(rec["captions"][: len(first)], first, atol=2e-3)  # float16
        assert rec["caption_offsets"][-1] == sum(len(caps[c]) for c in info.classnames)


def test_rerun_resumes_and_refuses_other_parameters(images_dir, tmp_path, loads, capsys):
    assert cli(images_dir, tmp_path, "--random-init", models=MODELS[:1], datasets=("mnist",)) == 0
    store = FeatureStore(tmp_path)
    first = (store.pack_dir(KIND, MODELS[0]) / "mnist.npz").read_bytes()
    loads.clear()
    assert cli(images_dir, tmp_path, "--random-init", models=MODELS[:1]) == 0
    assert loads == [MODELS[0]]  # loaded once, for the two missing records
    assert (store.pack_dir(KIND, MODELS[0]) / "mnist.npz").read_bytes() == first
    assert store.datasets(KIND, MODELS[0]) == sorted(DATASETS)
    loads.clear()
    capsys.readouterr()
    assert cli(images_dir, tmp_path, "--random-init", models=MODELS[:1]) == 0
    assert loads == [] and "nothing to do" in capsys.readouterr().out
    assert cli(images_dir, tmp_path, "--random-init", "--seed", "1", models=MODELS[:1]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "was made with" in err and loads == []
    manifest = json.loads((store.pack_dir(KIND, MODELS[0]) / "manifest.json").read_text())
    assert manifest["extractor"]["params"]["seed"] == 0


def test_swab_full_runs_on_the_packs(packs, data):
    from benchmark.core.harness import Harness, MissingFeaturesError, resolve_methods
    from benchmark.core.protocol import get_protocol

    p = get_protocol("lovm").with_options(zoo=MODELS, datasets=DATASETS, seeds=(0,))
    runs = resolve_methods(["swab-full", "swab-c", "swab-m"])
    with pytest.raises(FeaturePackError, match="random-init"):
        Harness.from_data(p, data, packs).run(runs, progress=False)
    result = Harness.from_data(p, data, packs, allow_random_init=True).run(runs, progress=False)
    scores = result.scores
    assert set(scores["method"]) == {"swab-full", "swab-c", "swab-m"}
    assert set(scores["target"]) == set(DATASETS) and np.isfinite(scores["value"]).all()
    assert (result.coverage["candidates"] == len(MODELS)).all()
    preds = result.predictions.pivot_table(index=["target", "model"], columns="method",
                                           values="score")
    assert np.isfinite(preds.to_numpy()).all()

    # a missing pack: fail fast, naming the command that makes it
    with pytest.raises(MissingFeaturesError, match="extract class-stats --models ViT-B-16:openai"):
        p2 = p.with_options(zoo=(*MODELS[:2], "ViT-B-16:openai"))
        Harness.from_data(p2, data, packs, allow_random_init=True).run(runs, progress=False)
