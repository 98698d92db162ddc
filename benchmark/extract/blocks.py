"""Coarse blocks of an open_clip visual tower, the units DCD scores (docs/methods/dcd.md, section 1).

A block is a module whose output is one stage of the tower's representation:

==========================  ==========================================  ============================
tower (``model.visual``)    blocks                                       names (relative to visual)
==========================  ==========================================  ============================
``ModifiedResNet`` (RN*)    the four stages                              ``layer1`` .. ``layer4``
``VisionTransformer``       every residual attention block; also CoCa   ``transformer.resblocks.{i}``
``TimmModel``, stages       ConvNeXt, FastViT (MobileCLIP): each stage   ``trunk.stages.{i}``
``TimmModel``, blocks       timm ViT / SigLIP / EVA / PE / ViTamin:      ``trunk.blocks.{i}``
                            every transformer block
``TimmModel``, layers       Swin: each stage                             ``trunk.layers.{i}``
``BlipVisionModel`` (BLIP)  every ViT encoder layer (transformers)       ``encoder.layers.{i}``
``Beit3Backbone`` (BEiT-3)  every multiway layer (vision experts run)    ``encoder.layers.{i}``
==========================  ==========================================  ============================

BLIP and BEiT-3 (:mod:`benchmark.extract.towers`): ``model.visual`` is the ViT of BLIP's
retrieval model and the whole BEiT-3 backbone (image tokens take its vision experts, so the
image path is a plain pre-LN ViT through those layers).

A timm trunk is classified by the container it owns, in that order of preference: hierarchical
networks (``stages``) are split into stages, as the method asks for ConvNeXt; isotropic
transformers (``blocks``) into blocks. Anything else raises :class:`BlockDiscoveryError` rather
than guessing, because a wrong split silently changes every conductance vector.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "BlockDiscoveryError",
    "SUPPORTED_FAMILIES",
    "block_batch_dim",
    "find_blocks",
    "output_tensor",
]

SUPPORTED_FAMILIES = (
    "open_clip ModifiedResNet (layer1..layer4), "
    "open_clip VisionTransformer incl. CoCa (transformer.resblocks), "
    "open_clip TimmModel with a trunk owning `stages` (ConvNeXt, FastViT), "
    "`blocks` (ViT, EVA) or `layers` (Swin), "
    "BLIP's transformers BlipVisionModel and BEiT-3's multiway backbone (encoder.layers)"
)

# Preference order for timm trunks: see the module docstring.
_TIMM_CONTAINERS = ("stages", "blocks", "layers")


class BlockDiscoveryError(ValueError):
    """The visual tower has a structure :func:`find_blocks` does not know how to split."""


def _children_of(container: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}.{key}", child) for key, child in container.named_children()]


def _unsupported(visual: nn.Module, why: str = "") -> BlockDiscoveryError:
    hint = " (got a whole model: pass model.visual)" if hasattr(visual, "visual") else ""
    detail = f" ({why})" if why else ""
    return BlockDiscoveryError(
        f"cannot split {type(visual).__name__}{detail}{hint} into blocks; "
        f"supported: {SUPPORTED_FAMILIES}"
    )


def _is_tower_visual(visual: nn.Module) -> bool:
    """BLIP's ``BlipVisionModel`` or BEiT-3's backbone, without importing transformers."""
    name = type(visual).__name__
    if name == "Beit3Backbone":
        return True
    return name == "BlipVisionModel" and type(visual).__module__.startswith("transformers.")


def find_blocks(visual: nn.Module) -> list[tuple[str, nn.Module]]:
    """Return the ordered ``(qualified name, module)`` blocks of an open_clip visual tower.

    Names are relative to ``visual`` (``visual.get_submodule(name)`` is the module).
    """
    # Imported here: open_clip is an optional dependency (the `extract` extra).
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.timm_model import TimmModel
    from open_clip.transformer import VisionTransformer

    if _is_tower_visual(visual):
        blocks = _children_of(visual.encoder.layers, "encoder.layers")
    elif isinstance(visual, ModifiedResNet):
        blocks = [
            (name, getattr(visual, name)) for name in ("layer1", "layer2", "layer3", "layer4")
        ]
    elif isinstance(visual, VisionTransformer):
        blocks = _children_of(visual.transformer.resblocks, "transformer.resblocks")
    elif isinstance(visual, TimmModel):
        trunk = visual.trunk
        for attr in _TIMM_CONTAINERS:
            container = getattr(trunk, attr, None)
            if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container) > 0:
                blocks = _children_of(container, f"trunk.{attr}")
                break
        else:
            raise _unsupported(visual, f"timm trunk {type(trunk).__name__}")
    else:
        raise _unsupported(visual)
    if not blocks:
        raise _unsupported(visual, "no blocks found")
    return blocks


def block_batch_dim(block: nn.Module) -> int:
    """Dimension of the batch in ``block``'s output: 0, or 1 for sequence-first (L, N, D) blocks.

    Only open_clip's ``ResidualAttentionBlock`` can run sequence-first (its ``nn.MultiheadAttention``
    built with ``batch_first=False``, the layout of open_clip < 2.24 and of custom towers); every
    other supported block is batch-first.
    """
    attn = getattr(block, "attn", None)
    if isinstance(attn, nn.MultiheadAttention) and not attn.batch_first:
        return 1
    return 0


def output_tensor(output: object) -> torch.Tensor:
    """The tensor DCD scores for a block output: the output itself, or the first of a tuple/list.

    Blocks that return several tensors (e.g. ``(hidden, attention)``) carry the representation in
    the first one; captum would attribute to each of them, and its first attribution is the one
    that corresponds to ours.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"block output of type {type(output).__name__} has no tensor to attribute to")
