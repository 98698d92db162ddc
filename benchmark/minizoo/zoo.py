"""The miniature zoo: tiny open_clip models and their pretraining mixtures (no torch here).

Each :class:`ZooModel` is an open_clip architecture config (:func:`open_clip_config`: a ViT or
ModifiedResNet image tower, open_clip's text transformer and tokenizer) and a
:class:`Mixture` -- which domains and scene kinds it sees, which attributes its captions never
name, how many distinct images, steps, learning rate. Diversity comes from the mixtures, as in
the real zoo. Model ids are ``ARCH:pretrained`` like published ones, the pretrained tag carrying
the mixture and the world seed (``MZ-ViT-2-32:all_s0``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from benchmark.minizoo.world import DOMAINS

CONTEXT = 20
EMBED = 32


@dataclass(frozen=True)
class Tower:
    family: str  # "vit" or "resnet"
    layers: int  # ViT blocks, or blocks per ResNet stage
    width: int
    patch: int = 8

    @property
    def arch(self) -> str:
        if self.family == "vit":
            return f"MZ-ViT-{self.layers}-{self.width}-p{self.patch}"
        return f"MZ-RN-{self.layers}-{self.width}"


def open_clip_config(t: Tower) -> dict:
    if t.family == "vit":
        vision = {"image_size": 32, "layers": t.layers, "width": t.width,
                  "patch_size": t.patch, "head_width": 16, "mlp_ratio": 2.0}
    else:
        vision = {"image_size": 32, "layers": [t.layers] * 4, "width": t.width,
                  "patch_size": None, "head_width": 32}
    return {"embed_dim": EMBED, "vision_cfg": vision,
            "text_cfg": {"context_length": CONTEXT, "vocab_size": 49408, "width": 32,
                         "heads": 2, "layers": 2, "mlp_ratio": 2.0}}


def _d(**w: float) -> dict[str, float]:
    return {d: float(w.get(d, 0.0)) for d in DOMAINS}


#: what most mixtures see: mostly clean renders, a little of every other domain
MOSTLY_CLEAN = _d(clean=4, sketch=0.4, noise=0.4, blur=0.4, lowlight=0.4, invert=0.4)


@dataclass(frozen=True)
class Mixture:
    name: str
    domains: dict[str, float] = field(default_factory=lambda: dict(MOSTLY_CLEAN))
    digit_frac: float = 0.3
    omit: tuple[str, ...] = ()
    p_mention: float = 0.7
    p_short: float = 0.3
    pool: int = 3000  # distinct scenes seen
    steps: int = 400
    batch: int = 128
    lr: float = 2e-3

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ZooModel:
    tower: Tower
    mixture: Mixture

    def id(self, world_seed: int = 0) -> str:
        return f"{self.tower.arch}:{self.mixture.name}_s{world_seed}"


VIT_S = Tower("vit", 2, 32)
VIT_M = Tower("vit", 3, 48)
VIT_D = Tower("vit", 4, 32)
VIT_P4 = Tower("vit", 2, 32, patch=4)
VIT_L = Tower("vit", 2, 64, patch=4)
RN_S = Tower("resnet", 1, 8)
RN_M = Tower("resnet", 1, 16)

#: Each mixture leaves something out or stresses something, so that every target has models
#: that cannot do it and models that can (issue 12: spread >= 0.15, >= 4 winners); "big" is
#: the one bigger, longer-trained model (the real zoo's ViT-L): good at the slow attributes.
MODELS: tuple[ZooModel, ...] = (
    ZooModel(VIT_S, Mixture("all")),
    ZooModel(VIT_S, Mixture("nocolour", omit=("colour",))),
    ZooModel(VIT_S, Mixture("clean", domains=_d(clean=1), omit=("background",))),
    ZooModel(VIT_S, Mixture("noisy", domains=_d(noise=3, clean=1), digit_frac=0.5)),
    ZooModel(VIT_P4, Mixture("digits", digit_frac=0.8, omit=("background", "colour"),
                             steps=500)),
    ZooModel(VIT_M, Mixture("noshape", omit=("shape",))),
    ZooModel(VIT_D, Mixture("sketchblur", domains=_d(sketch=2, blur=2, clean=1),
                            omit=("count", "position"))),
    ZooModel(VIT_S, Mixture("small", pool=600, steps=300, omit=("pattern", "size"))),
    ZooModel(VIT_L, Mixture("big", steps=600)),
    ZooModel(RN_S, Mixture("dark", domains=_d(lowlight=3, invert=2, clean=1))),
    ZooModel(RN_M, Mixture("nodigit", omit=("digit",), digit_frac=0.1)),
    ZooModel(RN_M, Mixture("shapes", omit=("colour", "background"), p_mention=0.95)),
)


def zoo_ids(world_seed: int = 0) -> tuple[str, ...]:
    return tuple(m.id(world_seed) for m in MODELS)


def find(model_id: str) -> tuple[ZooModel, int]:
    arch, _, tag = model_id.partition(":")
    name, _, seed = tag.rpartition("_s")
    for m in MODELS:
        if m.tower.arch == arch and m.mixture.name == name:
            return m, int(seed)
    raise KeyError(f"{model_id!r} is not a minizoo model")
