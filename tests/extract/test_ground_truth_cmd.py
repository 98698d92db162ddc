"""``extract ground-truth`` (benchmark/extract/ground_truth_cmd.py, zeroshot.py) and the
``packs`` ground-truth source:

- a hand-built 2-class model with a known answer (5 of 6 images right);
- a random-init tower through the real open_clip factory (``--model-config``): accuracy near
  chance, counts exact, resumable;
- the same steps as clip_benchmark's own functions, when clip_benchmark is importable;
- a custom TOML protocol ranking the new model (inb, avgrank) from its ground-truth pack.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from benchmark.cli import main  # noqa: E402
from benchmark.features.store import FeaturePackError, FeatureStore  # noqa: E402

pytestmark = pytest.mark.torch

KIND = "ground-truth"
TINY = "vlmbench-tiny"
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


# -- helpers shared with test_units.py and test_ray_backend.py ------------------------------
def tiny_config(directory: Path) -> Path:
    """An open_clip config of a tiny architecture, registered by ``--model-config``."""
    path = Path(directory) / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    return path


def make_images(root: Path, layout: dict[str, int], per_class: int = 2, seed: int = 0) -> Path:
    """``root/<dataset>/test/<i>/<k>.png``: ``layout[dataset]`` classes named 0..C-1."""
    rng = np.random.default_rng(seed)
    for dataset, n_classes in layout.items():
        for c in range(n_classes):
            folder = Path(root) / dataset / "test" / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                arr = rng.integers(0, 256, (18 + k, 20, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{k}.png")
    return Path(root)


def gt_argv(images: Path, features: Path, config: Path, models, datasets, *extra) -> list[str]:
    return ["extract", KIND, "--images-dir", str(images), "--features-dir", str(features),
            "--model-config", str(config), "--random-init", "--no-progress", "--models",
            ",".join(models), "--datasets", ",".join(datasets), *extra]


# -- known answer ------------------------------------------------------------------------------
class ColourModel(torch.nn.Module):
    """Image -> (mean red, mean green); prompt of class 0 -> (1, 0), of class 1 -> (0, 1)."""

    def __init__(self, prompts_of: dict[int, list[str]]) -> None:
        super().__init__()
        self.texts = [t for c in sorted(prompts_of) for t in prompts_of[c]]
        self.cls = [c for c in sorted(prompts_of) for _ in prompts_of[c]]
        self.scale = torch.nn.Parameter(torch.ones(()))

    def tokenizer(self, texts):
        return torch.tensor([[self.texts.index(t)] for t in texts])

    def encode_text(self, tokens):
        out = torch.zeros(len(tokens), 2)
        for row, tok in enumerate(tokens[:, 0].tolist()):
            out[row, self.cls[tok]] = 1.0 + tok  # any positive scale: normalised away
        return out * self.scale

    def encode_image(self, x):
        return x[:, :2].mean(dim=(2, 3))


def to_tensor(img):
    return torch.tensor(np.asarray(img.convert("RGB").resize((4, 4)), np.float32) / 255
                        ).permute(2, 0, 1)


@pytest.fixture
def colour_images(tmp_path) -> Path:
    """pcam: class folder 0 holds 3 red + 1 green image, class folder 1 holds 2 green."""
    red, green = (200, 10, 10), (10, 200, 10)
    for folder, colours in {"0": [red, red, red, green], "1": [green, green]}.items():
        d = tmp_path / "colour" / "pcam" / "test" / folder
        d.mkdir(parents=True)
        for k, c in enumerate(colours):
            Image.new("RGB", (6, 6), c).save(d / f"{k}.png")
    return tmp_path / "colour"


def colour_model(catalog):
    from benchmark.extract.models import LoadedModel

    info = catalog.info("pcam")
    model = ColourModel({c: info.prompts(n) for c, n in enumerate(info.classnames)})
    return LoadedModel("colour:none", model.eval(), to_tensor, model.tokenizer, False)


def test_hand_built_two_class_model_gives_the_known_accuracy(colour_images, catalog):
    from benchmark.extract import loaders
    from benchmark.extract.ground_truth_cmd import zero_shot_accuracy

    ds = loaders.open_dataset("pcam", colour_images, split="test", backend="folder")
    arrays, meta = zero_shot_accuracy(colour_model(catalog), ds, list(range(len(ds))),
                                      catalog.info("pcam"), batch_size=4, text_batch_size=3,
                                      device="cpu")
    assert float(arrays["acc1"]) == pytest.approx(5 / 6)  # the green image of class 0 is wrong
    assert int(arrays["n_images"]) == 6
    assert arrays["class_count"].tolist() == [4, 2]
    assert arrays["class_correct"].tolist() == [3, 2]
    assert meta["n_templates"] == 2 and meta["n_classes"] == 2 and "image_ids" not in meta
    # per-image predictions (extractor version 2): labels, pred, float16 logits with row max 0
    assert arrays["labels"].tolist() == [0, 0, 0, 0, 1, 1]
    assert arrays["pred"].tolist() == [0, 0, 0, 1, 1, 1]
    lg = arrays["logits"]
    assert lg.dtype == np.float16 and lg.shape == (6, 2)
    assert np.all(lg.max(axis=1) == 0) and lg.argmax(axis=1).tolist() == [0, 0, 0, 1, 1, 1]
    assert float(lg[0, 1]) < -10  # a red image: 100 cos far below the red class's


def test_known_answer_through_the_command(colour_images, catalog, tmp_path, monkeypatch):
    from benchmark.extract import models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: colour_model(catalog))
    argv = ["extract", KIND, "--models", "RN50:openai", "--datasets", "pcam", "--images-dir",
            str(colour_images), "--features-dir", str(tmp_path / "f"), "--no-progress"]
    assert main(argv) == 0
    store = FeatureStore(tmp_path / "f")
    rec = store.read(KIND, "RN50:openai", "pcam")
    assert float(rec["acc1"]) == pytest.approx(5 / 6)
    params = store.extractor(KIND, "RN50:openai").params
    assert params["images"] == "all" and params["split"] == "test"
    assert params["random_init"] is False
    assert params["per_image"].startswith("labels, pred, logits")
    from benchmark.data.groundtruth import pack_predictions

    p = pack_predictions(store, "RN50:openai", "pcam")
    assert p.labels.tolist() == [0, 0, 0, 0, 1, 1] and p.logits.shape == (6, 2)
    no = ["--features-dir", str(tmp_path / "g"), "--no-logits"]
    assert main([*argv[:-3], *no, "--no-progress"]) == 0
    store = FeatureStore(tmp_path / "g")
    assert "logits" not in store.read(KIND, "RN50:openai", "pcam").arrays
    with pytest.raises(FeaturePackError, match="no per-image predictions"):
        pack_predictions(store, "RN50:openai", "pcam")


# -- random-init tower, real factory -------------------------------------------------------
def test_random_tower_is_near_chance_and_resumes(tmp_path, capsys):
    config = tiny_config(tmp_path)
    images = make_images(tmp_path / "img", {"mnist": 10, "pcam": 2}, per_class=8)
    argv = gt_argv(images, tmp_path / "f", config, [f"{TINY}:x"], ["mnist", "pcam"])
    assert main(argv) == 0
    store = FeatureStore(tmp_path / "f")
    rec = store.read(KIND, f"{TINY}:x", "mnist")
    assert int(rec["n_images"]) == 80 and rec["class_count"].tolist() == [8] * 10
    assert abs(float(rec["acc1"]) - 0.1) <= 0.2  # chance is 1/10
    assert int(rec["class_correct"].sum()) == round(float(rec["acc1"]) * 80)
    assert store.extractor(KIND, f"{TINY}:x").params["random_init"] is True
    capsys.readouterr()
    assert main(argv) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main([*argv, "--images-per-dataset", "5"]) == 2  # other parameters: refused
    assert "was made with other images, seed" in capsys.readouterr().err


def test_matches_clip_benchmark_when_importable(tmp_path, catalog):
    zsc = pytest.importorskip("clip_benchmark.metrics.zeroshot_classification")
    from benchmark.extract import zeroshot
    from benchmark.extract.class_stats_cmd import image_features

    open_clip.add_model_config(tiny_config(tmp_path))
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(TINY)
    tokenizer = open_clip.get_tokenizer(TINY)
    info = catalog.info("stl10")
    ours = zeroshot.zero_shot_classifier(model.eval(), tokenizer, info.classnames,
                                         info.templates)
    theirs = zsc.zero_shot_classifier(model, tokenizer, list(info.classnames),
                                      list(info.templates), "cpu", amp=False)
    np.testing.assert_allclose(ours, theirs.T.numpy(), atol=1e-6)

    from benchmark.extract import loaders
    from benchmark.extract.models import LoadedModel

    ds = loaders.open_dataset("stl10", make_images(tmp_path / "i", {"stl10": 10}, 3),
                              split="test", backend="folder")
    loaded = LoadedModel(TINY, model, preprocess, tokenizer, True)
    feats, labels = image_features(loaded, ds, list(range(len(ds))), None, 10, 7, "cpu", False)
    batches = [(torch.stack([preprocess(ds[i][0]) for i in range(k, min(k + 7, len(ds)))]),
                torch.tensor(labels[k:k + 7])) for k in range(0, len(ds), 7)]
    logits, target = zsc.run_classification(model, theirs, batches, "cpu", amp=False)
    pred = zeroshot.predict(feats, ours)
    np.testing.assert_array_equal(pred, logits.argmax(dim=1).numpy())
    # their accuracy(): top-1 = the largest logit is the target (numpy >= 2.3 breaks the
    # function itself: float() of a 1-element array), so the same count written out here
    acc1 = float((logits.topk(1, dim=1)[1][:, 0] == target).float().mean())
    assert float(zeroshot.accuracy_arrays(labels, pred, 10)["acc1"]) == pytest.approx(acc1)


# -- the packs source and a custom protocol ------------------------------------------------
def test_custom_protocol_ranks_the_new_model_from_its_pack(tmp_path, data, capsys):
    from benchmark.data.groundtruth import assemble

    config = tiny_config(tmp_path)
    datasets = ["pcam", "renderedsst2", "mnist"]
    images = make_images(tmp_path / "img", {"pcam": 2, "renderedsst2": 2, "mnist": 10,
                                            "imagenet1k": 2})
    new = f"{TINY}:mine"
    assert main(gt_argv(images, tmp_path / "f", config, [new], [*datasets, "imagenet1k"])) == 0
    store = FeatureStore(tmp_path / "f")
    published = ["ViT-B-32:laion2b_e16", "RN50:openai", "ViT-B-16:openai"]

    gt = assemble(data, [*published, new], [*datasets, "imagenet1k"], ("lovm", "packs"),
                  store=store, allow_random_init=True)
    mine = gt.table[gt.table["model"] == new]
    assert set(mine["dataset"]) == {*datasets, "imagenet1k"} and set(mine["source"]) == {"packs"}
    assert set(gt.table.loc[gt.table["model"] != new, "source"]) == {"lovm"}
    with pytest.raises(FeaturePackError, match="--allow-random-init"):
        assemble(data, [new], datasets, ("lovm", "packs"), store=store)
    without = assemble(data, published, [*datasets, "imagenet1k"], ("lovm",))
    pd.testing.assert_frame_equal(
        without.table, gt.table[gt.table["model"] != new].reset_index(drop=True))

    toml = tmp_path / "mine.toml"
    toml.write_text(
        'name = "mine"\ndescription = "3 published models + a new one"\n'
        f'zoo = {json.dumps([*published, new])}\ndatasets = {json.dumps(datasets)}\n'
        'gt_sources = ["lovm", "packs"]\nseeds = 2\n')
    argv = ["run", "--protocol", str(toml), "--methods", "inb,avgrank", "--no-progress",
            "--features-dir", str(tmp_path / "f")]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    assert "--allow-random-init" in capsys.readouterr().err
    assert main([*argv, "--allow-random-init", "--out", str(tmp_path / "run")]) == 0
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert set(preds["method"]) == {"inb", "avgrank"} and set(preds["target"]) == set(datasets)
    assert (preds["model"] == new).sum() == 2 * 2 * len(datasets)  # methods x seeds x targets
    inb = preds[(preds["method"] == "inb") & (preds["model"] == new)]
    acc_in = float(store.read(KIND, new, "imagenet1k")["acc1"])
    assert np.allclose(inb["score"], acc_in)  # INB scores a model by its ImageNet-1k accuracy
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["protocol"]["name"] == "mine" and run["protocol"]["gt_sources"] == ["lovm", "packs"]
