"""LOVM's ModelGPT text features ("C" and "G" groups) for any open_clip model.

Reproduces the six text-only columns of LOVM's ``modelGPT/eval_table_features.csv``
(``text-f1``, ``text-acc1``, ``intraclass_sim``, ``inter_close``, ``intra_close``,
``superclass_metric``); ``IN-score`` is the model's ImageNet accuracy and is not computed here.
Reference: Zohar et al., "LOVM: Language-Only Vision Model Selection", NeurIPS 2023 D&B,
repository ``orrzohar/LOVM`` at commit 348e2a4 (files cited below, read not copied);
SWAB (``YCaigogogo/SWAB``, ``pred_ptm_rank.py``) repeats the same functions (LOVM's
``calc_data_metrics`` still holds a debugger breakpoint; SWAB's copy is otherwise identical).

Notation
--------
Classes ``i = 1..C`` (``C >= 2``), model text encoder ``f``, ``x̂ = x / ||x||``.

* zero-shot weight (``create_models.py::calculate_classifier_weights``)::

      w_i = m_i / ||m_i||,   m_i = (1/T) Σ_t f̂(template_t with "{c}" -> name_i)

  (each template embedding is normalised, then averaged, then renormalised).
* captions ``ĉ_{i,n}``, ``n = 1..N_i`` (``encode_dataset.py::generate_dataset``) and
  synonyms ``ŝ_{i,k}``, ``k = 1..S_i`` (``encode_syn_dataset.py::generate_dataset``):
  L2-normalised text embeddings of the LLM-generated texts of class ``i``.

Features
--------
``text-acc1``, ``text-f1`` (``utils.py::eval_on_dataset``, called with
``--text_dataset_sigma 0.1`` by ``calc_text_features.py``). Only the *captions* are classified
(the synonyms are used only by ``superclass_metric``)::

      ŷ_{i,n} = argmax_j (ĉ_{i,n} + σ ε_{i,n}) · w_j,   ε_{i,n} ~ N(0, I_D),  σ = 0.1
      text-acc1 = (1/N) Σ_i Σ_n 1[ŷ_{i,n} = i],           N = Σ_i N_i   (pooled over captions)
      text-f1   = (1/|L|) Σ_{l∈L} 2 TP_l / (2 TP_l + FP_l + FN_l),   L = labels in y ∪ ŷ

  (sklearn ``f1_score(average="macro")``; ties in the argmax go to the lowest class index,
  as ``np.argmax`` does). ``σ`` is a per-coordinate std, so ``||σ ε|| ≈ σ √D`` (≈ 2.3 for
  D = 512): the noise outweighs the unit caption and its weight grows with the embedding
  width; that is LOVM's definition and is kept. The noisy query is not renormalised; the
  argmax does not depend on its norm.

``intraclass_sim`` (``utils.py::calc_data_metrics``, returned as ``max_intraclass``)::

      intraclass_sim = (1/C) Σ_i max(0, max_{j≠i} w_i · w_j)

  LOVM zeroes the diagonal of ``WᵀW`` and then takes the column maximum, so a class whose
  nearest other class has negative similarity contributes 0, not that similarity.

``inter_close`` (``calc_data_metrics``; despite the name, closeness to the *own* class)::

      inter_close = (1/C) Σ_i (1/N_i) Σ_n ĉ_{i,n} · w_i

``intra_close`` (``calc_data_metrics``; closeness to the nearest *other* class, a max of
per-class means, not a mean of per-caption maxima)::

      intra_close = (1/C) Σ_i max_{j≠i} (1/N_i) Σ_n ĉ_{i,n} · w_j

``superclass_metric`` (``utils.py::calculate_synonym_simularity``)::

      superclass_metric = (1/C) Σ_i (1/S_i) Σ_k ŝ_{i,k} · w_i

All class averages are unweighted (each class counts once, whatever ``N_i``, ``S_i``).
The granularity features use the noise-free captions.

Deviations from LOVM (all deliberate)
-------------------------------------
1. Noise stream. LOVM draws ``ε`` from torch's global RNG in class order; here it comes
   from ``np.random.default_rng(seed)``, drawn class by class in *sorted class-name order*
   (stable for duplicate names), so the features do not depend on the order the classes are
   listed in. ``text-acc1``/``text-f1`` therefore match LOVM in distribution, not bit for bit;
   ``sigma=0`` gives the noise-free classification.
2. Arithmetic in float64 (LOVM: float32 torch); differences are ~1e-7.
3. Alignment by class name. LOVM pairs the i-th caption/synonym list (JSON key order) with
   the i-th zero-shot column; :func:`text_features_for_dataset` looks texts up by class name.
   Identical whenever the JSON key order equals the class-name order, which holds for every
   SWAB caption/synonym file except two: ``clevr_closest_object_distance`` (its files carry a
   blank ``""`` class, as LOVM's class list did at 348e2a4 but no longer does at 418cdcd;
   pass the 6-name list to reproduce LOVM) and the ``imagenet1k`` synonyms (keyed by CLIP's
   ``projectile``/``sunglass`` where LOVM's class list at 418cdcd repeats ``missile``/
   ``sunglasses``). Unused keys and duplicate class names are logged as warnings.
4. Degenerate inputs raise (fewer than 2 classes, a class without captions or synonyms, a
   class name missing from the caption/synonym files, a template without ``{c}``) where LOVM
   would return NaN, crash, or silently give every class the same prompt.
5. Synonym texts are encoded as given (SWAB's files: ``{class: [synonym, ...]}``, as SWAB's
   ``calc_ptm_stats_in_hist_task.py::calculate_syn_text_feat`` encodes them). LOVM's
   ``encode_syn_dataset.py`` expects ``{class: {key: [text, ...]}}`` and concatenates all lists
   of a class; its own synonym JSONs are not published, so whether its texts were bare
   synonyms or templated ones cannot be checked.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is only needed by the encoding half of this module
    import torch

logger = logging.getLogger(__name__)

#: Column names and order of LOVM's ``modelGPT/eval_table_features.csv``.
FEATURE_COLUMNS: tuple[str, ...] = (
    "text-f1",
    "text-acc1",
    "intraclass_sim",
    "inter_close",
    "intra_close",
    "superclass_metric",
)

#: ``--text_dataset_sigma`` default of LOVM's ``calc_text_features.py`` (SWAB uses 0.15).
LOVM_NOISE_SIGMA: float = 0.1

#: Placeholder LOVM's templates use for the class name (``LOVM/templates/*.txt``).
CLASS_PLACEHOLDER = "{c}"


# --------------------------------------------------------------------------- numpy part


@dataclass(frozen=True)
class ClassEmbeddings:
    """Text embeddings of one class (rows are embeddings, any scale; normalised on use).

    ``prompts`` is ``(T, D)``, one row per template, or ``(D,)`` for an already averaged
    zero-shot weight; ``captions`` is ``(N, D)``; ``synonyms`` is ``(S, D)``.
    """

    name: str
    prompts: np.ndarray
    captions: np.ndarray
    synonyms: np.ndarray


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (float64); a zero row is an error."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("cannot normalise a zero embedding")
    return x / norms


def zero_shot_weights(prompt_embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """``(C, D)`` zero-shot weights: per class, normalise, average templates, renormalise."""
    return np.stack(
        [l2_normalize(l2_normalize(np.atleast_2d(p)).mean(axis=0)) for p in prompt_embeddings]
    )


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the labels present in ``y_true`` or ``y_pred`` (sklearn's convention)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = np.union1d(y_true, y_pred)
    scores = []
    for label in labels:
        tp = np.sum((y_true == label) & (y_pred == label))
        fp = np.sum((y_true != label) & (y_pred == label))
        fn = np.sum((y_true == label) & (y_pred != label))
        # a label in the union has tp + fp + fn > 0, so the denominator is never 0
        scores.append(2.0 * tp / (2.0 * tp + fp + fn))
    return float(np.mean(scores))


def caption_noise(
    names: Sequence[str], counts: Sequence[int], dim: int, sigma: float, seed: int
) -> list[np.ndarray]:
    """Per-class ``(N_i, D)`` Gaussian noise ``σ ε``, drawn in sorted class-name order.

    Drawing in name order rather than list order keeps the features invariant to how the
    classes are ordered (deviation 1 in the module docstring).
    """
    rng = np.random.default_rng(seed)
    noise: list[np.ndarray] = [np.zeros((0, dim))] * len(names)
    for i in sorted(range(len(names)), key=lambda k: names[k]):
        noise[i] = sigma * rng.standard_normal((counts[i], dim))
    return noise


def text_classification(
    weights: np.ndarray, captions: Sequence[np.ndarray], noise: Sequence[np.ndarray] | None = None
) -> tuple[float, float]:
    """``(text-f1, text-acc1)``: classify the (noisy) normalised captions with ``weights``."""
    weights = l2_normalize(weights)
    y_true, y_pred = [], []
    for i, caps in enumerate(captions):
        queries = l2_normalize(caps)
        if noise is not None:
            queries = queries + noise[i]
        y_pred.append(np.argmax(queries @ weights.T, axis=1))
        y_true.append(np.full(len(queries), i))
    yt, yp = np.concatenate(y_true), np.concatenate(y_pred)
    return macro_f1(yt, yp), float(np.mean(yt == yp))


def granularity_features(
    weights: np.ndarray, captions: Sequence[np.ndarray]
) -> tuple[float, float, float]:
    """``(intraclass_sim, inter_close, intra_close)`` as in LOVM's ``calc_data_metrics``."""
    weights = l2_normalize(weights)
    if len(captions) != len(weights) or len(weights) < 2:
        raise ValueError(
            f"need >= 2 classes and one caption block per class, got {len(weights)}/{len(captions)}"
        )
    own, nearest_other = [], []
    for i, caps in enumerate(captions):
        mean_sim = (l2_normalize(caps) @ weights.T).mean(axis=0)  # (C,) mean over captions
        own.append(mean_sim[i])
        nearest_other.append(np.delete(mean_sim, i).max())
    sims = weights @ weights.T
    # zeroing (not excluding) the diagonal is LOVM's choice: it clips negative maxima to 0
    np.fill_diagonal(sims, 0.0)
    intraclass_sim = float(sims.max(axis=0).mean())
    return intraclass_sim, float(np.mean(own)), float(np.mean(nearest_other))


def superclass_metric(weights: np.ndarray, synonyms: Sequence[np.ndarray]) -> float:
    """Mean over classes of the mean similarity of the class's synonyms to its weight."""
    weights = l2_normalize(weights)
    return float(
        np.mean([(l2_normalize(syn) @ weights[i]).mean() for i, syn in enumerate(synonyms)])
    )


def _validate(classes: Sequence[ClassEmbeddings]) -> int:
    """Check shapes and non-emptiness; return the embedding dimension."""
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes, got {len(classes)}")
    dim = np.atleast_2d(classes[0].prompts).shape[1]
    for c in classes:
        for field in ("prompts", "captions", "synonyms"):
            arr = np.atleast_2d(getattr(c, field))
            if arr.ndim != 2 or arr.shape[1] != dim:
                raise ValueError(
                    f"class {c.name!r}: {field} has shape {arr.shape}, expected (n, {dim})"
                )
            if arr.shape[0] == 0:
                raise ValueError(f"class {c.name!r} has no {field}")
    return dim


def modelgpt_text_features(
    classes: Sequence[ClassEmbeddings], *, sigma: float = LOVM_NOISE_SIGMA, seed: int = 0
) -> dict[str, float]:
    """LOVM's six text features from per-class embeddings, keyed by :data:`FEATURE_COLUMNS`.

    ``sigma`` is the std of the Gaussian noise added to the captions before classifying them
    (LOVM: 0.1); ``seed`` seeds that noise (see the module docstring).
    """
    dim = _validate(classes)
    weights = zero_shot_weights([c.prompts for c in classes])
    captions = [np.atleast_2d(c.captions) for c in classes]
    noise = caption_noise([c.name for c in classes], [len(x) for x in captions], dim, sigma, seed)
    f1, acc = text_classification(weights, captions, noise)
    intraclass_sim, inter_close, intra_close = granularity_features(weights, captions)
    superclass = superclass_metric(weights, [np.atleast_2d(c.synonyms) for c in classes])
    values = {
        "text-f1": f1,
        "text-acc1": acc,
        "intraclass_sim": intraclass_sim,
        "inter_close": inter_close,
        "intra_close": intra_close,
        "superclass_metric": superclass,
    }
    return {name: values[name] for name in FEATURE_COLUMNS}


# --------------------------------------------------------------------------- torch part


def _model_device(model: Any) -> torch.device:
    """Device of the model's first parameter (CPU for a parameterless model)."""
    import torch

    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def encode_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """``(len(texts), D)`` float32 array of L2-normalised ``model.encode_text`` embeddings.

    The model is run in eval mode without gradients (its training flag is restored after);
    ``device`` defaults to the model's device, the model itself is not moved.
    """
    import torch

    if len(texts) == 0:
        raise ValueError("no texts to encode")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                tokens = tokenizer(list(texts[start : start + batch_size])).to(device)
                feats = model.encode_text(tokens).float()
                chunks.append((feats / feats.norm(dim=-1, keepdim=True)).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _lookup(
    texts: Mapping[str, Sequence[str]], classnames: Sequence[str], what: str
) -> list[list[str]]:
    """Texts of each class by name; warns about keys no class uses."""
    missing = [c for c in dict.fromkeys(classnames) if c not in texts]
    if missing:
        raise KeyError(f"no {what} for classes {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    known = set(classnames)
    unused = [k for k in texts if k not in known]
    if unused:
        logger.warning(
            "%d %s keys match no class name and are ignored: %s", len(unused), what, unused[:5]
        )
    return [list(texts[c]) for c in classnames]


def text_features_for_dataset(
    model: Any,
    tokenizer: Any,
    classnames: Sequence[str],
    templates: Sequence[str],
    captions: Mapping[str, Sequence[str]],
    synonyms: Mapping[str, Sequence[str]],
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    sigma: float = LOVM_NOISE_SIGMA,
    seed: int = 0,
) -> dict[str, float]:
    """LOVM's six text features of ``model`` on one dataset.

    ``templates`` use LOVM's ``{c}`` placeholder; ``captions``/``synonyms`` map each class
    name to its LLM texts (SWAB's ``captions_dataset``/``syn_dataset`` JSON layout).
    """
    bad = [t for t in templates if CLASS_PLACEHOLDER not in t]
    if not templates or bad:
        raise ValueError(
            f"every template needs the {CLASS_PLACEHOLDER} placeholder; offending: {bad[:3]}"
        )
    if len(set(classnames)) != len(classnames):
        dupes = sorted(c for c, k in Counter(classnames).items() if k > 1)
        logger.warning("duplicate class names share prompts, captions and synonyms: %s", dupes[:5])
    caption_lists = _lookup(captions, classnames, "caption")
    synonym_lists = _lookup(synonyms, classnames, "synonym")
    prompt_lists = [[t.replace(CLASS_PLACEHOLDER, c) for t in templates] for c in classnames]
    for what, lists in (("captions", caption_lists), ("synonyms", synonym_lists)):
        empty = [c for c, texts in zip(classnames, lists, strict=True) if not texts]
        if empty:
            raise ValueError(f"classes without {what}: {empty[:5]}")

    # one flat pass through the encoder, then split back per class and per kind
    groups = prompt_lists + caption_lists + synonym_lists
    flat = [t for group in groups for t in group]
    logger.info("encoding %d texts for %d classes", len(flat), len(classnames))
    emb = encode_texts(model, tokenizer, flat, batch_size=batch_size, device=device)
    bounds = np.cumsum([0] + [len(g) for g in groups])
    parts = [emb[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    n = len(classnames)
    classes = [
        ClassEmbeddings(name=c, prompts=parts[i], captions=parts[n + i], synonyms=parts[2 * n + i])
        for i, c in enumerate(classnames)
    ]
    return modelgpt_text_features(classes, sigma=sigma, seed=seed)
