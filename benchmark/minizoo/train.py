"""Training the miniature zoo with open_clip (torch imported here only).

One model at a time: its config is written to ``<weights>/model_configs/<ARCH>.json`` and
registered (``open_clip.add_model_config``), the model is built by
``open_clip.create_model_and_transforms``, trained with open_clip's ``ClipLoss`` on captions
tokenised by open_clip's tokenizer, and saved as an ordinary open_clip checkpoint
``<weights>/<ARCH>/<tag>.pt`` (``{"state_dict": ...}``) beside a manifest ``<tag>.json``
(config, mixture, seed, steps, code version, sha256, seconds). The extraction stage loads it by
its id through :func:`benchmark.extract.models.load_model`, the path of published weights.

Determinism: fixed seeds, ``torch.use_deterministic_algorithms``, a fixed thread count
(:data:`THREADS`): the same bytes on the same machine, not across CPUs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.minizoo import world as w
from benchmark.minizoo.zoo import MODELS, ZooModel, open_clip_config

THREADS = 1
POOL_SIZE = 3000
TRAINER_VERSION = "1"


def weights_root() -> Path:
    from benchmark.extract.models import local_weights_root

    return local_weights_root()


def paths(model: ZooModel, world_seed: int) -> tuple[Path, Path]:
    arch, tag = model.id(world_seed).split(":")
    d = weights_root() / arch
    return d / f"{tag}.pt", d / f"{tag}.json"


def recipe(model: ZooModel) -> dict:
    """What a checkpoint must have been trained with to count as this zoo model: its open_clip
    config, its mixture, the trainer's version and the world's fingerprint."""
    return {"config": open_clip_config(model.tower), "mixture": model.mixture.as_dict(),
            "trainer_version": TRAINER_VERSION, "world": w.fingerprint()}


def is_trained(model: ZooModel, world_seed: int) -> bool:
    """The checkpoint exists, matches its manifest's sha256, and was trained with today's
    recipe (:func:`recipe`; a checkpoint of an older recipe under the same id is retrained)."""
    ckpt, man = paths(model, world_seed)
    if not (ckpt.is_file() and man.is_file()):
        return False
    try:
        m = json.loads(man.read_text())
        want = json.loads(json.dumps(recipe(model)))
        return m["sha256"] == _sha(ckpt) and all(m.get(k) == v for k, v in want.items())
    except (ValueError, KeyError):
        return False


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def write_configs() -> Path:
    d = weights_root() / "model_configs"
    d.mkdir(parents=True, exist_ok=True)
    for m in MODELS:
        p = d / f"{m.tower.arch}.json"
        text = json.dumps(open_clip_config(m.tower), indent=1, sort_keys=True)
        if not p.is_file() or p.read_text() != text:
            p.write_text(text)
    return d


def pool(world_seed: int, size: int = POOL_SIZE):
    """The shared training pool: ``size`` scenes and their clean renders (cached); scene ``i``
    depends on ``(world_seed, i)`` only, so a smaller pool is a prefix of a larger one."""
    from benchmark.data.upstream import cache_root

    f = cache_root() / "minizoo" / f"pool-s{world_seed}-n{size}-{w.fingerprint()[:16]}.npz"
    scenes = []
    rngs = [w._rng(world_seed, "train", i) for i in range(size)]
    for r in rngs:
        scenes.append(w.random_scene(r, domain="clean"))
    if f.is_file():
        return scenes, np.load(f)["images"]
    imgs = np.stack([np.asarray(w.render(s, r)) for s, r in zip(scenes, rngs, strict=True)])
    f.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per process: two training processes of a new world build the same
    # pool at once (same bytes), and each replaces it atomically
    tmp = f.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, images=imgs)
    tmp.replace(f)
    return scenes, imgs


def train_one(model: ZooModel, world_seed: int, progress: bool = True) -> dict:
    import open_clip
    import torch
    from PIL import Image

    from benchmark.extract.units import code_version

    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    write_configs()
    from benchmark.extract.models import register_local_configs

    register_local_configs()
    mid = model.id(world_seed)
    arch = model.tower.arch
    mix = model.mixture
    started = time.perf_counter()
    scenes, imgs = pool(world_seed, POOL_SIZE if mix.pool >= POOL_SIZE // 2 else mix.pool)
    n = min(mix.pool, len(scenes))
    kinds = np.array([s.kind == "digit" for s in scenes[:n]])
    pw = np.where(kinds, mix.digit_frac / max(kinds.mean(), 1e-9),
                  (1 - mix.digit_frac) / max(1 - kinds.mean(), 1e-9))
    pw = pw / pw.sum()
    dom = np.array([mix.domains.get(d, 0.0) for d in w.DOMAINS])
    dom = dom / dom.sum()

    seed = int(hashlib.sha256(mid.encode()).hexdigest()[:8], 16)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    import logging

    logging.disable(logging.WARNING)  # "initialized randomly": that is what training starts from
    try:
        net, _, _ = open_clip.create_model_and_transforms(arch, pretrained=None)
    finally:
        logging.disable(logging.NOTSET)
    tok = open_clip.get_tokenizer(arch)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    loss_fn = open_clip.ClipLoss()
    opt = torch.optim.AdamW(net.parameters(), lr=mix.lr, weight_decay=0.05)
    omit = frozenset(mix.omit)
    net.train()
    last = 0.0
    for step in range(mix.steps):
        lr = mix.lr * min(1.0, (step + 1) / 10) * 0.5 * (1 + np.cos(np.pi * step / mix.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.choice(n, size=mix.batch, p=pw)
        doms = rng.choice(len(w.DOMAINS), size=mix.batch, p=dom)
        batch, caps = [], []
        for i, d in zip(idx, doms, strict=True):
            s = w.with_domain(scenes[i], w.DOMAINS[d])
            im = w.apply_domain(Image.fromarray(imgs[i]), s.domain, rng)
            batch.append(np.asarray(im))
            caps.append(w.caption(s, rng, omit=omit, p_mention=mix.p_mention,
                                  p_short=mix.p_short))
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255.0
        x = (x - mean) / std
        t = tok(caps)
        fi = net.encode_image(x, normalize=True)
        ft = net.encode_text(t, normalize=True)
        loss = loss_fn(fi, ft, net.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            net.logit_scale.clamp_(0, np.log(100))
        last = float(loss.detach())
        if progress and (step % 10 == 9 or step == mix.steps - 1):
            el = time.perf_counter() - started
            print(f"\r  {mid}: step {step + 1}/{mix.steps} loss {last:.3f} {el:.0f} s",
                  end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    ckpt, man = paths(model, world_seed)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    tmp = ckpt.with_suffix(".tmp")
    torch.save({"state_dict": net.state_dict(), "name": mid}, tmp)
    tmp.replace(ckpt)
    seconds = time.perf_counter() - started
    manifest = {
        "model": mid, "arch": arch, "config": open_clip_config(model.tower),
        "mixture": mix.as_dict(), "world_seed": world_seed, "seed": seed,
        "steps": mix.steps, "final_loss": last, "trainer_version": TRAINER_VERSION,
        "world": w.fingerprint(),
        "code_version": code_version(), "open_clip": open_clip.__version__,
        "torch": torch.__version__, "threads": THREADS, "seconds": round(seconds, 2),
        "sha256": _sha(ckpt), "checkpoint": ckpt.name,
    }
    man.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _train_job(job: tuple[ZooModel, int]) -> dict:
    model, world_seed = job
    return train_one(model, world_seed, progress=False)


def default_workers() -> int:
    """Training processes: ``$VLMBENCH_WORKERS`` or one per core, at most 2 (each uses
    :data:`THREADS` threads, so a model's bytes do not depend on the count)."""
    import os

    env = os.environ.get("VLMBENCH_WORKERS", "").strip()
    if env:
        return max(1, int(env))
    return max(1, min(2, os.cpu_count() or 1))


def train_missing(world_seed: int = 0, models=None, progress: bool = True,
                  workers: int | None = None) -> list[dict]:
    """Train every zoo model whose checkpoint is missing (or fails its checksum).

    Models train one per process, ``workers`` at a time (default :func:`default_workers`);
    each process is single-threaded and seeded by the model's id, so the checkpoints are the
    same bytes whatever the number of workers.
    """
    chosen = list(models or MODELS)
    todo = [m for m in chosen if not is_trained(m, world_seed)]
    done = len(chosen) - len(todo)
    workers = min(workers or default_workers(), max(1, len(todo)))
    print(f"minizoo: {len(todo)} of {len(chosen)} models to train ({done} present) "
          f"into {weights_root()}" + (f", {workers} at a time" if workers > 1 else ""),
          file=sys.stderr)
    if workers <= 1:
        out = []
        for k, m in enumerate(todo, 1):
            print(f"[{k}/{len(todo)}] {m.id(world_seed)}", file=sys.stderr)
            out.append(train_one(m, world_seed, progress))
        return out
    import multiprocessing as mp

    write_configs()
    jobs = [(m, world_seed) for m in todo]
    out = []
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool_:
        for k, man in enumerate(pool_.imap(_train_job, jobs), 1):
            out.append(man)
            print(f"[{k}/{len(todo)}] {man['model']}: {man['steps']} steps in "
                  f"{man['seconds']:.0f} s (loss {man['final_loss']:.3f}; "
                  f"{time.perf_counter() - started:.0f} s elapsed)", file=sys.stderr)
    return out
