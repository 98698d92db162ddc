"""DCD smoke run: random-init packs on synthetic images, then the DCD variants end to end.

NOT a result: the towers have random weights and the images are noise, so the numbers say
nothing about DCD. It shows that the whole path works on this machine -- synthetic image
folder -> ``extract conductance --random-init`` (real open_clip architectures) -> feature packs
-> ``run --methods dcd,dcd-cosine,dcd-jsd --allow-random-init`` -> results -- and how long it
takes. Usage::

    python perf/smoke_dcd.py [--out DIR] [--models ...] [--datasets ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = "RN50:openai,ViT-B-32:openai,RN101:openai,ViT-B-16:openai"
DATASETS = "cars,dtd,eurosat,mnist,pets,svhn"


def synthetic_folder(root: Path, datasets: list[str], per_class: int = 3, classes: int = 2):
    """``root/<dataset>/test/<class>/<i>.png``: noise images with a per-dataset colour cast."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for j, d in enumerate(datasets):
        tint = rng.uniform(0, 255, size=3)
        for c in range(classes):
            folder = root / d / "test" / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = (0.5 * rng.uniform(0, 255, size=(64, 64, 3)) + 0.5 * tint * (1 + j % 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")


def sh(*argv: str) -> float:
    start = time.perf_counter()
    print("$", " ".join(argv), flush=True)
    subprocess.run(argv, check=True)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="working directory (default: a temporary one)")
    p.add_argument("--models", default=MODELS)
    p.add_argument("--datasets", default=DATASETS)
    p.add_argument("--n-steps", default="4")
    p.add_argument("--images-per-dataset", default="6")
    args = p.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="dcd-smoke-"))
    datasets = args.datasets.split(",")
    synthetic_folder(work / "images", datasets)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    py = sys.executable
    t_extract = sh(py, "-m", "benchmark", "extract", "conductance", "--models", args.models,
                   "--datasets", args.datasets, "--images-dir", str(work / "images"),
                   "--random-init", "--features-dir", str(work / "features"),
                   "--images-per-dataset", args.images_per_dataset, "--n-steps", args.n_steps,
                   "--no-progress")
    t_run = sh(py, "-m", "benchmark", "run", "--methods", "dcd,dcd-cosine,dcd-jsd,inb,avgrank",
               "--protocol", "lovm", "--models", args.models, "--datasets", args.datasets,
               "--features-dir", str(work / "features"), "--allow-random-init",
               "--out", str(work / "results"), "--no-progress")
    print(f"SMOKE RUN (random weights, synthetic images; numbers are meaningless): "
          f"extract {t_extract:.0f} s, run {t_run:.1f} s, results in {work / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
