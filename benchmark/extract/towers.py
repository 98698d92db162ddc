"""BLIP and BEiT-3 retrieval models behind the open_clip interface of the extract commands.

The 8 models of ``dcd48`` that are not open_clip models (SWAB's zoo, ``benchmark.data.zoo.
NON_OPENCLIP``) load here into a :class:`TowerModel` with what every extract command uses of an
open_clip model: ``encode_image(x, normalize=False)``, ``encode_text(tokens)``, ``visual`` (the
module :func:`benchmark.extract.blocks.find_blocks` splits into blocks), an eval ``preprocess``
and a ``tokenizer`` (``tokenizer(list_of_str).to(device)`` -> what ``encode_text`` takes).

How SWAB evaluated them (``YCaigogogo/SWAB``: ``model/blip_class.py``, ``model/beit_class.py``,
``calc_ptm_stats_in_hist_task.py``; read, not copied), reproduced here:

- **embedding / head**: the retrieval models' *contrastive* (ITC) heads, never the ITM head.
  BLIP: image ``vision_proj(ViT(x)[:, 0])``, text ``text_proj(BERT_text_only(t)[:, 0])``
  (the text encoder without cross-attention, BLIP's ``mode='text'``); BEiT-3: image
  ``vision_head(BEiT3(x)[:, 0])`` through the vision experts, text
  ``language_head(BEiT3(t)[:, 0])`` through the language experts. ``encode_image`` returns
  them unnormalised (DCD's objective is their norm); every zero-shot use normalises them.
- **zero-shot**: LOVM's templates with the class name filled in, unit text embeddings averaged
  and renormalised, unit image embeddings, argmax -- the same protocol as the open_clip models
  (:mod:`benchmark.extract.zeroshot`); SWAB encodes prompts one at a time, here they are
  batched (both pad to a fixed length, so the result is the same up to float rounding).
- **preprocessing**: BLIP ``Resize((224, 224), bicubic)``, CLIP's mean/std -- SWAB built the
  retrieval models with ``image_size=224`` (their checkpoints were fine-tuned at 384; BLIP's
  loader interpolates the position embedding, bicubic, as :func:`resize_position_embedding`
  does); BEiT-3 ``Resize((384, 384), bicubic)``, mean = std = 0.5 (timm's "inception").
- **tokenizers**: BLIP: BERT (``bert-base-uncased`` + BLIP's two added tokens, shipped with the
  hub checkpoints), ``padding='max_length', truncation=True, max_length=35``; BEiT-3:
  ``beit3.spm`` read as transformers' ``XLMRobertaTokenizer`` reads it (fairseq ids: ``<s>``
  0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, sentencepiece ids + 1), ``<s> text </s>`` cut to 62
  ids, padded to 64 with a padding mask (SWAB's ``BEIT3.tokenize``).

Implementations. BLIP: ``transformers.BlipForImageTextRetrieval`` (the hub ids
``Salesforce/blip-itm-{base,large}-{coco,flickr}`` are transformers' conversions of the
``model_{base,large}_retrieval_{coco,flickr}.pth`` files SWAB used; their key mapping is
transformers' ``convert_blip_original_pytorch_to_hf.py``). BEiT-3: the authors' retrieval model
is torchscale's ``BEiT3`` backbone plus two bias-free linear heads; torchscale's package pins
timm 0.6 and fairscale, so the multiway backbone is written here from the paper (Wang et al.,
2023, "Image as a Foreign Language", sec. 2: a shared self-attention, per-modality feed-forward
"experts", pre-LayerNorm with sub-LN) with torchscale's parameter names, so the release
checkpoints ``beit3_{base,large}_patch16_384_{coco,f30k}_retrieval.pth`` load as they are;
``tests/extract/test_towers.py`` checks it against torchscale's ``BEiT3`` when importable.

Weights. BLIP: the Hugging Face cache (``HF_HOME``, or ``--weights-dir`` as its ``cache_dir``);
offline (``HF_HUB_OFFLINE`` / ``VLMBENCH_OFFLINE``) only the cache is read. BEiT-3: release
files, never downloaded: ``<dir>/beit3_..._retrieval.pth`` and ``<dir>/beit3.spm`` with
``<dir>`` = ``--weights-dir``, else ``$VLMBENCH_WEIGHTS/beit3``, else
``$VLMBENCH_CACHE/weights/beit3``. Missing: :class:`~benchmark.extract.model_types.
WeightsUnavailableError`, one line naming the model and where its files are expected.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)
BLIP_MAX_TOKENS = 35
BEIT3_MAX_TOKENS = 64
BEIT3_VOCAB = 64010
WEIGHTS_ENV = "VLMBENCH_WEIGHTS"


@dataclass(frozen=True)
class TowerSpec:
    model_id: str
    family: str  # "BLIP" or "BEIT3"
    size: str  # "base" or "large"
    finetune: str  # "coco" or "f30k"
    image_size: int  # SWAB's evaluation resolution
    source: str  # hub id (BLIP) or release checkpoint file name (BEiT-3)
    params_m: float  # published parameter count, millions (docs/extraction_cost.md)


def _specs() -> dict[str, TowerSpec]:
    out = {}
    for size in ("base", "large"):
        for ft, hub in (("coco", "coco"), ("f30k", "flickr")):
            mid = f"BLIP:retrieval_{size}_{ft}"
            out[mid] = TowerSpec(mid, "BLIP", size, ft, 224, f"Salesforce/blip-itm-{size}-{hub}",
                                 224.0 if size == "base" else 447.0)
            mid = f"BEIT3:retrieval_{size}_{ft}"
            out[mid] = TowerSpec(mid, "BEIT3", size, ft, 384,
                                 f"beit3_{size}_patch16_384_{ft}_retrieval.pth",
                                 222.0 if size == "base" else 674.0)
    return out


SPECS: dict[str, TowerSpec] = _specs()


def is_tower_model(model_id: str) -> bool:
    return model_id in SPECS


# -- the common interface --------------------------------------------------------------------
class TowerModel(nn.Module):
    """What the extract commands use of an open_clip model (module docstring)."""

    family = ""

    @property
    def visual(self) -> nn.Module:  # the module find_blocks splits
        raise NotImplementedError

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, tokens: Any, normalize: bool = False) -> torch.Tensor:
        raise NotImplementedError


def _maybe_normalize(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    return F.normalize(x, dim=-1) if normalize else x


def preprocess_for(spec_or_size: TowerSpec | int, family: str | None = None):
    """SWAB's eval transform (module docstring): PIL image -> tensor."""
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    size = spec_or_size.image_size if isinstance(spec_or_size, TowerSpec) else spec_or_size
    family = spec_or_size.family if isinstance(spec_or_size, TowerSpec) else family
    mean, std = (CLIP_MEAN, CLIP_STD) if family == "BLIP" else (INCEPTION_MEAN, INCEPTION_STD)
    return transforms.Compose([
        transforms.Resize((size, size), interpolation=InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


# -- BLIP ------------------------------------------------------------------------------------
class BlipTokenizer:
    """BERT tokenizer with SWAB's settings: ``tokenizer(texts) -> BatchEncoding``."""

    def __init__(self, tokenizer: Any, max_length: int = BLIP_MAX_TOKENS) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.tokenizer(texts, padding="max_length", truncation=True,
                              max_length=self.max_length, return_tensors="pt")


class BlipTowers(TowerModel):
    """``transformers.BlipForImageTextRetrieval`` with its contrastive heads."""

    family = "BLIP"

    def __init__(self, blip: nn.Module) -> None:
        super().__init__()
        self.blip = blip

    @property
    def visual(self) -> nn.Module:
        return self.blip.vision_model

    def encode_image(self, images, normalize=False):
        hidden = self.blip.vision_model(pixel_values=images).last_hidden_state
        return _maybe_normalize(self.blip.vision_proj(hidden[:, 0, :]), normalize)

    def encode_text(self, tokens, normalize=False):
        out = self.blip.text_encoder(input_ids=tokens["input_ids"],
                                     attention_mask=tokens["attention_mask"])
        return _maybe_normalize(self.blip.text_proj(out.last_hidden_state[:, 0, :]), normalize)


def blip_config(size: str, image_size: int = 384):
    """The retrieval checkpoints' architecture (ViT-B/16 or ViT-L/16, BERT-base text)."""
    from transformers import BlipConfig

    width, layers, heads = (768, 12, 12) if size == "base" else (1024, 24, 16)
    return BlipConfig(
        vision_config=dict(hidden_size=width, intermediate_size=4 * width,
                           num_hidden_layers=layers, num_attention_heads=heads,
                           image_size=image_size, patch_size=16),
        text_config=dict(encoder_hidden_size=width), image_text_hidden_size=256)


def resize_position_embedding(blip: nn.Module, image_size: int) -> None:
    """Run the ViT at ``image_size``: the patch-grid position embeddings resized bicubically
    (``align_corners=False``; the class token's kept), as BLIP's checkpoint loader does."""
    emb = blip.vision_model.embeddings
    pos = emb.position_embedding.data  # [1, 1 + g*g, D]
    patch = blip.config.vision_config.patch_size
    old, new = int(round(math.sqrt(pos.shape[1] - 1))), image_size // patch
    if old == new:
        return
    grid = pos[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=(new, new), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new * new, -1).to(pos.dtype)
    emb.position_embedding = nn.Parameter(torch.cat([pos[:, :1], grid], dim=1))
    emb.image_size, emb.num_patches, emb.num_positions = image_size, new * new, new * new + 1
    blip.config.vision_config.image_size = image_size
    log.info("BLIP: position embedding resized from %dx%d to %dx%d patches", old, old, new, new)


# -- BEiT-3: the multiway transformer ------------------------------------------------------
class Multiway(nn.Module):
    """Two copies of a module: ``A`` for image tokens (way 0), ``B`` for text tokens (way 1)."""

    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.A, self.B = a, b

    def forward(self, x: torch.Tensor, way: int) -> torch.Tensor:
        return (self.A if way == 0 else self.B)(x)


def _multiway(make) -> Multiway:
    return Multiway(make(), make())


class FeedForward(nn.Module):
    """fc1 -> GELU -> LayerNorm (sub-LN) -> fc2."""

    def __init__(self, dim: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.ffn_layernorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x):
        return self.fc2(self.ffn_layernorm(F.gelu(self.fc1(x).float()).type_as(x)))


class MultiwayAttention(nn.Module):
    """Self-attention with per-way projections and a sub-LN before the output projection."""

    def __init__(self, dim: int, heads: int, eps: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self, name, _multiway(lambda: nn.Linear(dim, dim)))
        self.inner_attn_ln = _multiway(lambda: nn.LayerNorm(dim, eps=eps))

    def forward(self, x, way: int, padding_mask: torch.Tensor | None):
        b, n, d = x.shape

        def split(t):
            return t.view(b, n, self.heads, self.head_dim).transpose(1, 2)

        q = split(self.q_proj(x, way) * self.head_dim ** -0.5)
        k, v = split(self.k_proj(x, way)), split(self.v_proj(x, way))
        scores = q @ k.transpose(-1, -2)  # [b, h, n, n]
        if padding_mask is not None:
            scores = scores.masked_fill(padding_mask[:, None, None, :].bool(), float("-inf"))
        attn = torch.softmax(scores.float(), dim=-1).type_as(scores) @ v
        attn = attn.transpose(1, 2).reshape(b, n, d)
        return self.out_proj(self.inner_attn_ln(attn, way), way)


class MultiwayBlock(nn.Module):
    """Pre-LN transformer layer: shared attention routing, per-way experts. Returns a tensor."""

    def __init__(self, dim: int, heads: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.self_attn_layer_norm = _multiway(lambda: nn.LayerNorm(dim, eps=eps))
        self.self_attn = MultiwayAttention(dim, heads, eps)
        self.final_layer_norm = _multiway(lambda: nn.LayerNorm(dim, eps=eps))
        self.ffn = _multiway(lambda: FeedForward(dim, ffn, eps))
        self.way = 0  # set by the encoder before each pass (hooks see one-argument forwards)
        self.padding_mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        way = self.way
        x = x + self.self_attn(self.self_attn_layer_norm(x, way), way, self.padding_mask)
        return x + self.ffn(self.final_layer_norm(x, way), way)


class VisionEmbed(nn.Module):
    def __init__(self, image_size: int, patch: int, dim: int) -> None:
        super().__init__()
        self.num_patches = (image_size // patch) ** 2
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))  # pre-training only; in the files

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


class _Positions(nn.Module):
    def __init__(self, n: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n, dim))


class _Encoder(nn.Module):
    def __init__(self, n_vision_pos, dim, heads, ffn, layers, max_positions, eps) -> None:
        super().__init__()
        # fairseq convention: positions start at 2
        self.embed_positions = Multiway(_Positions(n_vision_pos + 2, dim),
                                        _Positions(max_positions, dim))
        self.layers = nn.ModuleList(MultiwayBlock(dim, heads, ffn, eps) for _ in range(layers))
        self.layer_norm = _multiway(lambda: nn.LayerNorm(dim, eps=eps))


@dataclass(frozen=True)
class Beit3Config:
    image_size: int = 384
    patch_size: int = 16
    dim: int = 768
    heads: int = 12
    layers: int = 12
    mlp_ratio: float = 4.0
    vocab_size: int = BEIT3_VOCAB
    max_positions: int = 1024
    eps: float = 1e-5

    @classmethod
    def of(cls, size: str, image_size: int = 384) -> Beit3Config:
        if size == "base":
            return cls(image_size=image_size)
        return cls(image_size=image_size, dim=1024, heads=16, layers=24)


class Beit3Backbone(nn.Module):
    """The BEiT-3 multiway transformer, torchscale's parameter names (``beit3.*`` in the files)."""

    def __init__(self, cfg: Beit3Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.vision_embed = VisionEmbed(cfg.image_size, cfg.patch_size, cfg.dim)
        self.encoder = _Encoder(self.vision_embed.num_patches + 1, cfg.dim, cfg.heads,
                                int(cfg.dim * cfg.mlp_ratio), cfg.layers, cfg.max_positions,
                                cfg.eps)

    def forward(self, image: torch.Tensor | None = None, text: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states of an image-only (way 0) or text-only (way 1) input."""
        if (image is None) == (text is None):
            raise ValueError("pass exactly one of image or text")
        way = 0 if image is not None else 1
        x = self.vision_embed(image) if way == 0 else self.text_embed(text)
        pos = self.encoder.embed_positions.A if way == 0 else self.encoder.embed_positions.B
        x = x + pos.weight[2:2 + x.shape[1]]
        if padding_mask is not None:
            x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        for layer in self.encoder.layers:
            layer.way, layer.padding_mask = way, padding_mask
            try:
                x = layer(x)
            finally:
                layer.padding_mask = None
        return self.encoder.layer_norm(x, way)


class Beit3Retrieval(TowerModel):
    """BEiT-3's retrieval model: the backbone and bias-free linear heads on the [CLS] state."""

    family = "BEIT3"

    def __init__(self, cfg: Beit3Config) -> None:
        super().__init__()
        self.beit3 = Beit3Backbone(cfg)
        self.vision_head = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.language_head = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self._init_random()

    def _init_random(self) -> None:
        g = self.beit3
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for p in (g.vision_embed.cls_token, g.vision_embed.mask_token, g.text_embed.weight,
                  g.encoder.embed_positions.A.weight, g.encoder.embed_positions.B.weight):
            nn.init.trunc_normal_(p, std=0.02)

    @property
    def visual(self) -> nn.Module:
        return self.beit3

    def encode_image(self, images, normalize=False):
        return _maybe_normalize(self.vision_head(self.beit3(image=images)[:, 0, :]), normalize)

    def encode_text(self, tokens, normalize=False):
        hidden = self.beit3(text=tokens["input_ids"], padding_mask=tokens["padding_mask"])
        return _maybe_normalize(self.language_head(hidden[:, 0, :]), normalize)


class Tokens(dict):
    """A batch of token tensors with ``.to(device)``, like transformers' ``BatchEncoding``."""

    def to(self, device) -> Tokens:
        return Tokens({k: v.to(device) for k, v in self.items()})


class Beit3Tokenizer:
    """``beit3.spm`` with XLM-R's fairseq ids and SWAB's truncation and padding."""

    BOS, PAD, EOS, UNK, OFFSET = 0, 1, 2, 3, 1

    def __init__(self, spm_path: str | Path, max_length: int = BEIT3_MAX_TOKENS) -> None:
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
        self.max_length = max_length

    def ids(self, text: str) -> list[int]:
        """``<s> pieces </s>`` (what ``XLMRobertaTokenizer(text).input_ids`` gives)."""
        pieces = self.sp.encode(text)
        return [self.BOS, *(p + self.OFFSET if p else self.UNK for p in pieces), self.EOS]

    def __call__(self, texts) -> Tokens:
        texts = [texts] if isinstance(texts, str) else list(texts)
        ids, masks = [], []
        for text in texts:
            t = self.ids(text)[: self.max_length - 2]  # SWAB: cut to max_len - 2 ids
            pad = self.max_length - len(t)
            ids.append(t + [self.PAD] * pad)
            masks.append([0] * len(t) + [1] * pad)
        return Tokens(input_ids=torch.tensor(ids, dtype=torch.long),
                      padding_mask=torch.tensor(masks, dtype=torch.long))


def load_beit3_checkpoint(model: Beit3Retrieval, path: str | Path) -> None:
    """A release ``.pth`` (its ``model`` / ``module`` entry), position embeddings resized if the
    file's resolution differs; every parameter must be in the file."""
    state = torch.load(str(path), map_location="cpu", weights_only=False)
    for key in ("model", "module"):
        if isinstance(state, dict) and key in state:
            state = state[key]
            break
    key = "beit3.encoder.embed_positions.A.weight"
    want = model.state_dict()[key]
    if key in state and state[key].shape != want.shape:
        extra = 3  # positions 0, 1 (fairseq) and the class token
        old = int(round(math.sqrt(state[key].shape[0] - extra)))
        new = int(round(math.sqrt(want.shape[0] - extra)))
        grid = state[key][extra:].reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
        state[key] = torch.cat([state[key][:extra],
                                grid.permute(0, 2, 3, 1).reshape(new * new, -1)], dim=0)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing:
        raise RuntimeError(f"{path}: {len(missing)} parameters missing, e.g. {missing[:3]}")
    if unexpected:
        log.info("%s: %d unused entries (e.g. %s)", path, len(unexpected), unexpected[:3])


# -- loading ---------------------------------------------------------------------------------
def offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in
               ("VLMBENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def beit3_dir(weights_dir: str | None = None) -> Path:
    if weights_dir:
        return Path(weights_dir).expanduser()
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser() / "beit3"
    from benchmark.data.upstream import cache_root

    return cache_root() / "weights" / "beit3"


def _need(module: str, model_id: str) -> None:
    import importlib.util

    from benchmark.extract.model_types import ModelLoadError

    if importlib.util.find_spec(module) is None:
        raise ModelLoadError(f"{model_id} needs {module}: pip install 'vlmbench[towers]'")


def load_tower(model_id: str, random_init: bool = False, device: str = "cpu",
               cache_dir: str | None = None):
    """The :class:`~benchmark.extract.models.LoadedModel` of a BLIP / BEiT-3 model."""
    from benchmark.extract.model_types import LoadedModel, WeightsUnavailableError

    spec = SPECS[model_id]
    if spec.family == "BLIP":
        _need("transformers", model_id)
        from transformers import BertTokenizer, BlipForImageTextRetrieval

        local = offline()
        try:
            tok = BertTokenizer.from_pretrained(spec.source, cache_dir=cache_dir,
                                                local_files_only=local)
            if random_init:
                blip = BlipForImageTextRetrieval(blip_config(spec.size))
            else:
                blip = BlipForImageTextRetrieval.from_pretrained(
                    spec.source, cache_dir=cache_dir, local_files_only=local)
        except OSError as err:
            where = f"--weights-dir {cache_dir}" if cache_dir else "HF_HOME"
            raise WeightsUnavailableError(
                f"no weights for {model_id}: Hugging Face {spec.source} is not in the Hugging "
                f"Face cache ({where}){' and the hub is offline' if local else ''} "
                f"({type(err).__name__}); fetch it with `hf download {spec.source}` on a "
                f"machine with network and copy the cache"
                + ("" if not random_init else " (--random-init still needs its tokenizer)")
            ) from None
        resize_position_embedding(blip, spec.image_size)
        model, tokenizer = BlipTowers(blip), BlipTokenizer(tok)
    else:
        _need("sentencepiece", model_id)
        root = beit3_dir(cache_dir)
        need = [root / "beit3.spm"] + ([] if random_init else [root / spec.source])
        absent = [p.name for p in need if not p.is_file()]
        if absent:
            raise WeightsUnavailableError(
                f"no weights for {model_id}: {' and '.join(absent)} not in {root} (release "
                f"files of the BEiT-3 authors, microsoft/unilm beit3; put them there, or pass "
                f"--weights-dir DIR / set ${WEIGHTS_ENV}; never downloaded here)")
        model = Beit3Retrieval(Beit3Config.of(spec.size, spec.image_size))
        if not random_init:
            load_beit3_checkpoint(model, root / spec.source)
        tokenizer = Beit3Tokenizer(root / "beit3.spm")
    model = model.to(device).eval()
    if random_init:
        log.warning("%s: RANDOM weights (--random-init); features are for smoke tests only",
                    model_id)
    return LoadedModel(model_id, model, preprocess_for(spec), tokenizer, random_init)
