"""``extract conductance`` end to end on a tiny random-init tower and a synthetic image folder:
records and manifest, resume after an interruption, refusals before any work."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from benchmark.cli import main  # noqa: E402
from benchmark.extract import conductance, models  # noqa: E402
from benchmark.extract.blocks import find_blocks  # noqa: E402
from benchmark.features.store import FeaturePackError, FeatureStore  # noqa: E402

pytestmark = pytest.mark.torch

DATASETS = ("cifar100", "mnist")
MODELS = ("ViT-B-32:openai", "RN50:openai")  # both stand for the tiny tower below
N_IMAGES, N_STEPS = 4, 4
VISION = dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16)  # 2 heads
TEXT = dict(context_length=8, vocab_size=64, width=16, heads=2, layers=1)


def tiny_clip():
    torch.manual_seed(0)
    return open_clip.CLIP(embed_dim=16, vision_cfg=VISION, text_cfg=TEXT).eval()


@pytest.fixture
def images_dir(tmp_path):
    """2 datasets x 2 classes x 3 images of different sizes and contents."""
    rng = np.random.default_rng(0)
    for d in DATASETS:
        for cls in ("a", "b"):
            folder = tmp_path / "images" / d / "test" / cls
            folder.mkdir(parents=True)
            for k in range(3):
                arr = rng.integers(0, 256, (30 + k, 40, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{k}.png")
    return tmp_path / "images"


@pytest.fixture
def loads(monkeypatch):
    """load_model -> the tiny tower with its matching preprocess; returns the calls."""
    calls = []

    def fake_load_model(model_id, random_init=False, device="cpu", cache_dir=None):
        calls.append((model_id, random_init))
        preprocess = open_clip.image_transform(VISION["image_size"], is_train=False)
        return models.LoadedModel(model_id, tiny_clip(), preprocess, None, random_init)

    monkeypatch.setattr(models, "load_model", fake_load_model)
    return calls


@pytest.fixture
def cli(images_dir, tmp_path):
    features = tmp_path / "features"

    def run(*extra, models=MODELS, datasets=DATASETS):
        argv = [
            "extract",
            "conductance",
            "--images-dir",
            str(images_dir),
            "--features-dir",
            str(features),
            "--images-per-dataset",
            str(N_IMAGES),
            "--n-steps",
            str(N_STEPS),
            "--batch-size",
            "3",
            "--no-progress",
        ]
        if models:
            argv += ["--models", ",".join(models)]
        if datasets:
            argv += ["--datasets", ",".join(datasets)]
        return main([*argv, *extra])

    run.store = FeatureStore(features)
    return run


def manifest_bytes(store, model):
    return (store.pack_dir("conductance", model) / "manifest.json").read_bytes()


def test_packs_hold_conductance_of_the_recorded_images(cli, loads, images_dir):
    assert cli("--random-init") == 0
    assert loads == [(m, True) for m in MODELS]  # each model loaded once
    store = cli.store
    blocks = ["transformer.resblocks.0", "transformer.resblocks.1"]
    for model in MODELS:
        m = store.manifest("conductance", model)
        assert m["extractor"] == {
            "name": "conductance",
            "version": "1",
            "params": {
                "n_steps": N_STEPS,
                "method": "gausslegendre",
                "images_per_dataset": N_IMAGES,
                "seed": 0,
                "random_init": True,
                "objective": "l2-norm-image-embedding",
                "baseline": "zeros",
            },
        }
        assert m["code_version"]
        for d in DATASETS:
            rec = store.read("conductance", model, d)
            values = rec["values"]
            assert values.shape == (N_IMAGES, 2) and values.dtype == np.float32
            assert np.isfinite(values).all() and (values > 0).all()
            assert rec.meta["blocks"] == blocks and rec.meta["n_images"] == N_IMAGES
            assert rec.meta["source"] == f"folder:{d}/test" and rec.meta["split"] == "test"
            ids = rec.meta["image_ids"]
            assert len(set(ids)) == N_IMAGES and all((images_dir / d / i).is_file() for i in ids)

    # Same images for every model; the rows are the conductance of exactly those images.
    rec = store.read("conductance", MODELS[0], "mnist")
    assert rec.meta["image_ids"] == store.read("conductance", MODELS[1], "mnist").meta["image_ids"]
    model = tiny_clip()
    preprocess = open_clip.image_transform(32, is_train=False)
    x = torch.stack(
        [
            preprocess(Image.open(images_dir / "mnist" / i).convert("RGB"))
            for i in rec.meta["image_ids"]
        ]
    )
    expected = conductance.block_conductance(model, x, find_blocks(model.visual), n_steps=N_STEPS)
    np.testing.assert_allclose(rec["values"], expected, rtol=1e-5)


def test_rerun_does_no_work(cli, loads, capsys):
    assert cli("--random-init") == 0
    before = {m: manifest_bytes(cli.store, m) for m in MODELS}
    loads.clear()
    capsys.readouterr()
    assert cli("--random-init") == 0
    assert loads == []  # no model even loaded
    assert "nothing to do" in capsys.readouterr().out
    assert {m: manifest_bytes(cli.store, m) for m in MODELS} == before


def test_interrupted_run_completes_only_the_missing_records(cli, loads, monkeypatch):
    real = conductance.block_conductance
    calls = []

    @functools.wraps(real)  # keeps the signature the command reads its defaults from
    def killed_after_first_record(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:  # 4 images in batches of 3: two calls per record
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(conductance, "block_conductance", killed_after_first_record)
    with pytest.raises(KeyboardInterrupt):
        cli("--random-init", models=MODELS[:1])
    store = cli.store
    assert store.datasets("conductance", MODELS[0]) == ["cifar100"]
    first = (store.pack_dir("conductance", MODELS[0]) / "cifar100.npz").read_bytes()

    counted = []

    @functools.wraps(real)
    def counting(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(conductance, "block_conductance", counting)
    assert cli("--random-init", models=MODELS[:1]) == 0
    assert len(counted) == 2  # mnist only
    assert store.datasets("conductance", MODELS[0]) == ["cifar100", "mnist"]
    assert (store.pack_dir("conductance", MODELS[0]) / "cifar100.npz").read_bytes() == first
    assert len(json.loads(manifest_bytes(store, MODELS[0]))["records"]) == 2


def test_corrupted_or_unlisted_records_are_recomputed(cli, loads):
    assert cli("--random-init", models=MODELS[:1]) == 0
    pack = cli.store.pack_dir("conductance", MODELS[0])
    (pack / "mnist.npz").write_bytes(b"garbage")  # listed, checksum no longer matches
    (pack / "stray.npz").write_bytes(b"half-written")  # a crash before the manifest update
    loads.clear()
    assert cli("--random-init", models=MODELS[:1]) == 0
    assert loads == [(MODELS[0], True)]
    assert cli.store.read("conductance", MODELS[0], "mnist")["values"].shape == (N_IMAGES, 2)
    assert cli.store.datasets("conductance", MODELS[0]) == ["cifar100", "mnist"]


def test_random_init_packs_are_refused_by_the_harness_loader(cli, loads):
    from benchmark.features.kinds import LoadContext, load_packs

    assert cli("--random-init", models=MODELS[:1]) == 0
    ctx = LoadContext(data=None, store=cli.store)
    with pytest.raises(FeaturePackError, match="--random-init"):
        load_packs("conductance", ctx, list(MODELS[:1]), list(DATASETS))
    allowed = LoadContext(data=None, store=cli.store, allow_random_init=True)
    assert len(load_packs("conductance", allowed, list(MODELS[:1]), list(DATASETS))) == 2


def test_other_parameters_are_refused_before_any_work(cli, loads, capsys):
    assert cli("--random-init", models=MODELS[:1], datasets=DATASETS[:1]) == 0
    loads.clear()
    capsys.readouterr()
    assert cli("--random-init", "--n-steps", "7", models=MODELS[:1]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "was made with" in err and "'n_steps': 4" in err
    assert loads == []


def test_missing_weights_fail_with_one_line_naming_the_model(cli, tmp_path, capsys):
    # The real loader, offline (HF_HUB_OFFLINE=1 in conftest) with an empty weights cache.
    assert cli("--weights-dir", str(tmp_path / "weights"), models=MODELS[1:]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1]
    assert line.startswith("error: no weights for RN50:openai")
    assert "--weights-dir" in line and "HF_HOME" in line and "--random-init" in line
    assert cli.store.datasets("conductance", MODELS[1]) == []


def test_blip_and_beit3_are_extracted_like_open_clip_models(cli, monkeypatch, capsys):
    pytest.importorskip("transformers", reason="BLIP needs transformers ('vlmbench[towers]')")
    from benchmark.extract import towers
    from tests.extract.test_towers import tiny_beit3, tiny_blip

    def fake_load_model(model_id, random_init=False, device="cpu", cache_dir=None):
        family = model_id.partition(":")[0]
        model = tiny_blip() if family == "BLIP" else tiny_beit3()
        return models.LoadedModel(model_id, model, towers.preprocess_for(32, family), None,
                                  random_init)

    monkeypatch.setattr(models, "load_model", fake_load_model)
    ids = ("BLIP:retrieval_base_coco", "BEIT3:retrieval_large_f30k")
    assert cli("--random-init", models=ids) == 0
    for m in ids:
        assert cli.store.datasets("conductance", m) == sorted(DATASETS)
        rec = cli.store.read("conductance", m, DATASETS[0])
        assert rec.arrays["values"].shape == (N_IMAGES, 3)
        assert rec.meta["blocks"] == [f"encoder.layers.{i}" for i in range(3)]
        assert np.all(rec.arrays["values"] > 0)


def test_default_protocol_plans_all_48_models(cli, loads, capsys):
    assert cli("--random-init", "--dry-run", models=None, datasets=None) == 0
    out = capsys.readouterr().out
    assert "of 1008 records" in out  # 48 models x 21 datasets
    assert "BEIT3:retrieval_large_f30k:" in out and "BLIP:retrieval_base_coco:" in out
    assert loads == []


@pytest.mark.parametrize(
    "flag, value, hint",
    [
        ("models", ("ViT-B-32:opnai",), "did you mean 'ViT-B-32:openai'"),
        ("datasets", ("cifar10",), "did you mean 'cifar100'"),
    ],
)
def test_unknown_names_suggest_the_closest(cli, loads, capsys, flag, value, hint):
    assert cli("--random-init", **{flag: value}) == 2
    assert hint in capsys.readouterr().err and loads == []


def test_missing_images_fail_before_any_model_loads(cli, loads, capsys):
    assert cli("--random-init", datasets=("dtd",)) == 2
    err = capsys.readouterr().err
    assert "'dtd'" in err and "no image folder" in err and loads == []


def test_tower_without_blocks_is_an_error_not_a_skip(cli, monkeypatch, capsys):
    class Opaque(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)

    def load(model_id, random_init=False, device="cpu", cache_dir=None):
        model = tiny_clip()
        model.visual = Opaque()
        preprocess = open_clip.image_transform(32, is_train=False)
        return models.LoadedModel(model_id, model, preprocess, None, random_init)

    monkeypatch.setattr(models, "load_model", load)
    assert cli("--random-init", models=MODELS[:1]) == 2
    err = capsys.readouterr().err
    assert f"{MODELS[0]}: cannot split Opaque" in err
    assert cli.store.datasets("conductance", MODELS[0]) == []
