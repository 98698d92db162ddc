"""``python -m benchmark extract class-stats``: per-class statistics of each model (SWAB).

For every (model, dataset) -- the protocol's zoo and targets, or ``--models`` / ``--datasets``
-- one record of the ``class-stats`` pack of the model (arrays and their definitions:
:mod:`benchmark.features.class_stats`), from

- a fixed sample of ``--images-per-dataset`` test images (:func:`benchmark.extract.loaders.
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
is missing (planning, resume, shards and backends: :mod:`benchmark.extract.units`). A pack made with other parameters (sample size, seed, random init) is an error
before any work. ``--random-init`` (smoke tests) builds random weights and records it; ``run``
refuses such packs unless ``--allow-random-init``. Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from benchmark.extract import units

log = logging.getLogger(__name__)

KIND = "class-stats"
EXTRACTOR_VERSION = "1"
DEFAULT_IMAGES = 10000


def add_arguments(p: argparse.ArgumentParser) -> None:
    units.add_common_arguments(p, default_protocol="dcd48")
    units.add_sample_arguments(p, DEFAULT_IMAGES, images_help="test images sampled per dataset, 0 = all")


def make_extractor(args: argparse.Namespace):
    """The pack identity: everything that changes the numbers (not device or batch sizes)."""
    from benchmark.features.store import Extractor

    return Extractor(KIND, EXTRACTOR_VERSION, {
        **units.sample_params(args),
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
    """``(arrays, meta)`` of one record (:func:`benchmark.features.class_stats.make_arrays`)."""
    from benchmark.features.class_stats import make_arrays

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
class ClassStatsJob(units.Job):
    kind = KIND
    unit_errors = (ValueError,)  # data problems of one dataset: the others go on

    def dataset(self, name: str):
        """(dataset, sample indices, captions), opened once per process."""
        from benchmark.errors import UsageError
        from benchmark.extract.conductance_cmd import open_test_split

        key = f"dataset:{name}"
        if key not in self._cache:
            try:
                captions = self.catalog().captions(name)
            except KeyError as err:
                raise UsageError(f"{name}: {err.args[0]} (SWAB's captions are needed)") from None
            a = self.args
            ds, indices = open_test_split(a, name, a.images_per_dataset, a.seed)
            self._cache[key] = ds, indices, captions
        return self._cache[key]

    def prepare(self, todo) -> None:
        for d in sorted({u.dataset for u in todo}):
            self.dataset(d)

    def compute(self, state, unit):
        ds, indices, captions = self.dataset(unit.dataset)
        a = self.args
        return class_stats_for(state, ds, indices, self.catalog().info(unit.dataset), captions,
                               batch_size=a.batch_size, text_batch_size=a.text_batch_size,
                               device=self.device, progress=self.progress)


def run(args: argparse.Namespace) -> int:
    from benchmark.errors import UsageError
    from benchmark.features.store import FeatureStore

    for name in ("batch_size", "text_batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.images_per_dataset < 0:
        raise UsageError("--images-per-dataset must be >= 0 (0 = all test images)")
    protocol = units.protocol_of(args, "dcd48")
    models = units.select_models(args, "dcd48")
    datasets = units.select_datasets(args, protocol.datasets)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    job = ClassStatsJob(args, make_extractor(args), store.root)
    return units.drive(args, job, models, datasets, store)
