"""Tests of LOVM's ModelGPT text features (benchmark/extract/text_features.py).

Expected values are written as the formulas of the module docstring, evaluated by hand on
2-3 classes in 3-D.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from benchmark.extract.text_features import (
    FEATURE_COLUMNS,
    ClassEmbeddings,
    granularity_features,
    macro_f1,
    modelgpt_text_features,
    superclass_metric,
    text_classification,
    zero_shot_weights,
)

E1, E2, E3 = np.eye(3)
W_B = np.array([0.6, 0.8, 0.0])  # w_A · w_B = 0.6


def hand_example() -> list[ClassEmbeddings]:
    """Two classes, w_A = e1, w_B = (0.6, 0.8, 0); captions/synonyms chosen to be hand-checkable.

    Captions are given unnormalised (x2, x5) to check they are normalised before use.
    A's captions: e1 (-> A), e2 (-> B, 0.8 > 0); B's: e2 (-> B), (0, 0.6, 0.8) (-> B, 0.48 > 0).
    """
    return [
        ClassEmbeddings(
            "A", prompts=E1, captions=np.stack([2 * E1, 5 * E2]), synonyms=np.stack([E1, E3])
        ),
        ClassEmbeddings(
            "B", prompts=W_B, captions=np.stack([E2, [0.0, 0.6, 0.8]]), synonyms=W_B[None]
        ),
    ]


# ----------------------------------------------------------------------------- hand values


def test_hand_example_all_features() -> None:
    feats = modelgpt_text_features(hand_example(), sigma=0.0)
    # y_true = [A, A, B, B], y_pred = [A, B, B, B]
    f1_a = 2 * 1 / (2 * 1 + 0 + 1)  # TP=1, FP=0, FN=1
    f1_b = 2 * 2 / (2 * 2 + 1 + 0)  # TP=2, FP=1, FN=0
    expected = {
        "text-f1": (f1_a + f1_b) / 2,
        "text-acc1": 3 / 4,
        "intraclass_sim": (0.6 + 0.6) / 2,
        # own class: A: (e1·e1 + e2·e1)/2, B: (e2·w_B + (0,.6,.8)·w_B)/2
        "inter_close": ((1 + 0) / 2 + (0.8 + 0.48) / 2) / 2,
        # other class: A: (e1·w_B + e2·w_B)/2, B: (e2·e1 + (0,.6,.8)·e1)/2
        "intra_close": ((0.6 + 0.8) / 2 + (0 + 0) / 2) / 2,
        # A: (e1·e1 + e3·e1)/2, B: w_B·w_B
        "superclass_metric": ((1 + 0) / 2 + 1) / 2,
    }
    assert list(feats) == list(FEATURE_COLUMNS)
    for name, value in expected.items():
        assert feats[name] == pytest.approx(value, abs=1e-12), name


def test_zero_shot_weights_normalise_then_average_then_renormalise() -> None:
    # normalise-first gives (e1 + e2)/2 -> (1, 1, 0)/√2; average-first would give (3, 1, 0)/√10
    w = zero_shot_weights([np.array([[3.0, 0, 0], [0, 1.0, 0]]), np.array([0, 0, 7.0])])
    np.testing.assert_allclose(w, [[1 / np.sqrt(2), 1 / np.sqrt(2), 0], [0, 0, 1]], atol=1e-12)


def test_intraclass_sim_clips_negative_nearest_class_at_zero() -> None:
    # LOVM zeroes the diagonal before the max: anti-parallel classes give 0, not -1
    weights = np.stack([E1, -E1])
    intraclass_sim, _, _ = granularity_features(weights, [E1[None], -E1[None]])
    assert intraclass_sim == 0.0


def test_intra_close_is_max_of_class_means_not_mean_of_caption_maxima() -> None:
    weights = np.eye(3)
    caps_0 = np.array([[0.6, 0.8, 0.0], [0.6, 0.0, 0.8]])  # to w2: (.8+0)/2, to w3: (0+.8)/2
    caps_1, caps_2 = E2[None], E3[None]  # nearest other class: similarity 0
    intraclass_sim, inter_close, intra_close = granularity_features(
        weights, [caps_0, caps_1, caps_2]
    )
    assert intra_close == pytest.approx(
        (max((0.8 + 0) / 2, (0 + 0.8) / 2) + 0 + 0) / 3
    )  # not (0.8+0+0)/3
    assert inter_close == pytest.approx(((0.6 + 0.6) / 2 + 1 + 1) / 3)
    assert intraclass_sim == 0.0


def test_superclass_metric_unweighted_over_classes() -> None:
    # class A has 3 synonyms, B has 1: each class counts once
    syn_a = np.stack([E1, E1, E2])
    assert superclass_metric(np.stack([E1, E2]), [syn_a, E2[None]]) == pytest.approx(
        ((1 + 1 + 0) / 3 + 1) / 2
    )


def test_argmax_tie_goes_to_lowest_class_index() -> None:
    # e3 is orthogonal to both weights: equal logits, np.argmax picks class 0 (LOVM uses np.argmax)
    f1, acc = text_classification(np.stack([E1, E2]), [E1[None], E3[None]])
    assert acc == 1 / 2
    assert f1 == pytest.approx((2 * 1 / (2 + 1 + 0) + 0) / 2)  # A: TP=1, FP=1; B: TP=0, FN=1


def test_accuracy_pools_captions_f1_averages_classes() -> None:
    # A: 3 captions all right; B: 1 caption, wrong -> acc 3/4, F1 averages A and B equally
    caps = [np.stack([E1, E1, E1]), E1[None]]
    f1, acc = text_classification(np.stack([E1, E2]), caps)
    assert acc == 3 / 4
    assert f1 == pytest.approx((2 * 3 / (2 * 3 + 1 + 0) + 0) / 2)


def test_macro_f1_matches_sklearn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        y_true = rng.integers(0, 5, size=30)
        y_pred = rng.integers(0, 6, size=30)  # label 5 never true: sklearn still averages it
        assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


# ----------------------------------------------------------------------------- noise


def random_classes(seed: int, n_classes: int = 5, dim: int = 8) -> list[ClassEmbeddings]:
    """Random classes with unequal template, caption and synonym counts."""
    rng = np.random.default_rng(seed)
    return [
        ClassEmbeddings(
            name=f"class{i}",
            prompts=rng.normal(size=(1 + i % 3, dim)),
            captions=rng.normal(size=(3 + i, dim)),
            synonyms=rng.normal(size=(1 + i % 2, dim)),
        )
        for i in range(n_classes)
    ]


def test_noise_is_seeded_and_only_affects_classification() -> None:
    classes = random_classes(0, n_classes=6, dim=4)
    a = modelgpt_text_features(classes, sigma=0.5, seed=1)
    assert a == modelgpt_text_features(classes, sigma=0.5, seed=1)
    clean = modelgpt_text_features(classes, sigma=0.0)
    others = [modelgpt_text_features(classes, sigma=0.5, seed=s) for s in range(2, 8)]
    assert any(o["text-acc1"] != a["text-acc1"] for o in others)  # the seed matters
    for name in ("intraclass_sim", "inter_close", "intra_close", "superclass_metric"):
        assert a[name] == clean[name]


def test_default_sigma_is_lovms() -> None:
    classes = random_classes(3)
    assert modelgpt_text_features(classes) == modelgpt_text_features(classes, sigma=0.1, seed=0)


# ----------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("sigma", [0.0, 0.1])
def test_class_order_does_not_matter(sigma: float) -> None:
    classes = random_classes(1)
    base = modelgpt_text_features(classes, sigma=sigma, seed=7)
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        permuted = modelgpt_text_features([classes[i] for i in perm], sigma=sigma, seed=7)
        for name in FEATURE_COLUMNS:
            assert permuted[name] == pytest.approx(base[name], abs=1e-12), name


def test_positive_rescaling_of_embeddings_does_not_matter() -> None:
    classes = random_classes(2)
    scaled = [
        ClassEmbeddings(c.name, 3.0 * c.prompts, 0.2 * c.captions, 11.0 * c.synonyms)
        for c in classes
    ]
    base = modelgpt_text_features(classes, sigma=0.1, seed=0)
    for name, value in modelgpt_text_features(scaled, sigma=0.1, seed=0).items():
        assert value == pytest.approx(base[name], abs=1e-12), name


def test_captions_equal_to_class_prompt_are_perfectly_classified() -> None:
    rng = np.random.default_rng(4)
    weights = zero_shot_weights([rng.normal(size=(2, 6)) for _ in range(4)])
    classes = [
        ClassEmbeddings(f"c{i}", prompts=w, captions=np.stack([w, w, w]), synonyms=w[None])
        for i, w in enumerate(weights)
    ]
    feats = modelgpt_text_features(classes, sigma=0.0)
    assert feats["text-acc1"] == 1.0
    assert feats["text-f1"] == 1.0
    assert feats["inter_close"] == pytest.approx(1.0)
    assert feats["superclass_metric"] == pytest.approx(1.0)
    # the nearest other class of each caption is the nearest other zero-shot weight
    sims = weights @ weights.T
    np.fill_diagonal(sims, -np.inf)
    assert feats["intra_close"] == pytest.approx(sims.max(axis=1).mean())


@pytest.mark.parametrize(
    "classes, message",
    [
        (lambda: hand_example()[:1], "at least 2 classes"),
        (
            lambda: [hand_example()[0], ClassEmbeddings("B", W_B, np.zeros((0, 3)), W_B[None])],
            "no captions",
        ),
        (
            lambda: [hand_example()[0], ClassEmbeddings("B", W_B, W_B[None], np.zeros((0, 3)))],
            "no synonyms",
        ),
        (
            lambda: [hand_example()[0], ClassEmbeddings("B", W_B, np.ones((2, 4)), W_B[None])],
            "shape",
        ),
    ],
)
def test_degenerate_inputs_raise(classes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        modelgpt_text_features(classes())


def test_numpy_part_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from benchmark.extract.text_features import modelgpt_text_features\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- torch part

CLASSNAMES = ["cat", "dog", "airplane"]
TEMPLATES = ["a photo of a {c}.", "a drawing of a {c}."]
CAPTIONS = {
    "cat": ["A tabby cat asleep on a sofa.", "A black cat on a fence at night."],
    "dog": ["A dog catching a frisbee in the park.", "A wet dog shaking off water."],
    "airplane": ["An airplane taking off at sunset.", "A jet airliner parked at the gate."],
}
SYNONYMS = {
    "cat": ["animal", "feline"],
    "dog": ["animal", "canine"],
    "airplane": ["vehicle", "aircraft"],
}


@pytest.fixture(scope="module")
def tiny_clip():
    """A random-init open_clip CLIP with a 1-layer, width-32 text tower and its tokenizer."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg={"layers": 1, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    )
    tokenizer = open_clip.SimpleTokenizer(context_length=16)
    return model, tokenizer


@pytest.mark.torch
def test_encode_texts_normalised_batch_invariant_and_restores_mode(tiny_clip) -> None:
    from benchmark.extract.text_features import encode_texts

    model, tokenizer = tiny_clip
    texts = [t for caps in CAPTIONS.values() for t in caps] + ["x"]
    model.train()
    one = encode_texts(model, tokenizer, texts, batch_size=1)
    assert model.training  # the caller's mode is restored
    model.eval()
    full = encode_texts(model, tokenizer, texts, batch_size=64)
    assert full.shape == (len(texts), 16) and full.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one, full, atol=1e-5)


@pytest.mark.torch
def test_text_features_for_dataset_end_to_end(tiny_clip) -> None:
    from benchmark.extract.text_features import encode_texts, text_features_for_dataset

    model, tokenizer = tiny_clip
    feats = text_features_for_dataset(
        model, tokenizer, CLASSNAMES, TEMPLATES, CAPTIONS, SYNONYMS, batch_size=4
    )
    assert list(feats) == list(FEATURE_COLUMNS)
    assert all(np.isfinite(v) for v in feats.values())
    assert 0.0 <= feats["text-acc1"] <= 1.0 and 0.0 <= feats["text-f1"] <= 1.0
    args = (model, tokenizer, CLASSNAMES, TEMPLATES, CAPTIONS, SYNONYMS)
    assert feats == text_features_for_dataset(*args, batch_size=4)  # deterministic
    # another batch size changes only float rounding (batched matmuls), never a prediction here
    for name, value in text_features_for_dataset(*args, batch_size=256).items():
        assert value == pytest.approx(feats[name], abs=1e-5), name

    # composition: the same numbers as encoding by hand and calling the numpy part
    def enc(texts: list[str]) -> np.ndarray:
        return encode_texts(model, tokenizer, texts)

    classes = [
        ClassEmbeddings(
            c, enc([t.replace("{c}", c) for t in TEMPLATES]), enc(CAPTIONS[c]), enc(SYNONYMS[c])
        )
        for c in CLASSNAMES
    ]
    by_hand = modelgpt_text_features(classes)
    for name in FEATURE_COLUMNS:
        assert feats[name] == pytest.approx(by_hand[name], abs=1e-5), name

    reordered = text_features_for_dataset(
        model, tokenizer, CLASSNAMES[::-1], TEMPLATES, CAPTIONS, SYNONYMS
    )
    for name in FEATURE_COLUMNS:
        assert reordered[name] == pytest.approx(feats[name], abs=1e-5), name


@pytest.mark.torch
def test_text_features_for_dataset_input_errors(tiny_clip, caplog) -> None:
    from benchmark.extract.text_features import text_features_for_dataset

    model, tokenizer = tiny_clip
    with pytest.raises(KeyError, match="airplane"):
        text_features_for_dataset(
            model, tokenizer, CLASSNAMES, TEMPLATES, {"cat": ["a"], "dog": ["b"]}, SYNONYMS
        )
    with pytest.raises(ValueError, match="placeholder"):
        text_features_for_dataset(
            model, tokenizer, CLASSNAMES, ["a photo of a {}."], CAPTIONS, SYNONYMS
        )
    with pytest.raises(ValueError, match="without synonyms"):
        text_features_for_dataset(
            model, tokenizer, CLASSNAMES, TEMPLATES, CAPTIONS, {**SYNONYMS, "dog": []}
        )
    # keys no class uses (e.g. clevr's blank "" class) are ignored, loudly
    with caplog.at_level("WARNING"):
        text_features_for_dataset(
            model, tokenizer, CLASSNAMES, TEMPLATES, {**CAPTIONS, "": ["x"]}, SYNONYMS
        )
    assert "match no class name" in caplog.text
