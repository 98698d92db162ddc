"""The whole minizoo chain from an empty cache, each stage through the real commands.

1. train the zoo (:func:`benchmark.minizoo.train.train_missing`), 2. write the world's test
image folders (:func:`benchmark.minizoo.datasets.write_images`), 3. ``extract ground-truth``,
4. ``extract conductance`` / ``text-features`` / ``class-stats`` / ``few-images`` /
``model-labels`` (MLL's labels on the world's concept graph,
:mod:`benchmark.minizoo.concepts`) -- the same command modules as ``python -m benchmark extract
<kind> --protocol minizoo``, with the protocol's cheaper settings
(:data:`SETTINGS`). Another world seed N (the seed-spread study, perf/minizoo_seeds.py) uses
protocol ``minizoo-s<N>`` and its own image root (:func:`benchmark.minizoo.datasets.data_root`).
Every stage is resumable (present checkpoints, images and records are skipped), so a second
call costs a few seconds. Per-stage wall times are returned.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

#: kind -> extra command-line options (the protocol's fixed, cheaper settings)
SETTINGS: dict[str, list[str]] = {
    "ground-truth": [],  # every test image (a few hundred per target)
    "conductance": ["--images-per-dataset", "25", "--n-steps", "8", "--batch-size", "25"],
    "text-features": [],
    "class-stats": ["--images-per-dataset", "100"],
    "few-images": ["--images-per-dataset", "20"],
    # the world's concept graph (59 nodes, 49 values); MLL's 75 images per node -> 16
    "model-labels": ["--images-per-node", "16"],
}
#: kinds with one pack per model (no --datasets option)
PER_MODEL = frozenset({"model-labels"})
MODULES = {
    "ground-truth": "benchmark.extract.ground_truth_cmd",
    "conductance": "benchmark.extract.conductance_cmd",
    "text-features": "benchmark.extract.text_features_cmd",
    "class-stats": "benchmark.extract.class_stats_cmd",
    "few-images": "benchmark.extract.few_images_cmd",
    "model-labels": "benchmark.extract.model_labels_cmd",
}


def settings_record() -> dict[str, str]:
    """The protocol's cheaper settings, as its leaderboard page records them."""
    from benchmark.minizoo import datasets, zoo

    steps = sorted({m.mixture.steps for m in zoo.MODELS})
    batch = sorted({m.mixture.batch for m in zoo.MODELS})
    per = {t: datasets.per_class(t) for t in (*zoo_targets(), "mz_broad")}
    return {
        "training": f"{len(zoo.MODELS)} models, {'/'.join(map(str, steps))} steps at batch "
                    f"{'/'.join(map(str, batch))}, open_clip ClipLoss, AdamW, 1 thread each "
                    "(benchmark/minizoo/zoo.py)",
        "test images per class": ", ".join(f"{k} {v}" for k, v in sorted(per.items())),
        **{f"extract {k}": " ".join(v) or "defaults" for k, v in SETTINGS.items()},
    }


def zoo_targets() -> tuple[str, ...]:
    from benchmark.minizoo import world

    return world.TARGETS


def extract(kind: str, models: list[str], features_dir: str | None = None,
            progress: bool = True, datasets: list[str] | None = None,
            world_seed: int = 0) -> int:
    """``extract <kind> --protocol <the seed's minizoo protocol>`` on ``models``; for a world
    seed other than 0, ``--data-dir`` is that world's image root (:func:`datasets.data_root`)."""
    from benchmark.core.protocol import get_protocol, minizoo_name
    from benchmark.minizoo import datasets as world_data

    mod = importlib.import_module(MODULES[kind])
    p = argparse.ArgumentParser(prog=f"extract {kind}")
    mod.add_arguments(p)
    name = minizoo_name(world_seed)
    argv = ["--protocol", name, "--models", ",".join(models), *SETTINGS[kind]]
    if world_seed != 0 and kind != "text-features":  # text-features reads no image
        argv += ["--data-dir", str(world_data.data_root(world_seed))]
    p_ = get_protocol(name)
    chosen = list(datasets or p_.datasets)
    if kind == "ground-truth":
        chosen = [*chosen, p_.side_dataset]
    if kind not in PER_MODEL:
        argv += ["--datasets", ",".join(dict.fromkeys(chosen))]
    if features_dir:
        argv += ["--features-dir", features_dir]
    if not progress:
        argv += ["--no-progress"]
    return mod.run(p.parse_args(argv))


STAMP = "minizoo-made-from.json"


def drop_stale_packs(chosen, world_seed: int, features_dir: str | None = None) -> list[str]:
    """Remove the packs of minizoo models whose checkpoint or world changed since they were
    extracted (a retrained model keeps its id, so the store alone cannot tell); returns the
    models whose packs were dropped. ``<features>/minizoo-made-from.json`` records, per model,
    the checkpoint's sha256 and the world's fingerprint the packs were made from."""
    import json
    import shutil

    from benchmark.features.store import FeatureStore, atomic_write_bytes
    from benchmark.minizoo import train, world

    store = FeatureStore(features_dir)
    path = store.root / STAMP
    try:
        made = json.loads(path.read_text())
    except (OSError, ValueError):
        made = {}
    kinds = tuple(dict.fromkeys((*MODULES, "ground-truth")))
    dropped = []
    for m in chosen:
        mid = m.id(world_seed)
        _, man = train.paths(m, world_seed)
        now = f"{json.loads(man.read_text())['sha256']}:{world.fingerprint()}"
        dirs = [d for k in kinds if (d := store.pack_dir(k, mid)).exists()]
        if dirs and made.get(mid) != now:
            for d in dirs:
                shutil.rmtree(d)
            dropped.append(mid)
        made[mid] = now
    if dropped:
        print(f"minizoo: {len(dropped)} models were retrained or the world changed since their "
              "feature packs were extracted; those packs were removed and are extracted again",
              file=sys.stderr)
    store.root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(made, indent=1, sort_keys=True).encode())
    return dropped


def ensure(models: list[str] | None = None, kinds=tuple(MODULES), world_seed: int = 0,
           features_dir: str | None = None, progress: bool = True,
           datasets: list[str] | None = None) -> dict[str, float]:
    """Make every stage present for ``models`` (default: the whole zoo); wall time per stage."""
    import torch

    from benchmark.minizoo import datasets as world_data
    from benchmark.minizoo import train, zoo

    torch.set_num_threads(train.THREADS)
    chosen = [zoo.find(m)[0] for m in models] if models else list(zoo.MODELS)
    ids = [m.id(world_seed) for m in chosen]
    times: dict[str, float] = {}
    t = time.perf_counter()
    train.train_missing(world_seed, chosen, progress)
    times["train"] = time.perf_counter() - t
    drop_stale_packs(chosen, world_seed, features_dir)
    t = time.perf_counter()
    world_data.write_images(world_seed)
    times["images"] = time.perf_counter() - t
    for kind in kinds:
        t = time.perf_counter()
        rc = extract(kind, ids, features_dir, progress, datasets, world_seed)
        times[kind] = time.perf_counter() - t
        if rc:
            print(f"minizoo: extract {kind} failed (exit {rc})", file=sys.stderr)
            break
    return times
