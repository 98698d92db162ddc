"""``python -m benchmark extract conductance``: per-image block-conductance feature packs (DCD).

For every (model, dataset) -- the protocol's zoo and targets, or ``--models`` / ``--datasets`` --
a fixed sample of ``--images-per-dataset`` test images (:func:`benchmark.extract.loaders.sample_indices`
with ``--seed``; the same images for every model) is preprocessed with the model's own eval
transform, and :func:`benchmark.extract.conductance.block_conductance` gives ``c_m(x)``, one
value per block of the visual tower (docs/methods/dcd.md, section 1). Each (model, dataset) is
one record of the ``conductance`` pack of the model (:mod:`benchmark.features.store`)::

    values      float32 [n_images, n_blocks]
    meta        image_ids (the sample, in row order), blocks (names), n_images, source, split

The extractor's parameters (``n_steps``, ``method``, ``images_per_dataset``, ``seed``,
``random_init``, objective and baseline) are in the manifest; a pack made with other parameters
is an error before any work (never a mix). Records are written one by one, atomically, so an
interrupted run resumes: a re-run skips every record that reads back with a valid checksum and
computes only the others. A model is loaded only when one of its records is missing. Planning,
resume, shards (``--shard i/N``) and backends (``--backend ray``) are the shared driver's
(:mod:`benchmark.extract.units`); this module says what one (model, dataset) record is.

Refusals, all before any work: unknown models or datasets ("did you mean"); models no loader
exists for unless ``--skip-unextractable`` (BLIP and BEiT-3 load through
:mod:`benchmark.extract.towers`); datasets whose images cannot be opened. During the run: missing
weights (:class:`~benchmark.extract.models.WeightsUnavailableError`, never a silent fallback to
random weights) and towers whose blocks cannot be found stop the command with one line.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from typing import Any

from benchmark.extract import units

log = logging.getLogger(__name__)

KIND = "conductance"
EXTRACTOR_VERSION = "1"
OBJECTIVE = "l2-norm-image-embedding"  # F(x) = ||f(x)||_2, image_objective in conductance.py
BASELINE = "zeros"  # x' = 0 after normalisation, the default baseline of block_conductance
DEFAULT_IMAGES = 100
DEFAULT_BATCH = 8
DEFAULT_INTERNAL_BATCH = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Light on purpose: the parser of every command is built on each invocation (no torch here).
    units.add_common_arguments(p, default_protocol="dcd48")
    p.add_argument(
        "--images-per-dataset",
        type=int,
        default=DEFAULT_IMAGES,
        help=f"test images sampled per dataset (default {DEFAULT_IMAGES})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the image sample (default 0)")
    p.add_argument("--n-steps", type=int, help="path steps (default: captum's, 50)")
    p.add_argument("--method", help="path quadrature (default: captum's, gausslegendre)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"images per conductance call (default {DEFAULT_BATCH})",
    )
    p.add_argument(
        "--internal-batch-size",
        type=int,
        default=DEFAULT_INTERNAL_BATCH,
        help="rows (path points x images) per forward/backward; lower it when "
        f"memory is short (default {DEFAULT_INTERNAL_BATCH})",
    )


def _defaults() -> tuple[int, str]:
    """block_conductance's own defaults, so the CLI cannot drift from the library."""
    from benchmark.extract.conductance import block_conductance

    params = inspect.signature(block_conductance).parameters
    return params["n_steps"].default, params["method"].default


def make_extractor(args: argparse.Namespace):
    from benchmark.features.store import Extractor

    n_steps, method = _defaults()
    return Extractor(
        KIND,
        EXTRACTOR_VERSION,
        {
            "n_steps": args.n_steps if args.n_steps is not None else n_steps,
            "method": args.method or method,
            "images_per_dataset": args.images_per_dataset,
            "seed": args.seed,
            "random_init": bool(args.random_init),
            "objective": OBJECTIVE,
            "baseline": BASELINE,
        },
    )


def _check_options(args: argparse.Namespace) -> None:
    from benchmark.errors import UsageError
    from benchmark.extract.conductance import path_alphas

    for name in ("images_per_dataset", "batch_size", "internal_batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    n_steps, method = _defaults()
    try:
        path_alphas(args.n_steps if args.n_steps is not None else n_steps, args.method or method)
    except ValueError as err:
        raise UsageError(f"--n-steps/--method: {err}") from None


def extract_one(
    loaded,
    blocks,
    dataset,
    indices: list[int],
    params: dict[str, Any],
    batch_size: int,
    internal_batch_size: int,
    device: str,
    progress: bool,
):
    """Conductance of the sampled images of ``dataset`` under ``loaded``: float32 [n, L]."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from benchmark.extract import conductance

    if list(indices) != sorted(set(indices)):
        raise ValueError("indices must be ascending and distinct (rows follow fetch order)")
    ds = dataset.with_transform(loaded.preprocess)
    values = np.full((len(indices), len(blocks)), np.nan, dtype=np.float32)
    row = 0
    batch: list[Any] = []

    def flush() -> None:
        nonlocal row, batch
        images = torch.stack(batch).to(device)
        scores = conductance.block_conductance(
            loaded.model,
            images,
            blocks,
            n_steps=params["n_steps"],
            method=params["method"],
            internal_batch_size=internal_batch_size,
        )
        values[row : row + len(batch)] = scores
        row += len(batch)
        bar.update(len(batch))
        batch = []

    with tqdm(
        total=len(indices),
        desc=f"{loaded.id} | {dataset.dataset_id}",
        unit="img",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for _, (image, _) in ds.fetch(indices):
            batch.append(image)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    if row != len(indices):
        raise RuntimeError(f"{dataset.dataset_id}: read {row} of {len(indices)} sampled images")
    return values


open_test_split = units.open_test_split  # where the other extract commands import it from


def open_all(job: units.Job, names) -> None:
    """Open every dataset with work before loading any model (fail before any work): the
    first unavailable one is the error, naming how many more are unavailable too."""
    from benchmark.extract import loaders

    failed = []
    for d in dict.fromkeys(names):
        try:
            job.dataset(d)
        except loaders.LoaderError as err:
            failed.append((d, err))
    if failed:
        first, err = failed[0]
        more = [d for d, _ in failed[1:]]
        tail = f"; {len(more)} more dataset(s) unavailable too: {', '.join(more)}" if more else ""
        raise type(err)(f"{err}{tail}") from err


class ConductanceJob(units.Job):
    kind = KIND

    def dataset(self, name: str):
        """(dataset, sample indices), opened once per process."""
        key = f"dataset:{name}"
        if key not in self._cache:
            a = self.args
            ds, indices = open_test_split(a, name, a.images_per_dataset, a.seed)
            if len(indices) < a.images_per_dataset:
                log.warning("%s has %d test images, fewer than --images-per-dataset %d: using "
                            "all", name, len(ds), a.images_per_dataset)
            self._cache[key] = ds, indices
        return self._cache[key]

    def prepare(self, todo) -> None:
        open_all(self, [u.dataset for u in todo])

    def load(self, model: str):
        from benchmark.errors import UsageError
        from benchmark.extract.blocks import BlockDiscoveryError, find_blocks

        loaded = super().load(model)
        try:
            blocks = find_blocks(loaded.model.visual)
        except BlockDiscoveryError as err:
            raise UsageError(f"{model}: {err}") from err
        names = [name for name, _ in blocks]
        log.info("%s: %d blocks (%s .. %s) on %s", model, len(names), names[0], names[-1],
                 self.device)
        return loaded, blocks

    def compute(self, state, unit):
        import numpy as np

        from benchmark.errors import UsageError

        loaded, blocks = state
        ds, indices = self.dataset(unit.dataset)
        a = self.args
        values = extract_one(loaded, blocks, ds, indices, dict(self.extractor.params),
                             a.batch_size, a.internal_batch_size, self.device, self.progress)
        if not np.isfinite(values).all():
            raise UsageError(
                f"{unit.model} on {unit.dataset}: non-finite conductance values; nothing "
                f"written (try a float32 model or a smaller --internal-batch-size)"
            )
        meta = {
            "image_ids": [ds.image_id(i) for i in indices],
            "blocks": [name for name, _ in blocks],
            "n_images": len(indices),
            "source": ds.source,
            "split": ds.split,
        }
        return {"values": values}, meta


def run(args: argparse.Namespace) -> int:
    from benchmark.features.store import FeatureStore

    protocol = units.protocol_of(args, "dcd48")
    models = units.select_models(args, "dcd48")
    datasets = units.select_datasets(args, protocol.datasets)
    _check_options(args)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    job = ConductanceJob(args, make_extractor(args), store.root)
    return units.drive(args, job, models, datasets, store)
