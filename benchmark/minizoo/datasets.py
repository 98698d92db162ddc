"""The world's datasets as the loaders read them (no torch).

- metadata (:func:`metadata_files`): ``datasets/minizoo/<id>/{classnames.txt, templates.txt,
  captions.json, synonyms.json}`` in the repository, referenced from ``datasets/registry.toml``
  as ``local:`` keys; generated from :mod:`benchmark.minizoo.world` and checked against it in
  the tests (``python -m benchmark zoo write-metadata`` rewrites them);
- test images (:func:`write_images`): an image folder ``<data>/<id>/test/<class>/<k>.png``
  (``<data>`` = ``$VLMBENCH_DATA`` or ``<cache>/datasets``; ``<data>/minizoo-s<N>`` for world
  seeds N != 0, :func:`data_root`) read by the registry's
  ``folder:<id>`` loader, so the extract commands need no special case. A stamp file records
  the world seed and the image count; the folder is rewritten when either differs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from benchmark.minizoo import world as w

#: test images per class (a few hundred per target)
IMAGES_PER_CLASS = {"mz_broad": 6}
DEFAULT_PER_CLASS = 30
IMAGES_VERSION = "1"


def per_class(task_id: str) -> int:
    n = len(w.ALL_TASKS[task_id].classes)
    return IMAGES_PER_CLASS.get(task_id, max(20, min(DEFAULT_PER_CLASS * 8 // n, 60)))


def metadata_files() -> dict[str, str]:
    """``relative path under datasets/`` -> text, for every task."""
    out = {}
    for tid, task in w.ALL_TASKS.items():
        caps = w.class_captions(tid)
        out[f"minizoo/{tid}/classnames.txt"] = "\n".join(task.classes) + "\n"
        out[f"minizoo/{tid}/templates.txt"] = "\n".join(task.templates) + "\n"
        out[f"minizoo/{tid}/captions.json"] = json.dumps(caps, indent=1) + "\n"
        out[f"minizoo/{tid}/synonyms.json"] = json.dumps({c: [c] for c in task.classes},
                                                         indent=1) + "\n"
    return out


def write_metadata(root: Path) -> int:
    for rel, text in metadata_files().items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return len(metadata_files())


def data_root(world_seed: int = 0) -> Path:
    """Where the test folders of world ``world_seed`` live: ``<data>`` itself for seed 0 (the
    ``minizoo`` protocol, read by the registry's ``folder:`` loaders as they are), and
    ``<data>/minizoo-s<N>`` for the seed-spread study's other worlds, so that two worlds never
    overwrite each other's images (the pipeline passes it as ``--data-dir``)."""
    from benchmark.core.protocol import minizoo_name
    from benchmark.extract.loaders import default_data_root

    root = default_data_root()  # the subfolder is the protocol's name (extract's data_dir_of)
    return root if int(world_seed) == 0 else root / minizoo_name(world_seed)


def write_images(world_seed: int = 0, root: Path | None = None, tasks=None) -> list[str]:
    """Write the test split of every task (missing or stale ones) under ``root`` (default
    :func:`data_root` of the seed); returns the ids written."""
    root = Path(root) if root is not None else data_root(world_seed)
    written = []
    for tid in tasks or w.ALL_TASKS:
        d = root / tid
        stamp = {"world_seed": world_seed, "per_class": per_class(tid),
                 "version": IMAGES_VERSION, "world": w.fingerprint()[:16],
                 "task": hashlib.sha256(repr(w.ALL_TASKS[tid]).encode()).hexdigest()[:16]}
        sp = d / "minizoo.json"
        if sp.is_file() and json.loads(sp.read_text()) == stamp:
            continue
        if d.exists():
            shutil.rmtree(d)
        for label, im in w.split_items(tid, world_seed, per_class(tid)):
            cdir = d / "test" / f"{label:02d}"  # class index (label_map's digit rule)
            cdir.mkdir(parents=True, exist_ok=True)
            k = sum(1 for _ in cdir.iterdir())
            im.save(cdir / f"{k:04d}.png")
        sp.write_text(json.dumps(stamp))
        written.append(tid)
    return written
