"""Zero-shot top-1 accuracy under the CLIP_benchmark protocol (the published tables' protocol).

What CLIP_benchmark's ``clip_benchmark.metrics.zeroshot_classification`` computes, and what
LOVM's and SWAB's ``eval_table.csv`` hold:

1. classifier (``zero_shot_classifier``): for class ``c`` with name ``n_c``, embed every
   template with the name filled in, ``t_{c,k} = f_text(T_k(n_c))``; normalise each, average
   over the templates, normalise again: ``w_c = normalize(mean_k normalize(t_{c,k}))``;
2. logits (``run_classification``): ``100 * normalize(f_image(x)) . w_c`` for every test image
   ``x`` (preprocessed with the model's own eval transform);
3. top-1 (``accuracy``): the fraction of test images whose largest logit is their class
   (``argmax``; the scale 100 changes no argmax).

Templates and class names are LOVM's (``datasets/registry.toml``), the split is ``test``.

Why not import ``clip_benchmark`` itself: its wheel pulls ``pycocoevalcap`` (a 104 MB wheel),
``pycocotools`` and ``webdataset`` for these ~40 lines; installing it also switches
:mod:`benchmark.extract.loaders` to clip_benchmark's dataset builders wherever it is importable, which
would change what the loader tests exercise in CI. Its ``accuracy`` also fails under numpy >=
2.3 (``float()`` of a one-element array), its ``zero_shot_classifier`` formats templates with
``str.format`` and always shows a progress bar per class. So the same three
steps are here, in float32 (CLIP_benchmark defaults to ``torch.autocast``: on GPU that is
float16, which can flip near-ties; float32 is the reference it approximates), and
``tests/extract/test_ground_truth_cmd.py`` checks them against clip_benchmark's own functions
whenever it is importable. The text embedding and the per-class average reuse
:func:`benchmark.extract.text_features.encode_texts` and
:func:`~benchmark.extract.text_features.zero_shot_weights` (class-stats and text-features use
the same classifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def zero_shot_classifier(model: Any, tokenizer: Any, classnames: Sequence[str],
                         templates: Sequence[str], batch_size: int = 256,
                         device: str | None = None) -> np.ndarray:
    """``(C, D)`` float32 unit class vectors ``w_c`` (step 1)."""
    from benchmark.extract.text_features import encode_texts, zero_shot_weights

    t = len(templates)
    if not t or not classnames:
        raise ValueError("zero-shot classification needs class names and templates")
    prompts = [tpl.replace("{c}", c) for c in classnames for tpl in templates]
    emb = encode_texts(model, tokenizer, prompts, batch_size, device)
    weights = zero_shot_weights([emb[i * t:(i + 1) * t] for i in range(len(classnames))])
    return weights.astype(np.float32)


def logits(image_features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``100 * normalize(f_image(x)) . w_c``: ``[N, C]`` float64 logits (step 2)."""
    return 100.0 * np.asarray(image_features, np.float64) @ np.asarray(weights, np.float64).T


def predict(image_features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Predicted class of each unit image embedding ``[N, D]`` (steps 2-3)."""
    return np.argmax(logits(image_features, weights), axis=1)


def compact_logits(values: np.ndarray) -> np.ndarray:
    """``[N, C]`` logits as float16, each row shifted so that its largest entry is 0.

    Softmax and argmax are invariant to the shift; after it the classes that matter (near the
    top, values near 0) keep float16's fine resolution near zero (~1e-5 at |v| < 0.03) instead
    of its 0.06 steps around 100; far classes (e.g. -50, step 0.03) carry no softmax mass.
    Nothing overflows: logits of unit vectors lie in [-200, 0] after the shift.
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 2 or v.shape[1] == 0:
        raise ValueError(f"logits must be [N, C] with C >= 1, got shape {v.shape}")
    return (v - v.max(axis=1, keepdims=True)).astype(np.float16)


def prediction_arrays(labels: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    """The per-image part of a ground-truth record: ``labels`` and ``pred`` (int32 ``[N]``:
    true and predicted class, the prediction from the float64 logits) and ``logits``
    (:func:`compact_logits`, float16 ``[N, C]``)."""
    v = np.asarray(values, np.float64)
    return {"labels": np.asarray(labels, dtype=np.int32),
            "pred": np.argmax(v, axis=1).astype(np.int32),
            "logits": compact_logits(v)}


def accuracy_arrays(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """The record: ``acc1`` (0-d), ``n_images`` (0-d), per-class ``class_count`` and
    ``class_correct`` (so per-class or balanced accuracy can be derived later)."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("no test images")
    correct = (p == y)
    return {
        "acc1": np.asarray(float(correct.mean()), dtype=np.float64),
        "n_images": np.asarray(len(y), dtype=np.int64),
        "class_count": np.bincount(y, minlength=n_classes).astype(np.int64),
        "class_correct": np.bincount(y, weights=correct, minlength=n_classes).astype(np.int64),
    }
