"""``python -m benchmark extract model-labels``: MLL's model labels, one feature pack per model.

For every model (``--models``, default the ``mll`` protocol's zoo): the graph of the concept
source (``--concepts``, default the protocol's: WordNet for the published zoos, built once and
cached by :mod:`methods.mll.graph`; the synthetic world's vocabulary for ``minizoo``,
:mod:`benchmark.minizoo.concepts`, whose node images the world's renderer draws), the node
images of
:func:`methods.mll.graph.plan_node_images` (``--images-per-node``, MLL's 75, ``--seed``) drawn
from the sample datasets (``--samples``, default MLL's five: ImageNet-1k val, ImageNet-V2,
ImageNet-Sketch, ImageNet-A, ImageNet-R), and the model's own eval transform, tokenizer and
towers give the records of :mod:`benchmark.features.model_labels`: the unit text embeddings of the
node captions (record ``nodes``, written first) and the unit image embeddings of the plan's
images, one record per sample dataset. Records are written atomically one by one, so an
interrupted run resumes at the first missing record; a model is loaded only when one of its
records is missing. The extractor's parameters (``images_per_node``, ``seed``, ``samples``,
``random_init``, the graph's and the image plan's sha256) are in the manifest: a pack made on
another graph, plan or parameters is refused before any work. Planning, resume, shards and
backends are the shared driver's (:mod:`benchmark.extract.units`); a unit is one record.

Where the images come from (WordNet; the world's source renders its own)
------------------------------------------------------------------------
- ``--images-dir DIR``: image folders ``DIR/<sample>/test/<class>/<image>`` whose class folders
  are ImageNet wnids (``n01440764``; ImageNet-V2's ``0``..``999`` also work: they index the
  sorted 1k wnids, as in its release). Tests and local copies use it.
- otherwise ``imagenet1k`` through its registry loader (clip_benchmark, else torchvision's
  ImageNet val) under ``--data-dir``; the variants through ``clip_benchmark`` (``imagenetv2``,
  ``imagenet_sketch``, ``imagenet-a``, ``imagenet-r``) when installed, else as image folders
  ``<data-dir>/<sample>/test/<wnid>/`` (the releases of ImageNet-A/-R/-Sketch unpack to wnid
  folders). A sample dataset that cannot be opened stops the command before any model loads,
  with one line naming what to install or where to put the files.

An image's class is read from its path (the wnid folder, or V2's index folder); sources that
hide paths are read once for their labels.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from benchmark.extract import units

log = logging.getLogger(__name__)

KIND = "model-labels"
EXTRACTOR_VERSION = "1"
DEFAULT_PROTOCOL = "mll"
DEFAULT_BATCH = 32
#: sample dataset -> clip_benchmark's builder name
CLIP_BENCHMARK_NAMES = {"imagenetv2": "imagenetv2", "imagenet_sketch": "imagenet_sketch",
                        "imagenet-a": "imagenet-a", "imagenet-r": "imagenet-r"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from methods.mll.graph import CONCEPT_SOURCES, DEFAULT_IMAGES_PER_NODE, SAMPLE_DATASETS

    units.add_common_arguments(p, default_protocol=DEFAULT_PROTOCOL, datasets_help=None)
    p.add_argument("--concepts", choices=list(CONCEPT_SOURCES),
                   help="concept graph and node images (default: the protocol's; wordnet "
                   "except minizoo, whose graph is its world's vocabulary)")
    p.add_argument("--samples", help="comma-separated sample datasets (default: the concept "
                   f"source's; WordNet: {','.join(SAMPLE_DATASETS)})")
    p.add_argument("--images-per-node", type=int, default=DEFAULT_IMAGES_PER_NODE,
                   help=f"images per graph node (default {DEFAULT_IMAGES_PER_NODE}, MLL's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the node images (default 0)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                   help=f"images or captions per forward pass (default {DEFAULT_BATCH})")


def concepts_name(args: argparse.Namespace) -> str:
    """``--concepts``, else the protocol's concept source (``Protocol.concepts``)."""
    from methods.mll.graph import DEFAULT_CONCEPTS

    if getattr(args, "concepts", None):
        return args.concepts
    protocol = units.protocol_of(args, DEFAULT_PROTOCOL)
    return getattr(protocol, "concepts", None) or DEFAULT_CONCEPTS


def source_of(args: argparse.Namespace, models=()):
    from methods.mll.graph import concept_source

    return concept_source(concepts_name(args), models or units.csv(args.models) or ())


def select_samples(args: argparse.Namespace, source=None) -> list[str]:
    from benchmark.data.catalog import unknown_message
    from benchmark.errors import UsageError

    known = list((source or source_of(args)).samples)
    samples = units.csv(args.samples) or known
    for s in samples:
        if s not in known:
            raise UsageError(unknown_message("sample dataset", s, known))
    return [s for s in known if s in samples]  # canonical order


# -- sample datasets -------------------------------------------------------------------------
def open_sample(sample: str, args: argparse.Namespace, source=None):
    """The images of a sample dataset (module docstring), or :class:`LoaderError`."""
    from benchmark.extract import loaders

    source = source or source_of(args)
    if source.open_images is not None:
        # a generated source (minizoo's world) writes its images under --images-dir, else
        # --data-dir (a world seed's own root), else the default data root
        return source.open_images(sample, args.images_per_node,
                                  args.images_dir or units.data_dir_of(args))
    if args.images_dir:
        return loaders.open_folder(sample, Path(args.images_dir) / sample / "test", "test")
    if sample == "imagenet1k":
        return loaders.open_dataset("imagenet1k", args.data_dir, split="test",
                                    download=args.download)
    root = Path(args.data_dir).expanduser() if args.data_dir else loaders.default_data_root()
    data_dir = root / sample
    if loaders._importable("clip_benchmark"):
        from clip_benchmark.datasets.builder import build_dataset

        try:
            ds = build_dataset(CLIP_BENCHMARK_NAMES[sample], root=str(data_dir), transform=None,
                               split="test", download=args.download)
        except (RuntimeError, OSError, AssertionError, ValueError, SystemExit) as err:
            raise loaders.DatasetUnavailableError(
                f"sample dataset {sample!r} not found in {data_dir} via clip_benchmark "
                f"({loaders._first_line(err)}); pass --download, put the files there, or pass "
                f"--images-dir DIR with DIR/{sample}/test/<wnid>/<image>"
            ) from err
        # the loaders' own wrapper: file ids relative to the dataset directory, sorted
        return loaders._wrap(sample, "test", f"clip_benchmark:{CLIP_BENCHMARK_NAMES[sample]}",
                             ds, data_dir)
    if not (data_dir / "test").is_dir():
        raise loaders.DatasetUnavailableError(
            f"sample dataset {sample!r} not found: install clip-benchmark (its "
            f"{CLIP_BENCHMARK_NAMES[sample]!r} builder), or unpack its images to "
            f"{data_dir}/test/<wnid>/<image>, or pass --images-dir DIR"
        )
    return loaders.open_folder(sample, data_dir / "test", "test")


def image_wnids(ds, sample: str, source=None) -> list[str]:
    """The class (ImageNet wnid; the source's label space) of every image of ``ds`` (module
    docstring)."""
    from benchmark.extract.loaders import LoaderError
    from methods.mll.graph import WordNetConcepts

    space = (source or WordNetConcepts()).label_space(sample)
    known = set(space)
    out: list[str] = []
    for image_id in ds.image_ids:
        folders = image_id.split("/")[:-1]
        wnid = next((p for p in folders if p in known), None)
        if wnid is None and sample == "imagenetv2":
            idx = next((p for p in folders if p.isdigit() and int(p) < len(space)), None)
            wnid = space[int(idx)] if idx is not None else None
        if wnid is None:
            break
        out.append(wnid)
    else:
        return out
    if ds.source.startswith("folder:"):
        what = "an ImageNet wnid (n01440764)" if source is None or source.name == "wordnet" \
            else f"a class of the {source.name} concepts"
        raise LoaderError(
            f"sample dataset {sample!r}: class folder of {ds.image_ids[len(out)]!r} is not "
            f"{what}{' or an index 0..999' if sample == 'imagenetv2' else ''}"
        )
    log.warning("%s: no class in the image paths; reading the %d labels once", sample, len(ds))
    classes = list(ds.classes or [])
    labels = [int(label) for _, (_, label) in ds.fetch(range(len(ds)))]
    if classes and all(c in known for c in classes):
        return [classes[lab] for lab in labels]
    return [space[lab] for lab in labels]


def open_samples(args, samples: list[str], source=None):
    """Every sample dataset and ``pools[sample][wnid] -> image ids`` (fails before any work)."""
    from benchmark.extract import loaders

    source = source or source_of(args)
    datasets, pools, failed = {}, {}, []
    for s in samples:
        try:
            ds = open_sample(s, args, source)
            wnids = image_wnids(ds, s, source)
        except loaders.LoaderError as err:
            failed.append((s, err))
            continue
        datasets[s] = ds
        pool: dict[str, list[str]] = {}
        for image_id, wnid in zip(ds.image_ids, wnids, strict=True):
            pool.setdefault(wnid, []).append(image_id)
        pools[s] = pool
    if failed:
        first, err = failed[0]
        more = [s for s, _ in failed[1:]]
        tail = f"; {len(more)} more sample dataset(s) unavailable too: {', '.join(more)}" if more \
            else ""
        raise type(err)(f"{err}{tail}") from err
    return datasets, pools


# -- towers ----------------------------------------------------------------------------------
def embed_captions(loaded, captions: list[str], batch_size: int, device: str):
    """Unit text embeddings ``[len(captions), D]`` float32 of the model's own text tower."""
    import numpy as np
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(captions), batch_size):
            tokens = loaded.tokenizer(captions[i:i + batch_size]).to(device)
            emb = loaded.model.encode_text(tokens).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
    return np.concatenate(out, axis=0)


def embed_images(loaded, ds, indices: list[int], batch_size: int, device: str, progress: bool,
                 label: str):
    """Unit image embeddings ``[len(indices), D]`` float32, rows in ascending index order."""
    import numpy as np
    import torch
    from tqdm import tqdm

    ds = ds.with_transform(loaded.preprocess)
    out, batch = [], []

    def flush() -> None:
        with torch.no_grad():
            emb = loaded.model.encode_image(torch.stack(batch).to(device)).float()
        out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        bar.update(len(batch))
        batch.clear()

    with tqdm(total=len(indices), desc=label, unit="img", disable=not progress,
              file=sys.stderr) as bar:
        for _, (image, _) in ds.fetch(sorted(indices)):
            batch.append(image)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    emb = np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)
    if len(emb) != len(indices):
        raise RuntimeError(f"{label}: read {len(emb)} of {len(indices)} images")
    return emb


# -- the command -----------------------------------------------------------------------------
def make_extractor(args, samples, graph, plan, source=None):
    from benchmark.features.store import Extractor

    return Extractor(KIND, EXTRACTOR_VERSION, {
        "images_per_node": args.images_per_node, "seed": args.seed, "samples": list(samples),
        "random_init": bool(args.random_init), "graph": graph.digest, "plan": plan.digest,
        **(source.params() if source is not None else {}),  # WordNet: none (packs unchanged)
    })  # fmt: skip


class ModelLabelsJob(units.Job):
    """Records ``nodes`` (the node captions' text embeddings) and one per sample dataset."""

    kind = KIND

    def __init__(self, args, extractor, store_root, graph, plan, datasets=None,
                 source=None) -> None:
        super().__init__(args, extractor, store_root)
        self.graph, self.plan, self.source = graph, plan, source
        for s, ds in (datasets or {}).items():  # opened by the driver: reused by a local run
            self._cache[f"sample:{s}"] = ds

    def sample(self, name: str):
        if f"sample:{name}" not in self._cache:
            self._cache[f"sample:{name}"] = open_sample(name, self.args, self.source)
        return self._cache[f"sample:{name}"]

    def compute(self, state, unit):
        import numpy as np

        from benchmark.errors import UsageError
        from benchmark.features.model_labels import NODES, encode_texts

        loaded, graph, plan, a = state, self.graph, self.plan, self.args
        common = {"plan_digest": plan.digest, "graph_digest": graph.digest}
        if unit.dataset == NODES:
            text = embed_captions(loaded, list(graph.captions), a.batch_size, self.device)
            arrays = {
                "node_ids": np.asarray(graph.ids), "node_captions": encode_texts(graph.captions),
                "text": text.astype(np.float16), "node_offsets": plan.node_offsets,
                "node_images": plan.node_images, "sample_offsets": plan.sample_offsets(),
            }  # fmt: skip
            meta = {**common, "samples": list(plan.samples),
                    "images_per_node": plan.images_per_node, "seed": plan.seed}
        else:
            ds = self.sample(unit.dataset)
            ids = plan.image_ids[plan.samples.index(unit.dataset)]
            position = {image_id: i for i, image_id in enumerate(ds.image_ids)}
            indices = sorted(position[i] for i in ids)
            emb = embed_images(loaded, ds, indices, a.batch_size, self.device, self.progress,
                               f"{unit.model} | {unit.dataset}")
            row_of = {position[i]: r for r, i in enumerate(ids)}  # plan order = sorted ids
            image = np.empty_like(emb)
            image[[row_of[i] for i in indices]] = emb
            arrays = {"image": image.astype(np.float16), "image_ids": np.asarray(ids)}
            meta = {**common, "source": ds.source, "split": ds.split}
        values = [v for v in arrays.values() if v.dtype.kind == "f"]
        if not all(np.isfinite(v).all() for v in values):
            raise UsageError(f"{unit.model} on {unit.dataset}: non-finite embeddings; nothing "
                           f"written")
        return arrays, meta

    def n_images(self, unit, arrays, meta) -> int:
        return 0 if "image_ids" not in arrays else len(arrays["image_ids"])


def run(args: argparse.Namespace) -> int:
    from benchmark.errors import UsageError
    from benchmark.extract.loaders import LoaderError
    from benchmark.extract.models import ModelLoadError
    from methods.mll.graph import GraphError, WordNetUnavailableError

    try:
        return _run(args)
    except (ModelLoadError, LoaderError, WordNetUnavailableError, GraphError) as err:
        raise UsageError(str(err)) from err


def _run(args: argparse.Namespace) -> int:
    from benchmark.errors import UsageError
    from benchmark.features.model_labels import NODES
    from benchmark.features.store import FeatureStore
    from methods.mll import graph as mll_graph

    for name in ("images_per_node", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    models = units.select_models(args, DEFAULT_PROTOCOL)
    source = source_of(args, models)
    samples = select_samples(args, source)
    graph = mll_graph.concept_graph(source)
    datasets, pools = open_samples(args, samples, source)
    plan = mll_graph.plan_node_images(graph, pools, args.images_per_node, args.seed)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    job = ModelLabelsJob(args, make_extractor(args, samples, graph, plan, source), store.root,
                         graph, plan, datasets, source)
    sizes = ", ".join(f"{s} {len(i)}" for s, i in zip(plan.samples, plan.image_ids, strict=True))
    header = f"{KIND}: {source.name} concepts, {len(graph)} nodes, {plan.n_images} images " \
             f"({sizes})"
    return units.drive(args, job, models, [NODES, *samples], store, header)


__all__ = ["add_arguments", "embed_captions", "embed_images", "image_wnids", "open_sample",
           "run"]
