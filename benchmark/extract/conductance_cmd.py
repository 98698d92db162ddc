"""``python -m benchmark extract conductance``: per-image block-conductance feature packs (DCD).

For every (model, dataset) -- the protocol's zoo and targets, or ``--models`` / ``--datasets`` --
a fixed sample of ``--images-per-dataset`` test images (:func:`benchmark.loaders.sample_indices`
with ``--seed``; the same images for every model) is preprocessed with the model's own eval
transform, and :func:`benchmark.extract.conductance.block_conductance` gives ``c_m(x)``, one
value per block of the visual tower (docs/methods/dcd.md, section 1). Each (model, dataset) is
one record of the ``conductance`` pack of the model (:mod:`benchmark.features`)::

    values      float32 [n_images, n_blocks]
    meta        image_ids (the sample, in row order), blocks (names), n_images, source, split

The extractor's parameters (``n_steps``, ``method``, ``images_per_dataset``, ``seed``,
``random_init``, objective and baseline) are in the manifest; a pack made with other parameters
is an error before any work (never a mix). Records are written one by one, atomically, so an
interrupted run resumes: a re-run skips every record that reads back with a valid checksum and
computes only the others. A model is loaded only when one of its records is missing.

Refusals, all before any work: unknown models or datasets ("did you mean"); models outside
open_clip (BLIP, BEiT-3 -- evaluated by SWAB with their own code) unless
``--skip-unextractable``; datasets whose images cannot be opened. During the run: missing
weights (:class:`~benchmark.extract.models.WeightsUnavailableError`, never a silent fallback to
random weights) and towers whose blocks cannot be found stop the command with one line.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

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
    p.add_argument("--protocol", help="zoo and datasets to extract (default: dcd48)")
    p.add_argument("--models", help="comma-separated model ids (default: the protocol's zoo)")
    p.add_argument("--datasets", help="comma-separated dataset ids (default: the protocol's)")
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
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--random-init",
        action="store_true",
        help="random weights (smoke tests); recorded, and refused by `run` unless "
        "--allow-random-init",
    )
    p.add_argument("--weights-dir", help="open_clip weights cache (default: open_clip's / HF_HOME)")
    p.add_argument(
        "--data-dir",
        help="dataset files, <DIR>/<dataset> (default "
        "$VLMBENCH_DATA or ~/.cache/vlmbench/datasets)",
    )
    p.add_argument(
        "--images-dir",
        help="read every dataset from an image folder "
        "DIR/<dataset>/test/<class>/<image> instead of its registry loader",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="let the dataset loaders download missing datasets into --data-dir",
    )
    p.add_argument(
        "--features-dir",
        help="feature pack directory (default $VLMBENCH_FEATURES or ~/.cache/vlmbench/features)",
    )
    p.add_argument(
        "--skip-unextractable",
        action="store_true",
        help="skip models no loader exists for (BLIP, BEiT-3) instead of failing",
    )
    p.add_argument("--no-progress", action="store_true")


@dataclass(frozen=True)
class Plan:
    models: tuple[str, ...]  # extractable, in order
    datasets: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (model, why) not extractable


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def not_extractable(model: str) -> str | None:
    """Why ``model`` cannot be extracted here, or None."""
    from benchmark.zoo import NON_OPENCLIP

    arch = model.partition(":")[0]
    if model in NON_OPENCLIP or arch in {m.partition(":")[0] for m in NON_OPENCLIP}:
        return (
            f"{model}: not extractable -- not an open_clip model (SWAB evaluated BLIP / "
            f"BEiT-3 with their own code) and no loader exists for it"
        )
    return None


def make_plan(args: argparse.Namespace) -> Plan:
    from benchmark.catalog import dataset_ids, unknown_message
    from benchmark.cli import CLIError
    from benchmark.protocol import DEFAULT_PROTOCOL, PROTOCOLS, get_protocol

    protocol = get_protocol(args.protocol or DEFAULT_PROTOCOL)
    known_models = list(dict.fromkeys(m for p in PROTOCOLS.values() for m in p.zoo))
    models = _csv(args.models) or list(protocol.zoo)
    for m in models:
        if m not in known_models:
            raise CLIError(unknown_message("model", m, known_models))
    datasets = _csv(args.datasets) or list(protocol.datasets)
    for d in datasets:
        if d not in dataset_ids():
            raise CLIError(unknown_message("dataset", d, dataset_ids()))
    skipped = [(m, why) for m in models if (why := not_extractable(m))]
    if skipped and not args.skip_unextractable:
        raise CLIError(
            f"{len(skipped)} model(s) not extractable (not open_clip models; no loader exists): "
            f"{', '.join(m for m, _ in skipped)}; pass --skip-unextractable to extract the others"
        )
    for _, why in skipped:
        print(f"skip {why}", file=sys.stderr)
    kept = tuple(dict.fromkeys(m for m in models if not not_extractable(m)))
    return Plan(kept, tuple(dict.fromkeys(datasets)), tuple(skipped))


def _defaults() -> tuple[int, str]:
    """block_conductance's own defaults, so the CLI cannot drift from the library."""
    from benchmark.extract.conductance import block_conductance

    params = inspect.signature(block_conductance).parameters
    return params["n_steps"].default, params["method"].default


def make_extractor(args: argparse.Namespace):
    from benchmark.features import Extractor

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
    from benchmark.cli import CLIError
    from benchmark.extract.conductance import path_alphas

    for name in ("images_per_dataset", "batch_size", "internal_batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    n_steps, method = _defaults()
    try:
        path_alphas(args.n_steps if args.n_steps is not None else n_steps, args.method or method)
    except ValueError as err:
        raise CLIError(f"--n-steps/--method: {err}") from None


def todo(store, extractor, plan: Plan) -> dict[str, list[str]]:
    """model -> datasets whose record is missing or unreadable (a re-run recomputes those)."""
    import json

    from benchmark.cli import CLIError
    from benchmark.features import FeaturePackError

    wanted = json.loads(json.dumps(extractor.as_dict()))
    out: dict[str, list[str]] = {}
    for model in plan.models:
        existing = store.extractor(KIND, model)
        if existing is not None and existing.as_dict() != wanted:
            raise CLIError(
                f"the {KIND} pack of {model} in {store.pack_dir(KIND, model)} was made with "
                f"{existing.as_dict()['params']} (version {existing.version}), not "
                f"{wanted['params']} (version {wanted['version']}); re-run with its options, "
                f"delete it, or use another --features-dir"
            )
        have = set(store.datasets(KIND, model))
        missing = []
        for d in plan.datasets:
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


def _code_version() -> str:
    from benchmark import __version__
    from benchmark.results import git_commit

    git = git_commit()
    if not git.get("commit"):
        return __version__
    return f"{__version__}+g{git['commit'][:12]}" + (".dirty" if git.get("dirty") else "")


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


def run(args: argparse.Namespace) -> int:
    from benchmark.cli import CLIError
    from benchmark.extract.models import ModelLoadError
    from benchmark.loaders import LoaderError

    try:
        return _run(args)
    except (ModelLoadError, LoaderError) as err:
        raise CLIError(str(err)) from err


def _run(args: argparse.Namespace) -> int:
    from benchmark.features import FeatureStore

    started = time.perf_counter()
    plan = make_plan(args)
    _check_options(args)
    extractor = make_extractor(args)
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    work = todo(store, extractor, plan)
    n_records = len(plan.models) * len(plan.datasets)
    n_todo = sum(len(v) for v in work.values())
    if not work:
        print(f"all {n_records} {KIND} records present in {store.root}; nothing to do")
        return 0
    print(
        f"{KIND}: {n_todo} of {n_records} records to extract "
        f"({n_records - n_todo} present) into {store.root}",
        file=sys.stderr,
    )

    datasets, samples = _open_datasets(args, sorted({d for ds in work.values() for d in ds}))
    written = _extract(args, plan, work, store, extractor, datasets, samples)
    elapsed = time.perf_counter() - started
    print(f"wrote {written} {KIND} records to {store.root} ({elapsed:.1f} s)")
    return 0


def _open_datasets(args, names: list[str]):
    """Open every dataset that has work before loading any model (fail before any work)."""
    from benchmark import loaders

    datasets, samples, failed = {}, {}, []
    for d in names:
        try:
            if args.images_dir:
                ds = loaders.open_dataset(d, args.images_dir, split="test", backend="folder")
            else:
                ds = loaders.open_dataset(d, args.data_dir, split="test", download=args.download)
        except loaders.LoaderError as err:
            failed.append((d, err))
            continue
        datasets[d] = ds
        samples[d] = loaders.sample_indices(len(ds), args.images_per_dataset, args.seed)
        if len(samples[d]) < args.images_per_dataset:
            log.warning(
                "%s has %d test images, fewer than --images-per-dataset %d: using all",
                d,
                len(ds),
                args.images_per_dataset,
            )
    if failed:
        first, err = failed[0]
        more = [d for d, _ in failed[1:]]
        tail = f"; {len(more)} more dataset(s) unavailable too: {', '.join(more)}" if more else ""
        raise type(err)(f"{err}{tail}") from err
    return datasets, samples


def _extract(args, plan: Plan, work, store, extractor, datasets, samples) -> int:
    import numpy as np
    import torch

    from benchmark.cli import CLIError
    from benchmark.extract import models as model_loading
    from benchmark.extract.blocks import BlockDiscoveryError, find_blocks

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: torch {torch.__version__} sees no CUDA device")
    params = dict(extractor.params)
    code_version = _code_version()
    written = 0
    for model in plan.models:
        if model not in work:
            continue
        loaded = model_loading.load_model(
            model, random_init=args.random_init, device=device, cache_dir=args.weights_dir
        )
        try:
            blocks = find_blocks(loaded.model.visual)
        except BlockDiscoveryError as err:
            raise CLIError(f"{model}: {err}") from err
        names = [name for name, _ in blocks]
        log.info("%s: %d blocks (%s .. %s) on %s", model, len(names), names[0], names[-1], device)
        for d in work[model]:
            ds, indices = datasets[d], samples[d]
            values = extract_one(
                loaded,
                blocks,
                ds,
                indices,
                params,
                args.batch_size,
                args.internal_batch_size,
                device,
                not args.no_progress,
            )
            if not np.isfinite(values).all():
                raise CLIError(
                    f"{model} on {d}: non-finite conductance values; nothing written "
                    f"(try a float32 model or a smaller --internal-batch-size)"
                )
            meta = {
                "image_ids": [ds.image_id(i) for i in indices],
                "blocks": names,
                "n_images": len(indices),
                "source": ds.source,
                "split": ds.split,
            }
            store.write(KIND, model, d, {"values": values}, extractor, meta, code_version)
            written += 1
        del loaded, blocks
        if device.startswith("cuda"):
            torch.cuda.empty_cache()  # the next model may be larger
    return written
