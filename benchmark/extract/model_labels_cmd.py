"""``python -m benchmark extract model-labels``: MLL's model labels, one feature pack per model.

For every model (``--models``, default the ``mll`` protocol's zoo): the graph of
:mod:`benchmark.mll_graph` (built from WordNet once and cached), the node images of
:func:`benchmark.mll_graph.plan_node_images` (``--images-per-node``, MLL's 75, ``--seed``) drawn
from the sample datasets (``--samples``, default MLL's five: ImageNet-1k val, ImageNet-V2,
ImageNet-Sketch, ImageNet-A, ImageNet-R), and the model's own eval transform, tokenizer and
towers give the records of :mod:`benchmark.modellabels_kind`: the unit text embeddings of the
node captions (record ``nodes``, written first) and the unit image embeddings of the plan's
images, one record per sample dataset. Records are written atomically one by one, so an
interrupted run resumes at the first missing record; a model is loaded only when one of its
records is missing. The extractor's parameters (``images_per_node``, ``seed``, ``samples``,
``random_init``, the graph's and the image plan's sha256) are in the manifest: a pack made on
another graph, plan or parameters is refused before any work.

Where the images come from
--------------------------
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
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

KIND = "model-labels"
EXTRACTOR_VERSION = "1"
DEFAULT_PROTOCOL = "mll"
DEFAULT_BATCH = 32
#: sample dataset -> clip_benchmark's builder name
CLIP_BENCHMARK_NAMES = {"imagenetv2": "imagenetv2", "imagenet_sketch": "imagenet_sketch",
                        "imagenet-a": "imagenet-a", "imagenet-r": "imagenet-r"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.mll_graph import DEFAULT_IMAGES_PER_NODE, SAMPLE_DATASETS

    p.add_argument("--protocol", help=f"zoo to label (default: {DEFAULT_PROTOCOL})")
    p.add_argument("--models", help="comma-separated model ids (default: the protocol's zoo)")
    p.add_argument("--samples", help="comma-separated sample datasets (default: "
                   f"{','.join(SAMPLE_DATASETS)})")
    p.add_argument("--images-per-node", type=int, default=DEFAULT_IMAGES_PER_NODE,
                   help=f"images per graph node (default {DEFAULT_IMAGES_PER_NODE}, MLL's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the node images (default 0)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                   help=f"images or captions per forward pass (default {DEFAULT_BATCH})")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--random-init", action="store_true",
                   help="random weights (smoke tests); recorded, and refused by `run` unless "
                   "--allow-random-init")
    p.add_argument("--weights-dir", help="open_clip weights cache (default: open_clip's / HF_HOME)")
    p.add_argument("--data-dir", help="dataset files, <DIR>/<dataset> (default $VLMBENCH_DATA "
                   "or ~/.cache/vlmbench/datasets)")
    p.add_argument("--images-dir", help="read the sample datasets from image folders "
                   "DIR/<sample>/test/<wnid>/<image>")
    p.add_argument("--download", action="store_true",
                   help="let the dataset loaders download what they can into --data-dir")
    p.add_argument("--features-dir", help="feature pack directory (default $VLMBENCH_FEATURES "
                   "or ~/.cache/vlmbench/features)")
    p.add_argument("--skip-unextractable", action="store_true",
                   help="skip models no loader exists for (BLIP, BEiT-3) instead of failing")
    p.add_argument("--no-progress", action="store_true")


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def select_models(args: argparse.Namespace) -> list[str]:
    from benchmark.catalog import unknown_message
    from benchmark.cli import CLIError
    from benchmark.extract.conductance_cmd import not_extractable
    from benchmark.protocol import PROTOCOLS, get_protocol

    protocol = get_protocol(args.protocol or DEFAULT_PROTOCOL)
    known = list(dict.fromkeys(m for p in PROTOCOLS.values() for m in p.zoo))
    models = _csv(args.models) or list(protocol.zoo)
    for m in models:
        if m not in known:
            raise CLIError(unknown_message("model", m, known))
    skipped = [(m, why) for m in models if (why := not_extractable(m))]
    if skipped and not args.skip_unextractable:
        raise CLIError(
            f"{len(skipped)} model(s) not extractable (not open_clip models; no loader exists): "
            f"{', '.join(m for m, _ in skipped)}; pass --skip-unextractable to extract the others"
        )
    for _, why in skipped:
        print(f"skip {why}", file=sys.stderr)
    return list(dict.fromkeys(m for m in models if not not_extractable(m)))


def select_samples(args: argparse.Namespace) -> list[str]:
    from benchmark.catalog import unknown_message
    from benchmark.cli import CLIError
    from benchmark.mll_graph import SAMPLE_DATASETS

    samples = _csv(args.samples) or list(SAMPLE_DATASETS)
    for s in samples:
        if s not in SAMPLE_DATASETS:
            raise CLIError(unknown_message("sample dataset", s, list(SAMPLE_DATASETS)))
    return [s for s in SAMPLE_DATASETS if s in samples]  # canonical order


# -- sample datasets -------------------------------------------------------------------------
def open_sample(sample: str, args: argparse.Namespace):
    """The images of a sample dataset (module docstring), or :class:`LoaderError`."""
    from benchmark import loaders

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


def image_wnids(ds, sample: str) -> list[str]:
    """The ImageNet wnid of every image of ``ds`` (module docstring)."""
    from benchmark.loaders import LoaderError
    from benchmark.mll_graph import SAMPLE_DATASETS, imagenet_wnids

    space = imagenet_wnids(SAMPLE_DATASETS[sample])
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
        raise LoaderError(
            f"sample dataset {sample!r}: class folder of {ds.image_ids[len(out)]!r} is not an "
            f"ImageNet wnid (n01440764){' or an index 0..999' if sample == 'imagenetv2' else ''}"
        )
    log.warning("%s: no class in the image paths; reading the %d labels once", sample, len(ds))
    classes = list(ds.classes or [])
    labels = [int(label) for _, (_, label) in ds.fetch(range(len(ds)))]
    if classes and all(c in known for c in classes):
        return [classes[lab] for lab in labels]
    return [space[lab] for lab in labels]


def open_samples(args, samples: list[str]):
    """Every sample dataset and ``pools[sample][wnid] -> image ids`` (fails before any work)."""
    from benchmark import loaders

    datasets, pools, failed = {}, {}, []
    for s in samples:
        try:
            ds = open_sample(s, args)
            wnids = image_wnids(ds, s)
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
def make_extractor(args, samples, graph, plan):
    from benchmark.features import Extractor

    return Extractor(KIND, EXTRACTOR_VERSION, {
        "images_per_node": args.images_per_node, "seed": args.seed, "samples": list(samples),
        "random_init": bool(args.random_init), "graph": graph.digest, "plan": plan.digest,
    })  # fmt: skip


def todo(store, extractor, models: list[str], records: list[str]) -> dict[str, list[str]]:
    """model -> records missing or unreadable; a pack of other parameters is an error."""
    from benchmark.cli import CLIError
    from benchmark.features import FeaturePackError

    wanted = json.loads(json.dumps(extractor.as_dict()))
    out: dict[str, list[str]] = {}
    for model in models:
        existing = store.extractor(KIND, model)
        if existing is not None and existing.as_dict() != wanted:
            old = existing.as_dict()["params"]
            diff = sorted(k for k in set(old) | set(wanted["params"])
                          if old.get(k) != wanted["params"].get(k))
            raise CLIError(
                f"the {KIND} pack of {model} in {store.pack_dir(KIND, model)} was made with "
                f"other {', '.join(diff)} (version {existing.version}); re-run with its options "
                f"and sample datasets, delete it, or use another --features-dir"
            )
        have = set(store.datasets(KIND, model))
        missing = []
        for r in records:
            if r in have:
                try:
                    store.read(KIND, model, r)
                    continue
                except FeaturePackError as err:
                    log.warning("%s; recomputing it", err)
            missing.append(r)
        if missing:
            out[model] = missing
    return out


def run(args: argparse.Namespace) -> int:
    from benchmark.cli import CLIError
    from benchmark.extract.models import ModelLoadError
    from benchmark.loaders import LoaderError
    from benchmark.mll_graph import GraphError, WordNetUnavailableError

    try:
        return _run(args)
    except (ModelLoadError, LoaderError, WordNetUnavailableError, GraphError) as err:
        raise CLIError(str(err)) from err


def _run(args: argparse.Namespace) -> int:
    from benchmark.cli import CLIError
    from benchmark.features import FeatureStore
    from benchmark.mll_graph import plan_node_images, semantic_graph
    from benchmark.modellabels_kind import NODES

    started = time.perf_counter()
    for name in ("images_per_node", "batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    models = select_models(args)
    samples = select_samples(args)
    graph = semantic_graph()
    datasets, pools = open_samples(args, samples)
    plan = plan_node_images(graph, pools, args.images_per_node, args.seed)
    extractor = make_extractor(args, samples, graph, plan)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    work = todo(store, extractor, models, [NODES, *samples])
    n_records = len(models) * (1 + len(samples))
    if not work:
        print(f"all {n_records} {KIND} records present in {store.root}; nothing to do")
        return 0
    print(
        f"{KIND}: {len(graph)} nodes, {plan.n_images} images "
        f"({', '.join(f'{s} {len(i)}' for s, i in zip(plan.samples, plan.image_ids, strict=True))})"
        f"; {sum(len(v) for v in work.values())} of {n_records} records to extract into "
        f"{store.root}",
        file=sys.stderr,
    )
    timings = _extract(args, models, work, store, extractor, graph, plan, datasets)
    for model, (n_images, seconds) in timings.items():
        rate = f", {1000 * seconds / n_images:.1f} s per 1000 images" if n_images else ""
        print(f"{model}: {n_images} images in {seconds:.1f} s{rate}", file=sys.stderr)
    written = sum(len(v) for v in work.values())
    print(f"wrote {written} {KIND} records to {store.root} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


def _extract(args, models, work, store, extractor, graph, plan, datasets) -> dict:
    import numpy as np
    import torch

    from benchmark.cli import CLIError
    from benchmark.extract import models as model_loading
    from benchmark.extract.conductance_cmd import _code_version
    from benchmark.modellabels_kind import NODES, encode_texts

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: torch {torch.__version__} sees no CUDA device")
    code_version = _code_version()
    offsets = plan.sample_offsets()
    common = {"plan_digest": plan.digest, "graph_digest": graph.digest}
    timings: dict[str, tuple[int, float]] = {}
    for model in models:
        if model not in work:
            continue
        loaded = model_loading.load_model(model, random_init=args.random_init, device=device,
                                          cache_dir=args.weights_dir)
        n_images, seconds = 0, 0.0
        for record in work[model]:
            t0 = time.perf_counter()
            if record == NODES:
                text = embed_captions(loaded, list(graph.captions), args.batch_size, device)
                arrays = {
                    "node_ids": np.asarray(graph.ids), "node_captions": encode_texts(graph.captions),
                    "text": text.astype(np.float16), "node_offsets": plan.node_offsets,
                    "node_images": plan.node_images, "sample_offsets": offsets,
                }  # fmt: skip
                meta = {**common, "samples": list(plan.samples),
                        "images_per_node": plan.images_per_node, "seed": plan.seed}
            else:
                ds = datasets[record]
                ids = plan.image_ids[plan.samples.index(record)]
                position = {image_id: i for i, image_id in enumerate(ds.image_ids)}
                indices = sorted(position[i] for i in ids)
                emb = embed_images(loaded, ds, indices, args.batch_size, device,
                                   not args.no_progress, f"{model} | {record}")
                row_of = {position[i]: r for r, i in enumerate(ids)}  # plan order = sorted ids
                image = np.empty_like(emb)
                image[[row_of[i] for i in indices]] = emb
                arrays = {"image": image.astype(np.float16), "image_ids": np.asarray(ids)}
                meta = {**common, "source": ds.source, "split": ds.split}
                n_images += len(ids)
                seconds += time.perf_counter() - t0
            values = [a for a in arrays.values() if a.dtype.kind == "f"]
            if not all(np.isfinite(v).all() for v in values):
                raise CLIError(f"{model} on {record}: non-finite embeddings; nothing written")
            store.write(KIND, model, record, arrays, extractor, meta, code_version)
        timings[model] = (n_images, seconds)
        del loaded
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return timings


__all__ = ["add_arguments", "embed_captions", "embed_images", "image_wnids", "open_sample",
           "run", "todo"]

