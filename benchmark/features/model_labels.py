r"""The ``model-labels`` feature kind: MLL's model labels, one pack per model (strict kind).

Written by ``python -m benchmark extract model-labels`` (:mod:`benchmark.extract.model_labels_cmd`)
on the semantic graph of :mod:`methods.mll.graph`. MLL's label of model ``m`` is, for every
image ``x`` of every node, the similarity of ``m``'s image embedding of ``x`` to ``m``'s text
embedding of every node caption (``S_m``, Eq. 2-4 of docs/methods/mll.md). That matrix is
74k images x 5.7k captions per model; the pack stores its two factors instead, from which
selection computes exactly the entries it needs (the images and captions of the selected
nodes, Eq. 5)::

    record "nodes"
      node_ids        <U9  [V]      graph node ids ("n01440764": pos + WordNet 3.0 offset)
      node_captions   u1   [B]      UTF-8 of the V captions joined by "\n"
      text            f16  [V, D]   m's unit text embeddings of the node captions
      node_offsets    i64  [V+1]    images of node v: node_images[node_offsets[v]:node_offsets[v+1]]
      node_images     i64  [K]      rows of the concatenated image embeddings below
      sample_offsets  i64  [S+1]    rows of sample dataset s: sample_offsets[s]:sample_offsets[s+1]
      meta: graph_digest, plan_digest, samples, images_per_node, seed
    record "<sample dataset>" (imagenet1k, imagenetv2, imagenet_sketch, imagenet-a, imagenet-r)
      image           f16  [n_s, D] m's unit image embeddings of the plan's images of s
      image_ids       <U   [n_s]    their ids (file paths relative to the dataset directory)
      meta: plan_digest, source, split

Size per model: ``2 * D * (n_images + V)`` bytes of embeddings (float16, as MLL computed them
under CUDA autocast) + ~0.5 MB of captions and ids: with the full sample datasets (74,139
images, 5,664 nodes) 82 MB at D = 512, 122 MB at 768, 163 MB at 1024, 204 MB at 1280.
Everything loaded at once for the 49-model zoo takes ~6 GB of memory.

What the harness hands a selector, per (model, target): one record whose arrays are the pack's
(``image`` = the sample records concatenated in plan order) and whose meta adds the target's
class captions:

    meta["node_captions"]   tuple[str]          the V node captions
    meta["class_names"]     tuple[str]          the target's classes (MLL's names when published)
    meta["class_captions"]  tuple[tuple[str]]   captions per class
    meta["caption_source"]  "mll-published" or "templates"
    meta["plan_digest"], meta["graph_digest"]

Target captions: MLL's published LLM captions (``LAMDASZ-ML/MLL``
``MLL/caption_gen/captions/<mll name>.json``, through the data layer) for its 17 datasets --
list items that hold several numbered captions are split into one caption each and the
"1. " numbering is dropped. The synthetic world's targets (``minizoo``) use their own class captions
(``datasets/minizoo/<id>/captions.json``, ``caption_source = "class-captions"``). Other targets
(e.g. ``svhn``) fall back to the dataset's prompt templates filled with each class name
(``caption_source = "templates"``), so MLL runs on every protocol; its README section says so.

Sample datasets: the ``nodes`` record names them (``meta["samples"]``): MLL's five for WordNet,
``mz_concepts`` for the minizoo world's concept graph (:mod:`benchmark.minizoo.concepts`).

Importing this module never imports torch.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from benchmark.features.store import FeaturePackError, Record

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.data.catalog import DatasetInfo
    from benchmark.features.kinds import LoadContext, Records

log = logging.getLogger(__name__)

KIND = "model-labels"
NODES = "nodes"
MLL_CAPTIONS = "LAMDASZ-ML__MLL/MLL/caption_gen/captions"
NODE_ARRAYS = ("node_ids", "node_captions", "text", "node_offsets", "node_images",
               "sample_offsets")
SAMPLE_ARRAYS = ("image", "image_ids")
_NUMBERING = re.compile(r"^\s*\d+\s*[.):]\s*")


# -- texts in arrays -------------------------------------------------------------------------
def encode_texts(texts: Sequence[str]) -> np.ndarray:
    """UTF-8 of ``texts`` joined by newlines, as a uint8 array (no pickle, ~4x smaller than <U)."""
    bad = [t for t in texts if "\n" in t]
    if bad:
        raise ValueError(f"texts may not contain newlines: {bad[0][:60]!r}")
    return np.frombuffer("\n".join(texts).encode("utf-8"), dtype=np.uint8).copy()


def decode_texts(array: np.ndarray) -> tuple[str, ...]:
    text = np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8")
    return tuple(text.split("\n")) if text else ()


# -- target captions -------------------------------------------------------------------------
def split_captions(items: Sequence[str]) -> list[str]:
    """One caption per line, numbering ("1. ") dropped, empty lines skipped."""
    out = []
    for item in items:
        for line in str(item).splitlines():
            line = _NUMBERING.sub("", line).strip()
            if line:
                out.append(line)
    return out


def template_captions(info: DatasetInfo) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Fallback captions: the dataset's prompt templates filled with each class name."""
    names = tuple(info.classnames)
    return names, tuple(tuple(info.prompts(c)) for c in names)


def target_captions(data, info: DatasetInfo) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], str]:
    """``(class names, captions per class, source)`` of a target (module docstring)."""
    from benchmark.data.catalog import UnknownDatasetError, entry
    from benchmark.data.upstream import declared_files

    try:
        mll = entry(info.id).get("mll")
    except UnknownDatasetError:
        mll = None
    key = f"{MLL_CAPTIONS}/{mll}.json"
    if mll and data is not None and key in declared_files():
        table = json.loads(data.read_text(key))
        names = tuple(str(c) for c in table)
        captions = tuple(tuple(split_captions(table[c])) for c in table)
        empty = [n for n, c in zip(names, captions, strict=True) if not c]
        if empty:
            raise FeaturePackError(f"{key}: no caption for classes {empty[:3]}")
        return names, captions, "mll-published"
    local = _local_captions(info)
    if local is not None:
        return tuple(info.classnames), local, "class-captions"
    names, captions = template_captions(info)
    return names, captions, "templates"


def _local_captions(info: DatasetInfo) -> tuple[tuple[str, ...], ...] | None:
    """The dataset's own class captions when the project writes them (``captions =
    "local:..."`` in the registry: the synthetic world's, which play the LLM captions' part);
    SWAB's published captions are not used (MLL never read them)."""
    from benchmark.data.catalog import LOCAL_PREFIX, UnknownDatasetError, entry, read_text

    try:
        key = entry(info.id).get("captions")
    except UnknownDatasetError:
        return None
    if not (isinstance(key, str) and key.startswith(LOCAL_PREFIX)):
        return None
    table = json.loads(read_text(None, key))
    out = tuple(tuple(split_captions(table.get(c, ()))) for c in info.classnames)
    empty = [c for c, caps in zip(info.classnames, out, strict=True) if not caps]
    if empty:
        raise FeaturePackError(f"{key}: no caption for classes {empty[:3]}")
    return out


# -- records ---------------------------------------------------------------------------------
def assemble(nodes: Record, samples: Sequence[Record]) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and meta of one model's labels from its "nodes" and sample records."""
    where = f"{KIND} pack of {nodes.model}"
    missing = [a for a in NODE_ARRAYS if a not in nodes.arrays]
    missing += [f"{r.dataset}:{a}" for r in samples for a in SAMPLE_ARRAYS if a not in r.arrays]
    if missing:
        raise FeaturePackError(f"{where} lacks {missing}; re-extract it")
    digest = nodes.meta.get("plan_digest")
    stale = [r.dataset for r in samples if r.meta.get("plan_digest") != digest]
    if stale:
        raise FeaturePackError(f"{where}: records {stale} were made for another image plan; "
                               f"delete the pack and re-extract it")
    image = np.concatenate([np.asarray(r["image"]) for r in samples], axis=0)
    arrays = {a: nodes[a] for a in NODE_ARRAYS if a != "node_captions"}
    arrays["image"] = image
    check_arrays(arrays, where)
    meta = {
        "node_captions": decode_texts(nodes["node_captions"]),
        "plan_digest": digest,
        "graph_digest": nodes.meta.get("graph_digest"),
        "samples": tuple(nodes.meta.get("samples", ())),
    }
    if len(meta["node_captions"]) != len(arrays["node_ids"]):
        raise FeaturePackError(f"{where}: {len(meta['node_captions'])} captions for "
                               f"{len(arrays['node_ids'])} nodes")
    return arrays, meta


def check_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """Shapes and index ranges agree (a pack that fails is an error, never a silent skip)."""
    v = len(arrays["node_ids"])
    text, image = arrays["text"], arrays["image"]
    offsets, rows = arrays["node_offsets"], arrays["node_images"]
    problems = []
    if text.ndim != 2 or text.shape[0] != v:
        problems.append(f"text {text.shape} for {v} nodes")
    if image.ndim != 2 or image.shape[1:] != text.shape[1:]:
        problems.append(f"image {image.shape} vs text {text.shape}")
    if offsets.shape != (v + 1,) or offsets[0] != 0 or offsets[-1] != len(rows) or np.any(
            np.diff(offsets) < 0):
        problems.append("node_offsets do not partition node_images")
    if len(rows) and (rows.min() < 0 or rows.max() >= len(image)):
        problems.append("node_images index rows outside the image embeddings")
    if arrays["sample_offsets"][-1] != len(image):
        problems.append(f"sample_offsets end at {arrays['sample_offsets'][-1]}, "
                        f"{len(image)} images")
    if problems:
        raise FeaturePackError(f"{where}: {'; '.join(problems)}")


def load_model_labels(ctx: LoadContext, model: str) -> tuple[dict, dict] | None:
    """One model's assembled labels, or None when its pack is absent or incomplete."""
    from benchmark.features.kinds import load_packs

    nodes = load_packs(KIND, ctx, [model], [NODES]).get((model, NODES))
    if nodes is None:
        return None
    samples = list(nodes.meta.get("samples", ()))  # the concept source's (WordNet: MLL's 5)
    recs = load_packs(KIND, ctx, [model], samples)
    absent = [s for s in samples if (model, s) not in recs]
    if absent:
        log.warning("%s pack of %s is incomplete (no %s); the extract command resumes it",
                    KIND, model, ", ".join(absent))
        return None
    return assemble(nodes, [recs[(model, s)] for s in samples])


def load(ctx: LoadContext, models: list[str], datasets: list[str]) -> Records:
    """Records for ``models x datasets``: each model's labels + each target's captions."""
    from benchmark.data.catalog import Catalog

    catalog = Catalog(ctx.data)
    targets = {}
    for d in datasets:
        names, captions, source = target_captions(ctx.data, catalog.info(d))
        targets[d] = {"class_names": names, "class_captions": captions, "caption_source": source}
    out: Records = {}
    for model in models:
        labels = load_model_labels(ctx, model)
        if labels is None:
            continue
        arrays, meta = labels
        for d in datasets:  # the same arrays for every target: no copy
            out[(model, d)] = Record.make(KIND, model, d, arrays, {**meta, **targets[d]})
    return out


# -- mock (conformance check) ----------------------------------------------------------------
MOCK_WORDS = ("cat", "dog", "car", "tree", "boat", "house", "bird", "plane", "apple", "chair",
              "fish", "flower")


def mock_labels(rng: np.random.Generator, dim: int, n_nodes: int = len(MOCK_WORDS),
                images_per_node: int = 4) -> tuple[dict[str, np.ndarray], dict]:
    """Labels of the real structure on a small random graph: node ``i`` holds images whose
    embeddings lean towards its caption embedding (a model that 'knows' some nodes)."""
    words = [MOCK_WORDS[i % len(MOCK_WORDS)] + ("" if i < len(MOCK_WORDS) else f" {i}")
             for i in range(n_nodes)]
    captions = tuple(f"{w} which is a mock concept number {i}" for i, w in enumerate(words))
    text = rng.normal(size=(n_nodes, dim))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    skill = rng.uniform(0.2, 2.0)
    image = np.repeat(text, images_per_node, axis=0) * skill + rng.normal(
        size=(n_nodes * images_per_node, dim))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    arrays = {
        "node_ids": np.asarray([f"n{i:08d}" for i in range(n_nodes)]),
        "text": text.astype(np.float16),
        "image": image.astype(np.float16),
        "node_offsets": np.arange(0, n_nodes * images_per_node + 1, images_per_node,
                                  dtype=np.int64),
        "node_images": np.arange(n_nodes * images_per_node, dtype=np.int64),
        "sample_offsets": np.asarray([0, n_nodes * images_per_node], dtype=np.int64),
    }
    meta = {"node_captions": captions, "plan_digest": "mock", "graph_digest": "mock",
            "samples": ("mock",)}
    return arrays, meta


def mock(models: list[str], datasets: list[str], rng: np.random.Generator,
         infos=None) -> Records:
    """Random labels for ``models`` on one mock graph; template captions of ``infos``' datasets
    (default: the check's mock universe, :func:`benchmark.core.check.mock_universe`), so
    selection runs for real."""
    from benchmark.data.catalog import DatasetInfo

    if infos is None:
        from benchmark.core.check import mock_universe

        _, infos = mock_universe()
    out: Records = {}
    labels = {m: mock_labels(rng, dim=6 + 2 * (j % 3)) for j, m in enumerate(models)}
    for d in datasets:
        info = infos.get(d) or DatasetInfo(d, d, "photo", "classification",
                                           ("cat", "dog"), ("a photo of a {c}.",))
        names, captions = template_captions(info)
        extra = {"class_names": names, "class_captions": captions, "caption_source": "templates"}
        for m, (arrays, meta) in labels.items():
            out[(m, d)] = Record.make(KIND, m, d, arrays, {**meta, **extra, "source": "mock"})
    return out


__all__ = ["KIND", "MLL_CAPTIONS", "NODES", "NODE_ARRAYS", "SAMPLE_ARRAYS", "assemble",
           "check_arrays", "decode_texts", "encode_texts", "load", "load_model_labels", "mock",
           "mock_labels", "split_captions", "target_captions", "template_captions"]
