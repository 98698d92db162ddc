"""Configs of the tiny random-init open_clip towers the extraction tests build (no weights)."""

TEXT_CFG = dict(context_length=8, vocab_size=64, width=16, heads=2, layers=1)
VIT_CFG = dict(image_size=32, patch_size=8, width=32, layers=3, head_width=16)
RESNET_CFG = dict(image_size=32, layers=(1, 1, 1, 1), width=8, head_width=8)
CONVNEXT_CFG = dict(image_size=32, timm_model_name="convnext_atto")
