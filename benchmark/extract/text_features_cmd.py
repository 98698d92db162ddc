"""``python -m benchmark extract text-features``: LOVM's ModelGPT text features for any model.

For every (model, dataset) pair: the model's own open_clip text encoder embeds the dataset's
LOVM prompt templates (one per class name), SWAB's LLM captions (``data/captions_dataset``) and
synonyms (``data/syn_dataset``); :func:`benchmark.extract.text_features.text_features_for_dataset`
turns them into the six features of LOVM's ``eval_table_features.csv`` (definitions and the
deliberate deviations from LOVM's code: that module's docstring). One feature-pack record per
pair (kind ``text-features``, one 0-d array per feature), written as soon as it is computed:
an interrupted run resumes where it stopped, and a pair already in the store is skipped.

Models load through :func:`benchmark.extract.models.load_model` (``"ARCH:pretrained"``, open_clip
weights from its cache or the Hugging Face cache). Without weights the run stops with a one-line
error naming the model; ``--random-init`` (smoke tests only) builds the architecture with random
weights and records ``random_init: true`` in the pack, which ``run`` refuses unless
``--allow-random-init``. Heavy imports (torch, open_clip) happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

KIND = "text-features"
EXTRACTOR_VERSION = "1"


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def default_datasets() -> list[str]:
    """Registry datasets with published captions and synonyms, except side-information ones."""
    from benchmark.catalog import registry

    return [
        d for d, e in registry().items()
        if e.get("captions") and e.get("synonyms") and not e.get("side_info_only")
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmark.cli import _add_data_options
    from benchmark.extract.text_features import LOVM_NOISE_SIGMA

    parser.add_argument("--models", required=True,
                        help="comma-separated open_clip ids ARCH:pretrained")
    parser.add_argument("--datasets", help="comma-separated dataset ids (default: every dataset "
                        "with published captions and synonyms, ImageNet-1k excluded)")
    parser.add_argument("--features-dir", help="feature pack directory (default "
                        "$VLMBENCH_FEATURES or ~/.cache/vlmbench/features)")
    parser.add_argument("--weights-dir", help="open_clip weight cache directory (cache_dir)")
    parser.add_argument("--random-init", action="store_true",
                        help="random weights (smoke tests only; recorded in the pack)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sigma", type=float, default=LOVM_NOISE_SIGMA,
                        help="std of the noise added to caption embeddings before classifying "
                        f"them (LOVM: {LOVM_NOISE_SIGMA})")
    parser.add_argument("--seed", type=int, default=0, help="seed of that noise")
    parser.add_argument("--no-progress", action="store_true")
    _add_data_options(parser)


def extractor_for(args: argparse.Namespace):
    """The pack identity: everything that changes the numbers (not device or batch size)."""
    from benchmark.features import Extractor

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


def _same(a: dict, b: dict) -> bool:
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from benchmark import __version__
    from benchmark.catalog import Catalog, entry
    from benchmark.cli import CLIError, _data_layer
    from benchmark.extract import models as model_loading
    from benchmark.features import FeatureStore

    models = _csv(args.models)
    if not models:
        raise CLIError("--models is empty (e.g. --models ViT-B-32:laion2b_s34b_b79k)")
    datasets = _csv(args.datasets) or default_datasets()
    for d in datasets:
        entry(d)  # unknown dataset -> one-line error with suggestions
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    extractor = extractor_for(args)
    for m in models:
        have = store.extractor(KIND, m)
        if have is not None and not _same(have.as_dict(), extractor.as_dict()):
            raise CLIError(
                f"the {KIND} pack of {m} in {store.root} was made with {have.params}, not "
                f"{dict(extractor.params)}; delete {store.pack_dir(KIND, m)} or use another "
                f"--features-dir"
            )
    todo = {m: [d for d in datasets if not store.has(KIND, m, d)] for m in models}
    total = sum(len(v) for v in todo.values())
    skipped = len(models) * len(datasets) - total
    if skipped:
        log.info("%d record(s) already in %s: skipped", skipped, store.root)
    catalog = Catalog(_data_layer(args))
    failures: list[str] = []
    bar = tqdm(total=total, desc=KIND, unit="record", disable=args.no_progress)
    for m, pending in todo.items():
        if not pending:
            continue
        try:
            loaded = model_loading.load_model(
                m, random_init=args.random_init, device=args.device, cache_dir=args.weights_dir
            )
        except model_loading.ModelLoadError as err:
            bar.close()
            raise CLIError(str(err)) from None
        for d in pending:
            bar.set_postfix_str(f"{m} {d}", refresh=False)
            try:
                values, meta = features_for(
                    loaded, catalog, d, sigma=args.sigma, seed=args.seed,
                    batch_size=args.batch_size, device=args.device,
                )
            except (KeyError, ValueError, RuntimeError) as err:  # data problems of one dataset
                msg = err.args[0] if isinstance(err, KeyError) and err.args else err
                failures.append(f"{m} on {d}: {msg}")
                bar.update()
                continue
            arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
            store.write(KIND, m, d, arrays, extractor, meta=meta, code_version=__version__)
            bar.update()
        del loaded
    bar.close()
    done = total - len(failures)
    print(f"{KIND}: wrote {done} record(s), skipped {skipped} already present, "
          f"{len(failures)} failed ({store.root})")
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failures else 0
