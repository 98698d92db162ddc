"""The model zoos of the published protocols, as explicit model-id lists.

Ids are open_clip's ``"ARCH:pretrained"``. Each list is checked against its upstream source in
``tests/test_protocol.py`` (LOVM's and SWAB's ``models.yml`` / eval tables, MLL's
``model_hub_info.csv``), so a typo here cannot go unnoticed.
"""

from __future__ import annotations

# LOVM (Zohar et al., 2023): LOVM/models.yml, the 35 models of LOVM/eval_table.csv.
LOVM_35 = (
    "RN50:openai",
    "RN101:openai",
    "RN50x4:openai",
    "RN50x16:openai",
    "RN50x64:openai",
    "ViT-B-32:openai",
    "ViT-B-16:openai",
    "ViT-L-14:openai",
    "ViT-L-14-336:openai",
    "ViT-B-32:laion400m_e31",
    "ViT-B-32:laion400m_e32",
    "ViT-B-32:laion2b_e16",
    "ViT-B-32:laion2b_s34b_b79k",
    "ViT-B-32-quickgelu:laion400m_e32",
    "ViT-B-16:laion400m_e32",
    "ViT-B-16-plus-240:laion400m_e32",
    "ViT-L-14:laion400m_e32",
    "ViT-L-14:laion400m_e31",
    "ViT-L-14:laion2b_s32b_b82k",
    "ViT-H-14:laion2b_s32b_b79k",
    "ViT-g-14:laion2b_s12b_b42k",
    "ViT-g-14:laion2b_s34b_b88k",
    "convnext_base_w:laion2b_s13b_b82k",
    "convnext_base_w:laion2b_s13b_b82k_augreg",
    "convnext_base_w:laion_aesthetic_s13b_b82k",
    "convnext_base_w_320:laion_aesthetic_s13b_b82k",
    "convnext_base_w_320:laion_aesthetic_s13b_b82k_augreg",
    "convnext_large_d:laion2b_s26b_b102k_augreg",
    "convnext_large_d_320:laion2b_s29b_b131k_ft",
    "convnext_large_d_320:laion2b_s29b_b131k_ft_soup",
    "convnext_base:laion400m_s13b_b51k",
    "coca_ViT-B-32:laion2b_s13b_b90k",
    "coca_ViT-B-32:mscoco_finetuned_laion2b_s13b_b90k",
    "coca_ViT-L-14:laion2b_s13b_b90k",
    "coca_ViT-L-14:mscoco_finetuned_laion2b_s13b_b90k",
)

# SWAB (Yi et al., 2024) adds BLIP and BEiT-3 (not open_clip models; evaluated by SWAB).
NON_OPENCLIP = (
    "BLIP:retrieval_base_coco",
    "BLIP:retrieval_base_f30k",
    "BLIP:retrieval_large_coco",
    "BLIP:retrieval_large_f30k",
    "BEIT3:retrieval_base_coco",
    "BEIT3:retrieval_base_f30k",
    "BEIT3:retrieval_large_coco",
    "BEIT3:retrieval_large_f30k",
)
SWAB_43 = LOVM_35 + NON_OPENCLIP
#: the non-open_clip models the extraction stage loads (benchmark/extract/towers.py): all of them
TOWER_MODELS = frozenset(NON_OPENCLIP)

# The five models the DCD paper adds to SWAB's 43 (ground truth: open_clip's results table).
DCD_EXTRA_5 = (
    "EVA01-g-14:laion400m_s11b_b41k",
    "nllb-clip-base:v1",
    "xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k",
    "RN50:cc12m",
    "ViT-B-16:dfn2b",
)
DCD_48 = SWAB_43 + DCD_EXTRA_5

# MLL (Tan et al., 2025): MLL/model_hub_info.csv, in its order.
MLL_49 = (
    "RN50:openai",
    "RN50:cc12m",
    "RN101:openai",
    "RN101:yfcc15m",
    "RN101-quickgelu:openai",
    "RN101-quickgelu:yfcc15m",
    "RN50x4:openai",
    "RN50x64:openai",
    "ViT-B-32:openai",
    "ViT-B-32:laion2b_e16",
    "ViT-B-32:datacomp_xl_s13b_b90k",
    "ViT-B-32:commonpool_m_clip_s128m_b4k",
    "ViT-B-32-256:datacomp_s34b_b86k",
    "ViT-B-32-quickgelu:laion400m_e31",
    "ViT-B-32-quickgelu:metaclip_fullcc",
    "ViT-B-16:openai",
    "ViT-B-16:laion2b_s34b_b88k",
    "ViT-B-16:datacomp_l_s1b_b8k",
    "ViT-B-16:commonpool_l_laion_s1b_b8k",
    "ViT-B-16:dfn2b",
    "ViT-B-16-quickgelu:metaclip_fullcc",
    "ViT-B-16-plus-240:laion400m_e31",
    "ViT-L-14:openai",
    "ViT-L-14:laion400m_e31",
    "ViT-L-14:datacomp_xl_s13b_b90k",
    "ViT-L-14:commonpool_xl_clip_s13b_b90k",
    "ViT-L-14-quickgelu:metaclip_fullcc",
    "ViT-L-14-quickgelu:dfn2b",
    "ViT-L-14-336:openai",
    "ViT-H-14:laion2b_s32b_b79k",
    "ViT-H-14-quickgelu:metaclip_fullcc",
    "ViT-H-14-378-quickgelu:dfn5b",
    "ViT-g-14:laion2b_s12b_b42k",
    "ViT-bigG-14:laion2b_s39b_b160k",
    "roberta-ViT-B-32:laion2b_s12b_b32k",
    "xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k",
    "convnext_base_w:laion2b_s13b_b82k",
    "convnext_base_w_320:laion_aesthetic_s13b_b82k",
    "convnext_large_d:laion2b_s26b_b102k_augreg",
    "convnext_large_d_320:laion2b_s29b_b131k_ft",
    "convnext_xxlarge:laion2b_s34b_b82k_augreg_soup",
    "coca_ViT-B-32:laion2b_s13b_b90k",
    "coca_ViT-L-14:laion2b_s13b_b90k",
    "EVA01-g-14:laion400m_s11b_b41k",
    "EVA02-B-16:merged2b_s8b_b131k",
    "EVA02-L-14-336:merged2b_s6b_b61k",
    "EVA02-E-14:laion2b_s4b_b115k",
    "nllb-clip-base:v1",
    "nllb-clip-base-siglip:v1",
)

# The miniature zoo trained here (benchmark/minizoo/zoo.py MODELS, world seed 0); checked
# against it in tests/minizoo/test_zoo.py.
MINIZOO_12 = (
    "MZ-ViT-2-32-p8:all_s0",
    "MZ-ViT-2-32-p8:nocolour_s0",
    "MZ-ViT-2-32-p8:clean_s0",
    "MZ-ViT-2-32-p8:noisy_s0",
    "MZ-ViT-2-32-p4:digits_s0",
    "MZ-ViT-3-48-p8:noshape_s0",
    "MZ-ViT-4-32-p8:sketchblur_s0",
    "MZ-ViT-2-32-p8:small_s0",
    "MZ-ViT-2-64-p4:big_s0",
    "MZ-RN-1-8:dark_s0",
    "MZ-RN-1-16:nodigit_s0",
    "MZ-RN-1-16:shapes_s0",
)


def minizoo_ids(world_seed: int = 0) -> tuple[str, ...]:
    """The miniature zoo of world seed ``world_seed`` (the same models, ids ending ``_s<N>``);
    seed 0 is :data:`MINIZOO_12` itself."""
    return tuple(f"{m.removesuffix('_s0')}_s{int(world_seed)}" for m in MINIZOO_12)
