"""``python -m benchmark zoo train|build minizoo``: the miniature zoo trained here.

``train`` trains the missing models (one at a time, with progress; resumable) into the local
weights directory (``$VLMBENCH_WEIGHTS`` or ``<cache>/weights``); ``build`` also writes the
world's test images and extracts ground truth and every feature kind (the whole chain ``run
--protocol minizoo`` needs); ``--seed N`` (N > 0) does the same for another world, protocol
``minizoo-sN`` (perf/minizoo_seeds.py); ``write-metadata`` regenerates ``datasets/minizoo/``.
"""

from __future__ import annotations

import argparse

from benchmark.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["train", "build", "write-metadata"],
                   help="train: the missing checkpoints; build: train + images + every feature "
                   "pack the minizoo protocol needs; write-metadata: datasets/minizoo/ files")
    p.add_argument("zoo", nargs="?", default="minizoo", choices=["minizoo"],
                   help="which zoo (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="world seed (default 0: protocol minizoo; N > 0 builds the zoo of "
                   "protocol minizoo-sN, the seed-spread study's, with its own test images)")
    p.add_argument("--models", help="comma-separated subset of the zoo")
    p.add_argument("--features-dir",
                   help="feature store (default: $VLMBENCH_CACHE/features, "
                   "~/.cache/vlmbench/features when unset)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: bars only on a terminal outside CI)")


def run(args: argparse.Namespace) -> int:
    from benchmark.minizoo import pipeline, train, zoo

    if args.action == "write-metadata":
        from benchmark.data.catalog import _registry_path
        from benchmark.minizoo.datasets import write_metadata

        n = write_metadata(_registry_path().parent)
        print(f"wrote {n} files under {_registry_path().parent / 'minizoo'}")
        return 0
    ids = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    try:
        chosen = [zoo.find(m)[0] for m in ids] if ids else list(zoo.MODELS)
    except KeyError as err:
        raise UsageError(f"{err.args[0]}; see benchmark/minizoo/zoo.py") from None
    if args.action == "train":
        done = train.train_missing(args.seed, chosen, not args.no_progress)
        for m in done:
            print(f"{m['model']}: {m['steps']} steps in {m['seconds']:.1f} s, "
                  f"loss {m['final_loss']:.3f}, sha256 {m['sha256'][:12]}")
        return 0
    from benchmark.core.protocol import minizoo_name

    times = pipeline.ensure([m.id(args.seed) for m in chosen], world_seed=args.seed,
                            features_dir=args.features_dir, progress=not args.no_progress)
    print(f"{minizoo_name(args.seed)} stages: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    return 0
