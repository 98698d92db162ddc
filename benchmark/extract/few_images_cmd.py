"""``python -m benchmark extract few-images``: a few test images per dataset through each model.

For every (model, dataset) -- the protocol's zoo and targets, or ``--models`` / ``--datasets``
-- one record of the ``few-images`` pack of the model (arrays and the two kinds that read
them: :mod:`benchmark.features.few_images`), from a seeded sample of ``--images-per-dataset``
test images (:func:`benchmark.extract.loaders.sample_indices` with ``--seed``: the same images
for every model, and the same images on every re-run with the same seed):

- unit image embeddings (the model's image tower, its own eval transform);
- zero-shot logits ``100 * <x, w_c>`` with the CLIP_benchmark classifier of the model's text
  tower (:func:`benchmark.extract.zeroshot.zero_shot_classifier`);
- the images' catalog class labels (mapped from image folders as ``extract class-stats`` does:
  :func:`benchmark.extract.class_stats_cmd.label_map`).

Resumable and sharded like every extract command (:mod:`benchmark.extract.units`); a pack made
with other parameters (sample size, seed, random init) is an error before any work.
``--random-init`` (smoke tests) builds random weights and records it; ``run`` refuses such
packs unless ``--allow-random-init``. Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse

from benchmark.extract import units

KIND = "few-images"
EXTRACTOR_VERSION = "1"
DEFAULT_IMAGES = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    units.add_common_arguments(p, default_protocol="dcd48")
    units.add_sample_arguments(p, DEFAULT_IMAGES, images_help="test images sampled per dataset")


def make_extractor(args: argparse.Namespace):
    """The pack identity: everything that changes the numbers (not device or batch sizes)."""
    from benchmark.features.few_images import LOGIT_SCALE
    from benchmark.features.store import Extractor

    return Extractor(KIND, EXTRACTOR_VERSION, {
        **units.sample_params(args),
        "classifier": "CLIP_benchmark: templates x class names, unit embeddings averaged, "
                      "renormalised",
        "logit_scale": LOGIT_SCALE,
    })


def few_images_for(loaded, dataset, indices, info, *, batch_size: int, text_batch_size: int,
                   device: str, progress: bool):
    """``(arrays, meta)`` of one record (:func:`benchmark.features.few_images.make_arrays`)."""
    import math

    import numpy as np

    from benchmark.extract.class_stats_cmd import image_features, label_map
    from benchmark.extract.zeroshot import zero_shot_classifier
    from benchmark.features.few_images import LOGIT_SCALE, make_arrays

    weights = zero_shot_classifier(loaded.model, loaded.tokenizer, info.classnames,
                                   info.templates, text_batch_size, device)
    mapping = label_map(dataset.classes if dataset.source.startswith("folder:") else None,
                        info.classnames, info.id)
    feats, labels = image_features(loaded, dataset, indices, mapping, len(info.classnames),
                                   batch_size, device, progress)
    logits = LOGIT_SCALE * np.asarray(feats, np.float64) @ np.asarray(weights, np.float64).T
    meta = {"image_ids": [dataset.image_id(i) for i in indices], "n_images": len(indices),
            "n_templates": len(info.templates), "source": dataset.source,
            "split": dataset.split}
    scale = getattr(loaded.model, "logit_scale", None)
    if scale is not None:  # the model's own temperature, for reference (not used in logits)
        value = float(scale.detach().exp()) if hasattr(scale, "exp") else float(scale)
        if math.isfinite(value):
            meta["logit_scale"] = value
    return make_arrays(feats, logits, labels), meta


class FewImagesJob(units.Job):
    kind = KIND
    unit_errors = (ValueError,)  # data problems of one dataset: the others go on

    def dataset(self, name: str):
        return self.test_sample(name)

    def prepare(self, todo) -> None:
        from benchmark.extract.conductance_cmd import open_all

        open_all(self, sorted({u.dataset for u in todo}))

    def compute(self, state, unit):
        ds, indices = self.dataset(unit.dataset)
        a = self.args
        return few_images_for(state, ds, indices, self.catalog().info(unit.dataset),
                              batch_size=a.batch_size, text_batch_size=a.text_batch_size,
                              device=self.device, progress=self.progress)


def run(args: argparse.Namespace) -> int:
    from benchmark.errors import UsageError
    from benchmark.features.store import FeatureStore

    for name in ("batch_size", "text_batch_size", "images_per_dataset"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    protocol = units.protocol_of(args, "dcd48")
    models = units.select_models(args, "dcd48")
    datasets = units.select_datasets(args, protocol.datasets)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    job = FewImagesJob(args, make_extractor(args), store.root)
    return units.drive(args, job, models, datasets, store)
