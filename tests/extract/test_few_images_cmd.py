"""``extract few-images`` end to end on tiny random-init towers and synthetic image folders,
then the few-image selectors on those packs.

The records are checked against a direct computation with the same tower (embeddings, the
``100 * cos`` zero-shot logits, labels from the folder names); every model gets the same seeded
images; the command resumes and refuses other parameters; the unlabelled kind never carries
labels, the labelled kind does; the harness reads the packs (only with ``allow_random_init``)
and fails fast naming the extract command when one is missing.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from benchmark.cli import main  # noqa: E402
from benchmark.extract import models  # noqa: E402
from benchmark.features.store import FeaturePackError, FeatureStore  # noqa: E402
from tests.extract.test_class_stats_cmd import (  # noqa: E402
    TOKENIZE,
    folder_names,
    tiny_clip,
)

pytestmark = pytest.mark.torch

KIND = "few-images"
MODELS = ("RN50:openai", "ViT-B-32:openai")  # LOVM models: tiny towers here
DATASETS = ("mnist", "svhn")
N_IMAGES = 7  # of 20 per dataset


@pytest.fixture(scope="module")
def catalog(data):
    from benchmark.data.catalog import Catalog

    return Catalog(data)


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory, catalog):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for d in DATASETS:
        for name in folder_names(d, catalog.info(d).classnames):
            folder = root / d / "test" / name
            folder.mkdir(parents=True)
            for k in range(2):
                Image.fromarray(rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)).save(
                    folder / f"{k}.png")
    return root


def _fake_load(m, random_init=False, device="cpu", cache_dir=None):
    return models.LoadedModel(m, tiny_clip(m), open_clip.image_transform(32, is_train=False),
                              TOKENIZE, random_init)


@pytest.fixture
def loads(monkeypatch):
    calls = []

    def load(m, **kw):
        calls.append(m)
        return _fake_load(m, **kw)

    monkeypatch.setattr(models, "load_model", load)
    return calls


def cli(images_dir, features, *extra, models=MODELS, datasets=DATASETS) -> int:
    return main(["extract", KIND, "--images-dir", str(images_dir), "--features-dir",
                 str(features), "--images-per-dataset", str(N_IMAGES), "--batch-size", "4",
                 "--no-progress", "--models", ",".join(models), "--datasets",
                 ",".join(datasets), *extra])


@pytest.fixture(scope="module")
def packs(tmp_path_factory, images_dir):
    root = tmp_path_factory.mktemp("features")
    mp = pytest.MonkeyPatch()
    mp.setattr(models, "load_model", _fake_load)
    try:
        assert cli(images_dir, root, "--random-init") == 0
    finally:
        mp.undo()
    return FeatureStore(root)


def test_records_match_a_direct_computation(packs, images_dir, catalog):
    from benchmark.extract.zeroshot import zero_shot_classifier
    from benchmark.features.few_images import check_record

    m = packs.manifest(KIND, MODELS[0])
    assert m["extractor"]["params"]["images_per_dataset"] == N_IMAGES
    assert m["extractor"]["params"]["random_init"] is True
    preprocess = open_clip.image_transform(32, is_train=False)
    for d in DATASETS:
        info = catalog.info(d)
        ids = [packs.read(KIND, mm, d).meta["image_ids"] for mm in MODELS]
        assert ids[0] == ids[1] and len(ids[0]) == N_IMAGES  # same seed, same images
        model = tiny_clip(MODELS[1])
        rec = packs.read(KIND, MODELS[1], d)
        check_record(rec, len(info.classnames), labelled=True)
        folders = folder_names(d, info.classnames)
        np.testing.assert_array_equal(rec["labels"],
                                      [folders.index(i.split("/")[1]) for i in ids[0]])
        with torch.no_grad():
            x = torch.stack([preprocess(Image.open(images_dir / d / i).convert("RGB"))
                             for i in ids[0]])
            f = model.encode_image(x).float()
            f = (f / f.norm(dim=-1, keepdim=True)).numpy()
        w = zero_shot_classifier(model, TOKENIZE, info.classnames, info.templates)
        np.testing.assert_allclose(rec["embeddings"], f, atol=1e-5)
        np.testing.assert_allclose(rec["logits"], 100 * f @ w.T, atol=1e-3)


def test_rerun_resumes_and_refuses_other_parameters(images_dir, tmp_path, loads, capsys):
    assert cli(images_dir, tmp_path, "--random-init", models=MODELS[:1],
               datasets=("mnist",)) == 0
    store = FeatureStore(tmp_path)
    first = (store.pack_dir(KIND, MODELS[0]) / "mnist.npz").read_bytes()
    loads.clear()
    assert cli(images_dir, tmp_path, "--random-init", models=MODELS[:1]) == 0
    assert loads == [MODELS[0]]
    assert (store.pack_dir(KIND, MODELS[0]) / "mnist.npz").read_bytes() == first
    capsys.readouterr()
    assert cli(images_dir, tmp_path, "--random-init", "--seed", "1", models=MODELS[:1]) == 2
    assert "was made with" in capsys.readouterr().err


def test_the_selectors_run_on_the_packs(packs, data):
    from benchmark.core.harness import Harness, MissingFeaturesError, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.features.kinds import LoadContext, get_kind

    ctx = LoadContext(data, packs, allow_random_init=True)
    unl = get_kind("few-images").load(ctx, list(MODELS), list(DATASETS))
    lab = get_kind("few-labelled-images").load(ctx, list(MODELS), list(DATASETS))
    assert all("labels" not in r.arrays for r in unl.values())  # sources and targets alike
    assert all("labels" in r.arrays for r in lab.values())
    assert "image_ids" not in get_kind("few-labelled-images").target_part(
        lab[(MODELS[0], "mnist")]).meta

    names = ["zs-maxprob", "zs-entropy", "leep", "nce", "h-score", "h-score-shrunk", "logme"]
    p = get_protocol("lovm").with_options(zoo=MODELS, datasets=DATASETS, seeds=(0,))
    runs = resolve_methods(names)
    with pytest.raises(FeaturePackError, match="random-init"):
        Harness.from_data(p, data, packs).run(runs, progress=False)
    result = Harness.from_data(p, data, packs, allow_random_init=True).run(runs, progress=False)
    assert set(result.scores["method"]) == set(names)
    assert np.isfinite(result.predictions["score"]).all()
    with pytest.raises(MissingFeaturesError, match="extract few-images --models ViT-B-16:openai"):
        p2 = p.with_options(zoo=(*MODELS, "ViT-B-16:openai"))
        Harness.from_data(p2, data, packs, allow_random_init=True).run(runs[:1], progress=False)
