"""``python -m benchmark extract class-stats``: per-class statistics of each model (SWAB).

For every (model, dataset) -- the protocol's zoo and targets, or ``--models`` / ``--datasets``
-- one record of the ``class-stats`` pack of the model (arrays and their definitions:
:mod:`benchmark.classstats_kind`), from

- a fixed sample of ``--images-per-dataset`` test images (:func:`benchmark.loaders.
  sample_indices` with ``--seed``, the same images for every model; ``0`` = all, as SWAB),
  preprocessed with the model's own eval transform and encoded by its image tower:
  per-class zero-shot top-1 accuracy (the zero-shot weights below), per-class mean image
  embedding, mean and std of all image embeddings;
- the model's own text tower: zero-shot weights (every template of the dataset with the class
  name filled in, unit embeddings averaged, renormalised) and the unit embeddings of SWAB's LLM
  captions of each class (``data/captions_dataset``), with their mean and std.

That is what SWAB's ``calc_ptm_stats_in_hist_task.py`` computes (class-level accuracy,
modality-gap vectors) plus the caption embeddings its gap-corrected ModelGPT features need.

Class labels: a registry loader's labels index the catalog's class names (its class lists come
from the same clip_benchmark order); an image folder (``--images-dir``) maps its sub-folders by
name when they are the catalog's class names, by number when they are ``0..C-1``, else by
sorted position when there are exactly ``C`` of them (the image-folder convention
clip_benchmark reads FER2013 with), and is refused otherwise.

Resumable: each record is written as soon as it is computed (atomically); a re-run skips every
record that reads back with a valid checksum, and loads a model only when one of its records
is missing. A pack made with other parameters (sample size, seed, random init) is an error
before any work. ``--random-init`` (smoke tests) builds random weights and records it; ``run``
refuses such packs unless ``--allow-random-init``. Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

KIND = "class-stats"
EXTRACTOR_VERSION = "1"
DEFAULT_IMAGES = 10000
DEFAULT_BATCH = 64
DEFAULT_TEXT_BATCH = 256


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.cli import _add_data_options

    p.add_argument("--protocol", help="zoo and datasets to extract (default: dcd48)")
    p.add_argument("--models", help="comma-separated model ids (default: the protocol's zoo)")
    p.add_argument("--datasets", help="comma-separated dataset ids (default: the protocol's)")
    p.add_argument("--images-per-dataset", type=int, default=DEFAULT_IMAGES,
                   help=f"test images sampled per dataset, 0 = all (default {DEFAULT_IMAGES})")
    p.add_argument("--seed", type=int, default=0, help="seed of the image sample (default 0)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                   help=f"images per forward pass (default {DEFAULT_BATCH})")
    p.add_argument("--text-batch-size", type=int, default=DEFAULT_TEXT_BATCH,
                   help=f"texts per forward pass (default {DEFAULT_TEXT_BATCH})")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--random-init", action="store_true",
                   help="random weights (smoke tests); recorded, and refused by `run` unless "
                   "--allow-random-init")
    p.add_argument("--weights-dir", help="open_clip weights cache (default: open_clip's / HF_HOME)")
    p.add_argument("--data-dir", help="dataset files, <DIR>/<dataset> (default $VLMBENCH_DATA "
                   "or ~/.cache/vlmbench/datasets)")
    p.add_argument("--images-dir", help="read every dataset from an image folder "
                   "DIR/<dataset>/test/<class>/<image> instead of its registry loader")
    p.add_argument("--download", action="store_true",
                   help="let the dataset loaders download missing datasets into --data-dir")
    p.add_argument("--features-dir", help="feature pack directory (default $VLMBENCH_FEATURES "
                   "or ~/.cache/vlmbench/features)")
    p.add_argument("--skip-unextractable", action="store_true",
                   help="skip models no loader exists for (BLIP, BEiT-3) instead of failing")
    p.add_argument("--no-progress", action="store_true")
    _add_data_options(p)


def make_extractor(args: argparse.Namespace):
    """The pack identity: everything that changes the numbers (not device or batch sizes)."""
    from benchmark.features import Extractor

    return Extractor(KIND, EXTRACTOR_VERSION, {
        "images_per_dataset": int(args.images_per_dataset),
        "seed": int(args.seed),
        "random_init": bool(args.random_init),
        "prompts": "dataset templates x class names, unit embeddings averaged, renormalised",
        "captions": "SWAB captions_dataset, unit embeddings, stored float16",
        "std": "ddof=1",
    })


# -- pure helpers ---------------------------------------------------------------------------
def label_map(folder_classes, classnames, dataset: str = "") -> list[int] | None:
    """Catalog class index of each label of an image folder (None: labels are catalog indices).

    ``folder_classes``: the sorted sub-folder names (``ImageDataset.classes`` of a folder
    dataset), or None for registry loaders. Rules: module docstring.
    """
    if folder_classes is None:
        return None
    names = [str(n) for n in folder_classes]
    first: dict[str, int] = {}
    for i, c in enumerate(classnames):
        first.setdefault(c, i)
    if all(n in first for n in names):
        return [first[n] for n in names]
    if all(n.isdigit() and int(n) < len(classnames) for n in names):
        return [int(n) for n in names]
    if len(names) == len(classnames):
        log.info("%s: image folders %s... taken in sorted order as the catalog's classes",
                 dataset, names[:3])
        return list(range(len(names)))
    raise ValueError(
        f"{dataset}: the {len(names)} image folders ({', '.join(names[:3])}, ...) are neither "
        f"the catalog's {len(classnames)} class names nor class indices 0..{len(classnames) - 1}"
    )


def summarize(features, labels, weights) -> dict[str, Any]:
    """Per-class accuracy, counts, mean image embedding; image mean/std (numpy, float64)."""
    import numpy as np

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    c = len(weights)
    pred = np.argmax(x @ np.asarray(weights, dtype=np.float64).T, axis=1)
    count = np.bincount(y, minlength=c)
    correct = np.bincount(y, weights=(pred == y).astype(np.float64), minlength=c)
    sums = np.zeros((c, x.shape[1]))
    np.add.at(sums, y, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(count > 0, correct / np.maximum(count, 1), np.nan)
        mean = np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], np.nan)
    std = x.std(axis=0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
    return {"class_acc": acc, "class_count": count, "image_mean": mean,
            "image_center": x.mean(axis=0), "image_std": std}


# -- torch part -----------------------------------------------------------------------------
def text_stats(loaded, info, captions: dict, batch_size: int, device: str) -> dict[str, Any]:
    """Zero-shot weights and caption embeddings of ``loaded`` on one dataset."""
    import numpy as np

    from benchmark.extract.text_features import encode_texts, zero_shot_weights

    names = list(info.classnames)
    missing = [c for c in dict.fromkeys(names) if not captions.get(c)]
    if missing:
        raise ValueError(f"{info.id}: no captions for classes {missing[:5]}")
    prompts = [p for c in names for p in info.prompts(c)]
    emb = encode_texts(loaded.model, loaded.tokenizer, prompts, batch_size, device)
    t = len(info.templates)
    weights = zero_shot_weights([emb[i * t:(i + 1) * t] for i in range(len(names))])
    lists = [list(captions[c]) for c in names]
    caps = encode_texts(loaded.model, loaded.tokenizer, [x for lst in lists for x in lst],
                        batch_size, device)
    offsets = np.concatenate([[0], np.cumsum([len(lst) for lst in lists])])
    return {"text_weights": weights, "captions": caps, "caption_offsets": offsets,
            "text_center": caps.mean(axis=0), "text_std": caps.std(axis=0, ddof=1)}


def image_features(loaded, dataset, indices, mapping, n_classes: int, batch_size: int,
                   device: str, progress: bool):
    """Unit image embeddings ``[n, D]`` and catalog labels ``[n]`` of the sampled images."""
    import numpy as np
    import torch
    from tqdm import tqdm

    ds = dataset.with_transform(loaded.preprocess)
    feats, labels, batch = [], [], []

    def flush() -> None:
        with torch.no_grad():
            f = loaded.model.encode_image(torch.stack(batch).to(device)).float()
            feats.append((f / f.norm(dim=-1, keepdim=True)).cpu().numpy())
        batch.clear()

    with tqdm(total=len(indices), desc=f"{loaded.id} | {dataset.dataset_id}", unit="img",
              disable=not progress, file=sys.stderr) as bar:
        for _, (image, label) in ds.fetch(indices):
            label = int(label)
            label = mapping[label] if mapping is not None else label
            if not 0 <= label < n_classes:
                raise ValueError(f"{dataset.dataset_id}: label {label} outside the catalog's "
                                 f"{n_classes} classes")
            batch.append(image)
            labels.append(label)
            if len(batch) == batch_size:
                flush()
                bar.update(batch_size)
        if batch:
            n = len(batch)
            flush()
            bar.update(n)
    if len(labels) != len(indices):
        raise RuntimeError(f"{dataset.dataset_id}: read {len(labels)} of {len(indices)} images")
    return np.concatenate(feats), np.asarray(labels)


def class_stats_for(loaded, dataset, indices, info, captions, *, batch_size: int,
                    text_batch_size: int, device: str, progress: bool):
    """``(arrays, meta)`` of one record (:func:`benchmark.classstats_kind.make_arrays`)."""
    from benchmark.classstats_kind import make_arrays

    text = text_stats(loaded, info, captions, text_batch_size, device)
    mapping = label_map(dataset.classes if dataset.source.startswith("folder:") else None,
                        info.classnames, info.id)
    feats, labels = image_features(loaded, dataset, indices, mapping, len(info.classnames),
                                   batch_size, device, progress)
    stats = summarize(feats, labels, text["text_weights"])
    arrays = make_arrays(info.classnames, **stats, **text)
    meta = {
        "image_ids": [dataset.image_id(i) for i in indices],
        "n_images": len(indices),
        "n_templates": len(info.templates),
        "n_captions": int(len(text["captions"])),
        "classes_without_images": int((stats["class_count"] == 0).sum()),
        "source": dataset.source,
        "split": dataset.split,
    }
    return arrays, meta


# -- command --------------------------------------------------------------------------------
def _code_version() -> str:
    from benchmark import __version__
    from benchmark.results import git_commit

    git = git_commit()
    if not git.get("commit"):
        return __version__
    return f"{__version__}+g{git['commit'][:12]}" + (".dirty" if git.get("dirty") else "")


def todo(store, extractor, models, datasets) -> dict[str, list[str]]:
    """model -> datasets whose record is missing or unreadable; other parameters: an error."""
    import json

    from benchmark.cli import CLIError
    from benchmark.features import FeaturePackError

    wanted = json.loads(json.dumps(extractor.as_dict()))
    out: dict[str, list[str]] = {}
    for model in models:
        existing = store.extractor(KIND, model)
        if existing is not None and existing.as_dict() != wanted:
            raise CLIError(
                f"the {KIND} pack of {model} in {store.pack_dir(KIND, model)} was made with "
                f"{existing.as_dict()['params']}, not {wanted['params']}; re-run with its "
                f"options, delete it, or use another --features-dir"
            )
        have = set(store.datasets(KIND, model))
        missing = []
        for d in datasets:
            if d in have:
                try:
                    store.read(KIND, model, d)
                    continue
                except FeaturePackError as err:
                    log.warning("%s; recomputing it", err)
            missing.append(d)
        if missing:
            out[model] = missing
    return out


def run(args: argparse.Namespace) -> int:
    from benchmark.cli import CLIError
    from benchmark.extract.models import ModelLoadError
    from benchmark.loaders import LoaderError

    try:
        return _run(args)
    except (ModelLoadError, LoaderError) as err:
        raise CLIError(str(err)) from err


def _open(args, names: list[str], catalog):
    """Datasets, samples and captions of every dataset with work, before any model loads."""
    from benchmark import loaders
    from benchmark.cli import CLIError

    datasets, samples, captions = {}, {}, {}
    for d in names:
        try:
            captions[d] = catalog.captions(d)
        except KeyError as err:
            raise CLIError(f"{d}: {err.args[0]} (SWAB's captions are needed)") from None
        if args.images_dir:
            ds = loaders.open_dataset(d, args.images_dir, split="test", backend="folder")
        else:
            ds = loaders.open_dataset(d, args.data_dir, split="test", download=args.download)
        n = args.images_per_dataset or len(ds)
        datasets[d], samples[d] = ds, loaders.sample_indices(len(ds), n, args.seed)
    return datasets, samples, captions


def _run(args: argparse.Namespace) -> int:
    import torch

    from benchmark.catalog import Catalog
    from benchmark.cli import CLIError, _data_layer
    from benchmark.extract import models as model_loading
    from benchmark.extract.conductance_cmd import make_plan
    from benchmark.features import FeatureStore

    started = time.perf_counter()
    for name in ("batch_size", "text_batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1")
    if args.images_per_dataset < 0:
        raise CLIError("--images-per-dataset must be >= 0 (0 = all test images)")
    plan = make_plan(args)
    extractor = make_extractor(args)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    work = todo(store, extractor, plan.models, plan.datasets)
    n_records = len(plan.models) * len(plan.datasets)
    n_todo = sum(len(v) for v in work.values())
    if not work:
        print(f"all {n_records} {KIND} records present in {store.root}; nothing to do")
        return 0
    print(f"{KIND}: {n_todo} of {n_records} records to extract ({n_records - n_todo} present) "
          f"into {store.root}", file=sys.stderr)
    catalog = Catalog(_data_layer(args))
    datasets, samples, captions = _open(args, sorted({d for v in work.values() for d in v}),
                                        catalog)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: torch {torch.__version__} sees no CUDA device")
    code_version = _code_version()
    written, failures = 0, []
    for model in plan.models:
        if model not in work:
            continue
        loaded = model_loading.load_model(model, random_init=args.random_init, device=device,
                                          cache_dir=args.weights_dir)
        for d in work[model]:
            try:
                arrays, meta = class_stats_for(
                    loaded, datasets[d], samples[d], catalog.info(d), captions[d],
                    batch_size=args.batch_size, text_batch_size=args.text_batch_size,
                    device=device, progress=not args.no_progress)
            except ValueError as err:  # data problems of one dataset: the others go on
                failures.append(f"{model} on {d}: {err}")
                continue
            store.write(KIND, model, d, arrays, extractor, meta, code_version)
            written += 1
        del loaded
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    elapsed = time.perf_counter() - started
    print(f"wrote {written} {KIND} records to {store.root} ({elapsed:.1f} s)")
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failures else 0
