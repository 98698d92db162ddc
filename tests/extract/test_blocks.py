"""Block discovery on tiny random-init open_clip / timm towers (no weights are downloaded)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
timm = pytest.importorskip("timm")

from torch import nn  # noqa: E402

from benchmark.extract.blocks import (  # noqa: E402
    BlockDiscoveryError,
    block_batch_dim,
    find_blocks,
    output_tensor,
)
from tests.extract.tiny import RESNET_CFG, TEXT_CFG, VIT_CFG  # noqa: E402

pytestmark = pytest.mark.torch



def _clip(vision_cfg: dict) -> nn.Module:
    torch.manual_seed(0)
    return open_clip.CLIP(embed_dim=16, vision_cfg=vision_cfg, text_cfg=TEXT_CFG)


def _timm_visual(name: str, **overrides: object) -> nn.Module:
    """open_clip's TimmModel for ``name``, its trunk rebuilt tiny (no download: pretrained=False)."""
    visual = open_clip.timm_model.TimmModel("convnext_atto", embed_dim=16, image_size=32)
    visual.trunk = timm.create_model(name, pretrained=False, num_classes=0, **overrides)
    return visual


def _names(blocks: list[tuple[str, nn.Module]]) -> list[str]:
    return [name for name, _ in blocks]


def test_vit_blocks_are_the_residual_attention_blocks() -> None:
    visual = _clip(VIT_CFG).visual
    blocks = find_blocks(visual)
    assert _names(blocks) == [f"transformer.resblocks.{i}" for i in range(3)]
    for (name, module), resblock in zip(blocks, visual.transformer.resblocks, strict=True):
        assert module is resblock
        assert visual.get_submodule(name) is module
        assert block_batch_dim(module) == 0  # open_clip 3.x runs the stack batch-first


def test_resnet_blocks_are_the_four_stages() -> None:
    visual = _clip(RESNET_CFG).visual
    blocks = find_blocks(visual)
    assert _names(blocks) == ["layer1", "layer2", "layer3", "layer4"]
    assert [m for _, m in blocks] == [visual.layer1, visual.layer2, visual.layer3, visual.layer4]
    assert all(block_batch_dim(m) == 0 for _, m in blocks)


def test_coca_visual_is_a_vision_transformer() -> None:
    torch.manual_seed(0)
    coca = open_clip.CoCa(
        embed_dim=16,
        multimodal_cfg=dict(TEXT_CFG, n_queries=4, attn_pooler_heads=2),
        text_cfg=TEXT_CFG,
        vision_cfg=dict(
            VIT_CFG,
            layers=2,
            attentional_pool=True,
            attn_pooler_queries=4,
            attn_pooler_heads=2,
            output_tokens=True,  # as open_clip's coca_*.json configs
        ),
    )
    assert _names(find_blocks(coca.visual)) == [
        "transformer.resblocks.0",
        "transformer.resblocks.1",
    ]


def test_timm_convnext_blocks_are_its_stages() -> None:
    # The open_clip config path: a CLIP whose vision_cfg names a timm model.
    visual = _clip(dict(image_size=32, timm_model_name="convnext_atto")).visual
    blocks = find_blocks(visual)
    assert _names(blocks) == [f"trunk.stages.{i}" for i in range(4)]
    assert all(visual.get_submodule(name) is module for name, module in blocks)


@pytest.mark.parametrize(
    ("timm_name", "overrides"),
    [
        ("eva02_tiny_patch14_224", dict(img_size=32, patch_size=8, depth=2)),
        ("vit_tiny_patch16_224", dict(img_size=32, patch_size=8, depth=2)),
    ],
)
def test_timm_transformers_split_into_blocks(timm_name: str, overrides: dict) -> None:
    visual = _timm_visual(timm_name, **overrides)
    blocks = find_blocks(visual)
    assert _names(blocks) == ["trunk.blocks.0", "trunk.blocks.1"]
    assert [m for _, m in blocks] == list(visual.trunk.blocks)


def test_sequence_first_transformer_has_batch_in_dim_1() -> None:
    lnd = open_clip.transformer.Transformer(width=32, layers=2, heads=2, batch_first=False)
    assert [block_batch_dim(block) for block in lnd.resblocks] == [1, 1]


def test_unknown_tower_raises_naming_class_and_families() -> None:
    with pytest.raises(BlockDiscoveryError, match=r"Sequential.*ModifiedResNet.*VisionTransformer"):
        find_blocks(nn.Sequential(nn.Linear(2, 2)))
    assert issubclass(BlockDiscoveryError, ValueError)


def test_whole_model_instead_of_visual_gets_a_hint() -> None:
    with pytest.raises(BlockDiscoveryError, match=r"CLIP.*pass model\.visual"):
        find_blocks(_clip(VIT_CFG))


def test_timm_trunk_without_known_container_raises() -> None:
    visual = open_clip.timm_model.TimmModel("convnext_atto", embed_dim=16, image_size=32)
    visual.trunk = nn.Linear(4, 4)
    with pytest.raises(BlockDiscoveryError, match="timm trunk Linear"):
        find_blocks(visual)


def test_output_tensor_takes_the_first_of_a_tuple() -> None:
    a, b = torch.zeros(2), torch.ones(2)
    assert output_tensor(a) is a
    assert output_tensor((a, b)) is a
    assert output_tensor([b, a]) is b
    with pytest.raises(TypeError):
        output_tensor({"x": a})
