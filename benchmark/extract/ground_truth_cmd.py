"""``python -m benchmark extract ground-truth``: zero-shot top-1 accuracy of new models.

The published tables (LOVM, SWAB, open_clip) cover their own zoos; a model they lack has no
ground truth, so no protocol can rank it. This command measures it with the protocol those
tables used (CLIP_benchmark's zero-shot classification, :mod:`benchmark.extract.zeroshot`):
LOVM's templates and class names, the test split, the model's own preprocessing, top-1 over
every test image (``--images-per-dataset N`` samples N instead: recorded, for smoke runs).

One record per (model, dataset) in the ``ground-truth`` pack of the model::

    acc1           float64 0-d   fraction of test images classified correctly
    n_images       int64 0-d     images evaluated
    class_count    int64 [C]     images per class (catalog class order)
    class_correct  int64 [C]     correctly classified images per class
    labels         int32 [N]     true class of every evaluated image (catalog class order)
    pred           int32 [N]     the model's zero-shot prediction (argmax of the float64 logits)
    logits         float16 [N,C] the zero-shot logits ``100 cos``, each row shifted so that its
                                 max is 0 (softmax and argmax unchanged; ``--no-logits`` drops it)
    meta           n_images, n_classes, n_templates, source, split (+ image_ids if sampled)

The per-image arrays (extractor version 2) feed outcome metrics that need more than acc1: the
top-3 ensemble of MLL's reuse protocol (:func:`benchmark.core.metrics.ensemble_accuracy`, read
through :func:`benchmark.data.groundtruth.pack_predictions`). Version-1 records (counts only)
still load as ground truth; what needs their predictions says, in one line, to re-extract.
Size: ``N x C`` float16, e.g. 50,000 x 1,000 for ImageNet-1k = 100 MB per model (``--no-logits``
keeps ``labels`` and ``pred`` only).

Ground-truth source ``packs`` (:func:`benchmark.data.groundtruth.packs_table`) reads these records;
a protocol lists it in ``gt_sources`` (e.g. a TOML protocol, ``benchmark/core/protocol.py``) to rank
the new model next to the published ones. Packs made with ``--random-init`` are refused there
unless ``--allow-random-init``. Default datasets: the protocol's (``dcd48``) plus ImageNet-1k,
the side information INB and ModelGPT need.

Labels of an image folder (``--images-dir``) map to the catalog's classes as in class-stats
(:func:`benchmark.extract.class_stats_cmd.label_map`). Planning, resume, shards and backends:
:mod:`benchmark.extract.units`. Any ``ARCH:pretrained`` whose architecture open_clip knows is
accepted (``--model-config`` registers a new architecture's config).
"""

from __future__ import annotations

import argparse
import logging

from benchmark.extract import units

log = logging.getLogger(__name__)

KIND = "ground-truth"
EXTRACTOR_VERSION = "2"  # 2: per-image labels, pred, logits
DEFAULT_PROTOCOL = "dcd48"
DEFAULT_BATCH = 64
DEFAULT_TEXT_BATCH = 256
PER_IMAGE = "labels, pred, logits (float16, 100 cos minus the row max)"
PER_IMAGE_LABELS = "labels, pred"


def add_arguments(p: argparse.ArgumentParser) -> None:
    units.add_common_arguments(
        p, default_protocol=DEFAULT_PROTOCOL,
        datasets_help="comma-separated dataset ids (default: the protocol's and imagenet1k)")
    p.add_argument("--images-per-dataset", type=int, default=0,
                   help="test images per dataset, 0 = all (default 0: the published protocol)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the image sample when --images-per-dataset > 0 (default 0)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                   help=f"images per forward pass (default {DEFAULT_BATCH})")
    p.add_argument("--text-batch-size", type=int, default=DEFAULT_TEXT_BATCH,
                   help=f"prompts per forward pass (default {DEFAULT_TEXT_BATCH})")
    p.add_argument("--no-logits", action="store_true",
                   help="store per-image labels and predictions but not the [N, C] float16 "
                   "logits (default: store them; the top-3 ensemble metric needs them)")


def make_extractor(args: argparse.Namespace):
    """The pack identity: everything that changes the numbers (not device or batch sizes)."""
    from benchmark.features.store import Extractor

    n = int(args.images_per_dataset)
    return Extractor(KIND, EXTRACTOR_VERSION, {
        "protocol": "CLIP_benchmark zero-shot top-1 (benchmark.extract.zeroshot)",
        "prompts": "LOVM templates x class names, unit embeddings averaged, renormalised",
        "split": "test",
        "images": n if n else "all",
        "seed": int(args.seed) if n else None,
        "precision": "float32",
        "random_init": bool(args.random_init),
        "per_image": PER_IMAGE_LABELS if getattr(args, "no_logits", False) else PER_IMAGE,
    })


def zero_shot_accuracy(loaded, dataset, indices, info, *, batch_size: int, text_batch_size: int,
                       device: str, progress: bool = False, keep_logits: bool = True):
    """``(arrays, meta)`` of one record: ``loaded`` on the ``indices`` images of ``dataset``."""
    from benchmark.extract import zeroshot
    from benchmark.extract.class_stats_cmd import image_features, label_map

    weights = zeroshot.zero_shot_classifier(loaded.model, loaded.tokenizer, info.classnames,
                                            info.templates, text_batch_size, device)
    mapping = label_map(dataset.classes if dataset.source.startswith("folder:") else None,
                        info.classnames, info.id)
    feats, labels = image_features(loaded, dataset, indices, mapping, len(info.classnames),
                                   batch_size, device, progress)
    values = zeroshot.logits(feats, weights)
    per_image = zeroshot.prediction_arrays(labels, values)
    if not keep_logits:
        del per_image["logits"]
    arrays = {**zeroshot.accuracy_arrays(labels, per_image["pred"], len(info.classnames)),
              **per_image}
    meta = {"n_images": len(indices), "n_classes": len(info.classnames),
            "n_templates": len(info.templates), "source": dataset.source,
            "split": dataset.split}
    if len(indices) < len(dataset):
        meta["image_ids"] = [dataset.image_id(i) for i in indices]
    return arrays, meta


class GroundTruthJob(units.Job):
    kind = KIND
    unit_errors = (ValueError,)  # data problems of one dataset: the others go on

    def dataset(self, name: str):
        return self.test_sample(name)

    def prepare(self, todo) -> None:
        from benchmark.extract.conductance_cmd import open_all

        names = [u.dataset for u in todo]
        for d in dict.fromkeys(names):
            self.catalog().info(d)  # class names and templates readable before any work
        open_all(self, names)

    def compute(self, state, unit):
        ds, indices = self.dataset(unit.dataset)
        a = self.args
        return zero_shot_accuracy(state, ds, indices, self.catalog().info(unit.dataset),
                                  batch_size=a.batch_size, text_batch_size=a.text_batch_size,
                                  device=self.device, progress=self.progress,
                                  keep_logits=not a.no_logits)


def run(args: argparse.Namespace) -> int:
    from benchmark.errors import UsageError
    from benchmark.features.store import FeatureStore

    for name in ("batch_size", "text_batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.images_per_dataset < 0:
        raise UsageError("--images-per-dataset must be >= 0 (0 = all test images)")
    protocol = units.protocol_of(args, DEFAULT_PROTOCOL)
    models = units.select_models(args, DEFAULT_PROTOCOL, strict=False)
    datasets = units.select_datasets(args, [*protocol.datasets, protocol.side_dataset])
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    job = GroundTruthJob(args, make_extractor(args), store.root)
    return units.drive(args, job, models, datasets, store)
