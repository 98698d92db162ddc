"""Loading zoo models for the extraction stage (open_clip; torch imported here only).

BLIP and BEiT-3 (SWAB's 8 non-open_clip models) load through :mod:`benchmark.extract.towers`
behind the same interface (``encode_image``, ``encode_text``, ``visual``, preprocess, tokenizer).

A model id ``"ARCH:pretrained"`` maps to ``open_clip.create_model_and_transforms(ARCH,
pretrained=pretrained)``: open_clip finds the weights in its cache / the Hugging Face cache
(``HF_HOME``) or downloads them. Without weights the load fails with
:class:`WeightsUnavailableError` naming the model and how to supply them -- never a silent
fallback to random weights. Local checkpoints come first: an ordinary open_clip checkpoint at
``<weights>/<ARCH>/<pretrained>.pt`` (``<weights>`` = ``$VLMBENCH_WEIGHTS`` or
``<cache>/weights``; configs of architectures open_clip does not ship in
``<weights>/model_configs/``) is passed to open_clip as ``pretrained=<file>`` -- the trained
miniature zoo (``python -m benchmark zoo train minizoo``) is loaded this way, by the same call as
published weights. ``random_init=True`` builds the architecture with random weights
(smoke tests); every pack made that way records it, and ``run`` refuses such packs unless
``--allow-random-init`` is given.
"""

from __future__ import annotations

import logging

from benchmark.data.zoo import NON_OPENCLIP
from benchmark.errors import one_line
from benchmark.extract.model_types import (  # noqa: F401  (re-exported)
    LoadedModel,
    ModelLoadError,
    WeightsUnavailableError,
)

log = logging.getLogger(__name__)


WEIGHTS_ENV = "VLMBENCH_WEIGHTS"


def local_weights_root():
    import os
    from pathlib import Path

    from benchmark.data.upstream import cache_root

    env = os.environ.get(WEIGHTS_ENV)
    return Path(env).expanduser() if env else cache_root() / "weights"


def register_local_configs() -> None:
    """Register the open_clip configs in ``<weights>/model_configs`` (idempotent)."""
    import open_clip

    d = local_weights_root() / "model_configs"
    if d.is_dir() and any(d.glob("*.json")):
        known = set(open_clip.list_models())
        if any(p.stem not in known for p in d.glob("*.json")):
            open_clip.add_model_config(d)


def local_checkpoint(arch: str, pretrained: str):
    """``<weights>/<arch>/<pretrained>.pt`` when that file exists, else None."""
    p = local_weights_root() / arch / f"{pretrained}.pt"
    return p if p.is_file() else None


def split_id(model_id: str) -> tuple[str, str]:
    arch, sep, pretrained = model_id.partition(":")
    if not sep or not arch or not pretrained:
        raise ModelLoadError(f"model id {model_id!r} is not of the form 'ARCH:pretrained'")
    return arch, pretrained


def load_model(
    model_id: str,
    random_init: bool = False,
    device: str = "cpu",
    cache_dir: str | None = None,
) -> LoadedModel:
    """Build an open_clip model with its eval preprocessing and tokenizer."""
    from benchmark.extract import towers

    arch, pretrained = split_id(model_id)
    if towers.is_tower_model(model_id):
        return towers.load_tower(model_id, random_init=random_init, device=device,
                                 cache_dir=cache_dir)
    register_local_configs()
    local = local_checkpoint(arch, pretrained)
    if model_id in NON_OPENCLIP or arch in {m.split(":")[0] for m in NON_OPENCLIP}:
        raise ModelLoadError(
            f"{model_id}: unknown {arch} model (known: {', '.join(towers.SPECS)})")
    import open_clip

    if arch not in open_clip.list_models():
        raise ModelLoadError(f"{model_id}: open_clip {open_clip.__version__} has no "
                             f"architecture {arch!r}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch,
            pretrained=None if random_init else (str(local) if local else pretrained),
            device=device,
            cache_dir=cache_dir,
        )
    except Exception as err:  # open_clip/HF raise many types for "no weights here"
        if random_init:
            raise
        raise WeightsUnavailableError(
            f"no weights for {model_id} (open_clip pretrained={pretrained!r}): "
            f"{type(err).__name__}: {one_line(err)}. Put them in the open_clip "
            f"cache (--weights-dir DIR) or the Hugging Face cache (HF_HOME), or pass "
            f"--random-init for a smoke run"
        ) from None
    try:
        tokenizer = open_clip.get_tokenizer(arch, cache_dir=cache_dir)
    except TypeError:  # older open_clip without cache_dir
        tokenizer = open_clip.get_tokenizer(arch)
    model.eval()
    if random_init:
        log.warning("%s: RANDOM weights (--random-init); features are for smoke tests only",
                    model_id)
    return LoadedModel(model_id, model, preprocess, tokenizer, random_init)
