"""``python -m benchmark extract text-features`` (benchmark/extract/text_features_cmd.py).

- a hand-made 3-D encoder: the command's wiring (templates x class names, captions and
  synonyms looked up by class) gives LOVM's definitions, written as formulas;
- end to end through the real open_clip factory on a tiny random-init architecture;
- a pack for a zoo model (tiny random text tower in its place) that the harness then reads,
  refused without --allow-random-init;
- resumable record by record; one-line errors (no weights, extractor mismatch).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.data.catalog import DatasetInfo
from benchmark.features.store import FeatureStore
from benchmark.features.text_features import FEATURE_COLUMNS, KIND

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

pytestmark = pytest.mark.torch

TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def run_cli(*argv: str) -> int:
    from benchmark.cli import main

    return main(["extract", "text-features", "--no-progress", *argv])


# ------------------------------------------------------------------ hand-made known answer


class LookupEncoder(torch.nn.Module):
    """``encode_text`` returns a fixed 3-D vector per text (token = index into ``texts``)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        super().__init__()
        self.texts = list(vectors)
        self.table = torch.nn.Parameter(torch.tensor(list(vectors.values()), dtype=torch.float32))

    def tokenize(self, texts):
        return torch.tensor([[self.texts.index(t)] for t in texts])

    def encode_text(self, tokens):
        return self.table[tokens[:, 0]]


class ToyCatalog:
    """Duck-typed Catalog: one dataset with two classes and two templates."""

    def info(self, dataset):
        return DatasetInfo(dataset, "toy", "photo", "classification", ("A", "B"),
                           ("a photo of {c}.", "art of {c}."))

    def captions(self, dataset):
        return {"A": ["cap a1", "cap a2"], "B": ["cap b1", "cap b2"], "unused": ["x"]}

    def synonyms(self, dataset):
        return {"A": ["syn a1", "syn a2"], "B": ["syn b1"]}


def test_hand_made_encoder_gives_lovm_definitions() -> None:
    from benchmark.extract.models import LoadedModel
    from benchmark.extract.text_features_cmd import features_for

    vectors = {
        # w_A = e1 only if each template is normalised before averaging: (1, ±.5, 0)
        "a photo of A.": [1, 0.5, 0], "art of A.": [2, -1, 0],
        # w_B = (0.6, 0.8, 0), whatever the scale of each prompt
        "a photo of B.": [0.6, 0.8, 0], "art of B.": [3, 4, 0],
        "cap a1": [2, 0, 0], "cap a2": [0, 5, 0], "cap b1": [0, 1, 0], "cap b2": [0, 0.6, 0.8],
        "syn a1": [1, 0, 0], "syn a2": [0, 0, 1], "syn b1": [0.6, 0.8, 0], "x": [1, 1, 1],
    }
    enc = LookupEncoder(vectors)
    loaded = LoadedModel("toy:none", enc, None, enc.tokenize, random_init=True)
    values, meta = features_for(loaded, ToyCatalog(), "toy", sigma=0.0, seed=0, batch_size=3,
                                device="cpu")
    # y_true = [A, A, B, B]; y_pred = [A, B, B, B]  (cap a2 = e2: 0 to w_A, 0.8 to w_B)
    f1_a, f1_b = 2 * 1 / (2 * 1 + 0 + 1), 2 * 2 / (2 * 2 + 1 + 0)
    expected = {
        "text-f1": (f1_a + f1_b) / 2,
        "text-acc1": 3 / 4,
        "intraclass_sim": (0.6 + 0.6) / 2,  # max_{j≠i} w_i·w_j, per class, averaged
        "inter_close": ((1 + 0) / 2 + (0.8 + 0.48) / 2) / 2,  # captions vs own class
        "intra_close": ((0.6 + 0.8) / 2 + (0 + 0) / 2) / 2,  # captions vs nearest other class
        "superclass_metric": ((1 + 0) / 2 + 1) / 2,  # synonyms vs own class
    }
    assert list(values) == list(FEATURE_COLUMNS)
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, abs=1e-6), name
    assert meta == {"n_classes": 2, "n_templates": 2, "n_captions": 4, "n_synonyms": 3}


# ------------------------------------------------------------------------ open_clip, tiny


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory) -> str:
    """A tiny architecture registered with open_clip, so the real factory path runs."""
    path = tmp_path_factory.mktemp("oc") / "vlmbench-tiny-text.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return "vlmbench-tiny-text"


def test_cli_end_to_end_random_init_through_open_clip(tmp_path, tiny_arch, capsys) -> None:
    model = f"{tiny_arch}:none"
    rc = run_cli("--models", model, "--datasets", "pcam,renderedsst2", "--random-init",
                 "--features-dir", str(tmp_path), "--batch-size", "64")
    assert rc == 0, capsys.readouterr().err
    store = FeatureStore(tmp_path)
    assert store.datasets(KIND, model) == ["pcam", "renderedsst2"]
    ex = store.extractor(KIND, model)
    assert ex.name == "text-features"
    assert ex.params["random_init"] is True and ex.params["sigma"] == 0.1
    rec = store.read(KIND, model, "pcam")
    assert set(rec.arrays) == set(FEATURE_COLUMNS)
    assert all(np.isfinite(float(rec[c])) for c in FEATURE_COLUMNS)
    assert 0 <= float(rec["text-acc1"]) <= 1 and -1 <= float(rec["inter_close"]) <= 1
    # 2 classes x 50 SWAB captions, 6 synonyms each, 2 LOVM templates
    assert rec.meta["n_captions"] == 100 and rec.meta["n_synonyms"] == 12
    assert rec.meta["n_templates"] == 2


@pytest.fixture
def tiny_factory(monkeypatch):
    """Replace the model factory: any id -> a seeded tiny open_clip CLIP; counts the calls."""
    from benchmark.extract import models

    calls: list[str] = []

    def load_model(model_id, random_init=False, device="cpu", cache_dir=None):
        if not random_init:
            raise models.WeightsUnavailableError(
                f"no weights for {model_id}: put them in the open_clip cache (--weights-dir) "
                f"or pass --random-init for a smoke run")
        calls.append(model_id)
        torch.manual_seed(0)
        m = open_clip.CLIP(**TINY_CFG).eval()
        tokenizer = open_clip.SimpleTokenizer(context_length=16)
        return models.LoadedModel(model_id, m, None, tokenizer, True)

    monkeypatch.setattr(models, "load_model", load_model)
    return calls


def test_pack_is_read_by_the_harness(tmp_path, tiny_factory, data) -> None:
    from benchmark.core.harness import Harness, resolve_methods
    from benchmark.core.protocol import get_protocol
    from benchmark.data.zoo import LOVM_35
    from benchmark.features.store import FeaturePackError

    datasets = ("pcam", "renderedsst2", "mnist")
    rc = run_cli("--models", "RN50:cc12m", "--datasets", ",".join(datasets), "--random-init",
                 "--features-dir", str(tmp_path))
    assert rc == 0 and tiny_factory == ["RN50:cc12m"]
    p = get_protocol("dcd48").with_options(zoo=(*LOVM_35, "RN50:cc12m"), datasets=datasets,
                                           seeds=(0,))
    runs = resolve_methods(["modelgpt"])
    with pytest.raises(FeaturePackError, match="random-init"):
        Harness.from_data(p, data, FeatureStore(tmp_path)).run(runs, progress=False)
    h = Harness.from_data(p, data, FeatureStore(tmp_path), allow_random_init=True)
    assert h.features(KIND)[("RN50:cc12m", "pcam")].meta["source"] == "pack"
    result = h.run(runs, progress=False)
    assert set(result.coverage["candidates"]) == {36}  # LOVM's 35 (CSV) + the pack's model
    assert (result.predictions["model"] == "RN50:cc12m").sum() == len(datasets)


def test_resumable_record_by_record(tmp_path, tiny_factory, monkeypatch, capsys) -> None:
    from benchmark.extract import text_features_cmd as cmd

    real = cmd.features_for
    computed: list[str] = []

    def flaky(loaded, catalog, dataset, **kw):
        computed.append(dataset)
        if dataset == "renderedsst2" and computed.count(dataset) == 1:
            raise RuntimeError("simulated crash")
        return real(loaded, catalog, dataset, **kw)

    monkeypatch.setattr(cmd, "features_for", flaky)
    args = ("--models", "RN50:cc12m", "--datasets", "pcam,renderedsst2", "--random-init",
            "--features-dir", str(tmp_path))
    assert run_cli(*args) == 1
    assert "RN50:cc12m on renderedsst2: simulated crash" in capsys.readouterr().err
    store = FeatureStore(tmp_path)
    assert store.datasets(KIND, "RN50:cc12m") == ["pcam"]
    before = store.read(KIND, "RN50:cc12m", "pcam")
    assert run_cli(*args) == 0
    assert computed == ["pcam", "renderedsst2", "renderedsst2"]  # pcam not recomputed
    assert store.datasets(KIND, "RN50:cc12m") == ["pcam", "renderedsst2"]
    assert dict(before.arrays) == dict(store.read(KIND, "RN50:cc12m", "pcam").arrays)
    n_loads = len(tiny_factory)
    assert run_cli(*args) == 0
    assert len(tiny_factory) == n_loads  # nothing to do: the model is not even loaded
    assert "skipped 2 already present" in capsys.readouterr().out


def test_one_line_errors(tmp_path, tiny_factory, capsys) -> None:
    rc = run_cli("--models", "ViT-B-32:laion2b_s34b_b79k", "--datasets", "pcam",
                 "--features-dir", str(tmp_path))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "ViT-B-32:laion2b_s34b_b79k" in err and "--random-init" in err
    assert FeatureStore(tmp_path).datasets(KIND, "ViT-B-32:laion2b_s34b_b79k") == []

    common = ("--models", "RN50:cc12m", "--datasets", "pcam", "--random-init",
              "--features-dir", str(tmp_path))
    assert run_cli(*common) == 0
    capsys.readouterr()
    rc = run_cli(*common, "--sigma", "0")  # other numbers: never mixed into the same pack
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "delete" in err

    assert run_cli("--models", "RN50:cc12m", "--datasets", "pcamm") == 2
    assert "did you mean 'pcam'" in capsys.readouterr().err
