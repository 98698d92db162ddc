"""``python -m benchmark extract text-features``: LOVM's ModelGPT text features for any model.

For every (model, dataset) pair: the model's own open_clip text encoder embeds the dataset's
LOVM prompt templates (one per class name), SWAB's LLM captions (``data/captions_dataset``) and
synonyms (``data/syn_dataset``); :func:`benchmark.extract.text_features.text_features_for_dataset`
turns them into the six features of LOVM's ``eval_table_features.csv`` (definitions and the
deliberate deviations from LOVM's code: that module's docstring). One feature-pack record per
pair (kind ``text-features``, one 0-d array per feature), written as soon as it is computed:
an interrupted run resumes where it stopped, and a pair already in the store is skipped
(planning, resume, shards and backends: the shared driver, :mod:`benchmark.extract.units`).

Models load through :func:`benchmark.extract.models.load_model` (``"ARCH:pretrained"``, open_clip
weights from its cache or the Hugging Face cache). Without weights the run stops with a one-line
error naming the model; ``--random-init`` (smoke tests only) builds the architecture with random
weights and records ``random_init: true`` in the pack, which ``run`` refuses unless
``--allow-random-init``. Heavy imports (torch, open_clip) happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from benchmark.extract import units

log = logging.getLogger(__name__)

KIND = "text-features"
EXTRACTOR_VERSION = "1"


def default_datasets() -> list[str]:
    """Registry datasets with published captions and synonyms, except side-information ones."""
    from benchmark.data.catalog import registry

    return [
        d for d, e in registry().items()
        if e.get("captions") and e.get("synonyms") and not e.get("side_info_only")
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmark.extract.text_features import LOVM_NOISE_SIGMA

    units.add_common_arguments(
        parser,
        models_help="comma-separated open_clip ids ARCH:pretrained (required unless "
        "--protocol: its zoo)",
        datasets_help="comma-separated dataset ids (default: the protocol's, else every "
        "dataset with published captions and synonyms, ImageNet-1k excluded)",
        images=False,
    )
    parser.add_argument("--batch-size", type=int, default=256,
                        help="texts per forward pass of the text tower")
    parser.add_argument("--sigma", type=float, default=LOVM_NOISE_SIGMA,
                        help="std of the noise added to caption embeddings before classifying "
                        f"them (LOVM: {LOVM_NOISE_SIGMA})")
    parser.add_argument("--seed", type=int, default=0, help="seed of that noise")


def extractor_for(args: argparse.Namespace):
    """The pack identity: everything that changes the numbers (not device or batch size)."""
    from benchmark.features.store import Extractor

    return Extractor(
        name="text-features",
        version=EXTRACTOR_VERSION,
        params={
            "sigma": float(args.sigma),
            "seed": int(args.seed),
            "random_init": bool(args.random_init),
            "prompts": "LOVM templates x class names",
            "texts": "SWAB captions_dataset / syn_dataset",
        },
    )


def features_for(loaded, catalog, dataset: str, *, sigma: float, seed: int, batch_size: int,
                 device: str) -> tuple[dict[str, float], dict[str, Any]]:
    """The six features of one (model, dataset) and the record's metadata."""
    from benchmark.extract.text_features import text_features_for_dataset

    info = catalog.info(dataset)
    captions, synonyms = catalog.captions(dataset), catalog.synonyms(dataset)
    values = text_features_for_dataset(
        loaded.model, loaded.tokenizer, info.classnames, info.templates, captions, synonyms,
        batch_size=batch_size, device=device, sigma=sigma, seed=seed,
    )
    meta = {
        "n_classes": len(info.classnames),
        "n_templates": len(info.templates),
        "n_captions": sum(len(captions[c]) for c in dict.fromkeys(info.classnames)),
        "n_synonyms": sum(len(synonyms[c]) for c in dict.fromkeys(info.classnames)),
    }
    return values, meta


class TextFeaturesJob(units.Job):
    kind = KIND
    unit_errors = (KeyError, ValueError, RuntimeError)  # data problems of one dataset

    def compute(self, state, unit):
        import numpy as np

        values, meta = features_for(
            state, self.catalog(), unit.dataset, sigma=self.args.sigma, seed=self.args.seed,
            batch_size=self.args.batch_size, device=self.device,
        )
        return {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}, meta


def run(args: argparse.Namespace) -> int:
    from benchmark.errors import UsageError
    from benchmark.extract.models import ModelLoadError
    from benchmark.features.store import FeatureStore

    protocol = units.protocol_of(args, None)
    models = units.select_models(args, None, strict=False)
    datasets = units.select_datasets(args, protocol.datasets if protocol else default_datasets())
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    job = TextFeaturesJob(args, extractor_for(args), store.root)
    try:
        return units.drive(args, job, models, datasets, store)
    except ModelLoadError as err:
        raise UsageError(str(err)) from None
